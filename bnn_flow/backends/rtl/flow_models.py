"""Simulation models of the FPGA cells that the yosys share folder leaves as black boxes, for the open
flow's post-synthesis netlist simulation (flow_netlist.py).

yosys (0.70) ships behavioural models of the ECP5 logic cells (LUT4, TRELLIS_FF, CCU2C, PFUMX, L6MUX21,
TRELLIS_DPR16X4: share/lattice/cells_sim_ecp5.v) but declares DP16KD (block RAM) a black box and MULT18X18D
only in cells_bb_ecp5.v. The models here are written from the block's documented organisation and from how
yosys's own mapping drives it (share/lattice/brams_map_16kd.v, dsp_map_18x18.v):

* DP16KD: 1024 words of 18 bits. INITVAL_xx holds words 16*xx .. 16*xx+15, word i at bits [20*i +: 18].
  Width 18: word = AD[13:4], AD[1:0] the byte (9-bit) write enables; 9: AD[13:3] (half AD[3]); 4, 2, 1: the
  16 data bits of a word (bits 0-7 and 9-16, the parity bits 8 and 17 unused) at AD[3:0] rounded down to
  the width; 36 (pseudo dual port): word pair AD[13:5], low half on DIA/DOA, high half on DIB/DOB, AD[3:0]
  byte enables. Write modes NORMAL (output kept), WRITETHROUGH, READBEFOREWRITE; REGMODE NOREG or OUTREG;
  chip selects against CSDECODE; synchronous or asynchronous output reset.
* MULT18X18D: the combinational multiplier yosys maps $mul to (every register NONE); a netlist that
  registers inside the block is refused when its parameters are read (the model stops the simulation).

The flow's netlist check compares the netlist with the golden model, so a wrong model shows as a mismatch.
"""

from __future__ import annotations

from pathlib import Path

from bnn_flow.errors import CheckFailedError


def _bus(name: str, n: int) -> str:
    return "{" + ", ".join(f"{name}{i}" for i in reversed(range(n))) + "}"


def _dp16kd_port(p: str) -> str:
    """The always block of port `p` (A or B). Width 36 is the pseudo dual port yosys maps to: written on A
    (high half on the DIB pins), read on B (high half on the DOB pins)."""
    x = p.lower()
    rst = f'RESETMODE == "SYNC" && RST{p}'
    return f"""
  wire clk{x} = CLK{p}MUX == "INV" ? ~CLK{p} : CLK{p};
  wire [13:0] ad{x} = {_bus(f"AD{p}", 14)};
  wire cs{x} = {_bus(f"CS{p}", 3)} == {{CSDECODE_{p}[16], CSDECODE_{p}[8], CSDECODE_{p}[0]}};
  always @(posedge clk{x}) begin : port_{x}
    reg [17:0] w;
    integer k, lsb;
    if ({rst}) begin
      q{x} <= 18'd0;
      if (DATA_WIDTH_{p} == 36) hi36 <= 18'd0;
    end
    if (CE{p} && cs{x}) begin
      if (WE{p} && DATA_WIDTH_{p} == 36) begin
        for (k = 0; k < 2; k = k + 1) begin
          w = mem[{{ad{x}[13:5], 1'b0}} + k];
          if (ad{x}[2 * k]) w[8:0] = k == 0 ? dia[8:0] : dib[8:0];
          if (ad{x}[2 * k + 1]) w[17:9] = k == 0 ? dia[17:9] : dib[17:9];
          mem[{{ad{x}[13:5], 1'b0}} + k] = w;
        end
      end else if (WE{p}) begin
        w = mem[ad{x}[13:4]];
        if (WRITEMODE_{p} == "READBEFOREWRITE" && !({rst})) q{x} <= rd(w, ad{x}, DATA_WIDTH_{p});
        if (DATA_WIDTH_{p} == 18) begin
          if (ad{x}[0]) w[8:0] = di{x}[8:0];
          if (ad{x}[1]) w[17:9] = di{x}[17:9];
        end else if (DATA_WIDTH_{p} == 9) begin
          if (ad{x}[3]) w[17:9] = di{x}[8:0];
          else w[8:0] = di{x}[8:0];
        end else begin
          lsb = (ad{x}[3:0] / DATA_WIDTH_{p}) * DATA_WIDTH_{p};
          for (k = 0; k < DATA_WIDTH_{p}; k = k + 1) w[phys(lsb + k)] = di{x}[k];
        end
        mem[ad{x}[13:4]] = w;
        if (WRITEMODE_{p} == "WRITETHROUGH" && !({rst})) q{x} <= rd(w, ad{x}, DATA_WIDTH_{p});
      end else if (!({rst})) begin
        if (DATA_WIDTH_{p} == 36) begin
          q{x} <= mem[{{ad{x}[13:5], 1'b0}}];
          hi36 <= mem[{{ad{x}[13:5], 1'b1}}];
        end else q{x} <= rd(mem[ad{x}[13:4]], ad{x}, DATA_WIDTH_{p});
      end
    end
  end
  always @(posedge clk{x}) if (OCE{p}) r{x} <= q{x};
"""


