"""The packer: a build's layer plan -> one .bnn model file for the C runtime (docs/bnn-format.md, version 1; 2
when a zero-padded convolution needs kind 6; 3 when n-bit activations need levels and integer max-pools).

Little-endian throughout: a 64-byte header, a table of 128-byte layer entries, a JSON metadata block
(input spec, head, source hash: for the host only), 64-byte aligned payloads (packed binary weights,
int8 integer weights, int32 thresholds) and a CRC-32 (zlib.crc32) of everything before it.
`pack_build(build)` writes BUILD/cpu/model.bnn atomically and regenerates it only when the build changed.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bnn_flow.build import Build, as_build
from bnn_flow.conventions import pack_bits
from bnn_flow.errors import BadInputError
from bnn_flow.fileio import write_bytes_atomic
from bnn_flow.level_streams import levels_streamed
from bnn_flow.plan import BIT, Flatten, Layer, MaxPool, MultiThresholdMvau, Mvau, Plan, Window, ZeroPadMvau, handler

MAGIC = b"BNNF"
FORMAT_VERSION = 1
PADDED_FORMAT_VERSION = 2  # the first version with kind 6 (mvau_binary_padded)
NBIT_FORMAT_VERSION = 3  # the first version with n-bit activations (entry bytes 72..75) and integer max-pools
HEADER_SIZE = 64
ENTRY_SIZE = 128
ALIGN = 64
NAME_LEN = 48
FLAG_INPUT_BITS = 1
KIND = {"window": 1, "mvau_binary": 2, "mvau_integer": 3, "maxpool": 4, "flatten": 5,  # docs/bnn-format.md
        "mvau_binary_padded": 6}
MODEL_FILE = "model.bnn"  # in cpu_dir(build)

# Header: magic, version, flags, total size, layers, table offset, entry size, input h/w/c,
# input bit width, input signed, reserved, classes, metadata offset, metadata size, 12 reserved bytes.
_HEADER = struct.Struct("<4sHHIIIIIIIBBHIII12x")
# Entry: kind, in bits?, out bits?, reserved, in h/w/c, out h/w/c, kernel h/w, stride h/w,
# pad t/l/b/r, pad value, weight offset/size, threshold offset/count, pad class map offset, row classes,
# column classes (kind 6, else 0), levels and lowest level (n-bit activations, else 0), 4 reserved bytes, name.
_ENTRY = struct.Struct(f"<BBBxIIIIIIHHHHHHHHiIIIIIHHHh4x{NAME_LEN}s")
assert _HEADER.size == HEADER_SIZE and _ENTRY.size == ENTRY_SIZE


@dataclass
class _Shape:
    h: int
    w: int
    c: int
    bits: bool


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _shape3(shape: tuple[int, ...], bits: bool) -> _Shape:
    return _Shape(*shape, bits) if len(shape) == 3 else _Shape(1, 1, int(np.prod(shape)), bits)


def _payload(mvau: Mvau) -> tuple[bytes, bytes]:
    """(weights, thresholds) bytes of a matrix layer, checking they fit the runtime's types."""
    w = mvau.weights
    if mvau.binary:
        wb = pack_bits(w.astype(np.uint8)).astype("<u8").tobytes()
    else:
        if w.min(initial=0) < -128 or w.max(initial=0) > 127:
            raise BadInputError(f"layer {mvau.name}: integer weights beyond int8 are not supported by the CPU runtime")
        if not mvau.in_dtype.signed and mvau.in_dtype.bits > 15 or mvau.in_dtype.bits > 16:
            raise BadInputError(f"layer {mvau.name}: {mvau.in_dtype} inputs do not fit the CPU runtime's int16")
        wb = w.astype("<i1").tobytes()
    if mvau.acc_dtype.bits > 32:
        raise BadInputError(f"layer {mvau.name}: accumulators need {mvau.acc_dtype.bits} bits (the runtime has 32)")
    t = mvau.class_thresholds if isinstance(mvau, ZeroPadMvau) else mvau.thresholds
    tb = b"" if t is None else t.reshape(-1).astype("<i4").tobytes()
    return wb, tb


def _window_entry(layer: Window, cur: _Shape) -> tuple[dict, _Shape]:
    return (dict(kind=KIND["window"], kernel=layer.kernel, stride=layer.stride, pad=layer.pad,
                 pad_value=layer.pad_value), _Shape(*layer.out_shape, cur.bits))


def _maxpool_entry(layer: MaxPool, cur: _Shape) -> tuple[dict, _Shape]:
    version = FORMAT_VERSION if cur.bits else NBIT_FORMAT_VERSION  # integers: n-bit activations
    return (dict(kind=KIND["maxpool"], kernel=layer.kernel, stride=layer.stride, version=version),
            _Shape(*layer.out_shape, cur.bits))


