/* Optimized kernels for ARMv6 without NEON: the ARM1176JZF-S of the Raspberry Pi Zero / Zero W / Pi 1
 * (32-bit Raspberry Pi OS). It has no popcount instruction and no vector unit, but it does have the
 * ARMv6 "SIMD32" DSP instructions (SMLAD: two 16x16 multiply-accumulates; SXTB16: two sign extensions).
 * Contract: bnn_kernels.h; every _opt here is bit-exact with its _ref (tests/kernel_check.c).
 * The file is portable C apart from the SIMD32 intrinsics (guarded), so it also builds and is checked
 * natively on any host.
 *
 * XNOR popcount: SWAR ("bit-twiddling") popcount on the two 32-bit halves of each 64-bit word: 2-bit and
 * 4-bit partial sums per half, the halves added as nibbles (<= 8), then bytes (<= 16 per word). Byte sums
 * are accumulated over up to 15 words (<= 240, no carry between bytes) before one horizontal fold, so the
 * per-word cost is ~17 single-cycle ALU operations (the barrel shifter folds the shifts into the ands).
 * Register blocking: each activation word is loaded once for XNOR_CH output channels; with 13 usable
 * core registers and four mask constants, two channels keep everything in registers.
 *
 * Integer first layer: four int16 inputs are regrouped once into (x0,x2) and (x1,x3) pairs; for each
 * output channel one 32-bit load of four int8 weights, two SXTB16 (bytes 0,2 and 1,3 sign-extended to
 * halves) and two SMLAD do four exact multiply-accumulates. */
#include <string.h>

#include "bnn_kernels.h"
#include "window_words.h"

#if defined(__ARM_FEATURE_SIMD32)
#include <arm_acle.h>
#endif

#define XNOR_CH 2 /* output channels per activation load (register blocking; see above) */
#define INTEGER_CH 4
#define BYTE_ACC_WORDS 15 /* 15 words x <= 16 per byte = 240 < 256 */

#define ALWAYS_INLINE inline __attribute__((always_inline))

static const uint32_t M1 = 0x55555555u, M2 = 0x33333333u, M4 = 0x0f0f0f0fu, M8 = 0x00ff00ffu;

/* Per-byte popcounts (each <= 16) of the 64-bit word with halves lo, hi. */
static ALWAYS_INLINE uint32_t pop_bytes64(uint32_t lo, uint32_t hi) {
    lo -= (lo >> 1) & M1;
    hi -= (hi >> 1) & M1;
    lo = (lo & M2) + ((lo >> 2) & M2);
    hi = (hi & M2) + ((hi >> 2) & M2);
    const uint32_t s = lo + hi; /* nibbles <= 8 */
    return (s & M4) + ((s >> 4) & M4);
}

/* Sum of the four bytes of a byte accumulator. */
static ALWAYS_INLINE uint32_t fold_bytes(uint32_t acc) {
    acc = (acc & M8) + ((acc >> 8) & M8);
    return (acc & 0xffffu) + (acc >> 16);
}

/* pop[c] = popcount(x ^ w_c) over kw words for nc (compile-time) weight rows of stride kw. */
static ALWAYS_INLINE void xnor_block(const uint64_t *x, const uint64_t *w, size_t kw, const size_t nc,
                                     uint32_t pop[XNOR_CH]) {
    uint32_t tot[XNOR_CH];
    for (size_t c = 0; c < nc; c++) tot[c] = 0;
    for (size_t i = 0; i < kw;) {
        const size_t end = (kw - i > BYTE_ACC_WORDS) ? i + BYTE_ACC_WORDS : kw;
        uint32_t acc[XNOR_CH];
        for (size_t c = 0; c < nc; c++) acc[c] = 0;
        for (; i < end; i++) {
            const uint64_t xv = x[i];
            const uint32_t xl = (uint32_t)xv, xh = (uint32_t)(xv >> 32);
            for (size_t c = 0; c < nc; c++) {
                const uint64_t wv = w[c * kw + i];
                acc[c] += pop_bytes64(xl ^ (uint32_t)wv, xh ^ (uint32_t)(wv >> 32));
            }
        }
        for (size_t c = 0; c < nc; c++) tot[c] += fold_bytes(acc[c]);
    }
    for (size_t c = 0; c < nc; c++) pop[c] = tot[c];
}

