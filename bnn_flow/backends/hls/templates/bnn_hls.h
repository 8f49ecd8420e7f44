// bnn_hls.h - the bnn-flow HLS layer library (include this one header).
// Every template is hand-written, C-simulation tested against the numpy golden ops, and takes its
// per-layer parameters from a configuration struct or template arguments that the generator writes.
#ifndef BNN_HLS_H
#define BNN_HLS_H

#include "bnn_stream.h"
#include "bnn_util.h"
#include "dwc.h"
#include "fifo.h"
#include "label_select.h"
#include "maxpool.h"
#include "mvau.h"
#include "window.h"

#endif  // BNN_HLS_H
