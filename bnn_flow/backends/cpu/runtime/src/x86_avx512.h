/* AVX-512 bgemm micro-kernels (F, VL, BW, VPOPCNTDQ), included by kernels_x86.c before bgemm_lanes.h.
 *
 * Binary tile: rows x (nv x 8 channels). Per step t: nv weight vectors (word t of 8 channels each) are
 * loaded once, each row's word t is broadcast once (vpbroadcastq, folded into the xor), and every
 * (row, vector) accumulator gets vpxorq + vpopcntq + vpaddq: 3 instructions per 512 binary MACs, the ISA's
 * ceiling (two 512-bit ALU ops per cycle: 341 MACs/cycle; measured on this mix: bnn_isa_mix_opt). Up to 6 x 4
 * accumulators (24 of the 32 zmm registers) so loads and loop overhead are spread over many MACs.
 * Output stage in registers: vpcmpq (popcount <= k - threshold) gives 8 output bits per compare.
 * (The integer first layer's VNNI kernel is x86_integer.h.) */
#include <immintrin.h>

#define BNN_LANES 8
#define BNN_MAX_NV 4

static size_t tile_rows(size_t nv) { return nv == 4 ? 6 : 8; }

/* acc[p][v] = popcount sums of rows xr[0..NP) x nv vectors (NP, NV compile-time at each call site). */
ALWAYS_INLINE void pop512(const uint64_t *const *xr, const size_t NP, const uint32_t *off, size_t steps,
                          const uint64_t *w, size_t stride, const size_t NV, __m512i acc[8][4]) {
    UNROLL for (size_t p = 0; p < NP; p++) UNROLL for (size_t v = 0; v < NV; v++) acc[p][v] = _mm512_setzero_si512();
    for (size_t t = 0; t < steps; t++) {
        const size_t o = off[t];
        const uint64_t *wt = w + t * stride;
        __m512i wv[4];
        UNROLL for (size_t v = 0; v < NV; v++) wv[v] = _mm512_load_si512(wt + 8 * v);
        UNROLL for (size_t p = 0; p < NP; p++) {
            const __m512i xb = _mm512_set1_epi64((long long)xr[p][o]);
            UNROLL for (size_t v = 0; v < NV; v++)
                acc[p][v] = _mm512_add_epi64(acc[p][v], _mm512_popcnt_epi64(_mm512_xor_si512(xb, wv[v])));
        }
    }
}

ALWAYS_INLINE void bits512(const uint64_t *const *xr, const size_t NP, const uint32_t *off, size_t steps,
                           const uint64_t *w, size_t stride, const int32_t *tpop, const size_t NV, uint64_t *bits) {
    __m512i acc[8][4], tp[4];
    pop512(xr, NP, off, steps, w, stride, NV, acc);
    UNROLL for (size_t v = 0; v < NV; v++) tp[v] = _mm512_cvtepi32_epi64(_mm256_loadu_si256((const void *)(tpop + 8 * v)));
    UNROLL for (size_t p = 0; p < NP; p++) {
        uint64_t b = 0;
        UNROLL for (size_t v = 0; v < NV; v++) b |= (uint64_t)_mm512_cmple_epi64_mask(acc[p][v], tp[v]) << (8 * v);
        bits[p] = b;
    }
}

ALWAYS_INLINE void acc512(const uint64_t *const *xr, const size_t NP, const uint32_t *off, size_t steps,
                          const uint64_t *w, size_t stride, const size_t NV, size_t nch, int32_t k, int32_t *out,
                          size_t out_stride) {
    __m512i acc[8][4];
    pop512(xr, NP, off, steps, w, stride, NV, acc);
    const __m512i kv = _mm512_set1_epi64(k);
    UNROLL for (size_t p = 0; p < NP; p++) UNROLL for (size_t v = 0; v < NV; v++) {
        const size_t lanes = nch > 8 * v ? (nch - 8 * v < 8 ? nch - 8 * v : 8) : 0;
        _mm256_mask_storeu_epi32(out + p * out_stride + 8 * v, (__mmask8)((1u << lanes) - 1),
                                 _mm512_cvtepi64_epi32(_mm512_sub_epi64(kv, acc[p][v])));
    }
}

