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
//   LATENCY       1: q is the word at addr one cycle later (a registered read); 2: two cycles later (a second
//                 register, for ROMs whose read data arrives late: a DP16KD's clock-to-out is about 5.6 ns)
// Banks (`BNN_ROM_BANKS, defined by the open flow where estimate.Fabric.rom_banks says so; with LATENCY 2 and
// block RAM): a ROM deeper than one DP16KD holds at its width (16384 words of 1 bit .. 512 of 36: BANK_DEPTH
// below) is built from banks of that depth, each read into its own register, and the bank is selected after those registers. Left to yosys, the
// blocks stacked in depth are selected by a LUT multiplexer right behind the slow block outputs: 72 MHz for the
// fitted CNV's 18,432-word ROM over 36 blocks. Bank b reads FILE.<b, three digits> (the same words as lines
// b*BANK_DEPTH .. of FILE; bnn_flow/backends/rtl/memfiles.py writes them beside FILE).
// Ports: clk; en (read enable: q keeps its value when 0); addr; q (the word at addr, LATENCY cycles later).
`default_nettype none

module bnn_rom #(
    parameter integer WIDTH = 8,
    parameter integer DEPTH = 16,
    parameter FILE = "",
    parameter STYLE = "auto",
    parameter integer LATENCY = 1
) (
    input  wire                                   clk,
    input  wire                                   en,
    input  wire [(DEPTH > 1 ? $clog2(DEPTH) : 1)-1:0] addr,
    output wire [                      WIDTH-1:0] q
);
  localparam integer AW = DEPTH > 1 ? $clog2(DEPTH) : 1;
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
  localparam integer BANK_DEPTH = WIDTH <= 1 ? 16384 : WIDTH <= 2 ? 8192 : WIDTH <= 4 ? 4096 : WIDTH <= 9 ? 2048 :
      WIDTH <= 18 ? 1024 : 512;  // a DP16KD's words at the narrowest of its widths that holds WIDTH
`ifdef BNN_ROM_BANKS
  localparam integer BANKS = BLOCK != 0 && LATENCY == 2 && DEPTH > BANK_DEPTH ? (DEPTH + BANK_DEPTH - 1) / BANK_DEPTH : 1;
`else
  localparam integer BANKS = 1;
`endif

  generate
    if (BANKS > 1) begin : g_banks
      localparam integer BAW = $clog2(BANK_DEPTH);
      wire [WIDTH*BANKS-1:0] bank_q;
      reg [AW-BAW-1:0] sel1, sel2;  // the bank of the read, in step with its data
      always @(posedge clk) if (en) {sel2, sel1} <= {sel1, addr[AW-1:BAW]};
      genvar b;
      for (b = 0; b < BANKS; b = b + 1) begin : g_bank
        /* verilator lint_off UNDRIVEN */
        (* ram_style = "block" *) reg [WIDTH-1:0] rom[0:BANK_DEPTH-1];
        /* verilator lint_on UNDRIVEN */
        reg [WIDTH-1:0] rd, rd_q;
        localparam [7:0] D2 = 8'd48 + b / 100, D1 = 8'd48 + b / 10 % 10, D0 = 8'd48 + b % 10;  // ASCII digits
        if (LOAD != 0) begin : g_load
          initial $readmemh({FILE, ".", D2, D1, D0}, rom);
        end
        always @(posedge clk) if (en) {rd_q, rd} <= {rd, rom[addr[BAW-1:0]]};
        assign bank_q[b*WIDTH+:WIDTH] = rd_q;
      end
      assign q = bank_q[sel2*WIDTH+:WIDTH];
    end else begin : g_one
      reg [WIDTH-1:0] q1;  // the registered read
      if (BLOCK != 0) begin : g_block
        /* verilator lint_off UNDRIVEN */
        (* ram_style = "block" *) reg [WIDTH-1:0] rom[0:DEPTH-1];
        /* verilator lint_on UNDRIVEN */
        if (LOAD != 0) begin : g_load
          initial $readmemh(FILE, rom);
        end
        always @(posedge clk) if (en) q1 <= rom[addr];
      end else if (LOGIC != 0) begin : g_logic
        /* verilator lint_off UNDRIVEN */
        (* ram_style = "logic" *) reg [WIDTH-1:0] rom[0:DEPTH-1];
        /* verilator lint_on UNDRIVEN */
        if (LOAD != 0) begin : g_load
          initial $readmemh(FILE, rom);
        end
        always @(posedge clk) if (en) q1 <= rom[addr];
      end else begin : g_auto
        /* verilator lint_off UNDRIVEN */
        reg [WIDTH-1:0] rom[0:DEPTH-1];
        /* verilator lint_on UNDRIVEN */
        if (LOAD != 0) begin : g_load
          initial $readmemh(FILE, rom);
        end
        always @(posedge clk) if (en) q1 <= rom[addr];
      end
      if (LATENCY == 2) begin : g_second
        reg [WIDTH-1:0] q2;
        always @(posedge clk) if (en) q2 <= q1;
        assign q = q2;
      end else begin : g_first
        assign q = q1;
      end
    end
  endgenerate
endmodule

`default_nettype wire
