"""Rendering helpers for CNPB-synth, the synthetic stand-in for the private CNPB data set.

One image is drawn from one `numpy.random.Generator` in a fixed order of random draws, so it is a pure
function of that generator's seed. Everything is rendered on a RENDER_SIZE canvas (text masks at SS times
that, for anti-aliased edges) and resized to the requested size at the end, before the sensor noise.

Determinism: pixel maths uses only +, -, *, /, sqrt, floor and clip on arrays (IEEE-exact on every CPU,
unlike numpy's SIMD exp/sin/pow); transcendental values come from Python's `math` on scalars; the
perspective coefficients are computed in closed form in plain Python rather than by LAPACK; PIL's
resampling, text rendering and JPEG codec are deterministic for a given Pillow build.
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

if TYPE_CHECKING:
    from bnn_flow.data.cnpb import CnpbSynthParams

RENDER_SIZE = 100  # internal canvas (pixels); the caller's image_size is reached by one final resize
SS = 2  # supersampling of text masks: drawn at SS x, warped, then box-reduced
FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
F32 = np.float32

_ALNUM = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_WORDS = ("LOT", "EXP", "NET WT", "BEST BEFORE", "MADE IN", "BATCH", "QTY", "PCS", "KG", "MFG", "REF",
          "THIS SIDE UP", "FRAGILE", "NO.", "SIZE", "ART", "HANDLE WITH CARE", "PACKED")
_DARK_INKS = ((0.07, 0.07, 0.09), (0.10, 0.14, 0.38), (0.38, 0.07, 0.09), (0.08, 0.26, 0.14),
              (0.30, 0.14, 0.40), (0.22, 0.22, 0.24))
_LIGHT_INKS = ((0.96, 0.96, 0.94), (0.96, 0.86, 0.35), (0.85, 0.92, 0.96))
_KRAFT = ((0.64, 0.49, 0.33), (0.74, 0.60, 0.42), (0.56, 0.43, 0.30), (0.70, 0.58, 0.45))
_WHITE = ((0.93, 0.92, 0.89), (0.86, 0.86, 0.84), (0.95, 0.93, 0.85))
_PRINT_LIGHT = ((0.60, 0.74, 0.90), (0.96, 0.82, 0.40), (0.72, 0.86, 0.62), (0.93, 0.66, 0.58),
                (0.80, 0.80, 0.80), (0.96, 0.72, 0.42), (0.82, 0.74, 0.90))
_PRINT_DARK = ((0.12, 0.20, 0.45), (0.45, 0.08, 0.10), (0.10, 0.30, 0.18), (0.15, 0.15, 0.17),
               (0.30, 0.12, 0.35))
_SKIN = ((0.88, 0.69, 0.57), (0.78, 0.57, 0.44), (0.56, 0.39, 0.29), (0.95, 0.80, 0.70))
_STICKERS = ((0.97, 0.97, 0.95), (0.98, 0.90, 0.30), (0.98, 0.60, 0.22), (0.96, 0.62, 0.75),
             (0.55, 0.85, 0.45))
_YY, _XX = np.mgrid[0:RENDER_SIZE, 0:RENDER_SIZE].astype(F32) + F32(0.5)


@dataclass(frozen=True)
class Code:
    """The rendered code: its ink coverage (RENDER_SIZE^2, 0..1) and where it sits."""

    alpha: np.ndarray
    quad: list[tuple[float, float]]
    bbox: tuple[float, float, float, float]
    cx: float
    cy: float
    angle: float
    w: float
    h: float


@dataclass(frozen=True)
class Ink:
    rgb: np.ndarray
    light: bool  # light ink is painted over the surface; dark ink multiplies (darkens) it


# ---- small array helpers ------------------------------------------------------------------------------

def _plane(px: float, py: float, phi: float) -> np.ndarray:
    """Signed distance of every pixel from the line through (px, py) whose normal points at phi deg."""
    a = math.radians(phi)
    return (_XX - F32(px)) * F32(math.cos(a)) + (_YY - F32(py)) * F32(math.sin(a))


def _rot_uv(cx: float, cy: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = F32(math.cos(math.radians(angle))), F32(math.sin(math.radians(angle)))
    dx, dy = _XX - F32(cx), _YY - F32(cy)
    return dx * c + dy * s, dy * c - dx * s


def _box_dist(cx: float, cy: float, angle: float, hu: float, hv: float) -> np.ndarray:
    """Signed (Chebyshev) distance from a rotated 2hu x 2hv rectangle; negative inside."""
    u, v = _rot_uv(cx, cy, angle)
    return np.maximum(np.abs(u) - F32(hu), np.abs(v) - F32(hv))


def _soft(d: np.ndarray, width: float = 1.0) -> np.ndarray:
    """Anti-aliased step: 0 where d << 0, 1 where d >> 0, ramp over `width` pixels."""
    return np.clip(d * F32(1.0 / width) + F32(0.5), F32(0), F32(1))


def _smooth_noise(rng: np.random.Generator, cells: int) -> np.ndarray:
    grid = Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8))
    return _to_alpha(grid.resize((RENDER_SIZE, RENDER_SIZE), Image.Resampling.BICUBIC))


def _to_alpha(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=F32) * F32(1.0 / 255.0)


Palette = tuple[tuple[float, float, float], ...]


def _rgb(rng: np.random.Generator, table: Palette, jitter: float) -> np.ndarray:
    base = np.asarray(table[int(rng.integers(len(table)))]) + rng.normal(0.0, jitter, 3)
    return np.clip(base, 0.02, 1.0).astype(F32)


def _paint(img: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    a = alpha[..., None]
    return img * (F32(1) - a) + colour * a


def apply_ink(img: np.ndarray, alpha: np.ndarray, ink: Ink) -> np.ndarray:
    if ink.light:
        return _paint(img, alpha, ink.rgb)
    return img * (F32(1) - alpha[..., None] * (F32(1) - ink.rgb))  # multiply blend, like real ink


def to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img * F32(255)), 0, 255).astype(np.uint8)


# ---- fonts, text masks, geometry ------------------------------------------------------------------------

@functools.lru_cache(maxsize=4096)
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_DIR / name), size)


@functools.lru_cache(maxsize=64)
def _cap_ratio(name: str) -> float:
    """Height of capitals/digits per pixel of font size, so that a cap height can be asked for."""
    box = _font(name, 100).getbbox("F06K11S19V22")
    return (box[3] - box[1]) / 100.0


def _text_mask(text: str, font: ImageFont.FreeTypeFont, spacing: float, wobble: float,
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


def _dot_matrix_mask(text: str, pitch: int) -> Image.Image:
    """Ink-jet style, common for box codes: 5x7 cells per character, each set cell a round dot."""
    rows = [" ".join(row) for row in zip(*(_DOTS[ch].split() for ch in text), strict=True)]
    cells = np.array([[ch == "1" for ch in row.replace(" ", "0")] for row in rows], np.uint8)
    yy, xx = np.mgrid[0:pitch, 0:pitch] + 0.5 - pitch / 2
    disc = ((xx * xx + yy * yy) <= (0.42 * pitch) ** 2).astype(np.uint8) * 255
    return Image.fromarray(np.kron(cells, disc))


def _homography(quad: list[tuple[float, float]], w: int, h: int) -> list[float]:
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


def _warp(mask: Image.Image, quad: list[tuple[float, float]], ss: int = SS) -> np.ndarray:
    """Perspective-map `mask`'s corners (TL, TR, BR, BL) onto `quad`; returns the RENDER_SIZE^2 alpha.

    Only the quad's bounding box is resampled (at ss x), which is most of the speed of the generator.
    """
    n = RENDER_SIZE
    x0, y0, x1, y1 = _bbox(quad)
    bx0, by0 = max(0, int(x0) - 1), max(0, int(y0) - 1)
    bx1, by1 = min(n, int(x1) + 2), min(n, int(y1) + 2)
    out = np.zeros((n, n), F32)
    if bx1 <= bx0 or by1 <= by0:
        return out
    local = [((x - bx0) * ss, (y - by0) * ss) for x, y in quad]
    coeffs = _homography(local, *mask.size)
    big = mask.transform(((bx1 - bx0) * ss, (by1 - by0) * ss), Image.Transform.PERSPECTIVE, coeffs,
                         Image.Resampling.BICUBIC, fillcolor=0)
    out[by0:by1, bx0:bx1] = _to_alpha(big.reduce(ss) if ss > 1 else big)
    return out


def _quad(w: float, h: float, cx: float, cy: float, angle: float, jit: float,
          rng: np.random.Generator) -> list[tuple[float, float]]:
    """Corners of a w x h box centred at (cx, cy), rotated by `angle` deg, each moved by up to `jit` px."""
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    pts = []
    for u, v in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)):
        dx, dy = rng.uniform(-jit, jit, 2) if jit > 0 else (0.0, 0.0)
        pts.append((cx + u * c - v * s + dx, cy + u * s + v * c + dy))
    return pts


def _bbox(quad: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    xs, ys = [q[0] for q in quad], [q[1] for q in quad]
    return min(xs), min(ys), max(xs), max(ys)


def _overlaps(a: tuple[float, ...], b: tuple[float, ...], gap: float = 2.0) -> bool:
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap


# ---- the code ---------------------------------------------------------------------------------------------

def code_layer(rng: np.random.Generator, p: CnpbSynthParams, text: str) -> Code:
    """Render the code (a font or ink-jet dots, maybe framed), placed wholly inside the image."""
    n, cap = RENDER_SIZE, rng.uniform(*p.code_height_frac) * RENDER_SIZE
    if rng.random() < p.dot_matrix_prob:
        mask = _dot_matrix_mask(text, max(3, round(cap * SS / 7)))
    else:
        name = p.fonts[int(rng.integers(len(p.fonts)))]
        size = max(6, round(cap * SS / _cap_ratio(name)))
        spacing = rng.uniform(*p.char_spacing) * size
        mask = _text_mask(text, _font(name, size), spacing, p.baseline_wobble * size, rng)
    text_h = mask.size[1]
    if rng.random() < p.frame_prob:  # printed inside a rectangle, as many carton codes are
        m, lw = int(text_h * rng.uniform(0.2, 0.45)), max(2, text_h // int(rng.integers(9, 16)))
        framed = Image.new("L", (mask.size[0] + 2 * m, mask.size[1] + 2 * m), 0)
        framed.paste(mask, (m, m))
        ImageDraw.Draw(framed).rectangle([0, 0, *(v - 1 for v in framed.size)], outline=255, width=lw)
        mask = framed
    scale = cap / text_h
    w, h = mask.size[0] * scale * rng.uniform(*p.stretch), mask.size[1] * scale
    angle, persp = rng.uniform(*p.rotation_deg), rng.uniform(0.0, p.perspective)
    c, s = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))
    ex, ey = (w * c + h * s) / 2 + persp * max(w, h), (w * s + h * c) / 2 + persp * max(w, h)
    fit = min(1.0, (n / 2 - 2) / max(ex, ey))  # shrink a code that would not fit at this angle
    w, h, ex, ey = w * fit, h * fit, ex * fit, ey * fit
    cx = float(np.clip(n / 2 + rng.uniform(-1, 1) * p.center_jitter * n, ex + 1, n - ex - 1))
    cy = float(np.clip(n / 2 + rng.uniform(-1, 1) * p.center_jitter * n, ey + 1, n - ey - 1))
    quad = _quad(w, h, cx, cy, angle, persp * max(w, h), rng)
    return Code(_warp(mask, quad), quad, _bbox(quad), cx, cy, angle, w, h)


def _pick_ink(rng: np.random.Generator, light: bool) -> Ink:
    return Ink(_rgb(rng, _LIGHT_INKS if light else _DARK_INKS, 0.03), light)


def _wear(rng: np.random.Generator, amount: float) -> np.ndarray:
    """Ink coverage factor: patchy fading plus speckle dropout (worn stamps, starving ink-jets)."""
    field = _smooth_noise(rng, 10) * F32(0.6) + rng.random((RENDER_SIZE, RENDER_SIZE), dtype=F32) * F32(0.4)
    return np.clip(F32(1) - F32(amount) * field * F32(1.6), F32(0), F32(1))


# ---- distractor print ---------------------------------------------------------------------------------

def _distractor_text(rng: np.random.Generator, forbidden: tuple[str, ...]) -> str:
    """A random string of other print; never contains a class code (spaces ignored): no label leak."""
    while True:
        kind = rng.random()
        if kind < 0.25:  # a look-alike code: right letters and digits in a wrong combination
            text = "FKSV"[int(rng.integers(4))] + ("06", "11", "19", "22")[int(rng.integers(4))]
        elif kind < 0.6:
            text = "".join(_ALNUM[i] for i in rng.integers(0, len(_ALNUM), int(rng.integers(2, 8))))
        else:
            text = f"{_WORDS[int(rng.integers(len(_WORDS)))]} {int(rng.integers(1, 99999))}"
        if not any(code in text.replace(" ", "") for code in forbidden):
            return text


def _distractor(rng: np.random.Generator, p: CnpbSynthParams, code: Code,
                forbidden: tuple[str, ...]) -> np.ndarray | None:
    """One piece of other print (a string, a line of small text or a barcode) placed off the code."""
    kind = rng.random()
    if kind < 0.75:
        cap = rng.uniform(2.5, 5.5) if kind >= 0.4 else rng.uniform(0.25, 0.5) * code.h
        name = p.fonts[int(rng.integers(len(p.fonts)))]
        font = _font(name, max(4, round(cap / _cap_ratio(name))))  # 1x: minor print needs no supersampling
        mask = _text_mask(_distractor_text(rng, forbidden), font, 0.0, 0.0, rng)
        w, h = mask.size
    else:
        widths = rng.integers(1, 4, int(rng.integers(16, 34)))
        row = np.repeat(np.arange(len(widths)) % 2 == 0, widths).astype(np.uint8) * 255
        mask = Image.fromarray(np.repeat(row[None, :], 8, axis=0))
        w, h = mask.size[0] * rng.uniform(0.3, 0.7), rng.uniform(8, 22)
    angle = code.angle + rng.normal() * 3 if rng.random() < 0.6 else rng.uniform(-90, 90)
    for _ in range(6):
        quad = _quad(w, h, rng.uniform(-5, 105), rng.uniform(-5, 105), angle, 0.5, rng)
        if not _overlaps(_bbox(quad), code.bbox):
            return _warp(mask, quad, ss=1)
    return None


def _distractors(rng: np.random.Generator, p: CnpbSynthParams, img: np.ndarray, code: Code, ink: Ink,
                 forbidden: tuple[str, ...]) -> np.ndarray:
    """Other print in two inks: the code's own and a second one (two layers keep this cheap)."""
    layers = [np.zeros((RENDER_SIZE, RENDER_SIZE), F32), np.zeros((RENDER_SIZE, RENDER_SIZE), F32)]
    for _ in range(int(rng.integers(p.distractors[0], p.distractors[1] + 1))):
        alpha = _distractor(rng, p, code, forbidden)
        layer = int(rng.integers(2))
        if alpha is not None:
            np.maximum(layers[layer], alpha * F32(rng.uniform(0.6, 1.0)), out=layers[layer])
    img = apply_ink(img, layers[0], ink)
    return apply_ink(img, layers[1], _pick_ink(rng, ink.light))


