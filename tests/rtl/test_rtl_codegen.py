"""The RTL generator without simulation: a hostile layer name reaches no generated file; the generated top is
clean under `verilator --lint-only -Wall` and Icarus' Verilog-2005 (with and without the simulation probes);
rtl_project.json is the contract the bitstream flow reads; the layer table covers every plan kind; FIFO depths
are read only when sized for the same design."""

from __future__ import annotations

import json
import subprocess
from typing import get_args

import numpy as np
import onnx
import pytest
from rtl_nets import CASES, cache_root, compile_case, legal_folding, shared_cache  # noqa: F401
from rtl_sim import need

from bnn_flow.backends.rtl import codegen
from bnn_flow.backends.rtl.design import LIBRARY_DIR, design_of
from bnn_flow.backends.rtl.fifo_sizing import next_pow2_above
from bnn_flow.backends.rtl.layers import RTL_LAYERS
from bnn_flow.build import Build
from bnn_flow.plan import Layer, Mvau, Window
from bnn_flow.testing import set_folding
from bnn_flow.transaction import write_manifest

PAYLOAD = 'x\n`define EVIL 1\nendmodule\nmodule pwn; initial $display("PWNED"); endmodule\n/* */ // \\'


@pytest.fixture(scope="module")
def int8_build(tmp_path_factory):
    return compile_case(CASES["int8"], tmp_path_factory.mktemp("int8"))


def test_layer_table_covers_every_plan_kind():
    assert set(RTL_LAYERS) == set(get_args(Layer))


def test_hostile_layer_name_reaches_no_generated_file(tmp_path):
    """An attacker renames nodes of the final graph to Verilog and fixes up the manifest: the names reach
    bnn_top.v, the memory files, the header and the JSON only as identifiers and comment-safe text."""
    build_dir = compile_case(CASES["bits"], tmp_path)
    b = Build(build_dir)
    path = b.final_model_path()
    model = onnx.load(path)
    for k, node in enumerate(model.graph.node):
        if node.op_type in ("BinaryMVAU", "SlidingWindow", "StreamingMaxPool"):
            node.name = f"{PAYLOAD}{k}"
    onnx.save(model, path)
    write_manifest(build_dir)
    d = codegen.generate(Build(build_dir))
    assert any(PAYLOAD in s.layer.name for s in d.stages if s.layer is not None)
    files = [p for p in (build_dir / "rtl").rglob("*") if p.is_file()]
    assert {p.suffix for p in files} >= {".v", ".memh", ".h", ".json"}
    for p in files:
        text = p.read_text()
        for bad in ("`define", "module pwn;", "$display", '"PWNED"', "/* */", "\\", "\nmodule pwn"):
            assert bad not in text, (p.name, bad)
    top = (build_dir / "rtl" / codegen.TOP_FILE).read_text().splitlines()
    heads = [ln for ln in top if ln.startswith(("module", "endmodule"))]
    assert heads in (["module bnn_top (", "endmodule"], ["module bnn_top #(", "endmodule"])
    _lint(build_dir / "rtl")


def _lint(rtl, defines=("", "-DBNN_PROBES")):
    verilator, iverilog = need("verilator"), need("iverilog")
    # exactly the library files rtl_project.json names: the top elaborates with those and nothing else
    lib = [str(LIBRARY_DIR / name) for name in json.loads((rtl / codegen.PROJECT_JSON).read_text())["library"]]
    for define in defines:
        extra = [define] if define else []
        proc = subprocess.run([verilator, "--lint-only", "-Wall", *extra, "--top-module", "bnn_top",
                               str(rtl / codegen.TOP_FILE), *lib], capture_output=True, text=True, cwd=rtl)
        assert proc.returncode == 0 and "%Warning" not in proc.stderr, proc.stderr[-3000:]
        proc = subprocess.run([iverilog, "-g2005", "-Wall", *extra, "-o", "/dev/null", "-s", "bnn_top",
                               str(rtl / codegen.TOP_FILE), *lib], capture_output=True, text=True, cwd=rtl)
        assert proc.returncode == 0 and "warning" not in proc.stderr.lower(), proc.stderr


def test_generated_top_is_lint_clean_folded(int8_build):
    build_dir = int8_build
    set_folding(build_dir, legal_folding(Build(build_dir).plan(), np.random.default_rng(3)))
    try:
        d = codegen.generate(Build(build_dir))
        assert any(s.kind == "dwc" for s in d.stages)
        _lint(build_dir / "rtl")
        top = (build_dir / "rtl" / codegen.TOP_FILE).read_text()
        # the probes exist only under the define: synthesis (no define) sees none of them
        body = top.split("`ifdef BNN_PROBES")
        assert all("probe" not in part.split("`else")[-1].split("`endif")[-1] for part in body[1:])
    finally:
        set_folding(build_dir, None)


