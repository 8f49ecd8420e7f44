/* Batched execution of flat networks (fully connected: only MVAU and flatten layers, e.g. TFC/SFC/LFC).
 *
 * Why: per image, an FC layer is one matrix-vector product, and every image re-reads the whole weight
 * matrix (TFC's first layer: 50 KB of int8, more than L1) for a few MACs per weight. Run layer by layer over a
 * batch of images instead, the images are the rows of one matrix-matrix product: each weight load feeds
 * several rows (the kernels block rows: 2-6 binary rows, 4 integer rows per weight load), and the per-layer
 * dispatch is paid once per batch. Activations of image b sit at b times the layer's per-image tensor size,
 * which is exactly the row-major layout the kernels take for rows = images x pixels.
 * Results are bit-identical to the image-by-image path (same kernels, same rows). */
#include <string.h>

#include "bnn_internal.h"
#include "bnn_kernels.h"

size_t bnn_batch_size(const bnn_model *m) {
    for (size_t i = 0; i < m->n_layers; i++) {
        const int k = m->layers[i].kind;
        if ((k != BNN_MVAU_BINARY && k != BNN_MVAU_INTEGER && k != BNN_FLATTEN) || m->layers[i].levels) return 1;
    }
    return BNN_BATCH;
}

/* One layer over nb images (rows = nb x its pixels). */
static void run_rows(const bnn_layer *L, const void *in, void *out, size_t nb, int ref) {
    const bnn_mvau_params *p = &L->mvau;
    const size_t rows = nb * L->out.h * L->out.w;
    uint64_t *bits = p->thresholds ? out : NULL;
    int32_t *acc = p->thresholds ? NULL : out;
    if (L->kind == BNN_MVAU_BINARY && L->fc_mem && !ref) { /* the bgemm: rows by pointer, 32 at a time */
        const uint64_t *xr[BNN_BATCH];
        const size_t kw = bnn_words(p->k), ow = bnn_words(p->mh);
        for (size_t r0 = 0; r0 < rows; r0 += BNN_BATCH) {
            const size_t n = rows - r0 < BNN_BATCH ? rows - r0 : BNN_BATCH;
            for (size_t r = 0; r < n; r++) xr[r] = (const uint64_t *)in + (r0 + r) * kw;
            bnn_bgemm_opt(&L->fc, xr, n, bits ? bits + r0 * ow : NULL, ow, acc ? acc + r0 * p->mh : NULL, p->mh, 0,
                          p->mh);
        }
    } else if (L->kind == BNN_MVAU_BINARY) {
        (ref ? bnn_mvau_binary_ref : bnn_mvau_binary_opt)(p, in, L->weights_binary, bits, acc, 0, rows);
    } else if (L->kind == BNN_MVAU_INTEGER) {
        (ref ? bnn_mvau_integer_ref : bnn_mvau_integer_opt)(p, in, L->weights_integer, bits, acc, 0, rows);
    } else { /* flatten: per image (a bit map whose pixels are not whole words is re-packed) */
        const size_t ib = bnn_shape_bytes(&L->in, 0), ob = bnn_shape_bytes(&L->out, 0);
        const bnn_flatten_params *f = &L->flatten;
        if (!L->in.bits || f->c % 64 == 0 || f->pixels == 1) {
            memcpy(out, in, nb * ib); /* the same bytes: ib == ob */
            return;
        }
        for (size_t b = 0; b < nb; b++)
            bnn_flatten_bits_ref(f, (const uint64_t *)((const unsigned char *)in + b * ib),
                                 (uint64_t *)((unsigned char *)out + b * ob));
    }
}

void bnn_run_batch(const bnn_model *m, bnn_ctx *ctx, const int16_t *imgs, size_t nb, int32_t *scores, int timed) {
    const void *cur = imgs;
    int next = 0;
    if (m->input.bits) {
        const size_t in_n = bnn_input_elems(m), ib = bnn_shape_bytes(&m->input, 0);
        for (size_t b = 0; b < nb; b++) bnn_load_input(m, imgs + b * in_n, (unsigned char *)ctx->buf[0] + b * ib);
        cur = ctx->buf[0];
        next = 1;
    }
    for (size_t i = 0; i < m->n_layers; i++) {
        void *out = i + 1 == m->n_layers ? (void *)scores : ctx->buf[next];
        const double t0 = timed ? bnn_seconds() : 0.0;
        run_rows(&m->layers[i], cur, out, nb, m->use_ref);
        if (timed) ctx->seconds[i] += bnn_seconds() - t0;
        cur = out;
        next ^= 1;
    }
}
