// bnn_maxpool.v - max-pool on a stream, no padding (hls_templates/maxpool.h). On bits (EB = 1) max is OR
// (the max of bipolar values, DESIGN.md section 1).
//
// Parameters
//   H, W, CH        input frame (NHWC)
//   KH, KW, SH, SW  window and stride; OH = (H-KH)/SH + 1, OW = (W-KW)/SW + 1 output pixels
//   OH, OW          output pixels (given, as the HLS configuration does)
//   PE, EB, SIGNED  channels per beat (CH % PE == 0, CG = CH/PE beats per pixel), element bits, signedness
// Ports: clk, rst; in_valid/in_ready/in_data[PE*EB]; out_valid/out_ready/out_data[PE*EB].
// In:  H*W*CG beats per frame, (row, column, channel group) order. Out: OH*OW*CG beats, same format.
// Cycles per frame (no stalls, frames back to back): H*W*CG exactly, one input beat per cycle; an output
//   beat leaves 3 cycles after the input beat that completes its window.
//
// How (two separable passes, so no input beat is read twice and the pool never waits for rows):
//   1. horizontal: KW banks of CG beats hold the latest column of each residue c mod KW of the current row.
//      The beat of column c = ow*SW + KW - 1 (the last of window ow) is max-ed with the other KW-1 banks
//      (columns c-KW+1 .. c-1): the row's horizontal maximum h(r, ow, g).
//   2. vertical: KH banks of OW*CG beats hold h of the latest row of each residue r mod KH. In row
//      r = oh*SH + KH - 1, h is max-ed with the other KH-1 banks (rows r-KH+1 .. r-1): the output beat.
// Every bank has one write and one registered read per cycle (block RAM or LUT RAM as yosys sees fit);
// a bank is read at an address written at least one beat earlier, so no read-during-write case arises.
// An input beat that completes a window is taken only against a free output slot (bnn_out_queue).
`default_nettype none

module bnn_maxpool #(
    parameter integer H = 4,
    parameter integer W = 4,
    parameter integer CH = 2,
    parameter integer KH = 2,
    parameter integer KW = 2,
    parameter integer SH = 2,
    parameter integer SW = 2,
    parameter integer OH = 2,
    parameter integer OW = 2,
    parameter integer PE = 1,
    parameter integer EB = 1,
    parameter integer SIGNED = 0
) (
    input  wire             clk,
    input  wire             rst,
    input  wire             in_valid,
    output wire             in_ready,
    input  wire [PE*EB-1:0] in_data,
    output wire             out_valid,
    input  wire             out_ready,
    output wire [PE*EB-1:0] out_data
);
  localparam integer CG = CH / PE;
  localparam integer BW = PE * EB;
  localparam integer XW = $clog2(H + W + CG + KH + KW + SH + SW + OW * CG + 2) + 1;  // every counter
  localparam integer GW = CG > 1 ? $clog2(CG) : 1;  // horizontal bank address
  localparam integer VW = OW * CG > 1 ? $clog2(OW * CG) : 1;  // vertical bank address

  /* verilator lint_off WIDTH */  // integer parameters cut to the counter widths on purpose (they fit)
  localparam [XW-1:0] CG_LAST = CG - 1, W_LAST = W - 1, H_LAST = H - 1, KW_LAST = KW - 1, KH_LAST = KH - 1;
  localparam [XW-1:0] X_OW = OW, X_OH = OH, X_SW = SW, X_SH = SH;
  /* verilator lint_on WIDTH */

  // Element-wise max of two beats: OR for bits, else a signed or unsigned compare per element.
  function [BW-1:0] max_beat(input [BW-1:0] a, input [BW-1:0] b);
    integer e;
    reg [EB-1:0] x, y;
    begin
      for (e = 0; e < PE; e = e + 1) begin
        x = a[e*EB+:EB];
        y = b[e*EB+:EB];
        if (EB == 1) max_beat[e*EB+:EB] = x | y;
        else if (SIGNED != 0) max_beat[e*EB+:EB] = $signed(x) >= $signed(y) ? x : y;
        else max_beat[e*EB+:EB] = x >= y ? x : y;
      end
    end
  endfunction

  // ---- input position: (r, c, g), the residues and the next window ends --------------------------------------
  reg [XW-1:0] g, c, r, cmod, rmod, ow_h, oh_v, h_end, v_end;
  reg [VW-1:0] vaddr;  // ow*CG + g of the next horizontal result in this row
  wire credit;
  wire is_h = c == h_end && ow_h != X_OW;  // this column ends horizontal window ow_h
  wire is_v = r == v_end && oh_v != X_OH;  // this row ends vertical window oh_v
  assign in_ready = !(is_h && is_v) || credit;
  wire take = in_valid && in_ready;
  wire g_last = g == CG_LAST, c_last = c == W_LAST, r_last = r == H_LAST;

  always @(posedge clk) begin
    if (rst) begin
      {g, c, r, cmod, rmod, ow_h, oh_v} <= 0;
      h_end <= KW_LAST;
      v_end <= KH_LAST;
      vaddr <= 0;
    end else if (take) begin
      g <= g_last ? {XW{1'b0}} : g + 1'b1;
      if (is_h) vaddr <= vaddr + 1'b1;
      if (g_last) begin
        c <= c_last ? {XW{1'b0}} : c + 1'b1;
        cmod <= c_last || cmod == KW_LAST ? {XW{1'b0}} : cmod + 1'b1;
        if (is_h) begin
          ow_h  <= ow_h + 1'b1;
          h_end <= h_end + X_SW;
        end
        if (c_last) begin  // end of row
          ow_h <= 0;
          h_end <= KW_LAST;
          vaddr <= 0;
          r <= r_last ? {XW{1'b0}} : r + 1'b1;
          rmod <= r_last || rmod == KH_LAST ? {XW{1'b0}} : rmod + 1'b1;
          if (is_v) begin
            oh_v  <= oh_v + 1'b1;
            v_end <= v_end + X_SH;
          end
          if (r_last) begin  // end of frame
            oh_v  <= 0;
            v_end <= KH_LAST;
          end
        end
      end
    end
  end

  // ---- pass 1 (cycle 0 -> 1): horizontal banks ------------------------------------------------------------
  wire [KW*BW-1:0] hq;  // bank k's beat at address g, registered
  genvar k;
  generate
    for (k = 0; k < KW; k = k + 1) begin : g_hbank
      if (KW > 1) begin : g_mem
        reg [BW-1:0] bank[0:CG-1];
        reg [BW-1:0] q;
        always @(posedge clk) begin
          if (take && cmod == k) bank[g[GW-1:0]] <= in_data;
          if (take && is_h) q <= bank[g[GW-1:0]];
        end
        assign hq[k*BW+:BW] = q;
      end else begin : g_none  // KW = 1: the column is its own horizontal maximum
        assign hq[k*BW+:BW] = {BW{1'b0}};
      end
    end
  endgenerate

  reg a_valid, a_is_v;
  reg [BW-1:0] a_x;
  reg [XW-1:0] a_cmod, a_rmod;
  reg [VW-1:0] a_vaddr;
  always @(posedge clk) begin
    a_valid <= !rst && take && is_h;
    a_is_v <= is_v;
    a_x <= in_data;
    a_cmod <= cmod;
    a_rmod <= rmod;
    a_vaddr <= vaddr;
  end

  reg [BW-1:0] h;  // max over the window's KW columns of row r
  integer j;
  always @* begin
    h = a_x;
    for (j = 0; j < KW; j = j + 1) if (j[XW-1:0] != a_cmod) h = max_beat(h, hq[j*BW+:BW]);
  end

  // ---- pass 2 (cycle 1 -> 2): vertical banks ----------------------------------------------------------------
  wire [KH*BW-1:0] vq;
  generate
    for (k = 0; k < KH; k = k + 1) begin : g_vbank
      if (KH > 1) begin : g_mem
        reg [BW-1:0] bank[0:OW*CG-1];
        reg [BW-1:0] q;
        always @(posedge clk) begin
          if (a_valid && a_rmod == k) bank[a_vaddr] <= h;
          if (a_valid && a_is_v) q <= bank[a_vaddr];
        end
        assign vq[k*BW+:BW] = q;
      end else begin : g_none  // KH = 1: the horizontal maximum is the output
        assign vq[k*BW+:BW] = {BW{1'b0}};
        /* verilator lint_off UNUSED */
        wire [VW-1:0] unused_vaddr = a_vaddr;  // no vertical banks to address
        /* verilator lint_on UNUSED */
      end
    end
  endgenerate

  reg b_valid;
  reg [BW-1:0] b_h;
  reg [XW-1:0] b_rmod;
  always @(posedge clk) begin
    b_valid <= !rst && a_valid && a_is_v;
    b_h <= h;
    b_rmod <= a_rmod;
  end

  reg [BW-1:0] pooled;
  integer i;
  always @* begin
    pooled = b_h;
    for (i = 0; i < KH; i = i + 1) if (i[XW-1:0] != b_rmod) pooled = max_beat(pooled, vq[i*BW+:BW]);
  end

  bnn_out_queue #(
      .WIDTH(BW),
      .DEPTH(4)  // reserve at cycle 0, push at cycle 2 (bnn_out_queue: DEPTH >= 2 + 2)
  ) u_out (
      .clk(clk),
      .rst(rst),
      .reserve(take && is_h && is_v),
      .credit(credit),
      .push(b_valid),
      .push_data(pooled),
      .out_valid(out_valid),
      .out_ready(out_ready),
      .out_data(out_data)
  );
endmodule

`default_nettype wire
