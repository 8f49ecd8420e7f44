"""Network definitions (Brevitas, W1A1 by default) and their float twins.

`build_net(arch, ...)` is the one entry point; ARCHS lists the names recipes may use.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from bnn_flow.conventions import packed_bytes
from bnn_flow.nets.bcnn import bcnn
from bnn_flow.nets.common import BnnNet
from bnn_flow.nets.finn import cnv, fc_net
from bnn_flow.nets.quant import QuantSpec, clip_latent_weights, is_quant_weight_layer
from bnn_flow.nets.vgg import bvgg16

ARCHS: dict[str, Callable[..., BnnNet]] = {
    "bcnn": bcnn,
    "bvgg16": bvgg16,
    "cnv": cnv,
    "tfc": partial(fc_net, "tfc"),
    "sfc": partial(fc_net, "sfc"),
    "lfc": partial(fc_net, "lfc"),
}
# FINN's nets scale the input as 2x-1 inside the network; ours quantize pixel/255 directly.
INPUT_STYLE = {"bcnn": "unit", "bvgg16": "unit", "cnv": "bipolar", "tfc": "bipolar", "sfc": "bipolar",
               "lfc": "bipolar"}


def build_net(arch: str, *, num_classes: int, in_channels: int, image_size: int, weight_bits: int = 1,
              act_bits: int = 1, in_bits: int = 8, width: float = 1.0, float_twin: bool = False,
              pad: str = "one", act_quant: str = "uniform") -> BnnNet:
    """Build a network by name. Raises ValueError for an unknown arch or unsupported bit width."""
    if arch not in ARCHS:
        raise ValueError(f"unknown network {arch!r} (known: {', '.join(ARCHS)})")
    spec = QuantSpec(weight_bits, act_bits, in_bits, float_twin=float_twin, input_style=INPUT_STYLE[arch], pad=pad,
                     act_quant=act_quant)
    return ARCHS[arch](num_classes, in_channels, image_size, spec, width=width)


def weight_storage(model: nn.Module, weight_bits: int) -> dict[str, int]:
    """Parameter count and weight storage: everything as float32 vs quantized weights packed densely.

    Packed storage counts conv/FC weights at their bit width plus one int32 threshold (or float32
    affine parameter) per BatchNorm channel, which is what the compiled model stores.
    """
    n_params = sum(p.numel() for p in model.parameters())
    n_quant = sum(m.weight.numel() for m in model.modules() if is_quant_weight_layer(m))
    n_other = sum(m.num_features for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)))
    return {
        "parameters": n_params,
        "quantized_weights": n_quant,
        "float32_bytes": 4 * n_params,
        "packed_bytes": packed_bytes(n_quant, weight_bits) + 4 * n_other,
    }


__all__ = ["ARCHS", "BnnNet", "QuantSpec", "build_net", "clip_latent_weights", "weight_storage"]
