"""The released-model file (models/zoo/<recipe>.bnnz): bytes <-> a JSON header and named numpy arrays.

A zoo file may come from anyone (a download, a GPU machine's output), so it is read as untrusted input: no
pickle, no code, nothing executed; every length, offset, shape and number is checked before use, and any
fault is one BadInputError line naming the file. Layout (all integers little-endian):

    8 bytes   magic b"BNNZOO\\x00\\x01" (format version 1)
    4 bytes   header length H (<= 1 MiB)
    H bytes   header: UTF-8 JSON object (no NaN/Infinity constants)
    rest      payload: the tensors, back to back in the header's order

Header keys: "format" ("bnn-flow-zoo-v1"), "recipe" (the recipe dict), "model" (arch, num_classes,
input_shape, dataset), "accuracy" (what was measured, how), "source" (where the weights came from),
"payload_sha256", and "tensors": a list of {"name", "kind", "shape", "nbytes"} plus "scale" for "int8"
tensors. Kinds: "sign" (a binary weight: bit (w > 0) per element, numpy packbits little bit order, the last
byte padded with zeros), "int8" (an n-bit weight's integer codes, value = code * scale), "float32", "int64".
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bnn_flow.errors import BadInputError

MAGIC = b"BNNZOO\x00\x01"
FORMAT = "bnn-flow-zoo-v1"
MAX_HEADER = 1 << 20
MAX_FILE = 64 << 20  # a few MB in practice (B-VGG16: ~2 MB); a bigger file is not one of ours
MAX_ELEMENTS = 1 << 28
MAX_DIMS = 6
KINDS = ("sign", "int8", "float32", "int64")
HEADER_KEYS = {"format", "recipe", "model", "accuracy", "source", "payload_sha256", "tensors"}


@dataclass
class ZooFile:
    header: dict[str, Any]  # without "tensors" and "payload_sha256" (derived on writing)
    tensors: dict[str, np.ndarray]  # name -> array: bool (sign), int8 (with scales), float32, int64
    scales: dict[str, float]  # int8 tensors' scale


def nbytes(kind: str, count: int) -> int:
    return (count + 7) // 8 if kind == "sign" else count * {"int8": 1, "float32": 4, "int64": 8}[kind]


def _kind_of(a: np.ndarray) -> str:
    return {np.dtype(bool): "sign", np.dtype(np.int8): "int8", np.dtype(np.float32): "float32",
            np.dtype(np.int64): "int64"}[a.dtype]


def encode(z: ZooFile) -> bytes:
    """The file's bytes: header (with the tensor table and the payload's hash) + payload."""
    table, parts = [], []
    for name, a in z.tensors.items():
        kind = _kind_of(a)
        data = np.packbits(a.reshape(-1), bitorder="little").tobytes() if kind == "sign" else \
            np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
        entry = {"name": name, "kind": kind, "shape": list(a.shape), "nbytes": len(data)}
        if kind == "int8":
            entry["scale"] = float(z.scales[name])
        table.append(entry)
        parts.append(data)
    payload = b"".join(parts)
    header = {**z.header, "format": FORMAT, "payload_sha256": hashlib.sha256(payload).hexdigest(), "tensors": table}
    text = json.dumps(header, sort_keys=False, allow_nan=False).encode()
    return MAGIC + struct.pack("<I", len(text)) + text + payload


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _header(path: Path, data: bytes) -> tuple[dict[str, Any], bytes]:
    if len(data) < len(MAGIC) + 4 or data[:len(MAGIC)] != MAGIC:
        raise BadInputError(f"{path} is not a bnn-flow zoo file (no {MAGIC[:6].decode()} v1 magic): give a "
                            "file written by bnn-flow zoo-pack")
    (size,) = struct.unpack_from("<I", data, len(MAGIC))
    start = len(MAGIC) + 4
    if size > MAX_HEADER or start + size > len(data):
        raise BadInputError(f"{path}: header length {size} runs past the file ({len(data)} bytes): the file is "
                            "truncated or damaged; fetch it again")
    try:
        header = json.loads(data[start:start + size].decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise BadInputError(f"{path}: the header is not valid JSON ({str(e)[:80]}); fetch the file again") from None
    if not isinstance(header, dict) or set(header) != HEADER_KEYS or header.get("format") != FORMAT:
        raise BadInputError(f"{path}: the header is not a {FORMAT} header (keys {sorted(HEADER_KEYS)}); "
                            "write it with bnn-flow zoo-pack")
    return header, data[start + size:]


def _shape(path: Path, name: str, shape: Any) -> tuple[int, ...]:
    if not (isinstance(shape, list) and len(shape) <= MAX_DIMS
            and all(type(d) is int and 0 <= d <= MAX_ELEMENTS for d in shape)
            and math.prod(shape) <= MAX_ELEMENTS):
        raise BadInputError(f"{path}: tensor {name!r} has an invalid shape {str(shape)[:60]}")
    return tuple(shape)


def _decode_tensor(path: Path, entry: Any, blob: bytes) -> tuple[str, np.ndarray, float | None]:
    if not (isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry.get("kind") in KINDS
            and set(entry) <= {"name", "kind", "shape", "nbytes", "scale"} and 0 < len(entry["name"]) <= 200):
        raise BadInputError(f"{path}: a tensor entry is malformed ({str(entry)[:80]}); fetch the file again")
    name, kind = entry["name"], entry["kind"]
    shape = _shape(path, name, entry.get("shape"))
    count = math.prod(shape)
    if entry.get("nbytes") != nbytes(kind, count) or len(blob) != nbytes(kind, count):
        raise BadInputError(f"{path}: tensor {name!r} should take {nbytes(kind, count)} bytes, the file gives "
                            f"{entry.get('nbytes')!r}: the file is damaged")
    scale = None
    if kind == "sign":
        a = np.unpackbits(np.frombuffer(blob, np.uint8), count=count, bitorder="little").astype(bool)
    else:
        a = np.frombuffer(blob, np.dtype(kind).newbyteorder("<")).astype(kind)
    if kind == "int8":
        scale = entry.get("scale")
        if not (isinstance(scale, float) and math.isfinite(scale) and scale > 0):
            raise BadInputError(f"{path}: tensor {name!r} needs a finite positive scale, got {scale!r}")
    elif "scale" in entry:
        raise BadInputError(f"{path}: tensor {name!r} of kind {kind} cannot have a scale")
    if kind == "float32" and not np.isfinite(a).all():
        raise BadInputError(f"{path}: tensor {name!r} holds NaN or infinite values: the model cannot be rebuilt")
    return name, a.reshape(shape), scale


def decode(path: Path, data: bytes) -> ZooFile:
    """Parse and check a zoo file's bytes (the recipe and the tensors' fit to the network are checked by
    bnn_flow.zoo.model when the network is rebuilt)."""
    header, payload = _header(path, data)
    if not (isinstance(header["payload_sha256"], str) and len(header["payload_sha256"]) == 64):
        raise BadInputError(f"{path}: payload_sha256 must be 64 hex digits")
    table = header["tensors"]
    if not isinstance(table, list) or not 0 < len(table) <= 10_000:
        raise BadInputError(f"{path}: 'tensors' must be a non-empty list (at most 10000 entries)")
    if hashlib.sha256(payload).hexdigest() != header["payload_sha256"]:
        raise BadInputError(f"{path}: the payload does not match its sha256 (truncated or changed); fetch the "
                            "file again")
    tensors, scales, offset = {}, {}, 0
    for entry in table:
        size = entry.get("nbytes") if isinstance(entry, dict) else None
        if type(size) is not int or not 0 <= size <= len(payload) - offset:
            raise BadInputError(f"{path}: a tensor's nbytes ({size!r}) runs past the payload: the file is damaged")
        name, a, scale = _decode_tensor(path, entry, payload[offset:offset + size])
        if name in tensors:
            raise BadInputError(f"{path}: tensor {name!r} appears twice")
        tensors[name] = a
        if scale is not None:
            scales[name] = scale
        offset += size
    if offset != len(payload):
        raise BadInputError(f"{path}: {len(payload) - offset} bytes after the last tensor: the file is damaged")
    rest = {k: v for k, v in header.items() if k not in ("tensors", "payload_sha256", "format")}
    return ZooFile(rest, tensors, scales)


def read(path: Path) -> ZooFile:
    if not path.is_file():
        raise BadInputError(f"zoo file {path} not found (released models are models/zoo/*.bnnz)")
    if path.stat().st_size > MAX_FILE:
        raise BadInputError(f"{path} is {path.stat().st_size} bytes, more than a zoo file may be "
                            f"({MAX_FILE >> 20} MiB): not a bnn-flow zoo file")
    return decode(path, path.read_bytes())
