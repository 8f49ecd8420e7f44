"""C-simulation of every HLS template (hls_templates/) against the numpy golden ops, over shapes and foldings.

One driver (tests/hls/template_driver.cpp) is compiled per grid with all its configurations (generated
configuration structs, the same emitter as the project generator), then each configuration streams random
data through its template, twice: with the C-simulation fast paths (the MVAU's whole-vector kernel, shift
and popcount helpers) and as exactly the synthesizable code (-DBNN_NO_FAST_CSIM). A fast grid runs by
default, the full grid with -m slow.
"""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from bnn_flow.backends.hls import csim
from bnn_flow.backends.hls.ap_types import ensure_ap_types
from bnn_flow.backends.hls.codegen import TEMPLATES, config_struct
from bnn_flow.backends.hls.layers import MvauStage
from bnn_flow.backends.hls.layout import fold_thresholds, pack_mvau_weights
from bnn_flow.conventions import pack_bits, unpack_bits
from bnn_flow.ops import reference as ref
from bnn_flow.plan import BIT, IntType, Mvau

DRIVER = Path(__file__).parent / "hls" / "template_driver.cpp"
U8, S8, S4, S2, S3 = IntType(8, False), IntType(8, True), IntType(4, True), IntType(2, True), IntType(3, True)


# --- configurations --------------------------------------------------------------------------------------

def swg(h, w, c, k, s, pad, simd, dtype=BIT, pad_value=1):
    """pad = (top, left, bottom, right)."""
    oh, ow = (h + pad[0] + pad[2] - k) // s + 1, (w + pad[1] + pad[3] - k) // s + 1
    p = dict(H=h, W=w, CH=c, KH=k, KW=k, SH=s, SW=s, PT=pad[0], PL=pad[1], OH=oh, OW=ow, SIMD=simd,
             EB=dtype.bits, SIGNED=dtype.signed, PAD=pad_value)
    return ("swg", p, dict(dtype=dtype, pad=pad))


def mvau(mw, mh, simd, pe, pixels, binary=True, thresh=True, in_dtype=BIT, w_dtype=BIT):
    return ("mvau", dict(MW=mw, MH=mh, SIMD=simd, PE=pe, PIXELS=pixels),
            dict(binary=binary, thresh=thresh, in_dtype=in_dtype, w_dtype=w_dtype))


def pool(h, w, c, k, s, pe, dtype=BIT):
    p = dict(H=h, W=w, CH=c, KH=k, KW=k, SH=s, SW=s, OH=(h - k) // s + 1, OW=(w - k) // s + 1, PE=pe,
             EB=dtype.bits, SIGNED=dtype.signed)
    return ("maxpool", p, dict(dtype=dtype))


def dwc(in_e, out_e, n, dtype=BIT):
    params = dict(IN_PER_BEAT=in_e, OUT_PER_BEAT=out_e, EB=dtype.bits, N=n, SIGNED=dtype.signed)
    return ("dwc", params, dict(dtype=dtype))


def label(classes, pe, dtype):
    return ("label", dict(CLASSES=classes, PE=pe, EB=dtype.bits, SIGNED=dtype.signed, LB=8), dict(dtype=dtype))


def fifo(n, dtype):
    return ("fifo", dict(N=n, EB=dtype.bits, SIGNED=dtype.signed), dict(dtype=dtype))


FAST = [
    swg(5, 5, 4, 3, 1, (1, 1, 1, 1), 2),
    swg(6, 5, 3, 3, 2, (0, 0, 0, 0), 3),  # stride 2, odd sizes, the last row/column dropped
    swg(5, 5, 3, 3, 1, (1, 1, 1, 1), 1, S8, -3),
    swg(7, 6, 1, 4, 3, (1, 1, 1, 1), 1, U8, 0),  # stride 3 kernel 4 (a BCNN stem)
    swg(4, 4, 70, 2, 2, (0, 1, 1, 0), 70),  # asymmetric padding, beats wider than 64 bits
    mvau(12, 8, 4, 2, 3),
    mvau(130, 6, 65, 3, 1),  # SIMD > 64: tiles over two words
    mvau(9, 5, 1, 5, 2, thresh=False),  # last layer: the popcounts themselves
    mvau(27, 8, 3, 4, 2, binary=False, in_dtype=S8, w_dtype=S2),
    mvau(9, 4, 9, 1, 3, binary=False, thresh=False, in_dtype=U8, w_dtype=S3),
    mvau(40, 4, 20, 2, 1, binary=False, thresh=False, in_dtype=S8, w_dtype=S4),  # 80-bit weight tiles
    pool(4, 4, 6, 2, 2, 3),
    pool(5, 7, 2, 2, 2, 1),
    pool(5, 5, 3, 3, 1, 3, S4),
    pool(2, 2, 128, 2, 2, 128),
    dwc(1, 4, 16), dwc(4, 1, 16), dwc(3, 2, 12, S8), dwc(6, 4, 24), dwc(64, 96, 192), dwc(5, 5, 10, U8),
    label(10, 1, IntType(7, False)), label(10, 5, IntType(12, True)),
    fifo(10, S8),
]


