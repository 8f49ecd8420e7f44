"""CNPB-synth: a deterministic synthetic stand-in for the private CNPB data set.

The seed paper's CNPB ("Code Number on Product Boxes") holds 100x100 photos of the printed codes 'F06',
'K11', 'S19' and 'V22' on product boxes (16,000 train / 4,000 test). It is not public, so this module
*generates* look-alike images instead and calls them "CNPB-synth" everywhere: numbers measured on it are
not numbers on CNPB. Each image is one of the four codes printed on a box-like surface (kraft or printed
carton, edges, corners, flaps, tape, labels) in a random font or ink-jet dots, rotated, perspective-warped,
partly worn or occluded, among distractor print, under uneven light, blurred, noisy and maybe JPEG'd.

Every image is a pure function of (seed, index), and so is its label (classes come in shuffled blocks of
four), so any prefix, chunking or worker count gives byte-identical arrays (for the same numpy/Pillow
builds). See docs/cnpb-synth.md for the parameters and a sample grid. The knobs are `CnpbSynthParams`
(defined in `cnpb_params`), the scene is `cnpb_render` and its drawing primitives `cnpb_draw`.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import warnings
import zipfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from multiprocessing.context import BaseContext
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bnn_flow.data import cnpb_draw, cnpb_render
from bnn_flow.data.cnpb_params import CnpbSynthParams  # re-exported: cnpb.CnpbSynthParams is public
from bnn_flow.errors import BadInputError
from bnn_flow.fileio import atomic_open, write_bytes_atomic

CNPB_CLASSES = ("F06", "K11", "S19", "V22")
GENERATOR_VERSION = "1"  # bump whenever the pixels for a given (seed, index) change
TRAIN_SEED = 20_160_001
TEST_SEED = 20_160_002
SAMPLE_SEED = 7
SPLITS = {"train": (16_000, TRAIN_SEED), "test": (4_000, TEST_SEED)}
_LABEL_STREAM = 0x1ABE1  # keeps the label draws independent of the per-image draws


def _check_params(params: CnpbSynthParams) -> None:
    missing = [f for f in params.fonts if not (cnpb_draw.FONT_DIR / f).is_file()]
    if not params.fonts or missing:
        raise BadInputError(f"CNPB-synth fonts {missing or '()'} not found in {cnpb_draw.FONT_DIR}; "
                            "pass CnpbSynthParams(fonts=...) with .ttf names from that folder")
    if params.distractors[0] < 0 or params.distractors[1] < params.distractors[0]:
        raise BadInputError(f"CnpbSynthParams.distractors={params.distractors} must be 0 <= min <= max")


def labels_for(seed: int, start: int, stop: int) -> np.ndarray:
    """Labels of images start..stop-1: each block of 4 indices holds every class once, shuffled."""
    first, last = start // 4, (stop + 3) // 4
    blocks = [np.random.default_rng([seed, _LABEL_STREAM, b]).permutation(4) for b in range(first, last)]
    flat = np.concatenate(blocks) if blocks else np.zeros(0, np.int64)
    return flat[start - 4 * first: stop - 4 * first].astype(np.int64)


def _render_range(seed: int, start: int, stop: int, params: CnpbSynthParams, size: int) -> np.ndarray:
    labels = labels_for(seed, start, stop)
    out = np.empty((stop - start, size, size, 3), np.uint8)
    for k, label in enumerate(labels):
        rng = np.random.default_rng([seed, start + k])  # the image is a function of (seed, index) only
        out[k] = cnpb_render.render_image(rng, CNPB_CLASSES[label], CNPB_CLASSES, params, size)
    return out


def generate(n: int, seed: int, params: CnpbSynthParams = CnpbSynthParams(), image_size: int = 100,  # noqa: B008
             workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Generate n CNPB-synth images: (uint8 [n, image_size, image_size, 3], int64 labels [n]).

    Classes follow CNPB_CLASSES order; every block of 4 consecutive indices holds each class once (so
    n divisible by 4 is exactly balanced). workers > 1 renders chunks in a process pool; the result is
    byte-identical to workers=1.
    """
    if n < 0 or seed < 0 or not 8 <= image_size <= 1024 or workers < 1:
        got = f"n={n}, seed={seed}, image_size={image_size}, workers={workers}"
        raise BadInputError(f"CNPB-synth generate({got}): need n >= 0, seed >= 0, 8 <= image_size <= 1024, "
                            "workers >= 1")
    _check_params(params)
    if workers == 1 or n < 2:
        return _render_range(seed, 0, n, params, image_size), labels_for(seed, 0, n)
    images = np.empty((n, image_size, image_size, 3), np.uint8)  # filled chunk by chunk: no 2x peak
    bounds = [int(b) for b in np.linspace(0, n, min(n, workers * 4) + 1)]
    starts, stops = bounds[:-1], bounds[1:]
    k = len(starts)
    with ProcessPoolExecutor(workers, mp_context=_mp_context()) as pool:
        parts = pool.map(_render_range, [seed] * k, starts, stops, [params] * k, [image_size] * k)
        for start, stop, part in zip(starts, stops, parts, strict=True):
            images[start:stop] = part
    return images, labels_for(seed, 0, n)


