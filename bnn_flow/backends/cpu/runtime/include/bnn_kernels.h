/* bnn-flow C runtime: the kernel interface (C11, no dependencies).
 *
 * Numeric conventions (DESIGN.md §1): bit b = (v + 1) / 2 for a bipolar v; a row of K bits is packed
 * into words(K) = ceil(K / 64) uint64 words, element k at bit (k % 64) of word (k / 64), LSB first;
 * padding bits are 0 in activations AND weights, so popcount(x ^ w) counts only real disagreements.
 *
 * Kernel families, named as in the Python package (bnn_flow/plan.py, bnn_flow/ops) and the HLS library:
 * window (sliding window, a.k.a. im2col), mvau (matrix-vector-activation: binary or integer), maxpool,
 * flatten. Each family has one parameter struct (the layer's geometry, as in Larq Compute Engine's
 * BConv2DParams) that the executor builds once when a model is loaded; every kernel takes
 * (const <family>_params *p, its data pointers, its row range).
 *
 * Every kernel exists as a portable reference (suffix _ref, kernels_ref.c: obviously correct) and as an
 * optimized variant (suffix _opt) compiled from the file for the build's target (kernels_x86.c,
 * kernels_neon.c, kernels_armv6.c; a target without one uses kernels_opt_generic.c, portable C).
 * Every _opt is tested against its _ref over a grid of shapes (tests/kernel_check.c). Kernels work on
 * row ranges [row_begin, row_end) so the executor can split rows across threads; they never allocate,
 * and they leave every other row of the output untouched.
 *
 * A binary convolution (window + binary MVAU [+ 2x2 max-pool]) also has a fused form (conv.c:
 * bnn_conv_binary_opt) on the family's bgemm: weights prepared once at load time in the family's own layout
 * (bnn_bgemm_prepare_opt: channel lanes, so one vector register holds one 64-bit weight word of several
 * output channels and the accumulators need no horizontal sums), no im2col matrix, thresholds in the
 * kernel's output stage, a following 2x2 max-pool OR-ed in before the bits are stored. */
#ifndef BNN_KERNELS_H
#define BNN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BNN_WORD_BITS 64
static inline size_t bnn_words(size_t bits) { return (bits + BNN_WORD_BITS - 1) / BNN_WORD_BITS; }

/* ---- window: the kh x kw patch of every output pixel as one row (the input of a convolution's MVAU) ---- */

/* Output row r is output pixel (oy, ox) = (r / ow, r % ow); its patch starts at input pixel
 * (oy * sh - pad_t, ox * sw - pad_l). Bottom/right padding needs no field: it is what lets oh x ow fit. */
typedef struct {
    size_t h, w, c;      /* input map: h x w pixels of c channels, NHWC */
    size_t kh, kw;       /* kernel height, width */
    size_t sh, sw;       /* stride */
    size_t pad_t, pad_l; /* padding rows above / columns left of the map */
    size_t oh, ow;       /* output pixels (rows = oh * ow) */
    int32_t pad_value;   /* the value outside the map: a bit (0 or 1) for bit maps, an int16 for integer maps */
} bnn_window_params;

/* Bit map: in is h x w pixels of words(c) words. Output row = the patch in (ky, kx, c) order packed densely
 * into words(kh*kw*c) words; outside the map every channel bit is pad_value. */
void bnn_window_bits_ref(const bnn_window_params *p, const uint64_t *in, uint64_t *out, size_t row_begin,
                         size_t row_end);
void bnn_window_bits_opt(const bnn_window_params *p, const uint64_t *in, uint64_t *out, size_t row_begin,
                         size_t row_end);

/* Integer map: in is h x w pixels of c int16; output rows of kh*kw*c int16, pad_value outside the map. */
void bnn_window_int_ref(const bnn_window_params *p, const int16_t *in, int16_t *out, size_t row_begin,
                        size_t row_end);
void bnn_window_int_opt(const bnn_window_params *p, const int16_t *in, int16_t *out, size_t row_begin,
                        size_t row_end);

/* ---- mvau: matrix-vector-activation, one output pixel (row) at a time ---- */