def dp16kd_model() -> str:
    """Verilog of the DP16KD model (see the module docstring)."""
    ports = []
    for p in "AB":
        ports += [f"DI{p}{i}" for i in range(18)] + [f"AD{p}{i}" for i in range(14)]
        ports += [f"CE{p}", f"OCE{p}", f"CLK{p}", f"WE{p}", f"RST{p}"] + [f"CS{p}{i}" for i in range(3)]
    outs = [f"DO{p}{i}" for p in "AB" for i in range(18)]
    inits = "\n".join(f'  parameter [319:0] INITVAL_{i:02X} = 320\'h0;' for i in range(64))
    load = "\n".join(f"    for (i = 0; i < 16; i = i + 1) mem[{16 * j} + i] = INITVAL_{j:02X}[20 * i +: 18];"
                     for j in range(64))
    return f"""// DP16KD simulation model of bnn_flow/backends/rtl/flow_models.py (the post-synthesis netlist check)
module DP16KD ({", ".join(ports + outs)});
  input {", ".join(ports)};
  output {", ".join(outs)};
  parameter DATA_WIDTH_A = 18;
  parameter DATA_WIDTH_B = 18;
  parameter REGMODE_A = "NOREG";
  parameter REGMODE_B = "NOREG";
  parameter RESETMODE = "SYNC";
  parameter ASYNC_RESET_RELEASE = "SYNC";
  parameter [39:0] CSDECODE_A = "0b000";
  parameter [39:0] CSDECODE_B = "0b000";
  parameter WRITEMODE_A = "NORMAL";
  parameter WRITEMODE_B = "NORMAL";
  parameter CLKAMUX = "CLKA";
  parameter CLKBMUX = "CLKB";
  parameter GSR = "ENABLED";
  parameter WID = 0;
  parameter INIT_DATA = "STATIC";
{inits}

  reg [17:0] mem[0:1023];
  reg [17:0] qa = 18'd0, qb = 18'd0, ra = 18'd0, rb = 18'd0, hi36 = 18'd0, rhi36 = 18'd0;
  wire [17:0] dia = {_bus("DIA", 18)};
  wire [17:0] dib = {_bus("DIB", 18)};
  integer i;
  initial begin
{load}
  end

  function integer phys(input integer b);  // data bit b of a word in x1/x2/x4 modes: parity bits skipped
    phys = b < 8 ? b : b + 1;
  endfunction

  function [17:0] rd(input [17:0] w, input [13:0] ad, input integer width);
    integer k, lsb;
    begin
      rd = 18'd0;
      if (width == 18) rd = w;
      else if (width == 9) rd[8:0] = ad[3] ? w[17:9] : w[8:0];
      else begin
        lsb = (ad[3:0] / width) * width;
        for (k = 0; k < width; k = k + 1) rd[k] = w[phys(lsb + k)];
      end
    end
  endfunction
{_dp16kd_port("A")}{_dp16kd_port("B")}
  always @(posedge RSTA) if (RESETMODE == "ASYNC") qa <= 18'd0;
  always @(posedge RSTB) if (RESETMODE == "ASYNC") qb <= 18'd0;
  always @(posedge clkb) if (OCEB) rhi36 <= hi36;
  wire [17:0] out_a = REGMODE_A == "OUTREG" ? ra : qa;
  wire [17:0] out_b = REGMODE_B == "OUTREG" ? rb : qb;
  wire [17:0] out_hi = REGMODE_B == "OUTREG" ? rhi36 : hi36;
  // x36 reads come out of port B: the low half on DOA, the high half on DOB
  assign {_bus("DOA", 18)} = DATA_WIDTH_B == 36 ? out_b : out_a;
  assign {_bus("DOB", 18)} = DATA_WIDTH_B == 36 ? out_hi : out_b;
endmodule
"""