# ---- the box ----------------------------------------------------------------------------------------------

def _background(rng: np.random.Generator, p: CnpbSynthParams) -> tuple[np.ndarray, bool]:
    """Cardboard or printed carton: base colour, blotches, fibres, corrugation, grain, printed bands."""
    dark = rng.random() < p.dark_carton_prob
    table = _PRINT_DARK if dark else (_KRAFT, _WHITE, _PRINT_LIGHT)[int(rng.choice(3, p=[0.45, 0.3, 0.25]))]
    base = _rgb(rng, table, 0.035)
    tex = F32(1) + (_smooth_noise(rng, int(rng.integers(3, 8))) - F32(0.5)) * F32(rng.uniform(0.05, 0.25))
    fib = rng.normal(0.0, rng.uniform(0.004, 0.025), RENDER_SIZE).astype(F32)
    tex = tex + (fib[None, :] if rng.random() < 0.5 else fib[:, None])
    if table is _KRAFT and rng.random() < 0.6:  # flutes of corrugated board showing through the liner
        t = _plane(0, 0, float(rng.choice([0.0, 90.0])) + rng.normal() * 2) * F32(1 / rng.uniform(5, 12))
        tex = tex + np.abs((t - np.floor(t)) * F32(2) - F32(1)) * F32(rng.uniform(0.02, 0.07))
    tex = tex + rng.normal(0.0, 0.012, (RENDER_SIZE, RENDER_SIZE)).astype(F32)
    img = base * tex[..., None]
    if rng.random() < p.print_band_prob:  # a printed area of another colour with the same contrast class
        band = _rgb(rng, _PRINT_DARK if dark else _PRINT_LIGHT + _WHITE, 0.03)
        d = _plane(rng.uniform(0, 100), rng.uniform(0, 100), rng.uniform(0, 360))
        area = _soft(F32(rng.uniform(4, 30)) - np.abs(d), 1.2) if rng.random() < 0.5 else _soft(d, 1.2)
        img = _paint(img, area, band * tex[..., None])  # a stripe or a half plane
    return img, dark


