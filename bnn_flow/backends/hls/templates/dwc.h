// dwc.h - stream width converter: beats of IN_E elements -> beats of OUT_E elements (EB bits each),
// element order unchanged. N elements per frame, a multiple of both IN_E and OUT_E.
#ifndef BNN_DWC_H
#define BNN_DWC_H

#include "bnn_util.h"

namespace bnn {

template <unsigned IN_E, unsigned OUT_E, unsigned EB, unsigned N>
void width_convert(hls::stream<ap_uint<IN_E * EB>>& in, hls::stream<ap_uint<OUT_E * EB>>& out, unsigned reps) {
  static_assert(N % IN_E == 0 && N % OUT_E == 0, "elements per frame must be a multiple of both widths");
  // `buf` holds `have` pending elements, the oldest at the bottom. Each iteration reads a beat (appended
  // above them) when fewer than OUT_E are pending, then writes the bottom OUT_E when that many are
  // there. With IN_E < OUT_E every iteration reads; otherwise every iteration writes; so a frame takes
  // max(N/IN_E, N/OUT_E) iterations, one flat loop at II=1, and `have` stays below IN_E + OUT_E.
  ap_uint<(IN_E + OUT_E) * EB> buf = 0;
  unsigned have = 0;
  const unsigned per_frame = IN_E < OUT_E ? N / IN_E : N / OUT_E;
  const unsigned long iters = (unsigned long)reps * per_frame;
  for (unsigned long i = 0; i < iters; i++) {
#pragma HLS PIPELINE II = 1
    if (have < OUT_E) {
      const ap_uint<(IN_E + OUT_E) * EB> x = in.read();
      buf |= x << (have * EB);
      have += IN_E;
    }
    if (have >= OUT_E) {
      out.write((ap_uint<OUT_E * EB>)buf);
      buf >>= OUT_E * EB;
      have -= OUT_E;
    }
  }
}

}  // namespace bnn

#endif  // BNN_DWC_H
