"""The layer plan: a compiled build's dataflow graph as a flat list of layers, the one vocabulary of layer kinds.

The golden model executes the plan, and every back-end starts from it: each keeps one table
{layer class: its handler} (bnn_flow/golden.py, backends/hls/layers.py, backends/cpu/layers.py) and looks
a layer up with `handler()`, so a layer kind unknown to a back-end is one clear error, never a silent skip.
The plan holds plain numbers and numpy arrays, no ONNX. Each layer keeps the golden meaning (DESIGN.md §1):

* `Window`  sliding window (im2col) on NHWC, patch order (kh, kw, c), padded with `pad_value`
  (a bit for binary maps, an integer for integer maps).
* `Mvau`    matrix-vector-activation unit, applied to each of `pixels` vectors of a frame.
  Binary: weights are bits {0,1} (MH, MW), the accumulator is the XNOR popcount p in [0, MW].
  Integer: weights are signed integers (MH, MW), inputs integers of `in_dtype`, accumulator = x.w.
  With thresholds (MH,) the output is bits (acc >= T); without, the integer accumulators (last layer).
* `ZeroPadMvau` a binary `Mvau` after a window that zero-pads a bipolar map (the window pads with bit 1):
  its thresholds depend on the output pixel's pad classes, class_thresholds[threshold_rows[oy],
  threshold_cols[ox]] (transforms/zero_padding.py); `thresholds` holds class (0, 0)'s (the interior's
  when the map has one), for what needs one set (estimates).
* `MultiThresholdMvau` an `Mvau` (binary or integer) with an n-bit activation: thresholds (MH, L), sorted per
  row, and out = out_offset + #{l : acc >= thresholds[j, l]}, an integer of act_dtype (FINN's MultiThreshold);
  the next layer is an integer MVAU (after its window / max-pool on integers).
  A nonuniform activation (ENQ/KNQ, transforms/level_decode.py) is a MultiThresholdMvau emitting the n-bit index
  (out_offset 0); the stream, max-pools and windows carry the index (a window pads with the index of its pad
  level), and the next integer MVAU decodes it: its `in_levels` table, x = in_levels[index], before the dot
  product. A back-end without the decode runs `level_streams.levels_streamed(plan)`, the same function with
  the levels in the streams.
* `MaxPool` on bits (OR over the window) or integers (max), no padding.
* `Flatten` (H, W, C) -> (H*W*C) in (h, w, c) order. A stream does not change; packed words do when
  C is not a multiple of 64.

Thresholds are clamped into the accumulator's reachable range [lo, hi + 1] (conventions.accumulator_range):
that changes no output bit, and keeps every threshold inside the accumulator's own integer type.

Folding: PE/SIMD per MVAU come from BUILD/folding.json ({node name: {"PE": p, "SIMD": s}}), written by
the folding step; without it they are 1. Layers are immutable: `Plan.with_folding` gives a new plan.
`Plan.validate()` checks the legality rules of DESIGN.md §4.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bnn_flow.conventions import BIT, IntType, accumulator_range, popcount_range, position_thresholds
from bnn_flow.errors import BadInputError
from bnn_flow.transforms.input_spec import InputSpec

__all__ = ["BIT", "Flatten", "IntType", "Layer", "MaxPool", "MultiThresholdMvau", "Mvau", "Plan", "Window",
           "ZeroPadMvau", "handler", "plan_from_model"]


@dataclass(frozen=True, eq=False)
class Window:
    kind: ClassVar[str] = "window"
    name: str
    in_shape: tuple[int, int, int]  # H, W, C
    out_shape: tuple[int, int, int]  # OH, OW, kh*kw*C
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int, int, int]  # top, left, bottom, right
    pad_value: int
    dtype: IntType  # BIT for binary maps


@dataclass(frozen=True, eq=False)
class MaxPool:
    kind: ClassVar[str] = "maxpool"
    name: str
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dtype: IntType


@dataclass(frozen=True, eq=False)
class Flatten:
    kind: ClassVar[str] = "flatten"
    name: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int]
    dtype: IntType


def input_range(in_dtype: IntType, in_levels: tuple[int, ...]) -> tuple[int, int]:
    """The least and greatest input value a dot product sees: a nonuniform activation's decoded levels, else
    in_dtype's range."""
    return (min(in_levels), max(in_levels)) if in_levels else (in_dtype.min, in_dtype.max)


