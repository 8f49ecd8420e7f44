"""bnn_mvau in simulation (Icarus) against the golden MVAU (ops.reference.xnor_popcount / int_matmul, then
thresholds), over foldings and types, with random stalls, frames back to back, and exactly NF*SF*PIXELS cycles
per frame. Memory images come from bnn_flow.backends.rtl.memfiles; widths are derived as the plan does
(accumulator type covering every reachable accumulator and threshold, thresholds clamped into that range)."""

from __future__ import annotations

import numpy as np
import pytest
from rtl_sim import BIT, Case, IntType, check, frame_periods, pack, run_icarus, stalled_and_clean

from bnn_flow.backends.rtl import memfiles
from bnn_flow.backends.rtl.layers import packed_table
from bnn_flow.conventions import pack_bits
from bnn_flow.ops import reference as ref

FRAMES = 3
U8, S8, S4, S2, U2 = IntType(8, False), IntType(8, True), IntType(4, True), IntType(2, True), IntType(2, False)
BIPOLAR = "bipolar"  # integer layer whose weights are -1/+1 (the plan stores them as INT2: WB = 2 signed)


def mvau_cases(mw: int, mh: int, simd: int, pe: int, pixels: int, binary: bool = True, thresh: bool = True,
               in_dtype: IntType = BIT, w_dtype: IntType | str = BIT, one_bit_bipolar: bool = False,
               stage_levels: int = 2, seed: int = 0, classes: tuple[int, int] = (1, 1), ow: int = 1,
               levels: tuple[int, int] = (1, 0), decode: tuple[int, ...] = ()) -> list[Case]:
    """One configuration; `one_bit_bipolar` stores -1/+1 weights in one bit (WBIPOLAR = 1) instead of INT2;
    `classes` (row, column) != (1, 1): a zero-padded convolution's threshold sets on a map `ow` pixels wide,
    pixel (oy, ox) comparing with set row_class[oy] * column classes + col_class[ox]; `levels` (L, lowest) other
    than (1, 0): an n-bit activation, out = lowest + the number of the row's L sorted thresholds reached;
    `decode`: the inputs are in_dtype indices of this level table (a nonuniform activation, DECODE)."""
    rng = np.random.default_rng(seed)
    if binary:
        w = rng.integers(0, 2, (mh, mw))
        acc_lo, acc_hi = np.zeros(mh, np.int64), np.full(mh, mw, np.int64)
        wt = BIT
    else:
        if w_dtype == BIPOLAR:
            w = rng.choice([-1, 1], (mh, mw))
        else:
            w = rng.integers(w_dtype.min, w_dtype.max + 1, (mh, mw))
        pos, neg = np.clip(w, 0, None), np.clip(w, None, 0)
        lo, hi = (min(decode), max(decode)) if decode else (in_dtype.min, in_dtype.max)
        acc_hi = pos.sum(1) * hi + neg.sum(1) * lo
        acc_lo = pos.sum(1) * lo + neg.sum(1) * hi
        wt = IntType(1, False) if one_bit_bipolar else IntType.covering(int(w.min()), int(w.max()))
    acc = IntType.covering(int(acc_lo.min()), int(acc_hi.max()) + 1)
    ab = acc.bits + (0 if acc.signed else 1)
    x = rng.integers(in_dtype.min, in_dtype.max + 1, (FRAMES * pixels, mw)).astype(np.int64)
    if binary:
        a = ref.xnor_popcount(pack_bits(x), pack_bits(w), mw)
    else:
        a = ref.int_matmul(np.asarray(decode)[x] if decode else x, w.T, 1 << 40)
    t = None
    if thresh and levels != (1, 0):
        n, lowest = levels
        spread = np.sort(rng.integers(-2 * n, 2 * n + 1, (mh, n)), axis=1)  # around the median, some repeated
        t = np.clip(np.median(a, axis=0).astype(np.int64)[:, None] + spread, acc_lo[:, None], acc_hi[:, None] + 1)
        t[0, :] = acc_lo[0]  # every threshold always reached, and none
        t[-1, :] = acc_hi[-1] + 1
    elif thresh:
        # near the actual accumulators (so that every output bit is at stake), clamped as the plan clamps
        sets = classes[0] * classes[1]
        t = np.clip(np.median(a, axis=0).astype(np.int64) + rng.integers(-1, 2, (sets, mh)), acc_lo, acc_hi + 1)
        t[0, 0], t[0, -1] = acc_lo[0], acc_hi[-1] + 1  # the edges of the range: always 1, always 0
        if mh > 2:
            t[0, 1] = acc_hi[1]  # 1 only for the largest accumulator
    row_class, col_class = rng.integers(0, classes[0], pixels // ow), rng.integers(0, classes[1], ow)
    pixel_class = (row_class[:, None] * classes[1] + col_class[None, :]).reshape(-1)
    if levels != (1, 0) and thresh:
        act = IntType.covering(levels[1], levels[1] + levels[0])
        y, ob = ref.multi_threshold(a, t, levels[1]) & ((1 << act.bits) - 1), act.bits  # two's complement
        t = t[None]  # one threshold set
    else:
        y = a if t is None else (a >= t[np.tile(pixel_class, FRAMES)]).astype(np.int64)
        ob = 1 if thresh else acc.bits
    tag = f"s{seed}"
    files = {f"w_{tag}.mem": memfiles.mvau_weight_memh(w, pe, simd, wt.bits, bipolar=one_bit_bipolar),
             f"t_{tag}.mem": "".join(memfiles.mvau_threshold_memh(t_c, mh, pe, ab) for t_c in
                                     (t if t is not None else [None]))}
    extra = {}
    if levels != (1, 0):
        extra = dict(LEVELS=levels[0], OOFF=levels[1])
    if decode:
        db = IntType.covering(min(decode), max(decode))
        extra |= dict(DECODE=1, DB=db.bits, DSIGNED=int(db.signed), LEVEL_TABLE=packed_table(decode, db.bits))
    if classes != (1, 1):
        files[f"c_{tag}.mem"] = memfiles.class_map_memh(row_class, col_class, classes[0] * classes[1])
        extra = dict(CLASSES=classes[0] * classes[1], COL_CLASSES=classes[1], OW=ow, CLASS_FILE=f"c_{tag}.mem")
    params = dict(MW=mw, MH=mh, SIMD=simd, PE=pe, PIXELS=pixels, IB=in_dtype.bits, ISIGNED=int(in_dtype.signed),
                  WB=wt.bits, WSIGNED=int(wt.signed), WBIPOLAR=int(one_bit_bipolar), BINARY=int(binary), AB=ab,
                  THRESH=int(thresh), OB=ob, WEIGHT_FILE=f"w_{tag}.mem", THRESH_FILE=f"t_{tag}.mem",
                  STAGE_LEVELS=stage_levels, **extra)
    kind = "binary" if binary else f"int i{in_dtype.bits}{'s' if in_dtype.signed else 'u'} w{wt.bits}"
    name = (f"mvau {kind} MW={mw} MH={mh} SIMD={simd} PE={pe} px={pixels} thr={int(thresh)} sl={stage_levels}"
            f" classes={classes} levels={levels} decode={decode}")
    return stalled_and_clean(name, "bnn_mvau", params, simd * in_dtype.bits, pe * ob, pack(x, simd, in_dtype.bits),
                             pack(y, pe, ob), seed, files, work=FRAMES * pixels * mw // simd * (mh // pe))


FAST = [
    dict(mw=12, mh=8, simd=4, pe=2, pixels=3),
    dict(mw=9, mh=5, simd=1, pe=5, pixels=2, thresh=False),  # last layer: the popcounts themselves
    dict(mw=27, mh=6, simd=27, pe=3, pixels=2, stage_levels=1),  # MW not a power of two, whole row per beat
    dict(mw=130, mh=4, simd=65, pe=2, pixels=1, stage_levels=3),  # wide tiles, deeper tree pipeline
    dict(mw=6, mh=4, simd=1, pe=1, pixels=2, stage_levels=0),  # PE = SIMD = 1, combinational tree
    dict(mw=27, mh=8, simd=3, pe=4, pixels=2, binary=False, in_dtype=U8, w_dtype=BIPOLAR),  # first layer, INT2
    dict(mw=27, mh=8, simd=9, pe=2, pixels=2, binary=False, in_dtype=U8, w_dtype=BIPOLAR, one_bit_bipolar=True),
    dict(mw=27, mh=8, simd=3, pe=4, pixels=2, binary=False, in_dtype=S8, w_dtype=S2),
    dict(mw=9, mh=4, simd=9, pe=1, pixels=3, binary=False, thresh=False, in_dtype=U8, w_dtype=IntType(3, True)),
    dict(mw=40, mh=4, simd=20, pe=2, pixels=1, binary=False, thresh=False, in_dtype=S8, w_dtype=S4),
    dict(mw=6, mh=4, simd=2, pe=2, pixels=2, binary=False, in_dtype=S4, w_dtype=IntType(6, True)),  # WB > 4: *
    dict(mw=36, mh=8, simd=4, pe=2, pixels=12, classes=(3, 3), ow=4),  # zero padding: a threshold set per class
    dict(mw=18, mh=4, simd=18, pe=4, pixels=6, classes=(2, 3), ow=3),  # SF = NF = 1: a new pixel every cycle
    dict(mw=18, mh=4, simd=9, pe=4, pixels=5, classes=(3, 1), ow=1),  # one column
    # n-bit activations: LEVELS thresholds per lane in one word, out = lowest level + those reached
    dict(mw=27, mh=8, simd=3, pe=4, pixels=2, binary=False, in_dtype=S2, w_dtype=BIPOLAR, levels=(2, -1)),  # A2
    dict(mw=24, mh=6, simd=8, pe=3, pixels=2, binary=False, in_dtype=U2, w_dtype=S2, levels=(3, 0)),  # W2A2 ReLU
    dict(mw=16, mh=4, simd=4, pe=2, pixels=2, binary=False, in_dtype=S4, w_dtype=S4, levels=(15, -8)),  # W4A4
    dict(mw=64, mh=4, simd=16, pe=4, pixels=2, levels=(3, 0)),  # bits in, 2-bit levels out
    # nonuniform activations: n-bit indices in, each decoded through the level table before the dot product
    dict(mw=24, mh=6, simd=8, pe=3, pixels=2, binary=False, in_dtype=U2, w_dtype=BIPOLAR, levels=(3, 0),
         decode=(0, 1, 2, 4)),  # ENQ A2 -> A2 index
    dict(mw=16, mh=4, simd=4, pe=2, pixels=2, binary=False, in_dtype=IntType(3, False), w_dtype=S2,
         thresh=False, decode=(-5, -1, 0, 2, 3, 9, 17, 40)),  # signed levels, last layer
]


def _slow() -> list[dict]:
    grid = []
    for mw, mh in [(64, 64), (576, 32), (100, 12), (256, 10)]:
        for simd, pe in [(1, 1), (mw // 4 if mw % 4 == 0 else 10, 2), (mw, mh)]:
            grid.append(dict(mw=mw, mh=mh, simd=simd, pe=pe, pixels=2))
            grid.append(dict(mw=mw, mh=mh, simd=simd, pe=pe, pixels=1, thresh=False, stage_levels=1))
    for mw, mh, dt in [(27, 16, S8), (9, 64, U8), (147, 16, U8), (50, 10, U2)]:
        for simd, pe in [(1, 1), (mw, mh), (next(d for d in range(2, mw + 1) if mw % d == 0), 2)]:
            grid.append(dict(mw=mw, mh=mh, simd=simd, pe=pe, pixels=2, binary=False, in_dtype=dt, w_dtype=BIPOLAR))
            grid.append(dict(mw=mw, mh=mh, simd=simd, pe=pe, pixels=1, binary=False, thresh=False, in_dtype=dt,
                             w_dtype=S4, stage_levels=3))
    return grid


def _run(tmp_path, grid: list[dict]) -> list[Case]:
    cases = []
    for i, g in enumerate(grid):
        cases += mvau_cases(**g, seed=10 * i + 7)
    run_icarus(cases, tmp_path)
    check(cases)
    for c in cases:
        if c.name.endswith("clean"):
            p = c.params
            sf = p["MW"] // p["SIMD"]
            want = (p["MH"] // p["PE"]) * sf * p["PIXELS"]
            assert frame_periods(c, FRAMES) == [want] * (FRAMES - 1), (c.name, frame_periods(c, FRAMES), want)
            # the first input beat is taken in cycle 1, the vector's last in cycle SF: then LATENCY cycles
            latency = memfiles.mvau_latency(p["SIMD"], bool(p["BINARY"]), p["STAGE_LEVELS"])
            assert c.cycles[0] == sf + latency, (c.name, c.cycles[0], sf, latency)
    return cases


def test_mvau_fast(tmp_path):
    _run(tmp_path, FAST)


@pytest.mark.slow
def test_mvau_slow(tmp_path):
    _run(tmp_path, _slow())
