"""The `rtl` target in Verilator: bit-exact with the golden model on every image, for tiny random nets
(8-bit and 1-bit bipolar inputs, binary and integer first layers, max-pool, channels not multiples of 8),
unfolded and folded (width converters), frames back to back and with random stalls at both top ports;
cycles measured against the estimate; the simulation cache; `bnn-flow run --target rtl` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rtl_nets import CASES, SLOW_CASES, cache_root, case_images, compile_case, legal_folding, shared_cache  # noqa: F401

from bnn_flow import cli
from bnn_flow.backends import registry
from bnn_flow.backends.rtl import codegen, cycles, sim, simbuild
from bnn_flow.backends.rtl.fifo_sizing import deep_overrides, size_fifos
from bnn_flow.backends.rtl.sim import NO_STALLS, Stalls, simulate
from bnn_flow.backends.rtl.target import RtlTarget
from bnn_flow.build import Build
from bnn_flow.errors import CheckFailedError
from bnn_flow.golden import GoldenModel
from bnn_flow.testing import set_folding

pytestmark = pytest.mark.skipif(simbuild.tool_missing() is not None, reason="verilator not installed")
STALLS = Stalls(p_valid=150, p_ready=120, seed=7)


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    return {name: compile_case(case, tmp_path_factory.mktemp(name)) for name, case in CASES.items()}


def _exact(build_dir, x, stalls=NO_STALLS):
    g = GoldenModel(build_dir)
    q = g.spec.apply(x)
    r = simulate(build_dir, q, stalls=stalls)
    np.testing.assert_array_equal(r.outputs, g.run_integer_q(q))
    return r


def _check_cycles(r):
    """Every stage alone takes exactly its estimated cycles per frame."""
    assert r.iso_cycles() == [s.cycles for s in r.design.stages]


@pytest.mark.parametrize("name", ["bits", pytest.param("int8", marks=pytest.mark.slow)])
def test_bit_exact_unfolded(builds, name):
    r = _exact(builds[name], case_images(name, 6))
    _check_cycles(r)
    assert r.measured_ii() >= r.design.ii_estimate  # default FIFOs: never faster than the slowest stage


def test_bit_exact_folded_with_converters_and_stalls(builds):
    """Random legal PE/SIMD (width converters wherever a PE differs from the next SIMD), back to back and with
    random stalls on both sides; the stalled run proves back-pressure through every stage and FIFO."""
    build_dir = builds["int8"]
    plan = Build(build_dir).plan()
    set_folding(build_dir, legal_folding(plan, np.random.default_rng(3)))
    try:
        x = case_images("int8", 6)
        r = _exact(build_dir, x)
        assert any(s.kind == "dwc" for s in r.design.stages)
        assert "bnn_dwc #(" in (build_dir / "rtl" / codegen.TOP_FILE).read_text()
        _check_cycles(r)
        rs = _exact(build_dir, x, STALLS)
        assert rs.stats["cycles"] > r.stats["cycles"]  # the stalls did slow it down
    finally:
        set_folding(build_dir, None)


def test_cache_and_unchanged_files(builds, monkeypatch):
    """A second run rebuilds nothing and rewrites no generated file; another folding is another model."""
    build_dir = builds["bits"]
    x = case_images("bits", 3)
    _exact(build_dir, x)
    rtl = build_dir / "rtl"
    times = {p.name: p.stat().st_mtime_ns for p in rtl.iterdir() if p.is_file() and p.suffix in (".v", ".memh", ".h")}
    real_run = simbuild.subprocess.run

    def no_build(cmd, *a, **k):
        assert "--cc" not in cmd and cmd[0] != "make", f"rebuilt: {cmd[:3]}"
        return real_run(cmd, *a, **k)
    monkeypatch.setattr(simbuild.subprocess, "run", no_build)
    _exact(build_dir, x)
    assert times == {n: (rtl / n).stat().st_mtime_ns for n in times}
    assert len(list(rtl.glob("obj-*"))) == 1


def test_relative_build_path(builds, monkeypatch):
    """A BUILD given relative to the working folder (what `make demo` passes: runs/demo/build) simulates too:
    Verilator runs inside the project folder, so the paths it is handed must not be relative."""
    build_dir = builds["bits"]
    monkeypatch.chdir(build_dir.parent)
    _exact(Path(build_dir.name), case_images("bits", 2))


def test_timeout_is_a_check_failure(builds, monkeypatch):
    """A run that ends without all its output beats (a deadlock, or a hopeless cycle budget) stops with
    CheckFailedError naming the beats it got, never hangs."""
    monkeypatch.setattr(sim, "_limits", lambda *a: (300, 200))
    x = case_images("bits", 3)
    with pytest.raises(CheckFailedError, match="timeout after 300 cycles"):
        simulate(builds["bits"], GoldenModel(builds["bits"]).spec.apply(x))


def test_run_cli_sizes_fifos_and_writes_cycles(builds, tmp_path, monkeypatch):
    """`bnn-flow run --target rtl` (registry entry added here as the registry line will): FIFOs sized once, the
    sized design keeps the estimated II, labels and scores equal golden's, cycles.json within 5%."""
    monkeypatch.setitem(registry.TARGETS, "rtl", "bnn_flow.backends.rtl.target:RtlTarget")
    registry.target.cache_clear()
    build_dir = builds["bits"]
    plan = Build(build_dir).plan()
    set_folding(build_dir, legal_folding(plan, np.random.default_rng(5)))
    try:
        x = case_images("bits", 5)
        np.save(tmp_path / "x.npy", x)
        outs = {}
        for target in ("rtl", "golden"):
            assert cli.main(["run", str(build_dir), "--target", target, "--input", str(tmp_path / "x.npy"),
                             "--output", str(tmp_path / f"{target}.npz")]) == 0
            outs[target] = np.load(tmp_path / f"{target}.npz")
        np.testing.assert_array_equal(outs["rtl"]["labels"], outs["golden"]["labels"])
        np.testing.assert_array_equal(outs["rtl"]["scores"], outs["golden"]["scores"])
        rtl = build_dir / "rtl"
        sizing = json.loads((rtl / codegen.FIFO_DEPTHS).read_text())
        assert sizing["complete"] and sizing["ii"]["sized"] <= sizing["ii"]["estimate"] * 1.002
        assert all(d >= 2 and d & (d - 1) == 0 for d in sizing["depths"].values())
        assert all(sizing["depths"][k] <= v for k, v in sizing.get("occupancy_depths", {}).items())
        # the run-time capacities of the deep model act exactly as FIFOs of those depths (what minimizing relies on)
        d = codegen.generate(Build(build_dir))
        q = GoldenModel(build_dir).spec.apply(x)
        assert max(sizing["depths"].values()) < 512  # LUT FIFOs only: the same schedule, cycle for cycle
        real = simulate(build_dir, q, iso=False)
        capped = simulate(build_dir, q, iso=False, overrides=deep_overrides(d), caps=sizing["depths"])
        np.testing.assert_array_equal(real.frames, capped.frames)
        assert real.stats["fifo_max"] == capped.stats["fifo_max"]
        rec = json.loads((rtl / cycles.CYCLES_JSON).read_text())
        assert rec["ii"]["within_tolerance"] and abs(rec["ii"]["error"]) <= 0.05
        assert all(row["within_tolerance"] for row in rec["layers"])
        assert "II: measured" in (rtl / cycles.CYCLES_TXT).read_text()
        project = json.loads((rtl / codegen.PROJECT_JSON).read_text())
        assert {f["name"]: f["depth"] for f in project["fifos"]} == sizing["depths"]
    finally:
        set_folding(build_dir, None)
        registry.target.cache_clear()