def _line_off_code(rng: np.random.Generator, code: Code, lo: float, hi: float) -> np.ndarray:
    """Distance field of a line that keeps the whole code on its negative side, lo..hi px away."""
    phi = rng.uniform(0, 360)
    c, s = math.cos(math.radians(phi)), math.sin(math.radians(phi))
    reach = max((x - code.cx) * c + (y - code.cy) * s for x, y in code.quad)
    dist = reach + rng.uniform(lo, hi)
    return _plane(code.cx + dist * c, code.cy + dist * s, phi)


def _box_structure(rng: np.random.Generator, p: CnpbSynthParams, img: np.ndarray, code: Code) -> np.ndarray:
    """An edge between two faces, a box corner with the surroundings behind it, or a flap seam."""
    if rng.random() >= p.box_edge_prob:
        return img
    kind = int(rng.integers(3))
    d = _line_off_code(rng, code, 2, 40)
    if kind == 0:  # edge: the other face is lit differently; a crease line along the fold
        tone = rng.uniform(0.5, 0.85) if rng.random() < 0.7 else rng.uniform(1.08, 1.2)
        img = img * (F32(1) + F32(tone - 1) * _soft(d)[..., None])
        crease = np.clip(F32(1) - np.abs(d) * F32(0.8), 0, 1)
        return img * (F32(1) - F32(rng.uniform(-0.3, 0.3)) * crease)[..., None]
    if kind == 1:  # corner: beyond two edges lies the shelf/floor/background
        d2 = _line_off_code(rng, code, 2, 40)
        env = _rgb(rng, ((0.25, 0.25, 0.27), (0.45, 0.40, 0.33), (0.15, 0.17, 0.22), (0.6, 0.6, 0.58)), 0.06)
        shade = (F32(0.8) + F32(0.4) * _smooth_noise(rng, 4))[..., None]
        return _paint(img, np.maximum(_soft(d), _soft(d2)), env * shade)
    width = rng.uniform(0.8, 2.5)  # flap seam: a dark gap between two flaps
    img = img * (F32(1) + F32(rng.uniform(-0.1, 0.05)) * _soft(d)[..., None])
    return img * (F32(1) - F32(rng.uniform(0.3, 0.7)) * _soft(F32(width) - np.abs(d), 1.0)[..., None])


