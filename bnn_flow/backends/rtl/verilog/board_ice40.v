// board_ice40.v - the iCE40 board top (e.g. iCEBreaker): the oscillator straight to the design clock, or
// through an SB_PLL40_PAD, a reset from the PLL lock and a button, and board_top (the UART and the
// accelerator) on the board's pins. Synthesis top of the open flow for family ice40
// (bnn_flow/backends/rtl/flow.py); the pin names are the constraint file's (bnn_flow/boards/ice40/*.pcf).
//
// Parameters
//   USE_PLL       0: the design runs on the oscillator itself; 1: on the PLL's output
//   DIVR, DIVF, DIVQ, FILTER_RANGE  the SB_PLL40_PAD setting (the flow computes them with icepll:
//                 f_out = f_osc * (DIVF + 1) / ((DIVR + 1) * 2^DIVQ), FEEDBACK_PATH "SIMPLE")
//   BTN_ACTIVE_LOW  1 when the reset button reads 0 while pressed
//   everything else: board_top's, forwarded unchanged
// Ports: clk_osc (the oscillator; with USE_PLL it must be the PLL's pad), btn_reset, uart_rx (from the
//   USB-UART), uart_tx (to it), led_red, led_green (board_top's error and heartbeat LEDs, active low).
`default_nettype none

module board_ice40 #(
    parameter integer USE_PLL = 0,
    parameter integer DIVR = 0,
    parameter integer DIVF = 63,
    parameter integer DIVQ = 5,
    parameter integer FILTER_RANGE = 1,
    parameter integer BTN_ACTIVE_LOW = 1,
    parameter integer CLKS_PER_BIT = 25,
    parameter integer IN_W = 8,
    parameter integer IN_EPB = 1,
    parameter integer IN_EB = 8,
    parameter integer IN_SIGNED = 0,
    parameter integer IN_BEATS = 4,
    parameter integer OUT_W = 32,
    parameter integer OUT_EPB = 1,
    parameter integer OUT_EB = 32,
    parameter integer OUT_SIGNED = 1,
    parameter integer OUT_BEATS = 2,
    parameter integer IN_FIFO_DEPTH = 4,
    parameter integer IN_FIFO_BLOCK = 0,
    parameter integer OUT_FIFO_DEPTH = 2,
    parameter integer DESIGN_ID = 0,
    parameter integer CLK_HZ = 75000000,
    parameter integer TIMEOUT_CLKS = 4194304
) (
    input  wire clk_osc,
    input  wire btn_reset,
    input  wire uart_rx,
    output wire uart_tx,
    output wire led_red,
    output wire led_green
);
  wire clk, locked;
  wire btn_pressed = BTN_ACTIVE_LOW != 0 ? !btn_reset : btn_reset;
  localparam [3:0] R = DIVR;
  localparam [6:0] F = DIVF;
  localparam [2:0] Q = DIVQ;
  localparam [2:0] FR = FILTER_RANGE;

  generate
    if (USE_PLL != 0) begin : g_pll
      SB_PLL40_PAD #(
          .FEEDBACK_PATH("SIMPLE"),
          .DIVR(R),
          .DIVF(F),
          .DIVQ(Q),
          .FILTER_RANGE(FR)
      ) u_pll (
          .PACKAGEPIN(clk_osc),
          .PLLOUTGLOBAL(clk),
          .LOCK(locked),
          .RESETB(1'b1),
          .BYPASS(1'b0)
      );
    end else begin : g_osc
      assign clk = clk_osc;
      assign locked = 1'b1;
    end
  endgenerate

  // Reset: held while the PLL is not locked or the button is pressed, and for 15 cycles after (the
  // counter starts at 0 on configuration: flip-flop init values are part of the bitstream).
  reg [1:0] btn_sync = 2'b00;  // the button is asynchronous: two flip-flops
  reg [3:0] por = 4'd0;
  always @(posedge clk) begin
    btn_sync <= {btn_sync[0], btn_pressed};
    if (!locked || btn_sync[1]) por <= 4'd0;
    else if (por != 4'd15) por <= por + 1'b1;
  end
  wire rst = por != 4'd15;

  wire [7:0] led;
  assign led_red = !led[4];
  assign led_green = !led[7];

  board_top #(
      .CLKS_PER_BIT(CLKS_PER_BIT),
      .IN_W(IN_W),
      .IN_EPB(IN_EPB),
      .IN_EB(IN_EB),
      .IN_SIGNED(IN_SIGNED),
      .IN_BEATS(IN_BEATS),
      .OUT_W(OUT_W),
      .OUT_EPB(OUT_EPB),
      .OUT_EB(OUT_EB),
      .OUT_SIGNED(OUT_SIGNED),
      .OUT_BEATS(OUT_BEATS),
      .IN_FIFO_DEPTH(IN_FIFO_DEPTH),
      .IN_FIFO_BLOCK(IN_FIFO_BLOCK),
      .OUT_FIFO_DEPTH(OUT_FIFO_DEPTH),
      .DESIGN_ID(DESIGN_ID),
      .CLK_HZ(CLK_HZ),
      .TIMEOUT_CLKS(TIMEOUT_CLKS)
  ) u_top (
      .clk(clk),
      .rst(rst),
      .uart_rx(uart_rx),
      .uart_tx(uart_tx),
      .led(led)
  );
endmodule

`default_nettype wire
