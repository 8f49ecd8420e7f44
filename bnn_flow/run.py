"""`bnn-flow run BUILD --target T`: execute a compiled build on one target, DESIGN.md §7 input/output.

X.npy holds float32 N,C,H,W images scaled to [0, 1] exactly as MODEL.onnx takes them; the host applies
the model's input quantization, runs the target and the classifier head. Y.npz holds `scores`
(float32, N x classes, after the head) and `labels` (int64, N). Targets come from the registry
(bnn_flow/backends/registry.py): integer targets return the graph's integer output and the host applies
the head; float targets return class scores.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from bnn_flow.backends import registry
from bnn_flow.backends.base import Backend
from bnn_flow.build import Build, as_build
from bnn_flow.conventions import acc_to_dot
from bnn_flow.errors import BadInputError, MissingToolError
from bnn_flow.fileio import write_bytes_atomic
from bnn_flow.head import apply_head, labels_of


def usable(backend: Backend, build: Build) -> Backend:
    """The back-end, after checking it can run here and can run this build; one-line errors."""
    reason = backend.available()
    if reason:
        raise MissingToolError(f"target {backend.name} cannot run here: {reason}")
    reason = backend.unsupported(build)
    if reason:
        raise BadInputError(f"target {backend.name} cannot run {build}: {reason}")
    return backend


def run_integer(build: Build | str | Path, target: str, x: np.ndarray) -> np.ndarray:
    """The graph's integer output (N x classes int64) of integer target `target` on images x."""
    build = as_build(build)
    backend = usable(registry.target(target), build)
    if backend.kind != "integer":
        raise BadInputError(f"target {target} is a {backend.kind} target: it has no integer output")
    q = build.input_spec().apply(x)
    return np.asarray(backend.run_integer(build, q), dtype=np.int64)


def head_scores(build: Build | Path, acc: np.ndarray) -> np.ndarray:
    """The host-side head on a back-end's integer output (head.json: acc -> dot -> scores)."""
    build = as_build(build)
    head = build.head()
    return apply_head(head, acc_to_dot(acc, head))


def run_target(build: Build | str | Path, target: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scores float32 N x classes, labels int64 N) of `target` on images x (float32 NCHW in [0, 1])."""
    build = as_build(build)
    backend = usable(registry.target(target), build)
    if backend.kind == "integer":
        scores = head_scores(build, run_integer(build, target, x))
    else:
        scores = np.asarray(backend.run_scores(build, x), dtype=np.float32)
    return scores, labels_of(scores)


MAX_INPUT_BYTES = 1 << 32  # 4 GiB of float32 images: refuse a larger (or lying) header before reading it


def _load_array(path: Path) -> np.ndarray:
    """The array of an .npy file, or of an .npz holding one array (or one named x / images)."""
    try:
        data = np.load(path, allow_pickle=False, mmap_mode=None if path.suffix == ".npz" else "r")
    except (ValueError, OSError, EOFError) as e:
        raise BadInputError(f"{path} is not a readable .npy/.npz file ({str(e).splitlines()[0]})") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            names = [n for n in ("x", "images") if n in data.files] or data.files
            if len(names) != 1:
                raise BadInputError(f"{path}: an .npz input holds one array (or one named x or images); it holds "
                                    f"{', '.join(data.files) or 'none'}")
            try:
                return data[names[0]]
            except (ValueError, OSError, EOFError) as e:
                raise BadInputError(f"{path}: array {names[0]} is not readable ({e})") from None
    return data


def read_input(path: Path, expected: list[int] | None) -> np.ndarray:
    """Load X.npy (or .npz) and check it is what the model takes (N images of the model's per-image shape:
    C,H,W for images, or the model's own shape, e.g. K features); one-line errors name the file."""
    if not path.is_file():
        raise BadInputError(f"input {path} not found")
    x = _load_array(path)
    per_image = "x".join(map(str, expected)) if expected is not None else "C,H,W"
    if not np.issubdtype(x.dtype, np.floating) or x.ndim < 2:
        raise BadInputError(f"{path}: expected float32 N x {per_image} images in [0, 1], got {x.dtype} {x.shape}")
    if x.nbytes > MAX_INPUT_BYTES:
        raise BadInputError(f"{path}: {x.nbytes / 2**30:.1f} GiB of images at once: give at most 4 GiB per call")
    if expected is not None and list(x.shape[1:]) != list(expected):
        raise BadInputError(f"{path}: images are {list(x.shape[1:])} but the model takes {list(expected)} per image")
    if len(x) == 0:
        raise BadInputError(f"{path} holds no images (N = 0)")
    x = np.asarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1:
        raise BadInputError(f"{path}: pixel values must be finite and in [0, 1] (pixel/255)")
    return x


def write_output(path: Path, scores: np.ndarray, labels: np.ndarray) -> None:
    """Y.npz: scores (float32 N x classes, finite) and labels (int64 N), written atomically."""
    if not np.all(np.isfinite(scores)):
        raise BadInputError("the head produced non-finite scores: head.json holds non-finite numbers; recompile")
    buf = io.BytesIO()
    np.savez(buf, scores=scores.astype(np.float32), labels=labels.astype(np.int64))
    write_bytes_atomic(path, buf.getvalue())