def _label_sticker(rng: np.random.Generator, img: np.ndarray, code: Code) -> np.ndarray:
    """A white/cream label under the code, aligned with it, with a faint drop shadow."""
    c, s = math.cos(math.radians(code.angle)), math.sin(math.radians(code.angle))
    us = [(x - code.cx) * c + (y - code.cy) * s for x, y in code.quad]
    vs = [(y - code.cy) * c - (x - code.cx) * s for x, y in code.quad]
    hu, hv = max(map(abs, us)) + rng.uniform(2, 9), max(map(abs, vs)) + rng.uniform(2, 9)
    colour = _rgb(rng, _WHITE + ((0.97, 0.95, 0.80),), 0.02)
    shadow = _soft(-_box_dist(code.cx + 1.0, code.cy + 1.5, code.angle, hu, hv), 3.0)
    img = img * (F32(1) - F32(0.3) * shadow)[..., None]
    return _paint(img, _soft(-_box_dist(code.cx, code.cy, code.angle, hu, hv)), colour)


def _tape(rng: np.random.Generator, p: CnpbSynthParams, img: np.ndarray) -> np.ndarray:
    """Packing tape across the box (translucent, so print under it stays readable)."""
    if rng.random() >= p.tape_prob:
        return img
    angle = float(rng.choice([0.0, 90.0])) + rng.normal() * 4 if rng.random() < 0.7 else rng.uniform(0, 180)
    d = np.abs(_plane(rng.uniform(0, 100), rng.uniform(0, 100), angle))
    half = F32(rng.uniform(5, 12))
    clear = rng.random() < 0.4
    colour = np.array((0.97, 0.97, 0.97) if clear else (0.78, 0.62, 0.40), dtype=F32)
    alpha = _soft(half - d) * F32(rng.uniform(0.12, 0.25) if clear else rng.uniform(0.3, 0.55))
    alpha = alpha + _soft(F32(0.7) - np.abs(d - half * F32(0.6)), 1.5) * F32(0.25 if clear else 0.1)  # sheen
    return _paint(img, np.clip(alpha, 0, 1), colour)


