/* The fused binary convolution of the optimized path: portable C around the kernel family's matrix kernel
 * (bnn_bgemm_opt). Contract: bnn_kernels.h; checked against bnn_conv_binary_ref (tests/kernel_check.c).
 *
 * Binary convolution, no im2col matrix (Larq Compute Engine's indirect BGEMM, daBNN's direct 3x3 idea): the
 * receptive field of output pixel (oy, ox) is `steps` 64-bit words at fixed offsets off[t] from the pixel's
 * base position in a staged map, and the bgemm reads them in place. The map is staged once per call, for
 * the rows the call reads, in the caller's per-thread scratch:
 *  - NONE: c % 64 == 0 without padding: the input map itself (words(c) words per pixel);
 *  - PAD:  c % 64 == 0 with padding: those rows copied with pad pixels around them;
 *  - FOLD: c % 64 != 0 (narrow layers, e.g. the demo net's 16-32 channels): position (y, ox) holds the kw
 *    pixels ox*sw + kx of row y packed densely, kw*c bits in words(kw*c) words. A 3x3x16 field is then 3
 *    words (2.25 words of information), where one word per pixel would be 9 words, 75% padding.
 * The weights are rearranged at load time into the same word order (the steps). Thresholds are applied in
 * the bgemm's output stage; a following 2x2 max-pool runs the two conv rows of an output row in one bgemm
 * call and ORs their 2x2 windows word by word, so the unpooled map is never stored. */
#include <stdlib.h>
#include <string.h>

#include "bnn_kernels.h"
#include "window_words.h"

#define ALIGN_UP(n, a) (((n) + (a) - 1) / (a) * (a))

/* nbits (<= 64) bits of row starting at bit pos, as one word (bits past nbits zero). */
static uint64_t bits_at(const uint64_t *row, size_t pos, size_t nbits) {
    const size_t i = pos / 64, sh = pos % 64;
    uint64_t v = row[i] >> sh;
    if (sh && sh + nbits > 64) v |= row[i + 1] << (64 - sh);
    return nbits == 64 ? v : v & (((uint64_t)1 << nbits) - 1);
}

/* Where step t's word comes from in a standard weight row (bit position, bit count). */
typedef struct {
    size_t pos, nbits;
} step_src;

/* The staging and the steps of a plan; 0, or -1 when an offset would not fit 32 bits. */
static int layout(bnn_conv_plan *cp, step_src **src) {
    const bnn_window_params *v = &cp->p.win;
    const size_t c = v->c, hs = (v->oh - 1) * v->sh + v->kh, wd = (v->ow - 1) * v->sw + v->kw;
    size_t steps;
    if (c % 64 == 0) { /* direct: whole words per pixel */
        const int in_place = v->pad_t == 0 && v->pad_l == 0 && hs <= v->h && wd <= v->w;
        cp->staging = in_place ? BNN_STAGE_NONE : BNN_STAGE_PAD;
        cp->pos_words = c / 64, cp->row_pos = in_place ? v->w : wd, cp->pix_step = v->sw;
        steps = v->kh * v->kw * cp->pos_words;
    } else { /* folded: kw pixels per position */
        cp->staging = BNN_STAGE_FOLD;
        cp->pos_words = bnn_words(v->kw * c), cp->row_pos = v->ow, cp->pix_step = 1;
        steps = v->kh * cp->pos_words;
    }
    if ((uint64_t)v->kh * cp->row_pos * cp->pos_words > UINT32_MAX) return -1;
    uint32_t *off = malloc(steps * sizeof *off);
    *src = malloc(steps * sizeof **src);
    if (!off || !*src) {
        free(off);
        return -1;
    }
    for (size_t t = 0; t < steps; t++) {
        if (cp->staging == BNN_STAGE_FOLD) {
            const size_t ky = t / cp->pos_words, i = t % cp->pos_words, seg = v->kw * c;
            off[t] = (uint32_t)(ky * cp->row_pos * cp->pos_words + i);
            (*src)[t] = (step_src){ky * seg + 64 * i, seg - 64 * i < 64 ? seg - 64 * i : 64};
        } else {
            const size_t px = t / cp->pos_words, i = t % cp->pos_words, ky = px / v->kw, kx = px % v->kw;
            off[t] = (uint32_t)((ky * cp->row_pos + kx) * cp->pos_words + i);
            (*src)[t] = (step_src){px * c + 64 * i, 64};
        }
    }
    cp->g.steps = steps;
    cp->g.off = off;
    return 0;
}

int bnn_conv_plan_init(bnn_conv_plan *cp, const bnn_conv_params *p, const uint64_t *w) {
    memset(cp, 0, sizeof *cp);
    cp->p = *p;
    const bnn_window_params *v = &p->win;
    const size_t k = v->kh * v->kw * v->c, rw = bnn_words(k), mh = p->mh;
    step_src *src = NULL;
    if ((p->pool != 1 && (p->pool != 2 || !p->thresholds)) || bnn_words(v->c) > BNN_WINDOW_MAX_WORDS ||
        layout(cp, &src))
        return -1;
    const size_t steps = cp->g.steps, ww = bnn_bgemm_weight_words_opt(mh, steps), tn = ALIGN_UP(mh, 64);
    const size_t blocks = p->class_rows ? p->classes : 1;
    uint64_t *ws = malloc(mh * steps * sizeof *ws);
    cp->mem = aligned_alloc(64, ALIGN_UP(ww * 8 + blocks * tn * 4, 64));
    if (!ws || !cp->mem) {
        free(ws), free(src);
        bnn_conv_plan_free(cp);
        return -1;
    }
    for (size_t j = 0; j < mh; j++)
        for (size_t t = 0; t < steps; t++) ws[j * steps + t] = bits_at(w + j * rw, src[t].pos, src[t].nbits);
    bnn_bgemm_prepare_opt(mh, steps, ws, cp->mem);
    free(ws), free(src);
    int32_t *tpop = (int32_t *)((uint64_t *)cp->mem + ww);
    for (size_t b = 0; b < blocks; b++) /* per threshold block (pad class), tn entries */
        for (size_t j = 0; j < tn; j++) { /* popcount <= k - threshold  <=>  agreement >= threshold */
            int64_t t = j < mh && p->thresholds ? (int64_t)k - p->thresholds[b * mh + j] : -1;
            tpop[b * tn + j] = (int32_t)(t < -1 ? -1 : t > (int64_t)k ? (int64_t)k : t);
        }
    cp->g = (bnn_bgemm){mh, k, steps, cp->g.off, cp->mem, p->thresholds ? tpop : NULL};
    return 0;
}

void bnn_conv_plan_free(bnn_conv_plan *cp) {
    free((void *)cp->g.off);
    free(cp->mem);
    cp->g.off = NULL, cp->mem = NULL;
}

/* Scratch parts: the staged map (all rows any call may read), the pooled conv rows, the row pointers. */
static size_t staged_words(const bnn_conv_plan *cp) {
    const bnn_window_params *v = &cp->p.win;
    return cp->staging == BNN_STAGE_NONE ? 0 : ((v->oh - 1) * v->sh + v->kh) * cp->row_pos * cp->pos_words;
}
static size_t pooled_words(const bnn_conv_plan *cp) {
    return cp->p.pool == 2 ? 4 * cp->p.out_w * bnn_words(cp->p.mh) : 0;
}

size_t bnn_conv_scratch_bytes(const bnn_conv_plan *cp) {
    return ALIGN_UP(staged_words(cp) * 8, 64) + ALIGN_UP(pooled_words(cp) * 8, 64) +
           ALIGN_UP(2 * cp->p.win.ow * sizeof(void *), 64);
}

/* A pixel of c bits of the pad value (whole words: c % 64 == 0 here, or one position's worth for FOLD). */
static void stage_pad_row(const bnn_conv_plan *cp, const uint64_t *in, size_t y, uint64_t *dst) {
    const bnn_window_params *v = &cp->p.win;
    const size_t cw = cp->pos_words, n = cp->row_pos;
    const uint64_t pad = v->pad_value ? ~(uint64_t)0 : 0;
    const long iy = bnn_src_coord(0, y, 1, v->pad_t, v->h);
    const size_t x0 = v->pad_l < n ? v->pad_l : n, x1 = v->pad_l + v->w < n ? v->pad_l + v->w : n;
    if (iy < 0 || x0 >= x1) {
        for (size_t i = 0; i < n * cw; i++) dst[i] = pad;
        return;
    }
    for (size_t i = 0; i < x0 * cw; i++) dst[i] = pad;
    memcpy(dst + x0 * cw, in + (size_t)iy * v->w * cw, (x1 - x0) * cw * sizeof(uint64_t));
    for (size_t i = x1 * cw; i < n * cw; i++) dst[i] = pad;
}

static void stage_fold_row(const bnn_conv_plan *cp, const uint64_t *in, size_t y, uint64_t *dst, uint64_t *ones) {
    const bnn_window_params *v = &cp->p.win;
    const size_t c = v->c, cw = bnn_words(c), pw = cp->pos_words, kw = v->kw, sw = v->sw, w = v->w;
    const long iy = bnn_src_coord(0, y, 1, v->pad_t, v->h);
    const uint64_t *row = iy < 0 ? NULL : in + (size_t)iy * w * cw;
    const uint64_t pad = v->pad_value ? ones[0] : 0;
    if (pw == 1) { /* kw*c <= 64 (and c < 64): one word per position, shifts only */
        for (size_t ox = 0; ox < v->ow; ox++) {
            uint64_t word = 0;
            for (size_t kx = 0; kx < kw; kx++) {
                const long ix = bnn_src_coord(ox, kx, sw, v->pad_l, w);
                word |= (row && ix >= 0 ? row[ix] : pad) << (kx * c);
            }
            dst[ox] = word;
        }
        return;
    }
    for (size_t ox = 0; ox < v->ow; ox++) {
        uint64_t *d = dst + ox * pw;
        memset(d, 0, pw * sizeof(uint64_t));
        for (size_t kx = 0; kx < kw; kx++) {
            const long ix = bnn_src_coord(ox, kx, sw, v->pad_l, w);
            if (row && ix >= 0)
                bnn_append_bits(d, kx * c, row + (size_t)ix * cw, c);
            else if (v->pad_value)
                bnn_append_bits(d, kx * c, ones, c);
        }
    }
}

/* The first word of conv output pixel (oy, ox)'s receptive field; staged rows start at staged row y0. */
static const uint64_t *pixel_base(const bnn_conv_plan *cp, const uint64_t *in, const uint64_t *stage, size_t y0,
                                  size_t oy, size_t ox) {
    const size_t y = oy * cp->p.win.sh;
    if (cp->staging == BNN_STAGE_NONE) return in + (y * cp->row_pos + ox * cp->pix_step) * cp->pos_words;
    return stage + ((y - y0) * cp->row_pos + ox * cp->pix_step) * cp->pos_words;
}

/* out[px] = OR of the 2x2 window of the two conv rows in rows (row 0: pixels [0, n2), row 1: [n2, 2*n2)). */
static void pool_rows(const uint64_t *rows, size_t out_w, size_t ow_words, uint64_t *out) {
    const size_t n2 = 2 * out_w;
    for (size_t px = 0; px < out_w; px++) {
        const uint64_t *a = rows + 2 * px * ow_words, *b = rows + (n2 + 2 * px) * ow_words;
        for (size_t i = 0; i < ow_words; i++) out[px * ow_words + i] = a[i] | a[ow_words + i] | b[i] | b[ow_words + i];
    }
}

