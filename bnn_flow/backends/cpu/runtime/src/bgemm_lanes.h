/* The channel-lane layout of prepared binary weights and the tiling loop of bnn_bgemm_opt, shared by every
 * kernel family (included, not linked, by kernels_*.c after their micro-kernels).
 *
 * Layout: word t of channel j at w[t * stride + j], stride = mh rounded up to 64 (padding channels zero),
 * so one vector load at step t holds word t of LANES neighbouring channels, and an activation word
 * broadcast to every lane meets them all: xor + popcount + add per lane, each lane one (row, channel)
 * accumulator, no horizontal sums (the float GEMM micro-kernel's outer product, with xor/popcount/add for
 * the FMA). Rows are given by pointers and step offsets (bnn_bgemm), so a convolution's receptive field is
 * read in place (conv.c) and a fully connected layer's rows are whole images (a batched GEMM).
 *
 * The including file defines, before including this header:
 *   BNN_LANES                     channels per vector register (8 AVX-512, 4 AVX2, 2 NEON, 1 scalar)
 *   BNN_MAX_NV                    the most vectors per tile (a power of two; BNN_LANES * BNN_MAX_NV <= 64)
 *   static size_t tile_rows(size_t nv)   the most rows per tile for nv vectors (registers)
 *   static void tile_bits(const uint64_t *const *xr, size_t np, const uint32_t *off, size_t steps,
 *                         const uint64_t *w, size_t stride, const int32_t *tpop, size_t nv, uint64_t *bits)
 *       rows xr[0..np) x channels [0, nv * BNN_LANES) of w / tpop (already offset to the tile): bits[p] bit i
 *       = popcount(row p ^ channel i) <= tpop[i]
 *   static void tile_acc(... same ..., size_t nv, size_t nch, int32_t k, int32_t *acc, size_t acc_stride)
 *       the agreements k - popcount of the first nch (<= nv * BNN_LANES) channels: acc[p * acc_stride + i]
 * and gets the kernel family's bnn_bgemm_weight_words_opt, bnn_bgemm_prepare_opt and bnn_bgemm_opt. */
#ifndef BNN_BGEMM_LANES_H
#define BNN_BGEMM_LANES_H

#include "bnn_kernels.h"

#define BNN_TILE_MAX_ROWS 16 /* an upper bound of tile_rows() for the bits buffer below */

static inline size_t bnn_lane_stride(size_t mh) { return (mh + 63) / 64 * 64; }

size_t bnn_bgemm_weight_words_opt(size_t mh, size_t steps) { return steps * bnn_lane_stride(mh); }

void bnn_bgemm_prepare_opt(size_t mh, size_t steps, const uint64_t *ws, uint64_t *prepared) {
    const size_t stride = bnn_lane_stride(mh);
    for (size_t t = 0; t < steps; t++)
        for (size_t j = 0; j < stride; j++) prepared[t * stride + j] = j < mh ? ws[j * steps + t] : 0;
}

/* Vectors per tile for `width` channels: the fewest that cover them, at most BNN_MAX_NV (tiles never
 * straddle a 64-bit output word: BNN_LANES * nv divides 64). */
static inline size_t bnn_tile_nv(size_t width) {
    size_t nv = 1;
    while (nv < BNN_MAX_NV && nv * BNN_LANES < width) nv *= 2;
    return nv;
}

/* Bits out: per 64-channel output word, its tiles in order (the first assigns, the next OR in), each over
 * every row: a tile's weights (steps x nv * LANES words) stay in L1 while the rows stream past them. */
static void bnn_bgemm_bits(const bnn_bgemm *g, const uint64_t *const *xr, size_t n, uint64_t *out, size_t stride_out,
                           size_t jb, size_t je) {
    const size_t stride = bnn_lane_stride(g->mh), steps = g->steps;
    uint64_t bits[BNN_TILE_MAX_ROWS];
    for (size_t wd = jb / 64; wd < bnn_words(je); wd++) {
        const size_t c0 = wd * 64, c1 = je - c0 < 64 ? je : c0 + 64, nv = bnn_tile_nv(c1 - c0);
        const size_t width = nv * BNN_LANES, rows = tile_rows(nv);
        for (size_t j0 = c0; j0 < c1; j0 += width) {
            for (size_t r = 0; r < n; r += rows) {
                const size_t np = n - r < rows ? n - r : rows;
                tile_bits(xr + r, np, g->off, steps, g->w + j0, stride, g->tpop + j0, nv, bits);
                for (size_t p = 0; p < np; p++) {
                    uint64_t *o = out + (r + p) * stride_out + wd;
                    *o = (j0 == c0 ? 0 : *o) | bits[p] << (j0 - c0);
                }
            }
        }
    }
}

void bnn_bgemm_opt(const bnn_bgemm *g, const uint64_t *const *xr, size_t n, uint64_t *out_bits, size_t bits_stride,
                   int32_t *out_acc, size_t acc_stride, size_t jb, size_t je) {
    if (g->tpop) {
        bnn_bgemm_bits(g, xr, n, out_bits, bits_stride, jb, je);
        return;
    }
    const size_t stride = bnn_lane_stride(g->mh), nv = bnn_tile_nv(je - jb), width = nv * BNN_LANES;
    const size_t rows = tile_rows(nv);
    for (size_t j0 = jb; j0 < je; j0 += width) {
        const size_t nch = je - j0 < width ? je - j0 : width;
        for (size_t r = 0; r < n; r += rows) {
            const size_t np = n - r < rows ? n - r : rows;
            tile_acc(xr + r, np, g->off, g->steps, g->w + j0, stride, nv, nch, (int32_t)g->k,
                     out_acc + r * acc_stride + j0, acc_stride);
        }
    }
}

#endif /* BNN_BGEMM_LANES_H */