# ---- occlusion, lighting, camera ------------------------------------------------------------------------

def _occluder(rng: np.random.Generator, code: Code, kind: int, shrink: float) -> tuple[np.ndarray, ...]:
    """(alpha, colour image, shadow) of a bar, a thumb or a sticker over part of the code."""
    c, s = math.cos(math.radians(code.angle)), math.sin(math.radians(code.angle))
    if kind == 0:  # a strap/pen crossing the code roughly across the text direction
        t = rng.uniform(-0.5, 0.5) * code.w
        d = _plane(code.cx + t * c, code.cy + t * s, code.angle + rng.uniform(-35, 35))
        half = F32(rng.uniform(1.5, 4.0) * shrink)
        colour = _rgb(rng, _DARK_INKS + _STICKERS + _SKIN, 0.05)[None, None, :]
        shade = F32(0.8) + F32(0.3) * np.clip(F32(1) - np.abs(d) / half, 0, 1)
        shadow = _soft(half + F32(2) - np.abs(d - F32(1.5)), 2.5)
        return _soft(half - np.abs(d)), colour * shade[..., None], shadow
    if kind == 1:  # a thumb reaching in from outside, over one end of the code
        theta = (code.angle + 180 * int(rng.integers(2)) + rng.uniform(-40, 40) if rng.random() < 0.7
                 else rng.uniform(0, 360))
        rx = rng.uniform(9, 16)
        ry = rx * rng.uniform(0.9, 1.4)
        a = math.radians(theta)
        reach = code.w / 2 * (1 - rng.uniform(0.1, 0.5) * shrink)  # fingertip stops this far from the centre
        tip = (code.cx - (reach + ry) * math.cos(a), code.cy - (reach + ry) * math.sin(a))
        along, across = _rot_uv(tip[0], tip[1], theta)
        r = np.sqrt((across * F32(1 / rx)) ** 2 + (np.maximum(along, 0) * F32(1 / ry)) ** 2)
        shade = F32(0.7) + F32(0.35) * np.clip(F32(1) - (across * F32(1 / rx)) ** 2, 0, 1)
        colour = _rgb(rng, _SKIN, 0.04)[None, None, :] * shade[..., None]
        return _soft((F32(1) - r) * F32(rx)), colour, _soft((F32(1.25) - r) * F32(rx / 3), 3.0)
    ys, xs = np.nonzero(code.alpha > 0.5)  # a price sticker stuck on one character
    k = int(rng.integers(len(xs)))
    half = rng.uniform(0.2, 0.45) * code.h * shrink
    cx, cy, angle = float(xs[k]) + 0.5, float(ys[k]) + 0.5, rng.uniform(0, 90)
    if rng.random() < 0.5:  # round
        u, v = _rot_uv(cx, cy, angle)
        dist = np.sqrt(u * u + v * v) - F32(half)
    else:
        dist = _box_dist(cx, cy, angle, half, half)
    colour = _rgb(rng, _STICKERS, 0.03)[None, None, :]
    return _soft(-dist), colour, _soft(F32(1.5) - dist, 2.0)


