"""Test helpers for bnn_flow.data: tiny data sets written in each genuine on-disk format, and isolation.

Every writer returns the arrays it wrote, so tests can check that the loaders give back exactly them.
"""

from __future__ import annotations

import csv
import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bnn_flow.data import paths

REPO_ROOT = Path(__file__).resolve().parents[1]
Arrays = tuple[np.ndarray, np.ndarray]


def isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point HOME and the user cache (~/.cache/bnn-flow), $BNN_FLOW_DATA and /usr/share/datasets into tmp_path.

    Returns the fake system data folder (not created). Nothing a test does then writes outside tmp_path.
    """
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.delenv(paths.ENV_VAR, raising=False)
    system = tmp_path / "usr-share-datasets"
    monkeypatch.setattr(paths, "SYSTEM_DATA_DIR", system)
    return system


def shared_data_dir() -> Path | None:
    """$BNN_FLOW_DATA if set and existing, else ../shared/data beside the checkout, else None."""
    env = os.environ.get(paths.ENV_VAR, "").strip()
    for candidate in ([Path(env)] if env else []) + [REPO_ROOT.parent / "shared" / "data"]:
        if candidate.is_dir():
            return candidate
    return None


# ---------------------------------------------------------------- IDX (MNIST, Fashion-MNIST)


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: 0, 0, type 0x08, ndim, big-endian dims, data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def write_mnist(
    folder: Path, seed: int = 0, n_train: int = 12, n_test: int = 7, compress: bool = True
) -> dict[str, Arrays]:
    """The four MNIST files (28x28 images, labels 0..9) under `folder`; returns {split: (NHWC, labels)}."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n, prefix in (("train", n_train, "train"), ("test", n_test, "t10k")):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        suffix = ".gz" if compress else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress)
        out[split] = (images[..., None], labels.astype(np.int64))
    return out


# ---------------------------------------------------------------- CIFAR-10 python batches


def _py2_style_pickle(obj: dict) -> bytes:
    """Protocol 2 (the originals' protocol) with bytes keys, as the originals read with encoding='bytes'."""
    return pickle.dumps(obj, protocol=2)


def write_cifar(folder: Path, seed: int = 0, rows: int = 6, meta: bool = True) -> dict[str, Arrays]:
    """data_batch_1..5, test_batch (+ batches.meta), `rows` images each; returns {split: (NHWC, labels)}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out: dict[str, list[Arrays]] = {"train": [], "test": []}
    names = [("train", f"data_batch_{i}") for i in range(1, 6)] + [("test", "test_batch")]
    for split, name in names:
        data = rng.integers(0, 256, (rows, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, rows)]
        (folder / name).write_bytes(
            _py2_style_pickle({b"batch_label": name.encode(), b"labels": labels, b"data": data})
        )
        nhwc = data.reshape(rows, 3, 32, 32).transpose(0, 2, 3, 1)
        out[split].append((nhwc, np.array(labels, dtype=np.int64)))
    if meta:
        label_names = [
            s.encode()
            for s in (
                "airplane",
                "automobile",
                "bird",
                "cat",
                "deer",
                "dog",
                "frog",
                "horse",
                "ship",
                "truck",
            )
        ]
        (folder / "batches.meta").write_bytes(
            _py2_style_pickle({b"num_cases_per_batch": rows, b"label_names": label_names, b"num_vis": 3072})
        )
    return {k: (np.concatenate([a for a, _ in v]), np.concatenate([b for _, b in v])) for k, v in out.items()}


# ---------------------------------------------------------------- GTSRB


def _sign(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def _gtsrb_specs(seed: int, n: int) -> list[tuple[np.ndarray, tuple[int, int, int, int], int]]:
    """`n` random (image, ROI inclusive (x1, y1, x2, y2), class) with an 8x8 ROI inside a bigger image."""
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(n):
        w, h = int(rng.integers(12, 20)), int(rng.integers(12, 20))
        x1, y1 = int(rng.integers(0, w - 8)), int(rng.integers(0, h - 8))
        specs.append((_sign(rng, w, h), (x1, y1, x1 + 7, y1 + 7), int((i * 7) % 43)))
    return specs


def write_gtsrb_kaggle(folder: Path, seed: int = 0, n_train: int = 5, n_test: int = 4) -> dict[str, list]:
    """Train.csv/Test.csv + PNGs; returns {split: [(image, roi, label), ...]} in CSV order."""
    header = ["Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId", "Path"]
    out = {}
    for split, n, s in (("train", n_train, seed), ("test", n_test, seed + 1)):
        specs = _gtsrb_specs(s, n)
        rows = []
        for i, (img, roi, label) in enumerate(specs):
            rel = f"Train/{label}/{label:05d}_00000_{i:05d}.png" if split == "train" else f"Test/{i:05d}.png"
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(folder / rel)
            rows.append([img.shape[1], img.shape[0], *roi, label, rel])
        with (folder / ("Train.csv" if split == "train" else "Test.csv")).open("w", newline="") as f:
            csv.writer(f).writerows([header, *rows])
        out[split] = specs
    return out


def write_gtsrb_official(
    folder: Path,
    seed: int = 0,
    train_dir: str = "GTSRB/Final_Training/Images",
    n_train: int = 6,
    n_test: int = 4,
) -> dict[str, list]:
    """The official PPM layout with ';' CSVs; returns {split: [(image, roi, label), ...]} in load order."""
    header = ["Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId"]
    specs = sorted(_gtsrb_specs(seed, n_train), key=lambda s: s[2])  # loaded class folder by class folder
    by_class: dict[int, list] = {}
    for spec in specs:
        by_class.setdefault(spec[2], []).append(spec)
    for label, items in by_class.items():
        class_dir = folder / train_dir / f"{label:05d}"
        class_dir.mkdir(parents=True, exist_ok=True)
        rows = []
        for i, (img, roi, _) in enumerate(items):
            name = f"00000_{i:05d}.ppm"
            Image.fromarray(img).save(class_dir / name)
            rows.append([name, img.shape[1], img.shape[0], *roi, label])
        with (class_dir / f"GT-{label:05d}.csv").open("w", newline="") as f:
            csv.writer(f, delimiter=";").writerows([header, *rows])
    test_specs = _gtsrb_specs(seed + 1, n_test)
    test_dir = folder / "GTSRB" / "Final_Test" / "Images"
    test_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (img, roi, label) in enumerate(test_specs):
        Image.fromarray(img).save(test_dir / f"{i:05d}.ppm")
        rows.append([f"{i:05d}.ppm", img.shape[1], img.shape[0], *roi, label])
    with (folder / "GT-final_test.csv").open("w", newline="") as f:  # where GTSRB_Final_Test_GT.zip puts it
        csv.writer(f, delimiter=";").writerows([header, *rows])
    return {"train": specs, "test": test_specs}


def roi_crop(img: np.ndarray, roi: tuple[int, int, int, int]) -> np.ndarray:
    """The ROI of an HWC image with inclusive X2/Y2, by plain slicing."""
    x1, y1, x2, y2 = roi
    return img[y1 : y2 + 1, x1 : x2 + 1]
