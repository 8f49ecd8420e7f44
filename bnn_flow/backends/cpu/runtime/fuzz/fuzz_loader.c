/* libFuzzer harness for the .bnn loader (src/model.c): malformed files must be rejected with an
 * error code and a message, never a crash, a hang, an out-of-bounds access or undefined behaviour.
 *
 * Each input is tried twice:
 *  1. as it is: the loader's first checks (size, magic, version, total size, CRC);
 *  2. "sealed": a copy whose header total-size field and trailing CRC-32 are set to match the input,
 *     so that mutations get past the CRC into the header, layer table, shape and payload validation
 *     (without this almost every mutation would stop at the CRC check).
 * A model that loads is run on one all-zero image (0 is a valid value of every input type) with bnn_run,
 * so the executor is exercised on every layer table the loader accepts.
 * Contract checks (abort = a finding): a failed load leaves *out NULL and a NUL-terminated message.
 * Build and run: fuzz/README.md (make fuzz). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bnn.h"
#include "bnn_internal.h"

/* Largest per-image input / class count run after a successful load: the loader may accept bigger
 * shapes legitimately; running them would only make the fuzzer slow, not find more loader bugs. */
#define MAX_RUN_ELEMS ((size_t)1 << 20)

static void try_load(const uint8_t *data, size_t size) {
    bnn_model *m = (bnn_model *)(uintptr_t)1; /* must be overwritten with NULL or a model */
    char err[256];
    memset(err, 'x', sizeof err);
    int rc = bnn_model_from_memory(data, size, &m, err, sizeof err);
    if (rc != BNN_OK) {
        if (m != NULL || memchr(err, 0, sizeof err) == NULL || err[0] == 0) abort();
        return;
    }
    if (m == NULL) abort();
    size_t n = bnn_input_elems(m), c = bnn_classes(m);
    if (n > 0 && n <= MAX_RUN_ELEMS && c > 0 && c <= MAX_RUN_ELEMS) {
        int16_t *x = calloc(n, sizeof *x);
        int32_t *s = calloc(c, sizeof *s);
        if (x && s) {
            int run = bnn_run(m, x, 1, s, 1, NULL);
            if (run != BNN_OK && run != BNN_E_NOMEM) abort(); /* a loaded model must run */
        }
        free(x);
        free(s);
    }
    for (size_t i = 0; i < bnn_layer_count(m); i++) (void)strlen(bnn_layer_name(m, i));
    bnn_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    try_load(data, size);
    if (size >= 68 && size <= UINT32_MAX) {
        uint8_t *sealed = malloc(size);
        if (!sealed) return 0;
        memcpy(sealed, data, size);
        uint32_t total = (uint32_t)size;
        memcpy(sealed + 8, &total, 4); /* little-endian hosts only (x86-64, arm64): the fuzzing hosts */
        uint32_t crc = bnn_crc32(sealed, size - 4);
        memcpy(sealed + size - 4, &crc, 4);
        try_load(sealed, size);
        free(sealed);
    }
    return 0;
}
