"""The float twin of a build: the FP32 CNN of the same structure, as standard ONNX for onnxruntime.

pi-bench compares the binarized network against a strong float baseline: the same layers (shapes,
kernels, strides, padding, max-pools, FC widths) in float32, run by onnxruntime's optimized CPU kernels.

Two sources, in order of preference:

* `recipe`: BUILD/source.json records the training run (RUN/recipe.yaml + RUN/summary.json): the recipe's
  own float twin, `build_net(..., float_twin=True)`, exported by `torch.onnx.export` (opset 17). Its
  BatchNorms are separate nodes in the file; onnxruntime folds them into the convolutions at
  ORT_ENABLE_ALL.
* `plan`: otherwise the twin is built from the layer plan (bnn_flow/backends/plan.py) with onnx.helper:
  Window + Mvau -> Conv (same kernel, stride, pads; float pads are zeros), a lone Mvau -> Gemm (or a 1x1
  Conv on a feature map), then BatchNormalization (a node, not folded: onnxruntime folds it) and Relu
  where the binary layer has thresholds, MaxPool -> MaxPool, Flatten -> Flatten. The classifier keeps its
  BatchNorm (the recipes' head) and has no activation.

Weights are random (He-scaled normal, seeded): timing does not depend on values, and a random build has no
trained float weights anyway. The twin runs NCHW float32 images in [0, 1], the pixels the build takes.

`layer_models` gives one-layer ONNX models (Conv + BatchNorm + Relu) for each binary convolution, so a
binary layer's time can be set against the same layer in onnxruntime.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from bnn_flow.build import Build, as_build
from bnn_flow.config import load_recipe
from bnn_flow.plan import Flatten, Layer, MaxPool, MultiThresholdMvau, Mvau, Plan, Window, ZeroPadMvau, handler

OPSET = 17
INPUT = "images"
OUTPUT = "scores"


@dataclass
class FloatTwin:
    """An ONNX model (serialized) of the float twin and what it stores.

    weight_params: conv/FC weights; bn_params: 2 per BatchNorm channel (scale and shift once folded:
    what inference needs); float32_bytes = 4 * (weight_params + bn_params).
    """

    onnx_bytes: bytes
    source: str  # "recipe" or "plan"
    input_shape: tuple[int, ...]  # per image: (C, H, W) or (K,)
    weight_params: int
    bn_params: int

    @property
    def float32_bytes(self) -> int:
        return 4 * (self.weight_params + self.bn_params)


@dataclass
class _Graph:
    """The nodes and initializers of an ONNX graph under construction, with unique tensor names."""

    nodes: list = field(default_factory=list)
    inits: list = field(default_factory=list)
    count: int = 0
    weight_params: int = 0
    bn_params: int = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def init(self, prefix: str, value: np.ndarray) -> str:
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def _weights(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    fan_in = int(np.prod(shape[1:]))
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def _bn_relu(g: _Graph, x: str, channels: int, rng: np.random.Generator, relu: bool) -> str:
    """BatchNormalization (inference form) with random statistics, then Relu when `relu`."""
    scale = g.init("bn_scale", rng.uniform(0.5, 1.5, channels))
    bias = g.init("bn_bias", rng.standard_normal(channels) * 0.1)
    mean = g.init("bn_mean", rng.standard_normal(channels) * 0.1)
    var = g.init("bn_var", rng.uniform(0.5, 2.0, channels))
    g.bn_params += 2 * channels
    y = g.op("BatchNormalization", [x, scale, bias, mean, var], epsilon=1e-4)
    return g.op("Relu", [y]) if relu else y


def _conv(g: _Graph, x: str, win: Window | None, m: Mvau, c_in: int, rng: np.random.Generator) -> str:
    kh, kw = win.kernel if win else (1, 1)
    sh, sw = win.stride if win else (1, 1)
    top, left, bottom, right = win.pad if win else (0, 0, 0, 0)
    w = g.init("conv_w", _weights(rng, (m.mh, c_in, kh, kw)))
    g.weight_params += m.mh * c_in * kh * kw
    y = g.op("Conv", [x, w], kernel_shape=[kh, kw], strides=[sh, sw], pads=[top, left, bottom, right])
    return _bn_relu(g, y, m.mh, rng, relu=m.out_bits)


def _gemm(g: _Graph, x: str, m: Mvau, rng: np.random.Generator) -> str:
    w = g.init("fc_w", _weights(rng, (m.mh, m.mw)))
    g.weight_params += m.mh * m.mw
    y = g.op("Gemm", [x, w], transB=1)
    return _bn_relu(g, y, m.mh, rng, relu=m.out_bits)


def _nchw(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else tuple(shape)


def _name_output(g: _Graph, x: str) -> None:
    """Route tensor x to the graph output OUTPUT."""
    g.nodes.append(helper.make_node("Identity", [x], [OUTPUT], name="output"))


def _model(g: _Graph, in_shape: tuple[int, ...], out: str, out_shape: list) -> bytes:
    graph = helper.make_graph(
        g.nodes, "float_twin", [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", *out_shape])], initializer=g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="bnn-flow")
    onnx.checker.check_model(model)
    return model.SerializeToString()


@dataclass
class _Walk:
    """The float twin under construction while walking the plan: the current tensor and a window waiting
    for its matrix layer (a Window + Mvau pair is one Conv)."""

    g: _Graph
    rng: np.random.Generator
    x: str = INPUT
    pending: Window | None = None


def _twin_window(w: _Walk, lay: Window) -> None:
    w.pending = lay


def _twin_mvau(w: _Walk, lay: Mvau) -> None:
    if lay.out_spatial:  # a convolution (a lone Mvau on a map is a 1x1 one)
        w.x = _conv(w.g, w.x, w.pending, lay, w.pending.in_shape[2] if w.pending else lay.mw, w.rng)
    else:
        w.x = _gemm(w.g, w.x, lay, w.rng)
    w.pending = None


def _twin_maxpool(w: _Walk, lay: MaxPool) -> None:
    w.x = w.g.op("MaxPool", [w.x], kernel_shape=list(lay.kernel), strides=list(lay.stride))


def _twin_flatten(w: _Walk, lay: Flatten) -> None:
    w.x = w.g.op("Flatten", [w.x], axis=1)


# The float twin's table {plan layer class: its float counterpart}: a new layer kind needs an entry here
# (handler() refuses a kind it lacks instead of skipping it silently).
TWIN: dict[type, Callable[[_Walk, Layer], None]] = {
    Window: _twin_window, Mvau: _twin_mvau, ZeroPadMvau: _twin_mvau, MultiThresholdMvau: _twin_mvau,
    MaxPool: _twin_maxpool, Flatten: _twin_flatten,
}


def plan_twin(plan: Plan, seed: int = 0) -> FloatTwin:
    """The float twin built from the layer plan (see the module docstring)."""
    walk = _Walk(_Graph(), np.random.default_rng(seed))
    in_shape = _nchw(plan.input_shape)
    for lay in plan.layers:
        handler(TWIN, lay, "float twin")(walk, lay)
    g = walk.g
    _name_output(g, walk.x)
    return FloatTwin(_model(g, in_shape, OUTPUT, [plan.classes]), "plan", in_shape, g.weight_params,
                     g.bn_params)


def layer_models(plan: Plan, seed: int = 0) -> dict[str, bytes]:
    """{binary conv MVAU name: one-layer ONNX model (Conv + BatchNorm + Relu on its input map)}.

    A binary convolution is its Window + Mvau pair in the plan; the float layer takes the same input
    shape (C, H, W), kernel, stride and padding, and gives the same output shape.
    """
    rng = np.random.default_rng(seed)
    models: dict[str, bytes] = {}
    prev: Window | None = None
    for lay in plan.layers:
        if isinstance(lay, Mvau) and lay.binary and lay.out_spatial and prev is not None:
            g = _Graph()
            x = _conv(g, INPUT, prev, lay, prev.in_shape[2], rng)
            _name_output(g, x)
            models[lay.name] = _model(g, _nchw(prev.in_shape), OUTPUT, [lay.mh, *lay.out_spatial])
        prev = lay if isinstance(lay, Window) else None
    return models


def recipe_twin(build: Build | Path) -> FloatTwin | None:
    """The training recipe's own float twin, exported to ONNX; None when the build records no run."""
    build = as_build(build)
    run = build.run_dir() if build.exists() else None
    if run is None:
        return None
    # lazily: only a build with a training run needs torch and brevitas here (a plan's twin is plain ONNX)
    import torch

    from bnn_flow.nets import build_net

    recipe = load_recipe(run / "recipe.yaml")
    summary = json.loads((run / "summary.json").read_text())
    c, h, _ = summary["input_shape"]
    n = recipe.net
    torch.manual_seed(0)
    net = build_net(n.arch, num_classes=summary["num_classes"], in_channels=c, image_size=h,
                    weight_bits=n.weight_bits, act_bits=n.act_bits, in_bits=n.in_bits, width=n.width, pad=n.pad,
                    float_twin=True).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the exporter's notes on the pad layers' Slice: not ours to fix
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(net, (torch.zeros(1, c, h, h),), buf, opset_version=OPSET, input_names=[INPUT],
                          output_names=[OUTPUT], dynamic_axes={INPUT: {0: "N"}, OUTPUT: {0: "N"}}, dynamo=False)
    weights = sum(m.weight.numel() for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    bn = sum(2 * m.num_features for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
    return FloatTwin(buf.getvalue(), "recipe", (c, h, h), int(weights), int(bn))


def float_twin(build: Build | Path, plan: Plan) -> FloatTwin:
    """The recipe's float twin when the build records its training run, else the plan's."""
    build = as_build(build)
    return recipe_twin(build) or plan_twin(plan)


def session(onnx_bytes: bytes, threads: int) -> ort.InferenceSession:
    """An onnxruntime CPU session: `threads` intra-op threads, sequential, every graph optimization.

    Its pool threads sleep when a run ends instead of spinning for the next one: the benchmarks alternate the
    float and the binary side call by call, and spinning pool threads took the cores from the binary side's
    threads (BCNN-32, 2 threads, 2 cores: 1,573 instead of 2,476 images/s). Measured on the float side alone,
    sleeping costs it 2% of its 2-thread throughput (135.9 vs 138.6 images/s) and nothing at 1 thread.
    """
    so = ort.SessionOptions()
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(onnx_bytes, so, providers=["CPUExecutionProvider"])
