"""The .bnn format: pack -> load round trip, and malformed files rejected with the right code, no crash."""

from __future__ import annotations

import struct
import subprocess
import zlib

import numpy as np
import pytest
from cpu_fixtures import random_plan

from bnn_flow.backends.cpu import pack
from bnn_flow.backends.cpu.binding import BnnLoadError, CpuModel, build_library, host_kernels
from bnn_flow.backends.cpu.sources import INCLUDE_DIR, RUNNER, runtime_sources
from bnn_flow.plan import BIT, IntType

E_FORMAT, E_VERSION, E_CRC, E_SHAPE = 2, 3, 4, 5
# layers: 0 window (int), 1 integer MVAU (70), 2 max-pool, 3 window (bits), 4 XNOR MVAU (K = 630),
# 5 flatten, 6 XNOR MVAU (5 classes, no thresholds)
ARCH = [("conv", 70, 3, 1, 1, 0), ("pool", 2, 2), ("conv", 9, 3, 2, 0, 0), ("flatten",), ("fc", 5)]


@pytest.fixture(scope="module")
def plan():
    return random_plan(np.random.default_rng(0), (9, 9, 3), IntType(8, True), ARCH)


@pytest.fixture(scope="module")
def data(plan):
    return pack.pack_plan(plan)


def _load(data: bytes) -> CpuModel:
    return CpuModel(data=data)


def _code(data: bytes) -> int:
    with pytest.raises(BnnLoadError) as e:
        _load(data)
    return e.value.code


def _recrc(data: bytes | bytearray) -> bytes:
    body = bytes(data[:-4])
    return body + struct.pack("<I", zlib.crc32(body))


def _patch(data: bytes, offset: int, fmt: str, value) -> bytes:
    buf = bytearray(data)
    struct.pack_into(fmt, buf, offset, value)
    return _recrc(buf)


def _entry(data: bytes, i: int) -> int:
    return pack.HEADER_SIZE + i * pack.ENTRY_SIZE


def test_round_trip_shapes(plan, data):
    h = pack.read_header(data)
    assert (h["magic"], h["version"], h["total_size"], h["layers"]) == (b"BNNF", 1, len(data), len(plan.layers))
    assert (h["input_h"], h["input_w"], h["input_c"], h["classes"]) == (9, 9, 3, 5)
    assert h["meta"]["input_spec"] == plan.spec.to_json()
    entries = pack.read_entries(data)
    assert [e["name"] for e in entries] == [lay.name for lay in plan.layers]
    mv = [(e, lay) for e, lay in zip(entries, plan.layers, strict=True) if lay.kind == "mvau"]
    for e, lay in mv:
        assert (e["in_c"], e["out_c"]) == (lay.mw, lay.mh)
        assert e["weight_offset"] % 64 == 0 and e["thr_count"] == (0 if lay.thresholds is None else lay.mh)
        t = np.frombuffer(data, "<i4", e["thr_count"], e["thr_offset"])
        assert lay.thresholds is None or np.array_equal(t, lay.thresholds)
    assert zlib.crc32(data[:-4]) == struct.unpack("<I", data[-4:])[0]
    m = _load(data)
    assert (m.input_elems, m.classes, m.layer_names) == (9 * 9 * 3, 5, [lay.name for lay in plan.layers])


def test_bit_input_header():
    p = random_plan(np.random.default_rng(1), (100,), BIT, [("fc", 30), ("fc", 4)])
    h = pack.read_header(pack.pack_plan(p))
    assert (h["flags"], h["input_bitwidth"], h["input_c"]) == (pack.FLAG_INPUT_BITS, 1, 100)


