/* Load-time optimization of the layers (after the loader validated and prepared each one): integer weights in
 * the kernel family's own layout (bnn_mvau_integer_prepare_opt) or, on few-bit inputs, as bit planes
 * (bitplane.c), binary FC layers of batched flat nets on the
 * family's bgemm (batch.c), and layer fusion.
 *
 * Fusion: a binary convolution as the .bnn file lists it (a bit window, a binary MVAU
 * on its rows, maybe a 2x2 stride-2 OR max-pool) runs as one fused kernel (conv.c, bnn_conv_binary_opt):
 * the im2col rows of the window are never stored, the thresholds and the pool are applied before the bits
 * are written. The file format and the layer list stay as they are; only the optimized path fuses, the
 * reference path (bnn_use_reference_kernels) still runs every layer, so the two stay independent.
 *
 * Fusion happens where the kernel family's bgemm gains (bnn_bgemm_native(): everywhere with AVX-512, on
 * narrow maps with x86 popcnt, nowhere on ARM); the environment variable BNN_FUSE overrides that at load time
 * (BNN_FUSE=1 always, 0 never), so the portable bgemm is also checked end to end (tests run whole nets under
 * qemu with BNN_FUSE=1). */
#include <stdlib.h>

#include "bnn.h"
#include "bnn_internal.h"
#include "bnn_kernels.h"

/* 2: fuse every binary convolution, 1: those on narrow maps only, 0: none (bnn_bgemm_native, or BNN_FUSE). */
static int fusion_wanted(void) {
    const char *e = getenv("BNN_FUSE");
    if (e && (e[0] == '0' || e[0] == '1') && e[1] == 0) return e[0] == '1' ? 2 : 0;
    return bnn_bgemm_native();
}

/* The layers a group starting at i would fuse (0: none): window (bits) -> binary MVAU on exactly its rows,
 * then a 2x2 stride-2 max-pool when the MVAU has thresholds (bits out); not one with an n-bit activation. */
static size_t group_size(const bnn_model *m, size_t i) {
    const bnn_layer *W = &m->layers[i];
    if (W->kind != BNN_WINDOW || !W->in.bits || i + 1 >= m->n_layers) return 0;
    const bnn_layer *M = &m->layers[i + 1];
    if ((M->kind != BNN_MVAU_BINARY && M->kind != BNN_MVAU_BINARY_PADDED) || M->levels ||
        M->in.c != W->kh * W->kw * W->in.c ||
        M->in.h != W->out.h ||
        M->in.w != W->out.w)
        return 0;
    if (i + 2 < m->n_layers && M->thresholds) {
        const bnn_layer *P = &m->layers[i + 2];
        if (P->kind == BNN_MAXPOOL && P->kh == 2 && P->kw == 2 && P->sh == 2 && P->sw == 2 &&
            P->out.h == M->out.h / 2 && P->out.w == M->out.w / 2)
            return 3;
    }
    return 2;
}

/* Integer MVAUs: their weights in the kernel family's own layout, once (bnn_mvau_integer_prepare_opt). */
static void prepare_integer(bnn_layer *L) {
    const size_t bytes = bnn_mvau_integer_prepared_bytes_opt(L->mvau.mh, L->mvau.k, L->x_min, L->x_max);
    if (!bytes || !(L->prepared = aligned_alloc(BNN_ALIGN, (bytes + BNN_ALIGN - 1) / BNN_ALIGN * BNN_ALIGN)))
        return; /* no layout of its own, or no memory: the kernel reads the int8 weights as they are */
    bnn_mvau_integer_prepare_opt(L->mvau.mh, L->mvau.k, L->x_min, L->x_max, L->weights_integer, L->prepared);
    L->mvau.prepared = L->prepared;
}

/* A binary FC layer of a batched flat net on the family's bgemm (its rows: the batch's images): the weights in
 * channel lanes, thresholds as the largest popcount that gives a 1 bit (conv.c does the same). */
