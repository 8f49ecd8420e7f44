"""C-simulation of the AXI-Stream wrapper around the generated core, as the AXI DMA and the PYNQ driver see it.

The vendor flow synthesizes BUILD/vendor/axis_top.cpp (wrapper + core), not the core alone, and the board
driver talks to it through board/pynq/packing.py. This module compiles exactly that wrapper with the core's
sources, hls_templates/axis_tb.cpp (a DMA-like testbench) and a g++ stand-in for Vitis' ap_axi_sdata.h
(hls_templates/axis_csim/), feeds it packing.pack() bytes and reads its output with packing.unpack(). Bit-exact
integers here mean that wrapper, layout and driver helpers agree with the golden model end to end.

Objects are compiled in parallel and the executable is cached under BUILD/vendor/csim/ by a hash of every
source, header and flag, so a rerun on an unchanged build does not recompile.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import numpy as np

from bnn_flow.backends.hls import codegen, csim
from bnn_flow.boards import PYNQ_DRIVER_DIR
from bnn_flow.build import Build, as_build
from bnn_flow.errors import CheckFailedError

TB = codegen.TEMPLATES / "axis_tb.cpp"
SHIM_DIR = codegen.TEMPLATES / "axis_csim"
PACKING = PYNQ_DRIVER_DIR / "packing.py"


def packing() -> ModuleType:
    """board/pynq/packing.py (a standalone file, so that it runs on the board without bnn-flow)."""
    name = "bnn_flow_pynq_packing"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, PACKING)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # dataclasses look their module up while the class is built
        spec.loader.exec_module(mod)
    return sys.modules[name]


def _flags(build: Build, meta: dict) -> list[str]:
    """The C-simulation flags, the shim first (ap_axi_sdata.h), the vendor-style shared hls::stream."""
    hls = codegen.hls_dir(build)
    # -O0: this check runs a handful of frames, so compile time dominates (the ap_int templates);
    # -Wno-unused-label: the wrapper's loop labels name loops in Vitis HLS reports, g++ has no use for them.
    flags = [f for f in csim.compile_flags(hls) if not f.startswith("-O")]
    return ["-I", str(SHIM_DIR), *flags, "-O0", "-Wno-unused-label", "-DBNN_VENDOR_STREAM",
            f"-DBNN_BUS_IN_W={meta['in']['bus_bits']}", f"-DBNN_BUS_OUT_W={meta['out']['bus_bits']}"]


def _compile(cxx: str, flags: list[str], src: Path, obj: Path) -> None:
    tmp = obj.with_name(f".{obj.name}.{os.getpid()}.tmp")
    proc = subprocess.run([cxx, *flags, "-c", str(src), "-o", str(tmp)], capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        first = next((ln for ln in proc.stderr.splitlines() if "error" in ln), proc.stderr.strip()[:300])
        raise CheckFailedError(f"g++ failed on {src} (AXI-Stream wrapper C-simulation): {first}")
    os.replace(tmp, obj)


def _overlay(build: Build) -> dict:
    return json.loads((build.backend_dir("vendor") / "pynq" / "overlay.json").read_text())


def build_exe(build: Build | Path) -> Path:
    """Compile wrapper + core + testbench (cached); returns the executable.

    Pre: BUILD/hls (csim.generate_project) and BUILD/vendor (vendor.generate_vendor) are current.
    """
    build = as_build(build)
    vendor_dir = build.backend_dir("vendor")
    meta = _overlay(build)
    proj = json.loads((codegen.hls_dir(build) / codegen.PROJECT_JSON).read_text())
    cxx = csim.compiler()
    flags = _flags(build, meta)
    sources = [vendor_dir / "axis_top.cpp", TB, *[codegen.hls_dir(build) / s for s in proj["sources"]]]
    headers = [codegen.hls_dir(build) / "params.h", *sorted(codegen.TEMPLATES.glob("*.h")), SHIM_DIR / "ap_axi_sdata.h"]
    common = hashlib.sha256(b"".join(p.read_bytes() for p in headers if p.is_file()) + " ".join([cxx, *flags]).encode())
    out = vendor_dir / "csim"
    out.mkdir(parents=True, exist_ok=True)
    objs = []
    for src in sources:
        h = common.copy()
        h.update(src.read_bytes())
        objs.append(out / f"{src.stem}-{h.hexdigest()[:16]}.o")
    exe = out / f"axis_tb-{hashlib.sha256(''.join(o.name for o in objs).encode()).hexdigest()[:16]}"
    if exe.is_file():
        return exe
    todo = [(s, o) for s, o in zip(sources, objs, strict=True) if not o.is_file()]
    with ThreadPoolExecutor(max(1, min(os.cpu_count() or 1, len(todo) or 1))) as pool:
        for f in [pool.submit(_compile, cxx, flags, s, o) for s, o in todo]:
            f.result()
    tmp = exe.with_name(f".{exe.name}.tmp")
    proc = subprocess.run([cxx, *map(str, objs), "-o", str(tmp)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise CheckFailedError(f"linking the AXI-Stream wrapper C-simulation failed: {proc.stderr.strip()[:300]}")
    os.replace(tmp, exe)
    for p in out.iterdir():  # drop earlier versions
        if p not in objs and p != exe and p.is_file():
            p.unlink(missing_ok=True)
    return exe


def run_integer(build: Build | Path, q: np.ndarray) -> tuple[np.ndarray, str]:
    """(int64 (N, classes) integers from the wrapper's output bytes, its TLAST flags as '0'/'1' per word)."""
    build = as_build(build)
    meta = _overlay(build)
    pk = packing()
    lin, lout = pk.StreamLayout.from_json(meta["in"]), pk.StreamLayout.from_json(meta["out"])
    exe = build_exe(build)
    n = len(q)
    with tempfile.TemporaryDirectory(prefix="bnn-axis-") as tmp:
        t = Path(tmp)
        (t / "in.bin").write_bytes(pk.pack(q, lin).tobytes())
        proc = subprocess.run([str(exe), str(t / "in.bin"), str(n), str(t / "out.bin"), str(t / "last.txt")],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise CheckFailedError(f"the AXI-Stream wrapper C-simulation of {build} failed (exit "
                                   f"{proc.returncode}): {proc.stderr.strip()[:300] or 'no message'}")
        out = np.fromfile(t / "out.bin", dtype=np.uint8)
        last = (t / "last.txt").read_text()
    if out.size != n * lout.bytes_per_frame:
        raise CheckFailedError(f"the AXI-Stream wrapper wrote {out.size} bytes for {n} frames, expected "
                               f"{n * lout.bytes_per_frame}")
    return pk.unpack(out, n, lout), last
