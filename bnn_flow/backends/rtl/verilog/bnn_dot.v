// bnn_dot.v - one PE lane of bnn_mvau: the dot product of a SIMD-element input beat with a SIMD-element
// weight tile, pipelined.
//
// Parameters (as bnn_mvau's)
//   SIMD                     elements per beat / tile
//   IB, ISIGNED              input element bits, two's complement if ISIGNED
//   WB, WSIGNED, WBIPOLAR    weight element bits, two's complement if WSIGNED; WBIPOLAR (WB = 1): bit b = 2b-1
//   BINARY                   1: dot = number of positions where the input and weight bits agree (XNOR
//                            popcount, IB = WB = 1); 0: dot = sum of x[s] * w[s]
//   AB                       bits of dot (two's complement, modulo 2^AB)
//   STAGE_LEVELS             adder levels per pipeline register (bnn_adder_tree)
// Ports: clk; x[SIMD*IB] (element s at [s*IB +: IB]); w[SIMD*WB]; dot[AB].
// Latency: 1 + TREE_LAT cycles: the XNOR bits / products are registered, then the tree (bnn_popcount:
//   TREE_LAT = clog2(ceil(SIMD/3)) / STAGE_LEVELS; bnn_adder_tree: clog2(SIMD) / STAGE_LEVELS).
// No stall input: the registers advance every cycle, the caller tracks which results are real.
`default_nettype none

module bnn_dot #(
    parameter integer SIMD = 4,
    parameter integer IB = 1,
    parameter integer ISIGNED = 0,
    parameter integer WB = 1,
    parameter integer WSIGNED = 0,
    parameter integer WBIPOLAR = 0,
    parameter integer BINARY = 1,
    parameter integer AB = 8,
    parameter integer STAGE_LEVELS = 2
) (
    input  wire               clk,
    input  wire [SIMD*IB-1:0] x,
    input  wire [SIMD*WB-1:0] w,
    output wire [     AB-1:0] dot
);
  localparam integer PW = IB + WB + 1;  // a signed product of an IB-bit and a WB-bit element

  // x * w for one element: shifts and adds for narrow weights (LUT logic: a DSP per 8x2 product would
  // run out of MULT18X18D blocks), the * operator (DSP) for wide ones.
  function [PW-1:0] product(input [IB-1:0] xe, input [WB-1:0] we);
    reg [PW-1:0] xv, acc;
    integer b;
    begin
      xv = ISIGNED != 0 ? {{(PW - IB) {xe[IB-1]}}, xe} : {{(PW - IB) {1'b0}}, xe};
      acc = {PW{1'b0}};
      if (WBIPOLAR != 0) acc = we[0] ? xv : -xv;
      else if (WB > 4) acc = $signed(xv) * (WSIGNED != 0 ? $signed({{(PW - WB) {we[WB-1]}}, we}) :
                                                           $signed({{(PW - WB) {1'b0}}, we}));
      else
        for (b = 0; b < WB; b = b + 1)
        if (we[b]) acc = (WSIGNED != 0 && b == WB - 1) ? acc - (xv << b) : acc + (xv << b);
      product = acc;
    end
  endfunction

  generate
    if (BINARY != 0) begin : g_xnor
      reg [SIMD-1:0] agree_q;  // 1 where input and weight bits agree
      always @(posedge clk) agree_q <= ~(x ^ w);
      bnn_popcount #(
          .N(SIMD),
          .OW(AB),
          .STAGE_LEVELS(STAGE_LEVELS)
      ) u_popcount (
          .clk(clk),
          .bits(agree_q),
          .count(dot)
      );
    end else begin : g_mac
      reg [SIMD*PW-1:0] products, products_q;
      integer s;
      always @* for (s = 0; s < SIMD; s = s + 1) products[s*PW+:PW] = product(x[s*IB+:IB], w[s*WB+:WB]);
      always @(posedge clk) products_q <= products;
      bnn_adder_tree #(
          .N(SIMD),
          .IW(PW),
          .SIGNED(1),
          .OW(AB),
          .STAGE_LEVELS(STAGE_LEVELS)
      ) u_tree (
          .clk(clk),
          .in_data(products_q),
          .sum(dot)
      );
    end
  endgenerate
endmodule

`default_nettype wire
