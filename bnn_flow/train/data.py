"""Choose the training data for a recipe (with its fallback) and build the loaders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bnn_flow.config import Recipe
from bnn_flow.data import find_dataset
from bnn_flow.data.loader import make_loaders
from bnn_flow.train.distributed import Dist


@dataclass
class RunData:
    name: str  # the data set actually used (the fallback when the recipe's one is absent)
    info: Any  # bnn_flow.data.DatasetInfo
    train: Any  # ArrayLoader
    test: Any
    image_size: int
    channels: int
    train_count: int
    test_count: int


def choose_dataset(recipe: Recipe, data_dir: str | None) -> str:
    """The recipe's data set, or its fallback when that one is not on disk (no download attempted then)."""
    d = recipe.data
    if d.fallback and find_dataset(d.dataset, data_dir) is None:
        return d.fallback
    return d.dataset


def resolve_data(recipe: Recipe, data_dir: str | None, dist: Dist, quiet: bool = False) -> RunData:
    name = choose_dataset(recipe, data_dir)
    if name != recipe.data.dataset and dist.is_main and not quiet:
        print(f"data set '{recipe.data.dataset}' not found: using the fallback '{name}'")
    augment = "none" if recipe.data.augment in (None, "none") else recipe.data.augment
    train, test, info = make_loaders(
        name, recipe.train.batch_size, root=data_dir, image_size=recipe.data.image_size,
        augment=None if augment == "none" else augment, seed=recipe.train.seed,
        limit_train=recipe.train.limit_train, rank=dist.rank, world_size=dist.world_size,
    )
    size = recipe.data.image_size or info.image_size
    return RunData(name=name, info=info, train=train, test=test, image_size=size, channels=info.channels,
                   train_count=train.dataset_size, test_count=test.dataset_size)
