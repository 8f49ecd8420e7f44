/* Optimized kernels for ARM NEON: aarch64 (Pi 3/4/Zero 2 W, 64-bit OS; tuned for Cortex-A53) and ARMv7
 * NEON (32-bit Raspberry Pi OS on Pi 2/3/Zero 2 W). One file: the intrinsics are the same, only the
 * horizontal reductions (vaddv* exist on aarch64 only) and the register blocking differ.
 * Contract: bnn_kernels.h; every _opt here is bit-exact with its _ref (tests/kernel_check.c).
 *
 * XNOR popcount: popcount(x ^ w) per 128 bits is eor + cnt (per-byte counts) + uadalp (pairwise add into
 * u16 lanes), the sequence an A53 issues at about one instruction per cycle. The u16 lanes are widened
 * into u32 (uadalp again) before they can overflow. Each 128-bit activation load is reused for a block
 * of output channels (and, on aarch64 with its 32 vector registers, for two rows at once), so the inner
 * loop does one weight load per eor. An odd word at the end of a row takes the same path on 64 bits.
 * Four channels' sums are reduced together (pairwise adds), turned into p = k - popcount and compared
 * with their thresholds in one vector step, giving four output bits at once.
 *
 * Integer first layer: int16 inputs x int8 weights widened to int16 and multiply-accumulated into int32
 * lanes (smlal), 8 inputs per step, 4 output channels per activation load; the k tail is scalar.
 * Exact: int32 sums of int16 x int8 products, the same integers the reference adds (in another order;
 * integer addition is associative). */
#include <arm_neon.h>

#include "bnn_kernels.h"
#include "window_words.h"

#if !defined(__ARM_NEON)
#error "kernels_neon.c needs NEON: aarch64, or 32-bit ARM with -mfpu=neon (e.g. -mcpu=cortex-a7)"
#endif

#if defined(__aarch64__)
#define XNOR_ROWS 2 /* 2 rows x 4 channels = 8 u16x8 + 8 u32x4 accumulators: fits the 32 q registers */
#else
#define XNOR_ROWS 1 /* 16 q registers on ARMv7: 4 + 4 accumulators, the activation and a weight */
#endif
#define XNOR_CH 4
/* A u16 lane gains at most 2 * 8 = 16 per 128-bit step: widen to u32 well before 65535 / 16 steps. */
#define FLUSH_STEPS 2048

#define ALWAYS_INLINE inline __attribute__((always_inline))

static ALWAYS_INLINE uint32_t hsum_u32(uint32x4_t v) {
#if defined(__aarch64__)
    return vaddvq_u32(v);
#else
    uint64x2_t s = vpaddlq_u32(v);
    return (uint32_t)(vgetq_lane_u64(s, 0) + vgetq_lane_u64(s, 1));
#endif
}

static ALWAYS_INLINE int32_t hsum_s32(int32x4_t v) {
#if defined(__aarch64__)
    return vaddvq_s32(v);
#else
    int64x2_t s = vpaddlq_s32(v);
    return (int32_t)(vgetq_lane_s64(s, 0) + vgetq_lane_s64(s, 1));
#endif
}

/* Four u32x4 partial-sum vectors -> one vector of their four sums (lane c = sum of vector c). */
static ALWAYS_INLINE uint32x4_t reduce4(uint32x4_t a, uint32x4_t b, uint32x4_t c, uint32x4_t d) {
#if defined(__aarch64__)
    return vpaddq_u32(vpaddq_u32(a, b), vpaddq_u32(c, d));
#else
    const uint32x2_t ab = vpadd_u32(vpadd_u32(vget_low_u32(a), vget_high_u32(a)),
                                    vpadd_u32(vget_low_u32(b), vget_high_u32(b)));
    const uint32x2_t cd = vpadd_u32(vpadd_u32(vget_low_u32(c), vget_high_u32(c)),
                                    vpadd_u32(vget_low_u32(d), vget_high_u32(d)));
    return vcombine_u32(ab, cd);
#endif
}

/* tot[r][c] = lane partial sums of popcount(x_r ^ w_c) over kw words, for nr rows and nc weight rows (both
 * of stride kw). nr and nc are compile-time constants at every call site, so the loops unroll into
 * registers. An odd last word goes through the same eor/cnt/uadalp on a 64-bit half (upper half zero). */
