/* The .bnn loader: parse and validate a model image (docs/bnn-format.md, versions 1 to 3).
 *
 * Every field is read through rd_u16/rd_u32 after a bounds check; every offset + size is checked
 * against the file length in 64-bit arithmetic on values already limited to 32 bits, so nothing can
 * overflow or read outside [data, data + size). On success the model owns an aligned copy of the file
 * and every weight/threshold pointer points into it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnn_internal.h"
#include "bnn_kernels.h"

static uint32_t rd_u16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int fail(char *err, size_t err_len, int code, const char *fmt, ...) {
    if (err && err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return code;
}

size_t bnn_shape_bytes(const bnn_shape *s, int is_acc) {
    size_t pixels = s->h * s->w;
    if (s->bits) return pixels * bnn_words(s->c) * sizeof(uint64_t);
    return pixels * s->c * (is_acc ? sizeof(int32_t) : sizeof(int16_t));
}

/* A shape with every dimension in [1, BNN_MAX_DIM] and at most BNN_MAX_ELEMS elements. */
static int shape_ok(const bnn_shape *s) {
    if (s->h < 1 || s->w < 1 || s->c < 1 || s->h > BNN_MAX_DIM || s->w > BNN_MAX_DIM || s->c > BNN_MAX_DIM) return 0;
    return (uint64_t)s->h * s->w <= BNN_MAX_ELEMS && (uint64_t)s->h * s->w * s->c <= BNN_MAX_ELEMS;
}

static int same_shape(const bnn_shape *a, const bnn_shape *b) {
    return a->h == b->h && a->w == b->w && a->c == b->c && a->bits == b->bits;
}

/* A payload [off, off + len) inside the file's payload area, 64-byte aligned. */
static int payload_ok(uint64_t off, uint64_t len, uint64_t start, uint64_t end) {
    return off % BNN_ALIGN == 0 && off >= start && off <= end && len <= end - off;
}

typedef struct {
    const unsigned char *data; /* the aligned copy */
    unsigned version;
    uint64_t payload_start, payload_end;
    int32_t in_min, in_max; /* the integer map in flight: the input type or an n-bit activation's levels, and pads */
    char *err;
    size_t err_len;
} loader;

/* The checks of one kind, after those common to every kind (check_layer); e is the raw table entry. */
typedef int (*check_fn)(loader *ld, size_t i, bnn_layer *L, const unsigned char *e, int last);

/* Window and max-pool: kernel, stride and padding in range; *want = the output shape they imply, with
 * c = in.c (the caller sets the channels). */
static int check_sliding(loader *ld, size_t i, const bnn_layer *L, bnn_shape *want) {
    const bnn_shape *in = &L->in;
    if (!L->kh || !L->kw || !L->sh || !L->sw || L->kh > BNN_MAX_KERNEL || L->kw > BNN_MAX_KERNEL ||
        L->sh > BNN_MAX_KERNEL || L->sw > BNN_MAX_KERNEL || L->pad_t > BNN_MAX_KERNEL || L->pad_l > BNN_MAX_KERNEL ||
        L->pad_b > BNN_MAX_KERNEL || L->pad_r > BNN_MAX_KERNEL)
        return fail(ld->err, ld->err_len, BNN_E_FORMAT, "layer %zu (%s): kernel/stride/pad out of range", i, L->name);
    size_t ph = in->h + L->pad_t + L->pad_b, pw = in->w + L->pad_l + L->pad_r;
    if (ph < L->kh || pw < L->kw)
        return fail(ld->err, ld->err_len, BNN_E_SHAPE, "layer %zu (%s): kernel larger than the map", i, L->name);
    *want = (bnn_shape){(ph - L->kh) / L->sh + 1, (pw - L->kw) / L->sw + 1, in->c, in->bits};
    return BNN_OK;
}

static int check_output(loader *ld, size_t i, const bnn_layer *L, const bnn_shape *want) {
    if (!shape_ok(want) || !same_shape(want, &L->out))
        return fail(ld->err, ld->err_len, BNN_E_SHAPE, "layer %zu (%s): output shape does not follow from the input",
                    i, L->name);
    return BNN_OK;
}