def _slow_grid() -> list:
    rng = np.random.default_rng(7)
    grid = []
    for h, w, c, k, s, padded in [(8, 8, 6, 3, 1, True), (9, 7, 5, 3, 2, True), (6, 6, 16, 2, 2, False),
                                  (10, 10, 3, 5, 1, True), (5, 9, 128, 3, 1, True), (12, 12, 2, 4, 3, False)]:
        for simd in {1, c, *[d for d in range(2, c) if c % d == 0][:1]}:
            pad = tuple(int(v) for v in rng.integers(0, 2, 4)) if padded else (0, 0, 0, 0)
            grid.append(swg(h, w, c, k, s, pad, simd, pad_value=int(rng.integers(0, 2))))
        grid.append(swg(h, w, c, k, s, (1, 1, 1, 1), 1 if c % 2 else 2, S8, int(rng.integers(-128, 128))))
    for mw, mh in [(64, 64), (576, 32), (100, 12), (256, 10)]:
        for simd, pe in [(1, 1), (mw // 4 if mw % 4 == 0 else 1, 2), (mw, mh)]:
            grid.append(mvau(mw, mh, simd, pe, 2))
            grid.append(mvau(mw, mh, simd, pe, 1, thresh=False))
    for mw, mh, dt in [(27, 16, S8), (9, 64, U8), (784, 16, S8), (50, 10, IntType(2, False))]:
        for simd, pe in [(1, 1), (mw, mh), (next(d for d in range(2, mw + 1) if mw % d == 0), 2)]:
            grid.append(mvau(mw, mh, simd, pe, 2, binary=False, in_dtype=dt, w_dtype=S2))
            grid.append(mvau(mw, mh, simd, pe, 1, binary=False, thresh=False, in_dtype=dt, w_dtype=S4))
    for h, w, c, k, s, pe in [(28, 28, 64, 2, 2, 8), (7, 7, 256, 2, 2, 32), (9, 9, 5, 3, 3, 5), (6, 6, 4, 3, 1, 2)]:
        grid += [pool(h, w, c, k, s, pe), pool(h, w, c, k, s, 1, S8)]
    for i, o in [(1, 64), (64, 1), (32, 48), (48, 32), (7, 3), (128, 64)]:
        grid += [dwc(i, o, 2 * i * o), dwc(i, o, i * o, S8)]
    grid += [label(100, 10, IntType(16, True)), label(3, 1, IntType(1, False))]
    return grid


# --- driver build and references -------------------------------------------------------------------------

def _configs_inc(grid: list) -> str:
    runner = {"swg": "run_swg", "mvau": "run_mvau", "maxpool": "run_maxpool", "dwc": "run_dwc",
              "label": "run_label", "fifo": "run_fifo"}
    structs, calls = [], []
    for i, (kind, params, _) in enumerate(grid):
        structs.append(config_struct(f"cfg{i}", params))
        calls.append(f"  if (!std::strcmp(kind, \"{kind}\") && idx == {i}) "
                     f"return {runner[kind]}<cfg{i}>(reps, in, out);")
    return ("\n".join(structs) + "\nint dispatch(const char* kind, int idx, unsigned reps, const vec& in, vec& out) {\n"
            + "\n".join(calls) + "\n  return 4;\n}\n")


def _mvau_layer(grid_entry, rng) -> Mvau:
    _, p, o = grid_entry
    mw, mh = p["MW"], p["MH"]
    if o["binary"]:
        w = rng.integers(0, 2, (mh, mw))
        acc_lo, acc_hi = np.zeros(mh, np.int64), np.full(mh, mw, np.int64)
    else:
        w = rng.integers(o["w_dtype"].min, o["w_dtype"].max + 1, (mh, mw))
        pos, neg = np.clip(w, 0, None), np.clip(w, None, 0)
        t_ = o["in_dtype"]
        acc_hi, acc_lo = pos.sum(1) * t_.max + neg.sum(1) * t_.min, pos.sum(1) * t_.min + neg.sum(1) * t_.max
    t = rng.integers(acc_lo, acc_hi + 2) if o["thresh"] else None
    acc = IntType.covering(int(acc_lo.min()), int(acc_hi.max()) + 1)
    return Mvau("m", o["binary"], mw, mh, p["PIXELS"], (), w.astype(np.int64), t, o["in_dtype"], o["w_dtype"], acc,
                pe=p["PE"], simd=p["SIMD"])


def _with_mvau_params(grid: list, seed: int) -> list:
    """Fill in the derived MVAU parameters exactly as the generator does (layers.MvauStage.params)."""
    rng = np.random.default_rng(seed)
    out = []
    for entry in grid:
        if entry[0] == "mvau":
            layer = _mvau_layer(entry, rng)
            entry = ("mvau", MvauStage().params(layer, layer.simd), dict(entry[2], layer=layer))
        out.append(entry)
    return out


def _rand(rng, dtype: IntType, shape) -> np.ndarray:
    return rng.integers(dtype.min, dtype.max + 1, shape).astype(np.int64)


def _case(entry, reps: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(driver input, expected driver output) for one configuration."""
    kind, p, o = entry
    if kind == "swg":
        x = _rand(rng, o["dtype"], (reps, p["H"], p["W"], p["CH"]))
        k, s = (p["KH"], p["KW"]), (p["SH"], p["SW"])
        if o["dtype"] == BIT:
            y = unpack_bits(ref.sliding_window_bits(pack_bits(x), p["CH"], k, s, o["pad"], p["PAD"]),
                            p["KH"] * p["KW"] * p["CH"])
        else:
            y = ref.sliding_window_ints(x, k, s, o["pad"], p["PAD"])
        assert y.shape[1:3] == (p["OH"], p["OW"])
        return x.ravel(), y.ravel()
    if kind == "mvau":
        m: Mvau = o["layer"]
        x = _rand(rng, m.in_dtype, (reps * m.pixels, m.mw))
        if m.binary:
            acc = ref.xnor_popcount(pack_bits(x), pack_bits(m.weights), m.mw)
        else:
            acc = ref.int_matmul(x, m.weights.T, 1 << 40)
        y = acc if m.thresholds is None else (acc >= m.thresholds[None, :]).astype(np.int64)
        words = pack_mvau_weights(m.weights, m.pe, m.simd, m.w_dtype.bits)
        assert words.dtype.itemsize * 8 == p["WORDBITS"] and words.shape[2] == p["WPT"]
        head = np.concatenate([words.ravel().astype(np.uint64).view(np.int64),
                               fold_thresholds(m.thresholds, m.mh, m.pe, p["TBITS"]).ravel().astype(np.int64)])
        return np.concatenate([head, x.ravel()]), y.ravel()
    if kind == "maxpool":
        x = _rand(rng, o["dtype"], (reps, p["H"], p["W"], p["CH"]))
        k, s = (p["KH"], p["KW"]), (p["SH"], p["SW"])
        if o["dtype"] == BIT:
            y = unpack_bits(ref.maxpool_bits(pack_bits(x), k, s), p["CH"])
        else:
            y = ref._windows(x, k, s).max(axis=(3, 4))
        return x.ravel(), y.ravel()
    if kind == "label":
        x = _rand(rng, o["dtype"], (reps, p["CLASSES"]))
        x[0, -1] = x[0].max()  # a tie: the lowest index wins
        return x.ravel(), np.argmax(x, axis=1)
    n = p["N"]
    x = _rand(rng, o["dtype"], (reps * n,))
    return x, x  # dwc, fifo: same elements, regrouped


def _widest(grid: list) -> int:
    """The widest ap_uint of a grid (beats, weight tiles, converter buffers): AP_INT_MAX_W for the driver."""
    w = [1024]
    for kind, p, _ in grid:
        e = {"swg": ("SIMD",), "maxpool": ("PE",), "label": ("PE",)}.get(kind)
        if e:
            w.append(p[e[0]] * p["EB"])
        elif kind == "mvau":
            w += [p["SIMD"] * p["IB"], p["SIMD"] * p["WB"], p["PE"] * p["OB"]]
        elif kind == "dwc":
            w.append((p["IN_PER_BEAT"] + p["OUT_PER_BEAT"]) * p["EB"])
    return -(-max(w) // 1024) * 1024


def _build_driver(tmp: Path, grid: list, name: str, extra: list[str]) -> tuple[Path, str]:
    extra = extra + [f"-DAP_INT_MAX_W={_widest(grid)}"]
    inc = tmp / name
    inc.mkdir()
    (inc / "configs.inc").write_text(_configs_inc(grid))
    exe = inc / "driver"
    flags = csim.BASE_FLAGS + ["-isystem", str(ensure_ap_types()), "-I", str(TEMPLATES), "-I", str(inc)] + extra
    proc = subprocess.run([csim.compiler(), *flags, str(DRIVER), "-o", str(exe)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return exe, proc.stderr


def own_warnings(stderr: str) -> list[str]:
    """Compiler warnings located in our code (the vendor ap_types headers are not ours)."""
    ap = str(ensure_ap_types())
    return [ln for ln in stderr.splitlines() if re.search(r": warning: ", ln) and not ln.startswith(ap)]


def _run_grid(tmp: Path, grid: list, seed: int) -> None:
    grid = _with_mvau_params(grid, seed)
    with ThreadPoolExecutor(2) as pool:
        fast = pool.submit(_build_driver, tmp, grid, "fast", [])
        loops = pool.submit(_build_driver, tmp, grid, "loops", ["-DBNN_NO_FAST_CSIM"])
        (fast_exe, fast_err), (loops_exe, loops_err) = fast.result(), loops.result()
    assert own_warnings(fast_err) == [] and own_warnings(loops_err) == []
    rng = np.random.default_rng(seed)
    for exe, entries in ((fast_exe, grid), (loops_exe, grid)):
        for i, entry in enumerate(entries):
            reps = 2
            x, want = _case(entry, reps, rng)
            inp, outp = tmp / "in.bin", tmp / "out.bin"
            x.astype("<i8").tofile(inp)
            proc = subprocess.run([str(exe), entry[0], str(i), str(reps), str(inp), str(outp)],
                                  capture_output=True, text=True)
            assert proc.returncode == 0, (exe.parent.name, entry[0], entry[1], proc.returncode, proc.stderr)
            got = np.fromfile(outp, dtype="<i8")
            assert np.array_equal(got, want), (exe.parent.name, entry[0], entry[1])


def test_templates_fast_grid(tmp_path):
    _run_grid(tmp_path, FAST, seed=1)


@pytest.mark.slow
def test_templates_full_grid(tmp_path):
    _run_grid(tmp_path, FAST + _slow_grid(), seed=2)


STREAM_PROBE = """
#include "bnn_stream.h"
int main() {
  hls::stream<int> s("probe");
  s.write(1);
  s.write(2);
  int a = s.read(), b = s.read();
  if (a != 1 || b != 2 || !s.empty()) return 1;
  for (int i = 0; i < 1000; i++) s.write(i);  // drained storage is reused, order kept
  for (int i = 0; i < 1000; i++) if (s.read() != i) return 1;
  s.read();  // one too many: must abort with the stream's name
  return 0;
}
"""


def test_stream_read_while_empty_aborts(tmp_path):
    """Our hls::stream keeps FIFO order and reports a read of an empty stream by name (a count mismatch)."""
    (tmp_path / "probe.cpp").write_text(STREAM_PROBE)
    subprocess.run([csim.compiler(), "-std=c++14", "-O1", "-Wall", "-Wextra", "-I", str(TEMPLATES),
                    str(tmp_path / "probe.cpp"), "-o", str(tmp_path / "probe")], check=True)
    proc = subprocess.run([str(tmp_path / "probe")], capture_output=True, text=True)
    assert proc.returncode != 0 and proc.returncode != 1
    assert "hls::stream 'probe' read while empty" in proc.stderr


def test_wide_line_buffers_live_off_the_stack(tmp_path):
    """A wide layer's line buffer (here 3 MB of beats for the window, 1.5 MB for the pool) does not live on
    the stack in C-simulation: the driver runs with a 256 KiB stack limit (it crashed with SIGSEGV before)."""
    import resource

    grid = [swg(3, 96, 1024, 3, 1, (0, 0, 0, 0), 1), pool(2, 96, 1024, 2, 2, 1)]
    exe, _ = _build_driver(tmp_path, _with_mvau_params(grid, 0), "wide", [])
    rng = np.random.default_rng(0)

    def small_stack() -> None:
        resource.setrlimit(resource.RLIMIT_STACK, (256 << 10, 256 << 10))

    for i, entry in enumerate(grid):
        x, want = _case(entry, 1, rng)
        x.astype("<i8").tofile(tmp_path / "in.bin")
        proc = subprocess.run([str(exe), entry[0], str(i), "1", str(tmp_path / "in.bin"), str(tmp_path / "out.bin")],
                              capture_output=True, text=True, preexec_fn=small_stack)
        assert proc.returncode == 0, (entry[0], proc.returncode, proc.stderr[-500:])
        assert np.array_equal(np.fromfile(tmp_path / "out.bin", dtype="<i8"), want), entry[0]
