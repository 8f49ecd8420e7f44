/* The integer first layer on prepared weights (AVX2 / AVX-512BW), included by kernels_x86.c.
 *
 * Why: the first layer of an FC net (TFC: 784 8-bit pixels x 64 channels) is most of its work, and
 * interleaving the int8 weights into vpmaddwd pairs on every call cost more than the products. The pairs are
 * laid out once at load time: per block of 16 output channels, per pair of inputs (i, i+1), 16 x 2 int16
 * (64 bytes: one zmm, two ymm), zero past mh and past an odd k. The kernel then streams them with no
 * reshuffling, 4 rows at a time so each weight load feeds 4 rows (a batch of images through an FC layer is
 * rows: bnn_run's batches, net.c). vpmaddwd adds two products per int32 lane; |x| <= 2^15, |w| <= 2^7, and
 * the loader bounds every accumulator to int32, so the sums are exact. */
#ifndef BNN_X86_INTEGER_H
#define BNN_X86_INTEGER_H

#include <immintrin.h>
#include <string.h>

#include "bnn_kernels.h"

static size_t int_pairs(size_t k) { return (k + 1) / 2; }

/* The prepared block starts with this header (64 bytes, so the weights stay 64-byte aligned). */
typedef struct {
    int32_t mode;   /* INT_PAIRS or INT_QUADS */
    int32_t offset; /* INT_QUADS: added to every input so that it is a u8 (-x_min) */
    int32_t pad[14];
} int_header;
enum { INT_PAIRS = 1, INT_QUADS = 2 };
#define INT_QUADS_MAX_K 4096 /* INT_QUADS converts a tile's rows to u8 on the stack: 4 rows x k bytes */

/* VNNI's vpdpbusd multiplies u8 inputs by s8 weights, 4 per int32 lane: 4x the products of vpmaddwd per
 * instruction. It needs inputs of at most 256 values (8-bit pixels): x + offset is then a u8, and
 * sum((x + offset) * w) - offset * sum(w) is the exact sum (int32 wraps cancel: the true sum fits int32). */
static int int_quads_ok(size_t k, int32_t x_min, int32_t x_max) {
#if BNN_X86_AVX512 && defined(__AVX512BW__) && defined(__AVX512VNNI__)
    return (int64_t)x_max - x_min <= 255 && k >= 32 && k <= INT_QUADS_MAX_K; /* short rows: pairs (no u8 pass) */
#else
    (void)k, (void)x_min, (void)x_max;
    return 0;
#endif
}

size_t bnn_mvau_integer_prepared_bytes_opt(size_t mh, size_t k, int32_t x_min, int32_t x_max) {
    const size_t blocks = (mh + 15) / 16;
    if (int_quads_ok(k, x_min, x_max)) /* quads of 16 channels x 4 int8, then 16 * blocks corrections */
        return sizeof(int_header) + blocks * (k + 3) / 4 * 64 + blocks * 64;
    return sizeof(int_header) + blocks * int_pairs(k) * 64; /* pairs of 16 channels x 2 int16 */
}

void bnn_mvau_integer_prepare_opt(size_t mh, size_t k, int32_t x_min, int32_t x_max, const int8_t *w,
                                  void *prepared) {
    int_header *h = prepared;
    const size_t blocks = (mh + 15) / 16;
    memset(h, 0, sizeof *h);
    if (int_quads_ok(k, x_min, x_max)) {
        const size_t quads = (k + 3) / 4;
        int8_t *d = (int8_t *)(h + 1);
        int32_t *corr = (int32_t *)(void *)(d + blocks * quads * 64);
        h->mode = INT_QUADS, h->offset = -x_min;
        for (size_t b = 0; b < blocks; b++)
            for (size_t qd = 0; qd < quads; qd++)
                for (size_t c = 0; c < 16; c++)
                    for (size_t e = 0; e < 4; e++) {
                        const size_t j = 16 * b + c, i = 4 * qd + e;
                        *d++ = j < mh && i < k ? w[j * k + i] : 0;
                    }
        for (size_t j = 0; j < 16 * blocks; j++) {
            int64_t sum = 0;
            for (size_t i = 0; j < mh && i < k; i++) sum += w[j * k + i];
            corr[j] = (int32_t)(uint32_t)((uint64_t)(-x_min) * (uint64_t)sum); /* mod 2^32, as the kernel */
        }
        return;
    }
    int16_t *d = (int16_t *)(h + 1);
    const size_t pairs = int_pairs(k);
    h->mode = INT_PAIRS;
    for (size_t b = 0; b < blocks; b++)
        for (size_t pr = 0; pr < pairs; pr++)
            for (size_t c = 0; c < 16; c++)
                for (size_t e = 0; e < 2; e++) {
                    const size_t j = 16 * b + c, i = 2 * pr + e;
                    *d++ = j < mh && i < k ? w[j * k + i] : 0;
                }
}

