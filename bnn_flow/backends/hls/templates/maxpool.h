// maxpool.h - max-pool on a stream, no padding. On bipolar bits (EB = 1) max is OR.
//
// Configuration struct C:
//   H, W, CH        input frame (NHWC)
//   KH, KW, SH, SW  window and stride; OH, OW output pixels ((H-KH)/SH + 1, (W-KW)/SW + 1)
//   PE, EB, SIGNED  channels per beat (CH % PE == 0), element bits and signedness
// In:  H*W*(CH/PE) beats per frame; Out: OH*OW*(CH/PE) beats per frame, same beat format.
// The generator gives the pool the element count per beat of its producer (an MVAU's PE), so the pool
// needs no width converter around it. Schedule as the sliding window's (linebuf.h): about H*W*CH/PE
// cycles per frame, reading ahead while it emits.
#ifndef BNN_MAXPOOL_H
#define BNN_MAXPOOL_H

#include "linebuf.h"

namespace bnn {

template <unsigned E, unsigned EB, bool SIGNED>
inline ap_uint<E * EB> max_beat(const ap_uint<E * EB>& a, const ap_uint<E * EB>& b) {
  if (EB == 1) return a | b;  // bipolar max = OR of the bits
  ap_uint<E * EB> m = 0;
  for (unsigned i = 0; i < E; i++) {
#pragma HLS UNROLL
    const ap_uint<EB> x = get_slot<EB>(a, i), y = get_slot<EB>(b, i);
    set_slot<EB>(m, i, elem_value<EB, SIGNED>(x) >= elem_value<EB, SIGNED>(y) ? x : y);
  }
  return m;
}

template <class C>
void maxpool(hls::stream<ap_uint<C::PE * C::EB>>& in, hls::stream<ap_uint<C::PE * C::EB>>& out, unsigned reps) {
  typedef ap_uint<C::PE * C::EB> beat_t;
  const unsigned CG = C::CH / C::PE;
  const unsigned B = C::KH + C::SH;
  BNN_CSIM_STATIC beat_t buf[B][C::W][CG];  // static in C-simulation: see window.h
  for (unsigned rep = 0; rep < reps; rep++) {
    RowReader rd;
    unsigned oh = 0, ow = 0, g = 0;
    bool emitted_all = false;
    while (rd.row < C::H || !emitted_all) {
#pragma HLS PIPELINE II = 1
      const int top = (int)(oh * C::SH);
      const bool emit = !emitted_all && window_ready<C::H, C::KH>(rd.row, top);
      const bool read = may_read<C::H, B>(rd.row, top, emitted_all);
      if (emit) {
        beat_t m = buf[(unsigned)top % B][ow * C::SW][g];
        for (unsigned kh = 0; kh < C::KH; kh++)
          for (unsigned kw = 0; kw < C::KW; kw++)
            m = max_beat<C::PE, C::EB, C::SIGNED>(m, buf[(top + kh) % B][ow * C::SW + kw][g]);
        out.write(m);
        if (++g == CG) {
          g = 0;
          if (++ow == C::OW) {
            ow = 0;
            emitted_all = ++oh == C::OH;
          }
        }
      }
      if (read) {
        buf[rd.row % B][rd.col][rd.grp] = in.read();
        rd.advance<C::W, CG>();
      }
    }
  }
}

}  // namespace bnn

#endif  // BNN_MAXPOOL_H
