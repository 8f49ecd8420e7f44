/* The network executor: runs a loaded model's layer list on images.
 *
 * Activations travel packed between layers (bits: words(c) uint64 per pixel) in two ping-pong buffers
 * per context, sized at load time to the largest tensor. The last layer writes its int32 accumulators
 * straight into the caller's scores. Two ways to use T threads (measured on BCNN-32, see the report):
 *  - images >= T: threads split the images, each with its own context: no synchronization at all;
 *  - images <  T: all T threads work on each image, splitting every layer's rows (or, for layers with
 *    fewer rows than threads, its output channels in whole 64-bit words) with a barrier after each layer
 *    (split.c). */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, pthreads */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bnn_internal.h"
#include "bnn_kernels.h"

double bnn_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Input integers (0/1 bits when the model takes bits) -> the first tensor: packed bits or int16 as is. */
const void *bnn_load_input(const bnn_model *m, const int16_t *img, void *buf) {
    if (!m->input.bits) return img;
    size_t c = m->input.c, cw = bnn_words(c), pixels = m->input.h * m->input.w;
    uint64_t *out = buf;
    memset(out, 0, pixels * cw * sizeof(uint64_t));
    for (size_t p = 0; p < pixels; p++)
        for (size_t ch = 0; ch < c; ch++)
            out[p * cw + ch / 64] |= (uint64_t)(img[p * c + ch] & 1) << (ch % 64);
    return out;
}

/* [*b, *e): part t of T of n items. */
static void part(size_t n, size_t t, size_t T, size_t *b, size_t *e) {
    *b = n * t / T;
    *e = n * (t + 1) / T;
}

/* ---- per kind: its kernel parameters (built once, at load time) and one thread's part of a layer ---- */

static void prepare_window(bnn_layer *L) {
    L->window = (bnn_window_params){.h = L->in.h, .w = L->in.w, .c = L->in.c, .kh = L->kh, .kw = L->kw,
                                    .sh = L->sh, .sw = L->sw, .pad_t = L->pad_t, .pad_l = L->pad_l,
                                    .oh = L->out.h, .ow = L->out.w, .pad_value = L->pad_value};
}

static void run_window(const bnn_layer *L, const void *in, void *out, int ref, size_t t, size_t T,
                       void *scratch) {
    size_t b, e;
    (void)scratch;
    part(L->window.oh * L->window.ow, t, T, &b, &e);
    if (L->in.bits)
        (ref ? bnn_window_bits_ref : bnn_window_bits_opt)(&L->window, in, out, b, e);
    else
        (ref ? bnn_window_int_ref : bnn_window_int_opt)(&L->window, in, out, b, e);
}

static void prepare_maxpool(bnn_layer *L) {
    const size_t per_pixel = L->in.bits ? bnn_words(L->in.c) : L->in.c; /* words, or int16 channels */
    L->maxpool = (bnn_maxpool_params){.h = L->in.h, .w = L->in.w, .words = per_pixel, .kh = L->kh,
                                      .kw = L->kw, .sh = L->sh, .sw = L->sw, .oh = L->out.h, .ow = L->out.w};
}

static void run_maxpool(const bnn_layer *L, const void *in, void *out, int ref, size_t t, size_t T,
                        void *scratch) {
    size_t b, e;
    (void)scratch;
    part(L->maxpool.oh * L->maxpool.ow, t, T, &b, &e);
    if (L->in.bits)
        (ref ? bnn_maxpool_bits_ref : bnn_maxpool_bits_opt)(&L->maxpool, in, out, b, e);
    else /* n-bit activations: a few compares per value, the reference kernel is the only one */
        bnn_maxpool_int_ref(&L->maxpool, in, out, b, e);
}

static void prepare_flatten(bnn_layer *L) {
    L->flatten = (bnn_flatten_params){.pixels = L->in.h * L->in.w, .c = L->in.c};
}

