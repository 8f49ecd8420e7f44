// board_top.v - the accelerator (bnn_top) behind a UART: the host sends one image's input integers, the
// board returns that image's accumulators. Family-independent: the clock, reset and pins come from the
// family's wrapper (board_ecp5.v, board_ice40.v); simulated as it is (tests/rtl/test_rtl_uart*.py).
//
// Protocol (8N1; every multi-byte number little-endian; docs/open-flow.md and
// bnn_flow/backends/rtl/board_protocol.py, the host side, say the same):
//   'I' (0x49)  -> 24 bytes: "BNNF", version (1), flags (bit 0: input elements signed; bit 1: the whole
//                  frame is buffered before the core starts, so the cycle count below is the core's own),
//                  input element bits, input bytes per element, input elements per frame (u32), output
//                  words per frame (u32), design id (u32: the flow's hash of the accelerator), clock (u32 Hz).
//   'F' (0x46) + IN_ELEMS * IN_BYTES bytes (element i in IN_BYTES bytes, little-endian; the board keeps the
//                  low IN_EB bits, so the host sign-extends signed elements)
//               -> status 'K' (0x4B) + OUT_WORDS int32 (the accumulators, in class order, sign-extended)
//                  + u32 core cycles (first input beat into bnn_top .. last output beat out of it);
//                  or status 'E' (0x45) alone: an input beat found the input buffer full (a core slower
//                  than the UART with a frame larger than the buffer); the core is reset.
//   any other byte -> '?' (0x3F).
//   A frame whose bytes stop arriving for TIMEOUT_CLKS cycles is dropped (the core is reset, no reply):
//   a host that timed out waits that long, then starts again with 'I'.
// One request at a time: the host waits for the whole reply before it sends the next command.
//
// Parameters
//   CLKS_PER_BIT   clock cycles per UART bit
//   IN_W, IN_EPB, IN_EB, IN_SIGNED, IN_BEATS    bnn_top's input stream (rtl_project.json "in")
//   OUT_W, OUT_EPB, OUT_EB, OUT_SIGNED, OUT_BEATS  its output stream ("out"); OUT_EB <= 32
//   IN_FIFO_DEPTH  input buffer (beats): >= IN_BEATS buffers the whole frame first (store and forward)
//   IN_FIFO_BLOCK  1: the input buffer in block RAM whatever its depth (iCE40 has no LUT RAM: a LUT-variant
//                  buffer there is flip-flops), 0: bnn_fifo decides by depth
//   OUT_FIFO_DEPTH output buffer (beats, >= 2; >= OUT_BEATS lets the core finish while the UART sends)
//   DESIGN_ID, CLK_HZ  reported by 'I'
//   TIMEOUT_CLKS   idle cycles after which a partial frame is dropped, or a core that produced no output
//                  is given up (reset; the reply stops short and the host reports it)
// Ports: clk, rst (synchronous, active high), uart_rx, uart_tx, led[7:0] (0 idle, 1 receiving, 2 core busy,
//   3 sending, 4 an error since the last good frame, 5 frame error on the line, 7 heartbeat).
`default_nettype none

module board_top #(
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
    input  wire       clk,
    input  wire       rst,
    input  wire       uart_rx,
    output wire       uart_tx,
    output wire [7:0] led
);
  localparam integer IN_BYTES = (IN_EB + 7) / 8;
  localparam integer IN_BITS = IN_EPB * IN_EB;  // used bits of an input beat
  localparam integer OUT_BITS = OUT_EPB * OUT_EB;
  localparam integer SAF = IN_FIFO_DEPTH >= IN_BEATS ? 1 : 0;  // store and forward
  localparam [31:0] IN_ELEMS = IN_BEATS * IN_EPB;
  localparam integer FRAME_BYTES = IN_BEATS * IN_EPB * IN_BYTES;
  localparam [31:0] OUT_WORDS = OUT_BEATS * OUT_EPB;
  // counters as wide as their range (the board top is counted against the iCE40's 5,280 cells)
  localparam integer BW = $clog2(IN_BYTES + 1), EW = $clog2(IN_EPB + 1), FW = $clog2(FRAME_BYTES + 1);
  localparam integer OEW = $clog2(OUT_EPB + 1), OBW = $clog2(OUT_BEATS + 1), TW = $clog2(TIMEOUT_CLKS + 1);
  /* verilator lint_off WIDTH */
  localparam [BW-1:0] LAST_BYTE = IN_BYTES - 1;  // integer parameters cut to the counter widths (they fit)
  localparam [EW-1:0] LAST_ELEM = IN_EPB - 1;
  localparam [FW-1:0] LAST_FRAME_BYTE = FRAME_BYTES - 1;
  localparam [OEW-1:0] LAST_OELEM = OUT_EPB - 1;
  localparam [OBW-1:0] LAST_OBEAT = OUT_BEATS - 1;
  localparam [TW-1:0] TIMEOUT = TIMEOUT_CLKS;
  /* verilator lint_on WIDTH */
  localparam [7:0] FLAGS = {6'd0, SAF[0], IN_SIGNED[0]};
  localparam [7:0] EB8 = IN_EB[7:0];
  localparam [7:0] BYTES8 = IN_BYTES[7:0];
  localparam [31:0] ID32 = DESIGN_ID;
  localparam [31:0] HZ32 = CLK_HZ;
  localparam [191:0] INFO = {HZ32, ID32, OUT_WORDS, IN_ELEMS, BYTES8, EB8, FLAGS, 8'd1, "FNNB"};  // byte 0 'B'
  localparam [7:0] CMD_INFO = 8'h49, CMD_FRAME = 8'h46, ST_OK = 8'h4b, ST_ERR = 8'h45, NAK = 8'h3f;
  localparam [2:0] S_IDLE = 3'd0, S_INFO = 3'd1, S_RECV = 3'd2, S_STATUS = 3'd3, S_OUT = 3'd4, S_CYC = 3'd5,
      S_NAK = 3'd6;

  // ---- UART ---------------------------------------------------------------------------------------------
  wire rx_valid, rx_ferr;
  wire [7:0] rx_data;
  reg tx_valid;
  reg [7:0] tx_data;
  wire tx_ready;
  uart_rx #(.CLKS_PER_BIT(CLKS_PER_BIT)) u_rx (.clk(clk), .rst(rst), .rx(uart_rx), .out_valid(rx_valid),
                                               .out_data(rx_data), .frame_error(rx_ferr));
  uart_tx #(.CLKS_PER_BIT(CLKS_PER_BIT)) u_tx (.clk(clk), .rst(rst), .in_valid(tx_valid), .in_ready(tx_ready),
                                               .in_data(tx_data), .tx(uart_tx));
  wire tx_go = tx_valid && tx_ready;

  reg [2:0] state;
  reg [4:0] idx;  // byte of the info block / of the cycle count
  reg abort;  // resets the core and both buffers (one cycle)
  // The core and the buffers reset one cycle after rst / abort, from a register: the reset then reaches a large
  // core as one routed net instead of through the control logic (the random-weight TFC's critical path ran from
  // the power-on reset through the UART control LUTs into the input buffer's reset: 60.9 MHz on the ULX3S).
  reg core_rst;
  always @(posedge clk) core_rst <= rst || abort;

  // ---- bytes -> elements -> beats -> input buffer ------------------------------------------------------
  reg [IN_BYTES*8-1:0] ebytes;
  reg [IN_BITS-1:0] ebeat;
  reg [BW-1:0] byte_in_elem;
  reg [EW-1:0] elem_in_beat;
  reg [FW-1:0] frame_byte;
  wire [IN_BYTES*8-1:0] ebytes_next;
  wire [IN_BITS-1:0] ebeat_next;
  generate
    if (IN_BYTES == 1) begin : g_b1
      assign ebytes_next = rx_data;
    end else begin : g_bn
      assign ebytes_next = {rx_data, ebytes[IN_BYTES*8-1:8]};  // little-endian: the first byte ends lowest
    end
    if (IN_EPB == 1) begin : g_e1
      assign ebeat_next = ebytes_next[IN_EB-1:0];
    end else begin : g_en
      assign ebeat_next = {ebytes_next[IN_EB-1:0], ebeat[IN_BITS-1:IN_EB]};  // element 0 ends lowest
    end
  endgenerate
  wire rx_frame = state == S_RECV && rx_valid;
  wire elem_done = rx_frame && byte_in_elem == LAST_BYTE;
  wire beat_done = elem_done && elem_in_beat == LAST_ELEM;
  wire [IN_W-1:0] push_data;
  generate
    if (IN_W > IN_BITS) begin : g_pad
      assign push_data = {{(IN_W - IN_BITS) {1'b0}}, ebeat_next};
    end else begin : g_nopad
      assign push_data = ebeat_next;
    end
  endgenerate

  wire fifo_in_ready, fifo_out_valid, slice_in_ready;
  wire [IN_W-1:0] fifo_out_data;
  reg go;  // the buffer may feed the core
  bnn_fifo #(.WIDTH(IN_W), .DEPTH(IN_FIFO_DEPTH < 2 ? 2 : IN_FIFO_DEPTH), .BLOCK_DEPTH(IN_FIFO_BLOCK != 0 ? 2 : 512))
  u_in_fifo (
      .clk(clk), .rst(core_rst), .in_valid(beat_done), .in_ready(fifo_in_ready), .in_data(push_data),
      .out_valid(fifo_out_valid), .out_ready(slice_in_ready && go), .out_data(fifo_out_data));

  // A two-beat FIFO right before the core (its flags are registers): the core's in_ready, combinational from
  // its first layer's state, ends there instead of running across the chip into the buffer's read logic (the
  // random-weight TFC's next critical path). Full throughput, so the cycles per frame do not change.
  wire core_in_valid, core_in_ready;
  wire [IN_W-1:0] core_in_data;
  bnn_fifo #(.WIDTH(IN_W), .DEPTH(2)) u_in_slice (
      .clk(clk), .rst(core_rst), .in_valid(fifo_out_valid && go), .in_ready(slice_in_ready),
      .in_data(fifo_out_data), .out_valid(core_in_valid), .out_ready(core_in_ready), .out_data(core_in_data));

  // ---- the accelerator -----------------------------------------------------------------------------------
  wire core_out_valid, core_out_ready;
  wire [OUT_W-1:0] core_out_data;
  bnn_top u_core (
      .clk(clk), .rst(core_rst), .in_valid(core_in_valid), .in_ready(core_in_ready), .in_data(core_in_data),
      .out_valid(core_out_valid), .out_ready(core_out_ready), .out_data(core_out_data));

  wire obuf_valid;
  wire [OUT_W-1:0] obuf_data;
  reg obeat_full;
  wire obuf_pop = state == S_OUT && !obeat_full && obuf_valid;
  bnn_fifo #(.WIDTH(OUT_W), .DEPTH(OUT_FIFO_DEPTH < 2 ? 2 : OUT_FIFO_DEPTH)) u_out_fifo (
      .clk(clk), .rst(core_rst), .in_valid(core_out_valid), .in_ready(core_out_ready), .in_data(core_out_data),
      .out_valid(obuf_valid), .out_ready(obuf_pop), .out_data(obuf_data));

  // ---- cycle count: first beat into the core .. last beat out of it ------------------------------------
  reg [31:0] cycles;
  reg [OBW-1:0] beats_out;
  reg started, counting;
  // the handshakes registered first: the count's logic stays off the core's ready paths (both events one
  // cycle late, so the count is the same)
  reg core_in_go, core_out_go;
  always @(posedge clk) begin
    core_in_go <= !core_rst && core_in_valid && core_in_ready;
    core_out_go <= !core_rst && core_out_valid && core_out_ready;
  end
  always @(posedge clk) begin
    if (core_rst || (state == S_IDLE && rx_valid && rx_data == CMD_FRAME)) begin
      cycles <= 32'd0;
      beats_out <= 0;
      started <= 1'b0;
      counting <= 1'b0;
    end else begin
      if (core_in_go) started <= 1'b1;
      if (core_out_go) beats_out <= beats_out + 1'b1;
      if (core_in_go && !started) counting <= 1'b1;
      if (core_out_go && beats_out == LAST_OBEAT) counting <= 1'b0;
      if (counting || (core_in_go && !started)) cycles <= cycles + 1'b1;
    end
  end

  // ---- output beats -> int32 words -> bytes --------------------------------------------------------------
  reg [OUT_BITS-1:0] obeat;
  reg [1:0] obyte;  // byte of the current word
  reg [OEW-1:0] oelem;
  reg [OBW-1:0] obeat_idx;
  wire [31:0] oword;
  generate
    if (OUT_EB < 32) begin : g_ext
      wire fill = OUT_SIGNED != 0 && obeat[OUT_EB-1];
      assign oword = {{(32 - OUT_EB) {fill}}, obeat[OUT_EB-1:0]};
    end else begin : g_word
      assign oword = obeat[31:0];
    end
  endgenerate

  // ---- control -----------------------------------------------------------------------------------------------
  reg [TW-1:0] idle;  // cycles since the last byte of a frame / the last output beat
  reg overflow, err_led, ferr_led;
  always @(*) begin
    tx_valid = 1'b0;
    tx_data = 8'h00;
    case (state)
      S_INFO: begin
        tx_valid = 1'b1;
        tx_data = INFO[idx*8+:8];
      end
      S_NAK: begin
        tx_valid = 1'b1;
        tx_data = NAK;
      end
      S_STATUS: begin
        tx_valid = 1'b1;
        tx_data = overflow ? ST_ERR : ST_OK;
      end
      S_OUT: begin
        tx_valid = obeat_full;
        tx_data = oword[obyte*8+:8];
      end
      S_CYC: begin
        tx_valid = 1'b1;
        tx_data = cycles[idx[1:0]*8+:8];
      end
      default: ;
    endcase
  end

  always @(posedge clk) begin
    abort <= 1'b0;
    if (rst) begin
      state <= S_IDLE;
      idx <= 5'd0;
      go <= 1'b0;
      overflow <= 1'b0;
      err_led <= 1'b0;
      ferr_led <= 1'b0;
      obeat_full <= 1'b0;
      obyte <= 2'd0;
      oelem <= 0;
      obeat_idx <= 0;
      byte_in_elem <= 0;
      elem_in_beat <= 0;
      frame_byte <= 0;
      idle <= 0;
      ebytes <= {IN_BYTES * 8{1'b0}};
      ebeat <= {IN_BITS{1'b0}};
      obeat <= {OUT_BITS{1'b0}};
    end else begin
      if (rx_ferr) ferr_led <= 1'b1;
      case (state)
        S_IDLE:
        if (rx_valid) begin
          idx <= 5'd0;
          if (rx_data == CMD_INFO) state <= S_INFO;
          else if (rx_data == CMD_FRAME) begin
            state <= S_RECV;
            go <= SAF == 0;
            overflow <= 1'b0;
            byte_in_elem <= 0;
            elem_in_beat <= 0;
            frame_byte <= 0;
            idle <= 0;
          end else state <= S_NAK;
        end
        S_INFO:
        if (tx_go) begin
          idx <= idx + 1'b1;
          if (idx == 5'd23) state <= S_IDLE;
        end
        S_NAK: if (tx_go) state <= S_IDLE;
        S_RECV:
        if (rx_valid) begin
          idle <= 0;
          ebytes <= ebytes_next;
          byte_in_elem <= elem_done ? 0 : byte_in_elem + 1'b1;
          if (elem_done) begin
            ebeat <= ebeat_next;
            elem_in_beat <= beat_done ? 0 : elem_in_beat + 1'b1;
          end
          if (beat_done && !fifo_in_ready) overflow <= 1'b1;
          frame_byte <= frame_byte + 1'b1;
          if (frame_byte == LAST_FRAME_BYTE) begin
            state <= S_STATUS;
            go <= 1'b1;
          end
        end else if (idle == TIMEOUT) begin  // the host gave up or lost bytes: drop the frame
          state <= S_IDLE;
          abort <= 1'b1;
          err_led <= 1'b1;
        end else idle <= idle + 1'b1;
        S_STATUS:
        if (tx_go) begin
          obeat_full <= 1'b0;
          obyte <= 2'd0;
          oelem <= 0;
          obeat_idx <= 0;
          idle <= 0;
          if (overflow) begin
            state <= S_IDLE;
            abort <= 1'b1;
            err_led <= 1'b1;
          end else begin
            state <= S_OUT;
            err_led <= 1'b0;
          end
        end
        S_OUT:
        if (obuf_pop) begin
          obeat <= obuf_data[OUT_BITS-1:0];
          obeat_full <= 1'b1;
          idle <= 0;
        end else if (!obeat_full && idle == TIMEOUT) begin  // the core gave no output: give it up
          state <= S_IDLE;
          abort <= 1'b1;
          err_led <= 1'b1;
        end else if (!obeat_full) idle <= idle + 1'b1;
        else if (tx_go) begin
          obyte <= obyte + 1'b1;
          if (obyte == 2'd3) begin  // a word sent: next element, next beat, or the cycle count
            obeat <= obeat >> OUT_EB;
            oelem <= oelem + 1'b1;
            if (oelem == LAST_OELEM) begin
              oelem <= 0;
              obeat_full <= 1'b0;
              obeat_idx <= obeat_idx + 1'b1;
              if (obeat_idx == LAST_OBEAT) begin
                state <= S_CYC;
                idx <= 5'd0;
              end
            end
          end
        end
        S_CYC:
        if (tx_go) begin
          idx <= idx + 1'b1;
          if (idx == 5'd3) state <= S_IDLE;
        end
        default: state <= S_IDLE;
      endcase
    end
  end

  // ---- LEDs ----------------------------------------------------------------------------------------------------
  reg [24:0] beat_count;
  always @(posedge clk) beat_count <= rst ? 25'd0 : beat_count + 1'b1;
  assign led = {beat_count[24], 1'b0, ferr_led, err_led, state == S_INFO || state == S_STATUS || state == S_OUT
                || state == S_CYC || state == S_NAK, counting, state == S_RECV, state == S_IDLE};

  // bits no one reads: the padding of the output beat, the byte / element that each shift drops
  /* verilator lint_off UNUSED */
  wire unused = ^{obuf_data, ebytes, ebeat};
  /* verilator lint_on UNUSED */
endmodule

`default_nettype wire