@dataclass(frozen=True, eq=False)
class Mvau:
    kind: ClassVar[str] = "mvau"
    name: str
    binary: bool
    mw: int
    mh: int
    pixels: int  # vectors per frame (OH*OW for a conv, 1 for a fully connected layer)
    out_spatial: tuple[int, ...]  # (OH, OW) for a conv, () for a fully connected layer
    weights: np.ndarray  # (MH, MW) int64: bits for binary, signed integers for integer layers
    thresholds: np.ndarray | None  # (MH,) int64, clamped into [acc_min, acc_max + 1]
    in_dtype: IntType
    w_dtype: IntType
    acc_dtype: IntType  # covers every reachable accumulator (and every clamped threshold)
    pe: int = 1
    simd: int = 1
    in_levels: tuple[int, ...] = ()  # inputs are a nonuniform activation's indices: x = in_levels[index]

    @property
    def out_bits(self) -> bool:
        return self.thresholds is not None

    @property
    def dot_dtype(self) -> IntType:
        """The type of the input elements in the dot product: the decoded levels', else in_dtype."""
        return IntType.covering(*input_range(self.in_dtype, self.in_levels))

    @property
    def out_dtype(self) -> IntType:
        return BIT if self.out_bits else self.acc_dtype

    @functools.cached_property
    def bipolar_weights(self) -> bool:
        """Integer layer whose weights are all -1/+1 (a multiply is a conditional negation)."""
        return bool(self.weights.size) and bool(np.all(np.abs(self.weights) == 1))

    @functools.cached_property
    def acc_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Per output channel, the reachable accumulators [lo, hi] (conventions.accumulator_range)."""
        if self.binary:
            return popcount_range(self.mw, self.mh)
        return accumulator_range(self.weights, *input_range(self.in_dtype, self.in_levels))


@dataclass(frozen=True, eq=False)
class ZeroPadMvau(Mvau):
    kind: ClassVar[str] = "mvau"  # a variant of the MVAU: the same stage in every back-end's chain
    threshold_rows: tuple[int, ...] = ()  # per output row, its pad class
    threshold_cols: tuple[int, ...] = ()  # per output column
    class_thresholds: np.ndarray | None = None  # (row classes, column classes, MH) int64, clamped like thresholds

    def position_thresholds(self) -> np.ndarray:
        """(OH, OW, MH): each output pixel's thresholds."""
        return position_thresholds(self.class_thresholds, self.threshold_rows, self.threshold_cols)

    @property
    def pad_class_count(self) -> int:
        return int(np.prod(self.class_thresholds.shape[:2]))


@dataclass(frozen=True, eq=False)
class MultiThresholdMvau(Mvau):
    kind: ClassVar[str] = "mvau"  # an MVAU with an n-bit activation: the same stage in every back-end's chain
    levels: int = 0  # thresholds per output channel (2^n - 1, or 2^n - 2 for a narrow range)
    out_offset: int = 0  # the lowest level: out = out_offset + #{l : acc >= thresholds[j, l]}
    act_dtype: IntType = BIT  # covers [out_offset, out_offset + levels]

    @property
    def out_bits(self) -> bool:
        return False

    @property
    def out_dtype(self) -> IntType:
        return self.act_dtype


Layer = Window | MaxPool | Flatten | Mvau | ZeroPadMvau | MultiThresholdMvau
H = TypeVar("H")


def handler(table: Mapping[type, H], layer: Layer, backend: str) -> H:
    """The handler of `layer`'s kind in a back-end's table; one clear error for a kind it lacks."""
    try:
        return table[type(layer)]
    except KeyError:
        raise BadInputError(f"layer {layer.name} ({layer.kind}) is not supported by the {backend}") from None


