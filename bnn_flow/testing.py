"""Helpers shared by the tests, the benchmarks and the fuzz corpus: random but trained-like networks.

A freshly built network has BatchNorm statistics mean 0, var 1, gamma 1, beta 0: every threshold sits at
the middle of its accumulator range and no channel is flipped or constant, so such a net exercises little
of the compiler. `randomize_bn` gives it the statistics a trained net has.
"""

from __future__ import annotations

import torch


def randomize_bn(net: torch.nn.Module, seed: int = 0, zero_gammas: int = 2, negative_gammas: bool = True
                 ) -> torch.nn.Module:
    """Trained-like BatchNorm statistics, in place; returns the net in eval mode.

    Per BatchNorm: mean in [-3, 3) (thresholds off the middle of the range), var in [0.5, 1.5), beta in
    [-1, 1), gamma in [-1, 1) (negative gammas flip a channel's weights; [0, 1) without negative_gammas)
    and the first `zero_gammas` gammas exactly 0 (constant channels).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) * 6 - 3)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                gamma = torch.rand(n, generator=g) * 2 - (1 if negative_gammas else 0)
                gamma[:zero_gammas] = 0.0
                m.weight.copy_(gamma)
                m.bias.copy_(torch.rand(n, generator=g) * 2 - 1)
    return net.eval()