def _flatten_entry(layer: Flatten, cur: _Shape) -> tuple[dict, _Shape]:
    return dict(kind=KIND["flatten"]), _Shape(1, 1, cur.h * cur.w * cur.c, cur.bits)


def _mvau_entry(layer: Mvau, cur: _Shape) -> tuple[dict, _Shape]:
    if layer.mw != cur.c or layer.binary != cur.bits:
        raise BadInputError(f"layer {layer.name}: input of {cur.c} {'bits' if cur.bits else 'integers'} does "
                            f"not match MW={layer.mw} ({'binary' if layer.binary else 'integer'})")
    kind = KIND["mvau_binary" if layer.binary else "mvau_integer"]
    return dict(kind=kind), _Shape(cur.h, cur.w, layer.mh, layer.out_bits)


def _zero_pad_mvau_entry(layer: ZeroPadMvau, cur: _Shape) -> tuple[dict, _Shape]:
    fields, out = _mvau_entry(layer, cur)
    rows, cols = layer.class_thresholds.shape[:2]
    if max(rows, cols) > 255:
        raise BadInputError(f"layer {layer.name}: more than 255 pad classes per axis")
    return ({**fields, "kind": KIND["mvau_binary_padded"], "classes": (rows, cols), "version": PADDED_FORMAT_VERSION},
            out)


def _multi_threshold_mvau_entry(layer: MultiThresholdMvau, cur: _Shape) -> tuple[dict, _Shape]:
    fields, out = _mvau_entry(layer, cur)
    if layer.act_dtype.bits > 15 or not -(1 << 15) <= layer.out_offset <= (1 << 15) - 1 - layer.levels:
        raise BadInputError(f"layer {layer.name}: {layer.act_dtype} activations do not fit the CPU runtime's int16")
    return {**fields, "levels": (layer.levels, layer.out_offset), "version": NBIT_FORMAT_VERSION}, out


def _class_map(layer: ZeroPadMvau) -> bytes:
    """Kind 6's pad class map: one byte per output row, then one per output column."""
    return bytes(layer.threshold_rows) + bytes(layer.threshold_cols)


# The CPU back-end's table {plan layer class: its .bnn entry (fields besides payloads, and the output shape)};
# the C runtime keeps the matching kind tables (runtime/src/model.c checks, runtime/src/net.c runs).
CPU_LAYERS: dict[type, Callable[[Layer, _Shape], tuple[dict, _Shape]]] = {
    Window: _window_entry, MaxPool: _maxpool_entry, Flatten: _flatten_entry, Mvau: _mvau_entry,
    ZeroPadMvau: _zero_pad_mvau_entry, MultiThresholdMvau: _multi_threshold_mvau_entry,
}


def _entry_fields(layer: Layer, cur: _Shape) -> tuple[dict, _Shape]:
    """The entry's fields (besides payloads) and the layer's output shape, from its input `cur`."""
    f = {"kind": 0, "kernel": (0, 0), "stride": (0, 0), "pad": (0, 0, 0, 0), "pad_value": 0, "classes": (0, 0),
         "levels": (0, 0), "version": FORMAT_VERSION}
    fields, out = handler(CPU_LAYERS, layer, "CPU runtime")(layer, cur)
    return {**f, **fields}, out


def _name_bytes(name: str) -> bytes:
    raw = name.encode("utf-8")[: NAME_LEN - 1]
    return raw.decode("utf-8", "ignore").encode("utf-8")


