/* The optimized-kernel slot for targets without their own file: forwards every _opt to its _ref,
 * so every target links and runs (correct, not fast). */
#include "bnn_kernels.h"

void bnn_mvau_binary_opt(const bnn_mvau_params *p, const uint64_t *x, const uint64_t *w, uint64_t *out_bits,
                         int32_t *out_acc, size_t row_begin, size_t row_end) {
    bnn_mvau_binary_ref(p, x, w, out_bits, out_acc, row_begin, row_end);
}

void bnn_mvau_integer_opt(const bnn_mvau_params *p, const int16_t *x, const int8_t *w, uint64_t *out_bits,
                          int32_t *out_acc, size_t row_begin, size_t row_end) {
    bnn_mvau_integer_ref(p, x, w, out_bits, out_acc, row_begin, row_end);
}

void bnn_window_bits_opt(const bnn_window_params *p, const uint64_t *in, uint64_t *out, size_t row_begin,
                         size_t row_end) {
    bnn_window_bits_ref(p, in, out, row_begin, row_end);
}

void bnn_maxpool_bits_opt(const bnn_maxpool_params *p, const uint64_t *in, uint64_t *out, size_t row_begin,
                          size_t row_end) {
    bnn_maxpool_bits_ref(p, in, out, row_begin, row_end);
}

void bnn_window_int_opt(const bnn_window_params *p, const int16_t *in, int16_t *out, size_t row_begin,
                        size_t row_end) {
    bnn_window_int_ref(p, in, out, row_begin, row_end);
}

const char *bnn_kernels_name(void) { return "generic"; }

/* bgemm (the fused binary convolution's matrix, conv.c): the portable micro-kernels for now. */
#include "bgemm_scalar.h"

/* Integer weights are read as they are (no load-time layout). */
size_t bnn_mvau_integer_prepared_bytes_opt(size_t mh, size_t k, int32_t x_min, int32_t x_max) {
    (void)mh, (void)k, (void)x_min, (void)x_max;
    return 0;
}
void bnn_mvau_integer_prepare_opt(size_t mh, size_t k, int32_t x_min, int32_t x_max, const int8_t *w,
                                  void *prepared) {
    (void)mh, (void)k, (void)x_min, (void)x_max, (void)w, (void)prepared;
}

/* Bit-plane passes for few-bit integer layers: not measured on this family, so off by default (BNN_BITPLANE=1
 * turns them on; the packing is the reference's). */
int bnn_bitplane_native(void) { return 0; }

void bnn_pack_planes_opt(const int16_t *x, size_t rows, size_t k, int32_t lo, size_t planes, uint64_t *out,
                         int32_t *pops) {
    bnn_pack_planes_ref(x, rows, k, lo, planes, out, pops);
}
