"""Activation quantizers as the compiler reads them: a sign (BipolarQuant) or an n-bit uniform Quant.

Streamlining turns each into integer thresholds on the layer's accumulator (a MultiThreshold): one threshold
for a sign, one per level above the lowest for n bits (FINN's MultiThreshold semantics: q = lowest level +
the number of thresholds reached). What does not have that form is refused here, in one line naming the node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import NodeProto
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from bnn_flow.conventions import IntType
from bnn_flow.transforms.base import DECODE_COMMUTES, attr, const, decode_table, single_consumer, unsupported

MAX_ACTIVATION_BITS = 8  # 255 thresholds per channel; wider activations are not what a BNN flow is for


@dataclass(frozen=True)
class ActivationQuant:
    """A quantizer's scale (per tensor, positive) and, for n bits, its integer levels [lo, hi] (None: a sign)."""

    scale: float
    levels: range | None = None


def _per_tensor_positive(model: ModelWrapper, quant: NodeProto) -> float:
    scale = const(model, quant.input[1])
    if scale is None or scale.size != 1 or not float(scale.reshape(-1)[0]) > 0:
        raise unsupported(quant, "an activation quantizer's scale must be one positive number per tensor (a "
                                 "per-channel, dynamic or non-positive scale does not fold into the next layer)")
    return float(scale.reshape(-1)[0])


def sign_activation_scale(model: ModelWrapper, quant: NodeProto) -> ActivationQuant:
    """A BipolarQuant activation: s * sign(x)."""
    return ActivationQuant(_per_tensor_positive(model, quant))


def nbit_activation(model: ModelWrapper, quant: NodeProto) -> ActivationQuant:
    """A QONNX Quant activation: s * clamp(round_half_even(x / s), lo, hi) with zero point 0."""
    scale = _per_tensor_positive(model, quant)
    zp, bw = const(model, quant.input[2]), const(model, quant.input[3])
    if zp is None or np.any(zp != 0):
        raise unsupported(quant, "an activation zero point other than 0 (asymmetric quantization) is unsupported: "
                                 "use a symmetric Brevitas activation quantizer")
    mode = attr(quant, "rounding_mode", "ROUND")
    if (mode.decode() if isinstance(mode, bytes) else mode) != "ROUND":
        raise unsupported(quant, f"activation rounding mode {mode!r} is unsupported (ROUND only)")
    if bw is None or bw.size != 1 or float(bw.reshape(-1)[0]) not in range(2, MAX_ACTIVATION_BITS + 1):
        raise unsupported(quant, f"activations of 2 to {MAX_ACTIVATION_BITS} bits are supported (1 bit: use a "
                                 "sign activation, BipolarQuant)")
    bits, signed, narrow = int(bw.reshape(-1)[0]), bool(attr(quant, "signed", 1)), bool(attr(quant, "narrow", 0))
    lo = -(1 << (bits - 1)) + int(narrow) if signed else 0
    hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1 - int(narrow)
    return ActivationQuant(scale, range(lo, hi + 1))


@dataclass(frozen=True)
class Activation:
    """The activation that ends a layer's affine chain: its nodes ([Relu,] quantizer) and integer levels."""

    nodes: list[NodeProto]
    levels: range | None  # None: a sign (bipolar output)
    thresholds: np.ndarray | None = None  # a nonuniform activation's float thresholds (C or 1, L): levels = its index

    @property
    def datatype(self) -> DataType:
        t = IntType.covering(self.levels.start, self.levels.stop - 1)
        return DataType[("INT" if t.signed else "UINT") + str(t.bits)]


def activation_after(model: ModelWrapper, end: NodeProto | None) -> Activation | None:
    """The activation starting at `end` (the node that ended a layer's affine chain), or None when `end` is not
    one. Its scale must be 1 already (FactorActivationScale). A ReLU before an n-bit quantizer raises the lowest
    level to 0."""
    if end is None:
        return None
    if end.op_type == "MultiThreshold":
        return nonuniform_activation(model, end)
    if end.op_type == "BipolarQuant":
        if sign_activation_scale(model, end).scale != 1.0:
            raise unsupported(end, "activation BipolarQuant must have scale 1")
        return Activation([end], None)
    relu = end.op_type == "Relu"
    quant = single_consumer(model, end.output[0]) if relu else end
    if quant is None or quant.op_type != "Quant" or const(model, quant.input[0]) is not None:
        return None
    act = nbit_activation(model, quant)
    if act.scale != 1.0:
        raise unsupported(quant, "activation Quant must have scale 1 here (FactorActivationScale)")
    levels = range(max(act.levels.start, 0), act.levels.stop) if relu else act.levels
    if len(levels) < 3:
        raise unsupported(quant, f"an activation with the {len(levels)} levels {list(levels)} is unsupported: use a "
                                 "sign activation (BipolarQuant) for one bit")
    return Activation([end, quant] if relu else [quant], levels)


def nonuniform_activation(model: ModelWrapper, mt: NodeProto) -> Activation | None:
    """A nonuniform activation's MultiThreshold (float thresholds, counting: out_scale 1, out_bias 0) whose index
    a level decode reads (transforms/level_decode.py; through the max-pools and reshapes it has moved past), or
    None for a MultiThreshold without a decode after it."""
    cast = single_consumer(model, mt.output[0])
    while cast is not None and cast.op_type in DECODE_COMMUTES:
        cast = single_consumer(model, cast.output[0])
    gather = None if cast is None or cast.op_type != "Cast" else single_consumer(model, cast.output[0])
    table = None if gather is None else decode_table(model, gather)
    if table is None:
        return None
    t = const(model, mt.input[1])
    counting = attr(mt, "out_scale", 1.0) == 1.0 and attr(mt, "out_bias", 0.0) == 0.0
    if t is None or t.ndim != 2 or t.shape[1] != table.size - 1 or not counting or not np.all(np.isfinite(t)):
        raise unsupported(mt, f"a nonuniform activation needs constant finite thresholds (C or 1, {table.size - 1}) "
                              "for its level table, out_scale 1 and out_bias 0")
    return Activation([mt], range(table.size), t.astype(np.float64))
