/* Integer MVAUs on few-bit inputs and weights (n-bit activations: W1A2, W2A2 ...) as binary passes.
 *
 * Why: an int16 x int8 multiply-accumulate moves 24 bits per product where the values have 2 or 3; a W1A2 CNV
 * ran at 1.2x its float twin that way. With u = x - x_lo (n bits, planes u_b) and v = w - w_lo (m bits, planes
 * v_c), both {0, 1} bit vectors of K elements:
 *   x . w = K x_lo w_lo + w_lo sum_b 2^b P(u_b) + x_lo sum_c 2^c P(v_c) + sum_{b,c} 2^(b+c) A(u_b, v_c)
 * (only the bits some weight has: -1/+1 weights are one plane) with P the popcount and A(u, v) = popcount(u AND v) = (p - K + P(u) + P(v)) / 2, where p = K - popcount(u XOR v)
 * is exactly what the family's optimized binary MVAU kernel (XNOR popcount, bnn_mvau_binary_opt) returns. So an
 * n-bit x m-bit layer is n * m runs of the fastest kernel there is, on packed planes (the weight planes are
 * prepared once at load time). Exact: every term is an integer and the sum equals the int32 accumulator; the
 * partial sums (constants first, then non-negative plane terms) stay within 3 K max|x| max|w|, checked to fit
 * int32 at load (else the layer keeps the integer kernel). The reference path (bnn_use_reference_kernels) keeps the plain
 * integer kernel, so the two stay independent.
 *
 * The caller passes at most CHUNK_ROWS rows at a time (scratch stays small): pack their input planes, one
 * kernel call per (b, c) over them, combine. */
#include <stdlib.h>
#include <string.h>

#include "bnn_internal.h"
#include "bnn_kernels.h"

#define CHUNK_ROWS BNN_BITPLANE_ROWS
#define MAX_PLANES 4        /* inputs and weights of at most 4 bits (16 values) ... */
#define MAX_PASSES 8        /* ... and at most 8 binary passes: beyond, int8 MACs are as fast */

struct bnn_bitplane {
    size_t x_planes, w_planes, mh, k, kw;
    int32_t x_lo, w_lo;
    uint8_t w_shift[MAX_PLANES]; /* the bit of v that weight plane c holds: only bits some weight has (-1/+1
                                    weights are v = w + 1 in {0, 2}: one plane, bit 1) */
    uint64_t *w_bits;  /* w_planes x mh x kw words: plane c of weight row j at (c * mh + j) * kw */
    int use_bgemm;     /* the family's bgemm is its fastest binary kernel (bnn_bgemm_native() == 2) */
    bnn_bgemm gemm[MAX_PLANES]; /* then weight plane c on it (prepared weights in gemm_mem) */
    void *gemm_mem;
    int32_t *w_pop;    /* w_planes x mh: P(v_c) of row j at c * mh + j */
    int32_t *w_const;  /* mh: K x_lo w_lo + x_lo sum_c 2^shift_c P(v_c) */
};

static size_t planes_for(int32_t lo, int32_t hi) {
    size_t n = 0;
    for (uint32_t span = (uint32_t)(hi - lo); span; span >>= 1) n++;
    return n ? n : 1;
}

void bnn_bitplane_free(bnn_bitplane *bp) {
    if (!bp) return;
    free(bp->w_bits);
    free(bp->w_pop);
    free(bp->w_const);
    free(bp->gemm_mem);
    free(bp);
}

/* The weight planes on the family's bgemm (channel lanes, prepared once; contiguous rows: off[t] = t). */
static void prepare_bgemm(bnn_bitplane *bp) {
    const size_t ww = bnn_bgemm_weight_words_opt(bp->mh, bp->kw);
    const size_t bytes = bp->w_planes * ww * sizeof(uint64_t) + bp->kw * sizeof(uint32_t);
    if (!(bp->gemm_mem = aligned_alloc(BNN_ALIGN, (bytes + BNN_ALIGN - 1) / BNN_ALIGN * BNN_ALIGN))) return;
    uint64_t *w = bp->gemm_mem;
    uint32_t *off = (uint32_t *)(w + bp->w_planes * ww);
    for (size_t t = 0; t < bp->kw; t++) off[t] = (uint32_t)t;
    for (size_t c = 0; c < bp->w_planes; c++) {
        bnn_bgemm_prepare_opt(bp->mh, bp->kw, bp->w_bits + c * bp->mh * bp->kw, w + c * ww);
        bp->gemm[c] = (bnn_bgemm){bp->mh, bp->k, bp->kw, off, w + c * ww, NULL};
    }
    bp->use_bgemm = 1;
}

