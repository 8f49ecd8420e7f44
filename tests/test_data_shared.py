"""Real data in $BNN_FLOW_DATA or ../shared/data (skipped where absent): counts, known labels, speed."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

import bnn_flow.data as data

try:  # tests/ may or may not be a package
    from tests import data_fixtures as fx
except ImportError:  # pragma: no cover
    import data_fixtures as fx

SHARED = fx.shared_data_dir()


def _need(folder: str) -> Path:
    if SHARED is None or not (SHARED / folder).is_dir():
        pytest.skip(f"no shared {folder} data (set $BNN_FLOW_DATA or provide ../shared/data)")
    return SHARED


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fx.isolate(monkeypatch, tmp_path)  # the GTSRB decode cache lands in tmp_path, not in ~/.cache


def test_mnist_counts_and_test_histogram() -> None:
    root = _need("mnist")
    start = time.perf_counter()
    x_train, y_train = data.load_dataset("mnist", "train", root, download=False)
    elapsed = time.perf_counter() - start
    x_test, y_test = data.load_dataset("mnist", "test", root, download=False)
    assert x_train.shape == (60000, 28, 28, 1) and x_test.shape == (10000, 28, 28, 1)
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert y_train[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]
    assert elapsed < 2.0, f"loading MNIST train took {elapsed:.2f} s"


def test_cifar10_counts_and_first_labels() -> None:
    root = _need("cifar10")
    start = time.perf_counter()
    x_train, y_train = data.load_dataset("cifar10", "train", root, download=False)
    elapsed = time.perf_counter() - start
    x_test, y_test = data.load_dataset("cifar10", "test", root, download=False)
    assert x_train.shape == (50000, 32, 32, 3) and x_test.shape == (10000, 32, 32, 3)
    assert y_train[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert x_train[0, 0, :3, 0].tolist() == [59, 43, 50]  # red channel, first row (shared README)
    assert x_test[0, 0, :9, 0].tolist() == [158, 159, 165, 166, 160, 156, 162, 159, 158]
    assert elapsed < 5.0, f"loading CIFAR-10 train took {elapsed:.2f} s"


def test_gtsrb_subset_counts() -> None:
    root = _need("gtsrb")
    x_train, y_train = data.load_dataset("gtsrb", "train", root, download=False)
    x_test, y_test = data.load_dataset("gtsrb", "test", root, download=False)
    assert x_train.shape == (215, 32, 32, 3) and x_test.shape == (500, 32, 32, 3)
    assert np.bincount(y_train, minlength=43).tolist() == [5] * 43
    assert len(np.unique(y_test)) == 42 and y_test[:2].tolist() == [16, 1]
    again = data.load_dataset("gtsrb", "test", root, download=False)  # from the decode cache
    np.testing.assert_array_equal(again[0], x_test)


def test_find_dataset_on_shared() -> None:
    root = _need("mnist")
    assert data.find_dataset("mnist", root) == root / "mnist"