static int check_window(loader *ld, size_t i, bnn_layer *L, const unsigned char *e, int last) {
    (void)e;
    (void)last;
    const bnn_shape *in = &L->in;
    bnn_shape want;
    int rc = check_sliding(ld, i, L, &want);
    if (rc) return rc;
    uint64_t patch = (uint64_t)L->kh * L->kw * in->c; /* 64-bit: size_t is 32 bits on ARMv6/v7 */
    want.c = patch > BNN_MAX_DIM ? 0 : (size_t)patch;
    if (in->bits ? (L->pad_value != 0 && L->pad_value != 1) : (L->pad_value < INT16_MIN || L->pad_value > INT16_MAX))
        return fail(ld->err, ld->err_len, BNN_E_FORMAT, "layer %zu (%s): pad value %d out of range", i, L->name,
                    (int)L->pad_value);
    if (!in->bits) { /* the integer map now also holds the pad value: widen its known range */
        if (L->pad_value < ld->in_min) ld->in_min = L->pad_value;
        if (L->pad_value > ld->in_max) ld->in_max = L->pad_value;
    }
    return check_output(ld, i, L, &want);
}

static int check_maxpool(loader *ld, size_t i, bnn_layer *L, const unsigned char *e, int last) {
    (void)e;
    (void)last;
    bnn_shape want;
    int rc = check_sliding(ld, i, L, &want);
    if (rc) return rc;
    if ((!L->in.bits && ld->version < 3) || L->pad_t || L->pad_l || L->pad_b || L->pad_r)
        return fail(ld->err, ld->err_len, BNN_E_FORMAT, "layer %zu (%s): max-pool needs bits (integers: version 3), "
                    "no padding", i, L->name);
    return check_output(ld, i, L, &want); /* want.c = in.c: max-pool keeps the channels */
}

static int check_flatten(loader *ld, size_t i, bnn_layer *L, const unsigned char *e, int last) {
    (void)e;
    (void)last;
    if (L->out.h != 1 || L->out.w != 1 || L->out.c != L->in.h * L->in.w * L->in.c || L->out.bits != L->in.bits)
        return fail(ld->err, ld->err_len, BNN_E_SHAPE, "layer %zu (%s): bad flatten shape", i, L->name);
    return BNN_OK;
}

/* Binary weights: size, bounds and zero padding bits (the kernels rely on them). */
static int check_binary_weights(loader *ld, size_t i, bnn_layer *L, uint64_t off, uint64_t len) {
    size_t kw = bnn_words(L->in.c), mh = L->out.c;
    if (len != (uint64_t)mh * kw * 8u || !payload_ok(off, len, ld->payload_start, ld->payload_end))
        return fail(ld->err, ld->err_len, BNN_E_FORMAT, "layer %zu (%s): weight block out of bounds or wrong size", i,
                    L->name);
    L->weights_binary = (const uint64_t *)(const void *)(ld->data + off);
    unsigned rem = (unsigned)(L->in.c % 64);
    if (rem) {
        uint64_t pad_mask = ~(((uint64_t)1 << rem) - 1);
        for (size_t j = 0; j < mh; j++)
            if (L->weights_binary[j * kw + kw - 1] & pad_mask)
                return fail(ld->err, ld->err_len, BNN_E_FORMAT, "layer %zu (%s): weight padding bits not zero", i,
                            L->name);
    }
    return BNN_OK;
}

/* Integer weights: size, bounds, and no int32 overflow of the accumulator for any valid input. */
static int check_integer_weights(loader *ld, size_t i, bnn_layer *L, uint64_t off, uint64_t len) {
    size_t k = L->in.c, mh = L->out.c;
    if (len != (uint64_t)mh * k || !payload_ok(off, len, ld->payload_start, ld->payload_end))
        return fail(ld->err, ld->err_len, BNN_E_FORMAT, "layer %zu (%s): weight block out of bounds or wrong size", i,
                    L->name);
    L->weights_integer = (const int8_t *)(const void *)(ld->data + off);
    L->x_min = ld->in_min, L->x_max = ld->in_max; /* the integer map in flight */
    int64_t lo = -(int64_t)ld->in_min, hi = ld->in_max;
    uint64_t xmax = (uint64_t)(hi > lo ? hi : lo);
    for (size_t j = 0; j < mh; j++) {
        uint64_t s = 0;
        for (size_t t = 0; t < k; t++) s += (uint64_t)abs(L->weights_integer[j * k + t]);
        if (s * xmax > INT32_MAX)
            return fail(ld->err, ld->err_len, BNN_E_FORMAT, "layer %zu (%s): accumulator may overflow int32", i, L->name);
    }
    return BNN_OK;
}

