"""Building blocks shared by the network definitions: the network wrapper, conv/FC blocks, heads."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from bnn_flow.nets.quant import QuantSpec, activation, conv, input_quant, linear

BN_EPS = 1e-4  # as in FINN's nets; it enters the integer thresholds, so it is part of the model


class TensorNorm(nn.Module):
    """A single learned affine (scale, bias) normalisation over the whole tensor: FINN's classifier head.

    Training uses the batch statistics; inference the running ones (like a one-channel BatchNorm).
    """

    def __init__(self, eps: float = BN_EPS, momentum: float = 0.1) -> None:
        super().__init__()
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1))
        self.register_buffer("running_mean", torch.zeros(1))
        self.register_buffer("running_var", torch.ones(1))
        self.register_buffer("num_batches_tracked", torch.zeros((), dtype=torch.long))

    def reset_running_stats(self) -> None:
        self.running_mean.zero_()
        self.running_var.fill_(1.0)
        self.num_batches_tracked.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            mean = x.mean()
            var = x.var(unbiased=False)
            with torch.no_grad():
                self.num_batches_tracked += 1
                # momentum None = cumulative average, as in torch's BatchNorm (used by BN recalibration)
                f = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - f).add_(f * mean)
                self.running_var.mul_(1 - f).add_(f * x.var(unbiased=True))
            return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias
        return (x - self.running_mean) / torch.sqrt(self.running_var + self.eps) * self.weight + self.bias


class BnnNet(nn.Module):
    """features (conv part) -> flatten -> classifier; optional FINN-style `2x-1` input scaling first.

    The network takes float32 N,C,H,W images scaled to [0, 1] (DESIGN.md §7); every normalisation
    happens inside, so the exported QONNX takes the same input.
    """

    def __init__(
        self,
        features: nn.Sequential,
        classifier: nn.Sequential,
        *,
        bipolar_input: bool,
        input_shape: tuple[int, int, int],
        arch: str,
    ) -> None:
        super().__init__()
        self.features = features
        self.classifier = classifier
        self.bipolar_input = bipolar_input
        self.input_shape = input_shape
        self.arch = arch
        # Training-only variants (set by the training loop from the recipe; plain attributes, so they are
        # neither saved nor exported). Both leave the function the network computes unchanged.
        self.pool_before_norm = False
        self.padding_weight_grad = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bipolar_input:
            x = 2.0 * x - 1.0
        if self.training and (self.pool_before_norm or not self.padding_weight_grad):
            x = self._train_features(x)
        else:
            x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)

    def _train_features(self, x: torch.Tensor) -> torch.Tensor:
        """`features` with the training-only variants; same values as `self.features(x)` in eval mode.

        pool_before_norm: a BatchNorm2d -> activation -> MaxPool2d run is computed as pool -> BatchNorm ->
        activation (BinaryNet's order). In eval mode BatchNorm is a per-channel monotone affine map and the
        activation a monotone step, so they commute with the max over a window (a min where the BN scale is
        negative), and the exported conv -> BN -> sign -> pool graph computes exactly this. What changes is
        training: the batch statistics are those of the pooled values, so the threshold balances the pooled
        output instead of leaving the 2x2 OR of +-1 values at ~94% +1, and the gradient goes to the
        window's largest pre-activation rather than to its first +1.

        padding_weight_grad=False: a constant non-zero pad (+1 around binary maps) adds to the conv output as
        usual but gives no gradient to the weights. Otherwise the pad acts as a bias input shared by all input
        channels: every weight of a (output channel, tap) gets the same pad gradient, Adam moves them in
        lockstep, and on small maps their aligned sum swamps the data term.
        """
        layers = list(self.features)
        i = 0
        while i < len(layers):
            m = layers[i]
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if (not self.padding_weight_grad and isinstance(m, nn.ConstantPad2d) and m.value != 0
                    and isinstance(nxt, nn.Conv2d)):
                x = _conv_without_pad_weight_grad(m, nxt, x)
                i += 2
            elif (self.pool_before_norm and isinstance(m, nn.BatchNorm2d) and i + 2 < len(layers)
                  and isinstance(layers[i + 2], nn.MaxPool2d)):
                x = nxt(m(_monotone_pool(layers[i + 2], x, m.weight)))
                i += 3
            else:
                x = m(x)
                i += 1
        return x


def _monotone_pool(pool: nn.MaxPool2d, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Max-pool where the following per-channel scale is >= 0, min-pool where it is negative: the window's
    value that ends up largest after the scale."""
    positive = (scale >= 0).view(1, -1, 1, 1)
    return torch.where(positive, pool(x), -pool(-x))


def _conv_without_pad_weight_grad(pad: nn.ConstantPad2d, conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """conv(pad(x)) with the pad's share of the weight gradient removed (the input gradient is unchanged).

    conv is linear: conv(pad(x, c)) = conv(pad(x, 0)) + conv(ring of c). The ring is the same for every
    image, so it costs one single-image conv; its term is detached. Binary maps, +-1 weights: every term is
    an integer below 2^24, so the sum is exactly the float32 value of the padded conv.
    """
    data = conv(F.pad(x, pad.padding, value=0.0))
    ring = F.pad(torch.zeros_like(x[:1]), pad.padding, value=pad.value)
    return data + conv(ring).detach()


def scaled(channels: int, width: float) -> int:
    """Apply a width multiplier, keeping at least 8 channels."""
    return max(8, int(round(channels * width)))


def conv_block(
    spec: QuantSpec, c_in: int, c_out: int, *, first: bool, pad: int = 1, pool: bool = False,
    kernel: int = 3, stride: int = 1,
) -> list[nn.Module]:
    """[input quant] -> explicit pad -> conv -> BN -> activation -> [2x2 max-pool].

    The pad is an explicit layer so training and hardware see the same numbers: hidden binary maps are
    padded with +1 (zero is not bipolar); the first layer pads its integer input with 0.
    """
    layers: list[nn.Module] = [input_quant(spec)] if first else []
    if pad:
        layers.append(nn.ConstantPad2d(pad, 0.0 if first else spec.pad_value))
    layers += [conv(spec, c_in, c_out, kernel, stride=stride), nn.BatchNorm2d(c_out, eps=BN_EPS), activation(spec)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return layers


def fc_block(spec: QuantSpec, f_in: int, f_out: int, *, first: bool = False, dropout: float = 0.0) -> list[nn.Module]:
    """[input quant] -> linear -> BN -> activation [-> dropout]."""
    layers: list[nn.Module] = [input_quant(spec)] if first else []
    layers += [linear(spec, f_in, f_out), nn.BatchNorm1d(f_out, eps=BN_EPS), activation(spec)]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return layers


def classifier_head(spec: QuantSpec, f_in: int, classes: int, *, tensor_norm: bool = False) -> list[nn.Module]:
    """The last layer: binary (quantized) weights, then a per-class BatchNorm or FINN's TensorNorm.

    The compiler turns this affine into the host-side head; the hardware outputs the integer accumulators.
    """
    norm: nn.Module = TensorNorm() if tensor_norm else nn.BatchNorm1d(classes, eps=BN_EPS)
    return [linear(spec, f_in, classes), norm]


def fc_stack(spec: QuantSpec, f_in: int, hidden: list[int], classes: int, *, first: bool = False,
             dropout: float = 0.0, tensor_norm: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, f_out in enumerate(hidden):
        layers += fc_block(spec, f_in, f_out, first=first and i == 0, dropout=dropout)
        f_in = f_out
    layers += classifier_head(spec, f_in, classes, tensor_norm=tensor_norm)
    return nn.Sequential(*layers)
