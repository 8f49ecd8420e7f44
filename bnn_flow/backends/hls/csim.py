"""C-simulation of the generated HLS project with plain g++ (`bnn-flow run BUILD --target csim`).

* `generate_project(build_dir)` writes BUILD/hls/ (codegen.py) and returns it.
* `build_csim(build_dir)` compiles it: one object per source, cached under BUILD/hls/csim/ by a hash of
  the source, every header it may include (params.h, hls_templates/*.h), the compiler and its flags;
  sources compile in parallel; the executable is named by the hash of its objects, so an unchanged
  project is never rebuilt.
* `run_integer(build, q)` streams q (the graph's input integers, NHWC) through the testbench, split over
  up to two worker processes, and returns the int64 (N, classes) accumulators (the `csim` target,
  backends/hls/target.py).
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import signal
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bnn_flow.backends.base import input_frames
from bnn_flow.backends.hls import codegen
from bnn_flow.backends.hls.ap_types import ensure_ap_types
from bnn_flow.build import Build, as_build
from bnn_flow.errors import BadInputError, BnnFlowError, CheckFailedError, MissingToolError
from bnn_flow.plan import Plan
from bnn_flow.progress import progress

CXX = "g++"
# -O2: the generated weight initializers compile fast and the kernels run fast; popcnt is in every
# x86-64 CPU of the last 15 years and makes __builtin_popcountll one instruction.
# -Wno-unknown-pragmas: g++ does not know the #pragma HLS lines, which are meant for the vendor tool.
BASE_FLAGS = ["-std=c++14", "-O2", "-Wall", "-Wextra", "-Wno-unknown-pragmas"]
if platform.machine() in ("x86_64", "AMD64"):
    BASE_FLAGS.append("-mpopcnt")
MIN_FRAMES_PER_WORKER = 32
CHUNK_FRAMES = 2048  # frames per testbench process
CACHE_BYTES = 256 << 20  # objects and executables kept per BUILD/hls/csim/


def compiler() -> str:
    path = shutil.which(CXX)
    if path is None:
        raise MissingToolError(f"C++ compiler {CXX!r} not found: install g++ (e.g. apt-get install g++)")
    return path


def available() -> str | None:
    """None when C-simulation can run here (g++ present, ap_types found or fetched), else why not."""
    try:
        compiler()
        ensure_ap_types()
    except BnnFlowError as e:
        return str(e)
    return None


def generate_project(build: Build | str | Path, plan: Plan | None = None) -> Path:
    """Write BUILD/hls/ from BUILD's plan (loaded unless given) and folding; returns that folder."""
    build = as_build(build)
    return codegen.write_project(plan if plan is not None else build.plan(), codegen.hls_dir(build))


def compile_flags(project: Path) -> list[str]:
    return BASE_FLAGS + ["-isystem", str(ensure_ap_types()), "-I", str(project), "-I", str(codegen.TEMPLATES)]


