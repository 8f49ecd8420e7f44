/* Optimized x86-64 kernels, variant chosen at build time by the compiler's target macros:
 *   AVX-512F/VL + VPOPCNTDQ : 512-bit XOR + vpopcntq, 2 rows x 8 output channels per block
 *   AVX2                 : 256-bit XOR + nibble-table popcount (vpshufb) summed per byte, 2 rows x 4 channels
 *   otherwise            : scalar popcnt (the generic x86-64 baseline)
 * Shared by all: window / OR max-pool / integer window on whole words (window_words.h, shared with the ARM
 * files); integer MVAU with vpmaddwd over 16 output channels (AVX2 / AVX-512 builds) or scalar, and on weights
 * prepared at load time (x86_integer.h: pairs, or VNNI quads); the bgemm of the fused convolution and of
 * batched FC layers (x86_avx512.h, else the portable bgemm_scalar.h).
 * Every function here computes exactly what its _ref twin in kernels_ref.c computes (tested over a grid).
 * Block scheme (all variants): output channels in blocks, rows in pairs inside a block, so the block's
 * weight rows stay in L1 while activation rows stream; per-(row, channel) partial sums stay in vector
 * registers along k and are reduced once per block with a transpose-add tree. */
#include <string.h>

#include "bnn_kernels.h"
#include "window_words.h"

#if defined(__AVX512F__) && defined(__AVX512VL__) && defined(__AVX512VPOPCNTDQ__)
#define BNN_X86_AVX512 1
#include <immintrin.h>
#elif defined(__AVX2__)
#define BNN_X86_AVX2 1
#include <immintrin.h>
#endif

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Zero the packed output rows [r0, r1) before the blocks OR their bits in. */
static void clear_rows(uint64_t *out_bits, size_t r0, size_t r1, size_t mh) {
    if (out_bits) memset(out_bits + r0 * bnn_words(mh), 0, (r1 - r0) * bnn_words(mh) * sizeof(uint64_t));
}

