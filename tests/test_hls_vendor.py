"""The vendor flow (bnn_flow/backends/hls/vendor.py): generated Tcl per board family, the AXI-Stream wrapper
(compiled with g++ and the real ap_int.h, run against board/pynq/packing.py), and the tool-run path with fake
`vitis_hls`/`vivado` that execute our Tcl in a Tcl interpreter whose vendor commands only record their calls.

The HLS core here is a hand-written stand-in with the contract's signature (project.json + one .cpp), so these
tests need neither the HLS generator nor a compiled network; test_bitstream_cli_* run the real thing.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bnn_flow.backends.hls import vendor
from bnn_flow.boards import PYNQ_DRIVER_DIR, VENDOR_FAMILIES, board_names, load_board
from bnn_flow.errors import BadInputError, CheckFailedError
from bnn_flow.transaction import write_manifest

REPO = Path(__file__).resolve().parent.parent
# The fake vendor tools interpret our Tcl with Python's Tcl (tkinter); without it those tests are skipped.
needs_tcl = pytest.mark.skipif(importlib.util.find_spec("tkinter") is None, reason="needs Python's tkinter (Tcl)")

_spec = importlib.util.spec_from_file_location("bnn_pynq_packing_v", PYNQ_DRIVER_DIR / "packing.py")
packing = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = packing
_spec.loader.exec_module(packing)

# A stand-in core: per frame it reads IN_BEATS beats of INPUT elements and writes class j's score
# acc_j = (j + 1) * sum(inputs) - 7 * j, OUT_EPB signed elements per output beat.
FAKE_CORE = r"""
#include <ap_int.h>
#include <hls_stream.h>
static const int IN_W = {in_w}, OUT_W = {out_w}, IN_EPB = {in_epb}, IN_EB = {in_eb}, IN_BEATS = {in_beats};
static const int OUT_EPB = {out_epb}, OUT_EB = {out_eb}, OUT_BEATS = {out_beats}, CLASSES = {classes};
static const bool IN_SIGNED = {in_signed};

static void one_frame(hls::stream<ap_uint<IN_W> > &in, hls::stream<ap_uint<OUT_W> > &out) {{
    long long sum = 0;
    for (int b = 0; b < IN_BEATS; b++) {{
        ap_uint<IN_W> beat = in.read();
        for (int e = 0; e < IN_EPB; e++) {{
            long long v = (long long)beat.range(e * IN_EB + IN_EB - 1, e * IN_EB).to_uint64();
            if (IN_SIGNED && v >= (1LL << (IN_EB - 1))) v -= 1LL << IN_EB;
            sum += v;
        }}
    }}
    for (int b = 0; b < OUT_BEATS; b++) {{
        ap_uint<OUT_W> beat = 0;
        for (int e = 0; e < OUT_EPB; e++) {{
            int j = b * OUT_EPB + e;
            long long acc = j < CLASSES ? (j + 1) * sum - 7 * j : 0;
            beat.range(e * OUT_EB + OUT_EB - 1, e * OUT_EB) = (unsigned long long)acc;
        }}
        out.write(beat);
    }}
}}

