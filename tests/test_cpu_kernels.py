"""Every optimized C kernel against its reference (runtime/tests/kernel_check.c) on every kernel family.

Natively with gcc: the x86 variants this CPU can execute, the generic file, and the ARMv6 file (portable C
apart from guarded SIMD32 intrinsics). Cross-built with zig and run under qemu-user: aarch64 NEON,
ARMv7 NEON, ARMv6 SWAR (skipped, with the reason, where zig or qemu is missing; CI installs both).
A deliberately wrong kernel must make kernel_check fail, so the check itself is tested too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from bnn_flow.backends.cpu import cross, toolchain
from bnn_flow.backends.cpu.sources import INCLUDE_DIR, SRC_DIR
from bnn_flow.errors import CheckFailedError

SUMMARY = re.compile(r"kernel_check (\S+): mvau_binary (\d+) mvau_integer (\d+) window_bits (\d+) maxpool_bits (\d+) "
                     r"conv_binary (\d+) pack_planes (\d+) \| (\d+) cases, (\d+) mismatches")
ZIG_CACHE = Path(tempfile.gettempdir()) / "bnn-flow-zig-cache"  # zig's musl build (~1 min/target) is reused


@pytest.fixture(autouse=True)
def _zig_cache(monkeypatch):
    monkeypatch.setenv("ZIG_GLOBAL_CACHE_DIR", str(ZIG_CACHE))


def _check_summary(text: str, family: str) -> None:
    m = SUMMARY.search(text)
    assert m, text
    assert m.group(1) == family
    per_kernel = [int(m.group(i)) for i in range(2, 8)]
    assert min(per_kernel) > 100 and sum(per_kernel) == int(m.group(8))
    assert m.group(9) == "0"


def _build_native(tmp_path: Path, opt: Path, flags: tuple[str, ...] = ("-Werror",)) -> Path:
    exe = tmp_path / f"kernel_check_{opt.stem}"
    cmd = ["gcc", "-O2", "-std=c11", "-Wall", "-Wextra", *flags, "-I", str(INCLUDE_DIR), "-I", str(SRC_DIR),
           str(toolchain.KERNEL_CHECK), str(SRC_DIR / "kernels_ref.c"), str(SRC_DIR / "conv.c"), str(opt), "-o",
           str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return exe


def _cpu_flags() -> set[str]:
    try:
        return set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return set()


W = "-Werror"
NATIVE = [("kernels_opt_generic.c", (W,), "generic"), ("kernels_armv6.c", (W,), "armv6-swar"),
          ("kernels_x86.c", (W, "-march=x86-64", "-mpopcnt"), "x86-64"),
          ("kernels_x86.c", (W, "-mavx2", "-mpopcnt"), "x86-avx2"),
          ("kernels_x86.c", (W, "-mavx512f", "-mavx512vl", "-mavx512bw", "-mavx512vpopcntdq", "-mavx2", "-mpopcnt"),
           "x86-avx512-vpopcntdq")]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not found (apt-get install gcc)")
@pytest.mark.parametrize("src,flags,family", NATIVE, ids=[n[2] for n in NATIVE])
def test_kernel_check_native(tmp_path, src, flags, family):
    import platform

    if src == "kernels_x86.c":
        if platform.machine().lower() not in ("x86_64", "amd64"):
            pytest.skip("x86 kernels need an x86-64 host")
        need = {"x86-avx2": {"avx2"}, "x86-avx512-vpopcntdq": {"avx512f", "avx512_vpopcntdq"}}.get(family, set())
        if not need <= _cpu_flags():
            pytest.skip(f"this CPU lacks {', '.join(sorted(need - _cpu_flags()))}")
    if not (SRC_DIR / src).is_file():
        pytest.skip(f"{src} not written yet")
    r = subprocess.run([str(_build_native(tmp_path, SRC_DIR / src, flags))], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    name = r.stdout.split(":")[0].split()[-1]
    if src == "kernels_x86.c":
        assert name.startswith("x86")  # the variant name reflects what was compiled
        family = name
    _check_summary(r.stdout, family)


BROKEN = {
    # a threshold compared with > instead of >=: wrong only where an accumulator equals its threshold
    "threshold_edge": ("if (agree >= thresholds[j]) set_bit", "if (agree > thresholds[j]) set_bit"),
    # the last partial word of a row ignored: wrong only for k not a multiple of 64
    "k_tail": ("for (size_t i = 0; i < kw; i++) diff +=", "for (size_t i = 0; i + (k % 64 != 0) < kw; i++) diff +="),
    # padding pixels always filled with 0 bits: wrong only where the pad value is bit 1
    "pad_bit": ("if (inside ? get_bit(px, ch) : pad_value)", "if (inside ? get_bit(px, ch) : 0)"),
    # a bit plane's popcount short by the last partial word: wrong only for k > 64 not a multiple of 64
    "plane_pop": ("pops[r * planes + b] = pop;", "pops[r * planes + b] = pop - (k > 64 && k % 64);"),
}


# the rest of an optimized file's contract: no load-time integer weight layout
BROKEN_STUBS = """
int bnn_bitplane_native(void) { return 0; }
size_t bnn_mvau_integer_prepared_bytes_opt(size_t mh, size_t k, int32_t lo, int32_t hi) { return 0; }
void bnn_mvau_integer_prepare_opt(size_t mh, size_t k, int32_t lo, int32_t hi, const int8_t *w, void *p) {}
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not found (apt-get install gcc)")
@pytest.mark.parametrize("bug", sorted(BROKEN))
def test_kernel_check_catches_a_wrong_kernel(tmp_path, bug):
    """An 'optimized' file that is the reference with one subtle bug fails kernel_check (exit 1)."""
    ref = (SRC_DIR / "kernels_ref.c").read_text()
    old, new = BROKEN[bug]
    assert old in ref, "the reference changed: update this test's mutation"
    body = ref.replace(old, new)
    for f in ("mvau_binary", "mvau_integer", "window_bits", "window_int", "maxpool_bits", "flatten_bits",
              "pack_planes"):
        body = body.replace(f"bnn_{f}_ref(", f"bnn_{f}_opt(")
    opt = tmp_path / "kernels_broken.c"
    body = body.replace("bnn_conv_binary_ref(", "broken_conv_binary_ref(")  # conv.c is checked on its own
    for f in ("maxpool_int", "multi_threshold"):  # reference-only kernels: the library's own copy serves both
        body = body.replace(f"bnn_{f}_ref(", f"broken_{f}_ref(")
    opt.write_text(body + '\nconst char *bnn_kernels_name(void) { return "broken"; }\n#include "bgemm_scalar.h"\n'
                   + BROKEN_STUBS)
    r = subprocess.run([str(_build_native(tmp_path, opt, ()))], capture_output=True, text=True)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "MISMATCH" in r.stderr and not re.search(r" 0 mismatches", r.stdout)