#if BNN_X86_AVX512
/* Sum of each of 8 vectors' lanes, as the 8 lanes of one vector (unpack/shuffle transpose-add tree). */
ALWAYS_INLINE __m512i hsum8(const __m512i a[8]) {
    __m512i b[4], c[2];
    for (int i = 0; i < 4; i++)
        b[i] = _mm512_add_epi64(_mm512_unpacklo_epi64(a[2 * i], a[2 * i + 1]),
                                _mm512_unpackhi_epi64(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 2; i++) /* 128-bit blocks: [b0.0 b0.2 b1.0 b1.2] + [b0.1 b0.3 b1.1 b1.3] */
        c[i] = _mm512_add_epi64(_mm512_shuffle_i64x2(b[2 * i], b[2 * i + 1], 0x88),
                                _mm512_shuffle_i64x2(b[2 * i], b[2 * i + 1], 0xDD));
    return _mm512_add_epi64(_mm512_shuffle_i64x2(c[0], c[1], 0x88), _mm512_shuffle_i64x2(c[0], c[1], 0xDD));
}

/* R rows (1 or 2) x 8 channels [j0, j0 + nc): popcounts of x ^ w into 8-lane vectors, then bits or accs. */
ALWAYS_INLINE void binary_block512(const bnn_mvau_params *p, const uint64_t *x, const uint64_t *w, uint64_t *out_bits,
                                   int32_t *out_acc, size_t r, int R, size_t j0, size_t nc) {
    const size_t k = p->k, mh = p->mh, kw = bnn_words(k);
    const int32_t *thresholds = p->thresholds;
    const uint64_t *wr[8];
    for (size_t c = 0; c < 8; c++) wr[c] = w + (j0 + (c < nc ? c : nc - 1)) * kw; /* clamp: a valid row */
    __m512i acc[2][8];
    /* The k tail (kw % 8 words) first, at the narrowest width that holds it, straight into the
     * accumulators (zero-extended): a 2-word tail costs 128-bit ops instead of a full 512-bit step.
     * Masked loads read zeros past the tail on both sides, and zeros xor to zero. */
    const size_t full = kw / 8 * 8, rem = kw - full;
    const __mmask8 m = (__mmask8)((1u << rem) - 1);
    for (int c = 0; c < 8; c++) {
        for (int q = 0; q < R; q++) {
            const uint64_t *xp = x + (r + q) * kw + full, *wp = wr[c] + full;
            if (rem == 0)
                acc[q][c] = _mm512_setzero_si512();
            else if (rem <= 2)
                acc[q][c] = _mm512_zextsi128_si512(_mm_popcnt_epi64(
                    _mm_xor_si128(_mm_maskz_loadu_epi64(m, xp), _mm_maskz_loadu_epi64(m, wp))));
            else if (rem <= 4)
                acc[q][c] = _mm512_zextsi256_si512(_mm256_popcnt_epi64(
                    _mm256_xor_si256(_mm256_maskz_loadu_epi64(m, xp), _mm256_maskz_loadu_epi64(m, wp))));
            else
                acc[q][c] = _mm512_popcnt_epi64(
                    _mm512_xor_si512(_mm512_maskz_loadu_epi64(m, xp), _mm512_maskz_loadu_epi64(m, wp)));
        }
    }
    for (size_t i = 0; i < full; i += 8) {
        __m512i xv[2];
        for (int q = 0; q < R; q++) xv[q] = _mm512_loadu_si512(x + (r + q) * kw + i);
        for (int c = 0; c < 8; c++) {
            __m512i wv = _mm512_loadu_si512(wr[c] + i);
            for (int q = 0; q < R; q++)
                acc[q][c] = _mm512_add_epi64(acc[q][c], _mm512_popcnt_epi64(_mm512_xor_si512(xv[q], wv)));
        }
    }
    __mmask8 valid = (__mmask8)((1u << nc) - 1);
    for (int q = 0; q < R; q++) {
        __m512i agree = _mm512_sub_epi64(_mm512_set1_epi64((long long)k), hsum8(acc[q]));
        if (thresholds) {
            __m512i t = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(valid, thresholds + j0));
            __mmask8 bits = _mm512_mask_cmpge_epi64_mask(valid, agree, t);
            out_bits[(r + q) * bnn_words(mh) + j0 / 64] |= (uint64_t)bits << (j0 % 64);
        } else {
            _mm256_mask_storeu_epi32(out_acc + (r + q) * mh + j0, valid, _mm512_cvtepi64_epi32(agree));
        }
    }
}

void bnn_mvau_binary_opt(const bnn_mvau_params *p, const uint64_t *x, const uint64_t *w, uint64_t *out_bits,
                         int32_t *out_acc, size_t row_begin, size_t row_end) {
    const bnn_mvau_params q = *p; /* a local copy: stores to out_bits cannot change it (LP64 aliasing) */
    clear_rows(q.thresholds ? out_bits : NULL, row_begin, row_end, q.mh);
    for (size_t j0 = 0; j0 < q.mh; j0 += 8) {
        size_t nc = q.mh - j0 < 8 ? q.mh - j0 : 8, r = row_begin;
        for (; r + 2 <= row_end; r += 2) binary_block512(&q, x, w, out_bits, out_acc, r, 2, j0, nc);
        if (r < row_end) binary_block512(&q, x, w, out_bits, out_acc, r, 1, j0, nc);
    }
}

const char *bnn_kernels_name(void) { return "x86-avx512-vpopcntdq"; }

