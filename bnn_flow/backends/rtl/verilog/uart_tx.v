// uart_tx.v - UART transmitter, 8N1 (one start bit, 8 data bits LSB first, one stop bit, no parity).
//
// Parameters
//   CLKS_PER_BIT  clock cycles per bit (>= 2): round(f_clk / baud).
// Ports: clk, rst (synchronous, active high); in_valid/in_ready/in_data[8] (a byte moves when valid && ready;
//   in_ready is registered state, high while the transmitter is idle); tx (the line, registered, idle high).
// Cycles: 10 * CLKS_PER_BIT per byte, plus one cycle between bytes (the handshake), so a back-to-back
//   stream runs at baud * 10 / (10 + 1/CLKS_PER_BIT): well inside any receiver's tolerance.
`default_nettype none

module uart_tx #(
    parameter integer CLKS_PER_BIT = 25
) (
    input  wire       clk,
    input  wire       rst,
    input  wire       in_valid,
    output wire       in_ready,
    input  wire [7:0] in_data,
    output reg        tx
);
  localparam integer CW = $clog2(CLKS_PER_BIT + 1);
  /* verilator lint_off WIDTH */
  localparam [CW-1:0] FULL = CLKS_PER_BIT - 1;  // cut to the counter width on purpose (it fits)
  /* verilator lint_on WIDTH */

  reg busy;
  reg [CW-1:0] count;  // cycles left in the current bit
  reg [3:0] bits_left;  // bits of the character still to start (start, 8 data, stop = 10)
  reg [8:0] shift;  // the bits still to send after the current one, LSB first, the stop bit last

  assign in_ready = !busy;

  always @(posedge clk) begin
    if (rst) begin
      busy <= 1'b0;
      tx <= 1'b1;
      count <= 0;
      bits_left <= 4'd0;
      shift <= 9'h1ff;
    end else if (!busy) begin
      if (in_valid) begin
        busy <= 1'b1;
        tx <= 1'b0;  // start bit
        count <= FULL;
        bits_left <= 4'd9;
        shift <= {1'b1, in_data};
      end
    end else if (count != 0) count <= count - 1'b1;
    else if (bits_left == 0) begin
      busy <= 1'b0;  // the stop bit has lasted a whole bit time
    end else begin
      tx <= shift[0];
      shift <= {1'b1, shift[8:1]};
      count <= FULL;
      bits_left <= bits_left - 1'b1;
    end
  end
endmodule

`default_nettype wire
