// label_select.h - argmax over the class scores of a frame (ties -> lowest index), as the host's head does
// when the per-class affine is the identity. CLASSES elements of EB bits arrive PE per beat.
// Out: one beat per frame, the label as LB bits.
#ifndef BNN_LABEL_SELECT_H
#define BNN_LABEL_SELECT_H

#include "bnn_util.h"

namespace bnn {

template <unsigned CLASSES, unsigned PE, unsigned EB, bool SIGNED, unsigned LB>
void label_select(hls::stream<ap_uint<PE * EB>>& in, hls::stream<ap_uint<LB>>& out, unsigned reps) {
  static_assert(CLASSES % PE == 0, "classes must be a multiple of PE");
  for (unsigned rep = 0; rep < reps; rep++) {
    ap_int<EB + 1> best = 0;
    ap_uint<LB> label = 0;
    for (unsigned b = 0; b < CLASSES / PE; b++) {
#pragma HLS PIPELINE II = 1
      const ap_uint<PE * EB> x = in.read();
      for (unsigned i = 0; i < PE; i++) {
        const ap_int<EB + 1> v = elem_value<EB, SIGNED>(get_slot<EB>(x, i));
        if ((b == 0 && i == 0) || v > best) {  // strictly greater: the first maximum wins
          best = v;
          label = b * PE + i;
        }
      }
    }
    out.write(label);
  }
}

}  // namespace bnn

#endif  // BNN_LABEL_SELECT_H