#if BNN_X86_AVX512 && defined(__AVX512BW__) && defined(__AVX512VNNI__)
/* R (1..4) u8 rows (xu: R x 4*quads bytes) x NB (1..4) blocks of 16 channels (block b at wq + b * quads * 64):
 * acc[q][16 b + c] = sum over quads (no correction yet). */
static inline __attribute__((always_inline)) void quad_tile(const uint8_t *xu, size_t quads, const int R,
                                                            const int8_t *wq, const int NB, int32_t acc[4][64]) {
    __m512i a[4][4];
    for (int q = 0; q < R; q++)
        for (int v = 0; v < NB; v++) a[q][v] = _mm512_setzero_si512();
    for (size_t qd = 0; qd < quads; qd++) {
        __m512i wv[4];
        for (int v = 0; v < NB; v++) wv[v] = _mm512_loadu_si512((const void *)(wq + (v * quads + qd) * 64));
        for (int q = 0; q < R; q++) {
            int32_t xv;
            memcpy(&xv, xu + q * quads * 4 + 4 * qd, sizeof xv);
            const __m512i xb = _mm512_set1_epi32(xv);
            for (int v = 0; v < NB; v++) a[q][v] = _mm512_dpbusd_epi32(a[q][v], xb, wv[v]);
        }
    }
    for (int q = 0; q < R; q++)
        for (int v = 0; v < NB; v++) _mm512_storeu_si512((void *)(acc[q] + 16 * v), a[q][v]);
}

#define QUAD_CASE(R, NB) \
    case (R) * 8 + (NB): quad_tile(xu, quads, R, wq, NB, acc); return;
static void quad_tile_n(const uint8_t *xu, size_t quads, size_t R, const int8_t *wq, size_t NB, int32_t acc[4][64]) {
    switch (R * 8 + NB) {
        QUAD_CASE(1, 1) QUAD_CASE(2, 1) QUAD_CASE(3, 1) QUAD_CASE(4, 1) QUAD_CASE(1, 2) QUAD_CASE(2, 2)
        QUAD_CASE(3, 2) QUAD_CASE(4, 2) QUAD_CASE(1, 3) QUAD_CASE(2, 3) QUAD_CASE(3, 3) QUAD_CASE(4, 3)
        QUAD_CASE(1, 4) QUAD_CASE(2, 4) QUAD_CASE(3, 4) QUAD_CASE(4, 4)
    }
}
#endif

/* One int32 lane += the two products of an input pair and a weight pair: vpdpwssd where AVX512-VNNI has it
 * (one instruction, wrapping int32 adds: exact, as the sums fit), else vpmaddwd + vpaddd. */
#if BNN_X86_AVX512 && defined(__AVX512BW__)
static inline __attribute__((always_inline)) __m512i int_dot(__m512i acc, __m512i x, __m512i w) {
#if defined(__AVX512VNNI__)
    return _mm512_dpwssd_epi32(acc, x, w);
#else
    return _mm512_add_epi32(acc, _mm512_madd_epi16(x, w));
#endif
}
#endif

/* Input pair pr of row xr as an int32 (the k / 2 whole pairs read directly; an odd k's last element is
 * zero-extended, its weight partner is 0). */
