/* Internal types shared by the loader (model.c) and the executor (net.c); not part of the public API.
 * The byte layout these mirror is docs/bnn-format.md (format version 3). */
#ifndef BNN_INTERNAL_H
#define BNN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "bnn.h"
#include "bnn_kernels.h"

#define BNN_MAGIC "BNNF"
#define BNN_VERSION 3u /* the newest version read; version 1 files lack kind 6, version 2 n-bit activations */
#define BNN_HEADER_SIZE 64u
#define BNN_ENTRY_SIZE 128u
#define BNN_ALIGN 64u
#define BNN_NAME_LEN 48u
#define BNN_FLAG_INPUT_BITS 1u

/* Sanity limits: far above any real network, low enough that no size computation can overflow. */
#define BNN_MAX_LAYERS 4096u
#define BNN_MAX_DIM (1u << 24)      /* any height, width or channel count */
#define BNN_MAX_ELEMS (1u << 28)    /* elements of one tensor (h * w * c) */
#define BNN_MAX_KERNEL 255u         /* kernel, stride and padding sizes */

/* Layer kinds: the numeric codes are the file format (a layer entry's byte 0), so they never change; both
 * model.c (validation) and net.c (execution) keep one table indexed by them. */
enum bnn_kind {
    BNN_WINDOW = 1,
    BNN_MVAU_BINARY = 2,
    BNN_MVAU_INTEGER = 3,
    BNN_MAXPOOL = 4,
    BNN_FLATTEN = 5,
    BNN_MVAU_BINARY_PADDED = 6 /* format version 2: a binary MVAU after a zero-padded window, per-class thresholds */
};
#define BNN_KIND_END 7 /* one past the largest code: the size of the per-kind tables */

/* An integer MVAU run as binary passes over bit planes (bitplane.c): made at load time where it pays (inputs
 * and weights of at most 4 bits, at most 8 passes), else NULL. bnn_bitplane_rows computes the int32
 * accumulators of rows [r0, r1) (at most BNN_BITPLANE_ROWS) x channels [j0, j1) into acc (row-major,
 * j1 - j0 per row) with bnn_bitplane_scratch_bytes of scratch. */
typedef struct bnn_bitplane bnn_bitplane;
#define BNN_BITPLANE_ROWS 32
bnn_bitplane *bnn_bitplane_prepare(size_t mh, size_t k, int32_t x_min, int32_t x_max, const int8_t *w);
void bnn_bitplane_free(bnn_bitplane *bp);
size_t bnn_bitplane_scratch_bytes(const bnn_bitplane *bp);
void bnn_bitplane_rows(const bnn_bitplane *bp, const int16_t *x, size_t r0, size_t r1, size_t j0, size_t j1,
                       int32_t *acc, void *scratch);

/* A tensor between layers: h x w pixels of c channels, NHWC. Bits: words(c) uint64 per pixel;
 * integers: int16 per element (the graph input and integer windows); the last layer: int32. */
typedef struct {
    size_t h, w, c;
    int bits;
} bnn_shape;

/* One layer: the fields of its table entry as read from the file (which model.c validates), and the
 * parameters of its kernels, built once from them after validation (bnn_prepare_layer, net.c) so that
 * running an image only passes pointers. */
typedef struct {
    int kind;
    bnn_shape in, out;
    size_t kh, kw, sh, sw, pad_t, pad_l, pad_b, pad_r;
    int32_t pad_value;
    const uint64_t *weights_binary; /* BNN_MVAU_BINARY: out.c rows of words(in.c) words */
    const int8_t *weights_integer;  /* BNN_MVAU_INTEGER: out.c rows of in.c int8 */
    const int32_t *thresholds;      /* MVAU: out.c thresholds (x levels), or NULL for the last layer (int32 out) */
    size_t levels;       /* MVAU with an n-bit activation (version 3): thresholds per output, int16 out; else 0 */
    int32_t out_offset;  /* and its lowest level: out = out_offset + the thresholds reached */
    union {                         /* the one that matches `kind` */
        bnn_window_params window;   /* BNN_WINDOW */
        bnn_mvau_params mvau;       /* BNN_MVAU_BINARY, BNN_MVAU_INTEGER */
        bnn_maxpool_params maxpool; /* BNN_MAXPOOL */
        bnn_flatten_params flatten; /* BNN_FLATTEN */
    };
    /* Fusion (fuse.c), optimized kernels only: a binary window that heads a group window -> binary MVAU
     * [-> 2x2 max-pool] owns the group's fused convolution and runs the whole group; the other layers of the
     * group are `fused_away` (skipped; the reference kernels still run every layer). */
    bnn_conv_plan *conv;
    void *prepared; /* BNN_MVAU_INTEGER: the weights in the kernel family's layout (mvau.prepared), or NULL */
    bnn_bitplane *bitplane; /* BNN_MVAU_INTEGER on few-bit inputs and weights: its binary passes (bitplane.c) */
    int32_t x_min, x_max; /* BNN_MVAU_INTEGER: the range of its inputs (the input type or the n-bit activation's
                             levels, and pad values; model.c) */
    /* BNN_MVAU_BINARY_PADDED: output row oy's pad class, output column ox's; thresholds are row_classes x
     * col_classes blocks of out.c, pixel (oy, ox) taking block class_rows[oy] * col_classes + class_cols[ox] */
    const uint8_t *class_rows, *class_cols;
    size_t row_classes, col_classes;
    bnn_bgemm fc;  /* BNN_MVAU_BINARY of a batched flat net (batch.c): its bgemm, when fc_mem != NULL */
    void *fc_mem;  /* owns fc.off, fc.w, fc.tpop */
    size_t fused; /* layers in the group this one heads (0: none) */
    int fused_away;
    char name[BNN_NAME_LEN];
} bnn_layer;

