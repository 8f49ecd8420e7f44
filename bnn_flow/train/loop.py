"""The quantization-aware training loop (bnn-flow train).

Adam with no weight decay on the latent binary weights, latent weights clipped to [-1, 1] after every
step, a per-step cosine or exponential learning-rate schedule, cross-entropy or squared hinge loss,
deterministic seeds, AMP (bfloat16 autocast) on CUDA, DDP under torchrun. After each epoch an atomic
checkpoint (last.pt, and best.pt when the test accuracy improved), metrics.csv, curves.png; at the end
summary.json.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from bnn_flow.config import Recipe, check_recipe, load_recipe
from bnn_flow.data.device_loader import on_device
from bnn_flow.errors import BadInputError
from bnn_flow.fileio import write_json_atomic, write_text_atomic
from bnn_flow.nets import build_net, weight_storage
from bnn_flow.nets.common import TensorNorm
from bnn_flow.nets.quant import is_quant_weight_layer
from bnn_flow.train import distill, distributed, variants
from bnn_flow.train.checkpoint import load_checkpoint, save_checkpoint, set_rng_state
from bnn_flow.train.data import RunData, resolve_data
from bnn_flow.train.epoch import Extras, loss_fn, train_epoch
from bnn_flow.train.metrics import plot_curves, write_metrics_csv


@dataclass
class TrainOptions:
    out: Path
    resume: bool = False
    device: str = "auto"
    data_dir: str | None = None
    epochs: int | None = None
    limit_train: int | None = None
    seed: int | None = None
    time_budget: float | None = None  # overrides train.time_budget_s
    quiet: bool = False


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BadInputError("--device cuda: no CUDA device is available here (use --device cpu or auto)")
    if name not in ("cpu", "cuda"):
        raise BadInputError(f"--device {name}: choose auto, cpu or cuda")
    return torch.device(name)


def build_model(recipe: Recipe, data: RunData) -> nn.Module:
    """The recipe's network with its training-only settings (initialization, training-time variants)."""
    n, t = recipe.net, recipe.train
    model = build_net(n.arch, num_classes=data.info.num_classes, in_channels=data.channels,
                      image_size=data.image_size, weight_bits=n.weight_bits, act_bits=n.act_bits,
                      in_bits=n.in_bits, width=n.width, pad=n.pad, act_quant=n.act_quant)
    if t.latent_init is not None:
        init_latent_weights(model, t.latent_init)
    model.pool_before_norm = t.pool_before_norm
    model.padding_weight_grad = t.padding_weight_grad
    if t.learned_thresholds:
        variants.SignThresholds(model)
    if t.ste == "bireal":
        variants.bireal_ste(model)
    return model


@torch.no_grad()
def init_latent_weights(model: nn.Module, bound: float) -> None:
    """Latent binary weights ~ U(-bound, bound), the same bound in every layer.

    Only the sign of a latent weight reaches the forward pass; its magnitude sets how many Adam steps (each
    about lr) it takes to flip. torch's default bound 1/sqrt(fan_in) is 0.015 for a 512-channel 3x3 conv, so
    at lr 0.005 a single step can flip a sixth of such a layer's weights.
    """
    for m in model.modules():
        if is_quant_weight_layer(m):
            m.weight.uniform_(-bound, bound)


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """Adam; weight decay only on float parameters (BatchNorm), never on the latent binary weights (nor on
    learned sign thresholds: a threshold decayed towards 0 is not a simpler model)."""
    thresholds = getattr(model, variants.THRESHOLD_KEY, None)
    latent = [m.weight for m in model.modules() if is_quant_weight_layer(m)]
    latent += list(thresholds.parameters()) if thresholds is not None else []
    latent_ids = {id(p) for p in latent}
    other = [p for p in model.parameters() if id(p) not in latent_ids]
    groups = [{"params": latent, "weight_decay": 0.0},
              {"params": other, "weight_decay": recipe.train.weight_decay}]
    # the fused kernel: one launch for all parameters instead of several per tensor (CUDA only)
    fused = all(p.is_cuda for p in model.parameters())
    return torch.optim.Adam(groups, lr=recipe.train.lr, fused=fused or None)


def make_scheduler(opt: torch.optim.Optimizer, recipe: Recipe, steps_per_epoch: int, epochs: int):
    t = recipe.train
    total = max(1, steps_per_epoch * epochs)
    floor = t.lr_min / t.lr

    def factor(step: int) -> float:
        if t.schedule == "cosine":
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
        return t.lr_decay ** (step / steps_per_epoch)

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


