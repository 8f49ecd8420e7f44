/* bnn_run: the command-line runner of the C runtime (native or under qemu-user).
 *
 *   bnn_run MODEL.bnn IN.bin OUT.bin [--threads N] [--grain G] [--repeat R] [--layers]
 *
 * IN.bin: raw little-endian int16, N x bnn_input_elems() values (NHWC; bits as 0/1), N = size / (2 * elems).
 * OUT.bin: raw little-endian int32, N x classes. Exit 0 on success; 2 with one line on stderr for a bad
 * model, input file or usage; 1 when running fails. Prints one timing line on stderr.
 * --grain G: the least work worth a thread (bnn_set_thread_grain; 0: use all N threads).
 * --repeat R runs the whole batch R times (timing); the output is that of the last run.
 * --layers also prints each layer's time (ms per image, summed over threads) on stderr. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bnn.h"

static int usage(const char *msg) {
    fprintf(stderr, "bnn_run: %s (usage: bnn_run MODEL.bnn IN.bin OUT.bin [--threads N] [--grain G] [--repeat R] [--layers])\n", msg);
    return 2;
}

static int little_endian(void) {
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* Reads a whole file; returns NULL with *len = 0 on failure. */
static unsigned char *read_file(const char *path, size_t *len) {
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    unsigned char *buf = n >= 0 && fseek(f, 0, SEEK_SET) == 0 ? malloc(n ? (size_t)n : 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) *len = (size_t)n;
    return buf;
}

static int parse_count(const char *s, long lo, long hi, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end != 0 || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int write_scores(const char *path, const int32_t *scores, size_t count) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t wrote = fwrite(scores, sizeof(int32_t), count, f);
    return fclose(f) == 0 && wrote == count;
}

int main(int argc, char **argv) {
    long threads = 1, repeat = 1, grain = -1; /* -1: the library's default grain */
    int per_layer = 0;
    if (argc < 4) return usage("missing arguments");
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--layers") == 0) {
            per_layer = 1;
            continue;
        }
        long *dst = strcmp(argv[i], "--threads") == 0   ? &threads
                    : strcmp(argv[i], "--repeat") == 0  ? &repeat
                    : strcmp(argv[i], "--grain") == 0   ? &grain
                                                        : NULL;
        if (!dst) return usage("unknown option");
        const long lo = dst == &grain ? 0 : 1, hi = dst == &threads ? 64 : dst == &grain ? 2000000000 : 1000000;
        if (i + 1 >= argc || !parse_count(argv[++i], lo, hi, dst))
            return usage("--threads takes 1..64, --grain 0..2000000000, --repeat 1..1000000");
    }
    if (!little_endian()) return usage("this runner reads little-endian files and needs a little-endian CPU");
    char err[256];
    bnn_model *m = NULL;
    if (bnn_model_from_file(argv[1], &m, err, sizeof err) != BNN_OK) {
        fprintf(stderr, "bnn_run: bad model %s: %s\n", argv[1], err);
        return 2;
    }
    if (grain >= 0) bnn_set_thread_grain(m, (size_t)grain);
    size_t elems = bnn_input_elems(m), classes = bnn_classes(m), len;
    unsigned char *in = read_file(argv[2], &len);
    if (!in || len == 0 || len % (2 * elems) != 0) {
        fprintf(stderr, "bnn_run: bad input %s: need a non-empty multiple of %zu bytes (N x %zu int16), got %zu\n",
                argv[2], 2 * elems, elems, len);
        free(in);
        bnn_model_free(m);
        return 2;
    }
    size_t n = len / (2 * elems);
    int16_t *input = malloc(len);
    int32_t *scores = malloc(n * classes * sizeof(int32_t));
    double *secs = calloc(bnn_layer_count(m), sizeof(double));
    int rc = input && scores && secs ? BNN_OK : BNN_E_NOMEM;
    if (input) memcpy(input, in, len);
    double t0 = now_seconds();
    for (long r = 0; r < repeat && rc == BNN_OK; r++)
        rc = bnn_run(m, input, n, scores, (int)threads, per_layer ? secs : NULL);
    double dt = now_seconds() - t0;
    int status = 0;
    if (rc != BNN_OK) {
        fprintf(stderr, "bnn_run: %s: %s\n", argv[2], rc == BNN_E_NOMEM ? "out of memory" : bnn_last_error(m));
        status = rc == BNN_E_ARG ? 2 : 1;
    } else if (!write_scores(argv[3], scores, n * classes)) {
        fprintf(stderr, "bnn_run: cannot write %s\n", argv[3]);
        status = 2;
    } else {
        fprintf(stderr, "bnn_run: %zu images x %ld in %.3f s: %.1f images/s (%ld threads, kernels %s)\n", n, repeat,
                dt, (double)n * (double)repeat / dt, threads, bnn_kernels());
        for (size_t l = 0; per_layer && l < bnn_layer_count(m); l++) /* secs: the last run */
            fprintf(stderr, "  %-24s %9.4f ms/image\n", bnn_layer_name(m, l), 1e3 * secs[l] / (double)n);
    }
    free(in);
    free(input);
    free(scores);
    free(secs);
    bnn_model_free(m);
    return status;
}
