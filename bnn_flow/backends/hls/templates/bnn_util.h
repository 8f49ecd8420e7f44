// bnn_util.h - element access in packed stream beats, popcount, weight words.
//
// A beat of a stream carrying E elements of EB bits is an ap_uint<E*EB>: element i at bits
// [i*EB, (i+1)*EB), LSB first; signed elements are two's complement within their slot.
// Weight and threshold arrays are plain C integer arrays (uint8_t .. uint64_t words, int8_t .. int64_t
// thresholds) so that huge generated initializers compile fast; a weight tile of N bits is one word of the
// narrowest type holding it, or WPT = ceil(N/64) 64-bit words.
#ifndef BNN_UTIL_H
#define BNN_UTIL_H

#include <stdint.h>

#include <ap_int.h>

#include "bnn_stream.h"

// BNN_FAST_CSIM: C-simulation replaces the cycle-by-cycle loops of the MVAU by a whole-vector
// computation on 64-bit words (same stream tokens in and out), and the bit-level helpers below by
// shifts and CPU popcounts. Define BNN_NO_FAST_CSIM to simulate exactly the synthesizable code
// (the template tests run both).
#if !defined(__SYNTHESIS__) && !defined(BNN_NO_FAST_CSIM)
#define BNN_FAST_CSIM 1
#else
#define BNN_FAST_CSIM 0
#endif

// Inter-layer streams of a generated top function: static in C-simulation so their storage survives
// between calls (no per-frame heap churn), plain locals for synthesis.
#ifndef __SYNTHESIS__
#define BNN_CSIM_STATIC static
#else
#define BNN_CSIM_STATIC
#endif

namespace bnn {

constexpr unsigned words_for(unsigned bits) { return (bits + 63) / 64; }

// Bits [lo, lo+64) of x (fewer at the top end), as a uint64.
template <unsigned N>
inline uint64_t word_of(const ap_uint<N>& x, unsigned j) {
  if (N <= 64) return x.to_uint64();
  const unsigned lo = 64 * j;
  const unsigned hi = (lo + 64 < N ? lo + 64 : N) - 1;
  return x(hi, lo).to_uint64();
}

// Number of one bits of an N-bit word. C-simulation uses the CPU's popcount on 64-bit chunks; synthesis
// sees an adder tree over the bits.
template <unsigned N>
inline unsigned popcount(const ap_uint<N>& x) {
#if BNN_FAST_CSIM
  unsigned c = 0;
  for (unsigned j = 0; j < words_for(N); j++) c += __builtin_popcountll(word_of<N>(x, j));
  return c;
#else
  ap_uint<32> c = 0;
  for (unsigned i = 0; i < N; i++) {
#pragma HLS UNROLL
    c += x[i];
  }
  return c;
#endif
}

// Element i (EB bits) of a beat, as raw bits.
template <unsigned EB, int W>
inline ap_uint<EB> get_slot(const ap_uint<W>& beat, unsigned i) {
#if BNN_FAST_CSIM
  if (W <= 64) return ap_uint<EB>(beat.to_uint64() >> (i * EB));  // C-simulation: plain shifts
#endif
  return beat((i + 1) * EB - 1, i * EB);
}

template <unsigned EB, int W>
inline void set_slot(ap_uint<W>& beat, unsigned i, const ap_uint<EB>& v) {
#if BNN_FAST_CSIM
  if (W <= 64) {  // C-simulation: plain shifts and masks
    const uint64_t mask = (EB >= 64 ? ~0ULL : (1ULL << EB) - 1) << (i * EB);
    beat = ap_uint<W>((beat.to_uint64() & ~mask) | ((v.to_uint64() << (i * EB)) & mask));
    return;
  }
#endif
  beat((i + 1) * EB - 1, i * EB) = v;
}

// The value of an EB-bit element (two's complement when SIGNED), one bit wider so that both kinds fit.
template <unsigned EB, bool SIGNED>
inline ap_int<EB + 1> elem_value(const ap_uint<EB>& bits) {
  if (SIGNED) {
    ap_int<EB> s = bits;  // same width: reinterprets the bits
    return s;
  }
  return bits;
}

// The same as a host integer (C-simulation fast paths).
template <unsigned EB, bool SIGNED>
inline int64_t elem_int(uint64_t bits) {
  const uint64_t mask = EB >= 64 ? ~0ULL : ((1ULL << EB) - 1);
  bits &= mask;
  if (SIGNED && EB < 64 && ((bits >> (EB - 1)) & 1)) return (int64_t)(bits | ~mask);
  return (int64_t)bits;
}

// A beat of E copies of the EB-bit value v (padding beats of the sliding window).
template <unsigned E, unsigned EB>
inline ap_uint<E * EB> replicate(int64_t v) {
  ap_uint<E * EB> beat = 0;
  const ap_uint<EB> e = (ap_uint<EB>)(uint64_t)v;
  for (unsigned i = 0; i < E; i++) {
#pragma HLS UNROLL
    set_slot<EB>(beat, i, e);
  }
  return beat;
}

// The C integer types of 8, 16, 32 or 64 bits: weight tiles and thresholds are stored in the narrowest
// one that holds them (memory words as wide as the data, not wider).
constexpr unsigned word_bits_for(unsigned bits) { return bits <= 8 ? 8 : bits <= 16 ? 16 : bits <= 32 ? 32 : 64; }
template <unsigned BITS> struct uint_word;
template <> struct uint_word<8> { typedef uint8_t type; };
template <> struct uint_word<16> { typedef uint16_t type; };
template <> struct uint_word<32> { typedef uint32_t type; };
template <> struct uint_word<64> { typedef uint64_t type; };
template <unsigned BITS> struct int_word;
template <> struct int_word<8> { typedef int8_t type; };
template <> struct int_word<16> { typedef int16_t type; };
template <> struct int_word<32> { typedef int32_t type; };
template <> struct int_word<64> { typedef int64_t type; };

// An N-bit tile from its WPT little-endian words of type WT (word j holds bits [j*B, (j+1)*B), B = WT's bits).
template <unsigned N, unsigned WPT, typename WT>
inline ap_uint<N> from_words(const WT (&w)[WPT]) {
  const unsigned B = 8 * sizeof(WT);
#if BNN_FAST_CSIM
  if (N <= B) return ap_uint<N>((uint64_t)w[0]);  // C-simulation: truncating conversion
#endif
  ap_uint<N> r = 0;
  for (unsigned j = 0; j < WPT; j++) {
#pragma HLS UNROLL
    const unsigned lo = B * j;
    const unsigned hi = (lo + B < N ? lo + B : N) - 1;
    r(hi, lo) = ap_uint<B>(w[j])(hi - lo, 0);
  }
  return r;
}

// OR the N bits of `v` into the bit array `dst` (64-bit words) at bit offset `pos`.
template <unsigned N>
inline void deposit_bits(uint64_t* dst, unsigned pos, const ap_uint<N>& v) {
  for (unsigned j = 0; j < words_for(N); j++) {
    const uint64_t w = word_of<N>(v, j);
    const unsigned p = pos + 64 * j, sh = p % 64;
    dst[p / 64] |= w << sh;
    const unsigned n = (N - 64 * j < 64) ? N - 64 * j : 64;  // bits in this chunk
    if (sh && sh + n > 64) dst[p / 64 + 1] |= w >> (64 - sh);
  }
}

}  // namespace bnn

#endif  // BNN_UTIL_H
