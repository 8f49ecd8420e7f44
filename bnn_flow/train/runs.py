"""A finished training run folder (RUN/recipe.yaml, summary.json, last.pt / best.pt) read back as a network.

Used by export, zoo-pack and the torch reference target; it needs torch and brevitas only (no qonnx/onnx), so
that a GPU machine can pack its runs without the compiler's dependencies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bnn_flow.config import load_recipe
from bnn_flow.errors import BadInputError
from bnn_flow.nets import build_net
from bnn_flow.nets.common import BnnNet
from bnn_flow.train.checkpoint import load_checkpoint


@dataclass
class LoadedRun:
    run: Path
    recipe: Any
    summary: dict[str, Any]
    model: BnnNet


def load_run(run: Path, checkpoint: str = "last") -> LoadedRun:
    """Rebuild a run's network from RUN/recipe.yaml + RUN/summary.json and load a checkpoint into it."""
    if not run.is_dir():
        raise BadInputError(f"run folder {run} not found: train first (bnn-flow train RECIPE --out {run})")
    summary_path = run / "summary.json"
    if not summary_path.is_file():
        raise BadInputError(f"{summary_path} not found: the run has not finished training")
    try:
        summary = json.loads(summary_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInputError(f"{summary_path} is not valid JSON ({e}); train the run again") from None
    shape, classes = (summary.get("input_shape"), summary.get("num_classes")) if isinstance(summary, dict) else (0, 0)
    if not (isinstance(shape, list) and len(shape) == 3 and all(type(v) is int and 0 < v <= 4096 for v in shape)
            and type(classes) is int and 1 < classes <= 100_000 and isinstance(summary.get("dataset"), str)):
        raise BadInputError(f"{summary_path} lacks a valid input_shape, num_classes or dataset: train the run again")
    recipe = load_recipe(run / "recipe.yaml")
    c, h, w = shape
    n = recipe.net
    try:
        model = build_net(n.arch, num_classes=classes, in_channels=c, image_size=h,
                          weight_bits=n.weight_bits, act_bits=n.act_bits, in_bits=n.in_bits, width=n.width, pad=n.pad,
                          act_quant=n.act_quant)
    except ValueError as e:  # the recipe's network cannot take the run's images
        raise BadInputError(f"{run}/recipe.yaml: {e}: the recipe does not match the run in {run}") from None
    ckpt = load_checkpoint(run / f"{checkpoint}.pt")
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise BadInputError(f"{run}/{checkpoint}.pt does not fit the network in {run}/recipe.yaml "
                            f"({str(e).splitlines()[0]})") from None
    return LoadedRun(run, recipe, summary, model.eval())


def check_finite_weights(model: torch.nn.Module, where: str) -> None:
    """Every parameter and buffer (latent weights, BatchNorm statistics and affine) is finite: a NaN would
    become NaN thresholds. One line naming the tensor."""
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise BadInputError(f"{where}: tensor {name} holds NaN or infinite values (diverged training?): "
                                "retrain, or export an earlier checkpoint (--checkpoint best)")
