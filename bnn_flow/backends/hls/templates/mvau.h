// mvau.h - matrix-vector-activation unit: binary (XNOR-popcount) or integer (n-bit x n-bit) dot products,
// followed by integer thresholds (one output bit per channel, or an n-bit activation: LEVELS thresholds per channel)
// or passing the accumulators out (last layer).
//
// A layer is described by a configuration struct C (generated per layer):
//   MW, MH        matrix width (inputs per vector) and height (output channels)
//   SIMD, PE      input elements consumed per beat, output channels produced per beat (MW % SIMD == 0,
//                 MH % PE == 0); SF = MW/SIMD beats per vector, NF = MH/PE output beats per vector
//   PIXELS        vectors per frame (output pixels of a conv, 1 for a fully connected layer)
//   IB, ISIGNED   input element bits and signedness (binary: IB = 1)
//   DECODE, DB    the inputs are a nonuniform activation's IB-bit indices: the dot product takes the level
//                 C::in_level(index) (DB bits, signed); otherwise DB = IB and an element is its own value
//   WB, WSIGNED   weight element bits and signedness (binary: WB = 1)
//   BINARY        XNOR-popcount (acc = number of agreeing bits) instead of a multiply-accumulate
//   AB            accumulator bits (signed ap_int<AB>; holds every reachable accumulator and threshold)
//   THRESH        output = OOFF + the number of the channel's LEVELS thresholds T with acc >= T: a bit
//                 (LEVELS 1, OOFF 0) or an n-bit activation (FINN's MultiThreshold); otherwise the accumulator itself
//   LEVELS, OOFF  thresholds per output channel and the lowest output level (signed)
//   OB            output element bits (1 for bits; two's complement when the levels are signed)
//   WORDBITS, WPT  a weight tile is stored in WPT words of WORDBITS (8, 16, 32 or 64) bits
//   TBITS          thresholds are stored as TBITS-bit signed integers
//   TILES = NF*SF
// Memory layout (the PE x SIMD folding): output row r = nf*PE + pe is computed by PE lane `pe`; its
// columns [sf*SIMD, (sf+1)*SIMD) form tile w[pe][nf*SF + sf] (SIMD elements of WB bits, element s at
// bits [s*WB, (s+1)*WB), spread over WPT words); thresholds t[pe][nf*LEVELS .. nf*LEVELS + LEVELS-1] belong to row r.
// Stream order: per vector, SF input beats in; NF output beats out, beat nf holding rows nf*PE .. nf*PE+PE-1.
// A zero-padded convolution (mvau_padded; C::CLASSES, C::COL_CLASSES, C::OW) has CLASSES threshold blocks,
// t[pe][(cls*NF + nf)*LEVELS + l]: output pixel (oy, ox) of the OW-wide map takes cls = class_rows[oy] * COL_CLASSES +
// class_cols[ox], the pad class of its window (transforms/zero_padding.py).
#ifndef BNN_MVAU_H
#define BNN_MVAU_H

#include "bnn_util.h"

#if BNN_FAST_CSIM
#include <map>
#include <vector>
#endif

