/* The network executor: runs a loaded model's layer list on images.
 *
 * Activations travel packed between layers (bits: words(c) uint64 per pixel) in two ping-pong buffers
 * per context, sized at load time to the largest tensor. The last layer writes its int32 accumulators
 * straight into the caller's scores. Two ways to use T threads (measured on BCNN-32, see the report):
 *  - images >= T: threads split the images, each with its own context: no synchronization at all;
 *  - images <  T: all T threads work on each image, splitting every layer's rows (or, for layers with
 *    fewer rows than threads, its output channels in whole 64-bit words) with a barrier after each layer. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, pthreads */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bnn_internal.h"
#include "bnn_kernels.h"

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Input integers (0/1 bits when the model takes bits) -> the first tensor: packed bits or int16 as is. */
static const void *load_input(const bnn_model *m, const int16_t *img, void *buf) {
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

static void run_window(const bnn_layer *L, const void *in, void *out, int ref, size_t b, size_t e) {
    if (L->in.bits) {
        (ref ? bnn_im2col_bits_ref : bnn_im2col_bits_opt)(in, L->in.h, L->in.w, L->in.c, L->kh, L->kw, L->sh, L->sw,
                                                          L->pad_t, L->pad_l, L->out.h, L->out.w, (int)L->pad_value,
                                                          b, e, out);
    } else {
        bnn_im2col_int_ref(in, L->in.h, L->in.w, L->in.c, L->kh, L->kw, L->sh, L->sw, L->pad_t, L->pad_l, L->out.h,
                           L->out.w, (int16_t)L->pad_value, b, e, out);
    }
}

static void run_flatten(const bnn_layer *L, const void *in, void *out) {
    size_t pixels = L->in.h * L->in.w;
    if (!L->in.bits) {
        memcpy(out, in, pixels * L->in.c * sizeof(int16_t));
    } else if (L->in.c % 64 == 0 || pixels == 1) { /* pixels are whole words already: same bytes */
        memcpy(out, in, pixels * bnn_words(L->in.c) * sizeof(uint64_t));
    } else {
        bnn_repack_bits_ref(in, pixels, L->in.c, out);
    }
}

/* Matrix layer rows [b, e), output channels [j0, j1) (j0 a multiple of 64: whole output words). */
static void run_mvau(const bnn_layer *L, const void *in, void *out, int ref, size_t b, size_t e, size_t j0,
                     size_t j1) {
    const size_t k = L->in.c, mh = L->out.c, ow = bnn_words(mh);
    const int32_t *thr = L->thr ? L->thr + j0 : NULL;
    if (j0 == 0 && j1 == mh) { /* whole rows: one call */
        uint64_t *ob = L->thr ? out : NULL;
        int32_t *oa = L->thr ? NULL : out;
        if (L->kind == BNN_XNOR_MVAU)
            (ref ? bnn_xnor_mvau_ref : bnn_xnor_mvau_opt)(in, b, e, L->wbits, mh, k, thr, ob, oa);
        else
            (ref ? bnn_int_mvau_ref : bnn_int_mvau_opt)(in, b, e, L->wint, mh, k, thr, ob, oa);
        return;
    }
    for (size_t r = b; r < e; r++) { /* a channel slice of row r, as a one-row matrix of j1 - j0 outputs */
        uint64_t *ob = L->thr ? (uint64_t *)out + r * ow + j0 / 64 : NULL;
        int32_t *oa = L->thr ? NULL : (int32_t *)out + r * mh + j0;
        if (L->kind == BNN_XNOR_MVAU) {
            const size_t kw = bnn_words(k);
            (ref ? bnn_xnor_mvau_ref : bnn_xnor_mvau_opt)((const uint64_t *)in + r * kw, 0, 1, L->wbits + j0 * kw,
                                                          j1 - j0, k, thr, ob, oa);
        } else {
            (ref ? bnn_int_mvau_ref : bnn_int_mvau_opt)((const int16_t *)in + r * k, 0, 1, L->wint + j0 * k, j1 - j0,
                                                        k, thr, ob, oa);
        }
    }
}

/* Part t of T of one layer; `out` is the next buffer, or the caller's scores for the last layer. */
static void run_layer(const bnn_layer *L, const void *in, void *out, int ref, size_t t, size_t T) {
    size_t b, e, rows = L->out.h * L->out.w;
    switch (L->kind) {
    case BNN_WINDOW:
        part(rows, t, T, &b, &e);
        run_window(L, in, out, ref, b, e);
        break;
    case BNN_MAXPOOL:
        part(rows, t, T, &b, &e);
        (ref ? bnn_maxpool_bits_ref : bnn_maxpool_bits_opt)(in, L->in.h, L->in.w, bnn_words(L->in.c), L->kh, L->kw,
                                                            L->sh, L->sw, L->out.h, L->out.w, b, e, out);
        break;
    case BNN_FLATTEN:
        if (t == 0) run_flatten(L, in, out); /* a copy: not worth splitting */
        break;
    case BNN_XNOR_MVAU:
    case BNN_INT_MVAU:
        if (rows >= T) {
            part(rows, t, T, &b, &e);
            run_mvau(L, in, out, ref, b, e, 0, L->out.c);
        } else { /* few rows (fully connected): split the output channels in whole words */
            part(bnn_words(L->out.c), t, T, &b, &e);
            size_t j1 = e * 64 < L->out.c ? e * 64 : L->out.c;
            if (b * 64 < j1) run_mvau(L, in, out, ref, 0, rows, b * 64, j1);
        }
        break;
    default: break; /* the loader admits no other kind */
    }
}

static void run_image(const bnn_model *m, bnn_ctx *ctx, const int16_t *img, int32_t *scores, int timed) {
    const void *cur = load_input(m, img, ctx->buf[0]);
    int next = m->input.bits ? 1 : 0;
    for (size_t i = 0; i < m->n_layers; i++) {
        int last = i + 1 == m->n_layers;
        void *out = last ? (void *)scores : ctx->buf[next];
        double t0 = timed ? now_seconds() : 0.0;
        run_layer(&m->layers[i], cur, out, m->use_ref, 0, 1);
        if (timed) ctx->seconds[i] += now_seconds() - t0;
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
        if (!x->buf[0] || !x->buf[1] || !x->seconds) {
            free(x->buf[0]), free(x->buf[1]), free(x->seconds);
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
    size_t in_n = bnn_input_elems(j->m);
    for (size_t i = j->begin; i < j->end; i++)
        run_image(j->m, j->ctx, j->input + i * in_n, j->scores + i * j->m->classes, j->timed);
    return NULL;
}

/* Every input value inside the model's input type (the kernels assume it). */
static int check_input(bnn_model *m, const int16_t *input, size_t count) {
    for (size_t i = 0; i < count; i++) {
        if (input[i] < m->in_min || input[i] > m->in_max) {
            snprintf(m->last_error, sizeof m->last_error, "input value %d at index %zu outside [%d, %d]",
                     (int)input[i], i, (int)m->in_min, (int)m->in_max);
            return BNN_E_ARG;
        }
    }
    return BNN_OK;
}

/* Layer-split mode: T threads share context 0 and meet at a barrier after the input and after each layer. */
typedef struct {
    bnn_model *m;
    const int16_t *input;
    int32_t *scores;
    size_t n, T;
    int timed;
    pthread_barrier_t bar;
} shared_run;

typedef struct {
    shared_run *s;
    size_t t;
    pthread_mutex_t *gate; /* held by the creator until s->T and s->bar are final */
} part_job;

static void *run_parts(void *arg) {
    part_job *j = arg;
    shared_run *s = j->s;
    const bnn_model *m = s->m;
    bnn_ctx *ctx = &m->ctx[0];
    for (size_t img = 0; img < s->n; img++) {
        const int16_t *in = s->input + img * bnn_input_elems(m);
        const void *cur = in;
        if (m->input.bits) {
            if (j->t == 0) load_input(m, in, ctx->buf[0]);
            pthread_barrier_wait(&s->bar);
            cur = ctx->buf[0];
        }
        int next = m->input.bits ? 1 : 0;
        for (size_t i = 0; i < m->n_layers; i++) {
            void *out = i + 1 == m->n_layers ? (void *)(s->scores + img * m->classes) : ctx->buf[next];
            double t0 = s->timed && j->t == 0 ? now_seconds() : 0.0;
            run_layer(&m->layers[i], cur, out, m->use_ref, j->t, s->T);
            pthread_barrier_wait(&s->bar); /* the next layer reads what every thread wrote */
            if (s->timed && j->t == 0) ctx->seconds[i] += now_seconds() - t0;
            cur = out;
            next ^= 1;
        }
    }
    return NULL;
}

static void *run_parts_gated(void *arg) {
    part_job *j = arg;
    pthread_mutex_lock(j->gate);
    pthread_mutex_unlock(j->gate);
    return run_parts(j);
}

/* Threads are created first; the barrier is sized to the number that actually started. */
static void run_split_layers(bnn_model *m, const int16_t *input, size_t n, int32_t *scores, size_t threads,
                             int timed) {
    shared_run s = {.m = m, .input = input, .scores = scores, .n = n, .T = 1, .timed = timed};
    part_job jobs[64];
    pthread_t tid[64];
    pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
    size_t started = 1;
    pthread_mutex_lock(&gate); /* workers start by taking the gate: they wait until T and the barrier are set */
    for (; started < threads; started++) {
        jobs[started] = (part_job){&s, started, &gate};
        if (pthread_create(&tid[started], NULL, run_parts_gated, &jobs[started]) != 0) break;
    }
    s.T = started;
    pthread_barrier_init(&s.bar, NULL, (unsigned)started);
    pthread_mutex_unlock(&gate);
    jobs[0] = (part_job){&s, 0, &gate};
    run_parts(&jobs[0]);
    for (size_t t = 1; t < started; t++) pthread_join(tid[t], NULL);
    pthread_barrier_destroy(&s.bar);
    pthread_mutex_destroy(&gate);
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
    size_t t = threads < 1 || n_images == 0 ? 1 : (size_t)threads;
    int split_layers = n_images > 0 && n_images < t; /* too few images to give each thread its own */
    int rc = check_input(m, input, n_images * bnn_input_elems(m));
    if (rc) return rc;
    size_t n_ctx = split_layers ? 1 : t;
    if (ensure_ctx(m, n_ctx) != BNN_OK) {
        snprintf(m->last_error, sizeof m->last_error, "out of memory for %zu threads", t);
        return BNN_E_NOMEM;
    }
    for (size_t i = 0; i < m->n_ctx; i++) memset(m->ctx[i].seconds, 0, m->n_layers * sizeof(double));
    if (split_layers)
        run_split_layers(m, input, n_images, scores, t, layer_seconds != NULL);
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
