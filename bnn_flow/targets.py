"""`bnn-flow run BUILD --target T`: execute a compiled build on one target, DESIGN.md §7 input/output.

X.npy holds float32 N,C,H,W images scaled to [0, 1] exactly as MODEL.onnx takes them; the host applies
the model's input quantization, runs the target and the classifier head. Y.npz holds `scores`
(float32, N x classes, after the head) and `labels` (int64, N).
"""

from __future__ import annotations

import importlib
import io
import json
from pathlib import Path

import numpy as np

from bnn_flow.build import source_model
from bnn_flow.errors import BadInputError
from bnn_flow.fileio import write_bytes_atomic
from bnn_flow.head import apply_head, labels_of

TARGETS = ("golden", "qonnx", "csim", "cpu", "aarch64", "armv7", "armv6")
# Integer back-ends: each module has `available(target) -> str | None` (None when it can run here, else
# why not) and `run_integer(build_dir, q, target) -> int64 (N, classes)`: the last layer's accumulators
# for the graph's input integers q (InputSpec.apply of the images: NHWC integers, or 0/1 bits).
BACKENDS = {"csim": "bnn_flow.backends.hls.csim", "cpu": "bnn_flow.backends.cpu.run",
            "aarch64": "bnn_flow.backends.cpu.run", "armv7": "bnn_flow.backends.cpu.run",
            "armv6": "bnn_flow.backends.cpu.run"}


def backend(target: str):
    """The module that runs `target` (one of BACKENDS)."""
    return importlib.import_module(BACKENDS[target])


def backend_unavailable(target: str) -> str | None:
    """None when `target` can run on this machine, else the reason (a missing tool)."""
    try:
        mod = backend(target)
    except ModuleNotFoundError as e:
        return f"its back-end module is missing ({e})"
    return mod.available(target)


def run_integer_target(build_dir: Path, target: str, x: np.ndarray) -> np.ndarray:
    """The graph's integer output (N x classes int64) of an integer back-end on images x."""
    from bnn_flow.transforms.input_spec import load_input_spec

    q = load_input_spec(build_dir).apply(x)
    return np.asarray(backend(target).run_integer(Path(build_dir), q, target), dtype=np.int64)


def head_scores(build_dir: Path, acc: np.ndarray) -> np.ndarray:
    """The host-side head on a back-end's integer output (head.json: acc -> dot -> scores)."""
    head = json.loads((Path(build_dir) / "head.json").read_text())
    a, b = head["acc_to_dot"]
    return apply_head(head, acc * a + b)


def run_target(build_dir: Path, target: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scores float32 N x classes, labels int64 N) of `target` on images x (float32 NCHW in [0, 1])."""
    if target == "golden":
        from bnn_flow.golden import GoldenModel

        return GoldenModel(build_dir).run(x)
    if target == "qonnx":
        from bnn_flow.qonnx_exec import QonnxRunner, load_qonnx

        scores = QonnxRunner(load_qonnx(source_model(build_dir)))(x).astype(np.float32)
        return scores, labels_of(scores)
    if target in BACKENDS:
        scores = head_scores(build_dir, run_integer_target(build_dir, target, x))
        return scores, labels_of(scores)
    raise BadInputError(f"unknown target {target!r} (targets: {', '.join(TARGETS)})")


def read_input(path: Path, expected_chw: list[int] | None) -> np.ndarray:
    """Load X.npy and check it is what the model takes; one-line errors name the file."""
    if not path.is_file():
        raise BadInputError(f"input {path} not found")
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise BadInputError(f"{path} is not a readable .npy file ({e})") from None
    if x.ndim != 4 or not np.issubdtype(x.dtype, np.floating):
        raise BadInputError(f"{path}: expected float32 N,C,H,W images in [0, 1], got {x.dtype} {x.shape}")
    if expected_chw is not None and list(x.shape[1:]) != list(expected_chw):
        raise BadInputError(f"{path}: images are {list(x.shape[1:])} (C,H,W) but the model takes {expected_chw}")
    if not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1:
        raise BadInputError(f"{path}: pixel values must be finite and in [0, 1] (pixel/255)")
    return x.astype(np.float32, copy=False)


def write_output(path: Path, scores: np.ndarray, labels: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez(buf, scores=scores.astype(np.float32), labels=labels.astype(np.int64))
    write_bytes_atomic(path, buf.getvalue())


def model_input_chw(build_dir: Path) -> list[int]:
    from bnn_flow.qonnx_exec import load_qonnx

    model = load_qonnx(source_model(build_dir))
    return list(model.get_tensor_shape(model.graph.input[0].name)[1:])
