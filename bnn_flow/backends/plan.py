"""The layer plan: a compiled build's dataflow graph as a flat list of layers, shared by every back-end.

The HLS generator and the CPU packer both start here, so they read the graph one way. The plan holds
plain numbers and numpy arrays, no ONNX. Each layer keeps the golden model's meaning (DESIGN.md §1):

* `Window`  sliding window (im2col) on NHWC, patch order (kh, kw, c), padded with `pad_value`
  (a bit for binary maps, an integer for integer maps).
* `Mvau`    matrix-vector-activation unit, applied to each of `pixels` vectors of a frame.
  Binary: weights are bits {0,1} (MH, MW), the accumulator is the XNOR popcount p in [0, MW].
  Integer: weights are signed integers (MH, MW), inputs integers of `in_dtype`, accumulator = x.w.
  With thresholds (MH,) the output is bits (acc >= T); without, the integer accumulators (last layer).
* `MaxPool` on bits (OR over the window) or integers (max), no padding.
* `Flatten` (H, W, C) -> (H*W*C) in (h, w, c) order. A stream does not change; packed words do when
  C is not a multiple of 64 (the CPU runtime repacks).

Thresholds are clamped into [acc_min, acc_max + 1]. That changes no output bit: a threshold above
every reachable accumulator gives 0 either way, one at or below every reachable value gives 1.
It keeps every threshold inside the accumulator's own integer range (hardware word widths).

Folding: PE/SIMD per MVAU come from BUILD/folding.json ({node name: {"PE": p, "SIMD": s}}), written by
the folding step; without it they are 1. `Plan.validate()` checks the legality rules of DESIGN.md §4.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bnn_flow.errors import BadInputError
from bnn_flow.golden import final_model_path
from bnn_flow.qonnx_exec import load_qonnx
from bnn_flow.transforms.input_spec import InputSpec, load_input_spec

FOLDING_FILE = "folding.json"


@dataclass(frozen=True)
class IntType:
    """An integer element type: `bits` wide, two's complement when `signed`. Bits (0/1) are UINT1."""

    bits: int
    signed: bool

    @property
    def min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @staticmethod
    def covering(lo: int, hi: int) -> IntType:
        """The narrowest type holding every integer in [lo, hi]."""
        if lo >= 0:
            return IntType(max(1, int(hi).bit_length()), False)
        bits = max(int(hi).bit_length(), int(-lo - 1).bit_length()) + 1
        return IntType(bits, True)


BIT = IntType(1, False)


@dataclass
class Window:
    name: str
    in_shape: tuple[int, int, int]  # H, W, C
    out_shape: tuple[int, int, int]  # OH, OW, kh*kw*C
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int, int, int]  # top, left, bottom, right
    pad_value: int
    dtype: IntType  # BIT for binary maps
    kind: str = "window"


@dataclass
class MaxPool:
    name: str
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dtype: IntType
    kind: str = "maxpool"


@dataclass
class Flatten:
    name: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int]
    dtype: IntType
    kind: str = "flatten"


@dataclass
class Mvau:
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
    kind: str = "mvau"

    @property
    def out_bits(self) -> bool:
        return self.thresholds is not None

    @property
    def out_dtype(self) -> IntType:
        return BIT if self.out_bits else self.acc_dtype


Layer = Window | MaxPool | Flatten | Mvau


@dataclass
class Plan:
    input_shape: tuple[int, ...]  # (H, W, C) or (K,): what the graph takes per image, NHWC
    input_dtype: IntType  # BIT when the graph takes bits
    spec: InputSpec
    head: dict
    layers: list[Layer] = field(default_factory=list)

    @property
    def classes(self) -> int:
        last = self.mvaus[-1]
        return last.mh

    @property
    def output_dtype(self) -> IntType:
        return self.mvaus[-1].out_dtype

    @property
    def mvaus(self) -> list[Mvau]:
        return [lay for lay in self.layers if isinstance(lay, Mvau)]

    def validate(self) -> None:
        """Legal foldings only (MH % PE == 0, MW % SIMD == 0) and a last layer with integer output."""
        for m in self.mvaus:
            if m.pe < 1 or m.simd < 1 or m.mh % m.pe or m.mw % m.simd:
                raise BadInputError(f"layer {m.name}: illegal folding PE={m.pe} SIMD={m.simd} for MH={m.mh} "
                                    f"MW={m.mw} (need MH % PE == 0 and MW % SIMD == 0)")
        if not self.mvaus or self.mvaus[-1].out_bits:
            raise BadInputError("the graph must end in a matrix layer without thresholds (integer scores)")


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


