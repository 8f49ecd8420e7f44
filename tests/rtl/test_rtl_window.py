"""bnn_window (sliding-window generator) in simulation (Icarus) against the golden im2col
(ops.reference.sliding_window_bits / sliding_window_ints), with random stalls, frames back to back, and the
documented steady-state cycles per frame: max(OH*OW*KH*KW*CG, H*W*CG)."""

from __future__ import annotations

import numpy as np
import pytest
from rtl_sim import Case, check, frame_periods, pack, run_icarus, stalled_and_clean

from bnn_flow.conventions import pack_bits, unpack_bits
from bnn_flow.ops import reference as ref

FRAMES = 3


def window_cases(h: int, w: int, c: int, k: int | tuple[int, int], s: int | tuple[int, int],
                 pad: tuple[int, int, int, int], simd: int, eb: int = 1, signed: bool = False, pad_value: int = 1,
                 seed: int = 0) -> list[Case]:
    """pad = (top, left, bottom, right); eb = 1 and not signed: a binary map (golden bit im2col)."""
    kh, kw = (k, k) if isinstance(k, int) else k
    sh, sw = (s, s) if isinstance(s, int) else s
    rng = np.random.default_rng(seed)
    lo, hi = (-(1 << (eb - 1)), 1 << (eb - 1)) if signed else (0, 1 << eb)
    x = rng.integers(lo, hi, (FRAMES, h, w, c)).astype(np.int64)
    if eb == 1 and not signed:
        y = unpack_bits(ref.sliding_window_bits(pack_bits(x), c, (kh, kw), (sh, sw), pad, pad_value), kh * kw * c)
    else:
        y = ref.sliding_window_ints(x, (kh, kw), (sh, sw), pad, pad_value)
    oh, ow = y.shape[1:3]
    params = dict(H=h, W=w, CH=c, KH=kh, KW=kw, SH=sh, SW=sw, PT=pad[0], PL=pad[1], OH=oh, OW=ow, SIMD=simd, EB=eb,
                  PAD=pad_value)
    name = f"window {h}x{w}x{c} k{kh}x{kw} s{sh}x{sw} pad{pad}={pad_value} simd{simd} eb{eb}{'s' if signed else ''}"
    return stalled_and_clean(name, "bnn_window", params, simd * eb, simd * eb, pack(x, simd, eb), pack(y, simd, eb),
                             seed)


def window_cycles(p: dict) -> int:
    """bnn_window's steady-state cycles per frame (its header): max(output beats, input beats)."""
    cg = p["CH"] // p["SIMD"]
    return max(p["OH"] * p["OW"] * p["KH"] * p["KW"] * cg, p["H"] * p["W"] * cg)


FAST = [
    dict(h=5, w=5, c=4, k=3, s=1, pad=(1, 1, 1, 1), simd=2, pad_value=1),  # same conv, C/SIMD = 2
    dict(h=5, w=5, c=2, k=3, s=1, pad=(1, 1, 1, 1), simd=2, pad_value=0),  # pad bit 0
    dict(h=6, w=5, c=3, k=3, s=2, pad=(0, 0, 0, 0), simd=3),  # stride 2, last row/column dropped
    dict(h=7, w=6, c=2, k=3, s=2, pad=(1, 1, 1, 1), simd=1),  # stride 2, padded, non-square
    dict(h=5, w=4, c=3, k=3, s=1, pad=(1, 1, 1, 1), simd=1, eb=8, signed=True, pad_value=-3),  # integer padding
    dict(h=7, w=6, c=1, k=4, s=3, pad=(1, 1, 1, 1), simd=1, eb=8, pad_value=0),  # u8 stem, kernel 4 stride 3
    dict(h=4, w=6, c=4, k=1, s=1, pad=(0, 0, 0, 0), simd=2),  # K = 1
    # an output row per beat (OW*KH*KW*CG = 1): the next row's values are computed in the same cycle (g_now);
    # every other beat (= 2): the computed-ahead registers (g_ahead) at their tightest
    dict(h=4, w=1, c=2, k=1, s=1, pad=(0, 0, 0, 0), simd=2),
    dict(h=5, w=2, c=1, k=1, s=1, pad=(0, 0, 0, 0), simd=1),
    dict(h=4, w=4, c=6, k=2, s=2, pad=(0, 1, 1, 0), simd=6),  # asymmetric padding
    dict(h=3, w=8, c=2, k=(2, 3), s=(1, 2), pad=(0, 1, 0, 1), simd=1),  # non-square kernel and stride
    dict(h=6, w=6, c=2, k=3, s=1, pad=(0, 0, 0, 0), simd=1),  # valid conv: the tail rows term of the ring
]


def _slow() -> list[dict]:
    rng = np.random.default_rng(5)
    grid = []
    for h, w, c, k, s, padded in [(8, 8, 6, 3, 1, True), (9, 7, 5, 3, 2, True), (6, 6, 16, 2, 2, False),
                                  (10, 10, 3, 5, 1, True), (5, 9, 64, 3, 1, True), (12, 12, 2, 4, 3, False),
                                  (8, 8, 4, 1, 2, False), (2, 3, 2, 3, 1, True), (16, 16, 1, 3, 1, True)]:
        for simd in sorted({1, c, *[d for d in range(2, c) if c % d == 0][:1]}):
            pad = tuple(int(v) for v in rng.integers(0, 2, 4)) if padded else (0, 0, 0, 0)
            grid.append(dict(h=h, w=w, c=c, k=k, s=s, pad=pad, simd=simd, pad_value=int(rng.integers(0, 2))))
        grid.append(dict(h=h, w=w, c=c, k=k, s=s, pad=(1, 1, 1, 1) if padded else (0, 0, 0, 0), simd=1, eb=8,
                         signed=True, pad_value=int(rng.integers(-128, 128))))
    return grid


def _run(tmp_path, grid: list[dict]) -> None:
    cases = []
    for i, g in enumerate(grid):
        cases += window_cases(**g, seed=10 * i + 1)
    run_icarus(cases, tmp_path)
    check(cases)
    bad = [(c.name, frame_periods(c, FRAMES), window_cycles(c.params)) for c in cases if c.name.endswith("clean")
           and frame_periods(c, FRAMES) != [window_cycles(c.params)] * (FRAMES - 1)]
    assert not bad, bad
    for c in cases:  # first output beat: (KH - PT) rows after the first input beat (cycle 1), plus 2
        p = c.params
        if c.name.endswith("clean") and p["KH"] > p["PT"]:
            want = 1 + (p["KH"] - p["PT"]) * p["W"] * p["CH"] // p["SIMD"] + 2
            assert c.cycles[0] == want, (c.name, c.cycles[0], want)


def test_window_fast(tmp_path):
    _run(tmp_path, FAST)


@pytest.mark.slow
def test_window_slow(tmp_path):
    _run(tmp_path, _slow())
