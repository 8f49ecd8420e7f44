"""bnn_fifo and bnn_dwc in simulation (Icarus): random elements through, random stalls on both sides, frames
back to back; the element order must be unchanged and the cycles per frame exactly the documented ones."""

from __future__ import annotations

import numpy as np
from rtl_sim import Case, check, frame_periods, pack, run_icarus, stalled_and_clean

FRAMES = 3


def fifo_cases(width: int, depth: int, beats: int, seed: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    data = [int(x) for x in rng.integers(0, 1 << min(width, 62), beats * FRAMES)]
    params = dict(WIDTH=width, DEPTH=depth, BLOCK_DEPTH=16)  # depth >= 16: the block-RAM variant
    return stalled_and_clean(f"fifo W={width} D={depth}", "bnn_fifo", params, width, width, data, data, seed)


def dwc_cases(in_e: int, out_e: int, eb: int, n: int, seed: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    elems = rng.integers(-(1 << (eb - 1)) if eb > 1 else 0, 1 << (eb - 1) if eb > 1 else 2, n * FRAMES)
    params = dict(IN_E=in_e, OUT_E=out_e, EB=eb, N=n)
    return stalled_and_clean(f"dwc {in_e}->{out_e} EB={eb} N={n}", "bnn_dwc", params, in_e * eb, out_e * eb,
                             pack(elems, in_e, eb), pack(elems, out_e, eb), seed)


FAST_FIFO = [(8, 2, 20), (5, 3, 17), (33, 16, 40), (12, 20, 50)]
FAST_DWC = [(1, 4, 1, 16), (4, 1, 1, 16), (2, 3, 8, 12), (3, 2, 8, 12), (6, 4, 1, 24), (64, 96, 1, 192),
            (5, 5, 4, 10), (7, 3, 2, 42)]
MORE_DWC = [(1, 64, 1, 128), (64, 1, 1, 128), (32, 48, 1, 96), (48, 32, 1, 96), (3, 7, 8, 42), (128, 64, 1, 256),
            (9, 4, 4, 72), (4, 9, 4, 72)]


def _cases(fifos, dwcs) -> list[Case]:
    cases = []
    for k, f in enumerate(fifos):
        cases += fifo_cases(*f, seed=100 + 2 * k)
    for k, c in enumerate(dwcs):
        cases += dwc_cases(*c, seed=200 + 2 * k)
    return cases


def _check_cycles(cases: list[Case]) -> None:
    for c in cases:
        if not c.name.endswith("clean"):
            continue
        p = c.params
        if c.module == "bnn_fifo":
            want = len(c.beats_in) // FRAMES
            first = 1 + (3 if p["DEPTH"] >= p["BLOCK_DEPTH"] else 1)  # input from cycle 1, then the latency
        else:
            want = max(p["N"] // p["IN_E"], p["N"] // p["OUT_E"])
            # the first output beat needs ceil(OUT_E/IN_E) input beats (cycles 1, 2, ...), then one cycle
            first = -(-p["OUT_E"] // p["IN_E"]) + (1 if p["IN_E"] != p["OUT_E"] else 0)
        assert frame_periods(c, FRAMES) == [want] * (FRAMES - 1), (c.name, frame_periods(c, FRAMES), want)
        assert c.cycles[0] == first, (c.name, c.cycles[0], first)


def test_fifo_dwc(tmp_path):
    """The whole grid: it simulates in well under a second."""
    cases = _cases(FAST_FIFO + [(64, 600, 700), (1, 2, 30), (17, 31, 80)], FAST_DWC + MORE_DWC)
    run_icarus(cases, tmp_path)
    check(cases)
    _check_cycles(cases)