def _occlude(rng: np.random.Generator, p: CnpbSynthParams, img: np.ndarray, code: Code) -> np.ndarray:
    """Cover part of the code, but never more than occlusion_max_cover of its ink pixels."""
    ink = code.alpha > 0.5
    total = np.count_nonzero(ink)
    if rng.random() >= p.occlusion_prob or total == 0:
        return img
    kind = int(rng.integers(3))
    for attempt in range(5):
        alpha, colour, shadow = _occluder(rng, code, kind, 0.75**attempt)
        if np.count_nonzero(ink & (alpha > 0.5)) <= p.occlusion_max_cover * total:  # integer test: exact
            img = img * (F32(1) - F32(0.3) * shadow)[..., None]
            return _paint(img, alpha, colour)
    return img


def _lighting(rng: np.random.Generator, p: CnpbSynthParams, img: np.ndarray) -> np.ndarray:
    """Illumination gradient, cast shadow, glare, white balance, exposure/contrast, gamma -> uint8."""
    ramp = _plane(50, 50, rng.uniform(0, 360)) * F32(rng.uniform(0, p.gradient) / RENDER_SIZE)
    img = img * (F32(1) + ramp)[..., None]
    if rng.random() < p.shadow_prob:
        d = _plane(rng.uniform(10, 90), rng.uniform(10, 90), rng.uniform(0, 360))
        img = img * (F32(1) - F32(rng.uniform(0.2, 0.55)) * _soft(d, rng.uniform(1.5, 10)))[..., None]
    if rng.random() < p.glare_prob:
        u, v = _rot_uv(rng.uniform(0, 100), rng.uniform(0, 100), rng.uniform(0, 180))
        r2 = (u * F32(1 / rng.uniform(8, 30))) ** 2 + (v * F32(1 / rng.uniform(8, 30))) ** 2
        img = img + (np.clip(F32(1) - r2, 0, 1) ** 2 * F32(rng.uniform(0.15, 0.45)))[..., None]
    img = img * (F32(1) + rng.uniform(-p.colour_cast, p.colour_cast, 3).astype(F32))
    con, bri = rng.uniform(*p.contrast), rng.uniform(*p.brightness)
    img = ((img - F32(0.5)) * F32(con) + F32(0.5)) * F32(bri)
    return _gamma_lut(round(rng.uniform(*p.gamma), 3))[to_uint8(img)]


