// bnn_window.v - sliding-window generator (im2col on a stream), the output order of hls_templates/swg.h.
//
// Parameters
//   H, W, CH        input frame (NHWC), CH channels per pixel
//   KH, KW, SH, SW  kernel and stride
//   PT, PL          padding rows on top / columns on the left (bottom and right follow from OH, OW)
//   OH, OW          output pixels
//   SIMD, EB        elements per beat (CH % SIMD == 0, CG = CH/SIMD beats per pixel) and bits per element
//   PAD             the padding element (an integer; its low EB bits are replicated in every slot): bit 1
//                   or 0 for binary maps, a signed or unsigned integer for integer maps
// Ports: clk, rst; in_valid/in_ready/in_data[SIMD*EB]; out_valid/out_ready/out_data[SIMD*EB].
// In:  per frame H*W*CG beats, pixel by pixel (row, column, channel group), SIMD channels per beat.
// Out: per frame, for each output pixel (oh, ow), KH*KW*CG beats in the patch order (kh, kw, channel
//      group), the group fastest: exactly what a bnn_mvau with this SIMD consumes. Positions outside the
//      frame emit the padding beat.
//
// Schedule: a ring of B rows of W*CG beats, B = max(KH + SH, H + KH - (OH-1)*SH), one block/LUT RAM of
// B*W*CG words (one write, one registered read per cycle). Rows are numbered continuously over frames, so
// the reader runs into the next frame while the last windows of the current one are still emitted. Per
// cycle at most one input beat is taken and at most one output beat is started:
//   * the window of output row oh (top = oh*SH - PT) is emitted once rows up to min(top+KH, H) - 1 are in;
//   * input row rr (counted from the emitter's frame) may be written while rr < top + B, i.e. while it
//     overwrites no row that the current or a later window of this frame needs.
// B = KH + SH lets the reader fetch the next window's new rows during the current one; the second term
// lets it fetch the next frame's first window during this frame's last output row.
// Cycles per frame (no stalls, frames back to back, steady state): max(OH*OW*KH*KW*CG, H*W*CG), i.e. the
// output beats or the input beats, whichever are more. First frame: the first output beat leaves
// (KH - PT)*W*CG + 2 cycles after the first input beat arrives (when KH > PT).
`default_nettype none

module bnn_window #(
    parameter integer H = 4,
    parameter integer W = 4,
    parameter integer CH = 2,
    parameter integer KH = 3,
    parameter integer KW = 3,
    parameter integer SH = 1,
    parameter integer SW = 1,
    parameter integer PT = 1,
    parameter integer PL = 1,
    parameter integer OH = 4,
    parameter integer OW = 4,
    parameter integer SIMD = 1,
    parameter integer EB = 1,
    parameter integer PAD = 1
) (
    input  wire               clk,
    input  wire               rst,
    input  wire               in_valid,
    output wire               in_ready,
    input  wire [SIMD*EB-1:0] in_data,
    output wire               out_valid,
    input  wire               out_ready,
    output wire [SIMD*EB-1:0] out_data
);
  localparam integer CG = CH / SIMD;
  localparam integer ROWBEATS = W * CG;
  localparam integer B_MIN = KH + SH, B_TAIL = H + KH - (OH - 1) * SH;
  localparam integer B = B_TAIL > B_MIN ? B_TAIL : B_MIN;  // rows in the ring
  localparam integer MEMD = B * ROWBEATS;
  localparam integer AW = MEMD > 1 ? $clog2(MEMD) : 1;  // ring addresses
  localparam integer RW = $clog2(2 * (H + B + KH + SH + PT) + 1) + 2;  // signed row numbers
  localparam integer CW0 = $clog2(2 * (W + KW + SW + PL) * CG + 1) + 2;
  localparam integer CW = CW0 > AW ? CW0 : AW;  // signed column / column*CG numbers (>= AW: see emit_addr)
  localparam integer XW = $clog2(H + W + KH + KW + CG + PT + PL + 2) + 1;  // output position counters
  localparam integer BW = SIMD * EB;

  // Integer parameters cut to the register widths on purpose (the widths above are sized to hold them).
  /* verilator lint_off WIDTH */
  localparam [AW:0] MEM_WORDS = MEMD;
  localparam [AW-1:0] ROW_STEP = ROWBEATS, LAST_ADDR = MEMD - 1, LAST_BEAT = ROWBEATS - 1;
  localparam [AW-1:0] STRIDE_ROWS = (SH % B) * ROWBEATS;  // top of the next output row
  localparam [AW-1:0] FRAME_ROWS = (H % B) * ROWBEATS;  // row 0 of the next frame
  localparam [AW-1:0] PAD_ROWS = ((B - PT % B) % B) * ROWBEATS;  // from row 0 back up to row -PT
  localparam signed [RW-1:0] H_S = H, PT_S = PT, SH_S = SH, B_S = B, KH_S = KH, R1 = 1, R0 = 0;
  localparam signed [RW-1:0] FIRST_LAST = KH - 1 - PT < H - 1 ? KH - 1 - PT : H - 1;
  localparam signed [CW-1:0] W_S = W, PL_S = PL, SW_S = SW, PL_CG = PL * CG, SW_CG = SW * CG, C1 = 1;
  localparam [XW-1:0] CG_LAST = CG - 1, KW_LAST = KW - 1, KH_LAST = KH - 1, OW_LAST = OW - 1, OH_LAST = OH - 1;
  localparam [EB-1:0] PAD_ELEM = PAD;
  /* verilator lint_on WIDTH */

  function [AW-1:0] add_mod(input [AW-1:0] a, input [AW-1:0] b);  // (a + b) mod MEMD, for a, b < MEMD
    reg [AW:0] sum;
    begin
      sum = {1'b0, a} + {1'b0, b};
      sum = sum >= MEM_WORDS ? sum - MEM_WORDS : sum;
      add_mod = sum[AW-1:0];
    end
  endfunction

  // ---- reader: input beats into the ring --------------------------------------------------------------
  reg [AW-1:0] rd_addr;  // write address, running over the whole ring
  reg [AW-1:0] rd_beat;  // beat within the row (W*CG <= MEMD)
  reg signed [RW-1:0] rr;  // row being read, counted from row 0 of the emitter's frame (may be < 0 or >= H)
  reg signed [RW-1:0] read_limit;  // top + B
  wire take = in_valid && in_ready;
  wire row_done = take && rd_beat == LAST_BEAT;
  assign in_ready = rr < read_limit;

  // ---- emitter: output positions in the order (oh, ow, kh, kw, g) --------------------------------------
  reg [XW-1:0] g, kw, kh, ow, oh;
  reg signed [RW-1:0] top, row, win_last;  // window top row, current row, last real row of the window
  reg signed [CW-1:0] col, col_base, col_addr, col_base_addr;  // column, its window's first; *CG + g
  reg [AW-1:0] frame_addr, top_addr, row_addr;  // ring addresses of rows 0, top, row of this frame
  wire credit;
  wire emit = rr > win_last && credit;
  wire in_frame = !row[RW-1] && row < H_S && !col[CW-1] && col < W_S;
  wire [AW-1:0] emit_addr = row_addr + col_addr[AW-1:0];  // meaningful when in_frame (then < MEMD)

  wire g_last = g == CG_LAST, kw_last = kw == KW_LAST, kh_last = kh == KH_LAST;
  wire ow_last = ow == OW_LAST, oh_last = oh == OH_LAST;
  wire frame_last = emit && g_last && kw_last && kh_last && ow_last && oh_last;
  // The next output row's top, last row, read limit and ring addresses. They change only when an output row
  // ends, and that is at least OW*KH*KW*CG emitted beats after the last change; so when that is 2 or more,
  // they are computed a cycle ahead into registers: the chain top -> + SH -> + KH-1 -> clamp -> win_last of
  // one cycle limited a fitted CNV to 84 MHz on ECP5 (nextpnr's critical path).
  wire [AW-1:0] frame_addr_c = add_mod(frame_addr, FRAME_ROWS);
  wire [AW-1:0] top_addr_c = oh_last ? add_mod(frame_addr_c, PAD_ROWS) : add_mod(top_addr, STRIDE_ROWS);
  wire signed [RW-1:0] top_c = oh_last ? -PT_S : top + SH_S;
  wire signed [RW-1:0] top_last_c = top_c + KH_S - R1;
  wire signed [RW-1:0] win_last_c = top_last_c < H_S - R1 ? top_last_c : H_S - R1;
  wire signed [RW-1:0] read_limit_c = top_c + B_S;
  wire [AW-1:0] next_frame_addr, next_top_addr;
  wire signed [RW-1:0] next_top, next_win_last, next_read_limit;
  generate
    if (OW * KH * KW * CG > 1) begin : g_ahead
      reg [AW-1:0] frame_addr_q, top_addr_q;
      reg signed [RW-1:0] top_q, win_last_q, read_limit_q;
      always @(posedge clk) begin
        frame_addr_q <= frame_addr_c;
        top_addr_q <= top_addr_c;
        top_q <= top_c;
        win_last_q <= win_last_c;
        read_limit_q <= read_limit_c;
      end
      assign {next_frame_addr, next_top_addr, next_top, next_win_last, next_read_limit} =
          {frame_addr_q, top_addr_q, top_q, win_last_q, read_limit_q};
    end else begin : g_now  // a row ends at every beat: no cycle to compute ahead in
      assign {next_frame_addr, next_top_addr, next_top, next_win_last, next_read_limit} =
          {frame_addr_c, top_addr_c, top_c, win_last_c, read_limit_c};
    end
  endgenerate

  always @(posedge clk) begin
    if (rst) begin
      rd_addr <= 0;
      rd_beat <= 0;
      rr <= 0;
      read_limit <= B_S - PT_S;
      {g, kw, kh, ow, oh} <= 0;
      top <= -PT_S;
      row <= -PT_S;
      win_last <= FIRST_LAST;
      col <= -PL_S;
      col_base <= -PL_S;
      col_addr <= -PL_CG;
      col_base_addr <= -PL_CG;
      frame_addr <= 0;
      top_addr <= PAD_ROWS;
      row_addr <= PAD_ROWS;
    end else begin
      if (take) begin
        rd_addr <= rd_addr == LAST_ADDR ? {AW{1'b0}} : rd_addr + 1'b1;
        rd_beat <= row_done ? {AW{1'b0}} : rd_beat + 1'b1;
      end
      rr <= rr + (row_done ? R1 : R0) - (frame_last ? H_S : R0);
      if (emit) begin
        g <= g_last ? {XW{1'b0}} : g + 1'b1;
        col_addr <= col_addr + C1;  // along a kernel row the beats are consecutive in memory
        if (g_last) begin
          kw  <= kw_last ? {XW{1'b0}} : kw + 1'b1;
          col <= col + C1;
          if (kw_last) begin  // next kernel row, or next window
            kh <= kh_last ? {XW{1'b0}} : kh + 1'b1;
            col <= col_base;
            col_addr <= col_base_addr;
            row <= row + R1;
            row_addr <= add_mod(row_addr, ROW_STEP);
            if (kh_last) begin  // next window: ow + 1, or the next output row
              ow <= ow_last ? {XW{1'b0}} : ow + 1'b1;
              row <= top;
              row_addr <= top_addr;
              col <= ow_last ? -PL_S : col_base + SW_S;
              col_base <= ow_last ? -PL_S : col_base + SW_S;
              col_addr <= ow_last ? -PL_CG : col_base_addr + SW_CG;
              col_base_addr <= ow_last ? -PL_CG : col_base_addr + SW_CG;
              if (ow_last) begin  // next output row, or the next frame
                oh <= oh_last ? {XW{1'b0}} : oh + 1'b1;
                top <= next_top;
                row <= next_top;
                win_last <= next_win_last;
                read_limit <= next_read_limit;
                top_addr <= next_top_addr;
                row_addr <= next_top_addr;
                if (oh_last) frame_addr <= next_frame_addr;
              end
            end
          end
        end
      end
    end
  end

  // ---- the ring: one write (reader), one registered read (emitter) per cycle -------------------------------
  reg [BW-1:0] ring[0:MEMD-1];
  reg [BW-1:0] ring_q;
  reg pad_q, push_q;
  always @(posedge clk) begin
    if (take) ring[rd_addr] <= in_data;
    if (emit && in_frame) ring_q <= ring[emit_addr];
    pad_q  <= !in_frame;
    push_q <= !rst && emit;
  end

  bnn_out_queue #(
      .WIDTH(BW),
      .DEPTH(3)  // the read takes one cycle: reserve at t, push at t+1 (bnn_out_queue: DEPTH >= 1 + 2)
  ) u_out (
      .clk(clk),
      .rst(rst),
      .reserve(emit),
      .credit(credit),
      .push(push_q),
      .push_data(pad_q ? {SIMD{PAD_ELEM}} : ring_q),
      .out_valid(out_valid),
      .out_ready(out_ready),
      .out_data(out_data)
  );
endmodule

`default_nettype wire
