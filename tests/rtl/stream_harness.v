// stream_harness.v - drives one stream module under test from a $readmemh stimulus file and records every
// output beat with its cycle number ($fwrite), with random stalls on both sides.
//
// Parameters
//   IN_W, OUT_W        beat widths of the module's input and output
//   N_IN, N_OUT        beats to send, beats expected (the harness reports done after N_OUT beats)
//   IN_FILE, OUT_FILE  stimulus ($readmemh, one beat per line) and the record ("<cycle> <hex beat>" lines)
//   SEED               seed of the xorshift32 generator deciding the stalls (the same in every simulator)
//   P_VALID, P_READY   probability x 256 that in_valid is raised in a cycle / out_ready is high in a cycle
// AXI-Stream rules kept: once raised, in_valid and in_data stay until the beat is taken; out_ready may change
// in any cycle. Cycles count from the first cycle after reset.
`timescale 1ns / 1ps
`default_nettype none

module stream_harness #(
    parameter integer IN_W = 8,
    parameter integer OUT_W = 8,
    parameter integer N_IN = 1,
    parameter integer N_OUT = 1,
    parameter IN_FILE = "in.hex",
    parameter OUT_FILE = "out.txt",
    parameter integer SEED = 1,
    parameter integer P_VALID = 256,
    parameter integer P_READY = 256
) (
    input  wire             clk,
    input  wire             rst,
    output reg              in_valid,
    input  wire             in_ready,
    output wire [ IN_W-1:0] in_data,
    input  wire             out_valid,
    output reg              out_ready,
    input  wire [OUT_W-1:0] out_data,
    output wire             done
);
  reg [IN_W-1:0] stimulus[0:N_IN-1];
  integer sent, received, cycle, fd;
  reg [31:0] rng;

  function [31:0] xorshift(input [31:0] x);
    reg [31:0] y;
    begin
      y = x ^ (x << 13);
      y = y ^ (y >> 17);
      xorshift = y ^ (y << 5);
    end
  endfunction

  initial begin
    $readmemh(IN_FILE, stimulus);
    fd = $fopen(OUT_FILE, "w");
  end

  assign in_data = stimulus[sent < N_IN ? sent : 0];
  assign done = received >= N_OUT;

  wire [31:0] r1 = xorshift(rng);
  wire [31:0] r2 = xorshift(r1);
  wire        sent_now = in_valid && in_ready;

  always @(posedge clk) begin
    if (rst) begin
      sent <= 0;
      received <= 0;
      cycle <= 0;
      in_valid <= 1'b0;
      out_ready <= 1'b0;
      rng <= SEED == 0 ? 32'h1234_5678 : SEED;
    end else begin
      cycle <= cycle + 1;
      rng <= r2;
      if (sent_now) sent <= sent + 1;
      // a raised valid stays up until its beat is taken
      if (!in_valid || in_ready)
        in_valid <= (sent + (sent_now ? 1 : 0)) < N_IN && {24'b0, r1[7:0]} < P_VALID;
      out_ready <= {24'b0, r2[15:8]} < P_READY;
      if (out_valid && out_ready) begin
        $fwrite(fd, "%0d %h\n", cycle, out_data);
        received <= received + 1;
      end
    end
  end
endmodule

`default_nettype wire
