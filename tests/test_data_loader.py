"""bnn_flow.data.loader: batch format, determinism per (seed, epoch), resume, DDP shards, augmentation."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from bnn_flow.data import loader
from bnn_flow.data.loader import ArrayLoader, default_augment, make_loaders
from bnn_flow.errors import BadInputError

try:  # tests/ may or may not be a package
    from tests import data_fixtures as fx
except ImportError:  # pragma: no cover
    import data_fixtures as fx


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fx.isolate(monkeypatch, tmp_path)


def _indexed(n: int, size: int = 8, channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Image i is random but its first pixel encodes i (mod 256), its label is i, for tracing samples."""
    images = np.random.default_rng(0).integers(0, 256, (n, size, size, channels), dtype=np.uint8)
    return images, np.arange(n, dtype=np.int64)


def _epoch(ld: ArrayLoader, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    ld.set_epoch(epoch)
    return list(ld)


def _same(a: list, b: list) -> bool:
    if len(a) != len(b):
        return False
    return all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b, strict=True))


def test_batches_are_pixels_over_255_in_nchw() -> None:
    images, labels = _indexed(10, size=5, channels=3)
    batches = list(ArrayLoader(images, labels, 4, shuffle=False, augment=None, seed=0))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    x, y = batches[0]
    assert (
        x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape == (4, 3, 5, 5) and x.is_contiguous()
    )
    want = images[:4].transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
    assert np.array_equal(x.numpy(), want)
    assert y.tolist() == [0, 1, 2, 3]


def test_len_and_drop_last() -> None:
    images, labels = _indexed(10)
    assert len(ArrayLoader(images, labels, 4, shuffle=True, augment=None, seed=0)) == 3
    ld = ArrayLoader(images, labels, 4, shuffle=True, augment=None, seed=0, drop_last=True)
    assert len(ld) == 2 and [len(y) for _, y in ld] == [4, 4]


@pytest.mark.parametrize("augment", [None, "crop", "crop-flip"])
def test_deterministic_per_seed_and_epoch_and_resumable(augment: str | None) -> None:
    images, labels = _indexed(50, size=28)

    def make(seed: int = 3) -> ArrayLoader:
        return ArrayLoader(images, labels, 16, shuffle=True, augment=augment, seed=seed)

    a = make()
    run = [_epoch(a, e) for e in range(3)]
    resumed = make()
    assert _same(_epoch(resumed, 2), run[2])  # a fresh process resuming at epoch 2
    assert _same(_epoch(make(), 1), run[1])
    assert not _same(run[0], run[1])  # each epoch differs
    assert not _same(_epoch(make(seed=4), 0), run[0])  # and each seed
    for batches in run:
        assert sorted(torch.cat([y for _, y in batches]).tolist()) == list(range(50))  # a permutation


