// bnn_popcount.v - the number of one bits of an N-bit word, pipelined.
//
// Parameters
//   N             input bits (>= 1)
//   OW            bits of the count (>= $clog2(N + 1) for an exact count)
//   STAGE_LEVELS  as in bnn_adder_tree: a register after every STAGE_LEVELS adder levels
// Ports: clk; bits[N]; count[OW].
// Latency: ceil(log2(ceil(N/3))) / STAGE_LEVELS cycles (integer division; 0 if STAGE_LEVELS = 0).
//
// How: the bits are first summed three at a time by full adders written as logic (a 3:2 counter is two
// LUT4s, cheaper than a carry chain for two bits), then the ceil(N/3) 2-bit partial counts go through
// bnn_adder_tree. The full-adder level is combinational, in front of the tree's first stage.
`default_nettype none

module bnn_popcount #(
    parameter integer N = 8,
    parameter integer OW = 4,
    parameter integer STAGE_LEVELS = 2
) (
    input  wire          clk,
    input  wire [ N-1:0] bits,
    output wire [OW-1:0] count
);
  localparam integer GROUPS = (N + 2) / 3;

  wire [3*GROUPS-1:0] padded;  // unused positions count as 0
  reg  [2*GROUPS-1:0] partial;  // group g's count (0..3) at bits [2g +: 2]

  generate
    if (3 * GROUPS > N) begin : g_pad
      assign padded = {{3 * GROUPS - N{1'b0}}, bits};
    end else begin : g_nopad
      assign padded = bits;
    end
  endgenerate

  // One process for all groups (a simulator then evaluates them once per change of `bits`).
  integer g;
  always @* begin
    for (g = 0; g < GROUPS; g = g + 1) begin
      partial[2*g] = padded[3*g] ^ padded[3*g+1] ^ padded[3*g+2];
      partial[2*g+1] = (padded[3*g] & padded[3*g+1]) | (padded[3*g] & padded[3*g+2]) |
          (padded[3*g+1] & padded[3*g+2]);
    end
  end

  bnn_adder_tree #(
      .N(GROUPS),
      .IW(2),
      .SIGNED(0),
      .OW(OW),
      .STAGE_LEVELS(STAGE_LEVELS)
  ) u_tree (
      .clk(clk),
      .in_data(partial),
      .sum(count)
  );
endmodule

`default_nettype wire
