"""BCNN: the seed's binarized CNN, 9 convolutions (a stage of 3, a stage of 6) and 3 fully connected layers.

conv 3x3 -> BN -> sign, 2x2 max-pool between blocks, explicit +1 padding. Layouts by input size:
- 28x28 (MNIST, Fashion-MNIST): 3xC64, MP; C128, C128, MP; C256, C256, MP; C256, C256; FC512, FC512, FC(k).
- 32x32 (CIFAR-10, GTSRB): 3xC128, MP; C256, C256, MP; C512, C512, MP; C512, C512, MP; FC1024, FC1024, FC(k).
- >= 64 (CNPB 100x100): an input stem, then the 32x32 layout. Stem (our choice): one integer-input conv 4x4,
  stride 3, no padding, with C64 -> BN -> sign: 100x100 -> 33x33 at ~1/9 of the MACs of a stride-1 stem,
  so the first (8-bit, most expensive per MAC) layer stays cheap in hardware; the nine binary convs follow.
Channel and FC widths scale with `width`.
"""

from __future__ import annotations

from torch import nn

from bnn_flow.nets.common import BnnNet, conv_block, fc_stack, scaled
from bnn_flow.nets.quant import QuantSpec

# (output channels, max-pool after) for the 3 + 6 convolutions
LAYOUT_28 = [(64, False), (64, False), (64, True), (128, False), (128, True),
             (256, False), (256, True), (256, False), (256, False)]
FC_28 = [512, 512]
LAYOUT_32 = [(128, False), (128, False), (128, True), (256, False), (256, True),
             (512, False), (512, True), (512, False), (512, True)]
FC_32 = [1024, 1024]
STEM_CHANNELS, STEM_KERNEL, STEM_STRIDE = 64, 4, 3


def bcnn(num_classes: int, in_channels: int, image_size: int, spec: QuantSpec, width: float = 1.0) -> BnnNet:
    layers: list[nn.Module] = []
    size, c_in = image_size, in_channels
    if image_size >= 64:
        c_stem = scaled(STEM_CHANNELS, width)
        layers += conv_block(spec, c_in, c_stem, first=True, pad=0, kernel=STEM_KERNEL, stride=STEM_STRIDE)
        size, c_in = (size - STEM_KERNEL) // STEM_STRIDE + 1, c_stem
    layout, fc = (LAYOUT_28, FC_28) if size < 32 else (LAYOUT_32, FC_32)
    for out, pool in layout:
        c_out = scaled(out, width)
        layers += conv_block(spec, c_in, c_out, first=not layers, pool=pool)
        c_in = c_out
        size = size // 2 if pool else size
    hidden = [scaled(f, width) for f in fc]
    classifier = fc_stack(spec, c_in * size * size, hidden, num_classes)
    return BnnNet(nn.Sequential(*layers), classifier, bipolar_input=False,
                  input_shape=(in_channels, image_size, image_size), arch="bcnn")