static void run_flatten(const bnn_layer *L, const void *in, void *out, int ref, size_t t, size_t T,
                        void *scratch) {
    (void)ref;
    (void)T;
    (void)scratch;
    const bnn_flatten_params *p = &L->flatten;
    if (t != 0) return; /* a copy: not worth splitting */
    if (!L->in.bits) {
        memcpy(out, in, p->pixels * p->c * sizeof(int16_t));
    } else if (p->c % 64 == 0 || p->pixels == 1) { /* pixels are whole words already: same bytes */
        memcpy(out, in, p->pixels * bnn_words(p->c) * sizeof(uint64_t));
    } else {
        bnn_flatten_bits_ref(p, in, out);
    }
}

static void prepare_mvau(bnn_layer *L) {
    L->mvau = (bnn_mvau_params){.mh = L->out.c, .k = L->in.c, .thresholds = L->thresholds};
}

/* Thread t of T's part of an MVAU layer: rows [b, e) x output channels [j0, j1). Rows are split when there
 * are enough of them; a layer with fewer rows than threads (fully connected) splits its output channels in
 * whole 64-bit words instead, so no two threads write the same output word. */
typedef struct {
    size_t b, e, j0, j1;
} mvau_part;

static mvau_part split_mvau(const bnn_layer *L, size_t t, size_t T) {
    const size_t rows = L->out.h * L->out.w, mh = L->mvau.mh;
    mvau_part q = {0, rows, 0, mh};
    if (rows >= T) {
        part(rows, t, T, &q.b, &q.e);
    } else {
        size_t wb, we;
        part(bnn_words(mh), t, T, &wb, &we);
        q.j0 = wb * 64;
        q.j1 = we * 64 < mh ? we * 64 : mh;
    }
    return q;
}

/* The params of output channels [j0, j1) only: a narrower matrix whose thresholds start at j0. */
static bnn_mvau_params channel_slice(const bnn_mvau_params *p, size_t j0, size_t j1) {
    return (bnn_mvau_params){.mh = j1 - j0, .k = p->k, .thresholds = p->thresholds ? p->thresholds + j0 : NULL};
}

/* Where row r, channel j0 of the output starts: packed bits with thresholds, else int32 accumulators. */
static uint64_t *out_bits_at(const bnn_mvau_params *p, void *out, size_t r, size_t j0) {
    return p->thresholds ? (uint64_t *)out + r * bnn_words(p->mh) + j0 / 64 : NULL;
}
static int32_t *out_acc_at(const bnn_mvau_params *p, void *out, size_t r, size_t j0) {
    return p->thresholds ? NULL : (int32_t *)out + r * p->mh + j0;
}

typedef void (*mvau_binary_fn)(const bnn_mvau_params *, const uint64_t *, const uint64_t *, uint64_t *, int32_t *,
                               size_t, size_t);
typedef void (*mvau_integer_fn)(const bnn_mvau_params *, const int16_t *, const int8_t *, uint64_t *, int32_t *,
                                size_t, size_t);

/* Rows [r0, r1) of thread part q, comparing with `thresholds` (the layer's, or one pad class's; NULL: the
 * accumulators out). Whole rows take one kernel call. A channel slice runs row by row, each row as a one-row
 * matrix of j1 - j0 outputs: a kernel's output rows are as wide as its mh, and a slice's rows are spaced by
 * the whole layer's. */
static void binary_rows(const bnn_layer *L, const void *in, void *out, mvau_binary_fn kernel, mvau_part q, size_t r0,
                        size_t r1, const int32_t *thresholds) {
    const bnn_mvau_params *p = &L->mvau;
    bnn_mvau_params run = channel_slice(p, q.j0, q.j1);
    run.thresholds = thresholds ? thresholds + q.j0 : NULL;
    if (q.j0 == 0 && q.j1 == p->mh) { /* whole rows: one call */
        kernel(&run, in, L->weights_binary, out_bits_at(p, out, 0, 0), out_acc_at(p, out, 0, 0), r0, r1);
        return;
    }
    const size_t kw = bnn_words(p->k);
    for (size_t r = r0; r < r1; r++)
        kernel(&run, (const uint64_t *)in + r * kw, L->weights_binary + q.j0 * kw, out_bits_at(p, out, r, q.j0),
               out_acc_at(p, out, r, q.j0), 0, 1);
}

/* Rows [r0, r1) x channels [j0, j1) of an MVAU's int32 accumulators (acc: row-major, j1 - j0 per row) to its
 * output: n-bit levels, bits (j0 is a multiple of 64: the words are this thread's alone) or int32 (last layer). */
