"""FINN's reference networks (Brevitas bnn_pynq examples), defined here in our own building blocks.

- CNV (CIFAR-10): 2x-1 input, 8-bit input quantizer; conv 3x3 without padding: 64, 64, MP, 128, 128, MP,
  256, 256; FC 512, 512, classes; TensorNorm head. Published W1A1: 84.22% on CIFAR-10.
- TFC / SFC / LFC (MNIST): 2x-1 input, binary input quantizer at W1A1 (in_bits=1, as FINN's configs),
  dropout 0.2 on the input and after every hidden layer; 3 hidden FC layers of 64 / 256 / 1024 neurons;
  TensorNorm head. Published LFC W1A1: 98.88% on MNIST.
"""

from __future__ import annotations

from torch import nn

from bnn_flow.nets.common import BnnNet, conv_block, fc_stack, scaled
from bnn_flow.nets.quant import QuantSpec, input_quant

CNV_CONVS = [(64, False), (64, True), (128, False), (128, True), (256, False), (256, False)]
CNV_FC = [512, 512]
FC_HIDDEN = {"tfc": 64, "sfc": 256, "lfc": 1024}
FC_DROPOUT = 0.2


def cnv(num_classes: int, in_channels: int, image_size: int, spec: QuantSpec, width: float = 1.0) -> BnnNet:
    layers: list[nn.Module] = []
    size, c_in = image_size, in_channels
    for out, pool in CNV_CONVS:
        c_out = scaled(out, width)
        layers += conv_block(spec, c_in, c_out, first=not layers, pad=0, pool=pool)
        c_in, size = c_out, size - 2
        size = size // 2 if pool else size
    if size < 1:
        raise ValueError(f"CNV needs an input of at least 32x32 (got {image_size})")
    classifier = fc_stack(spec, c_in * size * size, [scaled(f, width) for f in CNV_FC], num_classes,
                          tensor_norm=True)
    return BnnNet(nn.Sequential(*layers), classifier, bipolar_input=True,
                  input_shape=(in_channels, image_size, image_size), arch="cnv")


def fc_net(kind: str, num_classes: int, in_channels: int, image_size: int, spec: QuantSpec,
           width: float = 1.0) -> BnnNet:
    hidden = [scaled(FC_HIDDEN[kind], width)] * 3
    f_in = in_channels * image_size * image_size
    stack = fc_stack(spec, f_in, hidden, num_classes, dropout=FC_DROPOUT, tensor_norm=True)
    classifier = nn.Sequential(input_quant(spec), nn.Dropout(FC_DROPOUT), *stack)
    return BnnNet(nn.Sequential(), classifier, bipolar_input=True,
                  input_shape=(in_channels, image_size, image_size), arch=kind)