@dataclass
class Plan:
    input_shape: tuple[int, ...]  # (H, W, C) or (K,): what the graph takes per image, NHWC
    input_dtype: IntType  # BIT when the graph takes bits
    spec: InputSpec
    head: dict
    layers: list[Layer] = field(default_factory=list)

    @property
    def classes(self) -> int:
        return self.mvaus[-1].mh

    @property
    def output_dtype(self) -> IntType:
        return self.mvaus[-1].out_dtype

    @property
    def mvaus(self) -> list[Mvau]:
        return [lay for lay in self.layers if isinstance(lay, Mvau)]

    @property
    def folding(self) -> dict[str, dict[str, int]]:
        """{MVAU name: {"PE": p, "SIMD": s}} (the folding.json contract)."""
        return {m.name: {"PE": m.pe, "SIMD": m.simd} for m in self.mvaus}

    def with_folding(self, folding: Mapping[str, Mapping[str, int]] | list[tuple[int, int]]) -> Plan:
        """A new plan whose MVAUs take PE/SIMD from `folding` (by name, or one (PE, SIMD) per MVAU in order;
        absent names keep 1). This plan is not changed."""
        if isinstance(folding, list):
            by_name = {m.name: {"PE": pe, "SIMD": simd} for m, (pe, simd) in zip(self.mvaus, folding, strict=True)}
        else:
            by_name = dict(folding)
        layers = [dataclasses.replace(lay, pe=int(by_name.get(lay.name, {}).get("PE", 1)),
                                      simd=int(by_name.get(lay.name, {}).get("SIMD", 1)))
                  if isinstance(lay, Mvau) else lay for lay in self.layers]
        return Plan(self.input_shape, self.input_dtype, self.spec, self.head, layers)

    def validate(self) -> None:
        """Legal foldings only (MH % PE == 0, MW % SIMD == 0) and a last layer with integer output."""
        for m in self.mvaus:
            if m.pe < 1 or m.simd < 1 or m.mh % m.pe or m.mw % m.simd:
                raise BadInputError(f"layer {m.name}: illegal folding PE={m.pe} SIMD={m.simd} for MH={m.mh} "
                                    f"MW={m.mw} (need MH % PE == 0 and MW % SIMD == 0)")
        if not self.mvaus or self.mvaus[-1].thresholds is not None:
            raise BadInputError("the graph must end in a matrix layer without thresholds (integer scores)")
        if "scale" in self.head and len(self.head["scale"]) != self.classes:
            raise BadInputError(f"the head has {len(self.head['scale'])} classes but the graph {self.classes}: "
                                "recompile the model")


# --- the dataflow graph (ONNX) -> the plan: one builder per op type -----------------------------------------

def _attrs(node) -> dict:
    inst = getCustomOp(node)
    return {k: inst.get_nodeattr(k) for k in inst.get_nodeattr_types()}


def _dtype_of(model: ModelWrapper, tensor: str) -> IntType:
    dt = model.get_tensor_datatype(tensor)
    if dt.name in ("BINARY", "BIPOLAR"):
        return BIT
    if not dt.is_integer():
        raise BadInputError(f"tensor {tensor} has non-integer type {dt.name}: compile the model first")
    return IntType(dt.bitwidth(), dt.signed())


def _out_shape(model: ModelWrapper, node) -> tuple[int, ...]:
    return tuple(int(d) for d in model.get_tensor_shape(node.output[0])[1:])


