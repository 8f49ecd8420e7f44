/* Reference kernels: portable C11, written to be obviously correct rather than fast.
 * Every optimized kernel (kernels_x86.c, kernels_neon.c, kernels_armv6.c) is tested against these.
 * Conventions: bnn_kernels.h (bit k of a row at bit k%64 of word k/64, padding bits zero).
 * Each kernel first copies its parameters into locals: the outputs are uint64_t, which on LP64 is the same
 * type as the size_t fields, so reading through p would make the compiler reload them after every store. */
#include "bnn_kernels.h"

#include <string.h>

static int get_bit(const uint64_t *row, size_t i) { return (int)((row[i / 64] >> (i % 64)) & 1u); }

static void set_bit(uint64_t *row, size_t i) { row[i / 64] |= (uint64_t)1 << (i % 64); }

static unsigned popcount64(uint64_t v) {
    unsigned n = 0;
    while (v) { /* clears the lowest set bit: portable, no builtin needed */
        v &= v - 1;
        n++;
    }
    return n;
}

void bnn_mvau_binary_ref(const bnn_mvau_params *p, const uint64_t *x, const uint64_t *w, uint64_t *out_bits,
                         int32_t *out_acc, size_t row_begin, size_t row_end) {
    const size_t k = p->k, mh = p->mh, kw = bnn_words(k), ow = bnn_words(mh);
    const int32_t *thresholds = p->thresholds;
    for (size_t r = row_begin; r < row_end; r++) {
        const uint64_t *xr = x + r * kw;
        if (thresholds) memset(out_bits + r * ow, 0, ow * sizeof(uint64_t));
        for (size_t j = 0; j < mh; j++) {
            unsigned diff = 0;
            for (size_t i = 0; i < kw; i++) diff += popcount64(xr[i] ^ w[j * kw + i]);
            int32_t agree = (int32_t)k - (int32_t)diff;
            if (thresholds) {
                if (agree >= thresholds[j]) set_bit(out_bits + r * ow, j);
            } else {
                out_acc[r * mh + j] = agree;
            }
        }
    }
}

void bnn_mvau_integer_ref(const bnn_mvau_params *p, const int16_t *x, const int8_t *w, uint64_t *out_bits,
                          int32_t *out_acc, size_t row_begin, size_t row_end) {
    const size_t k = p->k, mh = p->mh, ow = bnn_words(mh);
    const int32_t *thresholds = p->thresholds;
    for (size_t r = row_begin; r < row_end; r++) {
        if (thresholds) memset(out_bits + r * ow, 0, ow * sizeof(uint64_t));
        for (size_t j = 0; j < mh; j++) {
            int32_t acc = 0;
            for (size_t i = 0; i < k; i++) acc += (int32_t)x[r * k + i] * (int32_t)w[j * k + i];
            if (thresholds) {
                if (acc >= thresholds[j]) set_bit(out_bits + r * ow, j);
            } else {
                out_acc[r * mh + j] = acc;
            }
        }
    }
}

/* Whether input pixel (iy, ix) = (oy*sh + ky - pad_t, ox*sw + kx - pad_l) lies inside the map; sets it. */
static int source_pixel(size_t o, size_t kk, size_t s, size_t pad, size_t n, size_t *i) {
    size_t pos = o * s + kk;
    if (pos < pad || pos - pad >= n) return 0;
    *i = pos - pad;
    return 1;
}

