"""Multi-bit hidden layers (issue #12, "Multi-bit layers"): n-bit activations become FINN-style multi-thresholds
(2^n - 1 integer thresholds per channel, out = lowest level + thresholds reached), n-bit weights integer MVAUs.

Models built with Brevitas's own quantizers (QuantIdentity / QuantReLU / QuantHardTanh at 2 and 4 bits, signed and
unsigned, constant and learned scales; 1/2/4-bit weights, per tensor and per channel; zero-padded n-bit maps,
integer max-pools, a ReLU before a signed quantizer, sign and n-bit layers mixed) and FINN's own CNV-W1A2,
CNV-W2A2 and LFC-W1A2 (brevitas_examples.bnn_pynq, random weights, randomized BatchNorm with negative and zero
gammas). Compiled, golden must give torch's labels on every image off a rounding tie, the streamlined and dataflow
graphs golden's integers, and the C runtime (optimized and reference kernels, both thread modes; slow: the qemu Pi
targets) golden's integers bit for bit.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from brevitas.nn import QuantConv2d, QuantHardTanh, QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import (
    Int8ActPerTensorFloat,
    Int8WeightPerChannelFloat,
    Int8WeightPerTensorFloat,
    SignedBinaryActPerTensorConst,
    SignedBinaryWeightPerTensorConst,
)
from brevitas_examples.bnn_pynq.models.common import CommonActQuant
from torch import nn

from bnn_flow.backends import registry
from bnn_flow.backends.cpu.binding import CpuModel
from bnn_flow.backends.cpu.pack import pack_build, read_entries, read_header
from bnn_flow.backends.hls import csim
from bnn_flow.backends.rtl import simbuild
from bnn_flow.build import Build
from bnn_flow.compiler import CompileConfig, compile_model, execute_step_model, outputs_as_scores
from bnn_flow.conventions import multithresholds_from_affine
from bnn_flow.errors import BadInputError
from bnn_flow.export import export_qonnx_file
from bnn_flow.golden import GoldenModel
from bnn_flow.nets.nonuniform import NonuniformActQuant
from bnn_flow.ops import reference as ref
from bnn_flow.plan import MultiThresholdMvau
from bnn_flow.qonnx_exec import load_qonnx
from bnn_flow.testing import (
    assert_golden_gives_torch_labels,
    compile_net,
    fold_randomly,
    nontrivial_tensor_norm,
    randomize_bn,
)


def ternary():  # FINN's A2: constant scale 1, narrow 2-bit signed, levels {-1, 0, 1}
    return QuantIdentity(act_quant=CommonActQuant, bit_width=2)


def relu2():  # unsigned 2-bit with a learned scale (Brevitas' Uint8ActPerTensorFloat at 2 bits)
    return QuantReLU(bit_width=2)


def hardtanh4():  # signed 4-bit, learned scale
    return QuantHardTanh(bit_width=4, max_val=1.0, min_val=-1.0)


def relu_then_signed4():  # a ReLU before a signed quantizer: the lowest level becomes 0
    return nn.Sequential(nn.ReLU(), QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=4))


def sign():
    return QuantIdentity(act_quant=SignedBinaryActPerTensorConst)


def enq2():  # nonuniform (issue #12, ENQ/KNQ): levels {0, 1, 2, 4} x a running scale
    return NonuniformActQuant(2, "enq")


def knq4():  # 16 k-means levels on a 64-step grid
    return NonuniformActQuant(4, "knq")


class W2(Int8WeightPerChannelFloat):
    bit_width = 2


class W4(Int8WeightPerTensorFloat):
    bit_width = 4


class NBitNet(nn.Module):
    """conv 3x3 -> BN -> act1, conv 3x3 (padding `pad`) -> BN -> act2, max-pool 2, FC -> BN -> act3, FC."""

    def __init__(self, acts, wq=SignedBinaryWeightPerTensorConst, pad: int = 0, c: int = 8):
        super().__init__()
        self.input_shape = (1, 8, 8)
        self.inp = QuantIdentity(act_quant=Int8ActPerTensorFloat)
        self.c1 = QuantConv2d(1, c, 3, weight_quant=wq, bias=False)
        self.bn1, self.a1 = nn.BatchNorm2d(c), acts[0]()
        self.c2 = QuantConv2d(c, c, 3, weight_quant=wq, bias=False, padding=pad)
        self.bn2, self.a2 = nn.BatchNorm2d(c), acts[1]()
        self.pool = nn.MaxPool2d(2)
        side = (6 + 2 * pad - 2) // 2
        self.fc1 = QuantLinear(c * side * side, 16, weight_quant=wq, bias=False)
        self.bn3, self.a3 = nn.BatchNorm1d(16), acts[2]()
        self.fc2 = QuantLinear(16, 10, weight_quant=wq, bias=False)

    def forward(self, x):
        x = self.a1(self.bn1(self.c1(self.inp(x))))
        x = self.pool(self.a2(self.bn2(self.c2(x))))
        x = self.a3(self.bn3(self.fc1(x.flatten(1))))
        return self.fc2(x)


CASES = {
    "w1a2-ternary": dict(acts=(ternary, ternary, ternary)),
    "w2a2-relu-learned-zero-padded": dict(acts=(relu2, relu2, relu2), wq=W2, pad=1),
    "w4a4-hardtanh": dict(acts=(hardtanh4, hardtanh4, hardtanh4), wq=W4),
    "relu-then-signed": dict(acts=(relu_then_signed4, relu2, relu_then_signed4), wq=W4, pad=1),
    "sign-and-nbit-mixed": dict(acts=(sign, relu2, sign)),  # bits -> 2-bit -> bits
    "a2-enq": dict(acts=(enq2, enq2, enq2)),
    "w2a4-knq-zero-padded-mixed": dict(acts=(knq4, knq4, relu2), wq=W2, pad=1),
}
NONUNIFORM = ("a2-enq", "w2a4-knq-zero-padded-mixed")


def make_net(case: str) -> NBitNet:
    torch.manual_seed(0)
    net = NBitNet(**CASES[case]).train()
    with torch.no_grad():  # a few batches: Brevitas initialises the statistics-based scales
        net(torch.rand(64, 1, 8, 8))
    net = randomize_bn(net)
    quantizers = [m for m in net.modules() if isinstance(m, NonuniformActQuant)]
    with torch.no_grad():  # the nonuniform quantizers' running statistics, on the randomized BatchNorms' outputs
        for m in quantizers:
            m.train()
        for _ in range(30 if quantizers else 0):
            net(torch.rand(64, 1, 8, 8))
    return net.eval()


def images(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 1, 8, 8), dtype=np.float32)


@pytest.fixture(scope="module", params=list(CASES))
def compiled(request, tmp_path_factory) -> tuple[str, NBitNet, Path]:
    net = make_net(request.param)
    return request.param, net, compile_net(net, tmp_path_factory.mktemp(request.param), "m").path


def test_golden_gives_torchs_labels_off_ties(compiled):
    _, net, build = compiled
    assert_golden_gives_torch_labels(build, net, images(200))


def test_hidden_layers_are_multi_threshold_mvaus(compiled):
    case, _, build = compiled
    plan = Build(build).plan()
    nbit = [m for m in plan.mvaus if isinstance(m, MultiThresholdMvau)]
    assert len(nbit) == (1 if case == "sign-and-nbit-mixed" else 3)
    for m in nbit:
        assert m.thresholds.shape == (m.mh, m.levels) and np.all(np.diff(m.thresholds, axis=1) >= 0)
        assert m.act_dtype.min <= m.out_offset and m.out_offset + m.levels <= m.act_dtype.max


@pytest.mark.parametrize("bitplane", ["0", "1"])
def test_integer_graphs_and_cpu_equal_golden(compiled, bitplane, monkeypatch):
    """Also both ways of the optimized path's integer layers on few-bit inputs: the family's integer kernel and
    the bit-plane passes (runtime/src/bitplane.c; BNN_BITPLANE, read at load)."""
    monkeypatch.setenv("BNN_BITPLANE", bitplane)
    _, _, build = compiled
    x = images(64, seed=2)
    g = GoldenModel(build)
    want = g.run_integer(x)
    for step in ("02_streamline", "05_dataflow"):
        m = load_qonnx(build / f"{step}.onnx")
        _, got = outputs_as_scores(m, execute_step_model(m, x[:16]))
        np.testing.assert_array_equal(got, g.to_dot(want[:16]), err_msg=step)
    if registry.target("cpu").available() is not None:
        pytest.skip(registry.target("cpu").available())
    path, q = pack_build(Build(build)), g.spec.apply(x)
    assert read_header(path.read_bytes())["version"] == 3
    for reference in (False, True):
        for threads, n in ((1, 64), (2, 64), (2, 1)):  # images split, then one image's layers split
            m = CpuModel(path, threads=threads, reference=reference, thread_grain=0)
            np.testing.assert_array_equal(m.run_integer(q[:n]), want[:n], err_msg=f"{reference} {threads} {n}")


@pytest.mark.slow
@pytest.mark.parametrize("target", ["aarch64", "armv7", "armv6"])
@pytest.mark.parametrize("bitplane", ["0", "1"])
def test_pi_targets_equal_golden(compiled, target, bitplane, monkeypatch):
    monkeypatch.setenv("BNN_BITPLANE", bitplane)  # qemu-user passes the environment on
    _, _, build = compiled
    backend = registry.target(target)
    if backend.available() is not None:
        pytest.skip(backend.available())
    x = images(8, seed=3)
    g = GoldenModel(build)
    np.testing.assert_array_equal(backend.run_integer(Build(build), g.spec.apply(x)), g.run_integer(x))


@pytest.mark.parametrize("synthesizable", [False, True])
def test_hls_csim_equals_golden_folded(compiled, synthesizable, monkeypatch, tmp_path):
    """The MVAU template's LEVELS thresholds per lane (fast C-simulation and the synthesizable loops,
    -DBNN_NO_FAST_CSIM), integer windows / max-pools of n-bit maps, at a random folding."""
    if csim.available():
        pytest.skip(csim.available())
    if synthesizable:
        monkeypatch.setattr(csim, "BASE_FLAGS", [*csim.BASE_FLAGS, "-DBNN_NO_FAST_CSIM"])
    case, _, src = compiled
    build = tmp_path / "b"
    shutil.copytree(src, build)
    fold_randomly(build, seed=len(case))
    x = images(4, seed=3)
    g = GoldenModel(build)
    np.testing.assert_array_equal(registry.target("csim").run_integer(Build(build), g.spec.apply(x)),
                                  g.run_integer(x))


def test_rtl_equals_golden_folded(compiled, tmp_path):
    """bnn_mvau's LEVELS thresholds per lane (one wide threshold word, the count of those reached), bnn_window and
    bnn_maxpool on n-bit maps, at a random folding, in Verilator."""
    if simbuild.tool_missing():
        pytest.skip(simbuild.tool_missing())
    case, _, src = compiled
    build = tmp_path / "b"
    shutil.copytree(src, build)
    fold_randomly(build, seed=10 + len(case))
    x = images(3, seed=4)
    g = GoldenModel(build)
    np.testing.assert_array_equal(registry.target("rtl").run_integer(Build(build), g.spec.apply(x)),
                                  g.run_integer(x))


# --- FINN's multi-bit reference nets ------------------------------------------------------------------------

def _finn_net(which: str) -> tuple[nn.Module, int, int]:
    from brevitas_examples.bnn_pynq import models

    net = nontrivial_tensor_norm(getattr(models, which)(pretrained=False))
    c, s = (3, 32) if which.startswith("cnv") else (1, 28)
    return randomize_bn(net), c, s


@pytest.mark.parametrize("which", ["cnv_1w2a", "cnv_2w2a", "lfc_1w2a"])
def test_finn_multibit_nets_compile_and_run_exactly(which, tmp_path):
    from brevitas.export import export_qonnx

    net, c, s = _finn_net(which)
    export_qonnx(net, input_t=torch.zeros(1, c, s, s), export_path=str(tmp_path / "m.onnx"), dynamo=False)
    compile_model(tmp_path / "m.onnx", tmp_path / "build", CompileConfig())
    g = GoldenModel(tmp_path / "build")
    x = np.random.default_rng(0).random((16, c, s, s), dtype=np.float32)
    with torch.no_grad():
        torch_scores = net(torch.from_numpy(x)).numpy()
    scores, labels = g.run(x)
    np.testing.assert_array_equal(labels, torch_scores.argmax(1))
    np.testing.assert_allclose(scores, torch_scores, rtol=1e-5, atol=1e-4)
    assert sum(isinstance(m, MultiThresholdMvau) for m in g.plan.mvaus) == len(g.plan.mvaus) - 1
    for target in ("cpu", "csim"):
        backend = registry.target(target)
        if backend.available() is None:
            got = backend.run_integer(Build(tmp_path / "build"), g.spec.apply(x[:4]))
            np.testing.assert_array_equal(got, g.run_integer(x[:4]), err_msg=target)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["cnv_1w2a", "cnv_2w2a", "lfc_1w2a"])
def test_finn_multibit_nets_on_rtl_and_pi_targets(which, tmp_path):
    """The same nets folded at random in Verilator, and on the qemu Pi targets."""
    from brevitas.export import export_qonnx

    net, c, s = _finn_net(which)
    export_qonnx(net, input_t=torch.zeros(1, c, s, s), export_path=str(tmp_path / "m.onnx"), dynamo=False)
    compile_model(tmp_path / "m.onnx", tmp_path / "build", CompileConfig())
    fold_randomly(tmp_path / "build", seed=0)
    g = GoldenModel(tmp_path / "build")
    x = np.random.default_rng(1).random((2, c, s, s), dtype=np.float32)
    for target in ("rtl", "aarch64", "armv7", "armv6"):
        backend = registry.target(target)
        if backend.available() is None:
            got = backend.run_integer(Build(tmp_path / "build"), g.spec.apply(x))
            np.testing.assert_array_equal(got, g.run_integer(x), err_msg=target)


# --- the numbers underneath -----------------------------------------------------------------------------------

@pytest.mark.parametrize("levels", [range(-1, 2), range(0, 4), range(-8, 8), range(0, 16)])
def test_multithresholds_equal_torch_rounding_on_every_accumulator(levels):
    """q = clamp(round_half_even(scale * acc + bias)) for every acc in the range, scales of both signs and zero,
    biases that put accumulators exactly on the .5 ties (both parities)."""
    rng = np.random.default_rng(0)
    lo, hi = np.full(12, -40), np.full(12, 40)
    scale = np.array([0.5, 0.25, -0.5, 0.0, 0.0, 1.0, -1.0, 0.1, -0.37, 2.0, 0.125, 3.0])
    bias = np.array([0.0, 0.5, 0.25, 1.5, -0.7, 0.5, -0.5, rng.random(), rng.random(), -2.5, 0.0625, 1.5])
    th = multithresholds_from_affine(scale, bias, lo, hi, levels)
    acc = np.arange(-40, 41)
    y = torch.from_numpy(scale[None] * acc[:, None] + bias[None])
    want = torch.clamp(torch.round(y), levels.start, levels.stop - 1).numpy().astype(np.int64)
    flipped = np.where(th.flip[None], -acc[:, None], acc[:, None])
    got = ref.multi_threshold(flipped, th.threshold, levels.start)
    np.testing.assert_array_equal(got, want)


def test_integer_maxpool_and_multi_threshold_reference():
    x = np.random.default_rng(0).integers(-8, 8, size=(2, 4, 6, 3))
    np.testing.assert_array_equal(ref.maxpool_ints(x, (2, 2), (2, 2)),
                                  x.reshape(2, 2, 2, 3, 2, 3).max(axis=(2, 4)))
    acc, t = np.array([[-5, 0, 7]]), np.array([[-1, 0, 1], [0, 0, 0], [8, 9, 10]])
    np.testing.assert_array_equal(ref.multi_threshold(acc, t, -2), [[-2, 1, -2]])


# --- refused, in one line ---------------------------------------------------------------------------------

class AsymmetricAct(Int8ActPerTensorFloat):
    bit_width = 4


def _error(tmp_path: Path, mutate) -> str:
    export_qonnx_file(make_net("w4a4-hardtanh"), tmp_path / "m.onnx")
    m = load_qonnx(tmp_path / "m.onnx")
    act = next(n for n in m.graph.node if n.op_type == "Quant" and m.get_initializer(n.input[0]) is None
               and m.find_producer(n.input[0]) is not None)
    mutate(m, act)
    m.save(str(tmp_path / "bad.onnx"))
    with pytest.raises(BadInputError) as e:
        compile_model(tmp_path / "bad.onnx", Build(tmp_path / "b"), CompileConfig())
    assert "\n" not in str(e.value) and "(Quant)" in str(e.value)
    return str(e.value)


def test_unsupported_activation_quantizers_are_refused(tmp_path):
    def zero_point(m, act):
        m.set_initializer(act.input[2], np.array(1.0, dtype=np.float32))

    def floor(m, act):
        from qonnx.custom_op.registry import getCustomOp

        getCustomOp(act).set_nodeattr("rounding_mode", "FLOOR")

    def per_channel(m, act):
        m.set_initializer(act.input[1], np.linspace(0.1, 0.2, 8, dtype=np.float32).reshape(1, 8, 1, 1))

    def sixteen_bits(m, act):
        m.set_initializer(act.input[3], np.array(16.0, dtype=np.float32))

    assert "zero point" in _error(tmp_path / "a", zero_point)
    assert "rounding mode" in _error(tmp_path / "b", floor)
    assert "one positive number per tensor" in _error(tmp_path / "c", per_channel)
    assert "2 to 8 bits" in _error(tmp_path / "d", sixteen_bits)


def test_old_format_versions_cannot_hold_nbit_activations(compiled, tmp_path):
    """The loader reads levels only from version 3 files: the same bytes marked version 2 are refused."""
    _, _, build = compiled
    if registry.target("cpu").available() is not None:
        pytest.skip(registry.target("cpu").available())
    import struct
    import zlib

    data = bytearray(pack_build(Build(build)).read_bytes())
    assert any(e["levels"] for e in read_entries(bytes(data)))
    struct.pack_into("<H", data, 4, 2)
    struct.pack_into("<I", data, len(data) - 4, zlib.crc32(bytes(data[:-4])) & 0xFFFFFFFF)
    with pytest.raises(BadInputError, match="n-bit activation|max-pool"):
        CpuModel(data=bytes(data))