static void prepare_fc(bnn_layer *L) {
    const size_t mh = L->mvau.mh, k = L->mvau.k, steps = bnn_words(k), tn = (mh + 63) / 64 * 64;
    const size_t ww = bnn_bgemm_weight_words_opt(mh, steps), bytes = ww * 8 + tn * 4 + steps * 4;
    if (!(L->fc_mem = aligned_alloc(BNN_ALIGN, (bytes + BNN_ALIGN - 1) / BNN_ALIGN * BNN_ALIGN))) return;
    uint64_t *w = L->fc_mem;
    int32_t *tpop = (int32_t *)(w + ww);
    uint32_t *off = (uint32_t *)(tpop + tn);
    bnn_bgemm_prepare_opt(mh, steps, L->weights_binary, w); /* weight rows are already steps words each */
    for (size_t t = 0; t < steps; t++) off[t] = (uint32_t)t;
    for (size_t j = 0; j < tn; j++) { /* popcount <= k - threshold  <=>  agreement >= threshold */
        int64_t t = j < mh && L->thresholds ? (int64_t)k - L->thresholds[j] : -1;
        tpop[j] = (int32_t)(t < -1 ? -1 : t > (int64_t)k ? (int64_t)k : t);
    }
    L->fc = (bnn_bgemm){mh, k, steps, off, w, L->thresholds ? tpop : NULL};
}

/* An integer MVAU on few-bit inputs and weights (after n-bit activations): its bit-plane passes (bitplane.c),
 * on the families where they pay (bnn_bitplane_native); the first layer (8-bit pixels) keeps the family's
 * integer kernel. */
static void prepare_integer_layer(bnn_layer *L) {
    const char *e = getenv("BNN_BITPLANE"); /* 0: never, 1: wherever eligible (tests check both paths) */
    const int wanted = e && (e[0] == '0' || e[0] == '1') && e[1] == 0 ? e[0] == '1' : bnn_bitplane_native();
    if (wanted) L->bitplane = bnn_bitplane_prepare(L->mvau.mh, L->mvau.k, L->x_min, L->x_max, L->weights_integer);
    if (!L->bitplane) prepare_integer(L);
}

void bnn_optimize_layers(bnn_model *m) {
    for (size_t i = 0; i < m->n_layers; i++)
        if (m->layers[i].kind == BNN_MVAU_INTEGER) prepare_integer_layer(&m->layers[i]);
    const int level = fusion_wanted();
    if (!level) return;
    for (size_t i = 0; level == 2 && m->batch > 1 && i < m->n_layers; i++)
        if (m->layers[i].kind == BNN_MVAU_BINARY) prepare_fc(&m->layers[i]);
    for (size_t i = 0; i < m->n_layers; i++) {
        const size_t n = group_size(m, i);
        if (!n || (level == 1 && m->layers[i].in.c % 64 == 0)) continue;
        bnn_layer *W = &m->layers[i];
        const bnn_layer *M = &m->layers[i + 1], *last = &m->layers[i + n - 1];
        const bnn_conv_params p = {.win = W->window, .mh = M->out.c, .thresholds = M->thresholds,
                                   .pool = n == 3 ? 2 : 1, .out_h = last->out.h, .out_w = last->out.w,
                                   .class_rows = M->class_rows, .class_cols = M->class_cols,
                                   .classes = M->row_classes * M->col_classes, .col_classes = M->col_classes};
        bnn_conv_plan *cp = malloc(sizeof *cp);
        if (!cp) continue;
        if (bnn_conv_plan_init(cp, &p, M->weights_binary) != 0) { /* too large or no memory: run unfused */
            free(cp);
            continue;
        }
        W->conv = cp;
        W->fused = n;
        for (size_t j = i + 1; j < i + n; j++) m->layers[j].fused_away = 1;
        const size_t sb = bnn_conv_scratch_bytes(cp);
        if (sb > m->scratch_bytes) m->scratch_bytes = sb;
        i += n - 1;
    }
}

void bnn_release_layers(bnn_model *m) {
    for (size_t i = 0; i < m->n_layers; i++) {
        bnn_layer *L = &m->layers[i];
        if (L->conv) bnn_conv_plan_free(L->conv);
        free(L->conv);
        free(L->prepared);
        bnn_bitplane_free(L->bitplane);
        L->bitplane = NULL;
        free(L->fc_mem);
        L->fc_mem = NULL;
        L->conv = NULL, L->fused = 0, L->fused_away = 0, L->prepared = NULL, L->mvau.prepared = NULL;
    }
}

/* Thread t of T: a share of the output rows (each call stages only the input rows it reads). */
void bnn_run_fused(const bnn_layer *L, const void *in, void *out, size_t t, size_t T, void *scratch) {
    const size_t rows = L->conv->p.out_h, b = rows * t / T, e = rows * (t + 1) / T;
    bnn_conv_binary_opt(L->conv, in, out, b, e, scratch);
}

int bnn_layer_fused(const bnn_model *m, size_t i) {
    if (!m || i >= m->n_layers) return 0;
    return m->layers[i].fused ? 1 : m->layers[i].fused_away ? 2 : 0;
}
