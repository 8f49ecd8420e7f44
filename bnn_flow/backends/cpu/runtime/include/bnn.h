/* bnn-flow C runtime: the public C API (C11, no dependencies).
 *
 * A model is loaded from a .bnn file (docs/bnn-format.md) into a self-contained bnn_model that owns
 * copies of its weights and thresholds (64-byte aligned) and preallocated activation buffers.
 * Every entry point returns BNN_OK (0) or one of the error codes below; the loaders also write a
 * one-line, NUL-terminated message into err (when err != NULL and err_len > 0).
 *
 * Input: per image bnn_input_elems() int16 values in NHWC order (bits as 0/1 when the graph takes bits),
 * each within the input type's range. Output: per image bnn_classes() int32 accumulators of the last layer.
 * A bnn_model is not safe for concurrent bnn_run calls (it owns the scratch buffers); use one per thread.
 */
#ifndef BNN_H
#define BNN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bnn_model bnn_model;

enum { BNN_OK = 0, BNN_E_IO = 1, BNN_E_FORMAT = 2, BNN_E_VERSION = 3, BNN_E_CRC = 4, BNN_E_SHAPE = 5, BNN_E_NOMEM = 6, BNN_E_ARG = 7 };

/* Parse and validate a .bnn image; copies what it needs; never reads outside [data, data+size). */
int bnn_model_from_memory(const void *data, size_t size, bnn_model **out, char *err, size_t err_len);
int bnn_model_from_file(const char *path, bnn_model **out, char *err, size_t err_len);
void bnn_model_free(bnn_model *m);

size_t bnn_input_elems(const bnn_model *m);   /* per image, NHWC order */
size_t bnn_classes(const bnn_model *m);
size_t bnn_layer_count(const bnn_model *m);
const char *bnn_layer_name(const bnn_model *m, size_t i);

/* Run n_images images: input n_images x bnn_input_elems() int16, scores n_images x bnn_classes() int32.
 * threads in [0, 64] (0 means 1), fewer when the work is small (bnn_set_thread_grain): with at least that
 * many images the threads split the images; with fewer (e.g. one image) they split every layer's rows/channels. Results are identical for any thread count.
 * Returns BNN_E_ARG for NULL pointers, a bad thread count or an input value outside the input type.
 * layer_seconds: NULL or bnn_layer_count() entries: per layer, wall time summed over images (and over
 * threads when they split the images). */
int bnn_run(bnn_model *m, const int16_t *input, size_t n_images, int32_t *scores, int threads, double *layer_seconds /* NULL or bnn_layer_count() entries, summed over the images */);

/* The least work worth a thread, in binary-MAC equivalents (an integer MAC counts BNN_INTEGER_MAC_COST): a
 * run uses at most (images x one image's work) / grain of the threads it is given, because starting and
 * joining a thread costs as much as tens of microseconds of work. 0: every thread it is given. The default,
 * BNN_THREAD_GRAIN, is ~0.1 ms of work on an AVX-512 core: a 64-image TFC batch or one image of the demo net
 * runs on one thread, one BCNN-32 image on up to 9. */
#define BNN_THREAD_GRAIN ((size_t)1 << 26)
#define BNN_INTEGER_MAC_COST 8
void bnn_set_thread_grain(bnn_model *m, size_t grain);
/* The threads a bnn_run of n_images with `threads` would use (1 for a NULL model). */
size_t bnn_threads_used(const bnn_model *m, size_t n_images, int threads);

/* The last error message of bnn_run on this model ("" when none). */
const char *bnn_last_error(const bnn_model *m);

/* Run this model with the reference kernels (on != 0) instead of the optimized ones: for checks/timing. */
void bnn_use_reference_kernels(bnn_model *m, int on);

/* How layer i runs with the optimized kernels: 0 by its own kernel, 1 as the head of a fused binary
 * convolution (window -> binary MVAU [-> 2x2 max-pool], one kernel; its layer_seconds cover the group), 2 inside
 * such a group (no time of its own). The reference kernels always run every layer by itself. */
int bnn_layer_fused(const bnn_model *m, size_t i);

/* The optimized kernel family's binary ceiling, binary MACs per second: its XNOR-popcount tile step alone
 * (operands in L1, no staging, no output stage), best of 8 x `repeats` short timings (ceiling.c); *clock_hz
 * (when not NULL): the core clock estimated from a chain of dependent adds, for MACs per cycle. ~1 ms a repeat. */
double bnn_isa_ceiling(int repeats, double *clock_hz);

/* The optimized kernel family compiled in (same as bnn_kernels_name() in bnn_kernels.h). */
const char *bnn_kernels(void);

#ifdef __cplusplus
}
#endif
#endif /* BNN_H */