#define BITS_CASE(P, V) \
    case (V) * 16 + (P): bits512(xr, P, off, steps, w, stride, tpop, V, bits); return;
static void tile_bits(const uint64_t *const *xr, size_t np, const uint32_t *off, size_t steps, const uint64_t *w,
                      size_t stride, const int32_t *tpop, size_t nv, uint64_t *bits) {
    switch (nv * 16 + np) {
        BITS_CASE(1, 1) BITS_CASE(2, 1) BITS_CASE(3, 1) BITS_CASE(4, 1) BITS_CASE(5, 1) BITS_CASE(6, 1)
        BITS_CASE(7, 1) BITS_CASE(8, 1) BITS_CASE(1, 2) BITS_CASE(2, 2) BITS_CASE(3, 2) BITS_CASE(4, 2)
        BITS_CASE(5, 2) BITS_CASE(6, 2) BITS_CASE(7, 2) BITS_CASE(8, 2) BITS_CASE(1, 4) BITS_CASE(2, 4)
        BITS_CASE(3, 4) BITS_CASE(4, 4) BITS_CASE(5, 4) BITS_CASE(6, 4)
    }
}

/* The last layer only (few channels, once per image): one row at a time is enough. */
static void tile_acc(const uint64_t *const *xr, size_t np, const uint32_t *off, size_t steps, const uint64_t *w,
                     size_t stride, size_t nv, size_t nch, int32_t k, int32_t *out, size_t out_stride) {
    for (size_t p = 0; p < np; p++) {
        if (nv == 1)
            acc512(xr + p, 1, off, steps, w, stride, 1, nch, k, out + p * out_stride, out_stride);
        else if (nv == 2)
            acc512(xr + p, 1, off, steps, w, stride, 2, nch, k, out + p * out_stride, out_stride);
        else
            acc512(xr + p, 1, off, steps, w, stride, 4, nch, k, out + p * out_stride, out_stride);
    }
}

/* The binary ceiling: the tile's own instruction mix (6 rows x 4 vectors: 4 weight loads, 6 broadcasts,
 * 24 x vpxorq + vpopcntq + vpaddq per step) on L1-resident words, with nothing else (no staging, no output
 * stage, no loop over offsets). A loop of 12 independent xor/popcount/add chains on registers only runs
 * ~30% slower on Zen 4 than this mix, so the tile's mix itself is the honest peak. */
uint64_t bnn_isa_mix_opt(uint64_t iters, unsigned *macs_per_iter) {
    static uint64_t xs[6] = {1, 2, 3, 4, 5, 6};
    static uint64_t ws[4][8] __attribute__((aligned(64)));
    *macs_per_iter = 6 * 4 * 512;
    for (int v = 0; v < 4; v++)
        for (int l = 0; l < 8; l++) ws[v][l] = 0x0123456789abcdefull * (uint64_t)(8 * v + l + 1);
    __m512i a[6][4];
    UNROLL for (int p = 0; p < 6; p++) UNROLL for (int v = 0; v < 4; v++) a[p][v] = _mm512_setzero_si512();
    for (uint64_t i = 0; i < iters; i++) {
        __m512i w[4];
        UNROLL for (int v = 0; v < 4; v++) w[v] = _mm512_load_si512(ws[v]);
        UNROLL for (int p = 0; p < 6; p++) {
            const __m512i x = _mm512_set1_epi64((long long)xs[p]);
            UNROLL for (int v = 0; v < 4; v++)
                a[p][v] = _mm512_add_epi64(a[p][v], _mm512_popcnt_epi64(_mm512_xor_si512(x, w[v])));
        }
        __asm__ volatile("" ::: "memory"); /* the loads are redone every iteration, as in the tile */
    }
    __m512i s = _mm512_setzero_si512();
    UNROLL for (int p = 0; p < 6; p++) UNROLL for (int v = 0; v < 4; v++) s = _mm512_add_epi64(s, a[p][v]);
    return (uint64_t)_mm512_reduce_add_epi64(s);
}

int bnn_bgemm_native(void) { return 2; }
