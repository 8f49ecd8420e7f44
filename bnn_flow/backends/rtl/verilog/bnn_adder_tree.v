// bnn_adder_tree.v - a balanced, pipelined adder tree: the sum of N operands.
//
// Parameters
//   N             operands (>= 1)
//   IW            bits per operand; operand i at in_data[i*IW +: IW]
//   SIGNED        1: operands are two's complement (sign-extended as sums grow); 0: unsigned
//   OW            bits of the sum. Level l's sums are min(IW + l, OW) bits wide and wrap modulo 2^width, so
//                 the result is exact whenever the true sum fits OW bits (two's complement arithmetic).
//   STAGE_LEVELS  a register after every STAGE_LEVELS adder levels (0: purely combinational). Two levels
//                 of small adders per stage meet 100 MHz on an ECP5-6; levels left over at the end (when
//                 STAGE_LEVELS does not divide the depth) stay combinational into `sum`.
// Ports: clk; in_data[N*IW]; sum[OW].
// Latency: LEVELS / STAGE_LEVELS cycles (integer division; LEVELS = ceil(log2 N); 0 if STAGE_LEVELS = 0).
// The tree never stalls: its registers advance every cycle (the caller tracks which results are real).
`default_nettype none

module bnn_adder_tree #(
    parameter integer N = 4,
    parameter integer IW = 1,
    parameter integer SIGNED = 0,
    parameter integer OW = 8,
    parameter integer STAGE_LEVELS = 2
) (
    input  wire            clk,
    input  wire [N*IW-1:0] in_data,
    output wire [  OW-1:0] sum
);
  localparam integer LEVELS = N > 1 ? $clog2(N) : 0;

  // Level l has ceil(N / 2^l) nodes of width_of(l) bits, in the vector g_level[l].sums (node i at bits
  // [i*width +: width]). One process computes a whole level: an event-driven simulator then evaluates each
  // level once per change of the level below, and elaborates few scopes however wide the tree.
  function integer count_of(input integer l);
    count_of = (N + (1 << l) - 1) >> l;
  endfunction
  function integer width_of(input integer l);
    width_of = IW + l < OW ? IW + l : OW;
  endfunction

  genvar l;
  generate
    for (l = 0; l <= LEVELS; l = l + 1) begin : g_level
      localparam integer WL = width_of(l), NL = count_of(l);
      localparam integer SL = STAGE_LEVELS > 0 ? STAGE_LEVELS : 1;  // (no modulo by zero)
      localparam integer REGISTERED = (STAGE_LEVELS > 0 && l > 0 && l % SL == 0) ? 1 : 0;
      wire [NL*WL-1:0] sums;
      if (l == 0 && WL == IW) begin : g_leaves
        assign sums = in_data;
      end else if (l == 0) begin : g_cut  // OW < IW: only the low bits matter modulo 2^OW
        reg [NL*WL-1:0] low;
        integer i;
        always @* for (i = 0; i < NL; i = i + 1) low[i*WL+:WL] = in_data[i*IW+:WL];
        assign sums = low;
      end else begin : g_adders
        localparam integer WP = width_of(l - 1), NP = count_of(l - 1);
        wire [NP*WP-1:0] below = g_level[l-1].sums;
        reg [NL*WL-1:0] s;
        reg [WL-1:0] a, b;
        integer i;
        if (WL > WP) begin : g_grow  // one bit wider than the level below: extend
          always @* begin
            for (i = 0; i < NL; i = i + 1) begin
              a = {SIGNED != 0 && below[2*i*WP+WP-1], below[2*i*WP+:WP]};
              b = {WL{1'b0}};  // an odd node out passes to the next level
              if (2 * i + 1 < NP) b = {SIGNED != 0 && below[(2*i+1)*WP+WP-1], below[(2*i+1)*WP+:WP]};
              s[i*WL+:WL] = a + b;
            end
          end
        end else begin : g_same  // capped at OW bits: wrap
          always @* begin
            for (i = 0; i < NL; i = i + 1) begin
              a = below[2*i*WP+:WP];
              b = {WL{1'b0}};
              if (2 * i + 1 < NP) b = below[(2*i+1)*WP+:WP];
              s[i*WL+:WL] = a + b;
            end
          end
        end
        if (REGISTERED != 0) begin : g_reg
          reg [NL*WL-1:0] q;
          always @(posedge clk) q <= s;
          assign sums = q;
        end else begin : g_comb
          assign sums = s;
        end
      end
    end

    // The root, extended to OW bits.
    localparam integer WR = width_of(LEVELS);
    wire [WR-1:0] root = g_level[LEVELS].sums;
    if (WR < OW) begin : g_root_ext
      assign sum = {{(OW - WR) {SIGNED != 0 && root[WR-1]}}, root};
    end else begin : g_root
      assign sum = root;
    end
    if (STAGE_LEVELS == 0 || LEVELS < STAGE_LEVELS) begin : g_noclk
      /* verilator lint_off UNUSED */
      wire unused_clk = clk;  // no pipeline register in this configuration
      /* verilator lint_on UNUSED */
    end
  endgenerate
endmodule

`default_nettype wire
