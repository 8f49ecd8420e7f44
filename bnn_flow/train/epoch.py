"""One training epoch: the loss, the optimiser step, the latent-weight clip and the training-only techniques.

Written so that a CUDA run is not bound by the host (issue #11 part 2: the H100 was 14% busy): no
device-to-host synchronisation per step (the running loss and accuracy stay on the device and are read every
PROGRESS_EVERY steps for the progress bar, and once at the end), and one multi-tensor clamp for all latent
weights instead of one kernel launch per layer. On the CPU these are the same operations in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm import tqdm

from bnn_flow.config import Recipe
from bnn_flow.nets.quant import is_quant_weight_layer
from bnn_flow.train import distill, variants

PROGRESS_EVERY = 25  # steps between progress-bar updates (each one a device sync on CUDA)


def loss_fn(recipe: Recipe, num_classes: int):
    t = recipe.train
    if t.loss == "cross_entropy":
        return nn.CrossEntropyLoss(label_smoothing=t.label_smoothing)

    def squared_hinge(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        target = 2 * nn.functional.one_hot(y, num_classes).to(out.dtype) - 1
        return torch.clamp(1 - target * out, min=0).pow(2).mean()

    return squared_hinge


def latent_weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if is_quant_weight_layer(m)]


@torch.no_grad()
def clip_all(latent: list[torch.Tensor], bound: float = 1.0) -> None:
    """BinaryConnect's clip of every latent weight to [-bound, bound], as two multi-tensor kernels."""
    if latent:
        torch._foreach_clamp_max_(latent, bound)
        torch._foreach_clamp_min_(latent, -bound)


@dataclass
class Extras:
    """The training-only techniques of a run (bnn_flow.train.variants / distill); defaults: none."""

    teacher: nn.Module | None = None
    temperature: float = 4.0
    alpha: float = 0.5
    recu_tau: float | None = None
    float_weight_steps: int | None = None  # two-step training: weights real-valued before this global step
    model: nn.Module | None = None  # the unwrapped model (DDP wraps the one that is called)
    latent: list[torch.Tensor] = field(default_factory=list)

    @classmethod
    def of(cls, recipe: Recipe, model: nn.Module, teacher: nn.Module | None, total_steps: int) -> Extras:
        t = recipe.train
        until = int(round(t.two_step * total_steps)) if t.two_step else None
        return cls(teacher, t.distill_temperature, t.distill_alpha, t.recu_tau, until, model, latent_weights(model))


def train_epoch(model, loader, opt, sched, criterion, device, amp: bool, desc: str, quiet: bool,
                extras: Extras | None = None) -> tuple[float, float]:
    extras = extras or Extras(latent=latent_weights(model))
    model.train()
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    bar = tqdm(loader, desc=desc, leave=False, disable=True if quiet else None, unit="batch")
    for step, (x, y) in enumerate(bar):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if extras.float_weight_steps is not None:  # the scheduler's count is the global step, also on resume
            variants.set_weight_quant(extras.model, sched.last_epoch >= extras.float_weight_steps)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = model(x)
            loss = criterion(out.float(), y)
            if extras.teacher is not None:
                with torch.no_grad():
                    soft = extras.teacher(x).float()
                loss = distill.distill_loss(loss, out.float(), soft, extras.temperature, extras.alpha)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        clip_all(extras.latent)
        if extras.recu_tau is not None:
            variants.rectify_latent_weights(model, extras.recu_tau)
        total_loss += loss.detach().double() * len(y)
        correct += (out.argmax(1) == y).sum()
        seen += len(y)
        if not quiet and step % PROGRESS_EVERY == 0:
            bar.set_postfix(loss=f"{float(total_loss) / seen:.3f}", acc=f"{int(correct) / seen:.3f}")
    return float(total_loss) / max(seen, 1), int(correct) / max(seen, 1)
