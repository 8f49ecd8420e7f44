"""Benchmark: the RTL cost model (backends/rtl/estimate.py) against yosys `synth_ecp5`, module by module.

Every library module (bnn_mvau binary and integer, bnn_window, bnn_maxpool, bnn_dwc, bnn_fifo) is synthesized
alone over a grid of parameters with random memory contents; the synthesized LUT4 equivalents (LUT4 + 2 per
CCU2C carry + 4 per TRELLIS_DPR16X4, as nextpnr counts them), FFs, DP16KD and MULT18X18D are written beside
the estimate of the same configuration, with the relative error. This is how the estimate's constants were
chosen and how a change of the library or of yosys is caught: rerun it and look at the error column.

    .venv/bin/python bench/rtl_cost.py [--jobs 2] [--json bench/results/rtl_cost.json] [--quick]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bnn_flow.backends.rtl import memfiles
from bnn_flow.backends.rtl.design import LIBRARY_DIR
from bnn_flow.backends.rtl.estimate import ECP5, module_estimate, yosys_defines
from bnn_flow.backends.rtl.flow_report import lut_count
from bnn_flow.backends.rtl.flow_tools import find_tool
from bnn_flow.fileio import write_json_atomic
from bnn_flow.measure import machine_info

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "rtl_cost.json"
LIBRARY = sorted(p.name for p in LIBRARY_DIR.glob("bnn_*.v"))


def _mvau(mw: int, mh: int, simd: int, pe: int, pixels: int = 1, binary: bool = True, thresh: bool = True) -> dict:
    ab = int(mw + 1).bit_length() + 1 if binary else int(255 * mw).bit_length() + 2
    return dict(module="bnn_mvau", MW=mw, MH=mh, SIMD=simd, PE=pe, PIXELS=pixels, IB=1 if binary else 8,
                ISIGNED=0, WB=1, WSIGNED=0, WBIPOLAR=0 if binary else 1, BINARY=int(binary), AB=ab,
                THRESH=int(thresh), OB=1 if thresh else ab)


def _window(h: int, c: int, simd: int, eb: int = 1, k: int = 3, pad: int = 0) -> dict:
    o = h + 2 * pad - k + 1
    return dict(module="bnn_window", H=h, W=h, CH=c, KH=k, KW=k, SH=1, SW=1, PT=pad, PL=pad, OH=o, OW=o,
                SIMD=simd, EB=eb, PAD=1)


def _pool(h: int, c: int, pe: int) -> dict:
    return dict(module="bnn_maxpool", H=h, W=h, CH=c, KH=2, KW=2, SH=2, SW=2, OH=h // 2, OW=h // 2, PE=pe, EB=1,
                SIGNED=0)


def grid(quick: bool) -> list[dict]:
    g = [_mvau(576, 64, 32, 4, 784), _mvau(576, 64, 64, 16, 784), _mvau(1152, 128, 32, 8, 100),
         _mvau(256, 512, 16, 8), _mvau(784, 64, 49, 16), _mvau(64, 10, 16, 1, thresh=False),
         _mvau(512, 10, 32, 2, thresh=False), _mvau(27, 64, 27, 16, 900, binary=False),
         _mvau(27, 64, 3, 8, 900, binary=False), _mvau(2304, 256, 64, 4, 1), _mvau(4608, 512, 32, 32, 1),
         _window(30, 64, 64), _window(30, 64, 16), _window(12, 128, 32), _window(32, 3, 3, eb=8),
         _window(5, 256, 256),
         _pool(28, 64, 16), _pool(10, 128, 64), _pool(28, 64, 64),
         dict(module="bnn_dwc", IN_E=64, OUT_E=16, EB=1, N=57600), dict(module="bnn_dwc", IN_E=4, OUT_E=64, EB=1,
                                                                       N=50176),
         dict(module="bnn_dwc", IN_E=3, OUT_E=27, EB=8, N=3072),
         dict(module="bnn_fifo", WIDTH=64, DEPTH=32), dict(module="bnn_fifo", WIDTH=16, DEPTH=2),
         dict(module="bnn_fifo", WIDTH=64, DEPTH=1024)]
    return g[:6] if quick else g


def synth(cfg: dict, work: Path) -> dict[str, int]:
    """Cell counts of one module configuration after synth_ecp5."""
    name = "_".join(f"{k}{v}" for k, v in cfg.items() if k != "module")[:80]
    d = work / name
    d.mkdir()
    for f in LIBRARY:
        shutil.copy(LIBRARY_DIR / f, d / f)
    params = {k: v for k, v in cfg.items() if k != "module"}
    extra = ""
    if cfg["module"] == "bnn_mvau":
        rng = np.random.default_rng(0)
        mw, mh, pe, simd = cfg["MW"], cfg["MH"], cfg["PE"], cfg["SIMD"]
        w = rng.integers(0, 2, (mh, mw)) if cfg["BINARY"] else rng.choice([-1, 1], (mh, mw))
        (d / "w.mem").write_text(memfiles.mvau_weight_memh(w, pe, simd, 1, bipolar=not cfg["BINARY"]))
        extra = ' -set WEIGHT_FILE "w.mem"'
        if cfg["THRESH"]:
            t = rng.integers(0, mw + 2, mh)
            (d / "t.mem").write_text(memfiles.mvau_threshold_memh(t, mh, pe, cfg["AB"]))
            extra += ' -set THRESH_FILE "t.mem"'
    sets = " ".join(f"-set {k} {v}" for k, v in params.items())
    sources = " ".join([*yosys_defines(ECP5), *LIBRARY])
    (d / "s.ys").write_text(f"read_verilog -defer {sources}\nchparam {sets}{extra} {cfg['module']}\n"
                            f"synth_ecp5 -top {cfg['module']}\ntee -o s.stat stat\n")
    proc = subprocess.run([find_tool("yosys").path, "-q", "s.ys"], cwd=d, capture_output=True, text=True,
                          check=False)
    if proc.returncode:
        raise RuntimeError(f"{name}: {(proc.stdout + proc.stderr)[-2000:]}")
    stat = (d / "s.stat").read_text()
    return {m.group(2): int(m.group(1)) for m in re.finditer(r"^\s+(\d+)\s+([A-Z][A-Z0-9_]+)\s*$", stat, re.M)}


def measure(cfg: dict, work: Path) -> dict:
    t0 = time.perf_counter()
    cells = synth(cfg, work)
    est = module_estimate(cfg)
    got = {"LUT4": lut_count(cells, "ecp5"), "FF": cells.get("TRELLIS_FF", 0),
           "DP16KD": cells.get("DP16KD", 0), "MULT18": cells.get("MULT18X18D", 0)}
    err = {k: (est[k] - got[k]) / got[k] if got[k] else None for k in ("LUT4", "FF")}
    return {"config": cfg, "synth": got, "estimate": est, "error": err, "cells": cells,
            "synth_s": round(time.perf_counter() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    ap.add_argument("--quick", action="store_true", help="the first six configurations only")
    args = ap.parse_args(argv)
    os.environ.setdefault("YOWASP_CACHE_DIR", str(Path(tempfile.gettempdir()) / "yowasp-cache"))
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda c: measure(c, Path(tmp)), grid(args.quick)))
    print(f"{'module':<11} {'parameters':<52} {'LUT4 syn':>8} {'est':>7} {'err':>6} {'FF syn':>7} {'est':>6} "
          f"{'BRAM':>4} {'est':>3}")
    for r in rows:
        c, s, e = r["config"], r["synth"], r["estimate"]
        p = " ".join(f"{k}={v}" for k, v in c.items() if k in ("MW", "MH", "SIMD", "PE", "PIXELS", "H", "CH", "IN_E",
                                                                   "OUT_E", "EB", "WIDTH", "DEPTH", "BINARY"))
        le = r["error"]["LUT4"]
        print(f"{c['module']:<11} {p:<52} {s['LUT4']:>8,} {e['LUT4']:>7,} "
              f"{'-' if le is None else f'{100 * le:+.0f}%':>6} {s['FF']:>7,} {e['FF']:>6,} {s['DP16KD']:>4} "
              f"{e['DP16KD']:>3}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.json, {"machine": machine_info(), "yosys": find_tool("yosys").version(), "rows": rows})
    print(f"-> {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