#elif BNN_X86_AVX2
/* Per-byte popcount of v (nibble table lookup, Mula's method). */
ALWAYS_INLINE __m256i popcnt_bytes(__m256i v, __m256i lut, __m256i low) {
    __m256i lo = _mm256_and_si256(v, low), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

/* Sum of each of 4 vectors' 4 lanes, as the 4 lanes of one vector. */
ALWAYS_INLINE __m256i hsum4(__m256i a0, __m256i a1, __m256i a2, __m256i a3) {
    __m256i t01 = _mm256_add_epi64(_mm256_unpacklo_epi64(a0, a1), _mm256_unpackhi_epi64(a0, a1));
    __m256i t23 = _mm256_add_epi64(_mm256_unpacklo_epi64(a2, a3), _mm256_unpackhi_epi64(a2, a3));
    return _mm256_add_epi64(_mm256_permute2x128_si256(t01, t23, 0x20), _mm256_permute2x128_si256(t01, t23, 0x31));
}

#define AVX2_BATCH 31 /* 256-bit steps per byte-counter flush: 31 * 8 = 248 fits a byte */

/* R rows (1 or 2) x 4 channels [j0, j0 + nc). */
ALWAYS_INLINE void binary_block256(const bnn_mvau_params *p, const uint64_t *x, const uint64_t *w, uint64_t *out_bits,
                                   int32_t *out_acc, size_t r, int R, size_t j0, size_t nc) {
    const size_t k = p->k, mh = p->mh, kw = bnn_words(k);
    const int32_t *thresholds = p->thresholds;
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2,
                                         2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0F), zero = _mm256_setzero_si256();
    const uint64_t *wr[4];
    for (size_t c = 0; c < 4; c++) wr[c] = w + (j0 + (c < nc ? c : nc - 1)) * kw;
    __m256i acc[2][4];
    for (int q = 0; q < R; q++)
        for (int c = 0; c < 4; c++) acc[q][c] = zero;
    for (size_t b0 = 0; b0 < kw; b0 += 4 * AVX2_BATCH) {
        size_t b1 = kw - b0 > 4 * AVX2_BATCH ? b0 + 4 * AVX2_BATCH : kw;
        __m256i cnt[2][4];
        for (int q = 0; q < R; q++)
            for (int c = 0; c < 4; c++) cnt[q][c] = zero;
        size_t i = b0;
        for (; i + 4 <= b1; i += 4) {
            __m256i xv[2];
            for (int q = 0; q < R; q++) xv[q] = _mm256_loadu_si256((const __m256i *)(x + (r + q) * kw + i));
            for (int c = 0; c < 4; c++) {
                __m256i wv = _mm256_loadu_si256((const __m256i *)(wr[c] + i));
                for (int q = 0; q < R; q++)
                    cnt[q][c] = _mm256_add_epi8(cnt[q][c], popcnt_bytes(_mm256_xor_si256(xv[q], wv), lut, low));
            }
        }
        if (i + 2 == b1) { /* 2 words left: one 128-bit step (zero-extended) instead of a 256-bit one */
            for (int c = 0; c < 4; c++)
                for (int q = 0; q < R; q++) {
                    __m128i v = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(x + (r + q) * kw + i)),
                                              _mm_loadu_si128((const __m128i *)(wr[c] + i)));
                    cnt[q][c] = _mm256_add_epi8(cnt[q][c], popcnt_bytes(_mm256_zextsi128_si256(v), lut, low));
                }
        } else if (i < b1) { /* 1 or 3 words left: masked loads give zeros on both sides, which xor to zero */
            __m256i xv[2], m = _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(b1 - i)), _mm256_setr_epi64x(0, 1, 2, 3));
            for (int q = 0; q < R; q++) xv[q] = _mm256_maskload_epi64((const long long *)(x + (r + q) * kw + i), m);
            for (int c = 0; c < 4; c++) {
                __m256i wv = _mm256_maskload_epi64((const long long *)(wr[c] + i), m);
                for (int q = 0; q < R; q++)
                    cnt[q][c] = _mm256_add_epi8(cnt[q][c], popcnt_bytes(_mm256_xor_si256(xv[q], wv), lut, low));
            }
        }
        for (int q = 0; q < R; q++)
            for (int c = 0; c < 4; c++) acc[q][c] = _mm256_add_epi64(acc[q][c], _mm256_sad_epu8(cnt[q][c], zero));
    }
    for (int q = 0; q < R; q++) {
        __m256i agree =
            _mm256_sub_epi64(_mm256_set1_epi64x((long long)k), hsum4(acc[q][0], acc[q][1], acc[q][2], acc[q][3]));
        if (thresholds && nc == 4) { /* agree >= t  <=>  agree > t - 1, one compare for the 4 channels */
            __m256i t = _mm256_cvtepi32_epi64(_mm_loadu_si128((const __m128i *)(thresholds + j0)));
            __m256i ge = _mm256_cmpgt_epi64(agree, _mm256_sub_epi64(t, _mm256_set1_epi64x(1)));
            uint64_t bits = (uint64_t)_mm256_movemask_pd(_mm256_castsi256_pd(ge));
            out_bits[(r + q) * bnn_words(mh) + j0 / 64] |= bits << (j0 % 64);
            continue;
        }
        int64_t pv[4];
        _mm256_storeu_si256((__m256i *)pv, agree);
        if (thresholds) {
            uint64_t bits = 0;
            for (size_t c = 0; c < nc; c++) bits |= (uint64_t)(pv[c] >= thresholds[j0 + c]) << c;
            out_bits[(r + q) * bnn_words(mh) + j0 / 64] |= bits << (j0 % 64);
        } else {
            for (size_t c = 0; c < nc; c++) out_acc[(r + q) * mh + j0 + c] = (int32_t)pv[c];
        }
    }
}

