/* Layer-split mode (net.c runs it when a call has fewer images than threads): all T threads work on each
 * image, splitting every layer's rows or output words (net.c's kinds, fuse.c's groups), and meet at a barrier
 * after the input and after each layer, because the next layer reads what every thread wrote.
 *
 * The barrier spins. pthread_barrier_wait sleeps in the kernel and the wake-up costs tens of microseconds,
 * as much as a deep layer's whole work on a small map: with it, 2 threads ran one BCNN-32 image no faster
 * than 1. A waiting thread here waits only for the layer's imbalance, with at most one thread per core; after
 * SPIN_POLLS polls it gives its core away each time (an oversubscribed or busy machine). */
#define _POSIX_C_SOURCE 200809L /* pthreads, sched_yield */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "bnn_internal.h"

#define SPIN_POLLS 2000u

typedef struct {
    atomic_uint arrived;
    atomic_uint generation; /* bumped by the last arrival: it releases the others */
    unsigned n;
} spin_barrier;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || (defined(__ARM_ARCH) && __ARM_ARCH >= 7)
    __asm__ volatile("yield");
#endif
}

static void barrier_wait(spin_barrier *b) {
    const unsigned gen = atomic_load_explicit(&b->generation, memory_order_acquire);
    if (atomic_fetch_add_explicit(&b->arrived, 1, memory_order_acq_rel) == b->n - 1) {
        atomic_store_explicit(&b->arrived, 0, memory_order_relaxed); /* ordered before the release below */
        atomic_fetch_add_explicit(&b->generation, 1, memory_order_release);
        return;
    }
    for (unsigned polls = 0; atomic_load_explicit(&b->generation, memory_order_acquire) == gen; polls++) {
        if (polls < SPIN_POLLS)
            cpu_relax();
        else
            sched_yield();
    }
}

typedef struct {
    bnn_model *m;
    const int16_t *input;
    int32_t *scores;
    size_t n, T;
    int timed;
    spin_barrier bar;
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
    bnn_ctx *ctx = &m->ctx[0]; /* the shared buffers; thread t's own scratch is in context t */
    for (size_t img = 0; img < s->n; img++) {
        const int16_t *in = s->input + img * bnn_input_elems(m);
        const void *cur = in;
        if (m->input.bits) {
            if (j->t == 0) bnn_load_input(m, in, ctx->buf[0]);
            barrier_wait(&s->bar);
            cur = ctx->buf[0];
        }
        int next = m->input.bits ? 1 : 0;
        for (size_t i = 0; i < m->n_layers; i++) {
            if (bnn_layer_skipped(m, i)) continue;
            void *out = bnn_layer_out(m, i, ctx->buf[next], s->scores + img * m->classes);
            double t0 = s->timed && j->t == 0 ? bnn_seconds() : 0.0;
            bnn_run_layer(&m->layers[i], cur, out, m->use_ref, j->t, s->T, m->ctx[j->t].scratch);
            barrier_wait(&s->bar);
            if (s->timed && j->t == 0) ctx->seconds[i] += bnn_seconds() - t0;
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

/* Threads are created first; the barrier counts the number that actually started. */
void bnn_run_split_layers(bnn_model *m, const int16_t *input, size_t n, int32_t *scores, size_t threads,
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
    atomic_init(&s.bar.arrived, 0);
    atomic_init(&s.bar.generation, 0);
    s.bar.n = (unsigned)started;
    pthread_mutex_unlock(&gate);
    jobs[0] = (part_job){&s, 0, &gate};
    run_parts(&jobs[0]);
    for (size_t t = 1; t < started; t++) pthread_join(tid[t], NULL);
    pthread_mutex_destroy(&gate);
}