bnn_bitplane *bnn_bitplane_prepare(size_t mh, size_t k, int32_t x_min, int32_t x_max, const int8_t *w) {
    int32_t w_min = 127, w_abs = 0;
    uint32_t used = 0; /* the bits any v = w - w_min has */
    for (size_t i = 0; i < mh * k; i++) {
        w_min = w[i] < w_min ? w[i] : w_min;
        w_abs = abs(w[i]) > w_abs ? abs(w[i]) : w_abs;
    }
    for (size_t i = 0; i < mh * k; i++) used |= (uint32_t)(w[i] - w_min);
    size_t wp = 0;
    uint8_t shift[8];
    for (uint8_t b = 0; b < 8; b++)
        if (used >> b & 1u) shift[wp++] = b;
    const size_t xp = planes_for(x_min, x_max);
    if (wp == 0) shift[wp++] = 0; /* all weights equal: one (empty) plane keeps the formula whole */
    if (xp > MAX_PLANES || wp > MAX_PLANES || xp * wp > MAX_PASSES) return NULL;
    /* every partial sum (the constants first, then non-negative plane terms up to the accumulator) within int32 */
    const int64_t xm = x_max > -(int64_t)x_min ? x_max : -(int64_t)x_min;
    if (3 * (int64_t)k * (xm > 0 ? xm : 1) * (w_abs > 0 ? w_abs : 1) > INT32_MAX) return NULL;
    bnn_bitplane *bp = calloc(1, sizeof *bp);
    const size_t kw = bnn_words(k);
    if (!bp) return NULL;
    *bp = (bnn_bitplane){.x_planes = xp, .w_planes = wp, .mh = mh, .k = k, .kw = kw, .x_lo = x_min, .w_lo = w_min,
                         .w_bits = calloc(wp * mh * kw, sizeof(uint64_t)), .w_pop = calloc(wp * mh, sizeof(int32_t)),
                         .w_const = calloc(mh, sizeof(int32_t))};
    memcpy(bp->w_shift, shift, wp);
    if (!bp->w_bits || !bp->w_pop || !bp->w_const) {
        bnn_bitplane_free(bp);
        return NULL;
    }
    for (size_t c = 0; c < wp; c++)
        for (size_t j = 0; j < mh; j++) {
            uint64_t *row = bp->w_bits + (c * mh + j) * kw;
            int32_t pop = 0;
            for (size_t i = 0; i < k; i++) {
                const uint32_t bit = ((uint32_t)(w[j * k + i] - w_min) >> shift[c]) & 1u;
                row[i / 64] |= (uint64_t)bit << (i % 64);
                pop += (int32_t)bit;
            }
            bp->w_pop[c * mh + j] = pop;
            bp->w_const[j] += x_min * (pop << shift[c]);
        }
    for (size_t j = 0; j < mh; j++) bp->w_const[j] += (int32_t)k * x_min * w_min;
    if (bnn_bgemm_native() == 2) prepare_bgemm(bp);
    return bp;
}

size_t bnn_bitplane_scratch_bytes(const bnn_bitplane *bp) {
    /* the chunk's input planes, their popcounts, one pass's accumulators */
    return CHUNK_ROWS * (bp->x_planes * bp->kw * sizeof(uint64_t) + bp->x_planes * sizeof(int32_t) +
                         bp->mh * sizeof(int32_t)) + BNN_ALIGN;
}

/* The chunk's input planes and their popcounts (the family's bnn_pack_planes_opt); returns, per row,
 * w_lo sum_b 2^b P(u_b) in `row_const`. */
static void pack_planes(const bnn_bitplane *bp, const int16_t *x, size_t rows, uint64_t *planes, int32_t *pops,
                        int32_t *row_const) {
    const size_t n = bp->x_planes;
    bnn_pack_planes_opt(x, rows, bp->k, bp->x_lo, n, planes, pops);
    for (size_t r = 0; r < rows; r++) {
        row_const[r] = 0;
        for (size_t b = 0; b < n; b++) row_const[r] += bp->w_lo * (pops[r * n + b] << b);
    }
}

void bnn_bitplane_rows(const bnn_bitplane *bp, const int16_t *x, size_t r0, size_t r1, size_t j0, size_t j1,
                       int32_t *acc, void *scratch) {
    const size_t kw = bp->kw, n = bp->x_planes, cols = j1 - j0;
    uint64_t *planes = scratch;
    int32_t *pops = (int32_t *)(planes + n * CHUNK_ROWS * kw), *pass = pops + n * CHUNK_ROWS;
    int32_t row_const[CHUNK_ROWS];
    const bnn_mvau_params slice = {.mh = cols, .k = bp->k, .thresholds = NULL};
    const size_t rows = r1 - r0; /* <= CHUNK_ROWS */
    pack_planes(bp, x + r0 * bp->k, rows, planes, pops, row_const);
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < cols; j++) acc[r * cols + j] = bp->w_const[j0 + j] + row_const[r];
    for (size_t b = 0; b < n; b++)
        for (size_t c = 0; c < bp->w_planes; c++) {
            const int32_t *p = pass; /* the agreements of rows x channels [j0, j1), `stride` apart */
            size_t stride = cols;
            if (bp->use_bgemm) {
                const uint64_t *xr[CHUNK_ROWS];
                for (size_t r = 0; r < rows; r++) xr[r] = planes + (b * rows + r) * kw;
                bnn_bgemm_opt(&bp->gemm[c], xr, rows, NULL, 0, pass, bp->mh, j0, j1);
                p = pass + j0, stride = bp->mh;
            } else {
                bnn_mvau_binary_opt(&slice, planes + b * rows * kw, bp->w_bits + (c * bp->mh + j0) * kw, NULL, pass,
                                    0, rows);
            }
            const int32_t *pv = bp->w_pop + c * bp->mh + j0;
            for (size_t r = 0; r < rows; r++) {
                const int32_t pu = pops[r * n + b] - (int32_t)bp->k;
                for (size_t j = 0; j < cols; j++) /* A = (p - K + P(u) + P(v)) / 2, times 2^(b+c) */
                    acc[r * cols + j] += ((p[r * stride + j] + pu + pv[j]) >> 1) << (b + bp->w_shift[c]);
            }
        }
}
