"""Cross builds for the Raspberry Pi targets with `zig cc` (the ziglang PyPI package): static musl binaries.

One dependency builds for every Pi, no sysroot needed (zig ships musl and builds it on first use):

| target  | zig triple           | -mcpu        | Raspberry Pi                                         | kernels |
|---------|----------------------|--------------|------------------------------------------------------|---------|
| aarch64 | aarch64-linux-musl   | cortex_a53   | Pi 3 / 4 / 5 / Zero 2 W, 64-bit OS                   | neon    |
| armv7   | arm-linux-musleabihf | cortex_a7    | Pi 2 / 3 / Zero 2 W, 32-bit Raspberry Pi OS (NEON)   | neon    |
| armv6   | arm-linux-musleabihf | arm1176jzf_s | Pi Zero / Zero W / Pi 1 (ARM1176: no NEON, no popcnt) | armv6   |

Built binaries are cached under ~/.cache/bnn-flow/cpu/<target>-<hash>/<name>, where the hash covers the
target, the flags, the zig version and every runtime source and header: an unchanged tree is never rebuilt,
a changed one always is. Each binary is written to a temporary name and renamed into place (atomic).
zig's own cache (musl, compiler-rt: ~1 minute per target on first use) lives in $ZIG_GLOBAL_CACHE_DIR
when set, else in ~/.cache/bnn-flow/zig.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from bnn_flow.backends.cpu.sources import INCLUDE_DIR, RUNNER, RUNTIME_DIR, SRC_DIR, all_sources, runtime_sources
from bnn_flow.cache import cache_dir
from bnn_flow.errors import BadInputError, MissingToolError

KERNEL_CHECK = RUNTIME_DIR / "tests" / "kernel_check.c"
CFLAGS = ("-O2", "-std=c11", "-static", "-pthread", "-Wall", "-Wextra")
INSTALL_ZIG = "pip install ziglang (a bnn-flow dependency: make setup)"


@dataclass(frozen=True)
class CrossTarget:
    name: str
    triple: str  # zig's -target
    mcpu: str  # zig's -mcpu (LLVM cpu name with underscores)
    kernels: str  # the kernel family of bnn_flow.backends.cpu.sources
    pis: str  # which Raspberry Pis run it
    # The -mcpu whose musl and compiler-rt the binary links against, when not mcpu: armv7 reuses the ARMv6
    # ones (ARMv6 code runs on every ARMv7 core), which spares zig a third ~1-minute libc build per machine.
    libc_mcpu: str | None = None


TARGETS: dict[str, CrossTarget] = {
    "aarch64": CrossTarget("aarch64", "aarch64-linux-musl", "cortex_a53", "neon",
                           "Pi 3 / 4 / 5 / Zero 2 W, 64-bit OS"),
    "armv7": CrossTarget("armv7", "arm-linux-musleabihf", "cortex_a7", "neon",
                         "Pi 2 / 3 / Zero 2 W, 32-bit Raspberry Pi OS", libc_mcpu="arm1176jzf_s"),
    "armv6": CrossTarget("armv6", "arm-linux-musleabihf", "arm1176jzf_s", "armv6", "Pi Zero / Zero W / Pi 1"),
}
_lock = threading.Lock()


def target_of(name: str) -> CrossTarget:
    """The cross target `name`; BadInputError naming the choices otherwise."""
    if name not in TARGETS:
        raise BadInputError(f"unknown cross target {name!r} (choose one of {', '.join(TARGETS)})")
    return TARGETS[name]


def zig_unavailable() -> str | None:
    """None when `python -m ziglang` can run, else a one-line reason with the install command."""
    if importlib.util.find_spec("ziglang") is None:
        return f"zig not found: {INSTALL_ZIG}"
    try:
        zig_version()
    except MissingToolError as e:
        return str(e)
    return None


def zig_command() -> list[str]:
    """The zig executable as a command prefix (the ziglang package's module entry point)."""
    return [sys.executable, "-m", "ziglang"]


@functools.lru_cache(maxsize=1)
def zig_version() -> str:
    """zig's version string; MissingToolError when it does not run."""
    try:
        r = subprocess.run([*zig_command(), "version"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise MissingToolError(f"zig does not run ({e}): {INSTALL_ZIG}") from None
    if r.returncode != 0:
        raise MissingToolError(f"zig does not run ({r.stderr.strip()[:200]}): {INSTALL_ZIG}")
    return r.stdout.strip()


def _zig_env() -> dict[str, str]:
    """The environment for zig: its caches in one place (never a zig-cache/ in the working directory)."""
    env = dict(os.environ)
    glob = env.get("ZIG_GLOBAL_CACHE_DIR") or str(cache_dir("zig"))
    env["ZIG_GLOBAL_CACHE_DIR"] = glob
    env.setdefault("ZIG_LOCAL_CACHE_DIR", glob)
    return env


def compile_commands(target: CrossTarget, sources: list[Path], out: Path, objdir: Path) -> list[list[str]]:
    """The zig cc command lines that build `sources` into the static executable `out` for `target`.

    One command (compile and link) normally; with target.libc_mcpu, one `-c` per source into objdir
    (our code for target.mcpu) and a link step against the libc built for libc_mcpu."""
    zcc = [*zig_command(), "cc", "-target", target.triple]
    inc = ["-I", str(INCLUDE_DIR), "-I", str(SRC_DIR)]
    if target.libc_mcpu is None:
        return [[*zcc, f"-mcpu={target.mcpu}", *CFLAGS, *inc, *map(str, sources), "-o", str(out)]]
    objs = [objdir / f"{i}_{p.stem}.o" for i, p in enumerate(sources)]
    cmds = [[*zcc, f"-mcpu={target.mcpu}", *CFLAGS, *inc, "-c", str(p), "-o", str(o)]
            for p, o in zip(sources, objs, strict=True)]
    return [*cmds, [*zcc, f"-mcpu={target.libc_mcpu}", *CFLAGS, *map(str, objs), "-o", str(out)]]


def _key(target: CrossTarget, sources: list[Path]) -> str:
    h = hashlib.sha256("\0".join((target.triple, target.mcpu, str(target.libc_mcpu), *CFLAGS,
                                   zig_version())).encode())
    for p in [*sources, *sorted(SRC_DIR.glob("*.h")), *sorted(INCLUDE_DIR.glob("*.h"))]:
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def _compile(target: CrossTarget, sources: list[Path], out: Path) -> None:
    """Build into a temporary sibling of `out`, then rename. Post: `out` is a complete executable."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        with tempfile.TemporaryDirectory(prefix="bnn-zig-") as objdir:
            for cmd in compile_commands(target, sources, Path(tmp), Path(objdir)):
                r = subprocess.run(cmd, capture_output=True, text=True, env=_zig_env())
                if r.returncode != 0:
                    first = next((ln for ln in r.stderr.splitlines() if "error" in ln), r.stderr.strip()[:300])
                    raise BadInputError(f"cross build for {target.name} failed: {first} (command: {' '.join(cmd)})")
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def build(target_name: str, sources: list[Path], name: str) -> Path:
    """The static executable `name` built from `sources` for `target_name`, from the cache when unchanged.

    Raises MissingToolError when zig is missing, BadInputError when the build fails.
    """
    target = target_of(target_name)
    why = zig_unavailable()
    if why:
        raise MissingToolError(why)
    out = cache_dir("cpu", f"{target.name}-{_key(target, sources)}", name)
    with _lock:
        if not out.is_file():
            _compile(target, sources, out)
    return out


def build_runner(target_name: str) -> Path:
    """The static command-line runner bnn_run (runtime/src/runner.c) for `target_name`: a Pi target (zig, on
    first use, then cached; also what pi-bench copies to a Pi), or "host" (an x86_64 machine, gcc)."""
    if target_name == "host":
        return _build_host_static_runner()
    target = target_of(target_name)
    return build(target_name, [*runtime_sources(target.kernels), RUNNER], "bnn_run")


def _build_host_static_runner() -> Path:
    """A static x86_64 bnn_run for another x86 machine (pi-bench --host on an x86 box), built with gcc and
    `-march=x86-64-v3` (AVX2, any x86 CPU since 2015), not -march=native: the remote CPU is not this one.
    Cached like the cross builds, by a hash of the command and every source (cpu/x86_64-static-<hash>/).
    """
    if shutil.which("gcc") is None:
        raise MissingToolError("gcc not found: the x86_64 runner is built with gcc (apt-get install gcc)")
    flags = ["-O3", "-march=x86-64-v3", "-std=c11", "-pthread", "-static", "-I", str(INCLUDE_DIR), "-I", str(SRC_DIR)]
    h = hashlib.sha256("\0".join(flags).encode())
    for src in all_sources():
        h.update(src.name.encode() + b"\0" + src.read_bytes())
    cache = cache_dir("cpu")
    out = cache / f"x86_64-static-{h.hexdigest()[:16]}" / "bnn_run"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".bnn_run.{os.getpid()}")
    r = subprocess.run(["gcc", *flags, *map(str, [*runtime_sources("x86"), RUNNER]), "-o", str(tmp)],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise MissingToolError(f"building the static x86_64 runner failed ({r.stderr.strip()[-200:]}); "
                               "install the static C library (apt-get install libc6-dev)")
    os.replace(tmp, out)  # atomic: a concurrent build gives the same file
    return out



def kernel_check_sources(kernels: str) -> list[Path]:
    """kernel_check.c with the reference kernels, the fused convolution and the `kernels` family's file."""
    opt = [p for p in runtime_sources(kernels) if p.name.startswith("kernels_") and p.name != "kernels_ref.c"]
    return [KERNEL_CHECK, SRC_DIR / "kernels_ref.c", SRC_DIR / "conv.c", *opt]


def build_kernel_check(target_name: str) -> Path:
    """The static kernel_check for `target_name` (its own kernel family against the reference)."""
    return build(target_name, kernel_check_sources(target_of(target_name).kernels), "kernel_check")
