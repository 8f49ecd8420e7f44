"""The open bitstream flow (bnn_flow/backends/rtl/flow*.py): board files, the rtl_project.json contract and
its hostile inputs, the checks, and the whole flow (yosys -> netlist simulation -> nextpnr -> ecppack) on the
stand-in accelerator of test_rtl_uart.py.

The YoWASP tools compile their WebAssembly on first use (about a minute per tool) into their cache. HOME is a
tmp folder in tests (conftest.py), so these tests point YOWASP_CACHE_DIR (the tools' own setting) at one
folder in the system tmp dir, kept across test runs, unless it is set already.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from test_rtl_uart import Core

import bnn_flow.boards as boards
from bnn_flow.backends.rtl import flow, flow_board, flow_project, flow_report, flow_tools
from bnn_flow.backends.rtl.board_protocol import Layout
from bnn_flow.errors import BadInputError, CheckFailedError, MissingToolError

YOWASP_CACHE = Path(tempfile.gettempdir()) / "bnn-flow-yowasp-cache"
ULX3S_PINS = {"clk_osc": "G2", "uart_rx": "M1", "uart_tx": "L4", "btn_reset": "R1", "led[0]": "B2", "led[1]": "C2",
              "led[2]": "C1", "led[3]": "D2", "led[4]": "D1", "led[5]": "E2", "led[6]": "E1", "led[7]": "H3"}
ICEBREAKER_PINS = {"clk_osc": "35", "uart_rx": "6", "uart_tx": "9", "btn_reset": "10", "led_red": "11",
                   "led_green": "37"}


@pytest.fixture(autouse=True)
def lattice_families(monkeypatch):
    """The board loader learns the ecp5 and ice40 families (a no-op once bnn_flow/boards knows them)."""
    if "ecp5" not in boards.FAMILIES:
        monkeypatch.setattr(boards, "FAMILIES", (*boards.FAMILIES, "ecp5", "ice40"))
        monkeypatch.setitem(boards.DMA_BITS, "ecp5", 4096)
        monkeypatch.setitem(boards.DMA_BITS, "ice40", 4096)


@pytest.fixture()
def tools(monkeypatch):
    if "YOWASP_CACHE_DIR" not in os.environ:
        monkeypatch.setenv("YOWASP_CACHE_DIR", str(YOWASP_CACHE))
    if shutil.which("iverilog") is None:
        pytest.skip("iverilog not installed")
    try:
        flow_tools.find_tools(["yosys", "nextpnr-ecp5", "ecppack", "ecppll"])
    except MissingToolError as e:
        pytest.skip(str(e))


def standin(tmp: Path, core: Core) -> Path:
    rtl = tmp / "rtl"
    rtl.mkdir(parents=True, exist_ok=True)
    (rtl / "bnn_top.v").write_text(core.verilog())
    (rtl / "rtl_project.json").write_text(json.dumps(core.project()))
    return rtl


# ------------------------------------------------------------------ boards, contract, checks (no tools) ---

def test_board_files_and_their_pins():
    """Both boards load with their open_flow section; the pins equal the constraint files' and the public
    constraint files' sites (emard/ulx3s ulx3s_v20.lpf, icestorm's icebreaker.pcf)."""
    ulx = flow_board.load_open_board("ulx3s-85f")
    ice = flow_board.load_open_board("icebreaker")
    assert (ulx.family, ulx.device, ulx.package, ulx.speed, ulx.oscillator_mhz) == ("ecp5", "85k", "CABGA381", 6, 25)
    assert (ice.family, ice.device, ice.package, ice.oscillator_mhz) == ("ice40", "up5k", "sg48", 12)
    assert ulx.board.resources["LUT"] == 83640 and ulx.board.resources["BRAM18"] == 208
    assert ulx.board.resources["DSP"] == 156 and ice.board.resources["LUT"] == 5280
    for ob, pins in ((ulx, ULX3S_PINS), (ice, ICEBREAKER_PINS)):
        flow_board.check_pins(ob)
        assert flow_board.constraint_pins(ob.constraints) == pins
    assert flow_board.clocks_per_bit(75e6, ulx.baud) == 25 and flow_board.clocks_per_bit(12e6, ice.baud) == 12


def test_pin_and_board_mistakes_are_refused(tmp_path):
    (tmp_path / "b.lpf").write_text('LOCATE COMP "clk_osc" SITE "G3";\n')
    text = (boards.BOARD_DIR / "ulx3s-85f.yaml").read_text().replace("ecp5/ulx3s-85f.lpf", "b.lpf")
    (tmp_path / "b.yaml").write_text(text)
    with pytest.raises(BadInputError, match="differ"):
        flow_board.check_pins(flow_board.load_open_board(str(tmp_path / "b.yaml")))
    (tmp_path / "c.yaml").write_text(text.replace("device: 85k", "device: 85k;reboot"))
    with pytest.raises(BadInputError, match="not allowed"):
        flow_board.load_open_board(str(tmp_path / "c.yaml"))
    with pytest.raises(BadInputError, match="use --flow vendor"):
        flow_board.load_open_board("pynq-z2")
    for note in ('"line one\\nline two"', "[1, 2]", '"' + "x" * 301 + '"'):  # report text: one printable line
        (tmp_path / "d.yaml").write_text(text.replace("  clock_note:", f"  clock_note: {note}\n  old_note:"))
        with pytest.raises(BadInputError, match="clock_note must be one printable line"):
            flow_board.load_open_board(str(tmp_path / "d.yaml"))
    assert "25 clocks per UART bit" in flow_board.load_open_board("ulx3s-85f").clock_note
    with pytest.raises(BadInputError, match="cannot make 3000000 baud"):
        flow_board.clocks_per_bit(10e6, 3_000_000)
    with pytest.raises(BadInputError, match="16 to 275 MHz"):
        flow_board.pll_params(flow_board.load_open_board("icebreaker"), 8, None, None)


@pytest.mark.parametrize("change,message", [
    ({"top": "other"}, "the top must be bnn_top"),
    ({"sources": ["../../etc/passwd"]}, "inside the RTL folder"),
    ({"sources": ["/etc/passwd"]}, "inside the RTL folder"),
    ({"sources": ["bnn_top.v; rm -rf x"]}, "not allowed"),
    ({"sources": ["missing.v"]}, "not found"),
    ({"memfiles": ["w$(id).memh"]}, "not allowed"),
    ({"classes": 9}, "does not fit"),
    ({"out": {"width": 80, "elems_per_beat": 2, "elem_bits": 40, "signed": True, "beats_per_frame": 2}},
     "wider than 32 bits"),
    ({"in": {"width": 8, "elems_per_beat": 2, "elem_bits": 8, "signed": False, "beats_per_frame": 2}}, "add up"),
])
def test_project_contract_errors(tmp_path, change, message):
    rtl = standin(tmp_path, Core())
    (rtl / "rtl_project.json").write_text(json.dumps({**Core().project(), **change}))
    with pytest.raises(BadInputError, match=message):
        flow_project.load_project(rtl)


def test_yosys_script_and_board_top_parameters(tmp_path):
    core = Core()
    proj = flow_project.load_project(standin(tmp_path, core))
    ob = flow_board.load_open_board("ulx3s-85f")
    lay = flow_project.layout(proj, 75_000_000, ob.baud, "ecp5")
    params = flow_project.top_params(proj, lay, 25, "ecp5")
    assert params["IN_FIFO_DEPTH"] == core.in_beats and lay.store_and_forward  # the whole frame is buffered
    assert (params["IN_W"], params["OUT_BEATS"], params["TIMEOUT_CLKS"]) == (core.in_w, core.out_beats, 7_500_000)
    script = flow.yosys_script(flow_project.stage(proj, ob, tmp_path / "work"), ob, {**params, "DESIGN_ID": 0xDEADBEEF})
    assert "-set DESIGN_ID 32'hdeadbeef" in script and "synth_ecp5 -top board_ecp5" in script
    assert {p.name for p in (tmp_path / "work").iterdir()} >= {"bnn_top.v", "board_top.v", "board_ecp5.v", "board.lpf"}
    big = Core(in_epb=1, in_eb=8, in_beats=20000)  # a frame larger than the buffer budget: cut-through
    proj = flow_project.load_project(standin(tmp_path / "big", big))
    depth, block = flow_project.input_buffer(proj, "ice40")
    assert depth < big.in_beats and block == 1


def test_missing_tools_name_the_extra(monkeypatch, tmp_path):
    monkeypatch.setattr(flow_tools.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingToolError, match=r"pip install 'bnn-flow\[fpga\]'"):
        flow_tools.find_tools(["yosys", "nextpnr-ecp5"])


def test_report_checks():
    with pytest.raises(CheckFailedError, match=r"timing not met at 100 MHz \(\$glbnet\$clk: 81.3 MHz < 100.0"):
        flow_report.check_timing({"$glbnet$clk": {"achieved_mhz": 81.3, "constraint_mhz": 100.0}}, 100)
    flow_report.check_timing({"clk": {"achieved_mhz": 100.0, "constraint_mhz": 100.0}}, 100)
    with pytest.raises(CheckFailedError, match="LUT4 90,000 of 83,640"):
        flow_report.check_fit({"LUT4": {"used": 90000, "available": 83640}}, "ulx3s-85f")
    lay = Layout(8, False, 784, 784, 10, 10, 1, 75_000_000, 3_000_000, True)
    assert lay.request_bytes == 785 and lay.reply_bytes == 45 and round(lay.uart_fps(), 1) == 361.4


# ------------------------------------------------------------------ the flow with the tools --------------

def check_report(out: Path, rep: dict, board: str, suffix: str) -> None:
    assert (out / f"{board}{suffix}").stat().st_size > 1000
    assert not list(out.glob(".*.tmp"))
    disk = json.loads((out / "report.json").read_text())
    assert disk["bitstream"] == f"{board}{suffix}" and disk["netlist_check"]["bit_exact"]
    assert all(c["achieved_mhz"] >= c["constraint_mhz"] for c in rep["fmax"].values())
    assert {"synth", "netlist", "pnr", "pack", "total"} <= set(rep["stages"])
    assert all(v for v in rep["tools"].values())
    assert "bit-exact" in (out / "report.txt").read_text()
    board_json = json.loads((out / "board.json").read_text())
    assert board_json["board"] == board and board_json["design_id"] == int(rep["design_id"], 16)


def test_open_flow_ecp5_on_the_standin(tmp_path, tools, monkeypatch):
    """The whole flow for the ULX3S on the stand-in core (about a minute once the tools are compiled), its folders
    given relative to the working folder (as `make bitstream` gives runs/demo/build-ulx3s-85f)."""
    core = Core()
    q = core.frames(10, seed=2)
    cfg = flow.OpenConfig(flow_board.load_open_board("ulx3s-85f"), 75.0)
    rtl = standin(tmp_path, core)
    monkeypatch.chdir(tmp_path)
    rep = flow.run_flow(rtl.relative_to(tmp_path), Path("out"), cfg, q, core.reference(q), "the reference",
                        say=lambda s: None)
    check_report(tmp_path / "out", rep, "ulx3s-85f", ".bit")
    assert rep["resources"]["PLL"]["used"] == 1 and rep["resources"]["LUT4"]["available"] == 83640
    assert rep["netlist_check"]["cycles_per_frame"] == core.in_beats + core.latency + core.out_beats
    assert rep["fps"]["uart_fps"] < rep["fps"]["core_fps"] and rep["clks_per_bit"] == 25


@pytest.mark.slow
def test_open_flow_ice40_on_the_standin(tmp_path, tools):
    core = Core()
    q = core.frames(10, seed=3)
    for clock, pll in ((12.0, 0), (24.0, 1)):  # the oscillator itself, then through the PLL
        cfg = flow.OpenConfig(flow_board.load_open_board("icebreaker"), clock)
        out = tmp_path / f"out{clock:g}"
        rep = flow.run_flow(standin(tmp_path, core), out, cfg, q, core.reference(q), "the reference",
                            say=lambda s: None)
        check_report(out, rep, "icebreaker", ".bin")
        assert rep["parameters"]["USE_PLL"] == pll and rep["resources"]["PLL"]["used"] == pll


@pytest.mark.slow
def test_failed_checks_leave_no_bitstream(tmp_path, tools):
    """A clock the design cannot meet, and a netlist that differs from the expected accumulators: exit 1 with
    the numbers, and no bitstream (not even an earlier run's)."""
    core = Core()
    q = core.frames(10, seed=4)
    out = tmp_path / "out"
    out.mkdir()
    (out / "ulx3s-85f.bit").write_bytes(b"an earlier run's")
    cfg = flow.OpenConfig(flow_board.load_open_board("ulx3s-85f"), 250.0)
    with pytest.raises(CheckFailedError, match="timing not met at 250 MHz"):
        flow.run_flow(standin(tmp_path, core), out, cfg, q, core.reference(q), "the reference", say=lambda s: None)
    assert not (out / "ulx3s-85f.bit").exists() and not list(out.glob(".*.tmp"))
    wrong = core.reference(q)
    wrong[3, 1] += 1
    cfg = flow.OpenConfig(flow_board.load_open_board("ulx3s-85f"), 75.0)
    with pytest.raises(CheckFailedError, match="differs from the reference on frame 3"):
        flow.run_flow(standin(tmp_path, core), out, cfg, q, wrong, "the reference", say=lambda s: None)
    assert not (out / "ulx3s-85f.bit").exists()


@pytest.mark.slow
def test_bitstream_of_a_compiled_build(tmp_path, tools, monkeypatch):
    """bitstream() on a compiled TFC-shaped build (8x8 input, 8 neurons a layer), named relative to the working
    folder as `make bitstream` does: the rtl target's generator, FIFO sizing, the flow; the post-synthesis
    netlist bit-exact with the golden model on 10 images."""
    from bnn_flow.testing import compile_net, random_net

    build = compile_net(random_net(seed=1, arch="tfc", in_channels=1, image_size=8, width=0.125), tmp_path)
    monkeypatch.chdir(tmp_path)
    path = flow.bitstream(build.path.name, board="ulx3s-85f", clock_mhz=50, images=4, say=lambda s: None)
    assert path == build.path / "bitstream" / "ulx3s-85f.bit" and path.is_file()
    rep = json.loads((path.parent / "report.json").read_text())
    assert rep["netlist_check"]["bit_exact"] and rep["netlist_check"]["frames"] == 10  # at least 10
    assert rep["reference"].startswith("the golden model") and np.isfinite(rep["fps"]["core_fps"])
