"""Folding, cycle/resource estimates, board budgets and the report (issue #4, folding part).

Random layer plans are built directly (no ONNX), so many shapes run in a fraction of a second; the CNV
anchor and the command line use a really compiled CNV (full width).
"""

from __future__ import annotations

import json
import math
from itertools import pairwise

import numpy as np
import pytest

from bnn_flow import cli
from bnn_flow.backends.hls import estimate as est
from bnn_flow.backends.hls.folding import (
    fold_fit,
    fold_for_fps,
    legal_foldings,
    limits,
    limits_note,
    make_units,
    over_budget,
)
from bnn_flow.boards import VENDOR_FAMILIES, board_names, load_board
from bnn_flow.build import Build
from bnn_flow.errors import BadInputError
from bnn_flow.plan import BIT, Flatten, IntType, MaxPool, Mvau, Plan, Window

INT8 = IntType(8, True)


# ---------------------------------------------------------------- random plans (pure data) ----------

def _mvau(name, mw, mh, pixels, spatial, in_dtype, rng, last=False):
    binary = in_dtype == BIT
    w = rng.integers(0, 2, (mh, mw)) if binary else rng.choice([-1, 1], (mh, mw))
    hi = mw if binary else mw * 128
    acc = IntType.covering(0 if binary else -hi, hi + 1)
    return Mvau(name, binary, mw, mh, pixels, spatial, w, None if last else np.zeros(mh, np.int64), in_dtype,
                BIT if binary else IntType(2, True), acc)


