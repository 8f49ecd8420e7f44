"""The back-end module for targets cpu | aarch64 | armv7 | armv6 (bnn_flow.targets.BACKENDS).

cpu runs in-process through the ctypes binding (host library built with gcc); the ARM targets run the
cross-built command-line runner (bnn_flow.backends.cpu.cross, under qemu-user) on raw int16/int32 files.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
from pathlib import Path

import numpy as np

from bnn_flow.backends.cpu.pack import pack_build
from bnn_flow.errors import BadInputError, MissingToolError

ARM_TARGETS = ("aarch64", "armv7", "armv6")


def _cross():
    """The cross-build module, or None while it does not exist."""
    try:
        return importlib.import_module("bnn_flow.backends.cpu.cross")
    except ModuleNotFoundError as e:
        if e.name != "bnn_flow.backends.cpu.cross":
            raise
        return None


def available(target: str) -> str | None:
    """None when `target` can run here, else a one-line reason (the missing tool and how to get it)."""
    if target == "cpu":
        return None if shutil.which("gcc") else "gcc not found (apt-get install gcc)"
    if target in ARM_TARGETS:
        cross = _cross()
        if cross is None:
            return f"the cross toolchain for {target} is missing (bnn_flow.backends.cpu.cross not installed)"
        return cross.available(target)
    return f"unknown CPU target {target!r}"


def _run_cross(target: str, model: Path, q: np.ndarray) -> np.ndarray:
    cross = _cross()
    reason = available(target)
    if cross is None or reason:
        raise MissingToolError(f"cannot run target {target}: {reason}")
    n = q.shape[0]
    with tempfile.TemporaryDirectory(prefix="bnn-cpu-") as tmp:
        in_path, out_path = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        np.ascontiguousarray(q.reshape(n, -1), dtype="<i2").tofile(in_path)
        cross.run_runner(target, model, in_path, out_path, threads=1)
        out = np.fromfile(out_path, dtype="<i4")
    if n == 0 or out.size % n:
        raise BadInputError(f"target {target}: runner wrote {out.size} values for {n} images")
    return out.reshape(n, -1).astype(np.int64)


def run_integer(build_dir: Path, q: np.ndarray, target: str) -> np.ndarray:
    """int64 (N, classes) accumulators of BUILD on `target` for input integers q (InputSpec.apply output)."""
    q = np.asarray(q)
    if q.ndim < 1 or not np.issubdtype(q.dtype, np.integer):
        raise BadInputError(f"CPU back-end: expected integer input of shape (N, ...), got {q.dtype} {q.shape}")
    model = pack_build(build_dir)
    if target == "cpu":
        from bnn_flow.backends.cpu.binding import CpuModel

        return CpuModel(model).run_integer(q)
    if target in ARM_TARGETS:
        return _run_cross(target, model, q)
    raise BadInputError(f"unknown CPU target {target!r} (cpu, {', '.join(ARM_TARGETS)})")
