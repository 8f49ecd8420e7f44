"""Brevitas quantizers and quantized layer factories shared by every network.

Quantizers follow the FINN/bnn_pynq convention (constant scales, no zero point), which exports to QONNX as
BipolarQuant (1 bit) or Quant (n bits) nodes that the compiler turns into integers:
- weights: signed, narrow range, constant scale 1 -> {-1,+1} at 1 bit; n bits: integers * 2^-(n-1).
- activations: signed in [-1, 1]; 1 bit is sign(x) with sign(0) = +1.
- network input: either 'unit' (our nets: pixel/255 in [0,1] quantized unsigned with scale 1/(2^n-1), so at
  8 bits the integers are exactly the raw pixels) or 'bipolar' (FINN's nets: 2x-1 then a signed
  quantizer; 8 bits is Q1.7 with scale 2^-7, 1 bit is sign).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from brevitas.core.bit_width import BitWidthImplType
from brevitas.core.quant import QuantType
from brevitas.core.restrict_val import FloatToIntImplType, RestrictValueType
from brevitas.core.scaling import ScalingImplType
from brevitas.core.zero_point import ZeroZeroPoint
from brevitas.inject import ExtendedInjector
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant.solver import ActQuantSolver, WeightQuantSolver
from dependencies import value
from torch import nn

from bnn_flow.conventions import PAD_BIPOLAR
from bnn_flow.nets.nonuniform import METHODS, NonuniformActQuant

SUPPORTED_BITS = (1, 2, 4, 8)


class _ConstScaleQuant(ExtendedInjector):
    """Constant-scale, zero-point-free integer quantizer; 1 bit selects the binary (sign) quantizer."""

    bit_width_impl_type = BitWidthImplType.CONST
    scaling_impl_type = ScalingImplType.CONST
    restrict_scaling_type = RestrictValueType.FP
    zero_point_impl = ZeroZeroPoint
    float_to_int_impl_type = FloatToIntImplType.ROUND
    scaling_per_output_channel = False
    narrow_range = True
    signed = True

    @value
    def quant_type(bit_width):  # noqa: N805 - the injector resolves arguments by name
        if bit_width is None:
            return QuantType.FP
        if bit_width == 1:
            return QuantType.BINARY
        return QuantType.INT


class WeightQuant(_ConstScaleQuant, WeightQuantSolver):
    scaling_const = 1.0


class ActQuant(_ConstScaleQuant, ActQuantSolver):
    min_val = -1.0
    max_val = 1.0


class UnitInputQuant(_ConstScaleQuant, ActQuantSolver):
    """Unsigned input in [0, 1] with scale 1/(2^n - 1): 8-bit integers are the raw pixel values."""

    signed = False
    narrow_range = False
    min_val = 0.0
    max_val = 1.0


@dataclass(frozen=True)
class QuantSpec:
    """Bit widths of one network. float_twin=True builds the FP32 network of the same structure."""

    weight_bits: int = 1
    act_bits: int = 1
    in_bits: int = 8
    float_twin: bool = False
    input_style: str = "unit"  # 'unit' (our nets) or 'bipolar' (FINN's nets: 2x-1 inside the network)
    pad: str = "one"  # hidden binary maps padded with +1 ('one') or 0 ('zero': exact through pad classes)
    # hidden n-bit activations: 'uniform' (signed in [-1, 1], FINN's), 'relu' (uniform in the ReLU domain: Brevitas'
    # QuantReLU, learned scale), or nonuniform in the ReLU domain: 'enq' | 'knq' (nets/nonuniform.py)
    act_quant: str = "uniform"

    def __post_init__(self) -> None:
        for name in ("weight_bits", "act_bits", "in_bits"):
            bits = getattr(self, name)
            if bits not in SUPPORTED_BITS:
                raise ValueError(f"{name}={bits} is not supported (use one of {SUPPORTED_BITS})")
        if self.pad not in ("one", "zero"):
            raise ValueError(f"pad={self.pad!r} must be 'one' or 'zero'")
        if self.act_quant not in ("uniform", "relu", *METHODS):
            raise ValueError(f"act_quant={self.act_quant!r} must be one of uniform, relu, {', '.join(METHODS)}")
        if self.act_quant != "uniform" and self.act_bits not in (2, 4):
            raise ValueError(f"act_quant={self.act_quant} needs act_bits 2 or 4")
        if self.input_style not in ("unit", "bipolar"):
            raise ValueError(f"input_style={self.input_style!r} must be 'unit' or 'bipolar'")
        if self.input_style == "unit" and self.in_bits == 1 and not self.float_twin:
            # brevitas makes any 1-bit quantizer the bipolar sign, and sign(pixel/255) is always +1
            raise ValueError("in_bits=1 needs a bipolar (2x-1) input: use in_bits >= 2 for this network")

    @property
    def pad_value(self) -> float:
        """Constant that pads hidden feature maps: +1 for bipolar maps unless pad='zero' (the compiler corrects
        zero padding per pad class), else 0."""
        return PAD_BIPOLAR if self.act_bits == 1 and not self.float_twin and self.pad == "one" else 0.0


def input_quant(spec: QuantSpec) -> nn.Module:
    """The quantizer at the network input (identity for the float twin)."""
    if spec.float_twin:
        return nn.Identity()
    if spec.input_style == "unit":
        return QuantIdentity(act_quant=UnitInputQuant, bit_width=spec.in_bits, return_quant_tensor=False)
    if spec.in_bits == 1:
        return QuantIdentity(act_quant=ActQuant, bit_width=1, return_quant_tensor=False)
    # FINN's Q1.7-style input: power-of-two scale, full (non-narrow) signed range.
    return QuantIdentity(
        act_quant=ActQuant,
        bit_width=spec.in_bits,
        min_val=-1.0,
        max_val=1.0 - 2.0 ** (-(spec.in_bits - 1)),
        narrow_range=False,
        restrict_scaling_type=RestrictValueType.POWER_OF_TWO,
        return_quant_tensor=False,
    )


def activation(spec: QuantSpec) -> nn.Module:
    """sign() for binary networks, an n-bit quantizer in [-1, 1] or a nonuniform one (ENQ/KNQ), or ReLU for the
    float twin."""
    if spec.float_twin:
        return nn.ReLU(inplace=False)
    if spec.act_quant == "relu":
        return QuantReLU(bit_width=spec.act_bits, return_quant_tensor=False)
    if spec.act_quant != "uniform":
        return NonuniformActQuant(spec.act_bits, spec.act_quant)
    return QuantIdentity(act_quant=ActQuant, bit_width=spec.act_bits, return_quant_tensor=False)


def conv(spec: QuantSpec, c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0) -> nn.Module:
    if spec.float_twin:
        return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False)
    return QuantConv2d(
        c_in,
        c_out,
        kernel,
        stride=stride,
        padding=padding,
        bias=False,
        weight_quant=WeightQuant,
        weight_bit_width=spec.weight_bits,
        return_quant_tensor=False,
    )


def linear(spec: QuantSpec, f_in: int, f_out: int) -> nn.Module:
    if spec.float_twin:
        return nn.Linear(f_in, f_out, bias=False)
    return QuantLinear(
        f_in,
        f_out,
        bias=False,
        weight_quant=WeightQuant,
        weight_bit_width=spec.weight_bits,
        return_quant_tensor=False,
    )


def is_quant_weight_layer(m: nn.Module) -> bool:
    return isinstance(m, (QuantConv2d, QuantLinear))


@torch.no_grad()
def clip_latent_weights(model: nn.Module, bound: float = 1.0) -> None:
    """Clip the latent (real-valued) weights of quantized layers to [-bound, bound] (BinaryConnect)."""
    for m in model.modules():
        if is_quant_weight_layer(m):
            m.weight.clamp_(-bound, bound)