def pack_plan(plan: Plan, meta: dict | None = None) -> bytes:
    """The .bnn bytes of `plan`. Pre: plan.validate() holds. `meta` joins the JSON block (e.g. a source hash).
    Nonuniform activations stream their levels here (level_streams.py: the format has no decode table)."""
    plan = levels_streamed(plan)
    bits = plan.input_dtype == BIT
    cur = _shape3(plan.input_shape, bits)
    entries, payloads = [], []  # payloads: (bytes, layer index, "w" | "t")
    for i, layer in enumerate(plan.layers):
        f, out = _entry_fields(layer, cur)
        if isinstance(layer, Mvau):
            wb, tb = _payload(layer)
            payloads.append((wb, i, "w"))
            if tb:
                payloads.append((tb, i, "t"))
        if isinstance(layer, ZeroPadMvau):
            payloads.append((_class_map(layer), i, "c"))
        entries.append((f, cur, out, layer.name))
        cur = out
    version = max(f["version"] for f, *_ in entries)  # the lowest version that has every layer's fields
    meta_blob = json.dumps({"format": version, "input_spec": plan.spec.to_json(), "head": plan.head,
                            **(meta or {})}, sort_keys=True).encode()
    table_off = HEADER_SIZE
    meta_off = table_off + ENTRY_SIZE * len(entries)
    pos = _align(meta_off + len(meta_blob))
    offsets = {}
    for data, i, what in payloads:
        offsets[(i, what)] = (pos, len(data))
        pos = _align(pos + len(data))
    body = bytearray(pos)
    total = pos + 4
    in_bits, in_signed = (1, 0) if bits else (plan.input_dtype.bits, int(plan.input_dtype.signed))
    flags = FLAG_INPUT_BITS if bits else 0
    s0 = _shape3(plan.input_shape, bits)
    _HEADER.pack_into(body, 0, MAGIC, version, flags, total, len(entries), table_off, ENTRY_SIZE,
                      s0.h, s0.w, s0.c, in_bits, in_signed, 0, plan.classes, meta_off, len(meta_blob))
    for i, (f, sin, sout, name) in enumerate(entries):
        woff, wlen = offsets.get((i, "w"), (0, 0))
        toff, tlen = offsets.get((i, "t"), (0, 0))
        coff, _ = offsets.get((i, "c"), (0, 0))
        _ENTRY.pack_into(body, table_off + i * ENTRY_SIZE, f["kind"], int(sin.bits), int(sout.bits),
                         sin.h, sin.w, sin.c, sout.h, sout.w, sout.c, *f["kernel"], *f["stride"], *f["pad"],
                         int(f["pad_value"]), woff, wlen, toff, tlen // 4, coff, *f["classes"], *f["levels"],
                         _name_bytes(name))
    body[meta_off:meta_off + len(meta_blob)] = meta_blob
    for data, i, what in payloads:
        off, n = offsets[(i, what)]
        body[off:off + n] = data
    return bytes(body) + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def read_header(data: bytes) -> dict:
    """The header fields and metadata of .bnn bytes (host side; the C loader does the full validation)."""
    if len(data) < HEADER_SIZE + 4 or data[:4] != MAGIC:
        raise BadInputError("not a .bnn file (bad magic or too short)")
    keys = ("magic", "version", "flags", "total_size", "layers", "table_offset", "entry_size", "input_h",
            "input_w", "input_c", "input_bitwidth", "input_signed", "reserved", "classes", "meta_offset",
            "meta_size")
    h = dict(zip(keys, _HEADER.unpack_from(data, 0), strict=True))
    try:
        h["meta"] = json.loads(data[h["meta_offset"]:h["meta_offset"] + h["meta_size"]])
    except ValueError as e:
        raise BadInputError(f"the .bnn metadata block is not JSON ({e})") from None
    return h


def read_entries(data: bytes) -> list[dict]:
    """The layer table of .bnn bytes as dicts (for tests and tools)."""
    h = read_header(data)
    keys = ("kind", "in_bits", "out_bits", "in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "kh", "kw", "sh",
            "sw", "pad_t", "pad_l", "pad_b", "pad_r", "pad_value", "weight_offset", "weight_size",
            "thr_offset", "thr_count", "class_offset", "row_classes", "col_classes", "levels", "out_offset", "name")
    out = []
    for i in range(h["layers"]):
        e = dict(zip(keys, _ENTRY.unpack_from(data, h["table_offset"] + i * ENTRY_SIZE), strict=True))
        e["name"] = e["name"].rstrip(b"\0").decode("utf-8")
        out.append(e)
    return out


def cpu_dir(build: Build) -> Path:
    """BUILD/cpu/: the CPU back-end's folder (model.bnn, pi-bench results)."""
    return build.backend_dir("cpu")


def source_hash(build: Build | Path) -> str:
    """Hash of what the .bnn is made of: the dataflow graph, folding, input spec, head, format version."""
    build = as_build(build)
    h = hashlib.sha256(f"bnn-format-{FORMAT_VERSION}".encode())
    for name, data in build.plan_inputs():
        h.update(name.encode() + b"\0" + (data if data is not None else b"<none>"))
    return h.hexdigest()


def pack_build(build: Build | str | Path) -> Path:
    """BUILD/cpu/model.bnn, (re)written atomically unless it is up to date with the build. Post: it exists."""
    build = as_build(build)
    path = cpu_dir(build) / MODEL_FILE
    digest = source_hash(build)
    if path.is_file():
        try:
            if read_header(path.read_bytes())["meta"].get("source_sha256") == digest:
                return path
        except (BadInputError, KeyError, struct.error):
            pass  # unreadable or stale: regenerate below
    write_bytes_atomic(path, pack_plan(build.plan(), {"source_sha256": digest}))
    return path