typedef struct {
    size_t mh;                 /* output channels = weight rows (the HLS library's MH) */
    size_t k;                  /* inputs per row = weight columns (MW) */
    const int32_t *thresholds; /* mh thresholds: bits out; NULL: int32 accumulators out (the last layer) */
    const void *prepared;      /* integer layers: NULL, or the weights as bnn_mvau_integer_prepare_opt laid them
                                  out (the _opt kernel then reads only these; _ref ignores the field) */
} bnn_mvau_params;

/* Binary (XNOR popcount):
 *   x: rows x words(k) words, row-major;  w: mh x words(k) words (weight row j = output channel j)
 *   acc(r, j) = k - popcount(x[r] ^ w[j])  (the number of agreeing bits, in [0, k])
 *   thresholds != NULL: out_bits (rows x words(mh), zero padding bits) gets bit j of row r = acc >= thresholds[j]
 *   thresholds == NULL: out_acc (rows x mh int32) = acc; the unused output pointer may be NULL. */
void bnn_mvau_binary_ref(const bnn_mvau_params *p, const uint64_t *x, const uint64_t *w, uint64_t *out_bits,
                         int32_t *out_acc, size_t row_begin, size_t row_end);
void bnn_mvau_binary_opt(const bnn_mvau_params *p, const uint64_t *x, const uint64_t *w, uint64_t *out_bits,
                         int32_t *out_acc, size_t row_begin, size_t row_end);

/* Integer (the first layer: n-bit inputs, small integer weights):
 *   x: rows x k int16 (inputs up to 16 bits), w: mh x k int8, acc(r, j) = sum_i x[r][i] * w[j][i] (int32; the
 *   loader rejects weights whose accumulator could overflow); outputs as for the binary MVAU. */
void bnn_mvau_integer_ref(const bnn_mvau_params *p, const int16_t *x, const int8_t *w, uint64_t *out_bits,
                          int32_t *out_acc, size_t row_begin, size_t row_end);
void bnn_mvau_integer_opt(const bnn_mvau_params *p, const int16_t *x, const int8_t *w, uint64_t *out_bits,
                          int32_t *out_acc, size_t row_begin, size_t row_end);
/* Bytes of the integer weights in the family's own layout for inputs in [x_min, x_max] (0: the family reads the
 * int8 weights as they are), and that layout made from mh x k int8 weights (once, at load time: a layer's
 * every call then skips it). The prepared kernel requires every input value to lie in [x_min, x_max]. */
size_t bnn_mvau_integer_prepared_bytes_opt(size_t mh, size_t k, int32_t x_min, int32_t x_max);
void bnn_mvau_integer_prepare_opt(size_t mh, size_t k, int32_t x_min, int32_t x_max, const int8_t *w,
                                  void *prepared);

/* Bit planes of few-bit integers (bitplane.c: an integer MVAU on n-bit inputs as binary passes): rows x k int16
 * x in [lo, lo + 2^planes - 1] -> out (planes x rows x words(k) words: bit i of plane b of row r = bit b of
 * x[r][i] - lo, at out[(b * rows + r) * words(k) + i / 64], zero padding bits) and pops (rows x planes: the
 * popcount of each plane of each row). */
void bnn_pack_planes_ref(const int16_t *x, size_t rows, size_t k, int32_t lo, size_t planes, uint64_t *out,
                         int32_t *pops);
void bnn_pack_planes_opt(const int16_t *x, size_t rows, size_t k, int32_t lo, size_t planes, uint64_t *out,
                         int32_t *pops);
/* 1 where the bit-plane passes beat the family's integer kernel on few-bit inputs, so the loader uses them
 * (measured on a W1A2 CNV, models/RESULTS.md: x86 AVX-512 and popcnt-only yes, AVX2 no); 0 elsewhere (ARM: not
 * measured, the integer kernel stays). The environment variable BNN_BITPLANE=0/1 overrides it (tests). */
int bnn_bitplane_native(void);

/* n-bit activation (FINN's MultiThreshold) of one row of mh accumulators: out[j] = offset + the number of
 * l < levels with acc[j] >= t[j * levels + l] (int16 out: offset + levels fits, the loader checks). Cheap next to
 * the MAC (levels compares per output against k MACs), so one portable kernel serves every family. */
void bnn_multi_threshold_ref(const int32_t *acc, size_t mh, const int32_t *t, size_t levels, int32_t offset,
                             int16_t *out);

