// bnn_fifo_lut.v - the small FIFO behind bnn_fifo: beats in a memory with an asynchronous read port
// (registers, or ECP5 TRELLIS_DPR16X4 LUT RAM), registered full/empty flags, one beat in and one out per cycle.
// Parameters: WIDTH, DEPTH (>= 2). Ports and timing as bnn_fifo's LUT variant: a beat pushed in cycle t is
// on out_* in cycle t+1; in_ready and out_valid are registered.
`default_nettype none

module bnn_fifo_lut #(
    parameter integer WIDTH = 8,
    parameter integer DEPTH = 2
) (
    input  wire             clk,
    input  wire             rst,
    input  wire             in_valid,
    output wire             in_ready,
    input  wire [WIDTH-1:0] in_data,
    output wire             out_valid,
    input  wire             out_ready,
    output wire [WIDTH-1:0] out_data
);
  localparam integer AW = DEPTH > 1 ? $clog2(DEPTH) : 1;
  localparam integer CW = $clog2(DEPTH + 1);

  // Integer parameters cut to the counter widths on purpose (they fit: AW, CW are sized for them).
  /* verilator lint_off WIDTH */
  localparam [AW-1:0] LAST = DEPTH - 1;
  localparam [CW-1:0] FULL = DEPTH;
  /* verilator lint_on WIDTH */

  reg [WIDTH-1:0] mem[0:DEPTH-1];
  reg [AW-1:0] wr_ptr, rd_ptr;
  reg [CW-1:0] count;
  reg not_empty, not_full;

  wire push = in_valid && not_full;
  wire pop = not_empty && out_ready;
  wire [CW-1:0] count_next = count + {{CW - 1{1'b0}}, push} - {{CW - 1{1'b0}}, pop};

  assign in_ready = not_full;
  assign out_valid = not_empty;
  assign out_data = mem[rd_ptr];

  always @(posedge clk) if (push) mem[wr_ptr] <= in_data;

  always @(posedge clk) begin
    if (rst) begin
      wr_ptr <= 0;
      rd_ptr <= 0;
      count <= 0;
      not_empty <= 1'b0;
      not_full <= 1'b1;
    end else begin
      if (push) wr_ptr <= wr_ptr == LAST ? {AW{1'b0}} : wr_ptr + 1'b1;
      if (pop) rd_ptr <= rd_ptr == LAST ? {AW{1'b0}} : rd_ptr + 1'b1;
      count <= count_next;
      not_empty <= count_next != 0;
      not_full <= count_next != FULL;
    end
  end
endmodule

`default_nettype wire