static inline __attribute__((always_inline)) int32_t int_pair(const int16_t *xr, size_t pr, size_t full) {
    int32_t v;
    if (pr < full)
        memcpy(&v, xr + 2 * pr, sizeof v);
    else
        v = (int32_t)(uint16_t)xr[2 * pr];
    return v;
}

/* R (1..4) rows from r x NB (1..4) blocks of 16 channels (block b at wb + b * pairs * 32): acc[q][16 b + c].
 * Per input pair: NB weight loads and R broadcasts feed R x NB multiply-adds. */
static inline __attribute__((always_inline)) void int_tile(const int16_t *x, size_t k, size_t r, const int R,
                                                           const int16_t *wb, const int NB, int32_t acc[4][64]) {
    const size_t full = k / 2, pairs = int_pairs(k);
#if BNN_X86_AVX512 && defined(__AVX512BW__)
    __m512i a[4][4];
    for (int q = 0; q < R; q++)
        for (int v = 0; v < NB; v++) a[q][v] = _mm512_setzero_si512();
    for (size_t pr = 0; pr < pairs; pr++) {
        __m512i wv[4];
        for (int v = 0; v < NB; v++) wv[v] = _mm512_loadu_si512((const void *)(wb + (v * pairs + pr) * 32));
        for (int q = 0; q < R; q++) {
            const __m512i xv = _mm512_set1_epi32(int_pair(x + (r + q) * k, pr, full));
            for (int v = 0; v < NB; v++) a[q][v] = int_dot(a[q][v], xv, wv[v]);
        }
    }
    for (int q = 0; q < R; q++)
        for (int v = 0; v < NB; v++) _mm512_storeu_si512((void *)(acc[q] + 16 * v), a[q][v]);
#else
    __m256i a[4][8]; /* 8 ymm per row: NB blocks x 2 halves */
    for (int q = 0; q < R; q++)
        for (int v = 0; v < 2 * NB; v++) a[q][v] = _mm256_setzero_si256();
    for (size_t pr = 0; pr < pairs; pr++) {
        __m256i wv[8];
        for (int v = 0; v < 2 * NB; v++)
            wv[v] = _mm256_loadu_si256((const void *)(wb + ((v / 2) * pairs + pr) * 32 + 16 * (v % 2)));
        for (int q = 0; q < R; q++) {
            const __m256i xv = _mm256_set1_epi32(int_pair(x + (r + q) * k, pr, full));
            for (int v = 0; v < 2 * NB; v++) a[q][v] = _mm256_add_epi32(a[q][v], _mm256_madd_epi16(xv, wv[v]));
        }
    }
    for (int q = 0; q < R; q++)
        for (int v = 0; v < 2 * NB; v++) _mm256_storeu_si256((void *)(acc[q] + 8 * v), a[q][v]);
#endif
}

/* The tile for runtime R, NB (each combination compiled with constant loop bounds). AVX2 keeps R x NB <= 8
 * (16 ymm accumulators), so it takes 2 rows at a time for 4 blocks. */
#define INT_TILE_CASE(R, NB) \
    case (R) * 8 + (NB): int_tile(x, k, r, R, wb, NB, acc); return;
static void int_tile_n(const int16_t *x, size_t k, size_t r, size_t R, const int16_t *wb, size_t NB,
                       int32_t acc[4][64]) {
    switch (R * 8 + NB) {
        INT_TILE_CASE(1, 1) INT_TILE_CASE(2, 1) INT_TILE_CASE(3, 1) INT_TILE_CASE(4, 1)
        INT_TILE_CASE(1, 2) INT_TILE_CASE(2, 2) INT_TILE_CASE(3, 2) INT_TILE_CASE(4, 2)
        INT_TILE_CASE(1, 3) INT_TILE_CASE(2, 3) INT_TILE_CASE(3, 3) INT_TILE_CASE(4, 3)
        INT_TILE_CASE(1, 4) INT_TILE_CASE(2, 4) INT_TILE_CASE(3, 4) INT_TILE_CASE(4, 4)
    }
}