def test_missing_verilator_is_exit_3(builds, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(registry.TARGETS, "rtl", "bnn_flow.backends.rtl.target:RtlTarget")
    registry.target.cache_clear()
    monkeypatch.setattr(simbuild, "VERILATOR", "no-such-verilator")
    try:
        assert RtlTarget("rtl").available() is not None
        np.save(tmp_path / "x.npy", case_images("bits", 2))
        assert cli.main(["run", str(builds["bits"]), "--target", "rtl", "--input", str(tmp_path / "x.npy"),
                         "--output", str(tmp_path / "y.npz")]) == 3
        err = capsys.readouterr().err.strip()
        assert "no-such-verilator" in err and "apt-get install" in err and len(err.splitlines()) == 1
    finally:
        registry.target.cache_clear()


def test_illegal_folding_is_one_line_exit_2(builds, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(registry.TARGETS, "rtl", "bnn_flow.backends.rtl.target:RtlTarget")
    registry.target.cache_clear()
    build_dir = builds["int8"]
    conv = next(m for m in Build(build_dir).plan().mvaus if m.out_spatial and m.in_dtype.bits == 1)
    set_folding(build_dir, {conv.name: {"PE": 1, "SIMD": 9}})  # its window has C = 5 channels
    try:
        np.save(tmp_path / "x.npy", case_images("int8", 2))
        assert cli.main(["run", str(build_dir), "--target", "rtl", "--input", str(tmp_path / "x.npy"),
                         "--output", str(tmp_path / "y.npz")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and conv.name in err and "Traceback" not in err
    finally:
        set_folding(build_dir, None)
        registry.target.cache_clear()


@pytest.mark.slow
def test_sizing_deep_path(builds):
    """The unfolded 8-bit net loses a third of its throughput with 2-beat FIFOs (an MVAU with NF = 65 takes its
    594-beat input vector in its first fold): sizing takes the deep path, keeps one deep FIFO and gets the II
    back to the estimate; the other FIFOs stay at 2 (occupancy alone asked for more)."""
    b = Build(builds["int8"])
    rec = size_fifos(b, force=True)
    assert rec["complete"] and rec["ii"]["minimal"] > 1.5 * rec["ii"]["estimate"]
    assert rec["ii"]["sized"] == rec["ii"]["deep_paced"] == rec["ii"]["estimate"]
    deep = [k for k, v in rec["depths"].items() if v > 2]
    assert len(deep) == 1 and rec["depths"][deep[0]] >= 1024 and rec["minimizing_runs"] > 0
    assert sum(rec["occupancy_depths"].values()) > sum(rec["depths"].values())
    (b.path / "rtl" / codegen.FIFO_DEPTHS).unlink()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SLOW_CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_slow_random_foldings(tmp_path, name, seed):
    """More nets, unfolded and at two random foldings, with and without stalls, FIFOs sized: bit-exact,
    II within 5% of the estimate, every stage alone exactly at its estimate."""
    build_dir = compile_case(SLOW_CASES[name], tmp_path)
    if seed:
        set_folding(build_dir, legal_folding(Build(build_dir).plan(), np.random.default_rng(seed)))
    x = case_images(name, 8, seed=seed)
    target = RtlTarget("rtl")
    g = GoldenModel(build_dir)
    np.testing.assert_array_equal(target.run_integer(Build(build_dir), g.spec.apply(x)), g.run_integer(x))
    rec = json.loads((build_dir / "rtl" / cycles.CYCLES_JSON).read_text())
    assert rec["ii"]["within_tolerance"], rec["ii"]
    assert all(row["measured_cycles"] == row["estimated_cycles"] for row in rec["layers"])
    _exact(build_dir, x[:4], Stalls(p_valid=90, p_ready=200, seed=seed + 3))