def _digest(parts: list[bytes]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()[:20]


def _compiler_id(cxx: str) -> bytes:
    return subprocess.run([cxx, "--version"], capture_output=True).stdout


def _compile(cxx: str, flags: list[str], src: Path, obj: Path) -> None:
    """Compile src to obj (atomically); the compiler's messages, warnings included, go to obj's .log."""
    tmp = obj.with_name(f".{obj.name}.{os.getpid()}.tmp")
    log = obj.with_suffix(".log")
    proc = subprocess.run([cxx, *flags, "-c", str(src), "-o", str(tmp)], capture_output=True, text=True)
    log.write_text(proc.stderr)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        first = next((ln for ln in proc.stderr.splitlines() if "error" in ln), proc.stderr.strip()[:200])
        raise CheckFailedError(f"g++ failed on {src}: {first} (full log: {log})")
    os.replace(tmp, obj)


def _objects(cxx: str, flags: list[str], project: Path, out: Path) -> list[tuple[Path, Path]]:
    """(source, cached object) of every source of the project; the key hashes what the object depends on."""
    headers = [project / "params.h"] + sorted(codegen.TEMPLATES.glob("*.h"))
    tool = [_compiler_id(cxx), " ".join(flags).encode()]
    with_headers = tool + [p.read_bytes() for p in headers]
    pairs = []
    for src in [project / s for s in ("tb.cpp", "top.cpp")] + sorted(project.glob("weights_*.cpp")):
        # weight files include only <stdint.h>: a template change does not recompile them
        key = _digest((tool if src.name.startswith("weights_") else with_headers) + [src.read_bytes()])
        pairs.append((src, out / f"{src.stem}-{key}.o"))
    return pairs


def _link(cxx: str, objs: list[Path], exe: Path) -> None:
    tmp = exe.with_name(f".{exe.name}.{os.getpid()}.tmp")
    proc = subprocess.run([cxx, *[str(o) for o in objs], "-o", str(tmp)], capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise CheckFailedError(f"linking the C-simulation {exe} failed: {proc.stderr.strip()[:300]}")
    os.replace(tmp, exe)


def build_csim(build: Build | str | Path, jobs: int | None = None, plan: Plan | None = None) -> Path:
    """Generate and compile the C-simulation executable of BUILD (cached); returns its path.

    Only missing objects are compiled, `jobs` (default: CPU count) at a time, the largest sources first
    so that long weight files start early."""
    project = generate_project(build, plan)
    cxx, flags = compiler(), compile_flags(project)
    out = project / "csim"
    out.mkdir(exist_ok=True)
    pairs = _objects(cxx, flags, project, out)
    objs = [o for _, o in pairs]
    exe = out / f"csim-{_digest([o.name.encode() for o in objs])}"
    for f in [exe, *objs]:  # mark as recently used (the pruning keeps the newest)
        if f.is_file():
            os.utime(f)
    if exe.is_file():
        return exe
    todo = sorted(((s, o) for s, o in pairs if not o.is_file()), key=lambda t: -t[0].stat().st_size)
    with ThreadPoolExecutor(max(1, min(jobs or os.cpu_count() or 1, len(todo) or 1))) as pool:
        for f in [pool.submit(_compile, cxx, flags, s, o) for s, o in todo]:
            f.result()
    _link(cxx, objs, exe)
    _prune(out, keep={exe.name, *(o.name for o in objs), *(o.with_suffix(".log").name for o in objs)})
    return exe


def _prune(out: Path, keep: set[str]) -> None:
    """Drop objects and executables of earlier versions of the project, oldest first, beyond CACHE_BYTES
    (recent ones stay: switching back to an earlier folding then costs no rebuild)."""
    old = [p for p in out.iterdir() if p.is_file() and p.name not in keep
           and (p.suffix in (".o", ".log") or p.name.startswith("csim-"))]
    total = sum(p.stat().st_size for p in out.iterdir() if p.name in keep)
    for p in sorted(old, key=lambda p: -p.stat().st_mtime):
        total += p.stat().st_size
        if total > CACHE_BYTES:
            p.unlink(missing_ok=True)


def _run_chunk(exe: Path, q: np.ndarray, tmp: Path, tag: int, build_dir: Build) -> np.ndarray:
    """One testbench process on frames q; returns its flat int64 outputs."""
    inp, outp = tmp / f"in{tag}.bin", tmp / f"out{tag}.bin"
    q.astype("<i8").tofile(inp)
    proc = subprocess.run([str(exe), str(inp), str(outp)], capture_output=True, text=True)
    inp.unlink()
    if proc.returncode != 0:
        raise CheckFailedError(f"C-simulation of {build_dir} failed ({exit_status(proc.returncode)}): "
                               f"{last_line(proc.stderr)}")
    return np.fromfile(outp, dtype="<i8")


def exit_status(returncode: int) -> str:
    """'exit N', or the signal that killed the process by name (a crash: 'killed by SIGSEGV')."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit {returncode}"


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no message"


def run_integer(build: Build | str | Path, q: np.ndarray) -> np.ndarray:
    """The last layer's accumulators (int64 N x classes) of the C-simulation on input integers q.

    The frames go through the testbench in chunks of at most CHUNK_FRAMES (bounded temporary files and
    memory; a progress bar counts them), on up to two processes at once (C-simulation is single-threaded)."""
    build = as_build(build)
    plan = build.plan()
    q = input_frames(q, plan, f"csim input for {build}")
    exe = build_csim(build, plan=plan)
    n = len(q)
    if n == 0:
        return np.zeros((0, plan.classes), dtype=np.int64)
    workers = max(1, min(os.cpu_count() or 1, 2, n // MIN_FRAMES_PER_WORKER))
    chunks = max(workers, -(-n // CHUNK_FRAMES), min(n // MIN_FRAMES_PER_WORKER, 16))  # chunks: progress steps
    bounds = np.linspace(0, n, chunks + 1).astype(int)
    with (tempfile.TemporaryDirectory(prefix="bnn-csim-") as tmp, ThreadPoolExecutor(workers) as pool,
          progress(n, "csim", "frame") as bar):
        futures = [pool.submit(_run_chunk, exe, q[bounds[k]:bounds[k + 1]], Path(tmp), k, build)
                   for k in range(chunks)]
        outs = []
        for k, f in enumerate(futures):
            outs.append(f.result())
            bar.update(int(bounds[k + 1] - bounds[k]))
    return np.concatenate(outs).reshape(n, plan.classes).astype(np.int64)


def testbench_check(build: Build | str | Path, q: np.ndarray, expected: np.ndarray) -> str:
    """Run the generated testbench in checking mode: q in, every output compared with `expected` (int64
    N x classes, e.g. GoldenModel.run_integer) inside the C++ testbench. Returns its summary line;
    raises CheckFailedError (with the first mismatches) when any output differs."""
    build_dir = as_build(build)
    plan = build_dir.plan()
    q = input_frames(q, plan, f"csim input for {build_dir}")
    expected = np.asarray(expected, dtype=np.int64)
    if expected.shape != (len(q), plan.classes):
        raise BadInputError(f"expected outputs must be ({len(q)}, {plan.classes}), got {expected.shape}")
    exe = build_csim(build_dir, plan=plan)
    with tempfile.TemporaryDirectory(prefix="bnn-csim-") as tmp:
        inp, outp, exp = (Path(tmp) / n for n in ("in.bin", "out.bin", "expect.bin"))
        q.astype("<i8").tofile(inp)
        expected.astype("<i8").tofile(exp)
        proc = subprocess.run([str(exe), str(inp), str(outp), str(exp)], capture_output=True, text=True)
    if proc.returncode != 0:
        detail = " | ".join(proc.stderr.strip().splitlines()[:3])
        raise CheckFailedError(f"C-simulation testbench of {build_dir}: {proc.stdout.strip()} {detail}".strip())
    return proc.stdout.strip()
