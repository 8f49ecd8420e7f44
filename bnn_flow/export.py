"""bnn-flow export: a trained run -> QONNX, with a round-trip check against the torch model.

The exported model takes float32 N,C,H,W images scaled to [0, 1]; all normalisation is inside it.
Export uses brevitas' QONNX exporter with dynamo=False (the dynamo exporter writes bias-less Gemm
nodes that qonnx's GemmToMatMul cannot read). The round trip runs qonnx's execute_onnx and the torch
model on real test images: labels must be identical and outputs within 1e-4, else export fails.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from brevitas.export import export_qonnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.cleanup import cleanup_model

from bnn_flow.data import load_dataset
from bnn_flow.errors import CheckFailedError
from bnn_flow.fileio import write_bytes_atomic, write_json_atomic
from bnn_flow.nets.common import BnnNet
from bnn_flow.qonnx_exec import QonnxRunner, load_qonnx
from bnn_flow.roundtrip_ties import explain_image
from bnn_flow.train.runs import LoadedRun, check_finite_weights, load_run
from bnn_flow.transforms.tidy import cleanup_fast

ROUNDTRIP_TOLERANCE = 1e-4
__all__ = ["ROUNDTRIP_TOLERANCE", "LoadedRun", "check_finite_weights", "export_qonnx_file", "export_run", "load_run",
           "roundtrip"]


def export_qonnx_file(model: BnnNet, path: Path) -> None:
    """Export to QONNX, cleaned up as qonnx's own `cleanup` would (constant sub-graphs folded, shapes
    inferred, unique names), so that qonnx's executor and FINN take the file as it is; written atomically
    (brevitas writes to a temporary path first)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / "model.onnx"
        export_qonnx(model, input_t=torch.zeros(1, *model.input_shape), export_path=str(tmp_path), dynamo=False)
        clean = cleanup_fast(ModelWrapper(str(tmp_path)))
        write_bytes_atomic(path, clean.model.SerializeToString())


def _is_tie(model: BnnNet, graph: ModelWrapper, x: np.ndarray, diff: float) -> bool:
    """A differing image is a tie when an activation flipped at a boundary, or, with every activation equal,
    when its scores agree within the tolerance (then only the argmax of two near-equal classes differs)."""
    explained = explain_image(model, graph, x)
    return bool(explained) if explained is not None else bool(diff <= ROUNDTRIP_TOLERANCE)


def roundtrip(model: BnnNet, onnx_path: Path, images: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Run torch and qonnx's executor on the same images; report the differences. An image whose outputs differ
    (labels, or more than ROUNDTRIP_TOLERANCE) is a tie when roundtrip_ties explains it (a float rounding at an
    activation's boundary); the others are export errors. max_abs_diff is over the images without a tie."""
    x = (images.astype(np.float32) / 255.0).transpose(0, 3, 1, 2)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    graph = load_qonnx(onnx_path)
    got = QonnxRunner(graph)(x)
    same = ref.argmax(1) == got.argmax(1)
    diff = np.abs(ref - got).max(axis=1)
    graph = cleanup_model(graph)
    ties = np.array([not ok and _is_tie(model, graph, x[i:i + 1], diff[i])
                     for i, ok in enumerate(same & (diff <= ROUNDTRIP_TOLERANCE))], dtype=bool)
    return {
        "images": int(len(x)),
        "ties": int(ties.sum()),
        "max_abs_diff": float(diff[~ties].max(initial=0.0)),
        "labels_identical": bool(same[~ties].all()),
        "label_mismatches": int((~same[~ties]).sum()),
        "label_mismatches_at_ties": int((~same[ties]).sum()),
        "torch_acc": float((ref.argmax(1) == labels).mean()),
        "qonnx_acc": float((got.argmax(1) == labels).mean()),
    }


def export_run(run: Path, out: Path | None = None, *, images: int = 200, data_dir: str | None = None,
               checkpoint: str = "last") -> dict[str, Any]:
    """Export RUN's checkpoint to QONNX (default RUN/model.onnx), check the round trip, record it."""
    loaded = load_run(run, checkpoint)
    check_finite_weights(loaded.model, f"{run}/{checkpoint}.pt")
    out = out or run / "model.onnx"
    export_qonnx_file(loaded.model, out)
    summary = loaded.summary
    test_x, test_y = load_dataset(summary["dataset"], "test", data_dir,
                                  image_size=loaded.recipe.data.image_size)
    check = roundtrip(loaded.model, out, test_x[:images], test_y[:images])
    data = out.read_bytes()
    record = {"path": str(out), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
              "checkpoint": checkpoint, "roundtrip": check}
    summary["export"] = record
    write_json_atomic(run / "summary.json", summary)
    if not check["labels_identical"] or not check["max_abs_diff"] <= ROUNDTRIP_TOLERANCE:  # NaN fails too
        raise CheckFailedError(
            f"export round trip failed for {out}: {check['label_mismatches']} label mismatches (not ties), "
            f"max |torch - qonnx| = {check['max_abs_diff']:.3g} (> {ROUNDTRIP_TOLERANCE}) on "
            f"{check['images']} test images"
        )
    return record
