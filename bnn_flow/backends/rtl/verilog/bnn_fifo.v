// bnn_fifo.v - a first-word-fall-through FIFO with valid/ready on both sides.
//
// Parameters
//   WIDTH        bits per beat
//   DEPTH        beats it holds (>= 2)
//   BLOCK_DEPTH  DEPTH >= BLOCK_DEPTH selects the block-RAM variant (synchronous read, maps to ECP5 DP16KD);
//                below it the beats live in a memory with an asynchronous read port (registers, or ECP5
//                TRELLIS_DPR16X4 LUT RAM), which is what a FIFO between two layers normally is.
// Ports: clk, rst (synchronous, active high); in_valid/in_ready/in_data; out_valid/out_ready/out_data.
//   A beat moves on a port when valid && ready (AXI-Stream). out_valid and in_ready are registered state:
//   neither depends combinationally on the other side.
// Cycles: one beat in and one beat out per cycle at once (full throughput); a beat pushed in cycle t is
//   visible on out_* in cycle t+1 (LUT variant) or t+3 (block variant). A FIFO that is full accepts again
//   one cycle after a beat left. The block variant holds DEPTH beats in the RAM plus up to 3 in its output
//   queue (it prefetches so that a RAM read latency never costs throughput).
`default_nettype none

module bnn_fifo #(
    parameter integer WIDTH = 8,
    parameter integer DEPTH = 2,
    parameter integer BLOCK_DEPTH = 512
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
  generate
    if (DEPTH < BLOCK_DEPTH) begin : g_lut
      bnn_fifo_lut #(
          .WIDTH(WIDTH),
          .DEPTH(DEPTH)
      ) u_fifo (
          .clk(clk),
          .rst(rst),
          .in_valid(in_valid),
          .in_ready(in_ready),
          .in_data(in_data),
          .out_valid(out_valid),
          .out_ready(out_ready),
          .out_data(out_data)
      );
    end else begin : g_block
      localparam integer AW = $clog2(DEPTH);
      localparam integer QUEUE = 3;  // prefetch queue: a read in flight plus two beats hides the RAM latency

      (* ram_style = "block" *) reg [WIDTH-1:0] mem[0:DEPTH-1];
      // Integer parameters cut to the counter widths on purpose (they fit).
      /* verilator lint_off WIDTH */
      localparam [AW-1:0] LAST = DEPTH - 1;
      localparam [AW:0] FULL = DEPTH;
      localparam [1:0] QUEUE_SLOTS = QUEUE;
      /* verilator lint_on WIDTH */
      reg  [AW-1:0] wr_ptr, rd_ptr;
      reg  [AW:0] ram_count;  // beats in the RAM not yet read out
      reg  [1:0] queue_free;  // queue slots neither filled nor promised to a read in flight
      reg         read_pending;  // a RAM read issued last cycle: its data is in read_data now
      reg  [WIDTH-1:0] read_data;

      wire push = in_valid && in_ready;
      wire queue_pop = out_valid && out_ready;
      wire issue_read = ram_count != 0 && queue_free != 0;

      assign in_ready = ram_count != FULL;

      always @(posedge clk) begin
        if (push) mem[wr_ptr] <= in_data;
        if (issue_read) read_data <= mem[rd_ptr];
      end

      always @(posedge clk) begin
        if (rst) begin
          wr_ptr <= 0;
          rd_ptr <= 0;
          ram_count <= 0;
          queue_free <= QUEUE_SLOTS;
          read_pending <= 1'b0;
        end else begin
          if (push) wr_ptr <= wr_ptr == LAST ? {AW{1'b0}} : wr_ptr + 1'b1;
          if (issue_read) rd_ptr <= rd_ptr == LAST ? {AW{1'b0}} : rd_ptr + 1'b1;
          ram_count <= ram_count + {{AW{1'b0}}, push} - {{AW{1'b0}}, issue_read};
          queue_free <= queue_free - {1'b0, issue_read} + {1'b0, queue_pop};
          read_pending <= issue_read;
        end
      end

      // The queue never refuses a beat: a read is issued only against a free slot (queue_free).
      /* verilator lint_off PINCONNECTEMPTY */
      bnn_fifo_lut #(
          .WIDTH(WIDTH),
          .DEPTH(QUEUE)
      ) u_queue (
          .clk(clk),
          .rst(rst),
          .in_valid(read_pending),
          .in_ready(),  // always 1 when read_pending, by the credit count above
          .in_data(read_data),
          .out_valid(out_valid),
          .out_ready(out_ready),
          .out_data(out_data)
      );
      /* verilator lint_on PINCONNECTEMPTY */
    end
  endgenerate
endmodule

`default_nettype wire
