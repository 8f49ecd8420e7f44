"""`bnn-flow run BUILD --target T`: execute a compiled build on one target, DESIGN.md §7 input/output.

X.npy holds float32 N,C,H,W images scaled to [0, 1] exactly as MODEL.onnx takes them; the host applies
the model's input quantization, runs the target and the classifier head. Y.npz holds `scores`
(float32, N x classes, after the head) and `labels` (int64, N).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from bnn_flow.build import source_model
from bnn_flow.errors import BadInputError
from bnn_flow.fileio import write_bytes_atomic
from bnn_flow.head import labels_of

TARGETS = ("golden", "qonnx", "csim", "cpu", "aarch64", "armv7", "armv6")
LATER = {"csim": "the HLS back-end (issue #4)", "cpu": "the CPU back-end (issue #5)",
         "aarch64": "the CPU back-end (issue #5)", "armv7": "the CPU back-end (issue #5)",
         "armv6": "the CPU back-end (issue #5)"}


def run_target(build_dir: Path, target: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scores float32 N x classes, labels int64 N) of `target` on images x (float32 NCHW in [0, 1])."""
    if target == "golden":
        from bnn_flow.golden import GoldenModel

        return GoldenModel(build_dir).run(x)
    if target == "qonnx":
        from bnn_flow.qonnx_exec import QonnxRunner, load_qonnx

        scores = QonnxRunner(load_qonnx(source_model(build_dir)))(x).astype(np.float32)
        return scores, labels_of(scores)
    if target in LATER:
        raise BadInputError(f"target {target} is not implemented yet; it comes with {LATER[target]}")
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
