"""Drawing primitives for CNPB-synth: palettes, inks, distance fields, fonts, text masks, perspective warp.

The scene (`bnn_flow.data.cnpb_render`) is composed from these. Everything is drawn on a RENDER_SIZE canvas
(text masks at SS times that, for anti-aliased edges). Functions that take a `numpy.random.Generator`
draw from it in a fixed order; the caller's order of calls makes an image a pure function of its seed.

Determinism: pixel maths uses only +, -, *, /, sqrt, floor and clip on arrays (IEEE-exact on every CPU,
unlike numpy's SIMD exp/sin/pow); transcendental values come from Python's `math` on scalars; the
perspective coefficients are computed in closed form in plain Python rather than by LAPACK; PIL's
resampling, text rendering and JPEG codec are deterministic for a given Pillow build.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

RENDER_SIZE = 100  # internal canvas (pixels); the caller's image_size is reached by one final resize
SS = 2  # supersampling of text masks: drawn at SS x, warped, then box-reduced
# matplotlib's bundled fonts, found without importing matplotlib (half a second every command would pay)
FONT_DIR = Path(importlib.util.find_spec("matplotlib").origin).parent / "mpl-data" / "fonts" / "ttf"
F32 = np.float32

DARK_INKS = ((0.07, 0.07, 0.09), (0.10, 0.14, 0.38), (0.38, 0.07, 0.09), (0.08, 0.26, 0.14),
             (0.30, 0.14, 0.40), (0.22, 0.22, 0.24))
LIGHT_INKS = ((0.96, 0.96, 0.94), (0.96, 0.86, 0.35), (0.85, 0.92, 0.96))
KRAFT = ((0.64, 0.49, 0.33), (0.74, 0.60, 0.42), (0.56, 0.43, 0.30), (0.70, 0.58, 0.45))
WHITE = ((0.93, 0.92, 0.89), (0.86, 0.86, 0.84), (0.95, 0.93, 0.85))
PRINT_LIGHT = ((0.60, 0.74, 0.90), (0.96, 0.82, 0.40), (0.72, 0.86, 0.62), (0.93, 0.66, 0.58),
               (0.80, 0.80, 0.80), (0.96, 0.72, 0.42), (0.82, 0.74, 0.90))
PRINT_DARK = ((0.12, 0.20, 0.45), (0.45, 0.08, 0.10), (0.10, 0.30, 0.18), (0.15, 0.15, 0.17),
              (0.30, 0.12, 0.35))
SKIN = ((0.88, 0.69, 0.57), (0.78, 0.57, 0.44), (0.56, 0.39, 0.29), (0.95, 0.80, 0.70))
STICKERS = ((0.97, 0.97, 0.95), (0.98, 0.90, 0.30), (0.98, 0.60, 0.22), (0.96, 0.62, 0.75),
            (0.55, 0.85, 0.45))
_YY, _XX = np.mgrid[0:RENDER_SIZE, 0:RENDER_SIZE].astype(F32) + F32(0.5)


@dataclass(frozen=True)
class Ink:
    rgb: np.ndarray
    light: bool  # light ink is painted over the surface; dark ink multiplies (darkens) it


# ---- small array helpers ------------------------------------------------------------------------------

def plane(px: float, py: float, phi: float) -> np.ndarray:
    """Signed distance of every pixel from the line through (px, py) whose normal points at phi deg."""
    a = math.radians(phi)
    return (_XX - F32(px)) * F32(math.cos(a)) + (_YY - F32(py)) * F32(math.sin(a))


def rot_uv(cx: float, cy: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = F32(math.cos(math.radians(angle))), F32(math.sin(math.radians(angle)))
    dx, dy = _XX - F32(cx), _YY - F32(cy)
    return dx * c + dy * s, dy * c - dx * s


def box_dist(cx: float, cy: float, angle: float, hu: float, hv: float) -> np.ndarray:
    """Signed (Chebyshev) distance from a rotated 2hu x 2hv rectangle; negative inside."""
    u, v = rot_uv(cx, cy, angle)
    return np.maximum(np.abs(u) - F32(hu), np.abs(v) - F32(hv))


def soft(d: np.ndarray, width: float = 1.0) -> np.ndarray:
    """Anti-aliased step: 0 where d << 0, 1 where d >> 0, ramp over `width` pixels."""
    return np.clip(d * F32(1.0 / width) + F32(0.5), F32(0), F32(1))


def smooth_noise(rng: np.random.Generator, cells: int) -> np.ndarray:
    grid = Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8))
    return to_alpha(grid.resize((RENDER_SIZE, RENDER_SIZE), Image.Resampling.BICUBIC))


def to_alpha(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=F32) * F32(1.0 / 255.0)


Palette = tuple[tuple[float, float, float], ...]


def random_rgb(rng: np.random.Generator, table: Palette, jitter: float) -> np.ndarray:
    """A colour drawn from `table`, each channel jittered by N(0, jitter) and clipped to 0.02..1."""
    base = np.asarray(table[int(rng.integers(len(table)))]) + rng.normal(0.0, jitter, 3)
    return np.clip(base, 0.02, 1.0).astype(F32)


def paint(img: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    a = alpha[..., None]
    return img * (F32(1) - a) + colour * a


def apply_ink(img: np.ndarray, alpha: np.ndarray, ink: Ink) -> np.ndarray:
    if ink.light:
        return paint(img, alpha, ink.rgb)
    return img * (F32(1) - alpha[..., None] * (F32(1) - ink.rgb))  # multiply blend, like real ink


def pick_ink(rng: np.random.Generator, light: bool) -> Ink:
    """A light ink (for dark cartons) or a dark one."""
    return Ink(random_rgb(rng, LIGHT_INKS if light else DARK_INKS, 0.03), light)


def to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img * F32(255)), 0, 255).astype(np.uint8)


# ---- fonts, text masks, geometry ------------------------------------------------------------------------

@functools.lru_cache(maxsize=4096)
def get_font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_DIR / name), size)


@functools.lru_cache(maxsize=64)
def cap_ratio(name: str) -> float:
    """Height of capitals/digits per pixel of font size, so that a cap height can be asked for."""
    box = get_font(name, 100).getbbox("F06K11S19V22")
    return (box[3] - box[1]) / 100.0


def text_mask(text: str, font: ImageFont.FreeTypeFont, spacing: float, wobble: float,
              rng: np.random.Generator) -> Image.Image:
    """White-on-black mask of `text`, tightly cropped; drawn char by char for letter spacing."""
    if spacing == 0.0 and wobble == 0.0:  # distractor print: one call is much faster
        box = font.getbbox(text)
        img = Image.new("L", (box[2] - box[0] + 2, box[3] - box[1] + 2))
        ImageDraw.Draw(img).text((1 - box[0], 1 - box[1]), text, fill=255, font=font)
        return img
    advances = [font.getlength(ch) for ch in text]
    pad = int(font.size * 0.5) + 2
    width = int(sum(advances) + abs(spacing) * len(text)) + 2 * pad
    img = Image.new("L", (width, int(font.size * 1.5) + 2 * pad))
    draw, x = ImageDraw.Draw(img), float(pad)
    for ch, adv in zip(text, advances, strict=True):
        draw.text((x, pad + rng.normal() * wobble), ch, fill=255, font=font)
        x += adv + spacing
    box = img.getbbox()
    return img.crop(box) if box else img


# A classic 5x7 ink-jet/LCD font for the glyphs of the four codes (the only dot-matrix text drawn).
_DOTS = {
    "F": "11111 10000 10000 11110 10000 10000 10000", "K": "10001 10010 10100 11000 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110", "V": "10001 10001 10001 10001 10001 01010 00100",
    "0": "01110 10001 10011 10101 11001 10001 01110", "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111", "6": "00110 01000 10000 11110 10001 10001 01110",
    "9": "01110 10001 10001 01111 00001 00010 01100",
}


def dot_matrix_mask(text: str, pitch: int) -> Image.Image:
    """Ink-jet style, common for box codes: 5x7 cells per character, each set cell a round dot."""
    rows = [" ".join(row) for row in zip(*(_DOTS[ch].split() for ch in text), strict=True)]
    cells = np.array([[ch == "1" for ch in row.replace(" ", "0")] for row in rows], np.uint8)
    yy, xx = np.mgrid[0:pitch, 0:pitch] + 0.5 - pitch / 2
    disc = ((xx * xx + yy * yy) <= (0.42 * pitch) ** 2).astype(np.uint8) * 255
    return Image.fromarray(np.kron(cells, disc))


def homography(quad: list[tuple[float, float]], w: int, h: int) -> list[float]:
    """PIL PERSPECTIVE coefficients (output -> input) mapping `quad` onto a w x h source rectangle.

    Closed form (Heckbert's square-to-quad, inverted by adjugate) in plain floats: fast, and identical on
    every machine, unlike a LAPACK solve.
    """
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = quad
    sx, sy = x0 - x1 + x2 - x3, y0 - y1 + y2 - y3
    dx1, dx2, dy1, dy2 = x1 - x2, x3 - x2, y1 - y2, y3 - y2
    den = dx1 * dy2 - dx2 * dy1
    g, hh = (sx * dy2 - dx2 * sy) / den, (dx1 * sy - sx * dy1) / den
    a, b, c = x1 - x0 + g * x1, x3 - x0 + hh * x3, x0
    d, e, f = y1 - y0 + g * y1, y3 - y0 + hh * y3, y0
    inv = [e - f * hh, c * hh - b, b * f - c * e,  # adjugate of [[a, b, c], [d, e, f], [g, hh, 1]]
           f * g - d, a - c * g, c * d - a * f,
           d * hh - e * g, b * g - a * hh, a * e - b * d]
    rows = [v * w for v in inv[0:3]] + [v * h for v in inv[3:6]] + inv[6:9]
    return [v / rows[8] for v in rows[:8]]


def warp(mask: Image.Image, quad: list[tuple[float, float]], ss: int = SS) -> np.ndarray:
    """Perspective-map `mask`'s corners (TL, TR, BR, BL) onto `quad`; returns the RENDER_SIZE^2 alpha.

    Only the quad's bounding box is resampled (at ss x), which is most of the speed of the generator.
    """
    n = RENDER_SIZE
    x0, y0, x1, y1 = bbox_of(quad)
    bx0, by0 = max(0, int(x0) - 1), max(0, int(y0) - 1)
    bx1, by1 = min(n, int(x1) + 2), min(n, int(y1) + 2)
    out = np.zeros((n, n), F32)
    if bx1 <= bx0 or by1 <= by0:
        return out
    local = [((x - bx0) * ss, (y - by0) * ss) for x, y in quad]
    coeffs = homography(local, *mask.size)
    big = mask.transform(((bx1 - bx0) * ss, (by1 - by0) * ss), Image.Transform.PERSPECTIVE, coeffs,
                         Image.Resampling.BICUBIC, fillcolor=0)
    out[by0:by1, bx0:bx1] = to_alpha(big.reduce(ss) if ss > 1 else big)
    return out


def quad_corners(w: float, h: float, cx: float, cy: float, angle: float, jit: float,
                 rng: np.random.Generator) -> list[tuple[float, float]]:
    """Corners of a w x h box centred at (cx, cy), rotated by `angle` deg, each moved by up to `jit` px."""
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    pts = []
    for u, v in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)):
        dx, dy = rng.uniform(-jit, jit, 2) if jit > 0 else (0.0, 0.0)
        pts.append((cx + u * c - v * s + dx, cy + u * s + v * c + dy))
    return pts


def bbox_of(quad: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    xs, ys = [q[0] for q in quad], [q[1] for q in quad]
    return min(xs), min(ys), max(xs), max(ys)


def overlaps(a: tuple[float, ...], b: tuple[float, ...], gap: float = 2.0) -> bool:
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap
