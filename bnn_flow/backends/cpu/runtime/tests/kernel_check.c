/* kernel_check: every optimized kernel (_opt) against its reference (_ref) over a grid of shapes.
 *
 * Build: one optimized kernel file + kernels_ref.c + conv.c (the fused convolution) + this file, e.g.
 *   cc -O2 -Iinclude -Isrc tests/kernel_check.c src/kernels_ref.c src/conv.c \
 *      src/kernels_neon.c -o kernel_check   (in bnn_flow/backends/cpu/runtime/)
 * Run: ./kernel_check [--quick]   -> one summary line; exit 0 when every case is bit-exact, 1 otherwise.
 *      ./kernel_check --bench     -> also times _ref and _opt on typical layer shapes (meaningful natively,
 *                                    e.g. on a Pi; not under qemu, which emulates instructions).
 *
 * Each case runs _ref and _opt on the same random inputs (fixed seed, so a failure reproduces) into output
 * buffers pre-filled with the same sentinel, then compares the whole buffers: the outputs of the rows in
 * [row_begin, row_end) must be identical and every other row untouched. The grid covers K not a multiple
 * of 64 (and multiples), odd MH and row counts, partial row ranges, padding with 0 and 1 bits, thresholds
 * at the edges of the reachable range and exactly at / next to actual accumulators, and all-0 / all-1 data. */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bnn_kernels.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) { /* xorshift64*: deterministic, the same on every target */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}
static long rnd_in(long lo, long hi) { return lo + (long)(rnd() % (uint64_t)(hi - lo + 1)); }

static size_t n_cases, n_fail;
static int quick;

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "kernel_check: out of memory\n");
        exit(2);
    }
    return p;
}

static void report(int ok, const char *what) {
    n_cases++;
    if (!ok && n_fail++ < 20) fprintf(stderr, "MISMATCH %s\n", what);
}

/* Data modes: 0 random, 1 all zero, 2 all one, 3 x rows equal to weight rows (max popcount agreement). */
static void fill_bits(uint64_t *rows, size_t n, size_t k, int mode) {
    const size_t kw = bnn_words(k);
    for (size_t r = 0; r < n; r++) {
        for (size_t i = 0; i < kw; i++) rows[r * kw + i] = mode == 1 ? 0 : mode == 2 ? ~0ull : rnd();
        if (k % 64) rows[r * kw + kw - 1] &= (1ull << (k % 64)) - 1; /* padding bits are 0 (contract) */
    }
}

/* Thresholds: 0 random in [-1, k+2]; 1 the extremes; 2 = acc of row r0 plus -1/0/+1 (exact edges). */
static void fill_thresholds(int32_t *t, size_t mh, long lo, long hi, int mode, const int32_t *acc_r0) {
    for (size_t j = 0; j < mh; j++) {
        if (mode == 0) t[j] = (int32_t)rnd_in(lo - 1, hi + 2);
        else if (mode == 1) t[j] = (int32_t)((j % 4 == 0) ? lo : (j % 4 == 1) ? hi + 1 : (j % 4 == 2) ? hi : lo + 1);
        else t[j] = acc_r0[j] + (int32_t)(j % 3) - 1;
    }
}

static void check_mvau_binary(size_t rows, size_t k, size_t mh, size_t rb, size_t re, int data, int thr_mode) {
    const size_t kw = bnn_words(k), ow = bnn_words(mh);
    uint64_t *x = xmalloc(rows * kw * 8), *w = xmalloc(mh * kw * 8);
    uint64_t *b_ref = xmalloc(rows * ow * 8), *b_opt = xmalloc(rows * ow * 8);
    int32_t *a_ref = xmalloc(rows * mh * 4), *a_opt = xmalloc(rows * mh * 4), *thresholds = xmalloc(mh * 4);
    const bnn_mvau_params acc_out = {.mh = mh, .k = k, .thresholds = NULL};
    const bnn_mvau_params bits_out = {.mh = mh, .k = k, .thresholds = thresholds};
    fill_bits(w, mh, k, data == 3 ? 0 : data);
    fill_bits(x, rows, k, data == 3 ? 0 : data);
    if (data == 3)
        for (size_t r = 0; r < rows; r++) memcpy(x + r * kw, w + (r % mh) * kw, kw * 8);
    memset(a_ref, 0x5A, rows * mh * 4);
    memset(a_opt, 0x5A, rows * mh * 4);
    bnn_mvau_binary_ref(&acc_out, x, w, NULL, a_ref, rb, re);
    bnn_mvau_binary_opt(&acc_out, x, w, NULL, a_opt, rb, re);
    char what[160];
    snprintf(what, sizeof what, "mvau_binary acc rows=%zu [%zu,%zu) k=%zu mh=%zu data=%d", rows, rb, re, k, mh, data);
    report(memcmp(a_ref, a_opt, rows * mh * 4) == 0, what);
    fill_thresholds(thresholds, mh, 0, (long)k, thr_mode, a_ref + rb * mh);
    memset(b_ref, 0xA5, rows * ow * 8);
    memset(b_opt, 0xA5, rows * ow * 8);
    bnn_mvau_binary_ref(&bits_out, x, w, b_ref, NULL, rb, re);
    bnn_mvau_binary_opt(&bits_out, x, w, b_opt, NULL, rb, re);
    snprintf(what, sizeof what, "mvau_binary bits rows=%zu [%zu,%zu) k=%zu mh=%zu data=%d thr=%d", rows, rb, re, k,
             mh, data, thr_mode);
    report(memcmp(b_ref, b_opt, rows * ow * 8) == 0, what);
    free(x), free(w), free(b_ref), free(b_opt), free(a_ref), free(a_opt), free(thresholds);
}

/* Input modes: 0 uint8 pixels, 1 int8, 2 full int16 (k small enough that int32 cannot overflow), 3 extremes. */
static void check_mvau_integer(size_t rows, size_t k, size_t mh, size_t rb, size_t re, int data, int thr_mode) {
    const size_t ow = bnn_words(mh);
    int16_t *x = xmalloc(rows * k * 2);
    int8_t *w = xmalloc(mh * k);
    uint64_t *b_ref = xmalloc(rows * ow * 8), *b_opt = xmalloc(rows * ow * 8);
    int32_t *a_ref = xmalloc(rows * mh * 4), *a_opt = xmalloc(rows * mh * 4), *thresholds = xmalloc(mh * 4);
    const bnn_mvau_params acc_out = {.mh = mh, .k = k, .thresholds = NULL};
    const bnn_mvau_params bits_out = {.mh = mh, .k = k, .thresholds = thresholds};
    for (size_t i = 0; i < rows * k; i++) {
        x[i] = (int16_t)(data == 0 ? rnd_in(0, 255) : data == 1 ? rnd_in(-128, 127) : data == 2 ? rnd_in(-32768, 32767)
                                                                                            : ((i & 1) ? 32767 : -32768));
    }
    for (size_t i = 0; i < mh * k; i++) w[i] = (int8_t)(data == 3 ? ((i & 2) ? 127 : -128) : rnd_in(-128, 127));
    memset(a_ref, 0x5A, rows * mh * 4);
    memset(a_opt, 0x5A, rows * mh * 4);
    bnn_mvau_integer_ref(&acc_out, x, w, NULL, a_ref, rb, re);
    bnn_mvau_integer_opt(&acc_out, x, w, NULL, a_opt, rb, re);
    char what[160];
    snprintf(what, sizeof what, "mvau_integer acc rows=%zu [%zu,%zu) k=%zu mh=%zu data=%d", rows, rb, re, k, mh, data);
    report(memcmp(a_ref, a_opt, rows * mh * 4) == 0, what);
    const long bound = 32768L * 128L * (long)k;
    const long lim = bound < 2147483646L ? bound : 2147483646L; /* thresholds stay int32 */
    fill_thresholds(thresholds, mh, thr_mode == 1 ? -lim : -2000, thr_mode == 1 ? lim : 2000, thr_mode, a_ref + rb * mh);
    memset(b_ref, 0xA5, rows * ow * 8);
    memset(b_opt, 0xA5, rows * ow * 8);
    bnn_mvau_integer_ref(&bits_out, x, w, b_ref, NULL, rb, re);
    bnn_mvau_integer_opt(&bits_out, x, w, b_opt, NULL, rb, re);
    snprintf(what, sizeof what, "mvau_integer bits rows=%zu [%zu,%zu) k=%zu mh=%zu data=%d thr=%d", rows, rb, re, k,
             mh, data, thr_mode);
    report(memcmp(b_ref, b_opt, rows * ow * 8) == 0, what);
    /* the input range of each data mode (the prepared layout may depend on it) */
    const int32_t x_lo = data == 0 ? 0 : data == 1 ? -128 : -32768, x_hi = data == 0 ? 255 : data == 1 ? 127 : 32767;
    const size_t pb = bnn_mvau_integer_prepared_bytes_opt(mh, k, x_lo, x_hi);
    if (pb) { /* the family's load-time weight layout: the same sums */
        void *prep = xmalloc(pb);
        bnn_mvau_integer_prepare_opt(mh, k, x_lo, x_hi, w, prep);
        const bnn_mvau_params acc_p = {.mh = mh, .k = k, .thresholds = NULL, .prepared = prep};
        const bnn_mvau_params bits_p = {.mh = mh, .k = k, .thresholds = thresholds, .prepared = prep};
        memset(a_opt, 0x5A, rows * mh * 4);
        bnn_mvau_integer_opt(&acc_p, x, NULL, NULL, a_opt, rb, re);
        memset(a_ref, 0x5A, rows * mh * 4);
        bnn_mvau_integer_ref(&acc_out, x, w, NULL, a_ref, rb, re);
        report(memcmp(a_ref, a_opt, rows * mh * 4) == 0, what);
        memset(b_opt, 0xA5, rows * ow * 8);
        bnn_mvau_integer_opt(&bits_p, x, NULL, b_opt, NULL, rb, re);
        report(memcmp(b_ref, b_opt, rows * ow * 8) == 0, what);
        free(prep);
    }
    free(x), free(w), free(b_ref), free(b_opt), free(a_ref), free(a_opt), free(thresholds);
}

static void check_window_bits(size_t h, size_t w, size_t c, size_t kh, size_t kw, size_t s, size_t pad, int pad_bit,
                              int data) {
    if (h + 2 * pad < kh || w + 2 * pad < kw) return;
    const size_t oh = (h + 2 * pad - kh) / s + 1, ow = (w + 2 * pad - kw) / s + 1, rw = bnn_words(kh * kw * c);
    const bnn_window_params p = {.h = h, .w = w, .c = c, .kh = kh, .kw = kw, .sh = s, .sw = s, .pad_t = pad,
                                 .pad_l = pad, .oh = oh, .ow = ow, .pad_value = pad_bit};
    uint64_t *in = xmalloc(h * w * bnn_words(c) * 8);
    uint64_t *o_ref = xmalloc(oh * ow * rw * 8), *o_opt = xmalloc(oh * ow * rw * 8);
    fill_bits(in, h * w, c, data);
    const size_t ranges[3][2] = {{0, oh * ow}, {oh * ow / 3, oh * ow - oh * ow / 4}, {oh * ow - 1, oh * ow}};
    for (int q = 0; q < 3; q++) {
        memset(o_ref, 0xA5, oh * ow * rw * 8);
        memset(o_opt, 0xA5, oh * ow * rw * 8);
        bnn_window_bits_ref(&p, in, o_ref, ranges[q][0], ranges[q][1]);
        bnn_window_bits_opt(&p, in, o_opt, ranges[q][0], ranges[q][1]);
        char what[160];
        snprintf(what, sizeof what, "window_bits h=%zu w=%zu c=%zu k=%zux%zu s=%zu pad=%zu pad_bit=%d rows [%zu,%zu)", h,
                 w, c, kh, kw, s, pad, pad_bit, ranges[q][0], ranges[q][1]);
        report(memcmp(o_ref, o_opt, oh * ow * rw * 8) == 0, what);
    }
    /* the integer window of the same shape (int16 pixels, an int16 pad value) */
    const size_t k = kh * kw * c;
    int16_t *im = xmalloc(h * w * c * 2), *i_ref = xmalloc(oh * ow * k * 2), *i_opt = xmalloc(oh * ow * k * 2);
    for (size_t i = 0; i < h * w * c; i++) im[i] = (int16_t)rnd_in(-32768, 32767);
    bnn_window_params pi = p;
    pi.pad_value = pad_bit ? -32768 : 7;
    for (int q = 0; q < 3; q++) {
        memset(i_ref, 0xA5, oh * ow * k * 2);
        memset(i_opt, 0xA5, oh * ow * k * 2);
        bnn_window_int_ref(&pi, im, i_ref, ranges[q][0], ranges[q][1]);
        bnn_window_int_opt(&pi, im, i_opt, ranges[q][0], ranges[q][1]);
        char what[160];
        snprintf(what, sizeof what, "window_int h=%zu w=%zu c=%zu k=%zux%zu s=%zu pad=%zu rows [%zu,%zu)", h, w, c, kh,
                 kw, s, pad, ranges[q][0], ranges[q][1]);
        report(memcmp(i_ref, i_opt, oh * ow * k * 2) == 0, what);
    }
    free(im), free(i_ref), free(i_opt);
    free(in), free(o_ref), free(o_opt);
}

static void check_maxpool(size_t h, size_t w, size_t nw, size_t k, size_t s) {
    if (h < k || w < k) return;
    const size_t oh = (h - k) / s + 1, ow = (w - k) / s + 1;
    const bnn_maxpool_params p = {.h = h, .w = w, .words = nw, .kh = k, .kw = k, .sh = s, .sw = s, .oh = oh, .ow = ow};
    uint64_t *in = xmalloc(h * w * nw * 8), *o_ref = xmalloc(oh * ow * nw * 8), *o_opt = xmalloc(oh * ow * nw * 8);
    for (size_t i = 0; i < h * w * nw; i++) in[i] = rnd() & rnd() & rnd(); /* sparse: the OR is informative */
    const size_t ranges[2][2] = {{0, oh * ow}, {oh * ow / 2, oh * ow}};
    for (int q = 0; q < 2; q++) {
        memset(o_ref, 0xA5, oh * ow * nw * 8);
        memset(o_opt, 0xA5, oh * ow * nw * 8);
        bnn_maxpool_bits_ref(&p, in, o_ref, ranges[q][0], ranges[q][1]);
        bnn_maxpool_bits_opt(&p, in, o_opt, ranges[q][0], ranges[q][1]);
        char what[128];
        snprintf(what, sizeof what, "maxpool_bits h=%zu w=%zu nw=%zu k=%zu s=%zu rows [%zu,%zu)", h, w, nw, k, s,
                 ranges[q][0], ranges[q][1]);
        report(memcmp(o_ref, o_opt, oh * ow * nw * 8) == 0, what);
    }
    free(in), free(o_ref), free(o_opt);
}

static void check_pack_planes(size_t rows, size_t k, int32_t lo, size_t planes) {
    const size_t kw = bnn_words(k), words = planes * rows * kw;
    int16_t *x = xmalloc(rows * k * sizeof(int16_t));
    uint64_t *o_ref = xmalloc(words * 8), *o_opt = xmalloc(words * 8);
    int32_t *p_ref = xmalloc(rows * planes * 4), *p_opt = xmalloc(rows * planes * 4);
    for (size_t i = 0; i < rows * k; i++) x[i] = (int16_t)(lo + rnd_in(0, (1L << planes) - 1));
    memset(o_opt, 0xA5, words * 8); /* every word is written */
    bnn_pack_planes_ref(x, rows, k, lo, planes, o_ref, p_ref);
    bnn_pack_planes_opt(x, rows, k, lo, planes, o_opt, p_opt);
    char what[128];
    snprintf(what, sizeof what, "pack_planes rows=%zu k=%zu lo=%d planes=%zu", rows, k, (int)lo, planes);
    report(memcmp(o_ref, o_opt, words * 8) == 0 && memcmp(p_ref, p_opt, rows * planes * 4) == 0, what);
    free(x), free(o_ref), free(o_opt), free(p_ref), free(p_opt);
}

/* Pad classes (a zero-padded convolution, .bnn kind 6) on check_conv's layer p: 3 row x 2 column classes, each
 * with its thresholds; the reference against its definition (each conv pixel's agreements `acc` against its
 * class's block, ORed over the pool window), the fused kernel against the reference over row ranges. */
static void check_conv_classes(bnn_conv_params *p, const uint64_t *in, const uint64_t *wt, const int32_t *acc,
                               int thr_mode, const char *what) {
    const size_t oh = p->win.oh, ow = p->win.ow, mh = p->mh, mw = bnn_words(mh), pool = p->pool, n = p->out_h * p->out_w;
    uint8_t *rows = xmalloc(oh), *cols = xmalloc(ow);
    int32_t *thr = xmalloc(6 * mh * 4);
    uint64_t *want = xmalloc(n * mw * 8), *b_ref = xmalloc(n * mw * 8), *b_opt = xmalloc(n * mw * 8);
    for (size_t y = 0; y < oh; y++) rows[y] = (uint8_t)(y % 3);
    for (size_t x = 0; x < ow; x++) cols[x] = (uint8_t)((x + 1) % 2);
    for (size_t b = 0; b < 6; b++)
        fill_thresholds(thr + b * mh, mh, 0, (long)(p->win.kh * p->win.kw * p->win.c), (thr_mode + (int)b) % 3, acc);
    p->thresholds = thr, p->class_rows = rows, p->class_cols = cols, p->classes = 6, p->col_classes = 2;
    memset(want, 0, n * mw * 8);
    for (size_t px = 0; px < n; px++)
        for (size_t j = 0; j < mh; j++)
            for (size_t d = 0; d < pool * pool; d++) {
                const size_t oy = px / p->out_w * pool + d / pool, ox = px % p->out_w * pool + d % pool;
                if (acc[(oy * ow + ox) * mh + j] >= thr[bnn_conv_block(p, oy, ox) * mh + j])
                    want[px * mw + j / 64] |= (uint64_t)1 << (j % 64);
            }
    memset(b_ref, 0xA5, n * mw * 8);
    bnn_conv_binary_ref(p, in, wt, b_ref, 0, p->out_h);
    report(memcmp(b_ref, want, n * mw * 8) == 0, what);
    bnn_conv_plan cp;
    if (bnn_conv_plan_init(&cp, p, wt) == 0) {
        const size_t sb = bnn_conv_scratch_bytes(&cp), out_h = p->out_h;
        void *scratch = aligned_alloc(64, sb ? sb : 64);
        const size_t ranges[2][2] = {{0, out_h}, {out_h / 2, out_h}};
        for (int q = 0; q < 2; q++) {
            memset(b_opt, 0xA5, n * mw * 8);
            memset(b_ref, 0xA5, n * mw * 8);
            bnn_conv_binary_ref(p, in, wt, b_ref, ranges[q][0], ranges[q][1]);
            bnn_conv_binary_opt(&cp, in, b_opt, ranges[q][0], ranges[q][1], scratch);
            report(memcmp(b_ref, b_opt, n * mw * 8) == 0, what);
        }
        free(scratch);
        bnn_conv_plan_free(&cp);
    }
    p->class_rows = p->class_cols = NULL, p->classes = p->col_classes = 0;
    free(rows), free(cols), free(thr), free(want), free(b_ref), free(b_opt);
}

/* A fused binary convolution (conv.c over the family's bgemm) against bnn_conv_binary_ref, and that reference
 * against the unfused chain it replaces (window_ref -> mvau_binary_ref [-> maxpool_ref]). */
static void check_conv(size_t h, size_t w, size_t c, size_t mh, size_t k, size_t s, size_t pad, int pad_bit,
                       size_t pool, int thr_mode, int data) {
    if (h + 2 * pad < k || w + 2 * pad < k) return;
    const size_t oh = (h + 2 * pad - k) / s + 1, ow = (w + 2 * pad - k) / s + 1, kk = k * k * c, rw = bnn_words(kk);
    if (oh < pool || ow < pool) return;
    const size_t out_h = oh / pool, out_w = ow / pool, mw = bnn_words(mh), n = out_h * out_w;
    const bnn_window_params win = {.h = h, .w = w, .c = c, .kh = k, .kw = k, .sh = s, .sw = s, .pad_t = pad,
                                   .pad_l = pad, .oh = oh, .ow = ow, .pad_value = pad_bit};
    uint64_t *in = xmalloc(h * w * bnn_words(c) * 8), *wt = xmalloc(mh * rw * 8), *patches = xmalloc(oh * ow * rw * 8);
    uint64_t *conv = xmalloc(oh * ow * mw * 8), *b_ref = xmalloc(n * mw * 8), *b_opt = xmalloc(n * mw * 8);
    uint64_t *b_chain = xmalloc(n * mw * 8);
    int32_t *acc = xmalloc(oh * ow * mh * 4), *a_opt = xmalloc(oh * ow * mh * 4), *thr = xmalloc(mh * 4);
    fill_bits(in, h * w, c, data);
    fill_bits(wt, mh, kk, data == 3 ? 0 : (data + 1) % 3);
    bnn_conv_params p = {.win = win, .mh = mh, .thresholds = NULL, .pool = 1, .out_h = oh, .out_w = ow};
    bnn_conv_binary_ref(&p, in, wt, acc, 0, oh); /* the agreements: thresholds at the exact edges */
    fill_thresholds(thr, mh, 0, (long)kk, thr_mode, acc);
    char what[200];
    snprintf(what, sizeof what, "conv_binary h=%zu w=%zu c=%zu mh=%zu k=%zu s=%zu pad=%zu pad_bit=%d pool=%zu thr=%d data=%d",
             h, w, c, mh, k, s, pad, pad_bit, pool, thr_mode, data);
    /* the reference twin against the chain of unfused references */
    bnn_window_bits_ref(&win, in, patches, 0, oh * ow);
    const bnn_mvau_params mv = {.mh = mh, .k = kk, .thresholds = thr};
    bnn_mvau_binary_ref(&mv, patches, wt, conv, NULL, 0, oh * ow);
    const bnn_maxpool_params mp = {.h = oh, .w = ow, .words = mw, .kh = 2, .kw = 2, .sh = 2, .sw = 2, .oh = out_h,
                                   .ow = out_w};
    if (pool == 2) bnn_maxpool_bits_ref(&mp, conv, b_chain, 0, n);
    p.thresholds = thr, p.pool = pool, p.out_h = out_h, p.out_w = out_w;
    memset(b_ref, 0xA5, n * mw * 8);
    bnn_conv_binary_ref(&p, in, wt, b_ref, 0, out_h);
    report(memcmp(b_ref, pool == 2 ? b_chain : conv, n * mw * 8) == 0, what);
    bnn_conv_plan cp;
    if (bnn_conv_plan_init(&cp, &p, wt) == 0) {
        const size_t sb = bnn_conv_scratch_bytes(&cp);
        void *scratch = aligned_alloc(64, sb ? sb : 64);
        const size_t ranges[3][2] = {{0, out_h}, {out_h / 3, out_h - out_h / 4}, {out_h - 1, out_h}};
        for (int q = 0; q < (quick ? 1 : 3); q++) {
            memset(b_opt, 0xA5, n * mw * 8);
            memset(b_ref, 0xA5, n * mw * 8);
            bnn_conv_binary_ref(&p, in, wt, b_ref, ranges[q][0], ranges[q][1]);
            bnn_conv_binary_opt(&cp, in, b_opt, ranges[q][0], ranges[q][1], scratch);
            report(memcmp(b_ref, b_opt, n * mw * 8) == 0, what);
        }
        free(scratch);
        bnn_conv_plan_free(&cp);
    }
    if (pad) check_conv_classes(&p, in, wt, acc, thr_mode, what);
    p.thresholds = NULL, p.pool = 1, p.out_h = oh, p.out_w = ow; /* a last layer: int32 agreements out */
    if (bnn_conv_plan_init(&cp, &p, wt) == 0) {
        const size_t sb = bnn_conv_scratch_bytes(&cp);
        void *scratch = aligned_alloc(64, sb ? sb : 64);
        memset(a_opt, 0x5A, oh * ow * mh * 4);
        bnn_conv_binary_opt(&cp, in, a_opt, 0, oh, scratch);
        report(memcmp(acc, a_opt, oh * ow * mh * 4) == 0, what);
        free(scratch);
        bnn_conv_plan_free(&cp);
    }
    free(in), free(wt), free(patches), free(conv), free(b_ref), free(b_opt), free(b_chain), free(acc), free(a_opt),
        free(thr);
}

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static void grid_mvau_binary(void) {
    static const size_t ks[] = {1, 2, 9, 63, 64, 65, 127, 128, 129, 191, 192, 200, 256, 257, 300, 576, 1000, 1152};
    static const size_t mhs[] = {1, 2, 3, 4, 5, 7, 8, 9, 31, 64, 65, 130};
    static const size_t rowss[] = {1, 2, 3, 5};
    for (size_t a = 0; a < LEN(ks); a++)
        for (size_t b = 0; b < LEN(mhs); b++)
            for (size_t c = 0; c < LEN(rowss); c++) {
                const size_t rows = rowss[c];
                check_mvau_binary(rows, ks[a], mhs[b], 0, rows, (int)((a + b) % 4), (int)((a + b + c) % 3));
                if (rows > 1 && !quick) check_mvau_binary(rows, ks[a], mhs[b], 1, rows, 0, (int)(c % 3));
                if (rows > 2) check_mvau_binary(rows, ks[a], mhs[b], 1, rows - 1, 0, 2);
            }
    /* More than FLUSH_STEPS 128-bit steps in one row: the u16 -> u32 widening of the NEON kernel. */
    check_mvau_binary(3, 64 * 4101 + 7, 5, 0, 3, 2, 1);
    check_mvau_binary(2, 64 * 4101 + 7, 5, 0, 2, 0, 2);
}

