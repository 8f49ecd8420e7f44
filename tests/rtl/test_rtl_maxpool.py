"""bnn_maxpool in simulation (Icarus) against the golden max-pool (ops.reference.maxpool_bits for bits, the
window max for integers, as golden.py does), with random stalls, frames back to back, and exactly H*W*CG cycles
per frame."""

from __future__ import annotations

import numpy as np
import pytest
from rtl_sim import Case, check, frame_periods, pack, run_icarus, stalled_and_clean

from bnn_flow.conventions import pack_bits, unpack_bits
from bnn_flow.ops import reference as ref

FRAMES = 3


def pool_cases(h: int, w: int, c: int, k: int, s: int, pe: int, eb: int = 1, signed: bool = False,
               seed: int = 0) -> list[Case]:
    rng = np.random.default_rng(seed)
    lo, hi = (-(1 << (eb - 1)), 1 << (eb - 1)) if signed else (0, 1 << eb)
    x = rng.integers(lo, hi, (FRAMES, h, w, c)).astype(np.int64)
    if eb == 1:
        y = unpack_bits(ref.maxpool_bits(pack_bits(x), (k, k), (s, s)), c)
    else:
        y = ref._windows(x, (k, k), (s, s)).max(axis=(3, 4))
    oh, ow = y.shape[1:3]
    params = dict(H=h, W=w, CH=c, KH=k, KW=k, SH=s, SW=s, OH=oh, OW=ow, PE=pe, EB=eb, SIGNED=int(signed))
    name = f"maxpool {h}x{w}x{c} k{k} s{s} pe{pe} eb{eb}{'s' if signed else ''}"
    return stalled_and_clean(name, "bnn_maxpool", params, pe * eb, pe * eb, pack(x, pe, eb), pack(y, pe, eb), seed)


FAST = [
    dict(h=4, w=4, c=6, k=2, s=2, pe=3),
    dict(h=5, w=7, c=2, k=2, s=2, pe=1),  # odd sizes: last row and column dropped
    dict(h=7, w=7, c=4, k=3, s=2, pe=2),  # overlapping 3x3 stride 2 windows
    dict(h=5, w=5, c=3, k=3, s=1, pe=3, eb=4, signed=True),
    dict(h=6, w=6, c=2, k=3, s=2, pe=1, eb=8, signed=False),
    dict(h=2, w=2, c=128, k=2, s=2, pe=128),
    dict(h=4, w=6, c=2, k=1, s=2, pe=2),  # K = 1 (a strided subsample)
]


def _slow() -> list[dict]:
    grid = []
    for h, w, c, k, s, pe in [(28, 28, 16, 2, 2, 8), (7, 7, 64, 2, 2, 32), (9, 9, 5, 3, 3, 5), (6, 6, 4, 3, 1, 2),
                              (13, 13, 3, 3, 2, 1), (8, 10, 6, 3, 2, 3)]:
        grid += [dict(h=h, w=w, c=c, k=k, s=s, pe=pe), dict(h=h, w=w, c=c, k=k, s=s, pe=1, eb=8, signed=True)]
    return grid


def _run(tmp_path, grid: list[dict]) -> None:
    cases = []
    for i, g in enumerate(grid):
        cases += pool_cases(**g, seed=10 * i + 3)
    run_icarus(cases, tmp_path)
    check(cases)
    for c in cases:
        if c.name.endswith("clean"):
            p = c.params
            want = p["H"] * p["W"] * p["CH"] // p["PE"]
            assert frame_periods(c, FRAMES) == [want] * (FRAMES - 1), (c.name, frame_periods(c, FRAMES), want)
            # first output: 3 cycles after the beat (KH-1, KW-1, group 0), taken in cycle 1 + its index
            cg = p["CH"] // p["PE"]
            first = 1 + ((p["KH"] - 1) * p["W"] + p["KW"] - 1) * cg + 3
            assert c.cycles[0] == first, (c.name, c.cycles[0], first)


def test_maxpool_fast(tmp_path):
    _run(tmp_path, FAST)


@pytest.mark.slow
def test_maxpool_slow(tmp_path):
    _run(tmp_path, _slow())