/* ---- maxpool, no padding: OR of the window's words (the max of bipolar values) on bit maps; the max on
 * integer maps (n-bit activations, int16) ---- */

typedef struct {
    size_t h, w;   /* input map: h x w pixels */
    size_t words;  /* bit maps: words per pixel, in and out: words(c); integer maps: channels per pixel */
    size_t kh, kw; /* window */
    size_t sh, sw; /* stride */
    size_t oh, ow; /* output pixels (rows = oh * ow) */
} bnn_maxpool_params;

/* in: h x w pixels of `words` words; out: oh x ow pixels of `words` words. */
void bnn_maxpool_bits_ref(const bnn_maxpool_params *p, const uint64_t *in, uint64_t *out, size_t row_begin,
                          size_t row_end);
void bnn_maxpool_bits_opt(const bnn_maxpool_params *p, const uint64_t *in, uint64_t *out, size_t row_begin,
                          size_t row_end);
/* in: h x w pixels of `words` int16 channels; out: oh x ow pixels of them. */
void bnn_maxpool_int_ref(const bnn_maxpool_params *p, const int16_t *in, int16_t *out, size_t row_begin,
                         size_t row_end);

/* ---- flatten: (h, w, c) -> (1, 1, h*w*c) ---- */

typedef struct {
    size_t pixels; /* h * w */
    size_t c;      /* channels per pixel */
} bnn_flatten_params;

/* Bit map whose c channels are not a multiple of 64: pixels of words(c) words -> one dense row of
 * words(pixels*c) words in (pixel, c) order. No row range: one output word mixes the bits of several
 * pixels, so the row cannot be split between threads. */
void bnn_flatten_bits_ref(const bnn_flatten_params *p, const uint64_t *in, uint64_t *out);

/* ---- bgemm: the binary matrix of the optimized path (channel lanes, prepared weights) ---- */

/* A binary matrix layer as the optimized kernels see it. Row r (an output pixel or an image) is `steps`
 * 64-bit words, word t at xr[r][off[t]]: contiguous rows (off[t] = t) or a receptive field read in place
 * from a staged feature map (conv.c). Padding bits are 0 in rows and weights, as everywhere. */
typedef struct {
    size_t mh;            /* output channels */
    size_t k;             /* real bits per row: the agreement is k - popcount(x ^ w) */
    size_t steps;         /* words per row */
    const uint32_t *off;  /* steps word offsets */
    const uint64_t *w;    /* weights prepared by bnn_bgemm_prepare_opt from the same step order */
    const int32_t *tpop;  /* NULL: int32 agreements out; else per channel the largest popcount that gives
                             a 1 bit, clamp(k - threshold, -1, k), then -1 up to a multiple of 64 channels */
} bnn_bgemm;

/* Words of prepared weights for mh channels of `steps` words; preparation from ws (mh rows of steps words,
 * row j = channel j's weights in step order). The layout is the kernel family's own. */
size_t bnn_bgemm_weight_words_opt(size_t mh, size_t steps);
void bnn_bgemm_prepare_opt(size_t mh, size_t steps, const uint64_t *ws, uint64_t *prepared);

/* n rows (pointers xr[0..n)) x output channels [jb, je) (jb % 64 == 0; je % 64 == 0 or je == mh):
 * bits: words [jb/64, words(je)) of out_bits + i * bits_stride are written whole (bit j = agreement >=
 * threshold, 0 above mh); accumulators (tpop == NULL): out_acc[i * acc_stride + j] = agreement. */
void bnn_bgemm_opt(const bnn_bgemm *g, const uint64_t *const *xr, size_t n, uint64_t *out_bits, size_t bits_stride,
                   int32_t *out_acc, size_t acc_stride, size_t jb, size_t je);

/* ---- conv: a binary convolution fused with its thresholds and an optional 2x2 OR max-pool ---- */

typedef struct {
    bnn_window_params win;     /* input bit map, kernel, stride, padding, pad bit; win.oh x win.ow: conv output */
    size_t mh;                 /* output channels */
    const int32_t *thresholds; /* mh thresholds: bits out; NULL: int32 agreements out (a last layer) */
    size_t pool;               /* 1: none; 2: OR max-pool 2x2 stride 2 of the conv output (floor: a last odd
                                  conv row/column is dropped) */
    size_t out_h, out_w;       /* the output map: (oh, ow), or (oh / 2, ow / 2) pooled */
    /* A zero-padded convolution (.bnn kind 6): `classes` blocks of mh thresholds, conv output pixel (oy, ox)
     * comparing with block class_rows[oy] * col_classes + class_cols[ox]. class_rows NULL: one block. */
    const uint8_t *class_rows, *class_cols;
    size_t classes, col_classes;
} bnn_conv_params;