void {top}(hls::stream<ap_uint<IN_W> > &in, hls::stream<ap_uint<OUT_W> > &out{frames_param}) {{
{body}
}}
"""

# The fake vendor tools: Python + Tcl (tkinter) run our script with every vendor command replaced by a
# recorder, creating what the real tool would write (the IP's component.xml, the .bit and the .hwh).
FAKE_TOOL = r'''#!{python}
import sys, tkinter
args = sys.argv[1:]
script = args[args.index("-f" if "-f" in args else "-source") + 1]
tcl = tkinter.Tcl()
tcl.eval(r"""{prelude}""")
try:
    tcl.eval("source " + script)
    code = 0
except tkinter.TclError as e:  # tkinter's Tcl has no exit: the prelude's exit raises "__exit__ CODE"
    code = int(str(e).split()[1]) if str(e).startswith("__exit__") else 1
    if code and not str(e).startswith("__exit__"):
        print("ERROR:", e)
tcl.eval("close $::log")
sys.exit(code)
'''

FAKE_PRELUDE = r"""
set ::calls {}
set ::log [open calls.txt a]
proc record {args} { puts $::log $args; flush $::log }
proc exit {{code 0}} { error "__exit__ $code" }
foreach cmd {set_top set_part create_clock csynth_design set_property update_ip_catalog apply_bd_automation
             connect_bd_intf_net assign_bd_address validate_bd_design save_bd_design generate_target
             update_compile_order wait_on_run open_run report_utilization report_timing_summary} {
    proc $cmd {args} "record $cmd {*}\$args"
}
proc open_project {args} { record open_project {*}$args; set ::hls_proj [lindex $args end] }
proc open_solution {args} { record open_solution {*}$args; set ::sol [lindex $args end] }
proc add_files {args} {
    record add_files {*}$args
    set f [lindex $args [expr {[lindex $args 0] eq "-norecurse" ? 1 : 0}]]
    if {![file exists $f]} { error "add_files: no such file $f" }
}
proc export_design {args} {
    record export_design {*}$args
    file mkdir $::hls_proj/$::sol/impl/ip
    set f [open $::hls_proj/$::sol/impl/ip/component.xml w]; puts $f "<component/>"; close $f
}
proc create_project {args} {
    record create_project {*}$args
    set pos [lsearch -not -all -inline -glob $args -*]
    set ::vproj [lindex $pos 0]; set ::vdir [lindex $pos 1]
}
proc get_board_parts {args} { return [lindex $args end] }
proc get_ipdefs {args} {
    set p [lindex $args end]
    return [list [string map {:* :1.0} $p] [string map {:* :10.1} $p] [string map {:* :9.2} $p]]
}
proc create_bd_design {name} { record create_bd_design $name; set ::bd $name }
proc create_bd_cell {args} { record create_bd_cell {*}$args; return [lindex $args end] }
proc get_bd_cells {args} { return [lindex $args end] }
proc get_bd_intf_pins {args} { return [lindex $args end] }
proc get_files {args} { return [lindex $args end] }
proc get_runs {args} { return [lindex $args end] }
proc get_timing_paths {args} { return path }
proc make_wrapper {args} {
    record make_wrapper {*}$args
    set h [open wrapper.v w]; close $h
    return wrapper.v
}
proc current_project {} { return project }
proc current_fileset {} { return sources_1 }
proc launch_runs {args} {
    record launch_runs {*}$args
    file mkdir $::vdir/$::vproj.runs/impl_1 $::vdir/$::vproj.gen/sources_1/bd/$::bd/hw_handoff
    foreach f [list $::vdir/$::vproj.runs/impl_1/${::bd}_wrapper.bit \
                    $::vdir/$::vproj.gen/sources_1/bd/$::bd/hw_handoff/$::bd.hwh] {
        set h [open $f w]; puts $h "fake output of $f"; close $h
    }
}
proc get_property {name obj} {
    switch -glob -- $name { PROGRESS {return 100%} SLACK {return $::env(FAKE_SLACK)} *ACT* {return 99.9} }
    return ""
}
"""


def _fake_tools(bin_dir: Path) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in vendor.TOOLS:
        path = bin_dir / tool
        path.write_text(FAKE_TOOL.format(python=sys.executable, prelude=FAKE_PRELUDE))
        path.chmod(0o755)
    return bin_dir


def _calls(vendor_dir: Path) -> list[tuple[str, ...]]:
    import tkinter

    tcl = tkinter.Tcl()
    return [tuple(tcl.splitlist(line)) for line in (vendor_dir / "calls.txt").read_text().splitlines()]


def _named(calls, name):
    return [c[1:] for c in calls if c[0] == name]


def _opt(call: tuple[str, ...], flag: str) -> str:
    return call[call.index(flag) + 1]


def _props(calls, target: str) -> dict[str, str]:
    """All CONFIG.* set on `target` by set_property -dict."""
    import tkinter

    out: dict[str, str] = {}
    tcl = tkinter.Tcl()
    for c in _named(calls, "set_property"):
        if c[0] == "-dict" and c[-1] == target:
            items = tcl.splitlist(c[1])
            out.update(zip(items[::2], items[1::2], strict=True))
    return out


def make_project(build: Path, *, in_eb=8, in_epb=3, in_beats=4, in_signed=False, out_eb=16, out_epb=10,
                 out_beats=1, classes=10, frames_arg=True) -> dict:
    """A hand-written BUILD/hls (project.json + the stand-in core) following the HLS engineer's contract."""
    hls = build / "hls"
    hls.mkdir(parents=True, exist_ok=True)
    in_w, out_w = in_eb * in_epb, out_eb * out_epb
    if frames_arg:
        frames_param, body = ", unsigned frames", "    for (unsigned f = 0; f < frames; f++) one_frame(in, out);"
    else:
        frames_param, body = "", "    one_frame(in, out);"
    (hls / "fake_top.cpp").write_text(FAKE_CORE.format(
        in_w=in_w, out_w=out_w, in_epb=in_epb, in_eb=in_eb, in_beats=in_beats, out_epb=out_epb, out_eb=out_eb,
        out_beats=out_beats, classes=classes, in_signed="true" if in_signed else "false", top="fake_top",
        frames_param=frames_param, body=body))
    proj = {"top": "fake_top", "sources": ["fake_top.cpp"], "include_dirs": [], "classes": classes,
            "frames_arg": frames_arg, "layers": 1,
            "in": {"width": in_w, "elems_per_beat": in_epb, "elem_bits": in_eb, "signed": in_signed,
                   "beats_per_frame": in_beats},
            "out": {"width": out_w, "elems_per_beat": out_epb, "elem_bits": out_eb, "signed": True,
                    "beats_per_frame": out_beats}}
    (hls / "project.json").write_text(json.dumps(proj))
    (build / "head.json").write_text(json.dumps({"scale": [1.0] * classes, "bias": [0.0] * classes,
                                                 "acc_to_dot": [1, 0]}))
    write_manifest(build)  # a hand-made build: its files are what the vendor flow may read
    return proj


