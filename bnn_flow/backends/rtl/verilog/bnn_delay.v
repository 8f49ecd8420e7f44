// bnn_delay.v - a shift register: `q` is `d` delayed by CYCLES clock cycles (CYCLES = 0: a wire).
// Used for the side-band (valid, first/last, fold index) that travels beside a fixed-latency datapath.
// Parameters: WIDTH, CYCLES. Ports: clk, rst (clears every stage: a reset drops results in flight), d, q.
`default_nettype none

module bnn_delay #(
    parameter integer WIDTH = 1,
    parameter integer CYCLES = 1
) (
    input  wire             clk,
    input  wire             rst,
    input  wire [WIDTH-1:0] d,
    output wire [WIDTH-1:0] q
);
  generate
    if (CYCLES == 0) begin : g_wire
      assign q = d;
      /* verilator lint_off UNUSED */
      wire unused = clk ^ rst;  // nothing to clock
      /* verilator lint_on UNUSED */
    end else if (CYCLES == 1) begin : g_one
      reg [WIDTH-1:0] stage;
      always @(posedge clk) stage <= rst ? {WIDTH{1'b0}} : d;
      assign q = stage;
    end else begin : g_shift
      reg [WIDTH*CYCLES-1:0] stages;  // stage k at bits [k*WIDTH +: WIDTH], stage 0 the newest
      always @(posedge clk) begin
        if (rst) stages <= {WIDTH * CYCLES{1'b0}};
        else stages <= {stages[WIDTH*(CYCLES-1)-1:0], d};
      end
      assign q = stages[WIDTH*CYCLES-1-:WIDTH];
    end
  endgenerate
endmodule

`default_nettype wire