/* Conv row oy's pixels [x0, x0 + n) (receptive fields xr[0..n)) into bits at out (words(mh) per pixel) or
 * accumulators: one bgemm call, or with pad classes one per run of pixels of one class, each with its block
 * of popcount limits. */
static void conv_row(const bnn_conv_plan *cp, const uint64_t *const *xr, size_t oy, size_t x0, size_t n, void *out) {
    const size_t mh = cp->p.mh, mw = bnn_words(mh), tn = ALIGN_UP(mh, 64);
    if (!cp->g.tpop) {
        bnn_bgemm_opt(&cp->g, xr, n, NULL, 0, out, mh, 0, mh);
        return;
    }
    for (size_t a = 0, b; a < n; a = b) {
        const size_t block = bnn_conv_block(&cp->p, oy, x0 + a);
        for (b = a + 1; b < n && bnn_conv_block(&cp->p, oy, x0 + b) == block;) b++;
        bnn_bgemm g = cp->g;
        g.tpop += block * tn;
        bnn_bgemm_opt(&g, xr + a, b - a, (uint64_t *)out + a * mw, mw, NULL, 0, 0, mh);
    }
}

void bnn_conv_binary_opt(const bnn_conv_plan *cp, const uint64_t *in, void *out, size_t row_begin, size_t row_end,
                         void *scratch) {
    if (row_begin >= row_end) return;
    const bnn_window_params *v = &cp->p.win;
    const size_t pool = cp->p.pool, out_w = cp->p.out_w, mh = cp->p.mh, mw = bnn_words(mh);
    uint64_t *stage = scratch;
    uint64_t *pooled = (uint64_t *)((unsigned char *)scratch + ALIGN_UP(staged_words(cp) * 8, 64));
    const uint64_t **xr = (const uint64_t **)(void *)((unsigned char *)pooled + ALIGN_UP(pooled_words(cp) * 8, 64));
    const size_t y0 = row_begin * pool * v->sh, y1 = (row_end * pool - 1) * v->sh + v->kh;
    if (cp->staging != BNN_STAGE_NONE) {
        uint64_t ones[BNN_WINDOW_MAX_WORDS];
        bnn_fill_ones(ones, v->c); /* words(c) <= BNN_WINDOW_MAX_WORDS (bnn_conv_plan_init) */
        const size_t row_words = cp->row_pos * cp->pos_words;
        for (size_t y = y0; y < y1; y++) {
            if (cp->staging == BNN_STAGE_PAD)
                stage_pad_row(cp, in, y, stage + (y - y0) * row_words);
            else
                stage_fold_row(cp, in, y, stage + (y - y0) * row_words, ones);
        }
    }
    for (size_t r = row_begin; r < row_end; r++) {
        if (pool == 1) {
            for (size_t ox = 0; ox < v->ow; ox++) xr[ox] = pixel_base(cp, in, stage, y0, r, ox);
            conv_row(cp, xr, r, 0, v->ow,
                     cp->g.tpop ? (void *)((uint64_t *)out + r * out_w * mw) : (void *)((int32_t *)out + r * out_w * mh));
            continue;
        }
        for (size_t dy = 0; dy < 2; dy++) /* the two conv rows the pool reads, 2 * out_w pixels each */
            for (size_t ox = 0; ox < 2 * out_w; ox++) xr[dy * 2 * out_w + ox] = pixel_base(cp, in, stage, y0, 2 * r + dy, ox);
        if (cp->p.class_rows) { /* pad classes: each row's runs */
            for (size_t dy = 0; dy < 2; dy++)
                conv_row(cp, xr + dy * 2 * out_w, 2 * r + dy, 0, 2 * out_w, pooled + dy * 2 * out_w * mw);
        } else { /* both rows in one call */
            bnn_bgemm_opt(&cp->g, xr, 4 * out_w, pooled, mw, NULL, 0, 0, mh);
        }
        pool_rows(pooled, out_w, mw, (uint64_t *)out + r * out_w * mw);
    }
}
