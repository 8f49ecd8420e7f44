"""The CNPB-synth scene: the code, the box under it, distractor print, occluders, lighting and camera.

One image is drawn from one `numpy.random.Generator` in a fixed order of random draws, so it is a pure
function of that generator's seed. Everything is rendered on a RENDER_SIZE canvas and resized to the
requested size at the end, before the sensor noise. The drawing primitives (and the notes on why the
pixel maths is the same on every machine) are in `bnn_flow.data.cnpb_draw`.
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from bnn_flow.data.cnpb_draw import (
    DARK_INKS,
    F32,
    KRAFT,
    PRINT_DARK,
    PRINT_LIGHT,
    RENDER_SIZE,
    SKIN,
    SS,
    STICKERS,
    WHITE,
    Ink,
    apply_ink,
    bbox_of,
    box_dist,
    cap_ratio,
    dot_matrix_mask,
    get_font,
    overlaps,
    paint,
    pick_ink,
    plane,
    quad_corners,
    random_rgb,
    rot_uv,
    smooth_noise,
    soft,
    text_mask,
    to_uint8,
    warp,
)
from bnn_flow.data.cnpb_params import CnpbSynthParams

_ALNUM = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_WORDS = ("LOT", "EXP", "NET WT", "BEST BEFORE", "MADE IN", "BATCH", "QTY", "PCS", "KG", "MFG", "REF",
          "THIS SIDE UP", "FRAGILE", "NO.", "SIZE", "ART", "HANDLE WITH CARE", "PACKED")


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


# ---- the code ---------------------------------------------------------------------------------------------

def code_layer(rng: np.random.Generator, p: CnpbSynthParams, text: str) -> Code:
    """Render the code (a font or ink-jet dots, maybe framed), placed wholly inside the image."""
    n, cap = RENDER_SIZE, rng.uniform(*p.code_height_frac) * RENDER_SIZE
    if rng.random() < p.dot_matrix_prob:
        mask = dot_matrix_mask(text, max(3, round(cap * SS / 7)))
    else:
        name = p.fonts[int(rng.integers(len(p.fonts)))]
        size = max(6, round(cap * SS / cap_ratio(name)))
        spacing = rng.uniform(*p.char_spacing) * size
        mask = text_mask(text, get_font(name, size), spacing, p.baseline_wobble * size, rng)
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
    quad = quad_corners(w, h, cx, cy, angle, persp * max(w, h), rng)
    return Code(warp(mask, quad), quad, bbox_of(quad), cx, cy, angle, w, h)


def _wear(rng: np.random.Generator, amount: float) -> np.ndarray:
    """Ink coverage factor: patchy fading plus speckle dropout (worn stamps, starving ink-jets)."""
    field = smooth_noise(rng, 10) * F32(0.6) + rng.random((RENDER_SIZE, RENDER_SIZE), dtype=F32) * F32(0.4)
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
        font = get_font(name, max(4, round(cap / cap_ratio(name))))  # 1x: minor print needs no supersampling
        mask = text_mask(_distractor_text(rng, forbidden), font, 0.0, 0.0, rng)
        w, h = mask.size
    else:
        widths = rng.integers(1, 4, int(rng.integers(16, 34)))
        row = np.repeat(np.arange(len(widths)) % 2 == 0, widths).astype(np.uint8) * 255
        mask = Image.fromarray(np.repeat(row[None, :], 8, axis=0))
        w, h = mask.size[0] * rng.uniform(0.3, 0.7), rng.uniform(8, 22)
    angle = code.angle + rng.normal() * 3 if rng.random() < 0.6 else rng.uniform(-90, 90)
    for _ in range(6):
        quad = quad_corners(w, h, rng.uniform(-5, 105), rng.uniform(-5, 105), angle, 0.5, rng)
        if not overlaps(bbox_of(quad), code.bbox):
            return warp(mask, quad, ss=1)
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
    return apply_ink(img, layers[1], pick_ink(rng, ink.light))


# ---- the box ----------------------------------------------------------------------------------------------

def _background(rng: np.random.Generator, p: CnpbSynthParams) -> tuple[np.ndarray, bool]:
    """Cardboard or printed carton: base colour, blotches, fibres, corrugation, grain, printed bands."""
    dark = rng.random() < p.dark_carton_prob
    table = PRINT_DARK if dark else (KRAFT, WHITE, PRINT_LIGHT)[int(rng.choice(3, p=[0.45, 0.3, 0.25]))]
    base = random_rgb(rng, table, 0.035)
    tex = F32(1) + (smooth_noise(rng, int(rng.integers(3, 8))) - F32(0.5)) * F32(rng.uniform(0.05, 0.25))
    fib = rng.normal(0.0, rng.uniform(0.004, 0.025), RENDER_SIZE).astype(F32)
    tex = tex + (fib[None, :] if rng.random() < 0.5 else fib[:, None])
    if table is KRAFT and rng.random() < 0.6:  # flutes of corrugated board showing through the liner
        t = plane(0, 0, float(rng.choice([0.0, 90.0])) + rng.normal() * 2) * F32(1 / rng.uniform(5, 12))
        tex = tex + np.abs((t - np.floor(t)) * F32(2) - F32(1)) * F32(rng.uniform(0.02, 0.07))
    tex = tex + rng.normal(0.0, 0.012, (RENDER_SIZE, RENDER_SIZE)).astype(F32)
    img = base * tex[..., None]
    if rng.random() < p.print_band_prob:  # a printed area of another colour with the same contrast class
        band = random_rgb(rng, PRINT_DARK if dark else PRINT_LIGHT + WHITE, 0.03)
        d = plane(rng.uniform(0, 100), rng.uniform(0, 100), rng.uniform(0, 360))
        area = soft(F32(rng.uniform(4, 30)) - np.abs(d), 1.2) if rng.random() < 0.5 else soft(d, 1.2)
        img = paint(img, area, band * tex[..., None])  # a stripe or a half plane
    return img, dark


def _line_off_code(rng: np.random.Generator, code: Code, lo: float, hi: float) -> np.ndarray:
    """Distance field of a line that keeps the whole code on its negative side, lo..hi px away."""
    phi = rng.uniform(0, 360)
    c, s = math.cos(math.radians(phi)), math.sin(math.radians(phi))
    reach = max((x - code.cx) * c + (y - code.cy) * s for x, y in code.quad)
    dist = reach + rng.uniform(lo, hi)
    return plane(code.cx + dist * c, code.cy + dist * s, phi)


def _box_structure(rng: np.random.Generator, p: CnpbSynthParams, img: np.ndarray, code: Code) -> np.ndarray:
    """An edge between two faces, a box corner with the surroundings behind it, or a flap seam."""
    if rng.random() >= p.box_edge_prob:
        return img
    kind = int(rng.integers(3))
    d = _line_off_code(rng, code, 2, 40)
    if kind == 0:  # edge: the other face is lit differently; a crease line along the fold
        tone = rng.uniform(0.5, 0.85) if rng.random() < 0.7 else rng.uniform(1.08, 1.2)
        img = img * (F32(1) + F32(tone - 1) * soft(d)[..., None])
        crease = np.clip(F32(1) - np.abs(d) * F32(0.8), 0, 1)
        return img * (F32(1) - F32(rng.uniform(-0.3, 0.3)) * crease)[..., None]
    if kind == 1:  # corner: beyond two edges lies the shelf/floor/background
        d2 = _line_off_code(rng, code, 2, 40)
        env = random_rgb(rng, ((0.25, 0.25, 0.27), (0.45, 0.40, 0.33), (0.15, 0.17, 0.22), (0.6, 0.6, 0.58)), 0.06)
        shade = (F32(0.8) + F32(0.4) * smooth_noise(rng, 4))[..., None]
        return paint(img, np.maximum(soft(d), soft(d2)), env * shade)
    width = rng.uniform(0.8, 2.5)  # flap seam: a dark gap between two flaps
    img = img * (F32(1) + F32(rng.uniform(-0.1, 0.05)) * soft(d)[..., None])
    return img * (F32(1) - F32(rng.uniform(0.3, 0.7)) * soft(F32(width) - np.abs(d), 1.0)[..., None])


def _label_sticker(rng: np.random.Generator, img: np.ndarray, code: Code) -> np.ndarray:
    """A white/cream label under the code, aligned with it, with a faint drop shadow."""
    c, s = math.cos(math.radians(code.angle)), math.sin(math.radians(code.angle))
    us = [(x - code.cx) * c + (y - code.cy) * s for x, y in code.quad]
    vs = [(y - code.cy) * c - (x - code.cx) * s for x, y in code.quad]
    hu, hv = max(map(abs, us)) + rng.uniform(2, 9), max(map(abs, vs)) + rng.uniform(2, 9)
    colour = random_rgb(rng, WHITE + ((0.97, 0.95, 0.80),), 0.02)
    shadow = soft(-box_dist(code.cx + 1.0, code.cy + 1.5, code.angle, hu, hv), 3.0)
    img = img * (F32(1) - F32(0.3) * shadow)[..., None]
    return paint(img, soft(-box_dist(code.cx, code.cy, code.angle, hu, hv)), colour)


def _tape(rng: np.random.Generator, p: CnpbSynthParams, img: np.ndarray) -> np.ndarray:
    """Packing tape across the box (translucent, so print under it stays readable)."""
    if rng.random() >= p.tape_prob:
        return img
    angle = float(rng.choice([0.0, 90.0])) + rng.normal() * 4 if rng.random() < 0.7 else rng.uniform(0, 180)
    d = np.abs(plane(rng.uniform(0, 100), rng.uniform(0, 100), angle))
    half = F32(rng.uniform(5, 12))
    clear = rng.random() < 0.4
    colour = np.array((0.97, 0.97, 0.97) if clear else (0.78, 0.62, 0.40), dtype=F32)
    alpha = soft(half - d) * F32(rng.uniform(0.12, 0.25) if clear else rng.uniform(0.3, 0.55))
    alpha = alpha + soft(F32(0.7) - np.abs(d - half * F32(0.6)), 1.5) * F32(0.25 if clear else 0.1)  # sheen
    return paint(img, np.clip(alpha, 0, 1), colour)


# ---- occlusion, lighting, camera ------------------------------------------------------------------------

def _occluder(rng: np.random.Generator, code: Code, kind: int, shrink: float) -> tuple[np.ndarray, ...]:
    """(alpha, colour image, shadow) of a bar, a thumb or a sticker over part of the code."""
    c, s = math.cos(math.radians(code.angle)), math.sin(math.radians(code.angle))
    if kind == 0:  # a strap/pen crossing the code roughly across the text direction
        t = rng.uniform(-0.5, 0.5) * code.w
        d = plane(code.cx + t * c, code.cy + t * s, code.angle + rng.uniform(-35, 35))
        half = F32(rng.uniform(1.5, 4.0) * shrink)
        colour = random_rgb(rng, DARK_INKS + STICKERS + SKIN, 0.05)[None, None, :]
        shade = F32(0.8) + F32(0.3) * np.clip(F32(1) - np.abs(d) / half, 0, 1)
        shadow = soft(half + F32(2) - np.abs(d - F32(1.5)), 2.5)
        return soft(half - np.abs(d)), colour * shade[..., None], shadow
    if kind == 1:  # a thumb reaching in from outside, over one end of the code
        theta = (code.angle + 180 * int(rng.integers(2)) + rng.uniform(-40, 40) if rng.random() < 0.7
                 else rng.uniform(0, 360))
        rx = rng.uniform(9, 16)
        ry = rx * rng.uniform(0.9, 1.4)
        a = math.radians(theta)
        reach = code.w / 2 * (1 - rng.uniform(0.1, 0.5) * shrink)  # fingertip stops this far from the centre
        tip = (code.cx - (reach + ry) * math.cos(a), code.cy - (reach + ry) * math.sin(a))
        along, across = rot_uv(tip[0], tip[1], theta)
        r = np.sqrt((across * F32(1 / rx)) ** 2 + (np.maximum(along, 0) * F32(1 / ry)) ** 2)
        shade = F32(0.7) + F32(0.35) * np.clip(F32(1) - (across * F32(1 / rx)) ** 2, 0, 1)
        colour = random_rgb(rng, SKIN, 0.04)[None, None, :] * shade[..., None]
        return soft((F32(1) - r) * F32(rx)), colour, soft((F32(1.25) - r) * F32(rx / 3), 3.0)
    ys, xs = np.nonzero(code.alpha > 0.5)  # a price sticker stuck on one character
    k = int(rng.integers(len(xs)))
    half = rng.uniform(0.2, 0.45) * code.h * shrink
    cx, cy, angle = float(xs[k]) + 0.5, float(ys[k]) + 0.5, rng.uniform(0, 90)
    if rng.random() < 0.5:  # round
        u, v = rot_uv(cx, cy, angle)
        dist = np.sqrt(u * u + v * v) - F32(half)
    else:
        dist = box_dist(cx, cy, angle, half, half)
    colour = random_rgb(rng, STICKERS, 0.03)[None, None, :]
    return soft(-dist), colour, soft(F32(1.5) - dist, 2.0)


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
            return paint(img, alpha, colour)
    return img


def _lighting(rng: np.random.Generator, p: CnpbSynthParams, img: np.ndarray) -> np.ndarray:
    """Illumination gradient, cast shadow, glare, white balance, exposure/contrast, gamma -> uint8."""
    ramp = plane(50, 50, rng.uniform(0, 360)) * F32(rng.uniform(0, p.gradient) / RENDER_SIZE)
    img = img * (F32(1) + ramp)[..., None]
    if rng.random() < p.shadow_prob:
        d = plane(rng.uniform(10, 90), rng.uniform(10, 90), rng.uniform(0, 360))
        img = img * (F32(1) - F32(rng.uniform(0.2, 0.55)) * soft(d, rng.uniform(1.5, 10)))[..., None]
    if rng.random() < p.glare_prob:
        u, v = rot_uv(rng.uniform(0, 100), rng.uniform(0, 100), rng.uniform(0, 180))
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
    ink = pick_ink(rng, dark)  # light ink only on dark cartons (never on a label)
    img = _distractors(rng, p, img, code, ink, forbidden)
    alpha = code.alpha * _wear(rng, rng.uniform(*p.ink_wear)) * F32(rng.uniform(0.8, 1.0))
    img = apply_ink(img, alpha, ink)
    img = _tape(rng, p, img)
    img = _occlude(rng, p, img, code)
    return _camera(rng, p, _lighting(rng, p, img), size)