static void grid_mvau_integer(void) {
    static const size_t ks[] = {1, 3, 7, 8, 9, 15, 16, 17, 27, 48, 75, 147, 784};
    static const size_t mhs[] = {1, 2, 3, 4, 5, 7, 16, 33, 64, 65};
    static const size_t rowss[] = {1, 2, 3, 5, 9};
    for (size_t a = 0; a < LEN(ks); a++)
        for (size_t b = 0; b < LEN(mhs); b++)
            for (size_t c = 0; c < LEN(rowss); c++) {
                const size_t rows = rowss[c];
                const int data = (int)((a + b + c) % 4);
                if (data >= 2 && ks[a] > 400) continue; /* keep |acc| < 2^31 (the contract's int32 range) */
                check_mvau_integer(rows, ks[a], mhs[b], 0, rows, data, (int)((a + c) % 3));
                if (rows > 2) check_mvau_integer(rows, ks[a], mhs[b], 1, rows - 1, 0, 2);
            }
}

static void grid_window_bits(void) {
    static const size_t hs[] = {1, 2, 3, 5, 7};
    static const size_t cs[] = {1, 3, 31, 63, 64, 65, 100, 128, 130};
    static const size_t ksz[] = {1, 2, 3, 4};
    for (size_t a = 0; a < LEN(hs); a++)
        for (size_t b = 0; b < LEN(cs); b++)
            for (size_t kk = 0; kk < LEN(ksz); kk++)
                for (size_t s = 1; s <= 3; s++)
                    for (size_t pad = 0; pad <= 2; pad++) {
                        if (quick && (s == 3 || a == 0)) continue;
                        const size_t w = hs[(a + kk + 1) % LEN(hs)]; /* non-square maps */
                        check_window_bits(hs[a], w, cs[b], ksz[kk], ksz[(kk + s) % LEN(ksz)], s, pad,
                                          (int)((a + b + s) % 2), (int)((b + pad) % 3));
                    }
}

static void grid_maxpool(void) {
    static const size_t hs[] = {1, 2, 3, 4, 7, 8, 9};
    for (size_t a = 0; a < LEN(hs); a++)
        for (size_t nw = 1; nw <= 5; nw++)
            for (size_t k = 1; k <= 3; k++)
                for (size_t s = 1; s <= 3; s++) check_maxpool(hs[a], hs[(a + nw) % LEN(hs)], nw, k, s);
}

/* Channels not multiples of 64 (the folded, densely packed layout) and multiples (direct), odd maps,
 * padding with bit 0 and bit 1 (bipolar -1 / +1), strides 1-2, with and without a fused 2x2 max-pool. */
