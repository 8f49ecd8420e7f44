// bnn_rom.v - a read-only memory with a registered read port, initialized by $readmemh.
//
// Parameters
//   WIDTH, DEPTH  word bits and words
//   FILE          $readmemh file: DEPTH lines, one hexadecimal word each (most significant digit first);
//                 "" (the default, so that a tool may elaborate the defaults): no contents
//   STYLE         "auto": yosys decides (synth_ecp5: DP16KD block RAM when deep enough, LUTs when shallow),
//                 except that a ROM of more than `BNN_ROM_LOGIC_MAX_BITS bits (a macro the open flow defines
//                 per FPGA family: estimate.Fabric.rom_logic_max_bits) goes to block RAM: a wide, shallow ROM
//                 in LUTs is cheap in LUT count but every address bit fans out to thousands of LUTs, which
//                 costs the router minutes and the design its clock (docs/open-flow.md, measured);
//                 "block" / "logic": force block RAM / LUTs (yosys' ram_style attribute)
// Ports: clk; en (read enable: q keeps its value when 0); addr; q (the word at addr, one cycle later).
`default_nettype none

module bnn_rom #(
    parameter integer WIDTH = 8,
    parameter integer DEPTH = 16,
    parameter FILE = "",
    parameter STYLE = "auto"
) (
    input  wire                                   clk,
    input  wire                                   en,
    input  wire [(DEPTH > 1 ? $clog2(DEPTH) : 1)-1:0] addr,
    output reg  [                      WIDTH-1:0] q
);
  // A string parameter compared with a literal of another length: both are zero-extended, as intended.
  /* verilator lint_off WIDTH */
`ifdef BNN_ROM_LOGIC_MAX_BITS
  localparam integer TOO_BIG = WIDTH * DEPTH > `BNN_ROM_LOGIC_MAX_BITS;
`else
  localparam integer TOO_BIG = 0;
`endif
  localparam integer BLOCK = STYLE == "block" || (STYLE == "auto" && TOO_BIG != 0);
  localparam integer LOGIC = STYLE == "logic", LOAD = FILE != "";
  /* verilator lint_on WIDTH */

  // A ROM's only driver is $readmemh: none when FILE is "" (hence the UNDRIVEN waivers).
  generate
    if (BLOCK != 0) begin : g_block
      /* verilator lint_off UNDRIVEN */
      (* ram_style = "block" *) reg [WIDTH-1:0] rom[0:DEPTH-1];
      /* verilator lint_on UNDRIVEN */
      if (LOAD != 0) begin : g_load
        initial $readmemh(FILE, rom);
      end
      always @(posedge clk) if (en) q <= rom[addr];
    end else if (LOGIC != 0) begin : g_logic
      /* verilator lint_off UNDRIVEN */
      (* ram_style = "logic" *) reg [WIDTH-1:0] rom[0:DEPTH-1];
      /* verilator lint_on UNDRIVEN */
      if (LOAD != 0) begin : g_load
        initial $readmemh(FILE, rom);
      end
      always @(posedge clk) if (en) q <= rom[addr];
    end else begin : g_auto
      /* verilator lint_off UNDRIVEN */
      reg [WIDTH-1:0] rom[0:DEPTH-1];
      /* verilator lint_on UNDRIVEN */
      if (LOAD != 0) begin : g_load
        initial $readmemh(FILE, rom);
      end
      always @(posedge clk) if (en) q <= rom[addr];
    end
  endgenerate
endmodule

`default_nettype wire