namespace bnn {

template <class C>
using weight_word = typename uint_word<C::WORDBITS>::type;
template <class C>
using threshold_word = typename int_word<C::TBITS>::type;

// An input element's value in the dot product (see DECODE).
template <class C>
inline ap_int<C::DB + 1> in_value(const ap_uint<C::IB>& e) {
  if (C::DECODE) return (ap_int<C::DB + 1>)C::in_level((unsigned)e);
  return elem_value<C::IB, C::ISIGNED>(e);
}

// Dot product of one weight tile with one input beat (SIMD elements).
template <class C>
inline ap_int<C::AB> tile_dot(const ap_uint<C::SIMD * C::WB>& w, const ap_uint<C::SIMD * C::IB>& x) {
  if (C::BINARY) {
    // agreeing bits = SIMD - popcount(x XOR w)
    return (ap_int<C::AB>)(C::SIMD - popcount<C::SIMD>(ap_uint<C::SIMD>(w ^ x)));
  }
  ap_int<C::AB> s = 0;
  for (unsigned i = 0; i < C::SIMD; i++) {
#pragma HLS UNROLL
    s += in_value<C>(get_slot<C::IB>(x, i)) * elem_value<C::WB, C::WSIGNED>(get_slot<C::WB>(w, i));
  }
  return s;
}

// One output element: the lowest level plus the thresholds t[0 .. LEVELS-1] reached (a bit when LEVELS is 1), or
// the accumulator's low OB bits.
template <class C>
inline ap_uint<C::OB> mvau_out(const ap_int<C::AB>& acc, const threshold_word<C>* t) {
  if (!C::THRESH) return (ap_uint<C::OB>)acc;
  int level = (int)C::OOFF;
  for (unsigned l = 0; l < C::LEVELS; l++) {
#pragma HLS UNROLL
    level += acc >= (ap_int<C::AB>)t[l] ? 1 : 0;
  }
  return (ap_uint<C::OB>)(ap_int<32>)level;
}

// The synthesizable form: one loop iteration per (input beat x output fold), II=1, PE lanes unrolled.
template <class C, unsigned CLASSES, unsigned COL_CLASSES, unsigned OW>
void mvau_loops(hls::stream<ap_uint<C::SIMD * C::IB>>& in, hls::stream<ap_uint<C::PE * C::OB>>& out,
                const weight_word<C> (&w)[C::PE][C::TILES][C::WPT], const threshold_word<C> (&t)[C::PE][CLASSES * C::NF * C::LEVELS],
                const uint8_t* class_rows, const uint8_t* class_cols, unsigned reps) {
  BNN_CSIM_STATIC ap_uint<C::SIMD * C::IB> inbuf[C::SF];  // the current vector, re-read for nf > 0
  ap_int<C::AB> acc[C::PE];
#pragma HLS ARRAY_PARTITION variable = acc complete
  unsigned nf = 0, sf = 0, ox = 0, oy = 0;  // the output pixel (pad classes only)
  const unsigned long total = (unsigned long)reps * C::PIXELS * C::NF * C::SF;
  for (unsigned long i = 0; i < total; i++) {
#pragma HLS PIPELINE II = 1
    ap_uint<C::SIMD * C::IB> x;
    if (nf == 0) {
      x = in.read();
      inbuf[sf] = x;
    } else {
      x = inbuf[sf];
    }
    for (unsigned pe = 0; pe < C::PE; pe++) {
#pragma HLS UNROLL
      const ap_int<C::AB> prev = sf == 0 ? ap_int<C::AB>(0) : acc[pe];
      acc[pe] = prev + tile_dot<C>(from_words<C::SIMD * C::WB, C::WPT>(w[pe][nf * C::SF + sf]), x);
    }
    if (sf == C::SF - 1) {
      ap_uint<C::PE * C::OB> o = 0;
      const unsigned block = CLASSES == 1 ? nf : (class_rows[oy] * COL_CLASSES + class_cols[ox]) * C::NF + nf;
      for (unsigned pe = 0; pe < C::PE; pe++) {
#pragma HLS UNROLL
        set_slot<C::OB>(o, pe, mvau_out<C>(acc[pe], &t[pe][block * C::LEVELS]));
      }
      out.write(o);
      sf = 0;
      if (CLASSES > 1 && nf == C::NF - 1) {
        ox = ox == OW - 1 ? 0 : ox + 1;
        if (ox == 0) oy = oy == C::PIXELS / OW - 1 ? 0 : oy + 1;
      }
      nf = nf == C::NF - 1 ? 0 : nf + 1;
    } else {
      sf++;
    }
  }
}

#if BNN_FAST_CSIM
// C-simulation only: the same stream tokens, computed a whole vector at a time on host integers.
// Weight rows are unpacked once per weight array (keyed by its address) into row-major form.
template <class C>
const std::vector<uint64_t>& binary_rows(const weight_word<C> (&w)[C::PE][C::TILES][C::WPT]) {
  static std::map<const void*, std::vector<uint64_t>> cache;
  std::vector<uint64_t>& rows = cache[(const void*)&w];
  if (rows.empty()) {
    const unsigned xw = words_for(C::MW);
    rows.assign((size_t)C::MH * xw, 0);
    for (unsigned pe = 0; pe < C::PE; pe++)
      for (unsigned nf = 0; nf < C::NF; nf++)
        for (unsigned sf = 0; sf < C::SF; sf++)
          deposit_bits<C::SIMD>(&rows[(size_t)(nf * C::PE + pe) * xw], sf * C::SIMD,
                                from_words<C::SIMD * C::WB, C::WPT>(w[pe][nf * C::SF + sf]));
  }
  return rows;
}

template <class C>
const std::vector<int64_t>& integer_rows(const weight_word<C> (&w)[C::PE][C::TILES][C::WPT]) {
  static std::map<const void*, std::vector<int64_t>> cache;
  std::vector<int64_t>& rows = cache[(const void*)&w];
  if (rows.empty()) {
    rows.assign((size_t)C::MH * C::MW, 0);
    for (unsigned pe = 0; pe < C::PE; pe++)
      for (unsigned nf = 0; nf < C::NF; nf++)
        for (unsigned sf = 0; sf < C::SF; sf++) {
          const ap_uint<C::SIMD * C::WB> tile = from_words<C::SIMD * C::WB, C::WPT>(w[pe][nf * C::SF + sf]);
          for (unsigned s = 0; s < C::SIMD; s++)
            rows[(size_t)(nf * C::PE + pe) * C::MW + sf * C::SIMD + s] =
                elem_int<C::WB, C::WSIGNED>(get_slot<C::WB>(tile, s).to_uint64());
        }
  }
  return rows;
}

template <class C, unsigned CLASSES, unsigned COL_CLASSES, unsigned OW>
void mvau_fast(hls::stream<ap_uint<C::SIMD * C::IB>>& in, hls::stream<ap_uint<C::PE * C::OB>>& out,
               const weight_word<C> (&w)[C::PE][C::TILES][C::WPT], const threshold_word<C> (&t)[C::PE][CLASSES * C::NF * C::LEVELS],
               const uint8_t* class_rows, const uint8_t* class_cols, unsigned reps) {
  const unsigned xw = words_for(C::MW);
  std::vector<uint64_t> xbits(C::BINARY ? xw : 0);
  std::vector<int64_t> xint(C::BINARY ? 0 : C::MW), acc(C::MH);
  const std::vector<uint64_t>* brows = C::BINARY ? &binary_rows<C>(w) : nullptr;
  const std::vector<int64_t>* irows = C::BINARY ? nullptr : &integer_rows<C>(w);
  for (unsigned long v = 0; v < (unsigned long)reps * C::PIXELS; v++) {
    if (C::BINARY) {
      for (unsigned j = 0; j < xw; j++) xbits[j] = 0;
      for (unsigned sf = 0; sf < C::SF; sf++) deposit_bits<C::SIMD * C::IB>(xbits.data(), sf * C::SIMD, in.read());
      for (unsigned r = 0; r < C::MH; r++) {
        const uint64_t* row = &(*brows)[(size_t)r * xw];
        unsigned mism = 0;  // padding bits are 0 in both, so they never count
        for (unsigned j = 0; j < xw; j++) mism += __builtin_popcountll(xbits[j] ^ row[j]);
        acc[r] = (int64_t)C::MW - mism;
      }
    } else {
      for (unsigned sf = 0; sf < C::SF; sf++) {
        const ap_uint<C::SIMD * C::IB> x = in.read();
        for (unsigned s = 0; s < C::SIMD; s++) {
          const uint64_t e = get_slot<C::IB>(x, s).to_uint64();
          xint[sf * C::SIMD + s] = C::DECODE ? (int64_t)C::in_level((unsigned)e) : elem_int<C::IB, C::ISIGNED>(e);
        }
      }
      for (unsigned r = 0; r < C::MH; r++) {
        const int64_t* row = &(*irows)[(size_t)r * C::MW];
        int64_t a = 0;
        for (unsigned k = 0; k < C::MW; k++) a += xint[k] * row[k];
        acc[r] = a;
      }
    }
    const unsigned pixel = v % C::PIXELS;
    const unsigned first_block =
        CLASSES == 1 ? 0 : (class_rows[pixel / OW] * COL_CLASSES + class_cols[pixel % OW]) * C::NF;
    for (unsigned nf = 0; nf < C::NF; nf++) {
      ap_uint<C::PE * C::OB> o = 0;
      for (unsigned pe = 0; pe < C::PE; pe++) {
        const int64_t a = acc[nf * C::PE + pe];
        set_slot<C::OB>(o, pe, mvau_out<C>(ap_int<C::AB>(a), &t[pe][(first_block + nf) * C::LEVELS]));
      }
      out.write(o);
    }
  }
}
#endif

// The layer: `reps` frames of PIXELS vectors each.
template <class C>
void mvau(hls::stream<ap_uint<C::SIMD * C::IB>>& in, hls::stream<ap_uint<C::PE * C::OB>>& out,
          const weight_word<C> (&w)[C::PE][C::TILES][C::WPT], const threshold_word<C> (&t)[C::PE][C::NF * C::LEVELS],
          unsigned reps) {
#if BNN_FAST_CSIM
  mvau_fast<C, 1, 1, 1>(in, out, w, t, nullptr, nullptr, reps);
#else
  mvau_loops<C, 1, 1, 1>(in, out, w, t, nullptr, nullptr, reps);
#endif
}

// A zero-padded convolution's layer: the thresholds of each output pixel's pad class.
template <class C>
void mvau_padded(hls::stream<ap_uint<C::SIMD * C::IB>>& in, hls::stream<ap_uint<C::PE * C::OB>>& out,
                 const weight_word<C> (&w)[C::PE][C::TILES][C::WPT],
                 const threshold_word<C> (&t)[C::PE][C::CLASSES * C::NF * C::LEVELS],
                 const uint8_t (&class_rows)[C::PIXELS / C::OW],
                 const uint8_t (&class_cols)[C::OW], unsigned reps) {
#if BNN_FAST_CSIM
  mvau_fast<C, C::CLASSES, C::COL_CLASSES, C::OW>(in, out, w, t, class_rows, class_cols, reps);
#else
  mvau_loops<C, C::CLASSES, C::COL_CLASSES, C::OW>(in, out, w, t, class_rows, class_cols, reps);
#endif
}

}  // namespace bnn

#endif  // BNN_MVAU_H