/* An n-bit activation (entry bytes 72..75, version 3, kinds 2 and 3): levels in [2, 255] thresholds per output,
 * int16 levels out, never the last layer; the next integer layer's inputs then lie in [offset, offset + levels]. */
static int check_levels(loader *ld, size_t i, bnn_layer *L, const unsigned char *e, int last) {
    L->levels = rd_u16(e + 72), L->out_offset = (int16_t)rd_u16(e + 74);
    if (!L->levels && !L->out_offset) return BNN_OK;
    if (ld->version < 3 || L->kind == BNN_MVAU_BINARY_PADDED || last || L->levels < 2 || L->levels > 255 ||
        L->out.bits || (int32_t)L->out_offset + (int32_t)L->levels > INT16_MAX)
        return fail(ld->err, ld->err_len, BNN_E_FORMAT, "layer %zu (%s): bad n-bit activation (%zu levels from %d)",
                    i, L->name, L->levels, (int)L->out_offset);
    return BNN_OK;
}

/* Shapes and thresholds of either MVAU; the weights are checked by the variant (binary: 1, integer: 0). */
static int check_mvau(loader *ld, size_t i, bnn_layer *L, const unsigned char *e, int last, int binary) {
    uint64_t toff = rd_u32(e + 56), tcnt = rd_u32(e + 60);
    int rc = check_levels(ld, i, L, e, last);
    if (rc) return rc;
    if (L->in.bits != binary)
        return fail(ld->err, ld->err_len, BNN_E_SHAPE, "layer %zu (%s): %s input expected", i, L->name,
                    binary ? "bit" : "integer");
    if (L->out.h != L->in.h || L->out.w != L->in.w)
        return fail(ld->err, ld->err_len, BNN_E_SHAPE, "layer %zu (%s): matrix layer changes the pixel count", i,
                    L->name);
    const uint64_t blocks = L->kind == BNN_MVAU_BINARY_PADDED ? (uint64_t)L->row_classes * L->col_classes
                            : L->levels                         ? L->levels
                                                                : 1;
    if (tcnt != 0 && tcnt != blocks * L->out.c)
        return fail(ld->err, ld->err_len, BNN_E_FORMAT, "layer %zu (%s): %llu thresholds for %zu outputs", i, L->name,
                    (unsigned long long)tcnt, L->out.c);
    if ((tcnt == 0) != last || L->out.bits != (tcnt != 0 && !L->levels))
        return fail(ld->err, ld->err_len, BNN_E_FORMAT,
                    "layer %zu (%s): only the last layer (and every last layer) has integer output", i, L->name);
    if (tcnt) {
        if (!payload_ok(toff, tcnt * 4, ld->payload_start, ld->payload_end))
            return fail(ld->err, ld->err_len, BNN_E_FORMAT, "layer %zu (%s): thresholds out of bounds", i, L->name);
        L->thresholds = (const int32_t *)(const void *)(ld->data + toff);
    }
    return BNN_OK;
}

static int check_mvau_binary(loader *ld, size_t i, bnn_layer *L, const unsigned char *e, int last) {
    int rc = check_mvau(ld, i, L, e, last, 1);
    return rc ? rc : check_binary_weights(ld, i, L, rd_u32(e + 48), rd_u32(e + 52));
}

/* Pad classes (entry bytes 64..71: class map offset, row classes, column classes): OH + OW class bytes, each
 * below its count; the thresholds are checked by check_mvau against row x column classes blocks. */
static int check_mvau_padded(loader *ld, size_t i, bnn_layer *L, const unsigned char *e, int last) {
    uint64_t off = rd_u32(e + 64), len = (uint64_t)L->out.h + L->out.w;
    L->row_classes = rd_u16(e + 68), L->col_classes = rd_u16(e + 70);
    if (ld->version < 2 || last || !L->row_classes || !L->col_classes || L->row_classes > 255 ||
        L->col_classes > 255 || !payload_ok(off, len, ld->payload_start, ld->payload_end))
        return fail(ld->err, ld->err_len, BNN_E_FORMAT, "layer %zu (%s): bad pad classes", i, L->name);
    L->class_rows = ld->data + off, L->class_cols = ld->data + off + L->out.h;
    for (size_t k = 0; k < len; k++)
        if (L->class_rows[k] >= (k < L->out.h ? L->row_classes : L->col_classes))
            return fail(ld->err, ld->err_len, BNN_E_FORMAT, "layer %zu (%s): pad class out of range", i, L->name);
    return check_mvau_binary(ld, i, L, e, last);
}

