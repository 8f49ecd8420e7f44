/* Word-level sliding window and max-pool on packed bit maps, shared by the optimized kernel files
 * (kernels_x86.c, kernels_neon.c, kernels_armv6.c). Portable C11; included, not linked, so each file
 * stays one unit.
 *
 * Why: the reference window moves one bit at a time. Here each source pixel's words(c) words are
 * appended to the patch row with one shift/or per word (two when the destination bit offset is not
 * word aligned), and a fully word-aligned patch (c % 64 == 0) degenerates to word copies.
 * Precondition (bnn_kernels.h): the padding bits above c in every input pixel are 0, so whole words
 * can be or-ed in without masking. Postcondition: bit-exact with bnn_window_bits_ref /
 * bnn_maxpool_bits_ref for every row in [row_begin, row_end); other rows are untouched. */
#ifndef BNN_WINDOW_WORDS_H
#define BNN_WINDOW_WORDS_H

#include <string.h>

#include "bnn_kernels.h"

/* Or `c` bits from src (words(c) words, zero above c) into dst starting at bit `pos`; dst already 0 there. */
static inline void bnn_append_bits(uint64_t *dst, size_t pos, const uint64_t *src, size_t c) {
    const size_t nw = bnn_words(c), sh = pos % 64;
    uint64_t *d = dst + pos / 64;
    if (sh == 0) {
        memcpy(d, src, nw * sizeof(uint64_t));
        return;
    }
    const size_t last = bnn_words(pos + c) - 1 - pos / 64; /* index of the last destination word touched */
    for (size_t i = 0; i < nw; i++) {
        d[i] |= src[i] << sh;
        if (i + 1 <= last) d[i + 1] |= src[i] >> (64 - sh);
    }
}

/* A pixel of c one-bits (words(c) words, zero above c) for the padding of a patch. */
static inline void bnn_fill_ones(uint64_t *px, size_t c) {
    const size_t nw = bnn_words(c);
    for (size_t i = 0; i < nw; i++) px[i] = ~(uint64_t)0;
    if (c % 64) px[nw - 1] = ((uint64_t)1 << (c % 64)) - 1;
}

/* Source coordinate of patch offset kk for output o, or -1 outside the map (that is: padding). */
static inline long bnn_src_coord(size_t o, size_t kk, size_t s, size_t pad, size_t n) {
    size_t pos = o * s + kk;
    return (pos < pad || pos - pad >= n) ? -1 : (long)(pos - pad);
}

/* bnn_window_bits_ref's contract; `ones` is scratch of words(c) words (caller's stack, no allocation).
 * The params are copied into locals first: stores to the uint64_t output may alias size_t fields (LP64). */
static inline void bnn_window_bits_words(const bnn_window_params *p, const uint64_t *in, uint64_t *out,
                                         size_t row_begin, size_t row_end, uint64_t *ones) {
    const size_t h = p->h, w = p->w, c = p->c, kh = p->kh, kw = p->kw, sh = p->sh, sw = p->sw;
    const size_t pad_t = p->pad_t, pad_l = p->pad_l, ow = p->ow;
    const int pad_value = p->pad_value != 0;
    const size_t cw = bnn_words(c), rw = bnn_words(kh * kw * c);
    bnn_fill_ones(ones, c);
    for (size_t r = row_begin; r < row_end; r++) {
        const size_t oy = r / ow, ox = r % ow;
        uint64_t *orow = out + r * rw;
        memset(orow, 0, rw * sizeof(uint64_t));
        size_t pos = 0;
        for (size_t ky = 0; ky < kh; ky++) {
            const long iy = bnn_src_coord(oy, ky, sh, pad_t, h);
            for (size_t kx = 0; kx < kw; kx++, pos += c) {
                const long ix = bnn_src_coord(ox, kx, sw, pad_l, w);
                if (iy >= 0 && ix >= 0) {
                    bnn_append_bits(orow, pos, in + ((size_t)iy * w + (size_t)ix) * cw, c);
                } else if (pad_value) {
                    bnn_append_bits(orow, pos, ones, c);
                } /* a 0 pad bit: the row is already zero there */
            }
        }
    }
}

/* bnn_window_int_ref's contract (the integer first layer's im2col, e.g. 8-bit pixels): per patch row, each
 * kernel row's kw pixels are one contiguous run of kw * c int16 in the map when inside it (one copy), else
 * element by element with the pad value; the reference decides every element by its coordinates. */
