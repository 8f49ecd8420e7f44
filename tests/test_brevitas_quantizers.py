"""Models built with Brevitas's own standard quantizers (not ours): their scales fold into the integer
thresholds or the head (issue #12, "Scales and padding").

Each model: binary weights with a constant per-tensor scale (SignedBinaryWeightPerTensorConst, 0.1), or a
learned per-output-channel scale (mean |w|, XNOR-Net style); sign activations with scale 1 or another one
(SignedBinaryActPerTensorConst at +-0.5, padded with that scaled "one" or with zeros, or with a learned
scale); the input quantized by Int8ActPerTensorFloat (a learned float scale); an 8-bit per-channel first layer
(Int8WeightPerChannelFloat).
Compiled, the golden model must give torch's labels on every image without a threshold tie, its integer
accumulators must equal the streamlined QONNX graph's, and the C runtime (and, slow, csim / rtl / a qemu Pi
target) must equal golden. What does not fold is refused in one line naming the node.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from brevitas.core.scaling import ScalingImplType
from brevitas.core.stats import StatsOp
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
from brevitas.quant import (
    Int8ActPerTensorFloat,
    Int8WeightPerChannelFloat,
    SignedBinaryActPerTensorConst,
    SignedBinaryWeightPerTensorConst,
)
from qonnx.util.cleanup import cleanup_model
from torch import nn

from bnn_flow.backends import registry
from bnn_flow.build import Build
from bnn_flow.compiler import CompileConfig, compile_model, execute_step_model, outputs_as_scores, tie_images
from bnn_flow.errors import BadInputError
from bnn_flow.export import export_qonnx_file
from bnn_flow.golden import GoldenModel
from bnn_flow.qonnx_exec import load_qonnx
from bnn_flow.testing import assert_golden_gives_torch_labels, compile_net, randomize_bn


class BinaryWeightPerChannelFloat(SignedBinaryWeightPerTensorConst):
    """Binary weights scaled per output channel by the mean |w| of the channel (XNOR-Net's alpha)."""

    scaling_impl_type = ScalingImplType.PARAMETER_FROM_STATS
    scaling_stats_op = StatsOp.AVE
    scaling_per_output_channel = True


class HalfBinaryAct(SignedBinaryActPerTensorConst):
    """Sign activations of +-0.5 (the constant scale is the quantizer's max_val)."""

    min_val, max_val = -0.5, 0.5


class LearnedBinaryAct(SignedBinaryActPerTensorConst):
    """Sign activations with a learned per-tensor scale (a parameter, 0.3 at first)."""

    scaling_impl_type = ScalingImplType.PARAMETER
    scaling_init = 0.3


class StandardQuantNet(nn.Module):
    """conv 3x3 -> BN -> sign, [pad with the scaled one] conv 3x3 -> BN -> sign, max-pool, FC -> BN -> sign, FC."""

    def __init__(self, wq=SignedBinaryWeightPerTensorConst, aq=SignedBinaryActPerTensorConst, first_wq=None,
                 pad: float | None = None, c: int = 8):
        super().__init__()
        self.input_shape = (1, 8, 8)
        self.inp = QuantIdentity(act_quant=Int8ActPerTensorFloat)
        self.c1 = QuantConv2d(1, c, 3, weight_quant=first_wq or wq, bias=False)
        self.bn1, self.a1 = nn.BatchNorm2d(c), QuantIdentity(act_quant=aq)
        self.pad = nn.ConstantPad2d(1, pad) if pad is not None else nn.Identity()
        self.c2 = QuantConv2d(c, c, 3, weight_quant=wq, bias=False)
        self.bn2, self.a2 = nn.BatchNorm2d(c), QuantIdentity(act_quant=aq)
        self.pool = nn.MaxPool2d(2)
        side = 3 if pad is not None else 2
        self.fc1 = QuantLinear(c * side * side, 16, weight_quant=wq, bias=False)
        self.bn3, self.a3 = nn.BatchNorm1d(16), QuantIdentity(act_quant=aq)
        self.fc2 = QuantLinear(16, 10, weight_quant=wq, bias=False)

    def forward(self, x):
        x = self.a1(self.bn1(self.c1(self.inp(x))))
        x = self.pool(self.a2(self.bn2(self.c2(self.pad(x)))))
        x = self.a3(self.bn3(self.fc1(x.flatten(1))))
        return self.fc2(x)


CASES = {
    "per-tensor-const": {},
    "per-channel-learned": dict(wq=BinaryWeightPerChannelFloat),
    "act-scale-padded": dict(aq=HalfBinaryAct, pad=0.5),
    "act-scale-learned": dict(aq=LearnedBinaryAct, wq=BinaryWeightPerChannelFloat),
    "int8-per-channel-first": dict(first_wq=Int8WeightPerChannelFloat),
    "zero-padded": dict(pad=0.0),  # per pad class thresholds (transforms/zero_padding.py)
    "zero-padded-scaled": dict(pad=0.0, aq=HalfBinaryAct, wq=BinaryWeightPerChannelFloat),
}


def make_net(case: str) -> StandardQuantNet:
    torch.manual_seed(0)
    net = StandardQuantNet(**CASES[case]).train()
    with torch.no_grad():  # a few batches: Brevitas initialises the statistics-based scales
        net(torch.rand(64, 1, 8, 8))
    return randomize_bn(net)  # trained-like BatchNorm, negative and zero gammas; eval mode


def images(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 1, 8, 8), dtype=np.float32)