def _config(board: str, clock: float | None = None) -> vendor.VendorConfig:
    b = load_board(board)
    return vendor.VendorConfig(b, clock or b.clock_mhz, 3)


@pytest.mark.parametrize("core,max_bus,bus,words", [
    (24, 64, 32, 1), (1, 64, 8, 1), (8, 128, 8, 1), (64, 64, 64, 1), (65, 64, 64, 2), (160, 64, 64, 3),
    (160, 128, 128, 2), (1024, 128, 128, 8), (100, 96, 64, 2),  # 96 is no DMA width: 64
])
def test_bus_widths_are_dma_widths_within_the_board_dma_bits(core, max_bus, bus, words):
    side = vendor.bus_side({"width": core, "elems_per_beat": 1, "elem_bits": 1, "signed": False,
                            "beats_per_frame": 1}, 1, max_bus)
    assert (side.bus_bits, side.words_per_beat) == (bus, words)


@needs_tcl
@pytest.mark.parametrize("board", board_names(VENDOR_FAMILIES))
def test_tcl_for_every_board(tmp_path, board, monkeypatch):
    """Both scripts run through a Tcl interpreter; the recorded calls carry the board's part, PS and clock."""
    build = tmp_path / "build"
    make_project(build, out_eb=16, out_epb=10)
    b = load_board(board)
    vdir = vendor.generate_vendor(build, _config(board, clock=123.0))
    bindir = _fake_tools(tmp_path / "bin")
    monkeypatch.setenv("FAKE_SLACK", "0.1")
    for cmd in (["vitis_hls", "-f", "hls.tcl"], ["vivado", "-mode", "batch", "-source", "vivado.tcl"]):
        r = subprocess.run([str(bindir / cmd[0]), *cmd[1:]], cwd=vdir, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    calls = _calls(vdir)
    # Vitis HLS: the wrapper is the top, the core's source is added, part and clock period of the board.
    assert _named(calls, "set_top") == [(vendor.WRAPPER_TOP,)]
    added = [Path(c[0]).name for c in _named(calls, "add_files")]
    assert added[:2] == [vendor.WRAPPER_FILE, "fake_top.cpp"]
    assert _named(calls, "set_part") == [(b.part,)]
    assert float(_opt(_named(calls, "create_clock")[0], "-period")) == pytest.approx(1000 / 123.0, abs=1e-3)
    assert "-flow_target" in _named(calls, "open_solution")[0]
    export = _named(calls, "export_design")[0]
    assert _opt(export, "-format") == "ip_catalog" and _opt(export, "-ipname") == vendor.IP["ip_name"]
    # Vivado: part, board files, the family's PS (newest version in the catalog), DMA in simple mode.
    assert _opt(_named(calls, "create_project")[0], "-part") == b.part
    assert ("board_part", b.board_part, "project") in _named(calls, "set_property")
    cells = {c[-1]: c[c.index("-vlnv") + 1] for c in _named(calls, "create_bd_cell")}
    ps_ip = "processing_system7" if b.family == "zynq7000" else "zynq_ultra_ps_e"
    assert cells["ps"] == f"xilinx.com:ip:{ps_ip}:10.1"
    ps = _props(calls, "ps")
    clock_key = ("CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ" if b.family == "zynq7000"
                 else "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ")
    assert float(ps[clock_key]) == 123.0
    hp_key = "CONFIG.PCW_USE_S_AXI_HP0" if b.family == "zynq7000" else "CONFIG.PSU__USE__S_AXI_GP2"
    assert ps[hp_key] == "1"
    inp, out = vendor.sides(json.loads((build / "hls" / "project.json").read_text()), b.dma_bits)
    dma = _props(calls, vendor.DMA_CELL)
    assert dma["CONFIG.c_include_sg"] == "0" and dma["CONFIG.c_include_mm2s"] == dma["CONFIG.c_include_s2mm"] == "1"
    assert int(dma["CONFIG.c_m_axis_mm2s_tdata_width"]) == inp.bus_bits == 32
    assert int(dma["CONFIG.c_s_axis_s2mm_tdata_width"]) == out.bus_bits
    assert int(dma["CONFIG.c_m_axi_s2mm_data_width"]) >= out.bus_bits
    assert cells[vendor.ACCEL_CELL] == "{ip_vendor}:{ip_library}:{ip_name}:{ip_version}".format(**vendor.IP)
    streams = _named(calls, "connect_bd_intf_net")
    assert (f"{vendor.DMA_CELL}/M_AXIS_MM2S", f"{vendor.ACCEL_CELL}/in_axis") in streams
    assert (f"{vendor.ACCEL_CELL}/out_axis", f"{vendor.DMA_CELL}/S_AXIS_S2MM") in streams
    assert "write_bitstream" in _named(calls, "launch_runs")[0]
    for ext in (".bit", ".hwh"):  # PYNQ's pair: same base name, same folder
        assert (vdir / vendor.OUT_DIR / f"{vendor.OVERLAY}{ext}").is_file()


@needs_tcl
def test_vivado_refuses_a_bitstream_that_misses_timing(tmp_path, monkeypatch):
    build = tmp_path / "build"
    make_project(build)
    vdir = vendor.generate_vendor(build, _config("pynq-z2"))
    bindir = _fake_tools(tmp_path / "bin")
    monkeypatch.setenv("FAKE_SLACK", "-0.2")
    r = subprocess.run([str(bindir / "vivado"), "-source", "vivado.tcl"], cwd=vdir, capture_output=True, text=True)
    assert r.returncode == 1 and "timing not met" in r.stdout
    assert not (vdir / vendor.OUT_DIR / f"{vendor.OVERLAY}.bit").exists()


@pytest.mark.parametrize("shape", [
    # 65-bit input beats over two 64-bit words, 160-bit output beats over three (the codegen's frames_arg form)
    dict(in_eb=1, in_epb=65, in_beats=2, out_eb=16, out_epb=10, out_beats=1, frames_arg=True),
    # one core call per frame, padding elements in the last output beat, narrow input on an 8-bit-rounded bus
    pytest.param(dict(in_eb=8, in_epb=3, in_beats=4, out_eb=17, out_epb=4, out_beats=3, frames_arg=False),
                 marks=pytest.mark.slow),
    pytest.param(dict(in_eb=4, in_epb=5, in_beats=3, in_signed=True, out_eb=24, out_epb=1, out_beats=10),
                 marks=pytest.mark.slow),
])
def test_wrapper_agrees_with_packing(tmp_path, shape):
    """The rendered wrapper, compiled with g++ and the real ap_int.h around a stand-in core, driven like the
    DMA drives it (hls_templates/axis_tb.cpp): exactly packing.py's bytes in and out, TLAST on the last word."""
    from bnn_flow.backends.hls import axis_csim, csim

    if csim.available():
        pytest.skip(f"no C-simulation here: {csim.available()}")
    build = tmp_path / "build"
    proj = make_project(build, **shape)
    vdir = vendor.generate_vendor(build, _config("pynq-z2"))
    lin = packing.StreamLayout.from_json(json.loads((vdir / vendor.PYNQ_DIR / "overlay.json").read_text())["in"])
    q = np.random.default_rng(7).integers(lin.lo, lin.hi + 1, size=(5, lin.frame_elems))
    got, last = axis_csim.run_integer(build, q)
    j = np.arange(proj["classes"])
    np.testing.assert_array_equal(got, (j + 1) * q.sum(1, keepdims=True) - 7 * j)
    assert len(last) == 5 * shape["out_beats"] * vendor.sides(proj, 64)[1].words_per_beat
    assert last == "0" * (len(last) - 1) + "1"  # TLAST on the batch's last word only


@needs_tcl
def test_run_tools_with_fake_vendor_tools(tmp_path, monkeypatch):
    build = tmp_path / "build"
    make_project(build)
    vendor.generate_vendor(build, _config("ultra96-v2"))
    monkeypatch.setenv("PATH", f"{_fake_tools(tmp_path / 'bin')}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_SLACK", "0.3")
    assert vendor.missing_tools() == []
    dest = vendor.run_tools(build, jobs=2)
    names = sorted(p.name for p in dest.iterdir())
    assert names == sorted(["bnn.bit", "bnn.hwh", "overlay.json", "head.json", *vendor.DRIVER_FILES])
    assert (dest / "bnn.bit").read_text().startswith("fake output of")  # what "Vivado" wrote, copied
    meta = json.loads((dest / "overlay.json").read_text())
    assert meta["board"] == "ultra96-v2" and meta["overlay"] == "bnn.bit"


@needs_tcl
def test_run_sh_with_fake_vendor_tools(tmp_path):
    """run.sh (for machines where only the tools, not bnn-flow, are run) leaves the same bundle."""
    build = tmp_path / "build"
    make_project(build)
    vdir = vendor.generate_vendor(build, _config("zcu104"))
    env = {"PATH": f"{_fake_tools(tmp_path / 'bin')}:/usr/bin:/bin", "FAKE_SLACK": "0.0"}
    r = subprocess.run(["sh", str(vdir / "run.sh")], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert {"bnn.bit", "bnn.hwh", "driver.py", "overlay.json"} <= {p.name for p in (build / "bitstream").iterdir()}


@needs_tcl
def test_run_tools_reports_a_failed_tool(tmp_path, monkeypatch):
    build = tmp_path / "build"
    make_project(build)
    vdir = vendor.generate_vendor(build, _config("pynq-z2"))
    (vdir / "hls.tcl").write_text("no_such_command\n")  # what a Vitis HLS error looks like to us: exit 1
    monkeypatch.setenv("PATH", f"{_fake_tools(tmp_path / 'bin')}:/usr/bin:/bin")
    with pytest.raises(CheckFailedError, match="vitis_hls failed .*vitis_hls.log"):
        vendor.run_tools(build, jobs=1)
    assert not (build / "bitstream").exists()


def test_missing_tools_and_bad_project(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert vendor.missing_tools() == ["vitis_hls", "vivado"]
    build = tmp_path / "build"
    proj = make_project(build)
    del proj["out"]["elem_bits"]
    (build / "hls" / "project.json").write_text(json.dumps(proj))
    with pytest.raises(BadInputError, match=r"missing out\.elem_bits"):
        vendor.load_project(build)
    with pytest.raises(BadInputError, match="unknown board"):
        vendor.resolve_config(build, "no-such-board", None, None)
    cfg = vendor.resolve_config(build, None, None, None)
    assert cfg.board.name == vendor.DEFAULT_BOARD and cfg.clock_mhz == load_board("pynq-z2").clock_mhz
    (build / "report.json").write_text(json.dumps({"board": {"name": "kv260"}, "clock_mhz": 150}))
    write_manifest(build)
    cfg = vendor.resolve_config(build, None, None, None)
    assert (cfg.board.name, cfg.clock_mhz) == ("kv260", 150.0)


def test_mismatching_rows():
    expected = np.arange(12).reshape(4, 3)
    got = expected.copy()
    assert len(vendor.mismatching_rows(expected, got)) == 0
    got[2, 1] += 1
    assert list(vendor.mismatching_rows(expected, got)) == [2]
    assert list(vendor.mismatching_rows(expected, got[:3])) == [0, 1, 2, 3]  # a short answer is all wrong


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory) -> Path:
    """A compiled TFC (width 1/4: 784 -> 16 -> 16 -> 16 -> 10, INT8 input) with random BatchNorm statistics."""
    from bnn_flow.compiler import CompileConfig, compile_model
    from bnn_flow.export import export_qonnx_file
    from bnn_flow.nets import build_net

    spec = importlib.util.spec_from_file_location("_golden_helpers_v", REPO / "tests" / "test_golden.py")
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    root = tmp_path_factory.mktemp("tiny_vendor")
    net = helpers.randomize_bn(build_net("tfc", num_classes=10, in_channels=1, image_size=28, width=0.25,
                                         in_bits=8))
    export_qonnx_file(net, root / "m.onnx")
    compile_model(root / "m.onnx", root / "build", CompileConfig())
    return root / "build"


def _cli(argv, capsys):
    from bnn_flow.cli import main

    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_bitstream_cli_without_tools_exits_3(tiny_build, monkeypatch, capsys):
    """Generation and a bit-exact C-simulation run, then exit 3 naming the tools and the ready project."""
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # g++ for the C-simulation, no vendor tools
    if vendor.missing_tools() != list(vendor.TOOLS):
        pytest.skip("vitis_hls/vivado are installed here")
    rc, out, err = _cli(["bitstream", str(tiny_build), "--board", "kv260", "--images", "4"], capsys)
    assert rc == 3, err
    vdir = tiny_build / "vendor"
    assert "C-simulation bit-exact with the golden model on 4 random images" in out
    assert err.count("\n") == 1 and "vitis_hls and vivado not found on PATH" in err
    assert str(vdir) in err and "./run.sh" in err
    for name in ("hls.tcl", "vivado.tcl", "run.sh", vendor.WRAPPER_FILE, "pynq/overlay.json", "pynq/driver.py"):
        assert (vdir / name).is_file(), name
    assert "set_part xck26-sfvc784-2LV-c" in (vdir / "hls.tcl").read_text()
    assert not (tiny_build / "bitstream").exists()  # nothing claimed that was not built


@needs_tcl
def test_bitstream_cli_with_fake_tools(tiny_build, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", f"{_fake_tools(tmp_path / 'bin')}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_SLACK", "0.05")
    rc, out, err = _cli(["bitstream", str(tiny_build), "--clock-mhz", "125", "--jobs", "2", "--images", "3"], capsys)
    assert rc == 0, err
    dest = tiny_build / "bitstream"
    assert {"bnn.bit", "bnn.hwh", "driver.py", "packing.py", "overlay.json", "head.json"} <= {
        p.name for p in dest.iterdir()}
    assert json.loads((dest / "overlay.json").read_text())["clock_mhz"] == 125.0
    assert f"bitstream {dest / 'bnn.bit'}" in out


def test_bitstream_cli_bad_input(tiny_build, tmp_path, capsys):
    rc, _, err = _cli(["bitstream", str(tiny_build), "--flow", "nope"], capsys)
    assert rc == 2 and "unknown bitstream flow 'nope'" in err
    rc, _, err = _cli(["bitstream", str(tmp_path)], capsys)
    assert rc == 2 and "not a compiled build" in err
    rc, _, err = _cli(["bitstream", str(tiny_build), "--board", "nope"], capsys)
    assert rc == 2 and "unknown board" in err


@pytest.mark.slow
def test_wrapper_with_the_real_core_is_bit_exact(tiny_build):
    """The generated wrapper around the generated core, through packing.py: the golden model's integers."""
    from bnn_flow.backends.hls import axis_csim, csim
    from bnn_flow.golden import GoldenModel

    csim.generate_project(tiny_build)
    vendor.generate_vendor(tiny_build, _config("ultra96-v2"))
    g = GoldenModel(tiny_build)
    x = (np.random.default_rng(5).integers(0, 256, size=(6, 1, 28, 28)) / 255).astype(np.float32)
    got, last = axis_csim.run_integer(tiny_build, g.spec.apply(x))
    np.testing.assert_array_equal(got, g.run_integer(x))
    assert last.endswith("1") and "1" not in last[:-1]
