/* bnn-flow C runtime: the kernel interface (C11, no dependencies).
 *
 * Numeric conventions (DESIGN.md §1): bit b = (v + 1) / 2 for a bipolar v; a row of K bits is packed
 * into words(K) = ceil(K / 64) uint64 words, element k at bit (k % 64) of word (k / 64), LSB first;
 * padding bits are 0 in activations AND weights, so popcount(x ^ w) counts only real disagreements.
 *
 * Every kernel exists as a portable reference (suffix _ref, kernels_ref.c: obviously correct) and as an
 * optimized variant (suffix _opt) compiled from the file for the build's target (kernels_x86.c,
 * kernels_neon.c, kernels_armv6.c; a target without one uses kernels_opt_generic.c that forwards to _ref).
 * Every _opt is tested against its _ref over a grid of shapes. Kernels work on row ranges
 * [row_begin, row_end) so the executor can split rows across threads; they never allocate.
 */
#ifndef BNN_KERNELS_H
#define BNN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BNN_WORD_BITS 64
static inline size_t bnn_words(size_t bits) { return (bits + BNN_WORD_BITS - 1) / BNN_WORD_BITS; }

/* Binary matrix-vector-activation over rows of packed bits.
 *   x:   rows x kw words (kw = words(k)), row-major;  w: mh x kw words (weight row j = output channel j)
 *   p(r, j) = k - popcount(x[r] ^ w[j])  (XNOR popcount, in [0, k])
 *   thr != NULL: out_bits (rows x words(mh), zero padding bits) gets bit j of row r = p(r, j) >= thr[j]
 *   thr == NULL: out_acc (rows x mh int32) = p(r, j)
 * Only rows [row_begin, row_end) are computed. */
void bnn_xnor_mvau_ref(const uint64_t *x, size_t row_begin, size_t row_end, const uint64_t *w, size_t mh,
                       size_t k, const int32_t *thr, uint64_t *out_bits, int32_t *out_acc);
void bnn_xnor_mvau_opt(const uint64_t *x, size_t row_begin, size_t row_end, const uint64_t *w, size_t mh,
                       size_t k, const int32_t *thr, uint64_t *out_bits, int32_t *out_acc);

/* Integer matrix-vector-activation (the first layer: n-bit inputs, small integer weights).
 *   x: rows x k int16 (inputs up to 16 bits), w: mh x k int8, acc(r, j) = sum_i x[r][i] * w[j][i] (int32)
 *   thr != NULL: out_bits as above (acc >= thr[j]); thr == NULL: out_acc (rows x mh int32) = acc. */
void bnn_int_mvau_ref(const int16_t *x, size_t row_begin, size_t row_end, const int8_t *w, size_t mh,
                      size_t k, const int32_t *thr, uint64_t *out_bits, int32_t *out_acc);
void bnn_int_mvau_opt(const int16_t *x, size_t row_begin, size_t row_end, const int8_t *w, size_t mh,
                      size_t k, const int32_t *thr, uint64_t *out_bits, int32_t *out_acc);

/* Sliding window (im2col) of a packed bit map, NHWC: in is h x w pixels of words(c) words each.
 * Output row (oy, ox) = the kh x kw patch in (ky, kx, c) order packed densely into words(kh*kw*c) words;
 * outside the map every channel bit is pad_bit (0 or 1). Rows [row_begin, row_end) of oh*ow rows. */
void bnn_im2col_bits_ref(const uint64_t *in, size_t h, size_t w, size_t c, size_t kh, size_t kw, size_t sh,
                         size_t sw, size_t pad_t, size_t pad_l, size_t oh, size_t ow, int pad_bit,
                         size_t row_begin, size_t row_end, uint64_t *out);
void bnn_im2col_bits_opt(const uint64_t *in, size_t h, size_t w, size_t c, size_t kh, size_t kw, size_t sh,
                         size_t sw, size_t pad_t, size_t pad_l, size_t oh, size_t ow, int pad_bit,
                         size_t row_begin, size_t row_end, uint64_t *out);

/* Sliding window of an integer map (int16 NHWC, c channels): out rows of kh*kw*c int16, pad_value outside. */
void bnn_im2col_int_ref(const int16_t *in, size_t h, size_t w, size_t c, size_t kh, size_t kw, size_t sh,
                        size_t sw, size_t pad_t, size_t pad_l, size_t oh, size_t ow, int16_t pad_value,
                        size_t row_begin, size_t row_end, int16_t *out);

/* Max-pool of a packed bit map = OR of the window's words (no padding): in h x w pixels of nw words,
 * out oh x ow pixels of nw words. Output rows [row_begin, row_end) of oh*ow. */
void bnn_maxpool_bits_ref(const uint64_t *in, size_t h, size_t w, size_t nw, size_t kh, size_t kw, size_t sh,
                          size_t sw, size_t oh, size_t ow, size_t row_begin, size_t row_end, uint64_t *out);
void bnn_maxpool_bits_opt(const uint64_t *in, size_t h, size_t w, size_t nw, size_t kh, size_t kw, size_t sh,
                          size_t sw, size_t oh, size_t ow, size_t row_begin, size_t row_end, uint64_t *out);

/* Flatten of a packed map whose c channels are not a multiple of 64: pixels of words(c) words ->
 * one dense row of words(pixels*c) words in (pixel, c) order. */
void bnn_repack_bits_ref(const uint64_t *in, size_t pixels, size_t c, uint64_t *out);

/* The name of the optimized kernel family compiled in ("x86-avx512-vpopcntdq", "x86-avx2",
 * "aarch64-neon", "armv7-neon", "armv6-swar", "generic"). */
const char *bnn_kernels_name(void);

#ifdef __cplusplus
}
#endif
#endif /* BNN_KERNELS_H */