void bnn_mvau_binary_opt(const bnn_mvau_params *p, const uint64_t *x, const uint64_t *w, uint64_t *out_bits,
                         int32_t *out_acc, size_t row_begin, size_t row_end) {
    const bnn_mvau_params q = *p; /* a local copy: stores to out_bits cannot change it (LP64 aliasing) */
    clear_rows(q.thresholds ? out_bits : NULL, row_begin, row_end, q.mh);
    for (size_t j0 = 0; j0 < q.mh; j0 += 4) {
        size_t nc = q.mh - j0 < 4 ? q.mh - j0 : 4, r = row_begin;
        for (; r + 2 <= row_end; r += 2) binary_block256(&q, x, w, out_bits, out_acc, r, 2, j0, nc);
        if (r < row_end) binary_block256(&q, x, w, out_bits, out_acc, r, 1, j0, nc);
    }
}

const char *bnn_kernels_name(void) { return "x86-avx2"; }

#else
/* Scalar popcnt: 2 rows x 4 channels per block, so each loaded word feeds several popcounts. */
ALWAYS_INLINE void binary_block64(const bnn_mvau_params *p, const uint64_t *x, const uint64_t *w, uint64_t *out_bits,
                                  int32_t *out_acc, size_t r, int R, size_t j0, size_t nc) {
    const size_t k = p->k, mh = p->mh, kw = bnn_words(k);
    const int32_t *thresholds = p->thresholds;
    const uint64_t *wr[4];
    for (size_t c = 0; c < 4; c++) wr[c] = w + (j0 + (c < nc ? c : nc - 1)) * kw;
    uint64_t d[2][4] = {{0}};
    for (size_t i = 0; i < kw; i++) {
        uint64_t xv[2];
        for (int q = 0; q < R; q++) xv[q] = x[(r + q) * kw + i];
        for (int c = 0; c < 4; c++)
            for (int q = 0; q < R; q++) d[q][c] += (uint64_t)__builtin_popcountll(xv[q] ^ wr[c][i]);
    }
    for (int q = 0; q < R; q++) {
        for (size_t c = 0; c < nc; c++) {
            int32_t agree = (int32_t)k - (int32_t)d[q][c];
            if (thresholds)
                out_bits[(r + q) * bnn_words(mh) + (j0 + c) / 64] |= (uint64_t)(agree >= thresholds[j0 + c])
                                                                     << ((j0 + c) % 64);
            else
                out_acc[(r + q) * mh + j0 + c] = agree;
        }
    }
}

void bnn_mvau_binary_opt(const bnn_mvau_params *p, const uint64_t *x, const uint64_t *w, uint64_t *out_bits,
                         int32_t *out_acc, size_t row_begin, size_t row_end) {
    const bnn_mvau_params q = *p; /* a local copy: stores to out_bits cannot change it (LP64 aliasing) */
    clear_rows(q.thresholds ? out_bits : NULL, row_begin, row_end, q.mh);
    for (size_t j0 = 0; j0 < q.mh; j0 += 4) {
        size_t nc = q.mh - j0 < 4 ? q.mh - j0 : 4, r = row_begin;
        for (; r + 2 <= row_end; r += 2) binary_block64(&q, x, w, out_bits, out_acc, r, 2, j0, nc);
        if (r < row_end) binary_block64(&q, x, w, out_bits, out_acc, r, 1, j0, nc);
    }
}

const char *bnn_kernels_name(void) { return "x86-64-popcnt"; }
#endif