def mult18x18d_model() -> str:
    """Verilog of the combinational MULT18X18D (every REG_* parameter NONE)."""
    ins = ([f"A{i}" for i in range(18)] + [f"B{i}" for i in range(18)] + [f"C{i}" for i in range(18)]
           + ["SIGNEDA", "SIGNEDB", "SOURCEA", "SOURCEB"] + [f"{s}{i}" for s in ("CLK", "CE", "RST") for i in range(4)])
    outs = [f"P{i}" for i in range(36)] + ["SIGNEDP"]
    regs = [f"REG_{r}_CLK" for r in ("INPUTA", "INPUTB", "INPUTC", "PIPELINE", "OUTPUT")]
    params = "\n".join(f'  parameter {r} = "NONE";' for r in regs)
    check = " || ".join(f'{r} != "NONE"' for r in regs)
    return f"""// MULT18X18D simulation model of bnn_flow/backends/rtl/flow_models.py (combinational use only)
module MULT18X18D ({", ".join(ins + outs)});
  input {", ".join(ins)};
  output {", ".join(outs)};
{params}
  parameter GSR = "ENABLED";
  parameter RESETMODE = "SYNC";
  parameter MULT_BYPASS = "DISABLED";
  parameter SOURCEB_MODE = "B_SHIFT";
  parameter CAS_MATCH_REG = "FALSE";
  parameter HIGHSPEED_CLK = "NONE";
  wire [17:0] a = {_bus("A", 18)};
  wire [17:0] b = {_bus("B", 18)};
  wire signed [36:0] sa = {{SIGNEDA & a[17], a}};
  wire signed [36:0] sb = {{SIGNEDB & b[17], b}};
  wire signed [73:0] p = sa * sb;
  assign {_bus("P", 36)} = p[35:0];
  assign SIGNEDP = SIGNEDA | SIGNEDB;
  initial if ({check}) begin
    $display("ERROR: MULT18X18D with internal registers has no model here");
    $finish;
  end
endmodule
"""


BLACKBOX_DP16KD = "(* blackbox *)\nmodule DP16KD("


def ecp5_library(share: Path, dest: Path) -> list[str]:
    """Stage yosys's ECP5 cell models (with its DP16KD black box cut out) and ours into `dest`; returns the
    files to compile (relative names; compile with NO_INCLUDES defined). CheckFailedError when the share
    folder is not the one expected."""
    lattice = share / "lattice"
    sim = lattice / "cells_sim_ecp5.v"
    if not sim.is_file():
        raise CheckFailedError(f"{sim} not found: this yosys has no ECP5 cell models to simulate the netlist with")
    for inc in ("common_sim.vh", "ccu2c_sim.vh"):  # cells_ff/io.vh: techmap helpers (NO_INCLUDES skips them)
        text = (lattice / inc).read_text()
        # an elaboration-time $error (SystemVerilog) in a branch our netlists never take: Icarus 11 cannot
        # parse it, so it goes (TRELLIS_COMB only appears after place and route, never in these netlists)
        (dest / inc).write_text(text.replace('$error("unsupported COMB mode %s", MODE);', ""))
    text = sim.read_text()
    start = text.find(BLACKBOX_DP16KD)
    if start >= 0:  # a body-less declaration: replaced by our model
        end = text.index("endmodule", start) + len("endmodule")
        text = text[:start] + text[end:]
    elif "module DP16KD" in text:
        raise CheckFailedError(f"{sim} defines DP16KD in a way this flow does not know: update flow_models.py")
    (dest / "cells_sim_ecp5.v").write_text(text)
    (dest / "flow_models.v").write_text(dp16kd_model() + mult18x18d_model())
    return ["cells_sim_ecp5.v", "flow_models.v"]


def ice40_library(share: Path, dest: Path) -> list[str]:
    """yosys's iCE40 cell models (SB_RAM40_4K and SB_MAC16 included) staged into `dest`; compile with
    NO_ICE40_DEFAULT_ASSIGNMENTS defined (port default values are SystemVerilog that Icarus 11 refuses; the
    synthesized netlist connects every input it uses)."""
    sim = share / "ice40" / "cells_sim.v"
    if not sim.is_file():
        raise CheckFailedError(f"{sim} not found: this yosys has no iCE40 cell models to simulate the netlist with")
    (dest / "cells_sim_ice40.v").write_text(sim.read_text())
    return ["cells_sim_ice40.v"]
