"""B-VGG16: the 13 convolutions of VGG16 (binarized, explicit +1 padding) and FC 512, 512, classes."""

from __future__ import annotations

from torch import nn

from bnn_flow.nets.common import BnnNet, conv_block, fc_stack, scaled
from bnn_flow.nets.quant import QuantSpec

VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
FC = [512, 512]


def bvgg16(num_classes: int, in_channels: int, image_size: int, spec: QuantSpec, width: float = 1.0) -> BnnNet:
    layers: list[nn.Module] = []
    size, c_in = image_size, in_channels
    for i, item in enumerate(VGG16):
        if item == "M":
            continue
        c_out = scaled(int(item), width)
        pool = i + 1 < len(VGG16) and VGG16[i + 1] == "M"
        layers += conv_block(spec, c_in, c_out, first=not layers, pool=pool)
        c_in = c_out
        size = size // 2 if pool else size
    if size < 1:
        raise ValueError(f"B-VGG16 needs an input of at least 32x32 (got {image_size})")
    classifier = fc_stack(spec, c_in * size * size, [scaled(f, width) for f in FC], num_classes)
    return BnnNet(nn.Sequential(*layers), classifier, bipolar_input=False,
                  input_shape=(in_channels, image_size, image_size), arch="bvgg16")