def _mp_context() -> BaseContext:
    """fork on Linux: spawn would re-run an unguarded calling script (no `if __name__ == "__main__"`) in
    every worker and crash; the workers only run numpy/PIL code, which is safe after a fork."""
    return get_context("fork" if sys.platform.startswith("linux") else "spawn")


def _params_tag() -> str:
    """Short hash of the default knobs and seeds: a changed default can never reuse an old cache."""
    text = repr((CnpbSynthParams(), SPLITS, cnpb_draw.RENDER_SIZE))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def cache_path(split: str, root: str | os.PathLike | None, image_size: int) -> Path:
    base = Path(root) if root is not None else Path.home() / ".cache" / "bnn-flow"
    return base / "cnpb-synth" / f"cnpb-synth-v{GENERATOR_VERSION}-{_params_tag()}-{split}-{image_size}px.npz"


def _read_cache(path: Path, n: int, seed: int, size: int) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None  # missing or unreadable: regenerate (the write below is atomic)
    if images.shape != (n, size, size, 3) or images.dtype != np.uint8:
        return None
    if not np.array_equal(labels, labels_for(seed, 0, n)):
        return None
    return images, labels.astype(np.int64)


def _default_workers() -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cpus, 8))


def load(split: str, root: str | os.PathLike | None = None,
         image_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The CNPB-synth 'train' (16,000) or 'test' (4,000) split, generated once and cached as .npz.

    The cache lives in <root or ~/.cache/bnn-flow>/cnpb-synth/, named by generator version, a hash of the
    default parameters, split and image size.
    """
    if split not in SPLITS:
        raise BadInputError(f"unknown CNPB-synth split {split!r}; use one of {sorted(SPLITS)}")
    n, seed = SPLITS[split]
    size = cnpb_draw.RENDER_SIZE if image_size is None else int(image_size)
    path = cache_path(split, root, size)
    cached = _read_cache(path, n, seed, size)
    if cached is not None:
        return cached
    images, labels = generate(n, seed, image_size=size, workers=_default_workers())
    try:
        with atomic_open(path, "wb") as f:
            np.savez(f, images=images, labels=labels, version=np.array(GENERATOR_VERSION))
    except OSError as exc:  # a read-only or full cache must not cost the caller the data just generated
        warnings.warn(f"CNPB-synth: could not cache {path} ({exc}); it will be generated again next time",
                      stacklevel=2)
    return images, labels


def find(root: str | os.PathLike | None = None) -> Path | None:
    """The cache folder if both default-size splits of this generator version are cached there, else None.

    (CNPB-synth is generated on demand, so "not found" only means that `load` will generate it first.)
    """
    ok = all(cache_path(split, root, cnpb_draw.RENDER_SIZE).is_file() for split in SPLITS)
    return cache_path("train", root, cnpb_draw.RENDER_SIZE).parent if ok else None


def render_sample_grid(path: str | os.PathLike, n_per_class: int = 8, seed: int = SAMPLE_SEED) -> Path:
    """Write a PNG grid: one row of n_per_class CNPB-synth samples per class, labelled and titled."""
    if n_per_class < 1:
        raise BadInputError(f"render_sample_grid needs n_per_class >= 1, got {n_per_class}")
    images, labels = generate(4 * n_per_class, seed)
    tile, gap, left, top = cnpb_draw.RENDER_SIZE, 4, 56, 30
    grid = Image.new("RGB", (left + n_per_class * (tile + gap), top + 4 * (tile + gap)), "white")
    draw = ImageDraw.Draw(grid)
    font = ImageFont.truetype(str(cnpb_draw.FONT_DIR / "DejaVuSans-Bold.ttf"), 13)
    draw.text((6, 7), "CNPB-synth samples (synthetic; not the private CNPB set)", fill="black", font=font)
    for c, name in enumerate(CNPB_CLASSES):
        y = top + c * (tile + gap)
        draw.text((8, y + tile // 2 - 8), name, fill="black", font=font)
        for j, idx in enumerate(np.flatnonzero(labels == c)):
            grid.paste(Image.fromarray(images[idx]), (left + j * (tile + gap), y))
    buf = io.BytesIO()  # a 256-colour palette keeps the noisy grid under ~250 KB for the docs
    grid = grid.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    grid.save(buf, format="PNG", optimize=True)
    write_bytes_atomic(path, buf.getvalue())
    return Path(path)
