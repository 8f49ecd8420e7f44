"""The C runtime's whole-network output: synthetic plans vs numpy, compiled nets vs GoldenModel, the CLI."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from cpu_fixtures import expected, random_input, random_plan

from bnn_flow import cli
from bnn_flow.backends import registry
from bnn_flow.backends.cpu.binding import CpuModel, host_kernels
from bnn_flow.backends.cpu.pack import MODEL_FILE, pack_build, pack_plan
from bnn_flow.backends.cpu.sources import INCLUDE_DIR, RUNNER, runtime_sources
from bnn_flow.build import Build
from bnn_flow.errors import BadInputError
from bnn_flow.plan import BIT, IntType, Mvau
from bnn_flow.testing import set_folding

U8, I8, I4 = IntType(8, False), IntType(8, True), IntType(4, True)
# (input shape, input type, architecture): channels not multiples of 64, odd sizes, strides, pads 0/1 bits
CASES = {
    "int-conv-pool-pad1": ((11, 9, 3), U8, [("conv", 70, 3, 1, 1, 0), ("conv", 65, 3, 1, 1, 1), ("pool", 2, 2),
                                           ("conv", 130, 3, 2, 1, 1), ("flatten",), ("fc", 33), ("fc", 7)]),
    "int-stride-pad0": ((13, 13, 2), I8, [("conv", 64, 4, 3, 0, 0), ("conv", 128, 3, 1, 1, 0), ("pool", 3, 1),
                                         ("flatten",), ("fc", 10)]),
    "int-1x1-channels": ((5, 7, 1), I4, [("conv", 5, 1, 1, 0, 0), ("conv", 200, 3, 1, 2, 1), ("pool", 2, 2),
                                        ("flatten",), ("fc", 3)]),
    "bits-conv": ((10, 10, 3), BIT, [("conv", 17, 3, 1, 1, 1), ("conv", 64, 3, 1, 0, 0), ("pool", 2, 2),
                                    ("flatten",), ("fc", 65), ("fc", 10)]),
    "bits-fc-tfc": ((7, 7, 1), BIT, [("flatten",), ("fc", 100), ("fc", 64), ("fc", 10)]),
    "int-fc-tfc": ((6, 5, 1), I8, [("flatten",), ("fc", 64), ("fc", 129), ("fc", 5)]),
    # long rows: K beyond the kernels' inner chunks (AVX2 byte-counter flush, integer weight chunks)
    "int-fc-long-k": ((17, 19, 1), U8, [("flatten",), ("fc", 17), ("fc", 4)]),
    "bits-fc-long-k": ((9001,), BIT, [("fc", 20), ("fc", 3)]),
}


@pytest.mark.parametrize("fuse", ["0", "1"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_synthetic_plans_match_numpy(name, fuse, monkeypatch):
    """Fused convolutions forced off and on (BNN_FUSE, read at load time): both equal numpy."""
    monkeypatch.setenv("BNN_FUSE", fuse)
    shape, dtype, arch = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    plan = random_plan(rng, shape, dtype, arch)
    q = random_input(rng, plan, 7)
    want = expected(plan, q)
    data = pack_plan(plan)
    # (threads, images): one thread; threads splitting images; threads splitting each layer (fewer images)
    for threads, n in ((1, 7), (3, 7), (3, 2), (5, 1)):
        for reference in (False, True):
            m = CpuModel(data=data, threads=threads, reference=reference, thread_grain=0)  # tiny nets: all threads
            assert m.threads_used(n) == threads
            got = m.run_integer(q[:n])
            assert np.array_equal(got, want[:n]), (threads, n, reference)
            if not reference:  # every binary convolution fused when asked, none otherwise
                convs = sum(layer[0] == "conv" for layer in arch)
                binary_convs = convs if dtype == BIT else max(convs - 1, 0)  # the first conv of an int net is not
                assert m.layer_fused.count(1) == (binary_convs if fuse == "1" else 0), m.layer_fused
    assert len(np.unique(want)) > 1  # the scores are not trivially constant


def test_input_out_of_range_rejected():
    plan = random_plan(np.random.default_rng(3), (4, 4, 1), U8, [("flatten",), ("fc", 3)])
    m = CpuModel(data=pack_plan(plan))
    with pytest.raises(BadInputError, match="outside"):
        m.run_integer(np.full((1, 4, 4, 1), 256))
    with pytest.raises(BadInputError, match="values per image"):
        m.run_integer(np.zeros((2, 15)))
    acc, total, per_layer = m.run_timed(np.zeros((2, 16), np.int64))
    assert acc.shape == (2, 3) and total > 0 and len(per_layer) == len(m.layer_names) == 2


def _compile_small(tmp_path, arch, c, size, in_bits):
    from test_golden import randomize_bn

    from bnn_flow.export import export_qonnx_file
    from bnn_flow.nets import build_net

    net = randomize_bn(build_net(arch, num_classes=10, in_channels=c, image_size=size, width=0.125,
                                 in_bits=in_bits))
    export_qonnx_file(net, tmp_path / "m.onnx")
    assert cli.main(["compile", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "build")]) == 0
    return tmp_path / "build"


@pytest.fixture(scope="module")
def tfc_bits_build(tmp_path_factory):
    """A compiled TFC (width 0.125) with 1-bit input: the graph takes bits and starts with XNOR layers."""
    return _compile_small(tmp_path_factory.mktemp("tfc"), "tfc", 1, 28, 1)


def _golden_check(build, n, c, size, threads=(1, 3)):
    from bnn_flow.golden import GoldenModel

    g = GoldenModel(build)
    x = np.random.default_rng(5).random((n, c, size, size), dtype=np.float32)
    want = g.run_integer(x)
    for t in threads:
        got = CpuModel(pack_build(build), threads=t, thread_grain=0).run_integer(g.spec.apply(x))
        assert np.array_equal(got, want), t


def test_compiled_tfc_bits_matches_golden(tfc_bits_build):
    _golden_check(tfc_bits_build, 20, 1, 28)


@pytest.mark.parametrize("arch,c,size,in_bits", [("bcnn", 1, 28, 8), ("cnv", 3, 32, 1)])
@pytest.mark.slow
def test_compiled_convnets_match_golden(tmp_path, arch, c, size, in_bits):
    _golden_check(_compile_small(tmp_path, arch, c, size, in_bits), 16, c, size)


def test_pack_build_cached_and_regenerated(tfc_bits_build):
    path = pack_build(tfc_bits_build)
    assert path == tfc_bits_build / "cpu" / MODEL_FILE
    stamp = path.stat().st_mtime_ns
    assert pack_build(tfc_bits_build).stat().st_mtime_ns == stamp  # up to date: not rewritten
    set_folding(tfc_bits_build, {})  # the folding changed: regenerate
    try:
        assert pack_build(tfc_bits_build).read_bytes()[:4] == b"BNNF"
        assert path.stat().st_mtime_ns != stamp
    finally:
        set_folding(tfc_bits_build, None)


def test_cli_run_target_cpu_matches_golden(tfc_bits_build, tmp_path):
    x = np.random.default_rng(9).random((12, 1, 28, 28), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    for target in ("cpu", "golden"):
        assert cli.main(["run", str(tfc_bits_build), "--target", target, "--input", str(tmp_path / "x.npy"),
                         "--output", str(tmp_path / f"{target}.npz")]) == 0
    a, b = np.load(tmp_path / "cpu.npz"), np.load(tmp_path / "golden.npz")
    assert np.array_equal(a["scores"], b["scores"]) and np.array_equal(a["labels"], b["labels"])


def test_backend_module_contract(tfc_bits_build):
    assert registry.target("cpu").available() is None
    assert isinstance(registry.target("armv6").available(), (str, type(None)))
    with pytest.raises(BadInputError, match="expected integer input"):
        registry.target("cpu").run_integer(Build(tfc_bits_build), np.zeros((1, 28, 28, 1), np.float32))


def test_command_line_runner(tmp_path):
    """bnn_run reads raw int16, writes raw int32 equal to the binding's output; bad input: exit 2, one line."""
    exe = tmp_path / "bnn_run"
    subprocess.run(["gcc", "-O2", "-march=native", "-std=c11", "-pthread", "-I", str(INCLUDE_DIR),
                    *map(str, runtime_sources(host_kernels())), str(RUNNER), "-o", str(exe)], check=True)
    shape, dtype, arch = CASES["bits-conv"]
    rng = np.random.default_rng(11)
    plan = random_plan(rng, shape, dtype, arch)
    (tmp_path / "m.bnn").write_bytes(pack_plan(plan))
    q = random_input(rng, plan, 5)
    q.astype("<i2").tofile(tmp_path / "in.bin")
    r = subprocess.run([str(exe), str(tmp_path / "m.bnn"), str(tmp_path / "in.bin"), str(tmp_path / "out.bin"),
                        "--threads", "2", "--grain", "0", "--repeat", "3"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "images/s" in r.stderr
    out = np.fromfile(tmp_path / "out.bin", "<i4").reshape(5, -1)
    assert np.array_equal(out, expected(plan, q))
    (tmp_path / "odd.bin").write_bytes(b"\0" * 7)
    for args in (["odd.bin"], ["in.bin", "--threads", "0"], ["in.bin", "--bogus", "1"], ["in.bin", "--grain", "-1"]):
        r = subprocess.run([str(exe), str(tmp_path / "m.bnn"), str(tmp_path / args[0]), str(tmp_path / "o.bin"),
                            *args[1:]], capture_output=True, text=True)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    q[0, 0, 0, 0] = 2  # not a bit
    q.astype("<i2").tofile(tmp_path / "in.bin")
    r = subprocess.run([str(exe), str(tmp_path / "m.bnn"), str(tmp_path / "in.bin"), str(tmp_path / "o.bin")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "outside" in r.stderr


def _real_images(dataset: str, n: int) -> np.ndarray:
    from conftest import shared_data_dir

    from bnn_flow.data import load_dataset

    if dataset != "mnist-5k" and shared_data_dir() is None:
        pytest.skip("real data sets not present (set BNN_FLOW_DATA)")
    x, _ = load_dataset(dataset, "test", shared_data_dir())
    return (x[:n].astype(np.float32) / 255).transpose(0, 3, 1, 2)


def _real_check(build, dataset, n=1000):
    from bnn_flow.golden import GoldenModel

    x = _real_images(dataset, n)
    g = GoldenModel(build)
    want = g.run_integer(x)
    got = CpuModel(pack_build(build), threads=2).run_integer(g.spec.apply(x))
    assert got.shape == (n, 10) and np.array_equal(got, want)


@pytest.mark.slow
def test_trained_bcnn_bit_exact_on_real_mnist(tiny_run, tmp_path):
    """The session's briefly trained BCNN (MNIST) on 1,000 real test digits: bit-exact with golden."""
    from bnn_flow.export import export_run

    export_run(tiny_run, images=32)
    assert cli.main(["compile", str(tiny_run / "model.onnx"), "--out", str(tmp_path / "build")]) == 0
    _real_check(tmp_path / "build", "mnist")


@pytest.mark.slow
@pytest.mark.parametrize("arch,dataset,c,size", [("tfc", "mnist", 1, 28), ("cnv", "cifar10", 3, 32)])
def test_full_width_nets_bit_exact_on_real_images(tmp_path, arch, dataset, c, size):
    """TFC-W1A1 and CNV-W1A1 (full width, random weights and BN statistics) on 1,000 real test images."""
    from test_golden import randomize_bn

    from bnn_flow.export import export_qonnx_file
    from bnn_flow.nets import build_net

    net = randomize_bn(build_net(arch, num_classes=10, in_channels=c, image_size=size, width=1.0))
    export_qonnx_file(net, tmp_path / "m.onnx")
    assert cli.main(["compile", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "build")]) == 0
    _real_check(tmp_path / "build", dataset)


def test_compiled_cnv_integer_input_matches_golden(tmp_path):
    _golden_check(_compile_small(tmp_path, "cnv", 3, 32, 8), 8, 3, 32)


@pytest.mark.slow
def test_threads_race_free_under_tsan(tmp_path):
    """Both thread modes (split images, split each layer) are free of data races (ThreadSanitizer)."""
    exe = tmp_path / "bnn_run_tsan"
    subprocess.run(["gcc", "-O1", "-g", "-march=native", "-fsanitize=thread", "-std=c11", "-pthread", "-I",
                    str(INCLUDE_DIR), *map(str, runtime_sources(host_kernels())), str(RUNNER), "-o", str(exe)],
                   check=True)
    shape, dtype, arch = CASES["int-conv-pool-pad1"]
    rng = np.random.default_rng(13)
    plan = random_plan(rng, shape, dtype, arch)
    (tmp_path / "m.bnn").write_bytes(pack_plan(plan))
    for n, threads in ((1, 3), (4, 2)):
        q = random_input(rng, plan, n)
        q.astype("<i2").tofile(tmp_path / "in.bin")
        r = subprocess.run([str(exe), str(tmp_path / "m.bnn"), str(tmp_path / "in.bin"), str(tmp_path / "out.bin"),
                            "--threads", str(threads), "--grain", "0"], capture_output=True, text=True)
        assert r.returncode == 0 and "ThreadSanitizer" not in r.stderr, r.stderr
        assert np.array_equal(np.fromfile(tmp_path / "out.bin", "<i4").reshape(n, -1), expected(plan, q))


def test_threads_used_follow_the_work():
    """A run starts one thread per grain of work (binary-MAC equivalents, integer MACs x 8), at least one,
    at most the threads given; grain 0 starts them all. The results never depend on it."""
    shape, dtype, arch = CASES["int-fc-tfc"]
    rng = np.random.default_rng(5)
    plan = random_plan(rng, shape, dtype, arch)
    work = sum(m.mh * m.mw * (1 if m.binary else 8) for m in plan.layers if isinstance(m, Mvau))
    q = random_input(rng, plan, 40)
    want = expected(plan, q)
    assert CpuModel(data=pack_plan(plan), threads=4).threads_used(40) == 1  # far under the default grain
    for grain, images, used in ((0, 1, 4), (work, 1, 1), (work, 3, 3), (work, 40, 4), (2 * work, 5, 2)):
        m = CpuModel(data=pack_plan(plan), threads=4, thread_grain=grain)
        assert m.threads_used(images) == used, (grain, images)
        assert np.array_equal(m.run_integer(q), want), grain
    with pytest.raises(BadInputError, match="thread_grain"):
        CpuModel(data=pack_plan(plan), thread_grain=-1)


@pytest.mark.parametrize("name", ["int-fc-tfc", "bits-fc-tfc"])
def test_flat_nets_in_several_batches(name):
    """Flat nets run BNN_BATCH (32) images per layer call: 70 images = batches of 32, 32 and 6 (and per thread)."""
    shape, dtype, arch = CASES[name]
    rng = np.random.default_rng(11)
    plan = random_plan(rng, shape, dtype, arch)
    q = random_input(rng, plan, 70)
    want = expected(plan, q)
    for threads in (1, 2):
        got = CpuModel(data=pack_plan(plan), threads=threads, thread_grain=0).run_integer(q)
        assert np.array_equal(got, want), threads