static void store_rows(const bnn_layer *L, const int32_t *acc, size_t r0, size_t r1, size_t j0, size_t j1,
                       void *out) {
    const size_t mh = L->mvau.mh, cols = j1 - j0, mw = bnn_words(mh);
    for (size_t r = r0; r < r1; r++) {
        const int32_t *a = acc + (r - r0) * cols;
        if (L->levels) {
            bnn_multi_threshold_ref(a, cols, L->thresholds + j0 * L->levels, L->levels, L->out_offset,
                                    (int16_t *)out + r * mh + j0);
        } else if (L->thresholds) {
            uint64_t *o = (uint64_t *)out + r * mw;
            memset(o + j0 / 64, 0, (bnn_words(j1) - j0 / 64) * sizeof(uint64_t));
            for (size_t j = j0; j < j1; j++) o[j / 64] |= (uint64_t)(a[j - j0] >= L->thresholds[j]) << (j % 64);
        } else {
            memcpy((int32_t *)out + r * mh + j0, a, cols * sizeof(int32_t));
        }
    }
}

size_t bnn_acc_rows_scratch_bytes(const bnn_layer *L) {
    if (!L->levels && !L->bitplane) return 0;
    const size_t acc = (BNN_BITPLANE_ROWS * L->mvau.mh * sizeof(int32_t) + BNN_ALIGN - 1) / BNN_ALIGN * BNN_ALIGN;
    return acc + (L->bitplane ? bnn_bitplane_scratch_bytes(L->bitplane) : 0);
}

/* Thread part q of an MVAU through its int32 accumulators, BNN_BITPLANE_ROWS rows at a time in this thread's
 * scratch: the bit-plane passes (optimized kernels) or the kernel without thresholds, then store_rows. For
 * n-bit activations and bit-plane layers (bnn_acc_rows_scratch_bytes sized the scratch at load). */
static void acc_rows(const bnn_layer *L, const void *in, void *out, int ref, mvau_part q, void *scratch) {
    const bnn_mvau_params *p = &L->mvau;
    const int whole = q.j0 == 0 && q.j1 == p->mh; /* keeps the integer weights' prepared layout */
    bnn_mvau_params run = whole ? *p : channel_slice(p, q.j0, q.j1);
    run.thresholds = NULL;
    const size_t kw = bnn_words(p->k), cols = q.j1 - q.j0;
    int32_t *acc = scratch;
    void *more = (char *)scratch + (BNN_BITPLANE_ROWS * p->mh * sizeof(int32_t) + BNN_ALIGN - 1) / BNN_ALIGN * BNN_ALIGN;
    for (size_t r0 = q.b; r0 < q.e; r0 += BNN_BITPLANE_ROWS) {
        const size_t r1 = q.e - r0 < BNN_BITPLANE_ROWS ? q.e : r0 + BNN_BITPLANE_ROWS;
        if (L->bitplane && !ref) {
            bnn_bitplane_rows(L->bitplane, in, r0, r1, q.j0, q.j1, acc, more);
        } else {
            for (size_t r = r0; r < r1; r++) {
                int32_t *a = acc + (r - r0) * cols;
                if (L->kind == BNN_MVAU_INTEGER)
                    (ref ? bnn_mvau_integer_ref : bnn_mvau_integer_opt)(&run, (const int16_t *)in + r * p->k,
                                                                        L->weights_integer + q.j0 * p->k, NULL, a, 0, 1);
                else
                    (ref ? bnn_mvau_binary_ref : bnn_mvau_binary_opt)(&run, (const uint64_t *)in + r * kw,
                                                                      L->weights_binary + q.j0 * kw, NULL, a, 0, 1);
            }
        }
        store_rows(L, acc, r0, r1, q.j0, q.j1, out);
    }
}

static void run_mvau_binary(const bnn_layer *L, const void *in, void *out, int ref, size_t t, size_t T,
                            void *scratch) {
    const mvau_part q = split_mvau(L, t, T);
    if (q.j0 >= q.j1) return; /* more threads than output words: nothing for this one */
    if (L->levels) {
        acc_rows(L, in, out, ref, q, scratch);
        return;
    }
    binary_rows(L, in, out, ref ? bnn_mvau_binary_ref : bnn_mvau_binary_opt, q, q.b, q.e, L->mvau.thresholds);
}