@functools.lru_cache(maxsize=2048)
def _gamma_lut(gamma: float) -> np.ndarray:
    return np.array([round(255 * (i / 255) ** gamma) for i in range(256)], dtype=np.uint8)


def _camera(rng: np.random.Generator, p: CnpbSynthParams, img: np.ndarray, size: int) -> np.ndarray:
    """Optics and sensor: focus or motion blur, resize, noise, optional JPEG round trip."""
    pil = Image.fromarray(img)
    sigma = rng.uniform(*p.blur_sigma)
    if sigma > 0.15:
        pil = pil.filter(ImageFilter.GaussianBlur(sigma))
    if rng.random() < p.motion_blur_prob:
        k = np.eye(5) if rng.random() < 0.5 else np.pad(np.ones((1, 5)), ((2, 2), (0, 0)))
        k = np.rot90(k, int(rng.integers(4)))
        pil = pil.filter(ImageFilter.Kernel((5, 5), k.ravel().tolist(), scale=5))
    if size != RENDER_SIZE:
        pil = pil.resize((size, size), Image.Resampling.BILINEAR)
    noise = rng.standard_normal((size, size, 3), dtype=F32) * F32(rng.uniform(*p.noise_std))
    arr = np.asarray(pil, dtype=F32) + noise
    arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    if rng.random() < p.jpeg_prob:
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=int(rng.integers(*p.jpeg_quality)))
        arr = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return arr


def render_image(rng: np.random.Generator, text: str, forbidden: tuple[str, ...], p: CnpbSynthParams,
                 size: int) -> np.ndarray:
    """One size x size x 3 uint8 image of `text` printed on a box, drawn from `rng` alone."""
    code = code_layer(rng, p, text)
    img, dark = _background(rng, p)
    img = _box_structure(rng, p, img, code)
    on_label = (not dark) and rng.random() < p.label_prob
    if on_label:
        img = _label_sticker(rng, img, code)
    ink = _pick_ink(rng, dark)  # light ink only on dark cartons (never on a label)
    img = _distractors(rng, p, img, code, ink, forbidden)
    alpha = code.alpha * _wear(rng, rng.uniform(*p.ink_wear)) * F32(rng.uniform(0.8, 1.0))
    img = apply_ink(img, alpha, ink)
    img = _tape(rng, p, img)
    img = _occlude(rng, p, img, code)
    return _camera(rng, p, _lighting(rng, p, img), size)
