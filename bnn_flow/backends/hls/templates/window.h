// window.h - sliding-window generator (im2col on a stream) for convolutions.
//
// Configuration struct C:
//   H, W, CH        input frame (NHWC), CH channels per pixel
//   KH, KW, SH, SW  kernel and stride
//   PT, PL          padding rows on top and columns on the left (bottom/right follow from OH, OW)
//   OH, OW          output pixels
//   SIMD, EB        elements per beat (CH % SIMD == 0; CG = CH/SIMD beats per pixel) and bits per element
//   PAD             the padding element: +1 bipolar = bit 1 for binary maps, an integer for integer maps
// In:  per frame H*W*CG beats, pixel by pixel, SIMD channels per beat.
// Out: per frame, for each output pixel (oh, ow), KH*KW*CG beats in the patch order (kh, kw, c), c fastest:
//      exactly what an MVAU with this SIMD consumes. Out-of-frame positions emit the padding beat.
// Schedule (linebuf.h): one read and one write per cycle at most, so a frame takes about
// max(H*W*CG, OH*OW*KH*KW*CG) cycles plus the first window's rows.
#ifndef BNN_WINDOW_H
#define BNN_WINDOW_H

#include "linebuf.h"

namespace bnn {

template <class C>
void window(hls::stream<ap_uint<C::SIMD * C::EB>>& in, hls::stream<ap_uint<C::SIMD * C::EB>>& out,
                    unsigned reps) {
  typedef ap_uint<C::SIMD * C::EB> beat_t;
  const unsigned CG = C::CH / C::SIMD;
  const unsigned B = C::KH + C::SH;  // ring rows: one window plus one stride of read-ahead
  const beat_t pad = replicate<C::SIMD, C::EB>(C::PAD);
  // static in C-simulation: a wide layer's line buffer (megabytes) would overflow the stack; every row is
  // written before it is read in each frame, so the contents left by the previous frame are never used
  BNN_CSIM_STATIC beat_t buf[B][C::W][CG];
  for (unsigned rep = 0; rep < reps; rep++) {
    RowReader rd;
    unsigned oh = 0, ow = 0, kh = 0, kw = 0, g = 0;
    bool emitted_all = false;
    while (rd.row < C::H || !emitted_all) {
#pragma HLS PIPELINE II = 1
      const int top = (int)(oh * C::SH) - (int)C::PT;
      const bool emit = !emitted_all && window_ready<C::H, C::KH>(rd.row, top);
      const bool read = may_read<C::H, B>(rd.row, top, emitted_all);
      if (emit) {
        const int r = top + (int)kh, c = (int)(ow * C::SW) - (int)C::PL + (int)kw;
        const bool inside = r >= 0 && r < (int)C::H && c >= 0 && c < (int)C::W;
        out.write(inside ? buf[(unsigned)r % B][c][g] : pad);
        if (++g == CG) {
          g = 0;
          if (++kw == C::KW) {
            kw = 0;
            if (++kh == C::KH) {
              kh = 0;
              if (++ow == C::OW) {
                ow = 0;
                emitted_all = ++oh == C::OH;
              }
            }
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

#endif  // BNN_WINDOW_H