@pytest.mark.parametrize("target", list(toolchain.TARGETS))
def test_kernel_check_cross_under_qemu(target):
    why = cross.available(target)
    if why:
        pytest.skip(why)
    family = {"aarch64": "aarch64-neon", "armv7": "armv7-neon", "armv6": "armv6-swar"}[target]
    _check_summary(cross.run_kernel_check(target), family)


def test_armv6_binary_faults_on_neon_code_under_arm1176():
    """qemu -cpu arm1176 really lacks NEON: the ARMv7 NEON build must not run there (so armv6 is honest)."""
    why = cross.available("armv6") or cross.available("armv7")
    if why:
        pytest.skip(why)
    exe = toolchain.build_kernel_check("armv7")
    with pytest.raises(CheckFailedError, match="kernel_check on armv6"):
        cross.run_emulated("armv6", exe, ["--quick"], "kernel_check")


CONV_BROKEN = {
    # narrow layers (folded rows): padding pixels always bit 0, wrong only where the pad value is bit 1 (+1)
    "fold_pad_bit": ("const uint64_t pad = v->pad_value ? ones[0] : 0;", "const uint64_t pad = 0;"),
    # the fused 2x2 max-pool reads only the first conv row of its window
    "pool_row": ("a[i] | a[ow_words + i] | b[i] | b[ow_words + i]", "a[i] | a[ow_words + i]"),
}


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not found (apt-get install gcc)")
@pytest.mark.parametrize("bug", sorted(CONV_BROKEN))
def test_kernel_check_catches_a_wrong_fused_conv(tmp_path, bug):
    """The fused convolution (conv.c) with one subtle bug fails kernel_check against its reference."""
    src = (SRC_DIR / "conv.c").read_text()
    old, new = CONV_BROKEN[bug]
    assert old in src, "conv.c changed: update this test's mutation"
    (tmp_path / "conv.c").write_text(src.replace(old, new))
    exe = tmp_path / "kernel_check_conv"
    cmd = ["gcc", "-O2", "-std=c11", "-I", str(INCLUDE_DIR), "-I", str(SRC_DIR), str(toolchain.KERNEL_CHECK),
           str(SRC_DIR / "kernels_ref.c"), str(tmp_path / "conv.c"), str(SRC_DIR / "kernels_opt_generic.c"), "-o",
           str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(exe), "--quick"], capture_output=True, text=True)
    assert r.returncode == 1 and "MISMATCH conv_binary" in r.stderr, r.stdout + r.stderr
