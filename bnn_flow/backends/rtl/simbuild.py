"""The Verilator build of a generated RTL project: bnn_top + the library modules it uses + the hand-written
testbench (sim/tb.cpp), compiled to one executable.

Cached under BUILD/rtl/obj-<hash>/, the hash covering every source (bnn_top.v, the library files, tb.cpp,
bnn_sim_params.h), the flags (FIFO depth overrides included), the Verilator and C++ compiler versions. The
memory files are not in it: $readmemh reads them when the simulation starts, so new weights of the same
design need no rebuild. A build goes to a temporary folder that is renamed into place when complete; the
least recently used obj-* folders beyond KEEP are removed.

Verilator's run-time library (verilated.o, verilated_threads.o: about 6 CPU seconds, the same for every
design) is compiled once and kept in the user cache (bnn_flow.cache: verilator-runtime/<hash of the tool
versions and flags>), then copied into each new build folder before make runs, which then skips it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from importlib.resources import files
from pathlib import Path

from bnn_flow.backends.rtl import codegen
from bnn_flow.backends.rtl.design import LIBRARY_DIR, Design, library_closure
from bnn_flow.cache import cache_dir
from bnn_flow.errors import CheckFailedError, MissingToolError

VERILATOR = "verilator"
CXX = "g++"
SIM_DIR = Path(str(files(__package__).joinpath("sim")))
TESTBENCH = SIM_DIR / "tb.cpp"
EXE = "Vsim"
KEEP = 4  # obj-* folders kept per BUILD/rtl (the sizing build and the sized one, earlier foldings)
INSTALL = "apt-get install -y verilator (Debian/Ubuntu; Verilator 5 or later), or see verilator.org"
# -O1 for the model's C++: the generated code of a whole design compiles much faster than at -O2/-O3, and
# runs within a few percent (the model is dominated by memory traffic of wide signals).
CFLAGS = "-O1 -std=c++17"
BASE_FLAGS = ["--cc", "--exe", "--top-module", codegen.TOP, "-DBNN_PROBES", "-Wno-fatal", "-Wno-lint",
              "-Wno-style", "--x-assign", "fast", "--x-initial", "fast", "--no-timing"]


def tool_missing() -> str | None:
    """None when Verilator and a C++ compiler are here, else what to install (one line)."""
    if shutil.which(VERILATOR) is None:
        return f"{VERILATOR} not found: install it ({INSTALL})"
    if shutil.which(CXX) is None or shutil.which("make") is None:
        return "g++ and make are needed by Verilator: install them (apt-get install -y g++ make)"
    return None


def verilator() -> str:
    reason = tool_missing()
    if reason:
        raise MissingToolError(reason)
    return str(shutil.which(VERILATOR))


def _version(cmd: list[str]) -> bytes:
    return subprocess.run(cmd, capture_output=True).stdout


def sources(project: Path, d: Design) -> list[Path]:
    """The Verilog sources of the simulation, top first."""
    return [project / codegen.TOP_FILE] + [LIBRARY_DIR / name for name in library_closure(d.modules())]


def _flags(overrides: dict[str, int], jobs: int) -> list[str]:
    return [*BASE_FLAGS, "-j", str(jobs), "-CFLAGS", CFLAGS, *[f"-G{k}={int(v)}" for k, v in sorted(overrides.items())]]


def build_key(project: Path, d: Design, overrides: dict[str, int]) -> str:
    h = hashlib.sha256()
    for part in [_version([verilator(), "--version"]), _version([CXX, "--version"]),
                 " ".join(_flags(overrides, 0)).encode(), TESTBENCH.read_bytes(),
                 (project / codegen.SIM_HEADER).read_bytes(), *[p.read_bytes() for p in sources(project, d)]]:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def build_sim(project: Path, d: Design, overrides: dict[str, int] | None = None, jobs: int = 2) -> Path:
    """The simulation executable of the generated project in `project` for design `d` (cached; see the
    module docstring). `overrides`: top parameters to set at build time (FIFO<k>_DEPTH of the sizing run)."""
    overrides = dict(overrides or {})
    project = Path(project).resolve()  # Verilator runs in the project folder: a relative BUILD must not move
    tool = verilator()
    key = build_key(project, d, overrides)
    obj = project / f"obj-{key}"
    exe = obj / EXE
    if exe.is_file():
        os.utime(obj)  # recently used: the pruning keeps it
        return exe
    tmp = project / f".obj-{key}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [tool, *_flags(overrides, jobs), "-Mdir", str(tmp), "-o", EXE, "-CFLAGS", f"-I{project}",
           *map(str, sources(project, d)), str(TESTBENCH)]
    t0 = time.perf_counter()
    log = project / "verilator.log"
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=project)
    text = f"$ {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}\n"
    if proc.returncode == 0:
        runtime = _runtime_cache()
        reused = _copy_runtime(runtime, tmp)
        make = ["make", "-C", str(tmp), "-f", f"V{codegen.TOP}.mk", "-j", str(jobs), EXE]
        proc = subprocess.run(make, capture_output=True, text=True)
        text += f"$ {' '.join(make)}\n{proc.stdout}\n{proc.stderr}\n"
        if proc.returncode == 0 and not reused:
            _store_runtime(tmp, runtime)
    log.write_text(text)
    if proc.returncode != 0 or not (tmp / EXE).is_file():
        shutil.rmtree(tmp, ignore_errors=True)
        first = next((ln for ln in proc.stderr.splitlines() if "%Error" in ln or "error" in ln),
                     proc.stderr.strip()[-300:])
        raise CheckFailedError(f"Verilator failed on {project / codegen.TOP_FILE}: {first} (full log: {log})")
    (tmp / "build_seconds").write_text(f"{time.perf_counter() - t0:.1f}\n")
    if obj.exists():  # built meanwhile by another process: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        os.replace(tmp, obj)
    _prune(project, keep=obj)
    return exe


def _runtime_objects(mdir: Path) -> list[str]:
    """The run-time library objects a Verilator build folder links (VM_GLOBAL_* of its classes .mk)."""
    names, collecting = [], False
    for line in (mdir / f"V{codegen.TOP}_classes.mk").read_text().splitlines():
        if line.startswith("VM_GLOBAL_"):
            collecting = True
            continue
        if collecting and line.strip().rstrip("\\").strip():
            names.append(line.strip().rstrip("\\").strip() + ".o")
        elif collecting:
            collecting = False
    return names


def _runtime_cache() -> Path:
    h = hashlib.sha256()
    for part in (_version([verilator(), "--version"]), _version([CXX, "--version"]), CFLAGS.encode(),
                 " ".join(BASE_FLAGS).encode()):
        h.update(hashlib.sha256(part).digest())
    return cache_dir("verilator-runtime", h.hexdigest()[:16])


def _copy_runtime(runtime: Path, mdir: Path) -> bool:
    """Copy the cached run-time objects into a fresh build folder, newer than its makefiles (so make keeps
    them); False when the cache lacks any."""
    names = _runtime_objects(mdir)
    if not names or not all((runtime / n).is_file() for n in names):
        return False
    for n in names:
        shutil.copyfile(runtime / n, mdir / n)  # a new file: its time is now, after the makefiles
    return True


def _store_runtime(mdir: Path, runtime: Path) -> None:
    runtime.mkdir(parents=True, exist_ok=True)
    for n in _runtime_objects(mdir):
        if (mdir / n).is_file():
            tmp = runtime / f".{n}.{os.getpid()}.tmp"
            shutil.copyfile(mdir / n, tmp)
            os.replace(tmp, runtime / n)


def _prune(project: Path, keep: Path) -> None:
    old = sorted((p for p in project.glob("obj-*") if p.is_dir() and p != keep), key=lambda p: -p.stat().st_mtime)
    for p in old[KEEP - 1:]:
        shutil.rmtree(p, ignore_errors=True)


__all__ = ["INSTALL", "build_sim", "sources", "tool_missing", "verilator"]
