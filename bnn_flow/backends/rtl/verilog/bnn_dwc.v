// bnn_dwc.v - stream width converter: beats of IN_E elements -> beats of OUT_E elements, EB bits each,
// element order unchanged (hls_templates/dwc.h).
//
// Parameters
//   IN_E, OUT_E  elements per input / output beat
//   EB           bits per element; element i of a beat at bits [i*EB +: EB], LSB first (bnn_util.h)
//   N            elements per frame, a multiple of both IN_E and OUT_E. A frame then ends with the buffer
//                empty, so frames need no separate handling: N is checked, not used by the logic.
// Ports: clk, rst; in_valid/in_ready/in_data[IN_E*EB]; out_valid/out_ready/out_data[OUT_E*EB].
// Cycles per frame (no stalls, frames back to back): max(N/IN_E, N/OUT_E); latency 1 cycle
// (IN_E == OUT_E: a plain wire, 0 cycles).
//
// How: a shift buffer holds `count` pending units of G = gcd(IN_E, OUT_E) elements, the oldest at bit 0. An
// output beat is offered while count >= OUT_E/G; an input beat is taken while count + IN_E/G <= CAP, both
// from registered state only. CAP = max + 2*min - 1 (of IN_E/G and OUT_E/G) is the smallest capacity for
// which the busier side never waits: reading is the bottleneck (IN_E < OUT_E): after a cycle without an
// output count < OUT + IN, so a read fits in every cycle; writing is (IN_E > OUT_E): a read comes as soon as
// count <= CAP - IN, leaving count - OUT >= OUT after the next output, so an output beat is ready every cycle.
`default_nettype none

module bnn_dwc #(
    parameter integer IN_E = 1,
    parameter integer OUT_E = 1,
    parameter integer EB = 1,
    parameter integer N = 1
) (
    input  wire                clk,
    input  wire                rst,
    input  wire                in_valid,
    output wire                in_ready,
    input  wire [ IN_E*EB-1:0] in_data,
    output wire                out_valid,
    input  wire                out_ready,
    output wire [OUT_E*EB-1:0] out_data
);
  function integer gcd(input integer a, input integer b);
    integer x, y, r;
    begin
      x = a;
      y = b;
      while (y != 0) begin
        r = x % y;
        x = y;
        y = r;
      end
      gcd = x;
    end
  endfunction

`ifndef SYNTHESIS
  initial begin
    if (N % IN_E != 0 || N % OUT_E != 0) begin
      $display("ERROR bnn_dwc %m: N=%0d is not a multiple of IN_E=%0d and OUT_E=%0d", N, IN_E, OUT_E);
      $finish;
    end
  end
`endif

  generate
    if (IN_E == OUT_E) begin : g_wire
      // Same width: nothing to regroup. (clk and rst are unused here.)
      assign out_valid = in_valid;
      assign in_ready  = out_ready;
      assign out_data  = in_data;
      /* verilator lint_off UNUSED */
      wire unused_clock = clk ^ rst;
      /* verilator lint_on UNUSED */
    end else begin : g_convert
      // The converter works on units of G = gcd(IN_E, OUT_E) elements: every count and shift is a multiple
      // of G, so the buffer shifts by whole units (fewer multiplexer levels than element by element).
      localparam integer G = gcd(IN_E, OUT_E);
      localparam integer IN_U = IN_E / G, OUT_U = OUT_E / G, UB = G * EB;  // units per beat, bits per unit
      localparam integer MAXU = IN_U > OUT_U ? IN_U : OUT_U;
      localparam integer MINU = IN_U > OUT_U ? OUT_U : IN_U;
      localparam integer CAP = MAXU + 2 * MINU - 1;  // units the buffer holds
      localparam integer CW = $clog2(CAP + 1);
      /* verilator lint_off WIDTH */  // integer parameters cut to the counter width on purpose (they fit)
      localparam [CW-1:0] IN_STEP = IN_U;
      localparam [CW-1:0] OUT_STEP = OUT_U;
      localparam [CW-1:0] ROOM = CAP - IN_U;  // take an input beat while count <= ROOM
      /* verilator lint_on WIDTH */

      reg  [CAP*UB-1:0] buffer;  // count units at the bottom, zeros above them
      reg  [    CW-1:0] count;

      wire              take = in_valid && in_ready;
      wire              give = out_valid && out_ready;
      wire [    CW-1:0] kept = give ? count - OUT_STEP : count;  // units left after this cycle's output
      wire [CAP*UB-1:0] shifted = give ? buffer >> (OUT_E * EB) : buffer;
      // The new beat goes right above the kept units; it fits, so no bits fall off the top.
      wire [CAP*UB-1:0] placed = {{(CAP - IN_U) * UB{1'b0}}, in_data} << (kept * UB);

      assign in_ready  = count <= ROOM;
      assign out_valid = count >= OUT_STEP;
      assign out_data  = buffer[OUT_E*EB-1:0];

      always @(posedge clk) begin
        if (rst) begin
          buffer <= {CAP * UB{1'b0}};
          count  <= {CW{1'b0}};
        end else begin
          buffer <= take ? (shifted | placed) : shifted;
          count  <= kept + (take ? IN_STEP : {CW{1'b0}});
        end
      end
    end
  endgenerate
endmodule

`default_nettype wire
