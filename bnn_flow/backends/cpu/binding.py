"""The ctypes binding of the C runtime: build the host shared library once, load .bnn models, run them in-process.

`host_library()` compiles runtime/src (the host's kernel family) with gcc into
~/.cache/bnn-flow/cpu/<hash of sources + flags + compiler>/libbnn.so, atomically, and only when that
hash changes. `CpuModel` wraps one loaded model; load errors become BadInputError with the loader's message.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bnn_flow.backends.cpu.sources import INCLUDE_DIR, SRC_DIR, runtime_sources
from bnn_flow.cache import cache_dir
from bnn_flow.errors import BadInputError, MissingToolError

CFLAGS = ("-O3", "-march=native", "-std=c11", "-pthread", "-fPIC", "-shared", "-Wall")
ERRORS = {1: "I/O error", 2: "malformed file", 3: "unsupported version", 4: "CRC mismatch", 5: "shape error",
          6: "out of memory", 7: "bad argument"}
_lock = threading.Lock()
_built: dict[str, Path] = {}  # in-process memo: key -> library path (HOME may change under tests)
_libs: dict[Path, ctypes.CDLL] = {}


class BnnLoadError(BadInputError):
    """The C loader rejected a model; `code` is the BNN_E_* value."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def host_kernels() -> str:
    """The kernel family for this machine's CPU."""
    m = platform.machine().lower()
    if m in ("x86_64", "amd64"):
        return "x86"
    if m in ("aarch64", "arm64"):
        return "neon"
    return "generic"