static inline void bnn_window_int_rows(const bnn_window_params *p, const int16_t *in, int16_t *out,
                                       size_t row_begin, size_t row_end) {
    const size_t h = p->h, w = p->w, c = p->c, kh = p->kh, kw = p->kw, sh = p->sh, sw = p->sw;
    const size_t pad_t = p->pad_t, pad_l = p->pad_l, ow = p->ow, k = kh * kw * c;
    const int16_t pad = (int16_t)p->pad_value;
    for (size_t r = row_begin; r < row_end; r++) {
        const size_t oy = r / ow, ox = r % ow;
        int16_t *d = out + r * k;
        for (size_t ky = 0; ky < kh; ky++, d += kw * c) {
            const long iy = bnn_src_coord(oy, ky, sh, pad_t, h);
            const long x0 = bnn_src_coord(ox, 0, sw, pad_l, w), x1 = bnn_src_coord(ox, kw - 1, sw, pad_l, w);
            if (iy >= 0 && x0 >= 0 && x1 >= 0) { /* the whole kernel row inside the map: one run */
                const int16_t *src = in + ((size_t)iy * w + (size_t)x0) * c;
                for (size_t i = 0; i < kw * c; i++) d[i] = src[i]; /* short runs (3 x C): no memcpy call */
                continue;
            }
            for (size_t kx = 0; kx < kw; kx++) {
                const long ix = bnn_src_coord(ox, kx, sw, pad_l, w);
                for (size_t ch = 0; ch < c; ch++)
                    d[kx * c + ch] = iy >= 0 && ix >= 0 ? in[((size_t)iy * w + (size_t)ix) * c + ch] : pad;
            }
        }
    }
}

/* bnn_maxpool_bits_ref's contract with the word loop innermost: each window pixel is one contiguous run
 * of nw words, or-ed into the output row (the compiler vectorizes this loop: vorr on NEON). */
static inline void bnn_maxpool_bits_words(const bnn_maxpool_params *p, const uint64_t *in, uint64_t *out,
                                          size_t row_begin, size_t row_end) {
    const size_t w = p->w, nw = p->words, kh = p->kh, kw = p->kw, sh = p->sh, sw = p->sw, ow = p->ow;
    for (size_t r = row_begin; r < row_end; r++) {
        const size_t oy = r / ow, ox = r % ow;
        uint64_t *o = out + r * nw;
        memset(o, 0, nw * sizeof(uint64_t));
        for (size_t ky = 0; ky < kh; ky++) {
            for (size_t kx = 0; kx < kw; kx++) {
                const uint64_t *px = in + ((oy * sh + ky) * w + ox * sw + kx) * nw;
                for (size_t i = 0; i < nw; i++) o[i] |= px[i];
            }
        }
    }
}

/* Largest channel count whose one-pixel scratch the kernels keep on the stack; wider maps use the reference. */
#define BNN_WINDOW_MAX_WORDS 256

/* The word-level window and max-pool are the same on every target (they only copy, OR and shift words):
 * each optimized kernel file defines its _opt entry points as exactly these bodies. */
#define BNN_DEFINE_WORD_KERNELS_OPT                                                                            \
    void bnn_window_bits_opt(const bnn_window_params *p, const uint64_t *in, uint64_t *out, size_t row_begin,  \
                             size_t row_end) {                                                                 \
        uint64_t ones[BNN_WINDOW_MAX_WORDS];                                                                   \
        if (bnn_words(p->c) > BNN_WINDOW_MAX_WORDS) { /* > 16k channels: stay correct via the reference */     \
            bnn_window_bits_ref(p, in, out, row_begin, row_end);                                               \
            return;                                                                                            \
        }                                                                                                      \
        bnn_window_bits_words(p, in, out, row_begin, row_end, ones);                                           \
    }                                                                                                          \
    void bnn_maxpool_bits_opt(const bnn_maxpool_params *p, const uint64_t *in, uint64_t *out, size_t row_begin, \
                              size_t row_end) {                                                                \
        bnn_maxpool_bits_words(p, in, out, row_begin, row_end);                                                \
    }                                                                                                          \
    void bnn_window_int_opt(const bnn_window_params *p, const int16_t *in, int16_t *out, size_t row_begin,     \
                            size_t row_end) {                                                                  \
        bnn_window_int_rows(p, in, out, row_begin, row_end);                                                   \
    }

#endif /* BNN_WINDOW_WORDS_H */
