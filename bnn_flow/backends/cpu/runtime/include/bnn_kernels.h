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
 * kernels_neon.c, kernels_armv6.c; a target without one uses kernels_opt_generic.c that forwards to _ref).
 * Every _opt is tested against its _ref over a grid of shapes (tests/kernel_check.c). Kernels work on
 * row ranges [row_begin, row_end) so the executor can split rows across threads; they never allocate,
 * and they leave every other row of the output untouched. */
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

/* ---- mvau: matrix-vector-activation, one output pixel (row) at a time ---- */

typedef struct {
    size_t mh;                 /* output channels = weight rows (the HLS library's MH) */
    size_t k;                  /* inputs per row = weight columns (MW) */
    const int32_t *thresholds; /* mh thresholds: bits out; NULL: int32 accumulators out (the last layer) */
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

/* ---- maxpool: OR of the window's words (the max of bipolar values), bit maps only, no padding ---- */

typedef struct {
    size_t h, w;   /* input map: h x w pixels */
    size_t words;  /* words per pixel, in and out: words(c) */
    size_t kh, kw; /* window */
    size_t sh, sw; /* stride */
    size_t oh, ow; /* output pixels (rows = oh * ow) */
} bnn_maxpool_params;

/* in: h x w pixels of `words` words; out: oh x ow pixels of `words` words. */
void bnn_maxpool_bits_ref(const bnn_maxpool_params *p, const uint64_t *in, uint64_t *out, size_t row_begin,
                          size_t row_end);
void bnn_maxpool_bits_opt(const bnn_maxpool_params *p, const uint64_t *in, uint64_t *out, size_t row_begin,
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

/* The name of the optimized kernel family compiled in ("x86-avx512-vpopcntdq", "x86-avx2", "x86-64-popcnt",
 * "aarch64-neon", "armv7-neon", "armv6-swar", "generic"). */
const char *bnn_kernels_name(void);

#ifdef __cplusplus
}
#endif
#endif /* BNN_KERNELS_H */
