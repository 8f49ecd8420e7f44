"""CIFAR-10 in the official "python version" layout: ``cifar-10-batches-py/data_batch_1..5, test_batch``.

Each batch is a Python-2 pickle of a dict with ``data`` (uint8, N x 3072: 1024 R, 1024 G, 1024 B values,
row-major) and ``labels`` (N ints in 0..9). We validate structure, not MD5s: the shared copy is rebuilt
without the ``filenames`` key (see shared/data/cifar10/README.md), so its bytes differ from the original.
Unpickling is restricted to the few numpy globals an array needs: a pickle can otherwise run any code.
"""

from __future__ import annotations

import codecs
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from numpy._core import multiarray as _np_multiarray

from bnn_flow.errors import BadInputError

BATCHES_DIR = "cifar-10-batches-py"
SPLIT_FILES: dict[str, tuple[str, ...]] = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}
META_FILE = "batches.meta"
NUM_CLASSES = 10
ROW_BYTES = 3 * 32 * 32

# (module, name) -> object. numpy 1.x pickles name numpy.core; numpy 2 renamed it numpy._core (the old
# name still works but warns), so both map to the current objects directly.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _np_multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _np_multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _np_multiarray.scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # Python 3 writes bytes in protocol-2 pickles as _codecs.encode(str, "latin1"): a batch re-pickled
    # that way (by a user's conversion script) needs it; it only turns a string into bytes.
    ("_codecs", "encode"): codecs.encode,
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can build dicts, lists, strings and numpy arrays, and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch") from None


def expected_files(split: str) -> list[str]:
    """File names one split needs, for error messages."""
    return list(SPLIT_FILES[split])


def is_present(folder: Path, split: str) -> bool:
    """True when every batch file of `split` exists directly in `folder`."""
    return all((folder / name).is_file() for name in SPLIT_FILES[split])


def _unpickle(path: Path) -> dict[str, Any]:
    """Load a batch pickle (py2 str keys read as bytes) and return it with str keys."""
    try:
        obj = _ArrayOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except Exception as exc:  # any unpickling failure means a damaged or foreign file
        raise BadInputError(
            f"{path}: not a readable CIFAR-10 python batch ({type(exc).__name__}: {exc}); "
            "replace it with the file from cifar-10-python.tar.gz"
        ) from None
    if not isinstance(obj, dict):
        raise BadInputError(f"{path}: expected a pickled dict, found {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _rows_per_batch(folder: Path) -> int | None:
    """``num_cases_per_batch`` from batches.meta (10000 for the real data), or None if there is no meta."""
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        return None
    rows = _unpickle(meta_path).get("num_cases_per_batch")
    if not isinstance(rows, int) or rows <= 0:
        raise BadInputError(f"{meta_path}: missing or invalid num_cases_per_batch")
    return rows


def read_batch(path: Path, rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(data (N, 3072) uint8, labels (N,) int64)`` of one batch file.

    `rows` is the expected N (from batches.meta) when known.
    """
    batch = _unpickle(path)
    if "data" not in batch or "labels" not in batch:
        raise BadInputError(f"{path}: CIFAR batch lacks the 'data' or 'labels' key (has {sorted(batch)})")
    data = batch["data"]
    ok = isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
    if not ok or data.shape[1] != ROW_BYTES:
        got = (data.dtype, data.shape) if isinstance(data, np.ndarray) else type(data).__name__
        raise BadInputError(f"{path}: 'data' must be a uint8 array of shape (N, {ROW_BYTES}), found {got}")
    if rows is not None and data.shape[0] != rows:
        raise BadInputError(f"{path}: holds {data.shape[0]} images, batches.meta says {rows} per batch")
    try:
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (TypeError, ValueError):
        raise BadInputError(f"{path}: 'labels' is not a list of integers") from None
    if labels.shape != (data.shape[0],):
        raise BadInputError(f"{path}: {data.shape[0]} images but labels of shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise BadInputError(f"{path}: labels outside 0..{NUM_CLASSES - 1}")
    return data, labels


def load_cifar10(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 NHWC and labels (N,) int64 of one split, batches in file order."""
    rows = _rows_per_batch(folder)
    batches = [read_batch(folder / name, rows) for name in SPLIT_FILES[split]]
    total = sum(d.shape[0] for d, _ in batches)
    images = np.empty((total, 32, 32, 3), dtype=np.uint8)
    start = 0
    for data, _ in batches:
        n = data.shape[0]
        # CHW-planar rows -> NHWC, written straight into the output (one copy, no concatenate).
        images[start : start + n] = data.reshape(n, 3, 32, 32).transpose(0, 2, 3, 1)
        start += n
    labels = np.concatenate([lab for _, lab in batches])
    return images, labels
