"""MNIST / Fashion-MNIST in the canonical IDX format (``*-idx3-ubyte.gz`` images, ``*-idx1-ubyte.gz`` labels).

IDX layout (LeCun's MNIST page): two zero bytes, a type code (0x08 = unsigned byte), the number of
dimensions, then one big-endian int32 per dimension, then the values row-major. Every field is checked
against the file's length, so a truncated or damaged file gives a clear error naming it.
Files may be gzip-compressed (detected by content, not by name) or plain.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from bnn_flow.errors import BadInputError

IDX_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"
NUM_CLASSES = 10


def expected_files(split: str) -> list[str]:
    """The canonical (gzip) file names one split needs, for error messages and downloads."""
    return [f"{base}.gz" for base in IDX_FILES[split]]


def find_file(folder: Path, base: str) -> Path | None:
    """``base.gz`` if it exists, else the uncompressed ``base``, else None."""
    for name in (f"{base}.gz", base):
        path = folder / name
        if path.is_file():
            return path
    return None


def is_present(folder: Path, split: str) -> bool:
    """True when both files of `split` exist in `folder` (contents are checked only when loading)."""
    return all(find_file(folder, base) is not None for base in IDX_FILES[split])


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise BadInputError(f"{path}: damaged gzip file ({exc}); delete it and download it again") from None


def read_idx(path: Path) -> np.ndarray:
    """Read one unsigned-byte IDX file into an array of the shape its header declares."""
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise BadInputError(f"{path}: not an IDX file (bad magic number); expected an MNIST *-ubyte file")
    if data[2] != _UBYTE:
        raise BadInputError(f"{path}: IDX type code 0x{data[2]:02x} is not supported (only 0x08, ubyte)")
    ndim = data[3]
    header_len = 4 + 4 * ndim
    if ndim == 0 or len(data) < header_len:
        raise BadInputError(f"{path}: truncated IDX header; delete the file and download it again")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    expected = header_len + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise BadInputError(
            f"{path}: IDX header declares shape {dims} ({expected} bytes) but the file holds {len(data)} "
            "bytes; the file is damaged or truncated, delete it and download it again"
        )
    # .copy(): frombuffer over bytes is read-only, and torch.from_numpy warns on read-only arrays.
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(dims).copy()


def load_idx_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W, 1) uint8 and labels (N,) int64 of one split stored in `folder`."""
    image_base, label_base = IDX_FILES[split]
    image_path, label_path = find_file(folder, image_base), find_file(folder, label_base)
    if image_path is None or label_path is None:
        raise BadInputError(f"{folder}: missing {image_base}[.gz] or {label_base}[.gz]")
    images = read_idx(image_path)
    labels = read_idx(label_path)
    if images.ndim != 3:
        raise BadInputError(f"{image_path}: expected a 3-D image file (N, H, W), found shape {images.shape}")
    if labels.ndim != 1:
        raise BadInputError(f"{label_path}: expected a 1-D label file (N,), found shape {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise BadInputError(
            f"{image_path} holds {images.shape[0]} images but {label_path} holds {labels.shape[0]} labels; "
            "the two files do not belong together"
        )
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        raise BadInputError(f"{label_path}: label {int(labels.max())} is outside 0..{NUM_CLASSES - 1}")
    return images[..., np.newaxis], labels.astype(np.int64)
