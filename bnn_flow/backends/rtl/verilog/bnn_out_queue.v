// bnn_out_queue.v - the output FIFO of a fixed-latency pipeline, with a credit count so that the pipeline
// never has to stall inside.
//
// A pipeline that cannot stop (memories read, adder-tree stages, ...) may start a result only when there will
// be room for it at the end, however long the consumer stalls. `credit` says so: it is 1 while the queue
// has a slot that is neither filled nor promised. The pipeline pulses `reserve` in the cycle it starts a
// result (taking a slot), and pulses `push` with the data when that result comes out, any number of cycles
// later. A result is therefore never lost (a promised slot is always free) nor duplicated.
//
// Parameters
//   WIDTH  bits per beat
//   DEPTH  slots; a pipeline whose results take L cycles from `reserve` to `push` keeps its full rate
//          (one result per cycle) when DEPTH >= L + 2 (a slot comes back one cycle after the beat left).
// Ports: clk, rst; reserve, credit (registered); push, push_data (must be only after a reserve);
//        out_valid/out_ready/out_data: the output stream (AXI-Stream, out_valid registered).
`default_nettype none

module bnn_out_queue #(
    parameter integer WIDTH = 8,
    parameter integer DEPTH = 4
) (
    input  wire             clk,
    input  wire             rst,
    input  wire             reserve,
    output wire             credit,
    input  wire             push,
    input  wire [WIDTH-1:0] push_data,
    output wire             out_valid,
    input  wire             out_ready,
    output wire [WIDTH-1:0] out_data
);
  localparam integer CW = $clog2(DEPTH + 1);

  /* verilator lint_off WIDTH */
  localparam [CW-1:0] SLOTS = DEPTH;  // cut to the counter width on purpose: it fits
  /* verilator lint_on WIDTH */

  reg  [CW-1:0] credits;  // DEPTH - (beats in the queue + results in flight)
  wire          pop = out_valid && out_ready;

  assign credit = credits != 0;

  always @(posedge clk) begin
    if (rst) credits <= SLOTS;
    else credits <= credits - {{CW - 1{1'b0}}, reserve} + {{CW - 1{1'b0}}, pop};
  end

  /* verilator lint_off PINCONNECTEMPTY */
  bnn_fifo #(
      .WIDTH(WIDTH),
      .DEPTH(DEPTH)
  ) u_fifo (
      .clk(clk),
      .rst(rst),
      .in_valid(push),
      .in_ready(),  // always 1 when push: the slot was reserved
      .in_data(push_data),
      .out_valid(out_valid),
      .out_ready(out_ready),
      .out_data(out_data)
  );
  /* verilator lint_on PINCONNECTEMPTY */

`ifndef SYNTHESIS
  // Simulation check of the contract: a push without a free slot would be a lost result.
  always @(posedge clk) begin
    if (!rst && push && !u_fifo.in_ready) begin
      $display("ERROR bnn_out_queue %m: push into a full queue (a result without a reserved slot)");
      $finish;
    end
  end
`endif
endmodule

`default_nettype wire
