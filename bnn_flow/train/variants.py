"""Training-only techniques of the BNN survey (issue #11 part 3) that leave the deployed network unchanged.

Each one changes gradients or the optimisation path only; the checkpoint and the export hold the same kind of
network (latent weights, BatchNorm, sign), so compile and compare need no change:

- `bireal_ste`: the sign's backward is Bi-Real Net's piecewise-polynomial approximation (d/dx = 2 - 2|x| on
  |x| < 1, else 0) instead of the clipped identity (1 on |x| <= 1). The forward value is brevitas' own sign.
- `rectify_latent_weights` (recu_tau): ReCU-style rectification of the latent weights after each step: each
  layer's latent weights are clamped to +-(the tau quantile of |w|). Large-magnitude "dead" weights that would
  need many steps to flip come back near the threshold; a clamp to a symmetric positive bound keeps every sign.
- `SignThresholds` (learned_thresholds): a learned per-channel threshold t before each sign: sign(BN(x) - t).
  BN's affine ends in + beta, so this is sign of an affine with beta - t: the checkpoint stores BN's bias as
  beta - t (`folded_state`), and the integer thresholds of the export absorb t exactly like beta. It is a
  separate parameter only for the optimiser: no weight decay, its own Adam moments.
- `set_weight_quant` (two_step): step 1 trains binary activations with real-valued weights (the weight
  quantizers off), step 2 binary weights too, starting from step 1's latent weights.
"""

from __future__ import annotations

import torch
from torch import nn

from bnn_flow.nets.quant import is_quant_weight_layer

THRESHOLD_KEY = "sign_thresholds"


def is_binary_activation(m: nn.Module) -> bool:
    """A 1-bit activation quantizer (brevitas QuantIdentity with a binary act_quant)."""
    quant = getattr(m, "act_quant", None)
    return type(m).__name__ == "QuantIdentity" and quant is not None and getattr(quant, "bit_width", lambda: 0)() == 1


def _sign_layers(model: nn.Module) -> list[tuple[nn.Module, nn.Module]]:
    """(BatchNorm, its binary activation) pairs: a BatchNorm whose next module in its Sequential is a sign."""
    pairs = []
    for seq in model.modules():
        if isinstance(seq, nn.Sequential):
            mods = list(seq)
            for a, b in zip(mods, mods[1:], strict=False):
                if isinstance(a, nn.modules.batchnorm._BatchNorm) and is_binary_activation(b):
                    pairs.append((a, b))
    return pairs


class BiRealSign(torch.autograd.Function):
    """Forward: the given sign values; backward: the derivative of Bi-Real's ApproxSign at the input."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, signed: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return signed.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * torch.clamp(2 - 2 * x.abs(), min=0), None


def bireal_ste(model: nn.Module) -> list:
    """Give every binary activation Bi-Real's backward (forward hooks; returns their handles)."""
    def hook(module: nn.Module, inputs: tuple, out: torch.Tensor) -> torch.Tensor:
        return BiRealSign.apply(inputs[0], out.detach()) if module.training else out
    return [m.register_forward_hook(hook) for m in model.modules() if is_binary_activation(m)]


@torch.no_grad()
def rectify_latent_weights(model: nn.Module, tau: float) -> None:
    """Clamp each quantized layer's latent weights to +-q, q = the tau quantile of |w| (q > 0: signs kept)."""
    for m in model.modules():
        if is_quant_weight_layer(m):
            w = m.weight.view(-1)
            k = max(1, min(w.numel(), int(round(tau * w.numel()))))
            q = float(w.abs().kthvalue(k).values)
            if q > 0:
                m.weight.clamp_(-q, q)


class SignThresholds:
    """Learned per-channel thresholds before the signs, registered on the model as `sign_thresholds` (so DDP
    and the optimiser see them) and folded into BatchNorm's bias whenever the state is saved."""

    def __init__(self, model: nn.Module) -> None:
        self.pairs = _sign_layers(model)
        params = nn.ParameterList([nn.Parameter(torch.zeros(bn.num_features, device=bn.weight.device))
                                   for bn, _ in self.pairs])
        model.add_module(THRESHOLD_KEY, params)
        self.params = params
        for (bn, _), t in zip(self.pairs, params, strict=True):
            bn.register_forward_hook(lambda mod, inp, out, t=t: out - t.view(1, -1, *([1] * (out.dim() - 2))))


def folded_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict with any learned thresholds folded into BatchNorm's bias (bias - t) and removed:
    the form every reader (export, zoo, resume) takes."""
    state = model.state_dict()
    params = getattr(model, THRESHOLD_KEY, None)
    if params is None:
        return state
    names = {id(m): n for n, m in model.named_modules()}
    for (bn, _), t in zip(_sign_layers(model), params, strict=True):
        key = f"{names[id(bn)]}.bias"
        state[key] = (state[key] - t.detach()).clone()
    return {k: v for k, v in state.items() if not k.startswith(f"{THRESHOLD_KEY}.")}


def load_folded(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a (folded) state into a model that may carry learned thresholds: they restart at 0, which gives the
    same function since the bias holds beta - t."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith(f"{THRESHOLD_KEY}.") for k in missing):
        model.load_state_dict(state)  # raises the usual RuntimeError naming the keys
    params = getattr(model, THRESHOLD_KEY, None)
    if params is not None:
        with torch.no_grad():
            for t in params:
                t.zero_()


def set_weight_quant(model: nn.Module, enabled: bool) -> None:
    """Switch the weight quantizers of every quantized layer on or off (two-step training's step 1: off)."""
    for m in model.modules():
        if is_quant_weight_layer(m):
            m.weight_quant.disable_quant = not enabled
