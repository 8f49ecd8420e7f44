// linebuf.h - the row ring buffer schedule shared by the sliding-window generator and the max-pool.
//
// Both take a frame row by row (W*CG beats per row, NHWC order) and emit, per output row oh, windows
// over input rows [top, top + KH) with top = oh*SH - PT. One flat loop does at most one read and one
// write per iteration (II=1 in hardware, reading ahead while emitting):
//   * the ring holds B = KH + SH rows; input row rr may be written once it no longer evicts a row that
//     the current window needs (rr < top + B), or at any time once every output is out (the rows below
//     the last window, e.g. the remainder of a valid convolution, are read and dropped);
//   * output row oh may be emitted once its last real row min(top + KH, H) - 1 is completely in.
// An iteration never writes the slot it reads (rows differ by less than B), and some action is always
// possible (a window waiting for rows implies rr <= top + KH - 1 < top + B), so the loop ends after
// at most reads + writes iterations.
#ifndef BNN_LINEBUF_H
#define BNN_LINEBUF_H

#include "bnn_util.h"

namespace bnn {

// The reader's position in the frame: row, column, channel group.
struct RowReader {
  unsigned row = 0, col = 0, grp = 0;
  template <unsigned W, unsigned CG>
  void advance() {
    if (++grp == CG) {
      grp = 0;
      if (++col == W) {
        col = 0;
        row++;
      }
    }
  }
};

// May the reader write input row `rr` while the window starting at row `top` is being emitted?
template <unsigned H, unsigned B>
inline bool may_read(unsigned rr, int top, bool emitted_all) {
  return rr < H && (emitted_all || (int)rr < top + (int)B);
}

// Is every real row of the window [top, top + KH) in, given that rows below `rr` are complete?
template <unsigned H, unsigned KH>
inline bool window_ready(unsigned rr, int top) {
  int last = top + (int)KH - 1;
  if (last > (int)H - 1) last = H - 1;
  return (int)rr > last;
}

}  // namespace bnn

#endif  // BNN_LINEBUF_H
