"""The cell models of the post-synthesis netlist check (bnn_flow/backends/rtl/flow_models.py, flow_netlist.py)
against yosys's own block-RAM mapping: ROMs in every DP16KD configuration yosys uses (x1, x2, x4, x9, x18 and
the x36 pseudo dual port) and a block-RAM FIFO (writes and reads at once), synthesized with synth_ecp5 and
simulated with the models, must read back exactly the contents the ROM files hold. A wrong bit order in the
model, or a wrong INITVAL layout, shows as a mismatch here rather than as a false alarm of the flow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rtl_sim import VERILOG_DIR
from test_rtl_flow import tools  # noqa: F401 (fixture)

from bnn_flow.backends.rtl import flow_netlist, flow_report
from bnn_flow.backends.rtl.flow_project import Side
from bnn_flow.backends.rtl.flow_tools import Runner, find_tool

# (width, depth): one ROM per DP16KD mode
ROMS = [(1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512)]
AW = 14
ELEM = 36  # every ROM's word in a 36-bit output element


def zoo_verilog() -> str:
    """bnn_top: one input beat = an address; one output beat = every ROM's word at it (through a FIFO in block
    RAM), element r at bits [36*r +: 36]."""
    roms, reads, cat = [], [], []
    for w, d in ROMS:
        a = (d - 1).bit_length()
        roms.append(f'  (* ram_style = "block" *) reg [{w - 1}:0] rom{w} [0:{d - 1}];\n'
                    f'  initial $readmemh("rom{w}.memh", rom{w});\n  reg [{w - 1}:0] q{w};')
        reads.append(f"      q{w} <= rom{w}[in_data[{a - 1}:0]];")
        cat.append(f"{{{ELEM - w}'d0, q{w}}}" if w < ELEM else f"q{w}")
    n = len(ROMS)
    return f"""`default_nettype none
module bnn_top (
    input wire clk, input wire rst,
    input wire in_valid, output wire in_ready, input wire [{AW - 1}:0] in_data,
    output wire out_valid, input wire out_ready, output wire [{n * ELEM - 1}:0] out_data);
{chr(10).join(roms)}
  reg v;
  wire fifo_ready;
  assign in_ready = !v || fifo_ready;
  always @(posedge clk) begin
    if (in_valid && in_ready) begin
{chr(10).join(reads)}
    end
  end
  always @(posedge clk) v <= rst ? 1'b0 : (in_valid && in_ready) || (v && !fifo_ready);
  bnn_fifo #(.WIDTH({n * ELEM}), .DEPTH(600), .BLOCK_DEPTH(512)) u_fifo (
      .clk(clk), .rst(rst), .in_valid(v), .in_ready(fifo_ready), .in_data({{{", ".join(reversed(cat))}}}),
      .out_valid(out_valid), .out_ready(out_ready), .out_data(out_data));
endmodule
`default_nettype wire
"""


@pytest.mark.parametrize("simulator", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_dp16kd_model_reads_what_yosys_stored(tmp_path, tools, simulator):  # noqa: F811
    rng = np.random.default_rng(0)
    contents = {w: rng.integers(0, 1 << w, d) for w, d in ROMS}
    for w in contents:
        (tmp_path / f"rom{w}.memh").write_text("".join(f"{int(v):x}\n" for v in contents[w]))
    (tmp_path / "bnn_top.v").write_text(zoo_verilog())
    for name in ("bnn_fifo.v", "bnn_fifo_lut.v"):
        (tmp_path / name).write_text((VERILOG_DIR / name).read_text())
    (tmp_path / "zoo.ys").write_text("read_verilog bnn_top.v bnn_fifo.v bnn_fifo_lut.v\nsynth_ecp5 -top bnn_top\n"
                                     "tee -q -o stat.json stat -json\n"
                                     f"write_verilog -noattr {flow_netlist.NETLIST}\n")
    yosys = find_tool("yosys")
    Runner(tmp_path).run("synth", yosys, ["-q", "zoo.ys"])
    cells = flow_report.cell_counts(flow_report.read_json(tmp_path / "stat.json", "stat"))["design"]
    assert cells.get("DP16KD", 0) >= len(ROMS) + 2, cells  # every ROM and the FIFO in block RAM

    addr = np.concatenate([np.arange(0, 16384, 97), rng.integers(0, 16384, 300), [16383, 0, 8191]])
    expected = np.array([[contents[w][a % d] for w, d in ROMS] for a in addr], dtype=np.int64)
    inp = Side(AW, 1, AW, False, 1, 1)
    out = Side(len(ROMS) * ELEM, len(ROMS), ELEM, False, 1, len(ROMS))
    sim = tmp_path / "sim"
    sim.mkdir()
    (sim / flow_netlist.NETLIST).write_text((tmp_path / flow_netlist.NETLIST).read_text())
    res = flow_netlist.simulate(Path(sim), "ecp5", yosys, inp, out, addr[:, None], len(ROMS), expected, 100_000,
                                simulator=simulator)
    assert res.simulator == simulator and res.exact, f"first mismatch at address {addr[res.first_mismatch]}"