static ALWAYS_INLINE void xnor_block(const uint64_t *x, const uint64_t *w, size_t kw, const size_t nr,
                                     const size_t nc, uint32x4_t tot[XNOR_ROWS][XNOR_CH]) {
    for (size_t r = 0; r < nr; r++)
        for (size_t c = 0; c < nc; c++) tot[r][c] = vdupq_n_u32(0);
    const size_t pairs = kw / 2;
    size_t i = 0;
    do { /* chunks of at most FLUSH_STEPS steps (+ the odd word in the last chunk) */
        const size_t end = (pairs - i > FLUSH_STEPS) ? i + FLUSH_STEPS : pairs;
        uint16x8_t acc[XNOR_ROWS][XNOR_CH];
        for (size_t r = 0; r < nr; r++)
            for (size_t c = 0; c < nc; c++) acc[r][c] = vdupq_n_u16(0);
        for (; i < end; i++) {
            uint64x2_t xv[XNOR_ROWS];
            for (size_t r = 0; r < nr; r++) xv[r] = vld1q_u64(x + r * kw + 2 * i);
            for (size_t c = 0; c < nc; c++) {
                const uint64x2_t wv = vld1q_u64(w + c * kw + 2 * i);
                for (size_t r = 0; r < nr; r++)
                    acc[r][c] = vpadalq_u8(acc[r][c], vcntq_u8(vreinterpretq_u8_u64(veorq_u64(xv[r], wv))));
            }
        }
        if (i == pairs && (kw & 1)) {
            uint64x1_t xt[XNOR_ROWS];
            for (size_t r = 0; r < nr; r++) xt[r] = vld1_u64(x + r * kw + kw - 1);
            for (size_t c = 0; c < nc; c++) {
                const uint64x1_t wt = vld1_u64(w + c * kw + kw - 1);
                for (size_t r = 0; r < nr; r++) {
                    const uint8x8_t cnt = vcnt_u8(vreinterpret_u8_u64(veor_u64(xt[r], wt)));
                    acc[r][c] = vpadalq_u8(acc[r][c], vcombine_u8(cnt, vdup_n_u8(0)));
                }
            }
        }
        for (size_t r = 0; r < nr; r++)
            for (size_t c = 0; c < nc; c++) tot[r][c] = vpadalq_u16(tot[r][c], acc[r][c]);
    } while (i < pairs);
}

/* Store the values v of 4 channels j..j+3 (j % 4 == 0, so their bits share one output word) of one row:
 * as accumulators, or as threshold bits or-ed into the (zeroed) output row. */
static ALWAYS_INLINE void emit4(size_t row, size_t j, size_t mh, int32x4_t v, const int32_t *thresholds,
                                uint64_t *out_bits, int32_t *out_acc) {
    if (thresholds) {
        static const uint32_t lane_bit[4] = {1, 2, 4, 8};
        const uint32x4_t ge = vcgeq_s32(v, vld1q_s32(thresholds + j));
        const uint64_t nibble = hsum_u32(vandq_u32(ge, vld1q_u32(lane_bit)));
        out_bits[row * bnn_words(mh) + j / 64] |= nibble << (j % 64);
    } else {
        vst1q_s32(out_acc + row * mh + j, v);
    }
}

/* Store the value v of channel ch of one row (see emit4). */
static ALWAYS_INLINE void emit1(size_t row, size_t ch, size_t mh, int32_t v, const int32_t *thresholds,
                                uint64_t *out_bits, int32_t *out_acc) {
    if (thresholds)
        out_bits[row * bnn_words(mh) + ch / 64] |= (uint64_t)(v >= thresholds[ch]) << (ch % 64);
    else
        out_acc[row * mh + ch] = v;
}

/* One block of nr rows: all output channels, XNOR_CH (= 4) at a time, then the remaining ones one by one. */
static ALWAYS_INLINE void binary_rows(const bnn_mvau_params *p, const uint64_t *x, const uint64_t *w,
                                      uint64_t *out_bits, int32_t *out_acc, size_t row, const size_t nr) {
    const size_t k = p->k, mh = p->mh, kw = bnn_words(k);
    const int32_t *thresholds = p->thresholds;
    const uint64_t *xr = x + row * kw;
    const int32x4_t kv = vdupq_n_s32((int32_t)k);
    uint32x4_t tot[XNOR_ROWS][XNOR_CH];
    size_t j = 0;
    for (; j + XNOR_CH <= mh; j += XNOR_CH) {
        xnor_block(xr, w + j * kw, kw, nr, XNOR_CH, tot);
        for (size_t r = 0; r < nr; r++) {
            const uint32x4_t pop = reduce4(tot[r][0], tot[r][1], tot[r][2], tot[r][3]);
            emit4(row + r, j, mh, vsubq_s32(kv, vreinterpretq_s32_u32(pop)), thresholds, out_bits, out_acc);
        }
    }
    for (; j < mh; j++) {
        xnor_block(xr, w + j * kw, kw, nr, 1, tot);
        for (size_t r = 0; r < nr; r++)
            emit1(row + r, j, mh, (int32_t)k - (int32_t)hsum_u32(tot[r][0]), thresholds, out_bits, out_acc);
    }
}

