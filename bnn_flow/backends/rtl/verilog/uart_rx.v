// uart_rx.v - UART receiver, 8N1 (one start bit, 8 data bits LSB first, one stop bit, no parity).
//
// Parameters
//   CLKS_PER_BIT  clock cycles per bit (>= 4): round(f_clk / baud). The receiver samples each bit in its
//                 middle, so the two ends' clocks may differ by up to about 4% over a 10-bit character
//                 (the flow refuses a divider whose own error exceeds 2%).
// Ports: clk, rst (synchronous, active high); rx (the line, idle high; asynchronous: synchronized here);
//   out_valid (one-cycle pulse) with out_data (the byte); frame_error (one-cycle pulse instead of
//   out_valid when the stop bit was low: the byte is dropped, the host's request then times out and it
//   resynchronizes, see board_top.v).
// Why: two flip-flops bring the line into the clock domain (metastability); a start bit is accepted only
//   if the line is still low half a bit later, so a glitch does not start a character.
`default_nettype none

module uart_rx #(
    parameter integer CLKS_PER_BIT = 25
) (
    input  wire       clk,
    input  wire       rst,
    input  wire       rx,
    output reg        out_valid,
    output reg  [7:0] out_data,
    output reg        frame_error
);
  localparam integer CW = $clog2(CLKS_PER_BIT + 1);
  // Integer parameters cut to the counter width on purpose (they fit: CW is sized for them).
  /* verilator lint_off WIDTH */
  localparam [CW-1:0] FULL = CLKS_PER_BIT - 1;
  localparam [CW-1:0] HALF = CLKS_PER_BIT / 2 - 1;
  /* verilator lint_on WIDTH */

  localparam [1:0] IDLE = 2'd0, START = 2'd1, DATA = 2'd2, STOP = 2'd3;

  reg [2:0] sync;  // sync[2] is the synchronized line; idle high after reset
  reg [1:0] state;
  reg [CW-1:0] count;  // cycles left in the current (half) bit
  reg [2:0] bit_idx;
  reg [7:0] shift;

  wire line = sync[2];

  always @(posedge clk) begin
    if (rst) sync <= 3'b111;
    else sync <= {sync[1:0], rx};
  end

  always @(posedge clk) begin
    out_valid <= 1'b0;
    frame_error <= 1'b0;
    if (rst) begin
      state <= IDLE;
      count <= 0;
      bit_idx <= 3'd0;
      shift <= 8'd0;
      out_data <= 8'd0;
    end else begin
      case (state)
        IDLE:
        if (!line) begin  // a falling edge: maybe a start bit; look again in its middle
          state <= START;
          count <= HALF;
        end
        START:
        if (count != 0) count <= count - 1'b1;
        else if (line) state <= IDLE;  // a glitch, not a start bit
        else begin
          state <= DATA;
          count <= FULL;
          bit_idx <= 3'd0;
        end
        DATA:
        if (count != 0) count <= count - 1'b1;
        else begin
          shift <= {line, shift[7:1]};  // LSB first
          count <= FULL;
          bit_idx <= bit_idx + 1'b1;
          if (bit_idx == 3'd7) state <= STOP;
        end
        default:  // STOP: sample in the middle of the stop bit, then wait for the line to be idle again
        if (count != 0) count <= count - 1'b1;
        else begin
          state <= IDLE;
          if (line) begin
            out_valid <= 1'b1;
            out_data <= shift;
          end else frame_error <= 1'b1;
        end
      endcase
    end
  end
endmodule

`default_nettype wire
