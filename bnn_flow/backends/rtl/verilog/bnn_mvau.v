// bnn_mvau.v - matrix-vector-activation unit (hls_templates/mvau.h): per input vector of MW elements, MH
// dot products with the rows of a weight matrix, then one threshold bit per row (acc >= T), an n-bit activation
// (LEVELS thresholds per row) or the accumulators themselves (last layer).
//
// Parameters
//   MW, MH        matrix width (elements per input vector) and height (output channels)
//   SIMD, PE      input elements per beat (MW % SIMD == 0, SF = MW/SIMD beats per vector) and output
//                 channels per beat (MH % PE == 0, NF = MH/PE beats per vector)
//   PIXELS        vectors per frame (documentation and cycle count only: vectors simply follow each other)
//   IB, ISIGNED   input element bits, two's complement if ISIGNED (binary layers: IB = 1)
//   WB, WSIGNED   weight element bits, two's complement if WSIGNED (binary layers: WB = 1)
//   WBIPOLAR      integer layers only, WB = 1: weight bit b means 2b-1 (-1/+1) instead of 0/1
//   BINARY        1: acc = number of agreeing bits of input and weight (XNOR-popcount, bits as in
//                 DESIGN.md: bipolar -1 -> 0, +1 -> 1); 0: acc = sum of products of the IB-bit inputs
//                 and WB-bit weights
//   AB            accumulator bits, signed (modulo 2^AB; the plan sizes it to hold every accumulator and
//                 threshold, so it never wraps)
//   THRESH        1: output element = OOFF + the number of the row's LEVELS thresholds T with acc >= T (signed
//                 compares; LEVELS 1, OOFF 0: the bit acc >= T; more: FINN's MultiThreshold, an n-bit activation,
//                 two's complement modulo 2^OB); 0: output element = acc[OB-1:0]
//   LEVELS, OOFF  THRESH = 1: thresholds per output channel, and the lowest output level (may be negative)
//   OB            output element bits (1 for bits)
//   WEIGHT_FILE   $readmemh file of the weights: TILES = NF*SF lines; line nf*SF + sf is one word of
//                 PE*SIMD*WB bits holding, for every lane pe, row nf*PE + pe, columns sf*SIMD .. +SIMD-1:
//                 element s of lane pe at bits [(pe*SIMD + s)*WB +: WB] (bnn_flow/backends/rtl/memfiles.py).
//   THRESH_FILE   $readmemh file of the thresholds (THRESH = 1 only): CLASSES*NF lines of PE*LEVELS*AB bits, line
//                 c*NF + nf for pad class c, lane pe (row nf*PE + pe) threshold l at bits [(pe*LEVELS + l)*AB +: AB],
//                 two's complement.
//                 Both files default to "": no contents (so that a tool can elaborate the defaults); a real
//                 layer always names them.
//   CLASSES       threshold sets (1; a zero-padded convolution: one per pad class, transforms/zero_padding.py):
//                 row classes x COL_CLASSES, pixel (oy, ox) taking set row_class[oy] * COL_CLASSES + col_class[ox]
//   COL_CLASSES, OW  CLASSES > 1: column classes, and output pixels per row (PIXELS = OH * OW, row-major)
//   CLASS_FILE    CLASSES > 1: $readmemh file of OH + OW lines of clog2(CLASSES) bits: each output row's class,
//                 then each output column's
//   WEIGHT_RAM_STYLE  "auto" (yosys decides: with synth_ecp5 a deep ROM becomes DP16KD block RAM, a shallow
//                 one LUTs), "block" or "logic" to force the mapping (the compiler's resource estimate knows
//                 which budget binds).
//   STAGE_LEVELS  adder levels per pipeline register in the popcount / adder trees (bnn_adder_tree).
//   DECODE, DB, DSIGNED, LEVEL_TABLE  DECODE = 1: an input element is a nonuniform activation's IB-bit index i
//                 and the dot product takes its level, LEVEL_TABLE[i*DB +: DB] (DB bits, two's complement if
//                 DSIGNED); the input stream and buffer keep the IB-bit indices.
// Ports: clk, rst; in_valid/in_ready/in_data[SIMD*IB] (per vector SF beats, beat sf holding elements
//   sf*SIMD .. sf*SIMD+SIMD-1, element s at [s*IB +: IB]); out_valid/out_ready/out_data[PE*OB] (per
//   vector NF beats, beat nf holding rows nf*PE .. nf*PE+PE-1, element pe at [pe*OB +: OB]).
// Cycles per frame (no stalls, frames back to back): NF * SF * PIXELS exactly (initiation interval 1:
//   one input beat x output fold per cycle, the input vector buffered during nf = 0 and re-read for
//   nf > 0, as mvau.h). Latency: output beat nf of a vector is on out_* LATENCY = 5 + TREE_LAT cycles after
//   its last iteration (nf, SF-1) was issued; so the first output beat of a vector leaves LATENCY cycles
//   after the vector's last input beat was taken. TREE_LAT = clog2(ceil(SIMD/3)) / STAGE_LEVELS (binary) or
//   clog2(SIMD) / STAGE_LEVELS (integer), integer division, 0 when STAGE_LEVELS = 0
//   (bnn_flow/backends/rtl/memfiles.py: mvau_latency).
//
// One memory word per tile for all PE lanes side by side: yosys infers one wide ROM and splits it over as
// many block RAMs as its width needs (DP16KD: 512 x 36 ... 16384 x 1), so narrow lanes share blocks; a ROM
// of few tiles becomes LUTs (see WEIGHT_RAM_STYLE). Weights, thresholds and the input buffer all have a
// registered read (weights and thresholds two); the thresholds (NF words) and the input buffer (SF words) are
// small: LUTs / LUT RAM mostly.
//
// Pipeline (cycle 0 = issue of (nf, sf)): 0 read weights / input buffer; 1 the weights' second register and
// the input beat; 2 XNOR or products, registered; 3 .. 3+TL-1 the reduction tree; 3+TL accumulate (the
// threshold, read from 2+TL, in its second register); 4+TL compare and push into the output queue. The pipeline never stalls: an iteration that completes a dot product (sf = SF-1) is issued
// only against a free slot of the output queue (bnn_out_queue), so back-pressure can never lose a result.
`default_nettype none

module bnn_mvau #(
    parameter integer MW = 8,
    parameter integer MH = 4,
    parameter integer SIMD = 4,
    parameter integer PE = 2,
    parameter integer PIXELS = 1,
    parameter integer IB = 1,
    parameter integer ISIGNED = 0,
    parameter integer WB = 1,
    parameter integer WSIGNED = 0,
    parameter integer WBIPOLAR = 0,
    parameter integer BINARY = 1,
    parameter integer AB = 8,
    parameter integer THRESH = 1,
    parameter integer LEVELS = 1,
    parameter integer OOFF = 0,
    parameter integer OB = 1,
    parameter WEIGHT_FILE = "",
    parameter THRESH_FILE = "",
    parameter integer CLASSES = 1,
    parameter integer COL_CLASSES = 1,
    parameter integer OW = 1,
    parameter CLASS_FILE = "",
    parameter WEIGHT_RAM_STYLE = "auto",
    parameter integer STAGE_LEVELS = 2,
    parameter integer DECODE = 0,
    parameter integer DB = IB,
    parameter integer DSIGNED = ISIGNED,
    parameter [(DECODE != 0 ? (1 << IB) * DB : 1)-1:0] LEVEL_TABLE = 0
) (
    input  wire               clk,
    input  wire               rst,
    input  wire               in_valid,
    output wire               in_ready,
    input  wire [SIMD*IB-1:0] in_data,
    output wire               out_valid,
    input  wire               out_ready,
    output wire [  PE*OB-1:0] out_data
);
  localparam integer SF = MW / SIMD;
  localparam integer NF = MH / PE;
  localparam integer TILES = NF * SF;
  localparam integer SFW = SF > 1 ? $clog2(SF) : 1;
  localparam integer NFW = NF > 1 ? $clog2(NF) : 1;
  localparam integer TW = TILES > 1 ? $clog2(TILES) : 1;
  localparam integer LANE_W = SIMD * WB;  // weight bits of one lane per tile
  localparam integer SL = STAGE_LEVELS > 0 ? STAGE_LEVELS : 1;
  localparam integer TREE_N = BINARY != 0 ? (SIMD + 2) / 3 : SIMD;  // popcount: full adders first
  localparam integer TREE_LAT = STAGE_LEVELS > 0 && TREE_N > 1 ? $clog2(TREE_N) / SL : 0;
  localparam integer LATENCY = 5 + TREE_LAT;  // issue -> the result on out_* (pushed at 4 + TREE_LAT)
  localparam integer TDEPTH = CLASSES * NF;  // threshold words: NF per pad class
  localparam integer TAW = TDEPTH > 1 ? $clog2(TDEPTH) : 1;
  localparam integer CW = CLASSES > 1 ? $clog2(CLASSES) : 1;
  localparam integer SB = 3 + TAW;  // side-band: valid, first, last, threshold word (class * NF + nf)

`ifndef SYNTHESIS
  initial begin
    if (MW % SIMD != 0 || MH % PE != 0 || PIXELS < 1 || OB < 1 || (THRESH == 0 && OB > AB) || LEVELS < 1 ||
        (WBIPOLAR != 0 && (WB != 1 || BINARY != 0))) begin
      $display("ERROR bnn_mvau %m: illegal folding or widths MW=%0d SIMD=%0d MH=%0d PE=%0d OB=%0d AB=%0d", MW,
               SIMD, MH, PE, OB, AB);
      $finish;
    end
  end