static int check_mvau_integer(loader *ld, size_t i, bnn_layer *L, const unsigned char *e, int last) {
    int rc = check_mvau(ld, i, L, e, last, 0);
    return rc ? rc : check_integer_weights(ld, i, L, rd_u32(e + 48), rd_u32(e + 52));
}

/* Per layer kind, indexed by its code (docs/bnn-format.md): whether it is a matrix layer (an MVAU: entry
 * bytes 48..63 hold its weight and threshold blocks, and only it may be the last layer), where its reserved
 * (zero) bytes start, and its checks. A code without a row (0, or past the table) is not a kind. */
static const struct {
    int mvau;
    size_t reserved_from;
    check_fn check;
} KINDS[BNN_KIND_END] = {
    [BNN_WINDOW] = {0, 48, check_window},
    [BNN_MVAU_BINARY] = {1, 64, check_mvau_binary},
    [BNN_MVAU_INTEGER] = {1, 64, check_mvau_integer},
    [BNN_MAXPOOL] = {0, 48, check_maxpool},
    [BNN_FLATTEN] = {0, 48, check_flatten},
    [BNN_MVAU_BINARY_PADDED] = {1, 72, check_mvau_padded},
};
#define LEVELS_FIELD 72 /* bytes 72..75 of every MVAU entry: levels and lowest level (check_levels) */
#define LEVELS_END 76

static int known_kind(int kind) { return kind >= 0 && kind < BNN_KIND_END && KINDS[kind].check != NULL; }

static void read_entry(const unsigned char *e, bnn_layer *L) {
    L->kind = e[0];
    L->in = (bnn_shape){rd_u32(e + 4), rd_u32(e + 8), rd_u32(e + 12), e[1]};
    L->out = (bnn_shape){rd_u32(e + 16), rd_u32(e + 20), rd_u32(e + 24), e[2]};
    L->kh = rd_u16(e + 28), L->kw = rd_u16(e + 30), L->sh = rd_u16(e + 32), L->sw = rd_u16(e + 34);
    L->pad_t = rd_u16(e + 36), L->pad_l = rd_u16(e + 38), L->pad_b = rd_u16(e + 40), L->pad_r = rd_u16(e + 42);
    L->pad_value = (int32_t)rd_u32(e + 44);
    memcpy(L->name, e + 80, BNN_NAME_LEN);
}

static int check_layer(loader *ld, size_t i, bnn_layer *L, const unsigned char *e, const bnn_shape *cur, int last) {
    if (memchr(L->name, 0, BNN_NAME_LEN) == NULL)
        return fail(ld->err, ld->err_len, BNN_E_FORMAT, "layer %zu: name not NUL-terminated", i);
    if (e[1] > 1 || e[2] > 1 || e[3] != 0)
        return fail(ld->err, ld->err_len, BNN_E_FORMAT, "layer %zu (%s): bad type flags", i, L->name);
    const int known = known_kind(L->kind), mvau = known && KINDS[L->kind].mvau;
    for (size_t b = known ? KINDS[L->kind].reserved_from : 48; b < 80; b++) /* and payload-free layers' fields */
        if (e[b] && !(mvau && b >= LEVELS_FIELD && b < LEVELS_END)) return fail(ld->err, ld->err_len, BNN_E_FORMAT, "layer %zu (%s): reserved field not zero", i, L->name);
    if (!shape_ok(&L->out))
        return fail(ld->err, ld->err_len, BNN_E_SHAPE, "layer %zu (%s): output shape out of range", i, L->name);
    if (!same_shape(&L->in, cur))
        return fail(ld->err, ld->err_len, BNN_E_SHAPE, "layer %zu (%s): input shape does not match the previous output",
                    i, L->name);
    if (last && !mvau)
        return fail(ld->err, ld->err_len, BNN_E_FORMAT, "layer %zu (%s): the last layer must be a matrix layer", i,
                    L->name);
    if (!known) return fail(ld->err, ld->err_len, BNN_E_FORMAT, "layer %zu: unknown kind %d", i, L->kind);
    int rc = KINDS[L->kind].check(ld, i, L, e, last);
    if (!rc && L->levels) ld->in_min = L->out_offset, ld->in_max = L->out_offset + (int32_t)L->levels;
    return rc;
}