@torch.no_grad()
def recalibrate_norms(model: nn.Module, loader, device: torch.device, batches: int) -> None:
    """Re-estimate the BatchNorm/TensorNorm running statistics for the current weights.

    Latent binary weights keep flipping sign during training, so running averages collected over the
    epoch lag the final weights (seen: 97.0% -> 94.1% MNIST test accuracy between two epochs, 98.1% after
    recalibration). A cumulative average over `batches` training batches, in train mode with dropout
    off, fixes the statistics the exported integer thresholds are computed from. Deterministic: the
    loader's order depends only on (seed, epoch) and no global RNG is drawn.
    """
    norms = [m for m in model.modules() if isinstance(m, (nn.modules.batchnorm._BatchNorm, TensorNorm))]
    if not norms or batches <= 0:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    for i, (x, _) in enumerate(loader):
        if i >= batches:
            break
        model(x.to(device))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum


@contextmanager
def full_float32():
    """TF32 off for the duration: the recorded accuracy must be the exported model's.

    Measured on an H100: with torch's default cudnn TF32 convolutions, 521 of 10,000 CIFAR-10 test labels of a
    BCNN differed from the float32 CPU/golden labels (85.68% vs 85.90%); with TF32 off, none did.
    """
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@torch.no_grad()
def evaluate(model, loader, criterion, device) -> tuple[float, float]:
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    with full_float32():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            out = model(x)
            total_loss += criterion(out, y).item() * len(y)
            correct += (out.argmax(1) == y).sum().item()
            seen += len(y)
    return total_loss / max(seen, 1), correct / max(seen, 1)


def with_options(recipe: Recipe, opts: TrainOptions) -> Recipe:
    """The recipe with the command line's overrides (--seed, --epochs, --limit-train), checked like a recipe;
    the caller's recipe is not changed."""
    for flag, value in (("--epochs", opts.epochs), ("--limit-train", opts.limit_train)):
        if value is not None and value < 1:
            raise BadInputError(f"{flag} must be at least 1, got {value}")
    if opts.seed is not None and not 0 <= opts.seed < 2**32:
        raise BadInputError(f"--seed must be in [0, 2^32), got {opts.seed}")
    changes = {k: v for k, v in (("seed", opts.seed), ("epochs", opts.epochs), ("limit_train", opts.limit_train),
                                 ("time_budget_s", opts.time_budget)) if v is not None}
    recipe = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, **changes))
    check_recipe(recipe, "the command line")
    return recipe


def check_resume(recipe: Recipe, out: Path) -> None:
    """--resume continues RUN with the recipe it was started with: only train.epochs may differ (to train
    longer); anything else would silently mix two recipes in one run."""
    if not (out / "last.pt").is_file() or not (out / "recipe.yaml").is_file():
        raise BadInputError(f"--resume: {out} holds no run to resume (no last.pt and recipe.yaml): drop --resume "
                            "to start it")
    saved = load_recipe(out / "recipe.yaml").to_dict()
    given = recipe.to_dict()
    for part in (saved, given):
        part["train"].pop("epochs")
    diffs = [f"{section}.{key} ({saved[section][key]!r} in the run, {given[section][key]!r} now)"
             for section in ("net", "data", "train") for key in given[section]
             if given[section][key] != saved[section].get(key)]
    if diffs or saved["name"] != given["name"]:
        what = ", ".join(diffs) or f"name ({saved['name']!r} vs {given['name']!r})"
        raise BadInputError(f"--resume: the recipe differs from {out / 'recipe.yaml'} in {what}: resume with "
                            f"the run's own recipe ({out / 'recipe.yaml'}), or train into a new --out")