def random_plan(seed: int) -> Plan:
    """A conv net with odd sizes and channel counts: windows, MVAUs, max-pools, a flatten and FCs."""
    rng = np.random.default_rng(seed)
    h = int(rng.integers(6, 20))
    c = int(rng.choice([1, 3, 5]))
    shape, dtype = (h, h, c), INT8
    plan = Plan(shape, dtype, None, {})
    for i in range(int(rng.integers(1, 4))):
        k = int(rng.choice([1, 3])) if shape[0] >= 3 else 1
        pad = int(rng.integers(0, 2)) if k == 3 else 0
        stride = int(rng.choice([1, 2]))
        oh = (shape[0] + 2 * pad - k) // stride + 1
        plan.layers.append(Window(f"W{i}", shape, (oh, oh, k * k * shape[2]), (k, k), (stride, stride),
                                  (pad,) * 4, 1, dtype))
        mh = int(rng.choice([6, 10, 24, 32, 48, 96]))
        plan.layers.append(_mvau(f"C{i}", k * k * shape[2], mh, oh * oh, (oh, oh), dtype, rng))
        shape, dtype = (oh, oh, mh), BIT
        if shape[0] >= 4 and rng.random() < 0.5:
            plan.layers.append(MaxPool(f"P{i}", shape, (shape[0] // 2, shape[1] // 2, mh), (2, 2), (2, 2), BIT))
            shape = (shape[0] // 2, shape[1] // 2, mh)
    k = math.prod(shape)
    plan.layers.append(Flatten("F", shape, (k,), BIT))
    for j, mh in enumerate([int(rng.choice([12, 40, 64])), 10]):
        plan.layers.append(_mvau(f"FC{j}", k, mh, 1, (), BIT, rng, last=j == 1))
        k = mh
    return plan


def _window_of(plan, m):
    i = plan.layers.index(m)
    return plan.layers[i - 1] if i and isinstance(plan.layers[i - 1], Window) else None


def assert_legal(plan: Plan) -> None:
    for m in plan.mvaus:
        assert m.mh % m.pe == 0 and m.mw % m.simd == 0, m.name
        w = _window_of(plan, m)
        if w is not None:
            assert w.in_shape[-1] % m.simd == 0, m.name
    plan.validate()


# ---------------------------------------------------------------- estimates --------------------------

def test_bram18_blocks_follow_the_block_geometry():
    assert est.bram18_blocks(36, 512) == 1  # 512 x 36 (simple dual port)
    assert est.bram18_blocks(37, 512) == 2
    assert est.bram18_blocks(1, 16384) == 1 and est.bram18_blocks(1, 16385) == 2
    assert est.bram18_blocks(9, 2048) == 1 and est.bram18_blocks(18, 1024) == 1
    assert est.bram18_blocks(64, 9216) == 36  # 2 x 18 blocks of 512 x 36; 4 x 9 of 1K x 18
    assert est.bram18_blocks(0, 100) == 0
    for width, depth in [(1, 1), (7, 300), (100, 5000), (4096, 9)]:  # never below the bit count
        assert est.bram18_blocks(width, depth) >= width * depth / 18432


def test_memory_style_follows_the_exchange_rate():
    p = est.Prices()
    assert est.memory(4096, 9, p).style == "lut"  # wide and shallow: 114 blocks would be wasted
    assert est.memory(16, 8192, p).style == "bram"  # narrow and deep: 8 blocks beat 2,048+ LUTs
    assert est.memory(64, 1, p).style == "const"  # one word of constants folds into the logic
    assert est.memory(16, 8192, est.Prices(bram18=1e9)).style == "lut"


def test_adder_and_popcount_trees_grow_with_their_inputs():
    # one LUT per result bit: 8 + 8 -> 9 bits; four 1-bit operands: two 2-bit sums, then one 3-bit sum
    assert est.adder_tree_luts(1, 8) == 0 and est.adder_tree_luts(2, 8) == 9 and est.adder_tree_luts(4, 1) == 7
    last = 0
    for n in range(1, 300):
        cur = est.popcount_luts(n)
        assert last < cur <= 3 * n
        last = cur
    assert est.popcount_luts(64) > 2.5 * 64  # ~3 LUTs per lane once the tree is deep


@pytest.mark.parametrize("seed", range(6))
def test_more_pe_or_simd_means_fewer_cycles_and_more_logic(seed):
    plan = random_plan(seed)
    lut_only = est.Prices(bram18=1e9, dsp=1e9)  # memories stay in LUTs: the LUT count is comparable
    for m in plan.mvaus:
        for fixed_simd in (1, m.mw):
            pes = [pe for pe in range(1, m.mh + 1) if m.mh % pe == 0]
            ests = [est.mvau_estimate(m, pe, fixed_simd, lut_only) for pe in pes]
            assert all(a.cycles > b.cycles for a, b in pairwise(ests))
            assert all(a.detail["compute_LUT"] < b.detail["compute_LUT"] for a, b in pairwise(ests))
            assert all(a.res.lut <= b.res.lut for a, b in pairwise(ests))
        simds = [s for s in range(1, m.mw + 1) if m.mw % s == 0]
        ests = [est.mvau_estimate(m, 1, s, lut_only) for s in simds]
        assert all(a.cycles > b.cycles for a, b in pairwise(ests))
        assert all(a.detail["compute_LUT"] < b.detail["compute_LUT"] for a, b in pairwise(ests))


def test_mvau_cycles_are_the_design_formula():
    plan = random_plan(1)
    for m in plan.mvaus:
        for pe, simd in legal_foldings(m, _window_of(plan, m))[::3]:
            e = est.mvau_estimate(m, pe, simd, est.Prices())
            assert e.cycles == (m.mh // pe) * (m.mw // simd) * m.pixels


# ---------------------------------------------------------------- folding search ---------------------

@pytest.mark.parametrize("seed", range(12))
def test_target_fps_meets_f_with_the_cheapest_legal_folding_per_layer(seed):
    plan = random_plan(seed)
    units = make_units(plan, est.Prices())
    fastest = max(max(u.cycles[0] for u in units), 1)
    slowest = max(u.cycles[-1] for u in units)
    for t in sorted({fastest, (fastest + slowest) // 2, slowest}):
        fps = 100e6 / t
        r = fold_for_fps(plan, 100.0, fps)
        assert_legal(r.plan)
        assert r.met and r.fps >= fps * (1 - 1e-12)
        tt = math.floor(100e6 / fps)
        folded = {m.name: m for m in r.plan.mvaus}
        for u in make_units(plan, r.prices):
            m = folded[u.mvau.name]
            chosen = next(c for c in u.choices if (c.pe, c.simd) == (m.pe, m.simd))
            assert chosen.cycles <= tt
            # no legal folding of this layer that meets the target is cheaper
            assert all(c.cost >= chosen.cost for c in u.choices if c.cycles <= tt)


@pytest.mark.parametrize("seed", range(4))
def test_unreachable_target_is_reported_never_a_silent_fallback(seed):
    plan = random_plan(seed)
    r = fold_for_fps(plan, 100.0, 1e12)
    assert not r.met and ("maximum folding" in r.reason or "DMA" in r.reason)
    assert_legal(r.plan)
    assert any(m.pe * m.simd > 1 for m in r.plan.mvaus)  # each layer at its fastest, not PE = SIMD = 1
    assert all(m.pe == m.simd == 1 for m in plan.mvaus)  # the caller's plan is not changed


def test_fit_is_the_fastest_design_within_the_budget():
    plan = random_plan(3)
    board = load_board("pynq-z2")
    r = fold_fit(plan, board)
    assert r.met
    assert_legal(r.plan)
    t = r.bottleneck.cycles
    for k, v in r.totals.as_dict().items():
        assert v <= board.resources[k] * 0.85
    # a faster step (the next smaller reachable cycle count) does not fit or cannot be reached
    faster = [c for u in make_units(plan, est.Prices()) for c in u.cycles if c < t]
    if faster:
        assert not fold_for_fps(plan, board.clock_mhz, board.clock_mhz * 1e6 / max(faster), board).met


def test_fit_on_a_tiny_board_reports_not_met(tmp_path):
    yml = tmp_path / "tiny.yaml"
    yml.write_text("name: tiny\npart: xc7z007s\nfamily: zynq7000\nclock_mhz: 100\n"
                   "resources: {LUT: 6000, FF: 12000, BRAM18: 4, URAM: 0, DSP: 10}\n")
    r = fold_fit(random_plan(2), load_board(str(yml)))
    assert not r.met and "even the smallest folding" in r.reason
    r = fold_for_fps(random_plan(2), 100.0, 1.0, load_board(str(yml)))  # reachable, but not on this board
    assert not r.met and "exceeds the tiny budget" in r.reason


# ---------------------------------------------------------------- boards -----------------------------

def test_boards_load_with_budgets_and_infrastructure():
    assert {"pynq-z2", "zcu104", "kv260", "ultra96-v2"} <= set(board_names())
    for name in board_names(VENDOR_FAMILIES):
        b = load_board(name)
        assert b.resources["LUT"] > 10000 and b.resources["BRAM18"] > 100 and b.clock_mhz > 0
        assert b.infrastructure["LUT"] > 0 and b.dma_bits in (64, 128)
    assert set(board_names()) - set(board_names(VENDOR_FAMILIES)) == {"ulx3s-85f", "icebreaker"}
    assert load_board("ulx3s-85f").resources["LUT"] == 83640 and load_board("icebreaker").resources["BRAM18"] == 30
    assert load_board("pynq-z2").part == "xc7z020clg400-1"


def test_bad_board_files_are_one_line_errors(tmp_path):
    with pytest.raises(BadInputError, match="unknown board"):
        load_board("no-such-board")
    bad = tmp_path / "b.yaml"
    bad.write_text("name: b\npart: p\nfamily: zynq7000\nclock_mhz: 100\n"
                   "resources: {LUT: 1, FF: 1, BRAM18: 1, URAM: 0, DSP: 1}\ninfrastructure: {LUT: -5}\n")
    with pytest.raises(BadInputError, match="infrastructure"):
        load_board(str(bad))
    for fit in ("{LUT: 1.5}", "{URAM: 0.5}", "{LUT: 0}", "[0.5]", "{LUT: true}"):
        bad.write_text("name: b\npart: p\nfamily: zynq7000\nclock_mhz: 100\n"
                       f"resources: {{LUT: 1, FF: 1, BRAM18: 1, URAM: 0, DSP: 1}}\nfit_limits: {fit}\n")
        with pytest.raises(BadInputError, match="fit_limits"):
            load_board(str(bad))


def test_fit_limits_per_resource_or_one_margin(tmp_path):
    """Without --margin the fit fills each resource up to the board's limit (ULX3S: LUT 50% for routing, DP16KD
    95%); --margin M keeps M of every budget free."""
    b = load_board("ulx3s-85f")
    assert b.fit_limits == {"LUT": 0.5, "BRAM18": 0.95, "DSP": 0.85}
    assert load_board("pynq-z2").fit_limits == dict.fromkeys(("LUT", "BRAM18", "DSP"), 0.85)
    assert limits(b, None) == {"LUT": 41820.0, "BRAM18": 208 * 0.95, "DSP": 156 * 0.85}
    assert limits(b, 0.1) == {k: b.resources[k] * 0.9 for k in ("LUT", "BRAM18", "DSP")}
    assert limits_note(b, None) == "ulx3s-85f fit limits LUT 50%, BRAM18 95%, DSP 85%"
    assert limits_note(b, 0.15) == limits_note(load_board("pynq-z2"), None) == "with a 15% margin"
    plan = random_plan(1)
    for margin in (None, 0.3):
        r = fold_fit(plan, b, margin=margin)
        assert r.met and not over_budget(r.totals, limits(b, margin))


# ---------------------------------------------------------------- CNV anchor and command line --------

@pytest.fixture(scope="module")
def cnv_build(tmp_path_factory):
    from bnn_flow.compiler import compile_model
    from bnn_flow.export import export_qonnx_file
    from bnn_flow.nets import build_net

    d = tmp_path_factory.mktemp("cnv")
    export_qonnx_file(build_net("cnv", num_classes=10, in_channels=3, image_size=32), d / "m.onnx")
    compile_model(d / "m.onnx", d / "build")
    return d


def test_cnv_fit_on_pynq_z2_beats_bnn_pynq(cnv_build):
    board = load_board("pynq-z2")
    r = fold_fit(Build(cnv_build / "build").plan(folded=False), board, 100.0)
    assert r.met and r.fps >= 9150
    tot = r.totals
    assert tot.lut <= 0.85 * board.resources["LUT"] and tot.bram18 <= 0.85 * board.resources["BRAM18"]
    assert_legal(r.plan)


def test_compile_fit_writes_folding_and_reports(cnv_build, capsys):
    build = cnv_build / "build"
    assert cli.main(["compile", str(cnv_build / "m.onnx"), "--out", str(build), "--board", "pynq-z2",
                     "--fit"]) == 0
    out = capsys.readouterr().out
    assert "MET" in out and "bottleneck" in out
    rep = json.loads((build / "report.json").read_text())
    assert rep["status"] == "MET" and rep["fps"] >= 9150 and rep["board"]["name"] == "pynq-z2"
    assert (build / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert "total" in (build / "report.txt").read_text()
    plan = Build(build).plan()  # the HLS back-end's reader: every MVAU folded as the report says
    assert {m.name: {"PE": m.pe, "SIMD": m.simd} for m in plan.mvaus} == rep["folding"]
    assert_legal(plan)


def test_compile_refold_only_and_unmet_target_exit_1(cnv_build, capsys):
    build = cnv_build / "build"
    rc = cli.main(["compile", "-", "--out", str(build), "--from-step", "fold", "--target-fps", "1e6",
                   "--clock-mhz", "100"])
    captured = capsys.readouterr()
    assert rc == 1 and "NOT MET" in captured.err and len(captured.err.strip().splitlines()) == 1
    rep = json.loads((build / "report.json").read_text())
    assert rep["status"] == "NOT MET" and "maximum folding" in rep["reason"]
    assert_legal(Build(build).plan())
    assert cli.main(["compile", "-", "--out", str(build), "--from-step", "fold", "--target-fps", "2000",
                     "--clock-mhz", "100"]) == 0
    assert json.loads((build / "report.json").read_text())["fps"] >= 2000


@pytest.mark.parametrize("flags,msg", [
    (["--board", "no-such-board"], "unknown board"),
    (["--fit"], "--fit needs --board"),
    (["--target-fps", "100"], "needs --clock-mhz"),
    (["--clock-mhz", "100"], "needs --target-fps"),
    (["--board", "pynq-z2", "--fit", "--target-fps", "5"], "exclude"),
    (["--board", "pynq-z2", "--margin", "1.5"], "--margin"),
])
def test_bad_folding_options_exit_2_before_compiling(tmp_path, capsys, flags, msg):
    assert cli.main(["compile", str(tmp_path / "missing.onnx"), "--out", str(tmp_path / "b"), *flags]) == 2
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_fit_folding_runs_bit_exact_in_csim(cnv_build):
    """The folding --fit writes is one the HLS back-end builds: C-simulation equals the golden model."""
    from bnn_flow.backends.hls import csim
    from bnn_flow.golden import GoldenModel

    if (why := csim.available()) is not None:
        pytest.skip(why)
    build = cnv_build / "build"
    assert cli.main(["compile", "-", "--out", str(build), "--from-step", "fold", "--board", "pynq-z2"]) == 0
    golden = GoldenModel(build)
    x = np.random.default_rng(5).random((4, 3, 32, 32)).astype(np.float32)
    q = golden.spec.apply(x)
    np.testing.assert_array_equal(csim.run_integer(build, q), golden.run_integer(x))
