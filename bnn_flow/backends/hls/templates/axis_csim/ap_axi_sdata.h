// ap_axi_sdata.h for C-simulation of the AXI-Stream wrapper with plain g++ (no vendor install).
//
// Vitis HLS ships the real header; this one declares only what bnn-flow's wrapper (axis_top.cpp.j2) uses:
// ap_axiu<D, U, TI, TD> with data, keep, strb and last. With zero-width side channels (U = TI = TD = 0, the
// only form the wrapper uses) Vitis HLS has no user/id/dest fields either, so code that compiles here uses
// nothing the real struct lacks. Only this folder's -I puts it on the include path (axis_csim.py).
#ifndef BNN_AXIS_CSIM_AP_AXI_SDATA_H
#define BNN_AXIS_CSIM_AP_AXI_SDATA_H

#include <ap_int.h>

template <int D, int U, int TI, int TD>
struct ap_axiu {
  static_assert(U == 0 && TI == 0 && TD == 0, "the C-simulation shim has no AXI-Stream side channels");
  ap_uint<D> data;
  ap_uint<(D + 7) / 8> keep;
  ap_uint<(D + 7) / 8> strb;
  ap_uint<1> last;
};

#endif