void bnn_window_bits_ref(const bnn_window_params *p, const uint64_t *in, uint64_t *out, size_t row_begin,
                         size_t row_end) {
    const size_t h = p->h, w = p->w, c = p->c, kh = p->kh, kw = p->kw, sh = p->sh, sw = p->sw;
    const size_t pad_t = p->pad_t, pad_l = p->pad_l, ow = p->ow;
    const int pad_value = p->pad_value != 0;
    const size_t cw = bnn_words(c), rw = bnn_words(kh * kw * c);
    for (size_t r = row_begin; r < row_end; r++) {
        size_t oy = r / ow, ox = r % ow, bit = 0;
        uint64_t *orow = out + r * rw;
        memset(orow, 0, rw * sizeof(uint64_t));
        for (size_t ky = 0; ky < kh; ky++) {
            for (size_t kx = 0; kx < kw; kx++) {
                size_t iy = 0, ix = 0;
                int inside = source_pixel(oy, ky, sh, pad_t, h, &iy) && source_pixel(ox, kx, sw, pad_l, w, &ix);
                const uint64_t *px = inside ? in + (iy * w + ix) * cw : NULL;
                for (size_t ch = 0; ch < c; ch++, bit++) {
                    if (inside ? get_bit(px, ch) : pad_value) set_bit(orow, bit);
                }
            }
        }
    }
}

void bnn_window_int_ref(const bnn_window_params *p, const int16_t *in, int16_t *out, size_t row_begin,
                        size_t row_end) {
    const size_t h = p->h, w = p->w, c = p->c, kh = p->kh, kw = p->kw, sh = p->sh, sw = p->sw;
    const size_t pad_t = p->pad_t, pad_l = p->pad_l, ow = p->ow;
    const int16_t pad_value = (int16_t)p->pad_value;
    const size_t rl = kh * kw * c;
    for (size_t r = row_begin; r < row_end; r++) {
        size_t oy = r / ow, ox = r % ow;
        int16_t *orow = out + r * rl;
        for (size_t ky = 0; ky < kh; ky++) {
            for (size_t kx = 0; kx < kw; kx++) {
                size_t iy = 0, ix = 0;
                int inside = source_pixel(oy, ky, sh, pad_t, h, &iy) && source_pixel(ox, kx, sw, pad_l, w, &ix);
                for (size_t ch = 0; ch < c; ch++) *orow++ = inside ? in[(iy * w + ix) * c + ch] : pad_value;
            }
        }
    }
}

void bnn_maxpool_bits_ref(const bnn_maxpool_params *p, const uint64_t *in, uint64_t *out, size_t row_begin,
                          size_t row_end) {
    const size_t w = p->w, nw = p->words, kh = p->kh, kw = p->kw, sh = p->sh, sw = p->sw, ow = p->ow;
    for (size_t r = row_begin; r < row_end; r++) {
        size_t oy = r / ow, ox = r % ow;
        for (size_t i = 0; i < nw; i++) {
            uint64_t v = 0;
            for (size_t ky = 0; ky < kh; ky++)
                for (size_t kx = 0; kx < kw; kx++) v |= in[((oy * sh + ky) * w + ox * sw + kx) * nw + i];
            out[r * nw + i] = v;
        }
    }
}

void bnn_maxpool_int_ref(const bnn_maxpool_params *p, const int16_t *in, int16_t *out, size_t row_begin,
                         size_t row_end) {
    const size_t w = p->w, c = p->words, kh = p->kh, kw = p->kw, sh = p->sh, sw = p->sw, ow = p->ow;
    for (size_t r = row_begin; r < row_end; r++) {
        size_t oy = r / ow, ox = r % ow;
        for (size_t i = 0; i < c; i++) {
            int16_t v = INT16_MIN;
            for (size_t ky = 0; ky < kh; ky++)
                for (size_t kx = 0; kx < kw; kx++) {
                    const int16_t x = in[((oy * sh + ky) * w + ox * sw + kx) * c + i];
                    v = x > v ? x : v;
                }
            out[r * c + i] = v;
        }
    }
}