def train(recipe: Recipe, opts: TrainOptions) -> dict[str, Any]:
    """Train (or resume) a run; returns the summary written to RUN/summary.json (rank 0)."""
    recipe = with_options(recipe, opts)
    if opts.resume:
        check_resume(recipe, opts.out)
    dist = distributed.setup()
    device = distributed.device_for(pick_device(opts.device), dist)
    torch.manual_seed(recipe.train.seed)
    data = resolve_data(recipe, opts.data_dir, dist, quiet=opts.quiet)
    if recipe.train.min_steps and opts.epochs is None:
        epochs = max(recipe.train.epochs, math.ceil(recipe.train.min_steps / max(len(data.train), 1)))
        recipe = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, epochs=epochs))
    t = recipe.train
    data.train, data.test = on_device(data.train, device), on_device(data.test, device)
    model = build_model(recipe, data).to(device)
    if device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in model.modules()):
        model.to(memory_format=torch.channels_last)  # NHWC convolutions: the layout cuDNN runs fastest in bf16
    opt = make_optimizer(model, recipe)
    sched = make_scheduler(opt, recipe, len(data.train), t.epochs)
    criterion = loss_fn(recipe, data.info.num_classes)
    amp = t.amp and device.type == "cuda"
    log = (lambda *a: None) if (opts.quiet or not dist.is_main) else partial(print, flush=True)
    teacher = None
    if t.distill_teacher:
        def fit(float_model: nn.Module, epochs: int) -> None:
            f_opt = make_optimizer(float_model, recipe)
            f_sched = make_scheduler(f_opt, recipe, len(data.train), epochs)
            for e in range(1, epochs + 1):
                data.train.set_epoch(e)
                train_epoch(float_model, data.train, f_opt, f_sched, criterion, device, amp, f"teacher {e}/{epochs}",
                            opts.quiet)
        teacher = distill.make_teacher(recipe, data.name, data.info.num_classes, data.channels, data.image_size,
                                       fit, device, can_train=dist.world_size == 1, log=log)
    extras = Extras.of(recipe, model, teacher, len(data.train) * t.epochs)
    out = opts.out
    history: list[dict[str, Any]] = []
    start_epoch, best_acc = 0, -1.0
    if opts.resume:
        ckpt = load_checkpoint(out / "last.pt")
        variants.load_folded(model, ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        set_rng_state(ckpt["rng"])
        start_epoch, history, best_acc = ckpt["epoch"], ckpt["history"], ckpt["best_acc"]
    elif dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "recipe.yaml", yaml.safe_dump(recipe.to_dict(), sort_keys=False))
    wrapped = distributed.wrap(model, dist, device)
    started = time.time()
    for epoch in range(start_epoch + 1, t.epochs + 1):
        t0 = time.time()
        data.train.set_epoch(epoch)
        lr = opt.param_groups[0]["lr"]
        tr_loss, tr_acc = train_epoch(wrapped, data.train, opt, sched, criterion, device, amp,
                                      f"epoch {epoch}/{t.epochs}", opts.quiet or not dist.is_main, extras)
        train_seconds = time.time() - t0  # train_epoch ends with a device sync (its loss and accuracy)
        variants.set_weight_quant(model, True)  # statistics and accuracy of the deployed (binary) network
        recalibrate_norms(model, data.train, device, t.bn_recalibration_batches)
        te_loss, te_acc = evaluate(model, data.test, criterion, device)
        row = {"epoch": epoch, "lr": lr, "train_loss": tr_loss, "train_acc": tr_acc,
               "test_loss": te_loss, "test_acc": te_acc, "seconds": time.time() - t0, "train_seconds": train_seconds}
        history.append(row)
        log(f"epoch {epoch}/{t.epochs}: train loss {tr_loss:.4f} acc {100 * tr_acc:.2f}% | "
            f"test loss {te_loss:.4f} acc {100 * te_acc:.2f}% | {row['seconds']:.1f}s ({train_seconds:.1f}s training)")
        if dist.is_main:
            improved = te_acc > best_acc
            best_acc = max(best_acc, te_acc)
            save_checkpoint(out / "last.pt", epoch=epoch, model_state=variants.folded_state(model), optimizer=opt,
                            scheduler=sched, history=history, best_acc=best_acc)
            if improved:
                shutil.copyfile(out / "last.pt", out / ".best.pt.tmp")
                (out / ".best.pt.tmp").replace(out / "best.pt")
            write_metrics_csv(out / "metrics.csv", history)
            plot_curves(out / "curves.png", history, f"{recipe.name}: {data.name}")
        if t.time_budget_s is not None and time.time() - started > t.time_budget_s and epoch < t.epochs:
            log(f"time budget of {t.time_budget_s:.0f}s used up after epoch {epoch}: stopping early")
            break
    summary = write_summary(recipe, data, model, history, device, out) if dist.is_main else {}
    distributed.teardown(dist)
    return summary


def write_summary(recipe: Recipe, data: RunData, model: nn.Module, history: list[dict[str, Any]],
                  device: torch.device, out: Path) -> dict[str, Any]:
    last = history[-1] if history else {}
    best = max(history, key=lambda h: h["test_acc"]) if history else {}
    previous = json.loads((out / "summary.json").read_text()) if (out / "summary.json").is_file() else {}
    summary = {
        "name": recipe.name,
        "arch": recipe.net.arch,
        "dataset": data.name,
        "num_classes": data.info.num_classes,
        "input_shape": [data.channels, data.image_size, data.image_size],
        "train_images": data.train_count,
        "test_images": data.test_count,
        "epochs": last.get("epoch", 0),
        "test_acc": last.get("test_acc"),
        "best_test_acc": best.get("test_acc"),
        "best_epoch": best.get("epoch"),
        "train_seconds": sum(h["seconds"] for h in history),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "host": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "storage": weight_storage(model, recipe.net.weight_bits),
    }
    if "export" in previous:  # keep the export record of an earlier `bnn-flow export` of this run
        summary["export"] = previous["export"]
    write_json_atomic(out / "summary.json", summary)
    return summary
