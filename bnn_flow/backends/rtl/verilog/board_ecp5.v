// board_ecp5.v - the ECP5 board top (e.g. ULX3S): the oscillator through an EHXPLLL to the design clock, a
// reset from the PLL lock and a button, and board_top (the UART and the accelerator) on the board's pins.
// Synthesis top of the open flow for family ecp5 (bnn_flow/backends/rtl/flow.py); the pin names are the
// constraint file's (bnn_flow/boards/ecp5/*.lpf).
//
// Parameters
//   CLKI_DIV, CLKFB_DIV, CLKOP_DIV, CLKOP_CPHASE  the EHXPLLL setting for the design clock (the flow computes
//                 them with ecppll: f_out = f_osc * CLKFB_DIV / CLKI_DIV, VCO = f_out * CLKOP_DIV)
//   BTN_ACTIVE_LOW  1 when the reset button reads 0 while pressed
//   everything else: board_top's, forwarded unchanged
// Ports: clk_osc (the oscillator), btn_reset, uart_rx (from the USB-UART), uart_tx (to it), led[7:0].
`default_nettype none

module board_ecp5 #(
    parameter integer CLKI_DIV = 1,
    parameter integer CLKFB_DIV = 3,
    parameter integer CLKOP_DIV = 8,
    parameter integer CLKOP_CPHASE = 4,
    parameter integer BTN_ACTIVE_LOW = 0,
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
    input  wire       clk_osc,
    input  wire       btn_reset,
    input  wire       uart_rx,
    output wire       uart_tx,
    output wire [7:0] led
);
  wire clk, locked;
  wire btn_pressed = BTN_ACTIVE_LOW != 0 ? !btn_reset : btn_reset;

  // the attributes are the loop filter settings ecppll writes for every EHXPLLL it configures
  (* ICP_CURRENT = "12" *) (* LPF_RESISTOR = "8" *) (* MFG_ENABLE_FILTEROPAMP = "1" *) (* MFG_GMCREF_SEL = "2" *)
  EHXPLLL #(
      .PLLRST_ENA("DISABLED"),
      .INTFB_WAKE("DISABLED"),
      .STDBY_ENABLE("DISABLED"),
      .DPHASE_SOURCE("DISABLED"),
      .OUTDIVIDER_MUXA("DIVA"),
      .OUTDIVIDER_MUXB("DIVB"),
      .OUTDIVIDER_MUXC("DIVC"),
      .OUTDIVIDER_MUXD("DIVD"),
      .CLKI_DIV(CLKI_DIV),
      .CLKOP_ENABLE("ENABLED"),
      .CLKOP_DIV(CLKOP_DIV),
      .CLKOP_CPHASE(CLKOP_CPHASE),
      .CLKOP_FPHASE(0),
      .FEEDBK_PATH("CLKOP"),
      .CLKFB_DIV(CLKFB_DIV)
  ) u_pll (
      .RST(1'b0),
      .STDBY(1'b0),
      .CLKI(clk_osc),
      .CLKOP(clk),
      .CLKFB(clk),
      .PHASESEL0(1'b0),
      .PHASESEL1(1'b0),
      .PHASEDIR(1'b1),
      .PHASESTEP(1'b1),
      .PHASELOADREG(1'b1),
      .PLLWAKESYNC(1'b0),
      .ENCLKOP(1'b0),
      .LOCK(locked)
  );

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