void bnn_pack_planes_ref(const int16_t *x, size_t rows, size_t k, int32_t lo, size_t planes, uint64_t *out,
                         int32_t *pops) {
    const size_t kw = bnn_words(k);
    for (size_t r = 0; r < rows; r++)
        for (size_t b = 0; b < planes; b++) {
            uint64_t *row = out + (b * rows + r) * kw;
            int32_t pop = 0;
            memset(row, 0, kw * sizeof(uint64_t));
            for (size_t i = 0; i < k; i++) {
                const uint64_t bit = ((uint32_t)(x[r * k + i] - lo) >> b) & 1u;
                row[i / 64] |= bit << (i % 64);
                pop += (int32_t)bit;
            }
            pops[r * planes + b] = pop;
        }
}

void bnn_multi_threshold_ref(const int32_t *acc, size_t mh, const int32_t *t, size_t levels, int32_t offset,
                             int16_t *out) {
    for (size_t j = 0; j < mh; j++) {
        int32_t q = offset;
        for (size_t l = 0; l < levels; l++) q += acc[j] >= t[j * levels + l];
        out[j] = (int16_t)q;
    }
}

void bnn_flatten_bits_ref(const bnn_flatten_params *p, const uint64_t *in, uint64_t *out) {
    const size_t pixels = p->pixels, c = p->c, cw = bnn_words(c);
    memset(out, 0, bnn_words(pixels * c) * sizeof(uint64_t));
    for (size_t px = 0; px < pixels; px++)
        for (size_t ch = 0; ch < c; ch++)
            if (get_bit(in + px * cw, ch)) set_bit(out, px * c + ch);
}

/* One conv output pixel (oy, ox), channel j: the number of agreeing bits over its receptive field, read bit
 * by bit from the input map (pad_value outside) and from weight row j in (ky, kx, c) order. */
static int32_t conv_agree(const bnn_window_params *p, const uint64_t *in, const uint64_t *wrow, size_t oy,
                          size_t ox) {
    const size_t c = p->c, cw = bnn_words(c);
    int32_t agree = 0;
    size_t bit = 0;
    for (size_t ky = 0; ky < p->kh; ky++) {
        for (size_t kx = 0; kx < p->kw; kx++) {
            size_t iy = 0, ix = 0;
            int inside = source_pixel(oy, ky, p->sh, p->pad_t, p->h, &iy) &&
                         source_pixel(ox, kx, p->sw, p->pad_l, p->w, &ix);
            for (size_t ch = 0; ch < c; ch++, bit++) {
                int x = inside ? get_bit(in + (iy * p->w + ix) * cw, ch) : p->pad_value != 0;
                agree += x == get_bit(wrow, bit);
            }
        }
    }
    return agree;
}

void bnn_conv_binary_ref(const bnn_conv_params *p, const uint64_t *in, const uint64_t *w, void *out,
                         size_t row_begin, size_t row_end) {
    const bnn_window_params win = p->win;
    const size_t mh = p->mh, pool = p->pool, out_w = p->out_w, ow = bnn_words(mh);
    const size_t rw = bnn_words(win.kh * win.kw * win.c);
    const int32_t *thresholds = p->thresholds;
    for (size_t r = row_begin; r < row_end; r++) {
        for (size_t ox = 0; ox < out_w; ox++) {
            const size_t px = r * out_w + ox;
            if (thresholds) memset((uint64_t *)out + px * ow, 0, ow * sizeof(uint64_t));
            for (size_t j = 0; j < mh; j++) {
                int bit = 0; /* the OR (max) of the pool window's threshold bits */
                for (size_t dy = 0; dy < pool; dy++) {
                    for (size_t dx = 0; dx < pool; dx++) {
                        const size_t oy = r * pool + dy, cx = ox * pool + dx;
                        int32_t a = conv_agree(&win, in, w + j * rw, oy, cx);
                        if (thresholds)
                            bit |= a >= thresholds[bnn_conv_block(p, oy, cx) * mh + j];
                        else
                            ((int32_t *)out)[px * mh + j] = a; /* pool == 1 without thresholds */
                    }
                }
                if (bit) set_bit((uint64_t *)out + px * ow, j);
            }
        }
    }
}