def test_truncated_everywhere_rejected(data):
    cuts = sorted(set(range(0, 200)) | set(range(0, len(data), 97)) | {len(data) - 1})
    for n in cuts:
        assert _code(data[:n]) in (E_FORMAT, E_CRC), n
    # a truncated file whose header total size and CRC were fixed up still fails the bounds checks
    short = bytearray(data[:len(data) // 2])
    struct.pack_into("<I", short, 8, len(short))
    assert _code(_recrc(short)) in (E_FORMAT, E_SHAPE)


def test_crc_and_magic_and_version(data):
    flipped = bytearray(data)
    flipped[-1] ^= 0x40
    assert _code(bytes(flipped)) == E_CRC
    payload = bytearray(data)
    payload[len(data) - 40] ^= 1
    assert _code(bytes(payload)) == E_CRC
    assert _code(b"XNNF" + data[4:]) == E_FORMAT
    assert _code(_patch(data, 4, "<H", 4)) == E_VERSION  # versions 1 to 3 are read
    assert _code(_patch(data, 4, "<H", 0)) == E_VERSION
    _load(_patch(data, 4, "<H", 2))  # a version 1 model is a valid version 2 and 3 model
    _load(_patch(data, 4, "<H", 3))


@pytest.mark.parametrize("where,fmt,value,code", [
    ("hdr:12", "<I", 10**9, E_FORMAT),  # absurd layer count
    ("hdr:12", "<I", 0, E_FORMAT),
    ("hdr:16", "<I", 2**31, E_FORMAT),  # table offset beyond the file
    ("hdr:20", "<I", 64, E_FORMAT),  # entry size
    ("hdr:24", "<I", 2**31, E_SHAPE),  # input height absurd
    ("hdr:40", "<I", 6, E_SHAPE),  # classes do not match the last layer
    ("hdr:36", "<B", 17, E_FORMAT),  # input bit width
    ("hdr:6", "<H", 0x80, E_FORMAT),  # unknown flag
    ("hdr:44", "<I", 2**31, E_FORMAT),  # metadata offset
    ("e0:0", "<B", 99, E_FORMAT),  # unknown kind
    ("e0:4", "<I", 10, E_SHAPE),  # input shape does not chain from the header
    ("e0:24", "<I", 28, E_SHAPE),  # window output channels wrong
    ("e0:28", "<H", 0, E_FORMAT),  # zero kernel
    ("e0:28", "<H", 60000, E_FORMAT),  # absurd kernel
    ("e0:44", "<i", 40000, E_FORMAT),  # integer pad value beyond int16
    ("e1:48", "<I", 2**31 - 64, E_FORMAT),  # weight offset beyond the file
    ("e1:48", "<I", 65, E_FORMAT),  # misaligned weight offset
    ("e1:52", "<I", 2**32 - 1, E_FORMAT),  # absurd weight size
    ("e1:60", "<I", 2**31, E_FORMAT),  # absurd threshold count
    ("e1:56", "<I", 2**32 - 64, E_FORMAT),  # threshold offset beyond the file
    ("e1:24", "<I", 71, E_FORMAT),  # MH changed: thresholds/weights no longer match
    ("e3:12", "<I", 71, E_SHAPE),  # window input channels: the chain is broken
    ("e2:2", "<B", 7, E_FORMAT),  # bad type flag
    ("e2:16", "<I", 5, E_SHAPE),  # max-pool output shape
    ("e5:12", "<I", 8, E_SHAPE),  # flatten input does not match
])
def test_absurd_fields_rejected(data, where, fmt, value, code):
    part, off = where.split(":")
    base = 0 if part == "hdr" else _entry(data, int(part[1:]))
    assert _code(_patch(data, base + int(off), fmt, value)) == code


def test_name_without_nul_and_weight_padding_bits(plan, data):
    buf = bytearray(data)
    buf[_entry(data, 0) + 80:_entry(data, 0) + 128] = b"x" * 48
    assert _code(_recrc(buf)) == E_FORMAT
    # layer 3 (conv 70 -> 9 after the pool) has K = 9 * 70 = 630 bits: the last word has padding bits
    e = pack.read_entries(data)[4]
    assert e["in_c"] % 64
    buf = bytearray(data)
    last_word = e["weight_offset"] + (e["in_c"] // 64) * 8
    buf[last_word + 7] |= 0x80
    assert _code(_recrc(buf)) == E_FORMAT


def test_integer_overflow_rejected():
    p = random_plan(np.random.default_rng(2), (4000,), IntType(16, True), [("fc", 3), ("fc", 2)])
    p.layers[0].weights[:] = 127
    with pytest.raises(BnnLoadError, match="overflow"):
        _load(pack.pack_plan(p))


def test_random_mutations_never_crash(data):
    """Random byte edits with a valid CRC: the loader either rejects them or loads a model that runs."""
    rng = np.random.default_rng(7)
    x = np.zeros((1, 9 * 9 * 3), np.int64)
    for _ in range(300):
        buf = bytearray(data)
        for pos in rng.integers(0, len(data) - 4, size=rng.integers(1, 4)):
            buf[pos] = int(rng.integers(0, 256))
        try:
            m = _load(_recrc(buf))
        except BnnLoadError as e:
            assert e.code in (E_FORMAT, E_VERSION, E_SHAPE)
            continue
        assert m.run_integer(x).shape == (1, m.classes)


@pytest.mark.slow
def test_malformed_files_under_sanitizers(tmp_path, data):
    """The runner built with ASan/UBSan rejects every malformed file with exit 2 and no sanitizer report."""
    exe = tmp_path / "bnn_run_asan"
    cmd = ["gcc", "-std=c11", "-O1", "-g", "-march=native", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
           "-pthread", "-I", str(INCLUDE_DIR), *map(str, runtime_sources(host_kernels())), str(RUNNER), "-o", str(exe)]
    subprocess.run(cmd, check=True)
    x = tmp_path / "in.bin"
    np.zeros(9 * 9 * 3, "<i2").tofile(x)
    cases = [data[:n] for n in (0, 10, 63, 64, 100, 300, len(data) - 5)]
    cases += [_patch(data, off, "<I", 2**31) for off in (12, 16, 24, 44)]
    cases += [_patch(data, _entry(data, i) + off, "<I", 2**32 - 64) for i in range(3) for off in (4, 16, 48, 56, 60)]
    for i, bad in enumerate(cases):
        f = tmp_path / f"bad{i}.bnn"
        f.write_bytes(bad)
        r = subprocess.run([str(exe), str(f), str(x), str(tmp_path / "out.bin")], capture_output=True, text=True)
        assert r.returncode == 2 and "Sanitizer" not in r.stderr and r.stderr.count("\n") == 1, (i, r.stderr)
    good = tmp_path / "good.bnn"
    good.write_bytes(data)
    r = subprocess.run([str(exe), str(good), str(x), str(tmp_path / "out.bin")], capture_output=True, text=True)
    assert r.returncode == 0 and "Sanitizer" not in r.stderr, r.stderr


def test_library_builds_with_generic_kernels(tmp_path, data):
    """The generic (reference-forwarding) family links and loads the same file."""
    lib = build_library(tmp_path / "libbnn_generic.so", "generic")
    m = CpuModel(data=data, library=lib)
    assert m.kernels == "generic" and m.classes == 5