/* ---- integer first layer ---- */
#if BNN_X86_AVX512 || BNN_X86_AVX2
#define INTEGER_KP 128 /* k pairs per chunk: the interleaved weights (128 x 16 ch x 2 int16 = 8 KiB) on the stack */

/* Weight pairs of channels [j0, j0 + 16) for k pairs [p0, p0 + np): wt[p][c] = (w[c][2p], w[c][2p+1]) as int16,
 * zero for channels >= nc and for the element past an odd k. */
static void integer_pairs(const int8_t *w, size_t k, size_t j0, size_t nc, size_t p0, size_t np,
                          int16_t wt[][16][2]) {
    for (size_t pr = 0; pr < np; pr++)
        for (size_t c = 0; c < 16; c++)
            for (size_t e = 0; e < 2; e++) {
                size_t i = 2 * (p0 + pr) + e;
                wt[pr][c][e] = c < nc && i < k ? w[(j0 + c) * k + i] : 0;
            }
}

/* x pair (x[i], x[i+1]) broadcast as one 32-bit lane (a little-endian load of both); past an odd k the
 * second element is 0 (and never read: it may lie beyond the buffer). */
ALWAYS_INLINE __m256i x_pair(const int16_t *xr, size_t i, size_t k) {
    int32_t v;
    if (i + 1 < k) {
        memcpy(&v, xr + i, sizeof v);
    } else {
        v = (int32_t)(uint16_t)xr[i];
    }
    return _mm256_set1_epi32(v);
}

/* Rows [r0, r1) x 16 channels [j0, j0 + nc): vpmaddwd sums two products per int32 lane (no overflow:
 * |x| <= 2^15 and |w| <= 2^7 give |pair| <= 2^23). */
static void integer_block16(const bnn_mvau_params *p, const int16_t *x, const int8_t *w, uint64_t *out_bits,
                            int32_t *out_acc, size_t r0, size_t r1, size_t j0, size_t nc) {
    const size_t k = p->k, mh = p->mh;
    const int32_t *thresholds = p->thresholds;
    int16_t wt[INTEGER_KP][16][2];
    const size_t pairs = (k + 1) / 2;
    for (size_t r = r0; r < r1; r++) {
        __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
        const int16_t *xr = x + r * k;
        for (size_t p0 = 0; p0 < pairs; p0 += INTEGER_KP) {
            size_t np = pairs - p0 < INTEGER_KP ? pairs - p0 : INTEGER_KP;
            if (r == r0 || pairs > INTEGER_KP) integer_pairs(w, k, j0, nc, p0, np, wt); /* rebuilt only on change */
            for (size_t pr = 0; pr < np; pr++) {
                __m256i xv = x_pair(xr, 2 * (p0 + pr), k);
                acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(xv, _mm256_loadu_si256((const __m256i *)wt[pr][0])));
                acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(xv, _mm256_loadu_si256((const __m256i *)wt[pr][8])));
            }
        }
        int32_t a[16];
        _mm256_storeu_si256((__m256i *)a, acc0);
        _mm256_storeu_si256((__m256i *)(a + 8), acc1);
        if (thresholds) {
            uint64_t bits = 0;
            for (size_t c = 0; c < nc; c++) bits |= (uint64_t)(a[c] >= thresholds[j0 + c]) << c;
            out_bits[r * bnn_words(mh) + j0 / 64] |= bits << (j0 % 64);
        } else {
            for (size_t c = 0; c < nc; c++) out_acc[r * mh + j0 + c] = a[c];
        }
    }
}

#include "x86_integer.h"