void bnn_mvau_binary_opt(const bnn_mvau_params *p, const uint64_t *x, const uint64_t *w, uint64_t *out_bits,
                         int32_t *out_acc, size_t row_begin, size_t row_end) {
    const bnn_mvau_params q = *p; /* a local copy: stores to out_bits cannot change it (LP64 aliasing) */
    const size_t ow = bnn_words(q.mh);
    if (q.thresholds && row_end > row_begin)
        memset(out_bits + row_begin * ow, 0, (row_end - row_begin) * ow * sizeof(uint64_t));
    size_t r = row_begin;
    for (; r + XNOR_ROWS <= row_end; r += XNOR_ROWS) binary_rows(&q, x, w, out_bits, out_acc, r, XNOR_ROWS);
    for (; r < row_end; r++) binary_rows(&q, x, w, out_bits, out_acc, r, 1);
}

/* acc[c] = x . w_c for nc (compile-time) weight rows of k int8 (stride k). */
static ALWAYS_INLINE void integer_block(const int16_t *x, const int8_t *w, size_t k, const size_t nc,
                                        int32_t acc[XNOR_CH]) {
    int32x4_t a[XNOR_CH];
    for (size_t c = 0; c < nc; c++) a[c] = vdupq_n_s32(0);
    size_t i = 0;
    for (; i + 8 <= k; i += 8) {
        const int16x8_t xv = vld1q_s16(x + i);
        for (size_t c = 0; c < nc; c++) {
            const int16x8_t wv = vmovl_s8(vld1_s8(w + c * k + i));
            a[c] = vmlal_s16(a[c], vget_low_s16(xv), vget_low_s16(wv));
            a[c] = vmlal_s16(a[c], vget_high_s16(xv), vget_high_s16(wv));
        }
    }
    for (size_t c = 0; c < nc; c++) {
        int32_t s = hsum_s32(a[c]);
        for (size_t t = i; t < k; t++) s += (int32_t)x[t] * (int32_t)w[c * k + t];
        acc[c] = s;
    }
}

void bnn_mvau_integer_opt(const bnn_mvau_params *p, const int16_t *x, const int8_t *w, uint64_t *out_bits,
                          int32_t *out_acc, size_t row_begin, size_t row_end) {
    const size_t k = p->k, mh = p->mh, ow = bnn_words(mh);
    const int32_t *thresholds = p->thresholds;
    int32_t v[XNOR_CH];
    for (size_t r = row_begin; r < row_end; r++) {
        if (thresholds) memset(out_bits + r * ow, 0, ow * sizeof(uint64_t));
        const int16_t *xr = x + r * k;
        size_t j = 0;
        for (; j + XNOR_CH <= mh; j += XNOR_CH) {
            integer_block(xr, w + j * k, k, XNOR_CH, v);
            emit4(r, j, mh, vld1q_s32(v), thresholds, out_bits, out_acc);
        }
        for (; j < mh; j++) {
            integer_block(xr, w + j * k, k, 1, v);
            emit1(r, j, mh, v[0], thresholds, out_bits, out_acc);
        }
    }
}

BNN_DEFINE_WORD_KERNELS_OPT

const char *bnn_kernels_name(void) {
#if defined(__aarch64__)
    return "aarch64-neon";
#else
    return "armv7-neon";
#endif
}

/* bgemm (the fused binary convolution's matrix, conv.c): the portable micro-kernels for now. */
#include "bgemm_scalar.h"

/* Integer weights are read as they are (no load-time layout). */
size_t bnn_mvau_integer_prepared_bytes_opt(size_t mh, size_t k, int32_t x_min, int32_t x_max) {
    (void)mh, (void)k, (void)x_min, (void)x_max;
    return 0;
}
void bnn_mvau_integer_prepare_opt(size_t mh, size_t k, int32_t x_min, int32_t x_max, const int8_t *w,
                                  void *prepared) {
    (void)mh, (void)k, (void)x_min, (void)x_max, (void)w, (void)prepared;
}

/* Bit-plane passes for few-bit integer layers: not measured on this family, so off by default (BNN_BITPLANE=1
 * turns them on; the packing is the reference's). */
int bnn_bitplane_native(void) { return 0; }

void bnn_pack_planes_opt(const int16_t *x, size_t rows, size_t k, int32_t lo, size_t planes, uint64_t *out,
                         int32_t *pops) {
    bnn_pack_planes_ref(x, rows, k, lo, planes, out, pops);
}