#if BNN_X86_AVX512 && defined(__AVX512BW__)
#define INT_MAX_ROWS 4
#else
#define INT_MAX_ROWS 2
#endif

/* INT_QUADS: rows r..r+R converted to u8 (x + offset, zero past k), the quad tile over blocks [b0, b0 + nb)
 * of `blocks`, then the offset's correction (wrapping int32 arithmetic, as in the preparation). */
static void quad_rows(const int_header *h, const int16_t *x, size_t k, size_t r, size_t R, size_t blocks, size_t b0,
                      size_t nb, int32_t acc[4][64]) {
#if BNN_X86_AVX512 && defined(__AVX512BW__) && defined(__AVX512VNNI__)
    const size_t quads = (k + 3) / 4;
    _Alignas(64) uint8_t xu[4 * INT_QUADS_MAX_K];
    for (size_t q = 0; q < R; q++) {
        const int16_t *xr = x + (r + q) * k;
        uint8_t *d = xu + q * quads * 4;
        for (size_t i = 0; i < k; i++) d[i] = (uint8_t)(xr[i] + h->offset);
        for (size_t i = k; i < quads * 4; i++) d[i] = 0;
    }
    const int8_t *wq = (const int8_t *)(const void *)(h + 1);
    const int32_t *corr = (const int32_t *)(const void *)(wq + blocks * quads * 64);
    quad_tile_n(xu, quads, R, wq + b0 * quads * 64, nb, acc);
    for (size_t q = 0; q < R; q++)
        for (size_t c = 0; c < 16 * nb; c++) acc[q][c] = (int32_t)((uint32_t)acc[q][c] - (uint32_t)corr[16 * b0 + c]);
#else
    (void)h, (void)x, (void)k, (void)r, (void)R, (void)blocks, (void)b0, (void)nb, (void)acc;
#endif
}

/* bnn_mvau_integer_opt's contract on prepared weights (p->prepared): 64 channels (4 blocks) x up to 4 rows
 * per tile; thresholds compared in the output stage. */
static void integer_prepared(const bnn_mvau_params *p, const int16_t *x, uint64_t *out_bits, int32_t *out_acc,
                             size_t row_begin, size_t row_end) {
    const size_t k = p->k, mh = p->mh, ow = bnn_words(mh), pairs = int_pairs(k), blocks = (mh + 15) / 16;
    const int32_t *thresholds = p->thresholds;
    const int_header *h = p->prepared;
    const size_t max_rows = h->mode == INT_QUADS ? 4 : INT_MAX_ROWS;
    if (thresholds) memset(out_bits + row_begin * ow, 0, (row_end - row_begin) * ow * sizeof(uint64_t));
    for (size_t b0 = 0; b0 < blocks; b0 += 4) {
        const int16_t *wb = (const int16_t *)(const void *)(h + 1) + b0 * pairs * 32;
        const size_t nb = blocks - b0 < 4 ? blocks - b0 : 4, j0 = 16 * b0, nc = mh - j0 < 64 ? mh - j0 : 64;
        for (size_t r = row_begin; r < row_end; r += max_rows) {
            const size_t R = row_end - r < max_rows ? row_end - r : max_rows;
            int32_t acc[4][64];
            if (h->mode == INT_QUADS)
                quad_rows(h, x, k, r, R, blocks, b0, nb, acc);
            else
                int_tile_n(x, k, r, R, wb, nb, acc);
            for (size_t q = 0; q < R; q++) {
                if (!thresholds) {
                    memcpy(out_acc + (r + q) * mh + j0, acc[q], nc * sizeof(int32_t));
                    continue;
                }
                uint64_t bits = 0; /* j0 is a multiple of 64: the tile fills one output word */
                for (size_t c = 0; c < nc; c++) bits |= (uint64_t)(acc[q][c] >= thresholds[j0 + c]) << c;
                out_bits[(r + q) * ow + j0 / 64] = bits;
            }
        }
    }
}

#endif /* BNN_X86_INTEGER_H */