def _spatial(in_shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """(pixels, out_spatial) of an MVAU on a (..., MW) input: OH*OW and (OH, OW) for a conv, 1 and ()."""
    spatial = tuple(in_shape[:-1])
    return (int(np.prod(spatial, dtype=np.int64)) if spatial else 1), spatial


def _mvau(model: ModelWrapper, node, in_shape: tuple[int, ...], in_dtype: IntType) -> Mvau:
    a = _attrs(node)
    binary = node.op_type == "BinaryMVAU"
    w = model.get_initializer(node.input[1])
    w = np.rint(np.asarray(w, dtype=np.float64)).astype(np.int64).T.copy()  # (MH, MW)
    mw, mh = a["MW"], a["MH"]
    in_levels = tuple(int(v) for v in a["in_levels"])  # a nonuniform activation's table (integer layers only)
    if binary:
        acc_lo, acc_hi = popcount_range(mw, mh)
        w_dtype = BIT
    else:
        acc_lo, acc_hi = accumulator_range(w, *input_range(in_dtype, in_levels))
        w_dtype = IntType.covering(int(w.min(initial=0)), int(w.max(initial=0)))
    t = None
    if a["act"] == "threshold":
        t = model.get_initializer(node.input[2]).astype(np.int64)
        if a["out_dtype"] != "BINARY":  # n-bit activation: (MH, L)
            t = np.clip(t.reshape(mh, -1), acc_lo[:, None], acc_hi[:, None] + 1)
            return MultiThresholdMvau(
                node.name, binary, mw, mh, *_spatial(in_shape), w, t, in_dtype, w_dtype,
                IntType.covering(int(acc_lo.min()), int(acc_hi.max()) + 1), levels=t.shape[1],
                out_offset=int(a["out_bias"]), act_dtype=_dtype_of(model, node.output[0]), in_levels=in_levels)
        t = np.clip(t.reshape(-1, mh), acc_lo, acc_hi + 1)
    acc_dtype = IntType.covering(int(acc_lo.min()), int(acc_hi.max()) + 1)
    args = (node.name, binary, mw, mh, *_spatial(in_shape), w, None if t is None else t[0], in_dtype, w_dtype,
            acc_dtype)
    rows, cols = tuple(a.get("threshold_rows", ())), tuple(a.get("threshold_cols", ()))
    if not rows:
        return Mvau(*args, in_levels=in_levels)
    table = t.reshape(max(rows) + 1, max(cols) + 1, mh)
    return ZeroPadMvau(*args, threshold_rows=rows, threshold_cols=cols, class_thresholds=table)


def _window(model: ModelWrapper, node, shape: tuple[int, ...], dtype: IntType) -> Window:
    a = _attrs(node)
    return Window(node.name, shape, _out_shape(model, node), tuple(a["kernel"]), tuple(a["stride"]),
                  tuple(a["pad"]), int(a["pad_value"]), dtype)


def _maxpool(model: ModelWrapper, node, shape: tuple[int, ...], dtype: IntType) -> MaxPool:
    a = _attrs(node)
    return MaxPool(node.name, shape, _out_shape(model, node), tuple(a["kernel"]), tuple(a["stride"]), dtype)


def _flatten(model: ModelWrapper, node, shape: tuple[int, ...], dtype: IntType) -> Flatten:
    return Flatten(node.name, shape, (int(np.prod(shape)),), dtype)


FROM_ONNX: dict[str, Callable[[ModelWrapper, object, tuple[int, ...], IntType], Layer]] = {
    "SlidingWindow": _window, "StreamingMaxPool": _maxpool, "BinaryMVAU": _mvau, "IntegerMVAU": _mvau,
    "Flatten": _flatten, "Reshape": _flatten,
}


def _out(layer: Layer) -> tuple[tuple[int, ...], IntType]:
    """The shape (per image) and element type a layer produces."""
    if isinstance(layer, Mvau):
        return (*layer.out_spatial, layer.mh), layer.out_dtype
    return layer.out_shape, layer.dtype


def plan_from_model(model: ModelWrapper, spec: InputSpec, head: dict,
                    folding: Mapping[str, Mapping[str, int]] | None = None) -> Plan:
    """Walk the (topologically sorted) dataflow graph once, tracking each tensor's shape and type."""
    inp = model.graph.input[0].name
    shape = tuple(int(d) for d in model.get_tensor_shape(inp)[1:])
    dtype = _dtype_of(model, inp)
    plan = Plan(shape, dtype, spec, head)
    for node in model.graph.node:
        build = FROM_ONNX.get(node.op_type)
        if build is None:
            raise BadInputError(f"node {node.name} ({node.op_type}) is not a dataflow layer; recompile the model")
        layer = build(model, node, shape, dtype)
        shape, dtype = _out(layer)
        plan.layers.append(layer)
    plan = plan.with_folding(folding or {})
    plan.validate()
    return plan