/* A zero-padded convolution's MVAU: thread t's part as run_mvau_binary's, cut into runs of pixels of one pad
 * class (a row's first and last pixels, the interior between), each run with its class's thresholds; the
 * output bits are those of a plain MVAU, so the next layer cannot tell. */
static void run_mvau_padded(const bnn_layer *L, const void *in, void *out, int ref, size_t t, size_t T,
                            void *scratch) {
    (void)scratch;
    const mvau_part q = split_mvau(L, t, T);
    const mvau_binary_fn kernel = ref ? bnn_mvau_binary_ref : bnn_mvau_binary_opt;
    const size_t ow = L->out.w;
    if (q.j0 >= q.j1) return;
    for (size_t r = q.b, end; r < q.e; r = end) {
        const size_t oy = r / ow, col_class = L->class_cols[r % ow];
        for (end = r + 1; end < q.e && end / ow == oy && L->class_cols[end % ow] == col_class;) end++;
        const size_t block = L->class_rows[oy] * L->col_classes + col_class;
        binary_rows(L, in, out, kernel, q, r, end, L->mvau.thresholds + block * L->mvau.mh);
    }
}

static void run_mvau_integer(const bnn_layer *L, const void *in, void *out, int ref, size_t t, size_t T,
                             void *scratch) {
    const bnn_mvau_params *p = &L->mvau;
    const mvau_part q = split_mvau(L, t, T);
    const mvau_integer_fn kernel = ref ? bnn_mvau_integer_ref : bnn_mvau_integer_opt;
    if (L->levels || (L->bitplane && !ref)) {
        if (q.j0 < q.j1) acc_rows(L, in, out, ref, q, scratch);
        return;
    }
    if (q.j0 == 0 && q.j1 == p->mh) { /* as run_mvau_binary */
        kernel(p, in, L->weights_integer, out_bits_at(p, out, 0, 0), out_acc_at(p, out, 0, 0), q.b, q.e);
        return;
    }
    if (q.j0 >= q.j1) return;
    const bnn_mvau_params slice = channel_slice(p, q.j0, q.j1);
    for (size_t r = q.b; r < q.e; r++)
        kernel(&slice, (const int16_t *)in + r * p->k, L->weights_integer + q.j0 * p->k, out_bits_at(p, out, r, q.j0),
               out_acc_at(p, out, r, q.j0), 0, 1);
}

/* Per layer kind, indexed by its code: build the kernel parameters; run thread t of T's part of the layer
 * (`out` is the next buffer, or the caller's scores for the last layer). Only the loader's known kinds
 * reach these (model.c validates every layer before bnn_prepare_layer). */
typedef void (*run_fn)(const bnn_layer *L, const void *in, void *out, int ref, size_t t, size_t T, void *scratch);
static const struct {
    void (*prepare)(bnn_layer *L);
    run_fn run;
} KINDS[BNN_KIND_END] = {
    [BNN_WINDOW] = {prepare_window, run_window},
    [BNN_MVAU_BINARY] = {prepare_mvau, run_mvau_binary},
    [BNN_MVAU_INTEGER] = {prepare_mvau, run_mvau_integer},
    [BNN_MAXPOOL] = {prepare_maxpool, run_maxpool},
    [BNN_FLATTEN] = {prepare_flatten, run_flatten},
    [BNN_MVAU_BINARY_PADDED] = {prepare_mvau, run_mvau_padded},
};

void bnn_prepare_layer(bnn_layer *L) {
    if (L->kind >= 0 && L->kind < BNN_KIND_END && KINDS[L->kind].prepare) KINDS[L->kind].prepare(L);
}

void bnn_run_layer(const bnn_layer *L, const void *in, void *out, int ref, size_t t, size_t T, void *scratch) {
    if (!ref && L->fused)
        bnn_run_fused(L, in, out, t, T, scratch);
    else
        KINDS[L->kind].run(L, in, out, ref, t, T, scratch);
}

/* Layer i is skipped: an earlier layer's fused kernel computed it (fuse.c; optimized kernels only). */
int bnn_layer_skipped(const bnn_model *m, size_t i) { return !m->use_ref && m->layers[i].fused_away; }