static void grid_conv(void) {
    static const size_t hs[] = {1, 2, 3, 5, 7, 8, 10};
    static const size_t cs[] = {1, 3, 16, 21, 32, 63, 64, 65, 128, 130};
    static const size_t mhs[] = {1, 7, 32, 64, 65, 130};
    for (size_t a = 0; a < LEN(hs); a++)
        for (size_t b = 0; b < LEN(cs); b++)
            for (size_t k = 1; k <= 3; k++)
                for (size_t pad = 0; pad <= 2; pad++)
                    for (size_t pool = 1; pool <= 2; pool++) {
                        if (quick && (a + b + k + pad) % 3) continue;
                        const size_t s = 1 + (a + b + pad) % 2, mh = mhs[(a + b + k) % LEN(mhs)];
                        const size_t w = hs[(a + k + 2) % LEN(hs)]; /* non-square maps */
                        check_conv(hs[a], w, cs[b], mh, k, s, pad, (int)((a + b + pad) % 2), pool,
                                   (int)((a + k + pool) % 3), (int)((b + pad + pool) % 4));
                    }
}

static void grid_pack_planes(void) {
    const size_t ks[] = {1, 31, 32, 33, 63, 64, 65, 127, 576, 1000};
    const int32_t los[] = {0, -1, -2, -8};
    for (size_t a = 0; a < LEN(ks); a++)
        for (size_t planes = 1; planes <= 4; planes++)
            for (size_t rows = 1; rows <= 5; rows += 2) check_pack_planes(rows, ks[a], los[(a + planes) % LEN(los)], planes);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef void (*mvau_binary_fn)(const bnn_mvau_params *, const uint64_t *, const uint64_t *, uint64_t *, int32_t *,
                               size_t, size_t);

/* Best of 5 timings of one binary MVAU layer (rows x k -> mh with thresholds), in ms. */
static double time_mvau_binary(mvau_binary_fn f, const bnn_mvau_params *p, const uint64_t *x, size_t rows,
                               const uint64_t *w, uint64_t *out) {
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_s();
        f(p, x, w, out, NULL, 0, rows);
        double t = now_s() - t0;
        best = t < best ? t : best;
    }
    return best * 1e3;
}

/* Binary MVAU layers of CNV / BCNN shapes: (rows, k, mh). */
static void bench(void) {
    static const size_t shapes[][3] = {{784, 576, 64}, {196, 1152, 128}, {49, 2304, 256}, {1, 2304, 512}};
    for (size_t s = 0; s < LEN(shapes); s++) {
        const size_t rows = shapes[s][0], k = shapes[s][1], mh = shapes[s][2], kw = bnn_words(k);
        uint64_t *x = xmalloc(rows * kw * 8), *w = xmalloc(mh * kw * 8), *o = xmalloc(rows * bnn_words(mh) * 8);
        int32_t *thresholds = xmalloc(mh * 4);
        const bnn_mvau_params p = {.mh = mh, .k = k, .thresholds = thresholds};
        fill_bits(x, rows, k, 0);
        fill_bits(w, mh, k, 0);
        for (size_t j = 0; j < mh; j++) thresholds[j] = (int32_t)(k / 2);
        const double ref = time_mvau_binary(bnn_mvau_binary_ref, &p, x, rows, w, o);
        const double opt = time_mvau_binary(bnn_mvau_binary_opt, &p, x, rows, w, o);
        const double gops = 2.0 * (double)rows * (double)mh * (double)k / (opt * 1e-3) / 1e9;
        printf("bench mvau_binary rows=%zu k=%zu mh=%zu: ref %.3f ms, opt %.3f ms (%.1fx, %.1f G binary ops/s)\n", rows,
               k, mh, ref, opt, ref / opt, gops);
        free(x), free(w), free(o), free(thresholds);
    }
}

int main(int argc, char **argv) {
    int do_bench = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--bench") == 0) {
            do_bench = 1;
        } else {
            fprintf(stderr, "usage: kernel_check [--quick] [--bench]\n");
            return 2;
        }
    }
    size_t before = 0;
    const char *names[] = {"mvau_binary", "mvau_integer", "window_bits", "maxpool_bits", "conv_binary", "pack_planes"};
    void (*grids[])(void) = {grid_mvau_binary, grid_mvau_integer, grid_window_bits, grid_maxpool, grid_conv,
                             grid_pack_planes};
    printf("kernel_check %s:", bnn_kernels_name());
    for (size_t g = 0; g < LEN(grids); g++) {
        grids[g]();
        printf(" %s %zu", names[g], n_cases - before);
        before = n_cases;
    }
    printf(" | %zu cases, %zu mismatches\n", n_cases, n_fail);
    if (do_bench) bench();
    return n_fail ? 1 : 0;
}