typedef struct {
    void *buf[2]; /* ping-pong activation buffers, each model->buf_bytes */
    double *seconds;
    void *scratch; /* thread t's scratch for the fused kernels (model->scratch_bytes), in context t */
} bnn_ctx;

struct bnn_model {
    unsigned char *blob; /* 64-byte aligned copy of the file: weights/thresholds point into it */
    bnn_layer *layers;
    size_t n_layers;
    bnn_shape input;
    int32_t in_min, in_max; /* valid input values */
    size_t classes;
    size_t buf_bytes;
    size_t scratch_bytes; /* per thread, the most any fused layer (fuse.c) or n-bit activation's row needs */
    size_t batch;         /* images per layer call: bnn_batch_size() (buf_bytes holds that many tensors) */
    bnn_ctx *ctx; /* per-thread scratch, allocated on the first run that needs it */
    size_t n_ctx;
    int use_ref;
    size_t thread_grain; /* bnn_set_thread_grain */
    uint64_t image_work; /* bnn_image_work, at load time */
    char last_error[160];
};

uint32_t bnn_crc32(const void *data, size_t size);
size_t bnn_shape_bytes(const bnn_shape *s, int is_acc);
/* Build L's kernel parameters from its validated entry fields (net.c; called by the loader). */
void bnn_prepare_layer(bnn_layer *L);
/* Load-time optimization (fuse.c; after every layer is prepared): integer weights in the family's layout, the
 * binary convolutions fused where the kernel family gains from it; its release (frees what it made); a fused
 * group head's thread t of T part with its scratch. */
void bnn_optimize_layers(bnn_model *m);
void bnn_release_layers(bnn_model *m);
void bnn_run_fused(const bnn_layer *L, const void *in, void *out, size_t t, size_t T, void *scratch);
/* The per-thread scratch an MVAU that goes through its int32 accumulators needs (an n-bit activation, or the
 * bit-plane passes): net.c's acc_rows; 0 for other layers. */
size_t bnn_acc_rows_scratch_bytes(const bnn_layer *L);
/* Flat (fully connected) networks run BNN_BATCH images per layer call (batch.c): bnn_batch_size() is that, or
 * 1 for a network with spatial layers; bnn_run_batch runs nb <= that images in a context whose buffers hold
 * bnn_batch_size() tensors. The executor's helpers it shares: the input's packing and the clock. */
#define BNN_BATCH 32
size_t bnn_batch_size(const bnn_model *m);
void bnn_run_batch(const bnn_model *m, bnn_ctx *ctx, const int16_t *imgs, size_t nb, int32_t *scores, int timed);
const void *bnn_load_input(const bnn_model *m, const int16_t *img, void *buf);
double bnn_seconds(void);
/* The executor's steps (net.c), shared with the layer-split mode (split.c): is layer i computed by an earlier
 * fused group; where it writes (the next buffer, or the scores when it ends the network); thread t of T's part
 * of it. bnn_run_split_layers: n images, every one by all `threads` threads (fewer images than threads). */
int bnn_layer_skipped(const bnn_model *m, size_t i);
void *bnn_layer_out(const bnn_model *m, size_t i, void *next_buf, int32_t *scores);
void bnn_run_layer(const bnn_layer *L, const void *in, void *out, int ref, size_t t, size_t T, void *scratch);
void bnn_run_split_layers(bnn_model *m, const int16_t *input, size_t n, int32_t *scores, size_t threads, int timed);
/* One image's work in binary-MAC equivalents (the matrix layers; an integer MAC counts BNN_INTEGER_MAC_COST). */
uint64_t bnn_image_work(const bnn_model *m);

#endif /* BNN_INTERNAL_H */