@functools.cache
def _compiler_version(cc: str) -> str:
    try:
        return subprocess.run([cc, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise MissingToolError(f"the C compiler {cc} does not run ({e}); install gcc (apt-get install gcc)") from None


def _build_key(kernels: str, cflags: tuple[str, ...], cc: str) -> str:
    h = hashlib.sha256("\0".join((kernels, *cflags, _compiler_version(cc))).encode())
    for p in [*runtime_sources(kernels), *sorted(SRC_DIR.glob("*.h")), *sorted(INCLUDE_DIR.glob("*.h"))]:
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:20]


def build_library(out: Path, kernels: str, cflags: tuple[str, ...] = CFLAGS, cc: str = "gcc") -> Path:
    """Compile the runtime with `kernels` into the shared library `out` (atomic rename). Post: out exists."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".libbnn.", suffix=".so", dir=out.parent)
    os.close(fd)
    cmd = [cc, *cflags, "-I", str(INCLUDE_DIR), *map(str, runtime_sources(kernels)), "-o", tmp]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise BadInputError(f"building the C runtime failed: {' '.join(cmd)}\n{r.stderr.strip()}")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def host_library(cflags: tuple[str, ...] = CFLAGS, kernels: str | None = None) -> Path:
    """The host shared library, built with gcc on first use and cached by a hash of sources, flags, compiler."""
    cc = "gcc"
    if shutil.which(cc) is None:
        raise MissingToolError("gcc not found: the CPU runtime is built with gcc (apt-get install gcc)")
    kernels = kernels or host_kernels()
    key = _build_key(kernels, tuple(cflags), cc)
    with _lock:
        if key in _built and _built[key].is_file():
            return _built[key]
        path = cache_dir("cpu", key, "libbnn.so")
        if not path.is_file():
            build_library(path, kernels, tuple(cflags), cc)
        _built[key] = path
        return path


def _load(path: Path) -> ctypes.CDLL:
    if path not in _libs:
        lib = ctypes.CDLL(str(path))
        vp, sz, pp = ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)
        lib.bnn_model_from_memory.argtypes = [ctypes.c_char_p, sz, pp, ctypes.c_char_p, sz]
        lib.bnn_model_from_file.argtypes = [ctypes.c_char_p, pp, ctypes.c_char_p, sz]
        lib.bnn_model_free.argtypes = [vp]
        lib.bnn_model_free.restype = None
        for f in ("bnn_input_elems", "bnn_classes", "bnn_layer_count"):
            getattr(lib, f).argtypes, getattr(lib, f).restype = [vp], sz
        lib.bnn_layer_name.argtypes, lib.bnn_layer_name.restype = [vp, sz], ctypes.c_char_p
        lib.bnn_last_error.argtypes, lib.bnn_last_error.restype = [vp], ctypes.c_char_p
        lib.bnn_kernels.argtypes, lib.bnn_kernels.restype = [], ctypes.c_char_p
        lib.bnn_use_reference_kernels.argtypes, lib.bnn_use_reference_kernels.restype = [vp, ctypes.c_int], None
        if hasattr(lib, "bnn_layer_fused"):  # absent from libraries of older commits (bench/cpu_versions.py)
            lib.bnn_layer_fused.argtypes, lib.bnn_layer_fused.restype = [vp, sz], ctypes.c_int
            lib.bnn_isa_ceiling.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_double)]
            lib.bnn_isa_ceiling.restype = ctypes.c_double
        if hasattr(lib, "bnn_set_thread_grain"):  # likewise
            lib.bnn_set_thread_grain.argtypes, lib.bnn_set_thread_grain.restype = [vp, sz], None
            lib.bnn_threads_used.argtypes, lib.bnn_threads_used.restype = [vp, sz, ctypes.c_int], sz
        lib.bnn_run.argtypes = [vp, vp, sz, vp, ctypes.c_int, vp]
        _libs[path] = lib
    return _libs[path]


class CpuModel:
    """A .bnn model loaded into the host C runtime. Not for concurrent use from several Python threads.

    `threads` C threads per run at most: with at least that many images they split the images, with fewer (one
    image: latency) they split every layer. A run uses one thread per `thread_grain` binary-MAC equivalents of
    work (None: the runtime's default, BNN_THREAD_GRAIN in bnn.h; 0: all `threads`). `reference=True` runs the
    reference kernels (for timing them).
    """

    def __init__(self, bnn_path: str | Path | None = None, threads: int = 1, *, data: bytes | None = None,
                 library: Path | None = None, reference: bool = False, thread_grain: int | None = None) -> None:
        """Load `bnn_path` (or the bytes `data`). Raises BnnLoadError (a BadInputError) when it is malformed."""
        self._lib = _load(library or host_library())
        self._m = ctypes.c_void_p()
        err = ctypes.create_string_buffer(256)
        if data is not None:
            rc = self._lib.bnn_model_from_memory(data, len(data), ctypes.byref(self._m), err, len(err))
            where = "model bytes"
        else:
            rc = self._lib.bnn_model_from_file(str(bnn_path).encode(), ctypes.byref(self._m), err, len(err))
            where = str(bnn_path)
        if rc != 0:
            self._m = ctypes.c_void_p()
            advice = "re-pack it from its build" if data is not None else f"delete {where}: bnn-flow re-packs it"
            raise BnnLoadError(f"{where}: {ERRORS.get(rc, 'error')}: {err.value.decode(errors='replace')} "
                               f"({advice})", rc)
        self.threads = threads
        self.input_elems = int(self._lib.bnn_input_elems(self._m))
        self.classes = int(self._lib.bnn_classes(self._m))
        n = int(self._lib.bnn_layer_count(self._m))
        self.layer_names = [self._lib.bnn_layer_name(self._m, i).decode(errors="replace") for i in range(n)]
        self.kernels = "reference" if reference else self._lib.bnn_kernels().decode()
        # per layer: 0 own kernel, 1 heads a fused binary convolution (its time covers the group), 2 fused into it
        fused = None if reference else getattr(self._lib, "bnn_layer_fused", None)
        self.layer_fused = [int(fused(self._m, i)) if fused else 0 for i in range(n)]
        self._lib.bnn_use_reference_kernels(self._m, int(reference))
        if thread_grain is not None:
            if thread_grain < 0:
                raise BadInputError(f"thread_grain must be >= 0, got {thread_grain}")
            self._lib.bnn_set_thread_grain(self._m, int(thread_grain))

    def __del__(self) -> None:
        if getattr(self, "_m", None):
            self._lib.bnn_model_free(self._m)
            self._m = ctypes.c_void_p()

    def _input(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q)
        if q.ndim < 1 or q.size != q.shape[0] * self.input_elems:
            raise BadInputError(f"input of shape {q.shape} does not hold N x {self.input_elems} values per image")
        if q.dtype != np.int16 and q.size and (q.min() < -32768 or q.max() > 32767):  # int16 always fits
            raise BadInputError("input values do not fit int16")
        return np.ascontiguousarray(q.reshape(q.shape[0], self.input_elems), dtype=np.int16)

    def _run(self, q: np.ndarray, seconds: np.ndarray | None) -> np.ndarray:
        x = self._input(q)
        out = np.zeros((x.shape[0], self.classes), dtype=np.int32)
        sec = None if seconds is None else seconds.ctypes.data
        rc = self._lib.bnn_run(self._m, x.ctypes.data, x.shape[0], out.ctypes.data, int(self.threads), sec)
        if rc != 0:
            raise BadInputError(f"CPU runtime: {self._lib.bnn_last_error(self._m).decode()}")
        return out.astype(np.int64)

    def threads_used(self, images: int) -> int:
        """The threads a run of `images` images uses (self.threads at most, fewer for little work)."""
        return int(self._lib.bnn_threads_used(self._m, int(images), int(self.threads)))

    def isa_ceiling(self, repeats: int = 7) -> tuple[float, float]:
        """(binary MACs/s of the kernel family's XNOR-popcount step alone, estimated core clock in Hz)."""
        hz = ctypes.c_double(0.0)
        macs = float(self._lib.bnn_isa_ceiling(int(repeats), ctypes.byref(hz)))
        return macs, float(hz.value)

    def run_integer(self, q: np.ndarray) -> np.ndarray:
        """int64 (N, classes) last-layer accumulators for the graph's input integers q (N x input elements)."""
        return self._run(q, None)

    def run_timed(self, q: np.ndarray) -> tuple[np.ndarray, float, list[float]]:
        """(accumulators, total wall seconds, per-layer seconds summed over images and threads)."""
        sec = np.zeros(len(self.layer_names), dtype=np.float64)
        t0 = time.perf_counter()
        acc = self._run(q, sec)
        return acc, time.perf_counter() - t0, sec.tolist()