void bnn_mvau_integer_opt(const bnn_mvau_params *p, const int16_t *x, const int8_t *w, uint64_t *out_bits,
                          int32_t *out_acc, size_t row_begin, size_t row_end) {
    const bnn_mvau_params q = *p; /* a local copy: stores to out_bits cannot change it (LP64 aliasing) */
    if (q.prepared) {
        integer_prepared(&q, x, out_bits, out_acc, row_begin, row_end);
        return;
    }
    clear_rows(q.thresholds ? out_bits : NULL, row_begin, row_end, q.mh);
    for (size_t j0 = 0; j0 < q.mh; j0 += 16)
        integer_block16(&q, x, w, out_bits, out_acc, row_begin, row_end, j0, q.mh - j0 < 16 ? q.mh - j0 : 16);
}
#else
void bnn_mvau_integer_opt(const bnn_mvau_params *p, const int16_t *x, const int8_t *w, uint64_t *out_bits,
                          int32_t *out_acc, size_t row_begin, size_t row_end) {
    bnn_mvau_integer_ref(p, x, w, out_bits, out_acc, row_begin, row_end);
}
size_t bnn_mvau_integer_prepared_bytes_opt(size_t mh, size_t k, int32_t x_min, int32_t x_max) {
    (void)mh, (void)k, (void)x_min, (void)x_max;
    return 0;
}
void bnn_mvau_integer_prepare_opt(size_t mh, size_t k, int32_t x_min, int32_t x_max, const int8_t *w,
                                  void *prepared) {
    (void)mh, (void)k, (void)x_min, (void)x_max, (void)w, (void)prepared;
}
#endif

/* ---- sliding window and max-pool: the word-level loops shared with the ARM files (window_words.h);
 * they are memory bound, and the compiler vectorizes their word loops for the build's ISA. ---- */

BNN_DEFINE_WORD_KERNELS_OPT

/* ---- bgemm: the matrix of the fused binary convolution (conv.c) ---- */
#if BNN_X86_AVX512
#define UNROLL _Pragma("GCC unroll 16")
#include "x86_avx512.h"
#include "bgemm_lanes.h"
#else
#define BNN_BGEMM_SCALAR_NATIVE 1 /* popcnt: the portable bgemm wins on narrow maps (measured: demo net) */
#include "bgemm_scalar.h"
#endif

int bnn_bitplane_native(void) {
#if BNN_X86_AVX2 && !BNN_X86_AVX512
    return 0; /* the AVX2 integer kernel: 1.49 vs 2.21 ms per W1A2 CNV image with bit planes */
#else
    return 1; /* AVX-512: 0.98 -> 0.56 ms; popcnt only: 3.56 -> 2.67 ms */
#endif
}

#if BNN_X86_AVX512 && defined(__AVX512BW__)
/* 64 elements per word: two masked 32 x int16 loads, minus lo, then one vptestmw per plane gives 32 bits. */
void bnn_pack_planes_opt(const int16_t *x, size_t rows, size_t k, int32_t lo, size_t planes, uint64_t *out,
                         int32_t *pops) {
    const size_t kw = bnn_words(k);
    const __m512i vlo = _mm512_set1_epi16((short)lo);
    for (size_t r = 0; r < rows; r++) {
        const int16_t *xr = x + r * k;
        int32_t pop[16] = {0};
        for (size_t wi = 0; wi < kw; wi++) {
            const size_t n = k - wi * 64 < 64 ? k - wi * 64 : 64;
            const __mmask32 m0 = n >= 32 ? 0xFFFFFFFFu : (__mmask32)((1u << n) - 1u);
            const __mmask32 m1 = n >= 64 ? 0xFFFFFFFFu : n > 32 ? (__mmask32)((1u << (n - 32)) - 1u) : 0;
            const __m512i a0 = _mm512_sub_epi16(_mm512_maskz_loadu_epi16(m0, xr + wi * 64), vlo);
            const __m512i a1 = _mm512_sub_epi16(_mm512_maskz_loadu_epi16(m1, xr + wi * 64 + 32), vlo);
            for (size_t b = 0; b < planes; b++) {
                const __m512i bit = _mm512_set1_epi16((short)(1u << b));
                const uint64_t w = (uint64_t)_mm512_mask_test_epi16_mask(m0, a0, bit) |
                                   (uint64_t)_mm512_mask_test_epi16_mask(m1, a1, bit) << 32;
                out[(b * rows + r) * kw + wi] = w;
                pop[b] += __builtin_popcountll(w);
            }
        }
        for (size_t b = 0; b < planes; b++) pops[r * planes + b] = pop[b];
    }
}
#else
void bnn_pack_planes_opt(const int16_t *x, size_t rows, size_t k, int32_t lo, size_t planes, uint64_t *out,
                         int32_t *pops) {
    bnn_pack_planes_ref(x, rows, k, lo, planes, out, pops);
}
#endif