def _mvau(model: ModelWrapper, node, in_shape: tuple[int, ...], in_dtype: IntType) -> Mvau:
    a = _attrs(node)
    binary = node.op_type == "BinaryMVAU"
    w = model.get_initializer(node.input[1])
    w = np.rint(np.asarray(w, dtype=np.float64)).astype(np.int64).T.copy()  # (MH, MW)
    mw, mh = a["MW"], a["MH"]
    if binary:
        acc_lo, acc_hi = np.zeros(mh, np.int64), np.full(mh, mw, np.int64)
        w_dtype = BIT
    else:
        pos, neg = np.clip(w, 0, None), np.clip(w, None, 0)
        acc_hi = pos.sum(1) * in_dtype.max + neg.sum(1) * in_dtype.min
        acc_lo = pos.sum(1) * in_dtype.min + neg.sum(1) * in_dtype.max
        w_dtype = IntType.covering(int(w.min(initial=0)), int(w.max(initial=0)))
    t = None
    if a["act"] == "threshold":
        t = np.clip(model.get_initializer(node.input[2]).reshape(-1).astype(np.int64), acc_lo, acc_hi + 1)
    acc_dtype = IntType.covering(int(acc_lo.min()), int(acc_hi.max()) + 1)
    spatial = tuple(in_shape[:-1])
    return Mvau(node.name, binary, mw, mh, int(np.prod(spatial, dtype=np.int64)) if spatial else 1, spatial, w, t,
                in_dtype, w_dtype, acc_dtype)


def _layer(model: ModelWrapper, node, shape: tuple[int, ...], dtype: IntType) -> Layer:
    if node.op_type in ("BinaryMVAU", "IntegerMVAU"):
        return _mvau(model, node, shape, dtype)
    out = tuple(int(d) for d in model.get_tensor_shape(node.output[0])[1:])
    if node.op_type in ("Flatten", "Reshape"):
        return Flatten(node.name, shape, (int(np.prod(shape)),), dtype)
    a = _attrs(node)
    k, s = tuple(a["kernel"]), tuple(a["stride"])
    if node.op_type == "SlidingWindow":
        return Window(node.name, shape, out, k, s, tuple(a["pad"]), int(a["pad_value"]), dtype)
    if node.op_type == "StreamingMaxPool":
        return MaxPool(node.name, shape, out, k, s, dtype)
    raise BadInputError(f"node {node.name} ({node.op_type}) is not a dataflow layer; recompile the model")


def load_folding(build_dir: Path) -> dict[str, dict[str, int]]:
    path = Path(build_dir) / FOLDING_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def plan_from_model(model: ModelWrapper, spec: InputSpec, head: dict,
                    folding: dict[str, dict[str, int]] | None = None) -> Plan:
    """Walk the (topologically sorted) dataflow graph once, tracking each tensor's shape and type."""
    inp = model.graph.input[0].name
    shape = tuple(int(d) for d in model.get_tensor_shape(inp)[1:])
    dtype = _dtype_of(model, inp)
    plan = Plan(shape, dtype, spec, head)
    for node in model.graph.node:
        layer = _layer(model, node, shape, dtype)
        if isinstance(layer, Mvau):
            f = (folding or {}).get(node.name, {})
            layer.pe, layer.simd = int(f.get("PE", 1)), int(f.get("SIMD", 1))
            shape, dtype = (*layer.out_spatial, layer.mh), layer.out_dtype
        else:
            shape = layer.out_shape
        plan.layers.append(layer)
    plan.validate()
    return plan


def load_plan(build_dir: str | Path) -> Plan:
    """The plan of BUILD (its final dataflow graph, input spec, head and folding.json if present)."""
    build_dir = Path(build_dir)
    model = load_qonnx(final_model_path(build_dir))
    head = json.loads((build_dir / "head.json").read_text())
    return plan_from_model(model, load_input_spec(build_dir), head, load_folding(build_dir))
