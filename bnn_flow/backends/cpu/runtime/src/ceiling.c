/* The binary ceiling that pi-bench compares each layer against (bnn.h: bnn_isa_ceiling).
 *
 * Ceiling = the binary MACs per second of the kernel family's own XNOR-popcount tile step with nothing else
 * around it (bnn_isa_mix_opt: e.g. AVX-512 vpxorq + vpopcntq + vpaddq per 512 MACs, operands in L1),
 * best of several timings. MACs per cycle divide by a clock estimated the same way: a chain of dependent
 * adds, one per cycle on every core this runs on (the add's latency), so no frequency counter is needed. */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <time.h>

#include "bnn.h"
#include "bnn_kernels.h"

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Cycles per second: 4 dependent adds per iteration (the loop's own counter runs beside them). */
static double clock_estimate(uint64_t iters) {
    uint64_t x = 0;
    const double t0 = seconds_now();
    for (uint64_t i = 0; i < iters; i++) {
        x += i;
        __asm__ volatile("" : "+r"(x));
        x += 1;
        __asm__ volatile("" : "+r"(x));
        x += 2;
        __asm__ volatile("" : "+r"(x));
        x += 3;
        __asm__ volatile("" : "+r"(x));
    }
    const double t = seconds_now() - t0;
    return t > 0 && x != 1 ? 4.0 * (double)iters / t : 0.0;
}

double bnn_isa_ceiling(int repeats, double *clock_hz) {
    double best = 0.0, hz = 0.0;
    /* many short samples (~0.5 ms), the fastest kept: on a shared core some land in an unpreempted slice */
    for (int r = 0; r < 8 * (repeats < 1 ? 1 : repeats); r++) {
        unsigned macs = 0;
        const uint64_t iters = 50000;
        const double t0 = seconds_now();
        volatile uint64_t sink = bnn_isa_mix_opt(iters, &macs);
        (void)sink;
        const double t = seconds_now() - t0, rate = t > 0 ? (double)iters * macs / t : 0.0;
        best = rate > best ? rate : best;
        const double f = clock_estimate(250000);
        hz = f > hz ? f : hz;
    }
    if (clock_hz) *clock_hz = hz;
    return best;
}