/* Where layer i writes: the caller's scores when it (or the fused group it heads) ends the network, else the
 * next ping-pong buffer. A fused group takes one buffer switch, so its output never lands on its input. */
void *bnn_layer_out(const bnn_model *m, size_t i, void *next_buf, int32_t *scores) {
    const bnn_layer *L = &m->layers[i];
    const size_t end = !m->use_ref && L->fused ? i + L->fused : i + 1;
    return end == m->n_layers ? (void *)scores : next_buf;
}

static void run_image(const bnn_model *m, bnn_ctx *ctx, const int16_t *img, int32_t *scores, int timed) {
    const void *cur = bnn_load_input(m, img, ctx->buf[0]);
    int next = m->input.bits ? 1 : 0;
    for (size_t i = 0; i < m->n_layers; i++) {
        if (bnn_layer_skipped(m, i)) continue;
        void *out = bnn_layer_out(m, i, ctx->buf[next], scores);
        double t0 = timed ? bnn_seconds() : 0.0;
        bnn_run_layer(&m->layers[i], cur, out, m->use_ref, 0, 1, ctx->scratch);
        if (timed) ctx->seconds[i] += bnn_seconds() - t0;
        cur = out;
        next ^= 1;
    }
}

/* Allocate scratch for `threads` contexts (kept for later runs). */
static int ensure_ctx(bnn_model *m, size_t threads) {
    if (m->n_ctx >= threads) return BNN_OK;
    bnn_ctx *c = realloc(m->ctx, threads * sizeof *c);
    if (!c) return BNN_E_NOMEM;
    m->ctx = c;
    for (; m->n_ctx < threads; m->n_ctx++) {
        bnn_ctx *x = &m->ctx[m->n_ctx];
        x->buf[0] = aligned_alloc(BNN_ALIGN, m->buf_bytes);
        x->buf[1] = aligned_alloc(BNN_ALIGN, m->buf_bytes);
        x->seconds = calloc(m->n_layers, sizeof(double));
        x->scratch = m->scratch_bytes ? aligned_alloc(BNN_ALIGN, m->scratch_bytes) : NULL;
        if (!x->buf[0] || !x->buf[1] || !x->seconds || (m->scratch_bytes && !x->scratch)) {
            free(x->buf[0]), free(x->buf[1]), free(x->seconds), free(x->scratch);
            return BNN_E_NOMEM;
        }
    }
    return BNN_OK;
}

typedef struct {
    bnn_model *m;
    bnn_ctx *ctx;
    const int16_t *input;
    int32_t *scores;
    size_t begin, end;
    int timed;
} job;

static void *run_job(void *arg) {
    job *j = arg;
    size_t in_n = bnn_input_elems(j->m), B = j->m->batch;
    for (size_t i = j->begin; i < j->end; i += B) {
        const size_t nb = j->end - i < B ? j->end - i : B;
        if (B > 1) /* a flat network: nb images per layer call (batch.c) */
            bnn_run_batch(j->m, j->ctx, j->input + i * in_n, nb, j->scores + i * j->m->classes, j->timed);
        else
            run_image(j->m, j->ctx, j->input + i * in_n, j->scores + i * j->m->classes, j->timed);
    }
    return NULL;
}

/* Every input value inside the model's input type (the kernels assume it). */
static int check_input(bnn_model *m, const int16_t *input, size_t count) {
    int16_t lo = INT16_MAX, hi = INT16_MIN; /* a branch-free pass first (vectorized); the loop below on failure */
    for (size_t i = 0; i < count; i++) {
        lo = input[i] < lo ? input[i] : lo;
        hi = input[i] > hi ? input[i] : hi;
    }
    if (lo >= m->in_min && hi <= m->in_max) return BNN_OK;
    for (size_t i = 0; i < count; i++) {
        if (input[i] < m->in_min || input[i] > m->in_max) {
            snprintf(m->last_error, sizeof m->last_error, "input value %d at index %zu outside [%d, %d]",
                     (int)input[i], i, (int)m->in_min, (int)m->in_max);
            return BNN_E_ARG;
        }
    }
    return BNN_OK;
}

