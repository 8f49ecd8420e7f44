"""Knowledge distillation from a float teacher (recipe: train.distill_teacher).

The teacher is the float twin of the recipe's network (same layers, ReLU instead of sign, float weights):
either trained once here and cached under ~/.cache/bnn-flow/teachers/ (keyed by everything that determines
it), or a teacher file given by path. Loss = (1 - alpha) * the recipe's loss + alpha * T^2 * KL(teacher's
softened distribution || student's), Hinton et al.; T^2 keeps the soft term's gradient scale independent of T.
Teacher files are read with torch.load(weights_only=True) and checked like checkpoints.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from bnn_flow.cache import cache_dir
from bnn_flow.config import Recipe
from bnn_flow.errors import BadInputError
from bnn_flow.fileio import write_bytes_atomic
from bnn_flow.nets import build_net

FORMAT = "bnn-flow-teacher-v1"
AUTO = "float-twin"


def float_twin(recipe: Recipe, num_classes: int, channels: int, image_size: int) -> nn.Module:
    n = recipe.net
    return build_net(n.arch, num_classes=num_classes, in_channels=channels, image_size=image_size,
                     weight_bits=n.weight_bits, act_bits=n.act_bits, in_bits=n.in_bits, width=n.width, pad=n.pad,
                     act_quant=n.act_quant, float_twin=True)


def teacher_key(recipe: Recipe, dataset: str, num_classes: int, channels: int, image_size: int) -> dict[str, Any]:
    """Everything the cached teacher depends on."""
    t = recipe.train
    return {"format": FORMAT, "arch": recipe.net.arch, "width": recipe.net.width, "dataset": dataset,
            "classes": num_classes, "channels": channels, "image_size": image_size, "augment": recipe.data.augment,
            "limit_train": t.limit_train, "seed": t.seed, "epochs": t.distill_teacher_epochs or t.epochs,
            "batch_size": t.batch_size, "lr": t.lr, "lr_min": t.lr_min, "schedule": t.schedule, "loss": t.loss,
            "torch": torch.__version__.split("+")[0]}


def save_teacher(path: Path, model: nn.Module, key: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "key": json.dumps(key, sort_keys=True), "model": model.state_dict()}, buf)
    write_bytes_atomic(path, buf.getvalue())


def load_teacher(path: Path, model: nn.Module) -> nn.Module:
    """Load a teacher file into the float twin `model`; one-line BadInputError for anything else."""
    if not path.is_file():
        raise BadInputError(f"teacher {path} not found: give a teacher file or distill_teacher: {AUTO}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for damaged files
        raise BadInputError(f"teacher {path} is corrupt or not a teacher file ({type(e).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("model"), dict):
        raise BadInputError(f"teacher {path} is not a {FORMAT} file (written by distill_teacher: {AUTO})")
    try:
        model.load_state_dict(data["model"])
    except RuntimeError as e:
        raise BadInputError(f"teacher {path} does not fit the float twin of this recipe's network "
                            f"({str(e).splitlines()[0]})") from None
    if not all(bool(torch.isfinite(v).all()) for v in data["model"].values() if v.is_floating_point()):
        raise BadInputError(f"teacher {path} holds NaN or infinite values: train it again")
    return model


def make_teacher(recipe: Recipe, dataset: str, num_classes: int, channels: int, image_size: int,
                 fit: Callable[[nn.Module, int], None], device: torch.device, can_train: bool,
                 log: Callable[..., None]) -> nn.Module:
    """The recipe's teacher in eval mode on `device`, frozen. `fit(model, epochs)` trains a float model with the
    recipe's optimiser and schedule (the training loop's own code)."""
    model = float_twin(recipe, num_classes, channels, image_size)
    given = recipe.train.distill_teacher
    if given != AUTO:
        load_teacher(Path(given), model)
    else:
        key = teacher_key(recipe, dataset, num_classes, channels, image_size)
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
        path = cache_dir("teachers", f"{recipe.net.arch}-{dataset}-{digest}.pt")
        if path.is_file():
            log(f"distillation: cached float teacher {path}")
            load_teacher(path, model)
        elif not can_train:
            raise BadInputError(f"distillation under torchrun: train the float teacher first in one process (it is "
                                f"cached at {path}), or give distill_teacher: PATH")
        else:
            log(f"distillation: training the float teacher ({key['epochs']} epochs), cached at {path}")
            model.to(device)
            fit(model, key["epochs"])
            save_teacher(path, model.cpu(), key)
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def distill_loss(base: torch.Tensor, student: torch.Tensor, teacher: torch.Tensor, temperature: float,
                 alpha: float) -> torch.Tensor:
    """(1 - alpha) * base + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))."""
    t = temperature
    kl = F.kl_div(F.log_softmax(student / t, dim=1), F.log_softmax(teacher / t, dim=1), reduction="batchmean",
                  log_target=True)
    return (1 - alpha) * base + alpha * t * t * kl
