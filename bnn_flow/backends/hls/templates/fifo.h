// fifo.h - an explicit FIFO stage: passes `beats` beats per call through unchanged.
// Between layers of a DATAFLOW region the generator declares plain hls::stream channels with a
// `#pragma HLS STREAM depth=D`; this stage exists for the places that need a named buffer of its own
// (e.g. decoupling an I/O interface from the first layer).
#ifndef BNN_FIFO_H
#define BNN_FIFO_H

#include "bnn_util.h"

namespace bnn {

template <unsigned WIDTH>
void fifo(hls::stream<ap_uint<WIDTH>>& in, hls::stream<ap_uint<WIDTH>>& out, unsigned long beats) {
  for (unsigned long i = 0; i < beats; i++) {
#pragma HLS PIPELINE II = 1
    out.write(in.read());
  }
}

}  // namespace bnn

#endif  // BNN_FIFO_H