def test_project_json_contract(int8_build):
    b = Build(int8_build)
    plan = b.plan()
    codegen.generate(b)
    rtl = int8_build / "rtl"
    proj = json.loads((rtl / codegen.PROJECT_JSON).read_text())
    assert proj["top"] == "bnn_top" and proj["clock"] == "clk" and proj["reset"].startswith("rst")
    assert all((rtl / s).is_file() for s in proj["sources"]) and all((rtl / m).is_file() for m in proj["memfiles"])
    assert all((LIBRARY_DIR / f).is_file() for f in proj["library"])
    assert {"bnn_mvau.v", "bnn_window.v", "bnn_maxpool.v", "bnn_fifo.v", "bnn_fifo_lut.v", "bnn_rom.v",
            "bnn_out_queue.v"} <= set(proj["library"]) and "bnn_dwc.v" not in proj["library"]
    fin, fout = proj["in"], proj["out"]
    assert fin["elems_per_frame"] == int(np.prod(plan.input_shape)) and fin["elem_bits"] == 8 and not fin["signed"]
    assert fin["width"] == fin["elems_per_beat"] * fin["elem_bits"]
    assert fin["beats_per_frame"] * fin["elems_per_beat"] == fin["elems_per_frame"]
    assert fout["elems_per_frame"] == plan.classes == proj["classes"]
    assert fout["elems_per_beat"] == plan.mvaus[-1].pe and fout["elem_bits"] == plan.mvaus[-1].acc_dtype.bits
    kinds = [row["kind"] for row in proj["layers"]]
    assert kinds == ["window", "mvau", "maxpool", "window", "mvau", "mvau", "mvau"]
    assert all(row["instance"].startswith("u_L") for row in proj["layers"])
    assert [f["depth"] for f in proj["fifos"]] == [2] * (len(kinds) - 1)
    ports = (rtl / codegen.TOP_FILE).read_text()
    for port in ("input  wire clk", "input  wire rst", "input  wire in_valid", "output wire in_ready",
                 f"input  wire [{fin['width'] - 1}:0] in_data", "output wire out_valid", "input  wire out_ready",
                 f"output wire [{fout['width'] - 1}:0] out_data"):
        assert port in ports


def test_fifo_depths_are_used_only_for_the_same_design(int8_build):
    b = Build(int8_build)
    rtl = int8_build / "rtl"
    d = codegen.generate(b)
    depths = {e.name: 4 for e in d.edges}
    (rtl / codegen.FIFO_DEPTHS).write_text(json.dumps({"structure": d.structure(), "depths": depths}))
    try:
        assert codegen.generate(b).depths == depths
        assert "FIFO1_DEPTH = 4" in (rtl / codegen.TOP_FILE).read_text()
        (rtl / codegen.FIFO_DEPTHS).write_text(json.dumps({"structure": "another design", "depths": depths}))
        assert codegen.generate(b).depths == {}
        (rtl / codegen.FIFO_DEPTHS).write_text("not json")
        assert codegen.generate(b).depths == {}
    finally:
        (rtl / codegen.FIFO_DEPTHS).unlink()
        codegen.generate(b)


def test_estimate_formulas():
    """The RTL table's cycles per frame (verilog/README.md): window max(out, in), maxpool input beats."""
    plan_layers = {s.kind: s for s in design_of(_tiny_plan()).stages}
    assert plan_layers["window"].cycles == max(3 * 3 * 9 * 4, 5 * 5 * 4)
    assert next_pow2_above(0) == 2 and next_pow2_above(1) == 2 and next_pow2_above(2) == 4
    assert next_pow2_above(3) == 4 and next_pow2_above(4) == 8 and next_pow2_above(580) == 1024


def _tiny_plan():
    from bnn_flow.conventions import BIT, IntType
    from bnn_flow.plan import Plan
    w = Window("w", (5, 5, 4), (3, 3, 36), (3, 3), (2, 2), (1, 1, 1, 1), 1, BIT)
    m = Mvau("m", True, 36, 6, 9, (3, 3), np.zeros((6, 36), np.int64), None, BIT, BIT, IntType(7, False))
    return Plan((5, 5, 4), BIT, None, {}, [w, m])