/* Header fields (already bounds-checked): input type, layer table position, classes. */
static int read_header(loader *ld, bnn_model *m, const unsigned char *d, size_t size, uint64_t *table) {
    uint32_t flags = rd_u16(d + 6), bitwidth = d[36], sign = d[37];
    uint64_t n = rd_u32(d + 12), toff = rd_u32(d + 16), esz = rd_u32(d + 20);
    uint64_t moff = rd_u32(d + 44), msize = rd_u32(d + 48);
    if (flags & ~BNN_FLAG_INPUT_BITS)
        return fail(ld->err, ld->err_len, BNN_E_FORMAT, "unknown header flags 0x%x", (unsigned)flags);
    if (n < 1 || n > BNN_MAX_LAYERS || esz != BNN_ENTRY_SIZE || toff < BNN_HEADER_SIZE || toff > size ||
        n * esz > size - toff)
        return fail(ld->err, ld->err_len, BNN_E_FORMAT, "layer table (%llu layers at %llu) out of bounds",
                    (unsigned long long)n, (unsigned long long)toff);
    if (moff > size - 4 || msize > size - 4 - moff)
        return fail(ld->err, ld->err_len, BNN_E_FORMAT, "metadata block out of bounds");
    m->input = (bnn_shape){rd_u32(d + 24), rd_u32(d + 28), rd_u32(d + 32), (int)(flags & BNN_FLAG_INPUT_BITS)};
    m->classes = rd_u32(d + 40);
    if (!shape_ok(&m->input) || m->classes < 1 || m->classes > BNN_MAX_DIM)
        return fail(ld->err, ld->err_len, BNN_E_SHAPE, "input shape or class count out of range");
    if (m->input.bits ? (bitwidth != 1 || sign) : (bitwidth < 1 || bitwidth > 16 || sign > 1 || (!sign && bitwidth > 15)))
        return fail(ld->err, ld->err_len, BNN_E_FORMAT, "input type (%u bits, signed %u) not supported", bitwidth, sign);
    m->in_min = sign ? -(1 << (bitwidth - 1)) : 0;
    m->in_max = sign ? (1 << (bitwidth - 1)) - 1 : (1 << bitwidth) - 1;
    m->n_layers = (size_t)n;
    *table = toff;
    ld->payload_start = toff + n * esz;
    ld->payload_end = size - 4;
    return BNN_OK;
}

static int load_layers(loader *ld, bnn_model *m, uint64_t table) {
    bnn_shape cur = m->input;
    size_t max_bytes = bnn_shape_bytes(&cur, 0);
    m->layers = calloc(m->n_layers, sizeof(bnn_layer));
    if (!m->layers) return fail(ld->err, ld->err_len, BNN_E_NOMEM, "out of memory");
    for (size_t i = 0; i < m->n_layers; i++) {
        const unsigned char *e = ld->data + table + i * BNN_ENTRY_SIZE;
        bnn_layer *L = &m->layers[i];
        int last = i + 1 == m->n_layers;
        read_entry(e, L);
        int rc = check_layer(ld, i, L, e, &cur, last);
        if (rc) return rc;
        bnn_prepare_layer(L);
        cur = L->out;
        size_t b = bnn_shape_bytes(&cur, last);
        if (b > max_bytes) max_bytes = b;
    }
    if (cur.h != 1 || cur.w != 1 || cur.c != m->classes)
        return fail(ld->err, ld->err_len, BNN_E_SHAPE, "last layer gives %zux%zux%zu values for %zu classes", cur.h,
                    cur.w, cur.c, m->classes);
    m->batch = bnn_batch_size(m);
    m->image_work = bnn_image_work(m);
    m->buf_bytes = (m->batch * max_bytes + BNN_ALIGN - 1) / BNN_ALIGN * BNN_ALIGN;
    bnn_optimize_layers(m); /* optional: a layer group that cannot be fused runs unfused */
    for (size_t i = 0; i < m->n_layers; i++) { /* after it: the bit-plane layers are known */
        const size_t sb = bnn_acc_rows_scratch_bytes(&m->layers[i]);
        if (sb > m->scratch_bytes) m->scratch_bytes = sb;
    }
    return BNN_OK;
}