@pytest.fixture(scope="module", params=list(CASES))
def compiled(request, tmp_path_factory) -> tuple[str, StandardQuantNet, Path]:
    net = make_net(request.param)
    return request.param, net, compile_net(net, tmp_path_factory.mktemp(request.param), "m").path


def test_golden_gives_torchs_labels_off_ties(compiled):
    _, net, build = compiled
    assert_golden_gives_torch_labels(build, net, images(200))


def test_integer_targets_equal_golden(compiled):
    _, _, build = compiled
    x = images(64, seed=2)
    g = GoldenModel(build)
    want = g.run_integer(x)
    for step in ("02_streamline", "05_dataflow"):
        m = load_qonnx(build / f"{step}.onnx")
        _, got = outputs_as_scores(m, execute_step_model(m, x))
        np.testing.assert_array_equal(got, g.to_dot(want), err_msg=step)
    cpu = registry.target("cpu")
    if cpu.available() is None:
        np.testing.assert_array_equal(cpu.run_integer(Build(build), g.spec.apply(x)), want)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["csim", "rtl", "armv7"])
def test_slow_targets_equal_golden(compiled, target):
    _, _, build = compiled
    backend = registry.target(target)
    if backend.available() is not None:
        pytest.skip(backend.available())
    x = images(8, seed=3)
    g = GoldenModel(build)
    np.testing.assert_array_equal(backend.run_integer(Build(build), g.spec.apply(x)), g.run_integer(x))


def test_the_scales_are_gone_from_the_integer_graph(compiled):
    """Weights are integers (BIPOLAR / INTn) and every sign activation is a MultiThreshold: no float scale
    is left for a back-end to apply."""
    _, _, build = compiled
    m = load_qonnx(build / "02_streamline.onnx")
    assert {n.op_type for n in m.graph.node} <= {"Conv", "MatMul", "MultiThreshold", "Pad", "MaxPool", "Flatten",
                                                  "Reshape"}
    for n in m.graph.node:
        if n.op_type in ("Conv", "MatMul"):
            w = m.get_initializer(n.input[1])
            assert np.array_equal(w, np.rint(w)) and m.get_tensor_datatype(n.input[1]).is_integer()