@pytest.mark.parametrize("augment", [None, "crop-flip"])
@pytest.mark.parametrize("n, world", [(12, 3), (10, 4), (3, 4)])
def test_ddp_shards_partition_the_single_process_epoch(n: int, world: int, augment: str | None) -> None:
    images, labels = _indexed(n, size=32, channels=3)

    def make(rank: int, ws: int) -> ArrayLoader:
        return ArrayLoader(images, labels, 2, shuffle=True, augment=augment, seed=7, rank=rank, world_size=ws)

    shards = []
    for rank in range(world):
        x, y = zip(*_epoch(make(rank, world), 5), strict=True)
        shards.append((torch.cat(x), torch.cat(y)))
    per_rank = -(-n // world)
    assert all(len(y) == per_rank for _, y in shards) and all(len(make(r, world)) == len(make(0, world))
                                                               for r in range(world))  # fmt: skip
    single = make(0, 1)
    single_x, single_y = (torch.cat(t) for t in zip(*_epoch(single, 5), strict=True))
    for pos in range(per_rank * world):  # position p of the epoch belongs to rank p % world
        x, y = shards[pos % world]
        assert y[pos // world] == single_y[pos % n]
        if pos < n:
            assert torch.equal(x[pos // world], single_x[pos])  # same sample, same augmentation
    if n % world == 0:
        ids = [set(y.tolist()) for _, y in shards]
        assert all(not ids[i] & ids[j] for i in range(world) for j in range(i + 1, world))  # disjoint
    assert set(torch.cat([y for _, y in shards]).tolist()) == set(range(n))  # complete


def _naive_crop(img: np.ndarray, oy: int, ox: int, flip: bool, pad: int) -> np.ndarray:
    h, w, _ = img.shape
    padded = np.pad(img, ((pad, pad), (pad, pad), (0, 0)))
    out = padded[oy : oy + h, ox : ox + w]
    return out[:, ::-1] if flip else out


@pytest.mark.parametrize("size, channels", [(28, 1), (32, 3), (9, 2)])
def test_random_crop_flip_matches_naive(size: int, channels: int) -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (20, size, size, channels), dtype=np.uint8)
    pad = 3
    oy, ox = rng.integers(0, 2 * pad + 1, 20), rng.integers(0, 2 * pad + 1, 20)
    flip = rng.integers(0, 2, 20).astype(bool)
    for fl in (flip, None):
        got = loader.random_crop_flip(images, oy, ox, fl, pad)
        for i in range(20):
            want = _naive_crop(images[i], oy[i], ox[i], bool(fl[i]) if fl is not None else False, pad)
            np.testing.assert_array_equal(got[i], want)


@pytest.mark.parametrize("augment, size, pad", [("crop", 28, 2), ("crop", 32, 4), ("crop", 100, 4),
                                                ("crop-flip", 32, 4), ("crop-flip", 28, 4)])  # fmt: skip
def test_augment_shapes_and_padding(augment: str, size: int, pad: int) -> None:
    assert loader.crop_padding(augment, size) == pad
    images = np.full((6, size, size, 3), 200, dtype=np.uint8)
    x, _ = next(iter(ArrayLoader(images, np.zeros(6, np.int64), 6, shuffle=True, augment=augment, seed=0)))
    assert x.shape == (6, 3, size, size)
    zero_rows = (x == 0).all(dim=(1, 3)).sum(dim=1)  # zero-padded rows shifted in by the crop
    assert int(zero_rows.max()) <= pad
    assert set(np.unique(x.numpy()).tolist()) <= {0.0, np.float32(200) / np.float32(255)}


def test_crop_flip_actually_flips_and_crop_does_not() -> None:
    images = np.tile(np.arange(32, dtype=np.uint8)[None, None, :, None], (64, 32, 1, 3))  # columns 0..31
    for augment, expect_flip in (("crop-flip", True), ("crop", False)):
        x, _ = next(
            iter(ArrayLoader(images, np.zeros(64, np.int64), 64, shuffle=False, augment=augment, seed=1))
        )
        row = x[:, 0, 16, :]  # a middle row: values increase left to right unless flipped
        decreasing = (row[:, 10] > row[:, 20]).any().item()
        assert decreasing == expect_flip


def test_default_augment() -> None:
    assert default_augment("cifar10") == "crop-flip"
    assert default_augment("gtsrb") == default_augment("cnpb") == "crop"
    assert default_augment("mnist") is default_augment("fashion-mnist") is default_augment("mnist-5k") is None
    with pytest.raises(BadInputError, match="unknown data set"):
        default_augment("imagenet")


def test_bad_arguments() -> None:
    images, labels = _indexed(4)
    with pytest.raises(BadInputError, match="augmentation"):
        ArrayLoader(images, labels, 2, shuffle=True, augment="mixup", seed=0)
    with pytest.raises(BadInputError, match="rank"):
        ArrayLoader(images, labels, 2, shuffle=True, augment=None, seed=0, rank=2, world_size=2)
    with pytest.raises(BadInputError, match="uint8"):
        ArrayLoader(images.astype(np.float32), labels, 2, shuffle=True, augment=None, seed=0)
    with pytest.raises(BadInputError, match="batch_size"):
        ArrayLoader(images, labels, 0, shuffle=True, augment=None, seed=0)


def test_make_loaders_mnist_5k_with_limit() -> None:
    train, test, info = make_loaders("mnist-5k", 100, limit_train=250, seed=1)
    assert info.name == "mnist-5k" and info.image_size == 28 and info.channels == 1
    # the training loader drops the short last batch (a batch of one would break BatchNorm)
    assert train.dataset_size == 250 and len(train) == 2 and train.augment is None and train.shuffle
    assert test.dataset_size == 1000 and len(test) == 10 and not test.shuffle
    x, y = next(iter(test))
    assert x.shape == (100, 1, 28, 28)
    small, large = loader.limit_indices(4000, 100), loader.limit_indices(4000, 250)
    assert set(small.tolist()) < set(large.tolist())  # nested subsets
    np.testing.assert_array_equal(small, loader.limit_indices(4000, 100))  # deterministic
    train2, _, _ = make_loaders("mnist-5k", 64, world_size=2, rank=1, augment="crop")
    assert train2.augment == "crop" and train2.num_samples == 2000


def test_make_loaders_gtsrb_image_size(tmp_path: Path) -> None:
    fx.write_gtsrb_kaggle(tmp_path / "gtsrb")
    train, test, info = make_loaders("gtsrb", 4, root=tmp_path, image_size=16)
    assert info.image_size == 16 and train.augment == "crop"
    x, _ = next(iter(train))
    assert x.shape == (4, 3, 16, 16)


def test_epoch_speed_mnist_sized() -> None:
    images = np.random.default_rng(0).integers(0, 256, (60000, 28, 28, 1), dtype=np.uint8)
    ld = ArrayLoader(images, np.zeros(60000, np.int64), 256, shuffle=True, augment=None, seed=0)
    start = time.perf_counter()
    n = sum(len(y) for _, y in ld)
    elapsed = time.perf_counter() - start
    assert n == 60000
    assert elapsed < 1.0, f"an MNIST-sized epoch took {elapsed:.2f} s"