static int parse(bnn_model *m, const unsigned char *d, size_t size, char *err, size_t err_len) {
    loader ld = {d, 0, 0, 0, 0, 0, err, err_len};
    if (size < BNN_HEADER_SIZE + 4) return fail(err, err_len, BNN_E_FORMAT, "file too short (%zu bytes)", size);
    ld.version = rd_u16(d + 4);
    if (memcmp(d, BNN_MAGIC, 4) != 0) return fail(err, err_len, BNN_E_FORMAT, "not a .bnn file (bad magic)");
    if (rd_u16(d + 4) < 1 || rd_u16(d + 4) > BNN_VERSION)
        return fail(err, err_len, BNN_E_VERSION, "format version %u, this runtime reads versions 1 to %u",
                    rd_u16(d + 4), BNN_VERSION);
    if (rd_u32(d + 8) != size)
        return fail(err, err_len, BNN_E_FORMAT, "file is %zu bytes but its header says %u (truncated?)", size,
                    rd_u32(d + 8));
    uint32_t want = rd_u32(d + size - 4), got = bnn_crc32(d, size - 4);
    if (want != got) return fail(err, err_len, BNN_E_CRC, "CRC mismatch (file %08x, computed %08x)", want, got);
    uint64_t table = 0;
    int rc = read_header(&ld, m, d, size, &table);
    if (rc) return rc;
    ld.in_min = m->in_min, ld.in_max = m->in_max;
    return load_layers(&ld, m, table);
}

int bnn_model_from_memory(const void *data, size_t size, bnn_model **out, char *err, size_t err_len) {
    if (err && err_len) err[0] = 0;
    if (!out || (!data && size)) return fail(err, err_len, BNN_E_ARG, "NULL argument");
    *out = NULL;
    if (size > UINT32_MAX) return fail(err, err_len, BNN_E_FORMAT, "file larger than 4 GiB");
    bnn_model *m = calloc(1, sizeof *m);
    size_t cap = (size + BNN_ALIGN - 1) / BNN_ALIGN * BNN_ALIGN;
    if (m) m->blob = aligned_alloc(BNN_ALIGN, cap ? cap : BNN_ALIGN);
    if (!m || !m->blob) {
        bnn_model_free(m);
        return fail(err, err_len, BNN_E_NOMEM, "out of memory");
    }
    if (size) memcpy(m->blob, data, size);
    int rc = parse(m, m->blob, size, err, err_len);
    if (rc) {
        bnn_model_free(m);
        return rc;
    }
    m->thread_grain = BNN_THREAD_GRAIN;
    *out = m;
    return BNN_OK;
}

int bnn_model_from_file(const char *path, bnn_model **out, char *err, size_t err_len) {
    if (!path || !out) return fail(err, err_len, BNN_E_ARG, "NULL argument");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, err_len, BNN_E_IO, "cannot open %s", path);
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0) len = ftell(f);
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0 || (unsigned long)len > UINT32_MAX) {
        fclose(f);
        return fail(err, err_len, BNN_E_IO, "cannot read %s", path);
    }
    unsigned char *buf = malloc(len ? (size_t)len : 1);
    if (!buf) {
        fclose(f);
        return fail(err, err_len, BNN_E_NOMEM, "out of memory reading %s", path);
    }
    size_t got = fread(buf, 1, (size_t)len, f);
    fclose(f);
    int rc = got == (size_t)len ? bnn_model_from_memory(buf, got, out, err, err_len)
                                : fail(err, err_len, BNN_E_IO, "short read on %s", path);
    free(buf);
    return rc;
}

void bnn_model_free(bnn_model *m) {
    if (!m) return;
    for (size_t t = 0; t < m->n_ctx; t++) {
        free(m->ctx[t].buf[0]);
        free(m->ctx[t].buf[1]);
        free(m->ctx[t].seconds);
        free(m->ctx[t].scratch);
    }
    free(m->ctx);
    if (m->layers) bnn_release_layers(m);
    free(m->layers);
    free(m->blob);
    free(m);
}

size_t bnn_input_elems(const bnn_model *m) { return m ? m->input.h * m->input.w * m->input.c : 0; }
size_t bnn_classes(const bnn_model *m) { return m ? m->classes : 0; }
size_t bnn_layer_count(const bnn_model *m) { return m ? m->n_layers : 0; }
const char *bnn_layer_name(const bnn_model *m, size_t i) { return m && i < m->n_layers ? m->layers[i].name : NULL; }
const char *bnn_last_error(const bnn_model *m) { return m ? m->last_error : ""; }
