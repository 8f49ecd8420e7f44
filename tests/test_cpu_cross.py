"""The cross-built runtime (zig, static musl) under qemu-user vs the golden model, for every ARM target.

Small random nets (random BatchNorm statistics, so thresholds are not trivial) cover an integer first layer
(8-bit), a bits-input first layer, valid and one-padded 3x3 convolutions, max-pools, channel counts that
are not multiples of 64 and rows longer than one 128-bit NEON step. Every ARM target must give exactly
the golden model's last-layer integers. Skipped, with the reason, where zig or qemu-user is missing.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from bnn_flow.backends.cpu import cross, toolchain
from bnn_flow.backends.cpu.pack import pack_build
from bnn_flow.compiler import CompileConfig, compile_model
from bnn_flow.errors import CheckFailedError, MissingToolError
from bnn_flow.export import export_qonnx_file
from bnn_flow.golden import GoldenModel
from bnn_flow.nets import build_net
from bnn_flow.run import run_integer


def _helpers(name: str):
    spec = importlib.util.spec_from_file_location(f"_{name}_helpers", Path(__file__).parent / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


_h = _helpers("test_golden")
_rand = _helpers("test_pipeline_random")

ARM = list(toolchain.TARGETS)
ZIG_CACHE = Path(tempfile.gettempdir()) / "bnn-flow-zig-cache"  # zig's musl build (~1 min/target) is reused
# (arch, in_channels, image_size, in_bits, width): integer and bits first layers, valid and padded convs
NETS = {"tfc-bits": ("tfc", 1, 28, 1, 0.5), "cnv": ("cnv", 3, 32, 8, 0.5), "bcnn": ("bcnn", 1, 28, 8, 0.375)}
# odd map sizes (13 -> 7 -> 3), stride 2, channel counts just above 64, an FC of 129: every kernel tail
ODD = _rand.Case("unit", 8, 2, 13, (_rand.Block(65, 1, 2, False), _rand.Block(70, 1, 1, True)), (129,), 7, 3)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    """One bnn-flow cache for the module, so each target's runner is built once (HOME changes per test)."""
    return tmp_path_factory.mktemp("cross-cache")


@pytest.fixture(autouse=True)
def _caches(monkeypatch, cache_dir):
    monkeypatch.setenv("ZIG_GLOBAL_CACHE_DIR", str(ZIG_CACHE))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_dir))


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict[str, tuple[Path, tuple[int, int, int]]]:
    out = {}
    for i, (name, (arch, c, s, in_bits, width)) in enumerate(NETS.items()):
        root = tmp_path_factory.mktemp(name)
        net = _h.randomize_bn(build_net(arch, num_classes=10, in_channels=c, image_size=s, width=width,
                                        in_bits=in_bits), seed=i)
        export_qonnx_file(net, root / "m.onnx")
        compile_model(root / "m.onnx", root / "build", CompileConfig())
        out[name] = (root / "build", (c, s, s))
    out["odd"] = (_rand.compile_net(_rand.build(ODD), tmp_path_factory.mktemp("odd")), (ODD.c_in, ODD.size, ODD.size))
    return out


def _skip_unless(target: str) -> None:
    why = cross.available(target)
    if why:
        pytest.skip(why)


@pytest.mark.parametrize("fuse", ["0", "1"])
@pytest.mark.parametrize("target", ARM)
def test_full_nets_bit_exact_under_qemu(request, target, fuse, monkeypatch):
    """Fused binary convolutions off and forced on (BNN_FUSE; qemu-user passes the environment on)."""
    _skip_unless(target)
    monkeypatch.setenv("BNN_FUSE", fuse)
    builds = request.getfixturevalue("builds")  # compiled only where a target can run
    rng = np.random.default_rng(7)
    for name, (build, chw) in builds.items():
        x = rng.random((12, *chw), dtype=np.float32)
        x[0] = 0.0  # extremes of the input range
        x[1] = 1.0
        got = run_integer(build, target, x)
        want = GoldenModel(build).run_integer(x)
        assert got.dtype == np.int64 and got.shape == want.shape, name
        np.testing.assert_array_equal(got, want, err_msg=f"{name} on {target}")
        assert len(np.unique(want)) > 5, name  # a degenerate net would prove little


@pytest.mark.parametrize("target", ARM)
def test_layer_split_threads_bit_exact_under_qemu(request, target, tmp_path):
    """Fewer images than threads: every layer split across threads that meet at the spinning barrier (split.c,
    C11 atomics: ldrex/strex on ARMv6, ldaxr/stlxr on aarch64), and the image-split mode beside it."""
    _skip_unless(target)
    build, chw = request.getfixturevalue("builds")["cnv"]
    x = np.random.default_rng(11).random((2, *chw), dtype=np.float32)
    golden = GoldenModel(build)
    golden.spec.apply(x).astype("<i2").tofile(tmp_path / "in.bin")
    for threads in (3, 2):  # 2 images on 3 threads: layer split; on 2: one image each
        cross.run_runner(target, pack_build(build), tmp_path / "in.bin", tmp_path / "out.bin", threads=threads,
                         grain=0)  # the small net is under one thread's grain
        got = np.fromfile(tmp_path / "out.bin", "<i4").reshape(len(x), -1)
        np.testing.assert_array_equal(got, golden.run_integer(x), err_msg=f"{threads} threads on {target}")


def test_runner_is_cached_and_rebuilt_on_change(monkeypatch):
    _skip_unless("armv6")
    first = toolchain.build_runner("armv6")
    stamp = first.stat().st_mtime_ns
    assert toolchain.build_runner("armv6") == first and first.stat().st_mtime_ns == stamp
    assert first.parent.name.startswith("armv6-") and first.parent.parent.name == "cpu"
    monkeypatch.setattr(toolchain, "CFLAGS", (*toolchain.CFLAGS, "-DBNN_CACHE_TEST=1"))
    second = toolchain.build_runner("armv6")
    assert second != first and second.is_file() and os.access(second, os.X_OK)
    assert not list(first.parent.glob(".bnn_run.*"))  # no temporary left behind


def test_bad_model_file_is_one_line_check_failure(tmp_path):
    _skip_unless("aarch64")
    bad, inp, out = tmp_path / "bad.bnn", tmp_path / "in.bin", tmp_path / "out.bin"
    bad.write_bytes(b"BNNF" + b"\0" * 100)
    inp.write_bytes(b"\0" * 8)
    with pytest.raises(CheckFailedError, match=r"bnn_run on aarch64 .*failed with exit 2: .*bad\.bnn"):
        cross.run_runner("aarch64", bad, inp, out)


def test_missing_qemu_or_zig_is_reported(monkeypatch):
    monkeypatch.setattr(cross.shutil, "which", lambda name: None)
    if toolchain.zig_unavailable() is None:
        assert "qemu-arm not found: apt-get install qemu-user" in cross.available("armv6")
        with pytest.raises(MissingToolError, match="qemu-aarch64 not found"):
            cross.run_runner("aarch64", Path("m.bnn"), Path("i.bin"), Path("o.bin"))
    monkeypatch.setattr(toolchain.importlib.util, "find_spec", lambda name: None)
    assert "pip install ziglang" in cross.available("aarch64")
    assert cross.available("mips").startswith("unknown cross target")