static int run_threads(bnn_model *m, const int16_t *input, size_t n, int32_t *scores, size_t threads, int timed) {
    job jobs[64];
    pthread_t tid[64];
    size_t started = 0;
    for (size_t t = 0; t < threads; t++)
        jobs[t] = (job){m, &m->ctx[t], input, scores, n * t / threads, n * (t + 1) / threads, timed};
    for (size_t t = 1; t < threads; t++) {
        if (pthread_create(&tid[t], NULL, run_job, &jobs[t]) != 0) break;
        started = t;
    }
    for (size_t t = started + 1; t < threads; t++) run_job(&jobs[t]); /* threads that failed to start */
    run_job(&jobs[0]);
    for (size_t t = 1; t <= started; t++) pthread_join(tid[t], NULL);
    return BNN_OK;
}

void bnn_set_thread_grain(bnn_model *m, size_t grain) {
    if (m) m->thread_grain = grain;
}

/* Windows, pools and thresholds are small next to the matrix layers. 64-bit: a BCNN-32 batch's work passes
 * 2^32, size_t's range on ARMv6/v7. */
uint64_t bnn_image_work(const bnn_model *m) {
    uint64_t work = 0;
    for (size_t i = 0; i < m->n_layers; i++) {
        const bnn_layer *L = &m->layers[i];
        if (L->kind != BNN_MVAU_BINARY && L->kind != BNN_MVAU_BINARY_PADDED && L->kind != BNN_MVAU_INTEGER) continue;
        const uint64_t macs = (uint64_t)L->out.h * L->out.w * L->mvau.mh * L->mvau.k;
        work += L->kind == BNN_MVAU_INTEGER ? BNN_INTEGER_MAC_COST * macs : macs;
    }
    return work;
}

/* The threads worth starting for n images: at most one per thread_grain of work, at least one. */
size_t bnn_threads_used(const bnn_model *m, size_t n_images, int threads) {
    if (!m || threads <= 1 || n_images == 0) return 1;
    const size_t asked = threads > 64 ? 64 : (size_t)threads;
    if (m->thread_grain == 0) return asked;
    const uint64_t most = m->image_work * n_images / m->thread_grain;
    return most < 1 ? 1 : most < asked ? (size_t)most : asked;
}

int bnn_run(bnn_model *m, const int16_t *input, size_t n_images, int32_t *scores, int threads,
            double *layer_seconds) {
    if (!m) return BNN_E_ARG;
    m->last_error[0] = 0;
    if ((!input || !scores) && n_images) {
        snprintf(m->last_error, sizeof m->last_error, "NULL input or scores");
        return BNN_E_ARG;
    }
    if (threads < 0 || threads > 64) {
        snprintf(m->last_error, sizeof m->last_error, "threads must be in [1, 64], got %d", threads);
        return BNN_E_ARG;
    }
    size_t t = bnn_threads_used(m, n_images, threads);
    int split_layers = n_images > 0 && n_images < t; /* too few images to give each thread its own */
    int rc = check_input(m, input, n_images * bnn_input_elems(m));
    if (rc) return rc;
    size_t n_ctx = t; /* split layers: context 0's buffers, each thread's own scratch */
    if (ensure_ctx(m, n_ctx) != BNN_OK) {
        snprintf(m->last_error, sizeof m->last_error, "out of memory for %zu threads", t);
        return BNN_E_NOMEM;
    }
    for (size_t i = 0; i < m->n_ctx; i++) memset(m->ctx[i].seconds, 0, m->n_layers * sizeof(double));
    if (split_layers)
        bnn_run_split_layers(m, input, n_images, scores, t, layer_seconds != NULL);
    else
        run_threads(m, input, n_images, scores, t, layer_seconds != NULL);
    if (layer_seconds) {
        for (size_t l = 0; l < m->n_layers; l++) {
            layer_seconds[l] = 0;
            for (size_t i = 0; i < m->n_ctx; i++) layer_seconds[l] += m->ctx[i].seconds[l];
        }
    }
    return BNN_OK;
}

void bnn_use_reference_kernels(bnn_model *m, int on) {
    if (m) m->use_ref = on != 0;
}

const char *bnn_kernels(void) { return bnn_kernels_name(); }
