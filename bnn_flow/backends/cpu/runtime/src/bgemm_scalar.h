/* The portable bgemm micro-kernels (one 64-bit word per "lane", the compiler's popcount), included by the
 * kernel files that have no SIMD bgemm yet (AVX2 and x86-64 popcnt, NEON, ARMv6, generic), so that the fused
 * convolution (conv.c) is bit-exact and tested on every family. The executor uses them where
 * bnn_bgemm_native() says they beat window + MVAU: on x86 (one popcnt per 64 MACs) for narrow maps, whose
 * dense packing saves the padding words; on ARM nowhere yet (not measured on a Pi).
 * Tile: up to 4 rows x 4 channels, 16 scalar accumulators (enough registers on x86-64 and aarch64). */
#ifndef BNN_BGEMM_SCALAR_H
#define BNN_BGEMM_SCALAR_H

#include "bnn_kernels.h"

#define BNN_LANES 1
#define BNN_MAX_NV 4

static size_t tile_rows(size_t nv) {
    (void)nv;
    return 4;
}

/* pop[p][v] = popcount of row p xor channel v over every step. */
static void pop_scalar(const uint64_t *const *xr, size_t np, const uint32_t *off, size_t steps, const uint64_t *w,
                       size_t stride, size_t nv, uint32_t pop[4][4]) {
    for (size_t p = 0; p < np; p++)
        for (size_t v = 0; v < nv; v++) pop[p][v] = 0;
    for (size_t t = 0; t < steps; t++) {
        const uint64_t *wt = w + t * stride;
        for (size_t p = 0; p < np; p++) {
            const uint64_t x = xr[p][off[t]];
            for (size_t v = 0; v < nv; v++) pop[p][v] += (uint32_t)__builtin_popcountll(x ^ wt[v]);
        }
    }
}

static void tile_bits(const uint64_t *const *xr, size_t np, const uint32_t *off, size_t steps, const uint64_t *w,
                      size_t stride, const int32_t *tpop, size_t nv, uint64_t *bits) {
    uint32_t pop[4][4];
    pop_scalar(xr, np, off, steps, w, stride, nv, pop);
    for (size_t p = 0; p < np; p++) {
        uint64_t b = 0;
        for (size_t v = 0; v < nv; v++) b |= (uint64_t)((int32_t)pop[p][v] <= tpop[v]) << v;
        bits[p] = b;
    }
}

static void tile_acc(const uint64_t *const *xr, size_t np, const uint32_t *off, size_t steps, const uint64_t *w,
                     size_t stride, size_t nv, size_t nch, int32_t k, int32_t *out, size_t out_stride) {
    uint32_t pop[4][4];
    pop_scalar(xr, np, off, steps, w, stride, nv, pop);
    for (size_t p = 0; p < np; p++)
        for (size_t v = 0; v < nch; v++) out[p * out_stride + v] = k - (int32_t)pop[p][v];
}

#ifndef BNN_BGEMM_SCALAR_NATIVE
#define BNN_BGEMM_SCALAR_NATIVE 0 /* the including file sets 1 where popcount is one instruction (x86) */
#endif
int bnn_bgemm_native(void) { return BNN_BGEMM_SCALAR_NATIVE; }

/* The binary ceiling of this mix: pop_scalar's 4 x 4 tile step (xor + popcount + add per 64 MACs). */
uint64_t bnn_isa_mix_opt(uint64_t iters, unsigned *macs_per_iter) {
    static uint64_t xs[4] = {1, 2, 3, 4}, ws[4] = {5, 6, 7, 8};
    *macs_per_iter = 16 * 64;
    uint64_t a[4][4] = {{0}};
    for (uint64_t i = 0; i < iters; i++) {
        for (int p = 0; p < 4; p++)
            for (int v = 0; v < 4; v++) a[p][v] += (uint64_t)__builtin_popcountll(xs[p] ^ ws[v]);
        __asm__ volatile("" ::: "memory"); /* the loads are redone every iteration, as in the tile */
    }
    uint64_t s = 0;
    for (int p = 0; p < 4; p++)
        for (int v = 0; v < 4; v++) s += a[p][v];
    return s;
}

#include "bgemm_lanes.h"

#endif /* BNN_BGEMM_SCALAR_H */