@pytest.mark.parametrize("case", ["act-scale-padded", "per-channel-learned"])
def test_each_scale_transform_preserves_outputs(case, tmp_path):
    """The transforms that move the scales, one at a time, executed before and after (qonnx): outputs equal
    up to float rounding, and afterwards no sign activation has a scale other than 1, no weight is non-integer."""
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes

    from bnn_flow.transforms import input_spec, streamline, tidy

    export_qonnx_file(make_net(case), tmp_path / "m.onnx")
    m = cleanup_model(load_qonnx(tmp_path / "m.onnx")).transform(InferShapes()).transform(InferDataTypes())
    x = images(4, seed=5)
    for make in (tidy.FoldWeightQuant, input_spec.ExtractInputSpec, streamline.FactorActivationScale,
                 streamline.MoveScalarMulDownstream):
        after = m.transform(make()).transform(InferShapes()).transform(InferDataTypes())
        before_scores, _ = outputs_as_scores(m, execute_step_model(m, x))
        after_scores, _ = outputs_as_scores(after, execute_step_model(after, x))
        np.testing.assert_allclose(after_scores, before_scores, rtol=1e-5, atol=1e-5, err_msg=make.__name__)
        m = after
    for n in m.graph.node:
        if n.op_type == "BipolarQuant":
            assert np.all(m.get_initializer(n.input[1]) == 1.0)
        if n.op_type in ("Conv", "MatMul"):
            assert np.array_equal(m.get_initializer(n.input[1]), np.rint(m.get_initializer(n.input[1])))
    pads = [m.get_initializer(n.input[2]) for n in m.graph.node if n.op_type == "Pad"]
    assert all(float(p) == 1.0 for p in pads)  # the scaled "one" (0.5) is a bipolar +1 once the scale moved on


# --- refused, in one line ---------------------------------------------------------------------------------

def _exported(tmp_path: Path, case: str = "per-tensor-const"):
    from qonnx.core.modelwrapper import ModelWrapper

    export_qonnx_file(make_net(case), tmp_path / "m.onnx")
    return ModelWrapper(str(tmp_path / "m.onnx"))


def _compile_error(tmp_path: Path, model) -> str:
    model.save(str(tmp_path / "bad.onnx"))
    with pytest.raises(BadInputError) as e:
        compile_model(tmp_path / "bad.onnx", Build(tmp_path / "b"), CompileConfig())
    assert "\n" not in str(e.value)
    return str(e.value)


def test_per_channel_sign_scale_is_refused(tmp_path):
    m = _exported(tmp_path, "act-scale-padded")
    act = next(n for n in m.graph.node if n.op_type == "BipolarQuant" and m.get_initializer(n.input[0]) is None
               and m.get_initializer(n.input[1]) is not None and m.get_initializer(n.input[1]).size == 1
               and float(m.get_initializer(n.input[1]).reshape(-1)[0]) == 0.5)
    m.set_initializer(act.input[1], np.linspace(0.5, 1.0, 8, dtype=np.float32).reshape(1, 8, 1, 1))
    assert "one positive number per tensor" in _compile_error(tmp_path, m)


def _second_conv_weight_quant(m):
    """The weight quantizer of the 8 -> 8 channel convolution."""
    return next(n for n in m.graph.node if n.op_type == "BipolarQuant" and m.get_initializer(n.input[0]) is not None
                and m.get_initializer(n.input[0]).ndim == 4 and m.get_initializer(n.input[0]).shape[1] == 8)


def test_weight_scale_varying_along_input_channels_is_refused(tmp_path):
    m = _exported(tmp_path)
    wq = _second_conv_weight_quant(m)
    m.set_initializer(wq.input[1], np.linspace(0.1, 0.2, 8, dtype=np.float32).reshape(1, 8, 1, 1))
    assert "per-output-channel" in _compile_error(tmp_path, m)


def test_negative_per_channel_weight_scale_flips_like_a_negative_gamma(tmp_path):
    """A negative scale on some output channels (what a negative BatchNorm gamma does) compiles exactly."""
    m = _exported(tmp_path)
    wq = _second_conv_weight_quant(m)
    m.set_initializer(wq.input[1], np.array([0.1, -0.1, 0.2, -0.3, 0.1, 0.1, -0.05, 0.4],
                                            np.float32).reshape(8, 1, 1, 1))
    m.save(str(tmp_path / "neg.onnx"))
    compile_model(tmp_path / "neg.onnx", Build(tmp_path / "b"), CompileConfig())  # checks every step
    x = images(100, seed=4)
    g = GoldenModel(tmp_path / "b")
    from bnn_flow.qonnx_exec import QonnxRunner

    ref = QonnxRunner(load_qonnx(tmp_path / "neg.onnx"))(x)
    ties = tie_images(cleanup_model(Build(tmp_path / "b").source_model()), x)
    assert np.array_equal(g.run(x)[1][~ties], ref.argmax(1)[~ties])