/* Store value v of (row, channel ch) as an accumulator or a threshold bit (bit rows zeroed by the caller). */
static ALWAYS_INLINE void emit(size_t row, size_t ch, size_t mh, int32_t v, const int32_t *thresholds,
                               uint64_t *out_bits, int32_t *out_acc) {
    if (thresholds)
        out_bits[row * bnn_words(mh) + ch / 64] |= (uint64_t)(v >= thresholds[ch]) << (ch % 64);
    else
        out_acc[row * mh + ch] = v;
}

void bnn_mvau_binary_opt(const bnn_mvau_params *p, const uint64_t *x, const uint64_t *w, uint64_t *out_bits,
                         int32_t *out_acc, size_t row_begin, size_t row_end) {
    const size_t k = p->k, mh = p->mh, kw = bnn_words(k), ow = bnn_words(mh);
    const int32_t *thresholds = p->thresholds;
    uint32_t pop[XNOR_CH];
    for (size_t r = row_begin; r < row_end; r++) {
        const uint64_t *xr = x + r * kw;
        if (thresholds) memset(out_bits + r * ow, 0, ow * sizeof(uint64_t));
        size_t j = 0;
        for (; j + XNOR_CH <= mh; j += XNOR_CH) {
            xnor_block(xr, w + j * kw, kw, XNOR_CH, pop);
            for (size_t c = 0; c < XNOR_CH; c++)
                emit(r, j + c, mh, (int32_t)k - (int32_t)pop[c], thresholds, out_bits, out_acc);
        }
        for (; j < mh; j++) {
            xnor_block(xr, w + j * kw, kw, 1, pop);
            emit(r, j, mh, (int32_t)k - (int32_t)pop[0], thresholds, out_bits, out_acc);
        }
    }
}

static ALWAYS_INLINE uint32_t load32(const void *p) { /* unaligned-safe; one ldr on ARMv6 */
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* acc[c] = x . w_c for nc (compile-time) weight rows of k int8 (stride k). */
static ALWAYS_INLINE void integer_block(const int16_t *x, const int8_t *w, size_t k, const size_t nc,
                                        int32_t acc[INTEGER_CH]) {
    int32_t a[INTEGER_CH];
    for (size_t c = 0; c < nc; c++) a[c] = 0;
    size_t i = 0;
#if defined(__ARM_FEATURE_SIMD32)
    for (; i + 4 <= k; i += 4) {
        const uint32_t x01 = load32(x + i), x23 = load32(x + i + 2);
        const int16x2_t x02 = (int16x2_t)((x01 & 0xffffu) | (x23 << 16));        /* pkhbt: (x0, x2) */
        const int16x2_t x13 = (int16x2_t)((x01 >> 16) | (x23 & 0xffff0000u));    /* pkhtb: (x1, x3) */
        for (size_t c = 0; c < nc; c++) {
            const int8x4_t wq = (int8x4_t)load32(w + c * k + i);
            a[c] = __smlad(x02, (int16x2_t)__sxtb16(wq), a[c]);                   /* x0*w0 + x2*w2 */
            a[c] = __smlad(x13, (int16x2_t)__sxtb16((int8x4_t)__ror((uint32_t)wq, 8)), a[c]); /* x1*w1 + x3*w3 */
        }
    }
#endif
    for (size_t c = 0; c < nc; c++) {
        int32_t s = a[c];
        for (size_t t = i; t < k; t++) s += (int32_t)x[t] * (int32_t)w[c * k + t];
        acc[c] = s;
    }
}

void bnn_mvau_integer_opt(const bnn_mvau_params *p, const int16_t *x, const int8_t *w, uint64_t *out_bits,
                          int32_t *out_acc, size_t row_begin, size_t row_end) {
    const size_t k = p->k, mh = p->mh, ow = bnn_words(mh);
    const int32_t *thresholds = p->thresholds;
    int32_t acc[INTEGER_CH];
    for (size_t r = row_begin; r < row_end; r++) {
        if (thresholds) memset(out_bits + r * ow, 0, ow * sizeof(uint64_t));
        const int16_t *xr = x + r * k;
        size_t j = 0;
        for (; j + INTEGER_CH <= mh; j += INTEGER_CH) {
            integer_block(xr, w + j * k, k, INTEGER_CH, acc);
            for (size_t c = 0; c < INTEGER_CH; c++) emit(r, j + c, mh, acc[c], thresholds, out_bits, out_acc);
        }
        for (; j < mh; j++) {
            integer_block(xr, w + j * k, k, 1, acc);
            emit(r, j, mh, acc[0], thresholds, out_bits, out_acc);
        }
    }
}

BNN_DEFINE_WORD_KERNELS_OPT

const char *bnn_kernels_name(void) { return "armv6-swar"; }

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
