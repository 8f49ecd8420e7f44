"""GTSRB (German Traffic Sign Recognition Benchmark, 43 classes) in the Kaggle or the official layout.

Kaggle layout (what shared/data/gtsrb holds, possibly a subset: we load exactly the rows the CSVs list)::

    Train.csv, Test.csv   Width,Height,Roi.X1,Roi.Y1,Roi.X2,Roi.Y2,ClassId,Path  (Path relative to folder)
    Train/<ClassId>/*.png, Test/*.png

Official layout (also what torchvision's download unpacks to, optionally under a ``GTSRB/`` folder)::

    Final_Training/Images/000NN/*.ppm + GT-000NN.csv   (torchvision's "fixed" zip: Training/000NN/)
    Final_Test/Images/*.ppm + GT-final_test.csv        (the CSV with ClassId, from GTSRB_Final_Test_GT.zip)
    CSVs are ';'-separated: Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId

Each image is cropped to its region of interest (X2/Y2 inclusive, as in the GTSRB documentation) and
resized to image_size x image_size with PIL bilinear. Decoding tens of thousands of images takes a
while, so the result can be cached as .npz in a caller-given folder, keyed by split, size and the
sources' mtimes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from bnn_flow.errors import BadInputError
from bnn_flow.fileio import atomic_open

log = logging.getLogger(__name__)

NUM_CLASSES = 43
DEFAULT_IMAGE_SIZE = 32
_CACHE_VERSION = 1  # bump when decoding changes, so old cache files are not reused
_THREADS_FROM = 64  # below this many images a thread pool costs more than it saves
_TEST_GT = "GT-final_test.csv"

CLASS_NAMES: tuple[str, ...] = (
    "Speed limit (20km/h)", "Speed limit (30km/h)", "Speed limit (50km/h)", "Speed limit (60km/h)",
    "Speed limit (70km/h)", "Speed limit (80km/h)", "End of speed limit (80km/h)",
    "Speed limit (100km/h)", "Speed limit (120km/h)", "No passing",
    "No passing for vehicles over 3.5 metric tons", "Right-of-way at the next intersection",
    "Priority road", "Yield", "Stop", "No vehicles", "Vehicles over 3.5 metric tons prohibited",
    "No entry", "General caution", "Dangerous curve to the left", "Dangerous curve to the right",
    "Double curve", "Bumpy road", "Slippery road", "Road narrows on the right", "Road work",
    "Traffic signals", "Pedestrians", "Children crossing", "Bicycles crossing", "Beware of ice/snow",
    "Wild animals crossing", "End of all speed and passing limits", "Turn right ahead",
    "Turn left ahead", "Ahead only", "Go straight or right", "Go straight or left", "Keep right",
    "Keep left", "Roundabout mandatory", "End of no passing",
    "End of no passing by vehicles over 3.5 metric tons",
)  # fmt: skip


@dataclass(frozen=True)
class Sample:
    """One image to decode: its file, label, ROI (x1, y1, x2, y2 inclusive) and declared size."""

    path: Path
    label: int
    roi: tuple[int, int, int, int] | None
    size: tuple[int, int] | None  # (width, height) from the CSV, checked against the image


def expected_files(split: str) -> list[str]:
    """What one split needs, in either layout, for error messages."""
    if split == "train":
        return ["Train.csv + Train/<class>/*.png (Kaggle)", "Final_Training/Images/000NN/*.ppm (official)"]
    return ["Test.csv + Test/*.png (Kaggle)", f"Final_Test/Images/*.ppm + {_TEST_GT} (official)"]


def _bases(folder: Path) -> list[Path]:
    # The official zips unpack to a GTSRB/ folder; accept the folder itself too.
    return [folder, folder / "GTSRB"]


def _kaggle_csv(folder: Path, split: str) -> Path | None:
    path = folder / ("Train.csv" if split == "train" else "Test.csv")
    return path if path.is_file() else None


def _official_train_dir(folder: Path) -> Path | None:
    for base in _bases(folder):
        for sub in ("Final_Training/Images", "Training"):
            if (base / sub).is_dir():
                return base / sub
    return None


def _official_test(folder: Path) -> tuple[Path, Path] | None:
    """(images folder, ground-truth CSV with ClassId) of the official test set, if both exist."""
    for base in _bases(folder):
        images = base / "Final_Test" / "Images"
        if not images.is_dir():
            continue
        for gt in (images / _TEST_GT, images.parent / _TEST_GT, base / _TEST_GT, folder / _TEST_GT):
            if gt.is_file():
                return images, gt
    return None


def is_present(folder: Path, split: str) -> bool:
    """True when `folder` holds `split` in the Kaggle or the official layout."""
    if _kaggle_csv(folder, split) is not None:
        return True
    return (_official_train_dir(folder) if split == "train" else _official_test(folder)) is not None


def _read_rows(path: Path, delimiter: str) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            return [
                {(k or "").strip(): (v or "").strip() for k, v in row.items()}
                for row in csv.DictReader(f, delimiter=delimiter, skipinitialspace=True)
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BadInputError(f"{path}: unreadable CSV ({exc})") from None


def _int(row: dict[str, str], key: str, path: Path, line: int) -> int:
    try:
        return int(row[key])
    except (KeyError, ValueError):
        raise BadInputError(f"{path}, line {line}: missing or non-integer column {key!r}") from None


def _sample(row: dict[str, str], image: Path, csv_path: Path, line: int) -> Sample:
    label = _int(row, "ClassId", csv_path, line)
    if not 0 <= label < NUM_CLASSES:
        raise BadInputError(f"{csv_path}, line {line}: ClassId {label} is outside 0..{NUM_CLASSES - 1}")
    x1, y1, x2, y2 = (_int(row, k, csv_path, line) for k in ("Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2"))
    size = None
    if row.get("Width") and row.get("Height"):
        size = (_int(row, "Width", csv_path, line), _int(row, "Height", csv_path, line))
    return Sample(image, label, (x1, y1, x2, y2), size)


def _csv_samples(csv_path: Path, image_dir: Path, delimiter: str, path_key: str) -> list[Sample]:
    """Samples listed in one CSV; line numbers count the header as line 1."""
    samples = []
    for line, row in enumerate(_read_rows(csv_path, delimiter), start=2):
        name = row.get(path_key, "")
        if not name:
            raise BadInputError(f"{csv_path}, line {line}: missing column {path_key!r} (the image file)")
        samples.append(_sample(row, image_dir / name, csv_path, line))
    return samples


def _official_train_samples(train_dir: Path) -> list[Sample]:
    samples: list[Sample] = []
    for class_dir in sorted(p for p in train_dir.iterdir() if p.is_dir() and p.name.isdigit()):
        gt = class_dir / f"GT-{class_dir.name}.csv"
        if gt.is_file():
            samples += _csv_samples(gt, class_dir, ";", "Filename")
        else:  # no annotation file: whole images, label from the folder name
            label = int(class_dir.name)
            samples += [Sample(p, label, None, None) for p in sorted(class_dir.glob("*.ppm"))]
    return samples


def list_samples(folder: Path, split: str) -> tuple[list[Sample], list[Path]]:
    """The samples of `split` and the source files/folders whose mtimes key the decode cache."""
    kaggle = _kaggle_csv(folder, split)
    if kaggle is not None:
        samples = _csv_samples(kaggle, folder, ",", "Path")
        return samples, [kaggle, folder / ("Train" if split == "train" else "Test")]
    if split == "train":
        train_dir = _official_train_dir(folder)
        if train_dir is not None:
            return _official_train_samples(train_dir), [train_dir, *sorted(train_dir.glob("*/GT-*.csv"))]
    else:
        test = _official_test(folder)
        if test is not None:
            images, gt = test
            return _csv_samples(gt, images, ";", "Filename"), [gt, images]
    expected = " or ".join(expected_files(split))
    raise BadInputError(f"{folder}: no GTSRB {split} split found; expected {expected}")


def decode_sample(sample: Sample, image_size: int) -> np.ndarray:
    """One image, cropped to its ROI and resized to (image_size, image_size, 3) uint8."""
    try:
        with Image.open(sample.path) as im:
            rgb = im.convert("RGB")
    except FileNotFoundError:
        raise BadInputError(f"{sample.path}: listed in the GTSRB CSV but missing") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise BadInputError(f"{sample.path}: damaged or unreadable image ({exc})") from None
    if sample.size is not None and rgb.size != sample.size:
        raise BadInputError(
            f"{sample.path}: image is {rgb.size[0]}x{rgb.size[1]}, its CSV row says "
            f"{sample.size[0]}x{sample.size[1]}; the image and CSV do not belong together"
        )
    if sample.roi is not None:
        # Clamp to the image: an annotation one pixel past the border should not stop training.
        x1, y1 = max(sample.roi[0], 0), max(sample.roi[1], 0)
        x2, y2 = min(sample.roi[2], rgb.width - 1), min(sample.roi[3], rgb.height - 1)
        if x1 > x2 or y1 > y2:
            raise BadInputError(
                f"{sample.path}: ROI {sample.roi} is empty or outside the {rgb.width}x{rgb.height} image"
            )
        rgb = rgb.crop((x1, y1, x2 + 1, y2 + 1))  # X2/Y2 are inclusive; PIL's box excludes its right/bottom
    return np.asarray(rgb.resize((image_size, image_size), Image.Resampling.BILINEAR), dtype=np.uint8)


def decode_samples(samples: list[Sample], image_size: int) -> np.ndarray:
    """All samples as one (N, S, S, 3) uint8 array, in order; PIL decodes release the GIL, so threads help."""
    out = np.empty((len(samples), image_size, image_size, 3), dtype=np.uint8)
    if len(samples) < _THREADS_FROM:
        for i, s in enumerate(samples):
            out[i] = decode_sample(s, image_size)
        return out
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for i, img in enumerate(pool.map(lambda s: decode_sample(s, image_size), samples, chunksize=64)):
            out[i] = img
    return out


def _cache_path(cache_dir: Path, folder: Path, split: str, image_size: int, sources: list[Path]) -> Path:
    stamp = []
    for p in sources:
        st = p.stat()
        stamp.append([str(p.resolve()), st.st_mtime_ns, st.st_size])
    key = json.dumps([_CACHE_VERSION, str(folder.resolve()), split, image_size, stamp])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir / f"gtsrb-{split}-{image_size}px-{digest}.npz"


def _read_cache(path: Path, image_size: int) -> tuple[np.ndarray, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"]
    except Exception as exc:  # our own cache: a damaged one is rebuilt, not reported
        log.warning("ignoring unreadable GTSRB cache %s (%s)", path, exc)
        return None
    ok = images.dtype == np.uint8 and images.shape[1:] == (image_size, image_size, 3)
    return (images, labels.astype(np.int64)) if ok and labels.shape == images.shape[:1] else None


def _write_cache(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    try:
        with atomic_open(path, "wb") as f:
            np.savez(f, images=images, labels=labels)
    except OSError as exc:  # a read-only cache must not stop training
        log.warning("could not write GTSRB cache %s (%s)", path, exc)


def load_gtsrb(
    folder: Path,
    split: str,
    image_size: int = DEFAULT_IMAGE_SIZE,
    cache_dir: Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, S, S, 3) uint8 and labels (N,) int64 of `split`, in CSV order.

    With `cache_dir`, decoded arrays are read from / written to an .npz there.
    """
    if image_size < 1:
        raise BadInputError(f"GTSRB image_size must be a positive integer, got {image_size}")
    samples, sources = list_samples(folder, split)
    if not samples:
        raise BadInputError(f"{folder}: the GTSRB {split} split lists no images")
    cache = _cache_path(cache_dir, folder, split, image_size, sources) if cache_dir is not None else None
    hit = _read_cache(cache, image_size) if cache is not None else None
    if hit is not None and len(hit[1]) == len(samples):
        return hit
    images = decode_samples(samples, image_size)
    labels = np.array([s.label for s in samples], dtype=np.int64)
    if cache is not None:
        _write_cache(cache, images, labels)
    return images, labels
