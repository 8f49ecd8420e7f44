"""Run the cross-built runtime for a Raspberry Pi target under Debian's qemu-user (verification, not speed).

`available(target)` says whether this machine can (zig importable, the qemu binary on PATH);
`run_runner(...)` builds the static runner for the target (toolchain.build_runner, cached) and executes
`bnn_run MODEL IN OUT --threads N` under qemu with the CPU of the real boards:

| target  | emulator     | -cpu                                              |
|---------|--------------|---------------------------------------------------|
| aarch64 | qemu-aarch64 | cortex-a53 (Pi 3 / Zero 2 W core)                 |
| armv7   | qemu-arm     | cortex-a7 (Pi 2) when this qemu has it, else cortex-a15 |
| armv6   | qemu-arm     | arm1176 (Pi Zero / Pi 1): an instruction it lacks (NEON, ARMv7) faults |
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

from bnn_flow.backends.cpu import toolchain
from bnn_flow.errors import CheckFailedError, MissingToolError

QEMU: dict[str, tuple[str, tuple[str, ...]]] = {
    "aarch64": ("qemu-aarch64", ("cortex-a53",)),
    "armv7": ("qemu-arm", ("cortex-a7", "cortex-a15")),
    "armv6": ("qemu-arm", ("arm1176",)),
}
INSTALL_QEMU = "apt-get install qemu-user"
RUN_TIMEOUT_S = 3600  # a hung emulation must not hang the caller forever


def available(target: str) -> str | None:
    """None when `target` can be built and run here, else a one-line reason naming what to install."""
    if target not in QEMU:
        return f"unknown cross target {target!r} (choose one of {', '.join(QEMU)})"
    why = toolchain.zig_unavailable()
    if why:
        return why
    binary = QEMU[target][0]
    if shutil.which(binary) is None:
        return f"{binary} not found: {INSTALL_QEMU} (Debian's qemu-user)"
    return None


@functools.cache
def qemu_cpu(target: str) -> str:
    """The -cpu for `target`: the first preferred model this qemu knows (the last one as a fallback)."""
    binary, prefs = QEMU[target]
    try:
        listing = subprocess.run([binary, "-cpu", "help"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        listing = ""
    known = set(listing.split())
    return next((c for c in prefs if c in known), prefs[-1])


def qemu_command(target: str, exe: Path, args: list[str]) -> list[str]:
    """The command line that runs the static `exe` for `target` under qemu-user."""
    return [QEMU[target][0], "-cpu", qemu_cpu(target), str(exe), *args]


def _require(target: str) -> None:
    why = available(target)
    if why:
        raise MissingToolError(f"cannot run target {target}: {why}")


def run_emulated(target: str, exe: Path, args: list[str], what: str) -> subprocess.CompletedProcess:
    """Run `exe args` under qemu; CheckFailedError with the program's last stderr line when it fails."""
    _require(target)
    cmd = qemu_command(target, exe, args)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise CheckFailedError(f"{what} on {target} (qemu) did not finish in {RUN_TIMEOUT_S} s") from None
    if r.returncode != 0:
        lines = r.stderr.strip().splitlines() or [f"no message; stdout: {r.stdout.strip()[-200:]}"]
        raise CheckFailedError(f"{what} on {target} (qemu -cpu {qemu_cpu(target)}) failed with exit "
                               f"{r.returncode}: {lines[-1]}")
    return r


def run_runner(target: str, model_path: Path, in_path: Path, out_path: Path, threads: int = 1,
               grain: int | None = None) -> None:
    """bnn_run MODEL IN OUT --threads N [--grain G] for `target` under qemu. Post: out_path holds N x classes
    int32 (LE).

    Raises MissingToolError (no zig/qemu), CheckFailedError (the runner failed: its stderr line).
    """
    _require(target)
    exe = toolchain.build_runner(target)
    grain_args = [] if grain is None else ["--grain", str(int(grain))]
    run_emulated(target, exe, [str(model_path), str(in_path), str(out_path), "--threads", str(int(threads)),
                               *grain_args], "bnn_run")


def run_kernel_check(target: str, quick: bool = False) -> str:
    """Build kernel_check for `target`, run it under qemu; its summary line. CheckFailedError on a mismatch."""
    _require(target)
    exe = toolchain.build_kernel_check(target)
    r = run_emulated(target, exe, ["--quick"] if quick else [], "kernel_check")
    return r.stdout.strip()
