"""The CPU targets: `cpu` (the C runtime on this machine, in-process through the ctypes binding) and the
Raspberry Pi targets `aarch64`, `armv7`, `armv6` (the runtime cross-built with zig, run under qemu-user on
raw int16/int32 files: a verification, ~100x slower than native).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from bnn_flow.backends.base import Backend
from bnn_flow.backends.cpu import cross, toolchain
from bnn_flow.backends.cpu.binding import BnnLoadError, CpuModel
from bnn_flow.backends.cpu.pack import pack_build
from bnn_flow.build import Build
from bnn_flow.errors import BadInputError, MissingToolError
from bnn_flow.progress import progress

QEMU_CHUNK = 64  # images per emulated runner call: the progress bar's step


def load_model(build: Build, threads: int = 1) -> CpuModel:
    """The build's .bnn loaded into the host runtime. A damaged BUILD/cpu/model.bnn (the loader's CRC and
    bounds checks refuse it) is re-packed from the build once; only a second refusal is an error."""
    path = pack_build(build)
    try:
        return CpuModel(path, threads=threads)
    except BnnLoadError:
        path.unlink(missing_ok=True)
        return CpuModel(pack_build(build), threads=threads)


def _integers(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q)
    if q.ndim < 1 or not np.issubdtype(q.dtype, np.integer):
        raise BadInputError(f"CPU back-end: expected integer input of shape (N, ...), got {q.dtype} {q.shape}")
    return q


class CpuTarget(Backend):
    description = "the C runtime on this machine (host kernels), in-process"

    def available(self) -> str | None:
        return None if shutil.which("gcc") else "gcc not found (apt-get install gcc)"

    def prepare(self, build: Build) -> None:
        pack_build(build)

    def run_integer(self, build: Build, q: np.ndarray) -> np.ndarray:
        return load_model(build).run_integer(_integers(q))


class PiTarget(Backend):
    emulated = True
    description = "the C runtime cross-built for a Raspberry Pi, run under qemu-user"

    def available(self) -> str | None:
        return cross.available(self.name)

    def prepare(self, build: Build) -> None:
        pack_build(build)
        toolchain.build_runner(self.name)

    def run_integer(self, build: Build, q: np.ndarray) -> np.ndarray:
        q = _integers(q)
        reason = self.available()
        if reason:
            raise MissingToolError(f"cannot run target {self.name}: {reason}")
        model = pack_build(build)
        n = q.shape[0]
        outs = []
        with tempfile.TemporaryDirectory(prefix="bnn-cpu-") as tmp, progress(n, self.name) as bar:
            for start in range(0, n, QEMU_CHUNK):
                outs.append(self._run_chunk(model, q[start:start + QEMU_CHUNK], Path(tmp)))
                bar.update(len(outs[-1]))
        if not outs:
            raise BadInputError(f"target {self.name}: no images to run")
        return np.concatenate(outs)

    def _run_chunk(self, model: Path, q: np.ndarray, tmp: Path) -> np.ndarray:
        n = q.shape[0]
        in_path, out_path = tmp / "in.bin", tmp / "out.bin"
        np.ascontiguousarray(q.reshape(n, -1), dtype="<i2").tofile(in_path)
        cross.run_runner(self.name, model, in_path, out_path, threads=1)
        out = np.fromfile(out_path, dtype="<i4")
        if out.size % n:
            raise BadInputError(f"target {self.name}: runner wrote {out.size} values for {n} images")
        return out.reshape(n, -1).astype(np.int64)
