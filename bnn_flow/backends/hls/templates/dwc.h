// dwc.h - stream width converter: beats of IN_PER_BEAT elements -> beats of OUT_PER_BEAT elements (EB bits each),
// element order unchanged. N elements per frame, a multiple of both IN_PER_BEAT and OUT_PER_BEAT.
#ifndef BNN_DWC_H
#define BNN_DWC_H

#include "bnn_util.h"

namespace bnn {

template <unsigned IN_PER_BEAT, unsigned OUT_PER_BEAT, unsigned EB, unsigned N>
void width_convert(hls::stream<ap_uint<IN_PER_BEAT * EB>>& in, hls::stream<ap_uint<OUT_PER_BEAT * EB>>& out, unsigned reps) {
  static_assert(N % IN_PER_BEAT == 0 && N % OUT_PER_BEAT == 0, "elements per frame must be a multiple of both widths");
  // `buf` holds `have` pending elements, the oldest at the bottom. Each iteration reads a beat (appended
  // above them) when fewer than OUT_PER_BEAT are pending, then writes the bottom OUT_PER_BEAT when that many are
  // there. With IN_PER_BEAT < OUT_PER_BEAT every iteration reads; otherwise every iteration writes; so a frame takes
  // max(N/IN_PER_BEAT, N/OUT_PER_BEAT) iterations, one flat loop at II=1, and `have` stays below IN_PER_BEAT + OUT_PER_BEAT.
  ap_uint<(IN_PER_BEAT + OUT_PER_BEAT) * EB> buf = 0;
  unsigned have = 0;
  const unsigned per_frame = IN_PER_BEAT < OUT_PER_BEAT ? N / IN_PER_BEAT : N / OUT_PER_BEAT;
  const unsigned long iters = (unsigned long)reps * per_frame;
  for (unsigned long i = 0; i < iters; i++) {
#pragma HLS PIPELINE II = 1
    if (have < OUT_PER_BEAT) {
      const ap_uint<(IN_PER_BEAT + OUT_PER_BEAT) * EB> x = in.read();
      buf |= x << (have * EB);
      have += IN_PER_BEAT;
    }
    if (have >= OUT_PER_BEAT) {
      out.write((ap_uint<OUT_PER_BEAT * EB>)buf);
      buf >>= OUT_PER_BEAT * EB;
      have -= OUT_PER_BEAT;
    }
  }
}

}  // namespace bnn

#endif  // BNN_DWC_H