`endif

  // ---- issue: one (input beat x output fold) per cycle ------------------------------------------------
  // Integer parameters cut to the counter widths on purpose (they fit).
  /* verilator lint_off WIDTH */
  localparam [SFW-1:0] SF_LAST = SF - 1;
  localparam [NFW-1:0] NF_LAST = NF - 1;
  localparam [TW-1:0] TILE_LAST = TILES - 1;
  /* verilator lint_on WIDTH */
  reg [SFW-1:0] sf;
  reg [NFW-1:0] nf;
  reg [TW-1:0] tile;  // nf*SF + sf: the weight word of this iteration
  wire credit;
  wire sf_last = sf == SF_LAST;
  wire nf_first = nf == 0;
  wire go = !sf_last || credit;  // a dot product may complete only into a reserved output slot
  wire issue = go && (!nf_first || in_valid);
  assign in_ready = nf_first && go;

  always @(posedge clk) begin
    if (rst) begin
      sf <= 0;
      nf <= 0;
      tile <= 0;
    end else if (issue) begin
      sf   <= sf_last ? {SFW{1'b0}} : sf + 1'b1;
      tile <= tile == TILE_LAST ? {TW{1'b0}} : tile + 1'b1;
      if (sf_last) nf <= nf == NF_LAST ? {NFW{1'b0}} : nf + 1'b1;
    end
  end

  // ---- cycle 0: registered reads of the weights and of the buffered input vector -------------------------
  // The weights are read in two registers (bnn_rom LATENCY 2): a DP16KD's read data arrives late in the cycle
  // (about 5.6 ns clock-to-out on the -6 part), and read and XNOR in one cycle limited a fitted CNV to 68 MHz
  // (nextpnr's critical path); a ROM deeper than one block is built from banks selected after their registers.
  wire [PE*LANE_W-1:0] weights_q;
  reg [SIMD*IB-1:0] fresh_q;  // the beat taken from in_data (nf = 0)
  wire [SIMD*IB-1:0] buffered_q;  // the same beat re-read from the input buffer (nf > 0)
  // The registers of this pipeline need no enables: every value is used exactly one cycle later (or not at
  // all, for an iteration that was not issued), so they load every cycle. That keeps `issue` (a function of
  // in_valid and the credit) off the clock enables of wide registers, where its fan-out cost 100 MHz.
  always @(posedge clk) fresh_q <= in_data;

  bnn_rom #(
      .WIDTH(PE * LANE_W),
      .DEPTH(TILES),
      .FILE(WEIGHT_FILE),
      .STYLE(WEIGHT_RAM_STYLE),
      .LATENCY(2)
  ) u_weights (
      .clk(clk),
      .en(1'b1),
      .addr(tile),
      .q(weights_q)
  );

  generate
    if (NF > 1) begin : g_inbuf
      reg [SIMD*IB-1:0] inbuf[0:SF-1];
      reg [SIMD*IB-1:0] inbuf_q;
      always @(posedge clk) begin
        if (issue && nf_first) inbuf[sf] <= in_data;
        inbuf_q <= inbuf[sf];
      end
      assign buffered_q = inbuf_q;
    end else begin : g_noinbuf  // one output fold: every beat is used once, straight from the input
      assign buffered_q = {SIMD * IB{1'b0}};
    end
  endgenerate

  // The pad class of the vector being issued (CLASSES > 1): row class x COL_CLASSES + column class, both read
  // from CLASS_FILE one cycle ahead, addressed by the output pixel (oy, ox) the next issue will belong to, so
  // the class is ready on the cycle a new vector's first iteration issues (a new pixel may come every cycle).
  wire [CW-1:0] pixel_class;
  generate
    if (CLASSES > 1) begin : g_classes
      localparam integer OH = PIXELS / OW;
      localparam integer XW = OW > 1 ? $clog2(OW) : 1;
      localparam integer YW = OH > 1 ? $clog2(OH) : 1;
      localparam integer MAW = $clog2(OH + OW);  // the class map's address
      /* verilator lint_off WIDTH */
      localparam [XW-1:0] OX_LAST = OW - 1;
      localparam [YW-1:0] OY_LAST = OH - 1;
      localparam [MAW-1:0] COLS_AT = OH;
      /* verilator lint_on WIDTH */
      reg [XW-1:0] ox;
      reg [YW-1:0] oy;
      wire vector_done = issue && sf_last && nf == NF_LAST;
      wire [XW-1:0] ox_next = !vector_done ? ox : ox == OX_LAST ? {XW{1'b0}} : ox + 1'b1;
      wire [YW-1:0] oy_next = !vector_done || ox != OX_LAST ? oy : oy == OY_LAST ? {YW{1'b0}} : oy + 1'b1;
      always @(posedge clk) begin
        ox <= rst ? {XW{1'b0}} : ox_next;
        oy <= rst ? {YW{1'b0}} : oy_next;
      end
      wire [CW-1:0] row_class, col_class;
      /* verilator lint_off WIDTH */
      wire [MAW-1:0] row_addr = rst ? {MAW{1'b0}} : oy_next;
      wire [MAW-1:0] col_addr = COLS_AT + (rst ? {XW{1'b0}} : ox_next);
      /* verilator lint_on WIDTH */
      bnn_rom #(
          .WIDTH(CW),
          .DEPTH(OH + OW),
          .FILE(CLASS_FILE),
          .LATENCY(1)
      ) u_row_classes (
          .clk(clk),
          .en(1'b1),
          .addr(row_addr),
          .q(row_class)
      );
      bnn_rom #(
          .WIDTH(CW),
          .DEPTH(OH + OW),
          .FILE(CLASS_FILE),
          .LATENCY(1)
      ) u_col_classes (
          .clk(clk),
          .en(1'b1),
          .addr(col_addr),
          .q(col_class)
      );
      /* verilator lint_off WIDTH */
      assign pixel_class = row_class * COL_CLASSES + col_class;  // a constant factor: shifts and adds
      /* verilator lint_on WIDTH */
    end else begin : g_one_class
      assign pixel_class = {CW{1'b0}};
    end
  endgenerate
  /* verilator lint_off WIDTH */
  wire [TAW-1:0] threshold_word = pixel_class * NF + nf;  // NF constant: shifts and adds
  /* verilator lint_on WIDTH */

  wire [SB-1:0] sb0 = {issue, sf == 0, sf_last, threshold_word};
  reg [SB-1:0] sb1;
  reg from_input1;
  always @(posedge clk) begin
    sb1 <= rst ? {SB{1'b0}} : sb0;
    from_input1 <= nf_first;
  end

  // ---- cycle 1: the input beat for the lanes, registered beside the weights' second register ---------------
  // (DECODE: each element, a nonuniform activation's index, is replaced by its level, shared by the PE lanes)
  wire [SIMD*IB-1:0] x1 = from_input1 ? fresh_q : buffered_q;
  wire [SIMD*DB-1:0] x1_value;
  genvar ds;
  generate
    if (DECODE != 0) begin : g_decode
      for (ds = 0; ds < SIMD; ds = ds + 1) begin : g_elem
        assign x1_value[ds*DB+:DB] = LEVEL_TABLE[x1[ds*IB+:IB]*DB+:DB];
      end
    end else begin : g_nodecode
      assign x1_value = x1;
    end
  endgenerate
  reg [SIMD*DB-1:0] x2;
  reg [SB-1:0] sb2, sb3;
  always @(posedge clk) begin
    x2  <= x1_value;
    sb2 <= rst ? {SB{1'b0}} : sb1;
    sb3 <= rst ? {SB{1'b0}} : sb2;
  end

  // ---- cycle 2: bnn_dot (XNOR / products registered, then the tree) -----------------------------------------

  // Side-band and accumulators of cycle 3+TL (declared here: the lanes below feed them).
  wire [SB-1:0] sb_acc;
  bnn_delay #(
      .WIDTH(SB),
      .CYCLES(TREE_LAT)
  ) u_sideband (
      .clk(clk),
      .rst(rst),
      .d(sb3),
      .q(sb_acc)
  );
  wire acc_valid = sb_acc[SB-1];
  wire acc_first = sb_acc[SB-2];
  wire acc_last = sb_acc[SB-3];
  /* verilator lint_off UNUSED */
  wire [TAW-1:0] unused_acc_word = sb_acc[TAW-1:0];  // the thresholds are addressed a cycle ahead (g_thresh)
  /* verilator lint_on UNUSED */

  reg [PE*AB-1:0] acc, result_q;
  reg result_valid;
  wire [PE*AB-1:0] acc_next;

  // Per lane: bnn_dot (cycle 2 XNOR / products, cycles 3 .. 3+TL-1 the tree), cycle 3+TL accumulate.
  genvar pe;
  generate
    for (pe = 0; pe < PE; pe = pe + 1) begin : g_lane
      wire [LANE_W-1:0] w2 = weights_q[pe*LANE_W+:LANE_W];
      wire [AB-1:0] dot;  // the tile's dot product, TREE_LAT cycles after cycle 3
      assign acc_next[pe*AB+:AB] = (acc_first ? {AB{1'b0}} : acc[pe*AB+:AB]) + dot;
      bnn_dot #(
          .SIMD(SIMD),
          .IB(DB),
          .ISIGNED(DSIGNED),
          .WB(WB),
          .WSIGNED(WSIGNED),
          .WBIPOLAR(WBIPOLAR),
          .BINARY(BINARY),
          .AB(AB),
          .STAGE_LEVELS(STAGE_LEVELS)
      ) u_dot (
          .clk(clk),
          .x(x2),
          .w(w2),
          .dot(dot)
      );
    end
  endgenerate

  // ---- cycle 3+TL: accumulate over the SF tiles of a row; read the threshold of a finished fold --------------
  always @(posedge clk) begin
    if (acc_valid) acc <= acc_next;
    result_q <= acc_next;  // used in the next cycle only, when result_valid
    result_valid <= !rst && acc_valid && acc_last;
  end

  // ---- cycle 4+TL: threshold compare (or the accumulator itself) into the output queue -----------------
  wire [PE*OB-1:0] result_out;
  generate
    if (THRESH != 0) begin : g_thresh
      // The thresholds are read in two registers too (a DP16KD's late read data then the compare was the
      // fitted CNV's critical path), addressed one cycle ahead: the threshold word of sb2 delayed as sb3's is.
      wire [TAW-1:0] threshold_addr;
      wire [PE*LEVELS*AB-1:0] threshold_q;
      bnn_delay #(
          .WIDTH(TAW),
          .CYCLES(TREE_LAT)
      ) u_threshold_nf (
          .clk(clk),
          .rst(rst),
          .d(sb2[TAW-1:0]),
          .q(threshold_addr)
      );
      bnn_rom #(
          .WIDTH(PE * LEVELS * AB),
          .DEPTH(TDEPTH),
          .FILE(THRESH_FILE),
          .LATENCY(2)
      ) u_thresholds (
          .clk(clk),
          .en(1'b1),
          .addr(threshold_addr),
          .q(threshold_q)
      );
      /* verilator lint_off WIDTH */
      localparam [OB-1:0] LOWEST = OOFF;  // two's complement, modulo 2^OB
      /* verilator lint_on WIDTH */
      for (pe = 0; pe < PE; pe = pe + 1) begin : g_cmp
        wire [LEVELS-1:0] reached;
        genvar l;
        for (l = 0; l < LEVELS; l = l + 1) begin : g_level
          assign reached[l] = $signed(result_q[pe*AB+:AB]) >= $signed(threshold_q[(pe*LEVELS+l)*AB+:AB]);
        end
        if (LEVELS == 1 && OOFF == 0 && OB == 1) begin : g_bit
          assign result_out[pe*OB] = reached[0];
        end else begin : g_level_count  // the thresholds reached, counted (they are sorted: a thermometer code)
          reg [OB-1:0] level;
          integer k;
          always @* begin
            level = LOWEST;
            /* verilator lint_off WIDTH */
            for (k = 0; k < LEVELS; k = k + 1) level = level + reached[k];  // zero-extended to OB bits
            /* verilator lint_on WIDTH */
          end
          assign result_out[pe*OB+:OB] = level;
        end
      end
    end else begin : g_raw
      for (pe = 0; pe < PE; pe = pe + 1) begin : g_cut
        assign result_out[pe*OB+:OB] = result_q[pe*AB+:OB];
      end
      /* verilator lint_off UNUSED */
      wire [PE*AB-1:0] unused_result = result_q;
      /* verilator lint_on UNUSED */
    end
  endgenerate

  bnn_out_queue #(
      .WIDTH(PE * OB),
      .DEPTH(LATENCY + 1)  // reserved at issue, pushed 4 + TREE_LAT cycles later: (4 + TREE_LAT) + 2 keeps II = 1
  ) u_out (
      .clk(clk),
      .rst(rst),
      .reserve(issue && sf_last),
      .credit(credit),
      .push(result_valid),
      .push_data(result_out),
      .out_valid(out_valid),
      .out_ready(out_ready),
      .out_data(out_data)
  );
endmodule

`default_nettype wire