/* The threshold block of conv output pixel (oy, ox) (0 without pad classes). */
static inline size_t bnn_conv_block(const bnn_conv_params *p, size_t oy, size_t ox) {
    return p->class_rows ? p->class_rows[oy] * p->col_classes + p->class_cols[ox] : 0;
}

/* in: h x w pixels of words(c) words; w: the MVAU's weights (mh rows of words(kh*kw*c) words, (ky, kx, c)
 * order as the window's rows); out: output rows [row_begin, row_end) of out_h, each out_w pixels of
 * words(mh) words (bits), or of mh int32 (thresholds == NULL). */
void bnn_conv_binary_ref(const bnn_conv_params *p, const uint64_t *in, const uint64_t *w, void *out,
                         size_t row_begin, size_t row_end);

/* The optimized form of a fused binary convolution, built once at load time (conv.c): how its input is
 * staged (in place, a padded copy, or width-folded for channels not a multiple of 64), the offsets of its
 * receptive field's words, and its weights prepared for bnn_bgemm_opt in that word order. */
typedef struct {
    bnn_conv_params p;
    int staging;       /* BNN_STAGE_NONE / BNN_STAGE_PAD / BNN_STAGE_FOLD */
    size_t pos_words;  /* words per staged position */
    size_t row_pos;    /* positions per staged row */
    size_t pix_step;   /* positions between horizontally adjacent conv output pixels */
    bnn_bgemm g;       /* the matrix, g.off relative to an output pixel's first word */
    void *mem;         /* owns g.off, g.w and g.tpop */
} bnn_conv_plan;
enum { BNN_STAGE_NONE = 0, BNN_STAGE_PAD = 1, BNN_STAGE_FOLD = 2 };

/* 0 on success; -1 when out of memory or when the layer is too large for the fused kernel (the executor
 * then runs the window and the matrix separately). w: the MVAU's weights as for bnn_conv_binary_ref. */
int bnn_conv_plan_init(bnn_conv_plan *cp, const bnn_conv_params *p, const uint64_t *w);
void bnn_conv_plan_free(bnn_conv_plan *cp);
/* Per-thread scratch bytes of bnn_conv_binary_opt (64-byte aligned scratch). */
size_t bnn_conv_scratch_bytes(const bnn_conv_plan *cp);
/* bnn_conv_binary_ref's contract (output rows [row_begin, row_end)) on the plan's prepared weights. */
void bnn_conv_binary_opt(const bnn_conv_plan *cp, const uint64_t *in, void *out, size_t row_begin, size_t row_end,
                         void *scratch);

/* The name of the optimized kernel family compiled in ("x86-avx512-vpopcntdq", "x86-avx2", "x86-64-popcnt",
 * "aarch64-neon", "armv7-neon", "armv6-swar", "generic"). */
const char *bnn_kernels_name(void);

/* Where the family's bgemm beats its window + MVAU pair, so the executor fuses binary convolutions there:
 * 2 everywhere (a SIMD bgemm: AVX-512); 1 only on narrow maps (C % 64 != 0), where the fused kernel's dense
 * packing saves the padding words (the portable bgemm on a hardware 64-bit popcount: x86 AVX2 / popcnt);
 * 0 nowhere (the portable bgemm elsewhere, there to be correct and tested). */
int bnn_bgemm_native(void);

/* The family's XNOR-popcount inner step (e.g. AVX-512: vpxorq + vpopcntq + vpaddq on 512 bits) on registers
 * only, `iters` times over 12 independent accumulators: the profile times it to get the family's binary ceiling
 * in MACs per cycle (the instruction throughput, with no loads, no staging). Returns a value that depends on
 * every step, so nothing is optimized away; *macs_per_iter = binary MACs per iteration. */
uint64_t bnn_isa_mix_opt(uint64_t iters, unsigned *macs_per_iter);

#ifdef __cplusplus
}
#endif
#endif /* BNN_KERNELS_H */
