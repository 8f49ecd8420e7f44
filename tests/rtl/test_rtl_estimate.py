"""The open flow's folding cost model (backends/rtl/estimate.py): chosen by the board's family, cycles from the
RTL library's formulas (the same numbers the generated design and its simulation are checked against), memory
mapping by yosys' cost rule, and resources within the calibration's error of yosys `synth_ecp5` (slow: needs
yosys; bench/rtl_cost.py runs the whole grid)."""

from __future__ import annotations

import dataclasses
import os

import pytest
from test_hls_folding import random_plan

from bnn_flow.backends.hls.cost import HLS_COST, cost_model
from bnn_flow.backends.hls.folding import fold_fit, fold_for_fps
from bnn_flow.backends.rtl import estimate as rest
from bnn_flow.backends.rtl.design import design_of
from bnn_flow.boards import load_board


def test_the_board_family_picks_the_cost_model():
    assert cost_model(None) is HLS_COST and cost_model(load_board("pynq-z2")) is HLS_COST
    assert cost_model(load_board("ulx3s-85f")) is rest.ECP5_COST
    assert cost_model(load_board("icebreaker")) is rest.ICE40_COST


@pytest.mark.parametrize("seed", range(6))
def test_fit_on_a_lattice_board_estimates_the_rtl_design(seed):
    """The fitted design's bottleneck is the generated RTL design's own cycle estimate, every stage's
    cycles equal design.py's, and the resources are this model's (LUT4 units: above the LUT6 figure)."""
    plan = random_plan(seed)
    r = fold_fit(plan, load_board("ulx3s-85f"))
    assert r.cost_model == "rtl"
    design = design_of(r.plan)
    assert r.bottleneck.cycles == max(design.ii_estimate, max(e.cycles for e in r.estimates if e.kind == "dma"))
    stage_cycles = {s.layer.name: s.cycles for s in design.stages if s.layer is not None}
    for e in r.estimates:
        if e.name in stage_cycles:
            assert e.cycles == stage_cycles[e.name], e.name


@pytest.mark.parametrize("seed", range(4))
def test_target_fps_on_a_lattice_board_is_met_in_rtl_cycles(seed):
    plan = random_plan(seed)
    r = fold_for_fps(plan, 50.0, 2_000.0, load_board("ulx3s-85f"))
    if r.met:
        assert design_of(r.plan).ii_estimate <= 50e6 / 2_000.0


def test_memory_mapping_follows_yosys_costs():
    # a deep narrow ROM: block RAM (128 per block beats 1/16 per bit); a wide shallow one: logic
    assert rest.map_memory(36, 512, rom=True).style == "block"
    assert rest.map_memory(256, 9, rom=True).style == "logic"
    # ... up to the family's limit: on ECP5 a ROM of more than 4 Kbit goes to block RAM (routing, not LUTs,
    # is what a wide logic ROM costs); iCE40 keeps yosys' rule alone
    assert rest.map_memory(512, 8, rom=True).style == "logic"
    assert rest.map_memory(4096, 9, rom=True).style == "block"
    assert rest.map_memory(4096, 9, rom=True).blocks == rest.blocks_for(4096, 9) == 114
    assert rest.map_memory(4096, 9, rom=True, fab=rest.ICE40).style == "logic"
    assert rest.yosys_defines(rest.ECP5) == ["-DBNN_ROM_LOGIC_MAX_BITS=4096"]
    assert not rest.yosys_defines(rest.ICE40)
    # with rom_banks (off on ECP5 at the ULX3S clock): a weight ROM (read in two registers) deeper than one
    # block is built from banks of one DP16KD's depth at its width, each registered (bnn_rom.v); read once, or
    # without banks, its blocks are stacked by yosys
    banks = dataclasses.replace(rest.ECP5, rom_banks=True)
    assert rest.yosys_defines(banks) == ["-DBNN_ROM_LOGIC_MAX_BITS=4096", "-DBNN_ROM_BANKS"]
    banked = rest.map_memory(32, 18432, rom=True, fab=banks, banked=True)
    assert (banked.blocks, banked.ff) == (36, 32 * 36)
    stacked = rest.map_memory(32, 18432, rom=True, banked=True)
    assert (stacked.blocks, stacked.ff) == (rest.blocks_for(32, 18432), 64)
    assert rest.map_memory(32, 18432, rom=True, fab=banks).ff == 32
    assert rest.map_memory(32, 512, rom=True, fab=banks, banked=True).ff == 64  # one bank: read + second register
    # a RAM: 16 x 4 LUT RAM cells beat flip-flops; a big one goes to block RAM
    assert rest.map_memory(16, 32, rom=False).style == "distributed"
    assert rest.map_memory(64, 4096, rom=False).style == "block"
    assert rest.map_memory(64, 4096, rom=False).blocks == rest.blocks_for(64, 4096) == 16
    # iCE40: 4 Kbit blocks at half the ECP5 block's cost, no LUT RAM (a tiny RAM is flip-flops)
    assert rest.map_memory(64, 4096, rom=False, fab=rest.ICE40).blocks == 64
    assert rest.map_memory(16, 32, rom=False, fab=rest.ICE40).style == "block"
    assert rest.map_memory(4, 4, rom=False, fab=rest.ICE40).style == "logic"
    assert rest.map_memory(8, 1, rom=True).lut4 == 0  # one word: constants in the logic


def test_ice40_counts_logic_cells():
    """An iCE40 logic cell holds one LUT4 and one FF: a register fed by a register (the weights' second read)
    takes a pass-through cell, and a share of the other FFs finds no LUT to pack with (fitted on two measured
    builds). An ECP5 slice feeds its FFs without the LUTs: LUT4 alone."""
    ecp5, ice40 = rest.map_memory(32, 512, rom=True, banked=True), rest.map_memory(32, 512, rom=True, banked=True,
                                                                                  fab=rest.ICE40)
    assert ice40.lut4 == rest.map_memory(32, 512, rom=True, fab=rest.ICE40).lut4 + 32 and ecp5.lut4 == 0
    assert rest.ECP5.logic_cells(1000, 800) == 1000
    assert rest.ICE40.logic_cells(1000, 800) == 1000 + round(0.27 * 800)
    assert rest.ICE40_COST.units["LUT"].startswith("logic cell")


@pytest.mark.slow
def test_estimate_tracks_synthesis(tmp_path, tmp_path_factory, monkeypatch):
    """A few grid points of bench/rtl_cost.py: LUT4 within 35% (the grid's binary MVAUs: mostly within 15%)
    and block RAMs exact."""
    if "YOWASP_CACHE_DIR" not in os.environ:
        monkeypatch.setenv("YOWASP_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "yowasp-cache"))
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("rtl_cost", Path(__file__).parents[2] / "bench" / "rtl_cost.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for cfg in (bench.grid(quick=True)[0], bench.grid(quick=True)[5]):
        row = bench.measure(cfg, tmp_path)
        assert row["synth"]["DP16KD"] == row["estimate"]["DP16KD"], row
        assert abs(row["error"]["LUT4"]) <= 0.35, row
