/* The optimized-kernel slot for targets without their own file: forwards every _opt to its _ref,
 * so every target links and runs (correct, not fast). */
#include "bnn_kernels.h"

void bnn_xnor_mvau_opt(const uint64_t *x, size_t row_begin, size_t row_end, const uint64_t *w, size_t mh,
                       size_t k, const int32_t *thr, uint64_t *out_bits, int32_t *out_acc) {
    bnn_xnor_mvau_ref(x, row_begin, row_end, w, mh, k, thr, out_bits, out_acc);
}

void bnn_int_mvau_opt(const int16_t *x, size_t row_begin, size_t row_end, const int8_t *w, size_t mh,
                      size_t k, const int32_t *thr, uint64_t *out_bits, int32_t *out_acc) {
    bnn_int_mvau_ref(x, row_begin, row_end, w, mh, k, thr, out_bits, out_acc);
}

void bnn_im2col_bits_opt(const uint64_t *in, size_t h, size_t w, size_t c, size_t kh, size_t kw, size_t sh,
                         size_t sw, size_t pad_t, size_t pad_l, size_t oh, size_t ow, int pad_bit,
                         size_t row_begin, size_t row_end, uint64_t *out) {
    bnn_im2col_bits_ref(in, h, w, c, kh, kw, sh, sw, pad_t, pad_l, oh, ow, pad_bit, row_begin, row_end, out);
}

void bnn_maxpool_bits_opt(const uint64_t *in, size_t h, size_t w, size_t nw, size_t kh, size_t kw, size_t sh,
                          size_t sw, size_t oh, size_t ow, size_t row_begin, size_t row_end, uint64_t *out) {
    bnn_maxpool_bits_ref(in, h, w, nw, kh, kw, sh, sw, oh, ow, row_begin, row_end, out);
}

const char *bnn_kernels_name(void) { return "generic"; }
