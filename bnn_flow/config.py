"""Model recipes (models/*.yaml): network, quantization, data set and training settings.

A recipe is parsed strictly: an unknown key, a value of the wrong type or an unknown network/data set
is a BadInputError that names the file and the key, so a typo never silently trains the wrong thing.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bnn_flow.errors import BadInputError


@dataclass
class NetConfig:
    arch: str = "bcnn"  # bcnn | bvgg16 | cnv | tfc | sfc | lfc
    width: float = 1.0  # channel/FC width multiplier
    weight_bits: int = 1
    act_bits: int = 1
    in_bits: int = 8  # bit width of the quantized network input
    pad: str = "one"  # how convolutions pad the hidden binary maps: one (+1, Larq's default) | zero (PyTorch's)
    act_quant: str = "uniform"  # hidden n-bit activations: uniform | relu | enq | knq (nets/quant.py QuantSpec)


@dataclass
class DataConfig:
    dataset: str = "mnist"  # mnist | fashion-mnist | cifar10 | gtsrb | cnpb | mnist-5k
    fallback: str | None = None  # used when `dataset` is not on disk and cannot be downloaded
    image_size: int | None = None  # resize (GTSRB, CNPB); None = the data set's default
    augment: str | None = "default"  # default | crop | crop-flip | none


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3  # Adam
    lr_min: float = 0.0  # cosine schedule floor
    schedule: str = "cosine"  # cosine | exponential
    lr_decay: float = 0.9  # per-epoch factor for the exponential schedule
    loss: str = "cross_entropy"  # cross_entropy | squared_hinge
    label_smoothing: float = 0.0
    weight_decay: float = 0.0  # applied to BatchNorm/float parameters only; never to latent binary weights
    seed: int = 0
    limit_train: int | None = None  # train on a deterministic subset of this many images
    amp: bool = True  # mixed precision, on CUDA only
    time_budget_s: float | None = None  # stop after the epoch that exceeds this wall time
    min_steps: int | None = None  # raise `epochs` so that a small data set still gets this many steps
    bn_recalibration_batches: int = 50  # re-estimate BatchNorm statistics after each epoch (0: off)
    # Training-only variants; the trained function and the exported graph keep their form (bnn_flow.nets.common)
    latent_init: float | None = None  # latent binary weights ~ U(-a, a); None: torch's default (1/sqrt(fan_in))
    pool_before_norm: bool = False  # train conv -> BN -> sign -> max-pool as conv -> max-pool -> BN -> sign
    padding_weight_grad: bool = True  # False: the constant +1 pads of binary maps give no weight gradient
    # Better training (bnn_flow.train.variants, bnn_flow.train.distill); all off by default
    distill_teacher: str | None = None  # float-twin (trained once, cached) or a teacher file's path
    distill_temperature: float = 4.0
    distill_alpha: float = 0.5  # weight of the soft (KL) term; 1 - alpha goes to the recipe's loss
    distill_teacher_epochs: int | None = None  # epochs of a float-twin teacher (None: train.epochs)
    recu_tau: float | None = None  # ReCU-style clamp of latent weights to the tau quantile of |w| after each step
    learned_thresholds: bool = False  # a learned per-channel threshold before each sign (folds into BN's bias)
    ste: str = "clipped"  # the sign's backward: clipped (identity on |x| <= 1) | bireal (Bi-Real's polynomial)
    two_step: float | None = None  # fraction of the steps trained with real-valued weights (binary activations)


@dataclass
class Recipe:
    name: str = "unnamed"
    description: str = ""
    net: NetConfig = field(default_factory=NetConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


CHOICES = {
    "net.arch": ("bcnn", "bvgg16", "cnv", "tfc", "sfc", "lfc"),
    "net.weight_bits": (1, 2, 4, 8),
    "net.act_bits": (1, 2, 4, 8),
    "net.in_bits": (1, 2, 4, 8),
    "net.pad": ("one", "zero"),
    "net.act_quant": ("uniform", "relu", "enq", "knq"),
    "data.dataset": ("mnist", "fashion-mnist", "cifar10", "gtsrb", "cnpb", "mnist-5k"),
    "data.fallback": (None, "mnist", "fashion-mnist", "cifar10", "gtsrb", "cnpb", "mnist-5k"),
    "data.augment": (None, "default", "none", "crop", "crop-flip"),
    "train.schedule": ("cosine", "exponential"),
    "train.loss": ("cross_entropy", "squared_hinge"),
    "train.ste": ("clipped", "bireal"),
}


def _check_type(value: Any, hint: Any, where: str, source: str) -> Any:
    """Accept value if it matches the annotation (ints are accepted where floats are expected; a float must
    be finite: YAML's .inf and .nan would train to NaN)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for opt in options:
        if opt is type(None) and value is None:
            return None
        if opt is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise BadInputError(f"{source}: '{where}' must be a finite number, got {value!r}")
            return float(value)
        if opt in (int, str, bool) and type(value) is opt:
            return value
    names = " or ".join("null" if o is type(None) else o.__name__ for o in options)
    raise BadInputError(f"{source}: '{where}' must be {names}, got {value!r}")


def _build(cls: type, data: Any, prefix: str, source: str) -> Any:
    if not isinstance(data, dict):
        where = prefix.rstrip(".") or "recipe"
        raise BadInputError(f"{source}: '{where}' must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        where = f"{prefix}{key}"
        if key not in fields:
            raise BadInputError(f"{source}: unknown key '{where}' (known: {', '.join(fields)})")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, f"{where}.", source)
            continue
        value = _check_type(value, hint, where, source)
        if where in CHOICES and value not in CHOICES[where]:
            allowed = ", ".join("null" if c is None else str(c) for c in CHOICES[where])
            raise BadInputError(f"{source}: '{where}' is {value!r}; choose one of {allowed}")
        kwargs[key] = value
    return cls(**kwargs)


def recipe_from_dict(data: dict[str, Any], source: str = "recipe") -> Recipe:
    recipe = _build(Recipe, data, "", source)
    check_recipe(recipe, source)
    return recipe


def check_recipe(r: Recipe, source: str) -> None:
    """The value rules of a recipe (types are checked on parsing); BadInputError naming `source` and the key."""
    t = r.train
    checks = [
        (t.epochs >= 1, "train.epochs", "must be >= 1"),
        (t.batch_size >= 1, "train.batch_size", "must be >= 1"),
        (0 < t.lr <= 10, "train.lr", "must be in (0, 10]"),
        (0 <= t.lr_min <= t.lr, "train.lr_min", "must be in [0, train.lr]"),
        (0 < t.lr_decay <= 1, "train.lr_decay", "must be in (0, 1]"),
        (0.0 <= t.label_smoothing < 1.0, "train.label_smoothing", "must be in [0, 1)"),
        (0 <= t.weight_decay < 1, "train.weight_decay", "must be in [0, 1)"),
        (t.time_budget_s is None or t.time_budget_s > 0, "train.time_budget_s", "must be > 0"),
        (t.batch_size <= 65536, "train.batch_size", "must be <= 65536"),
        (t.epochs <= 100_000, "train.epochs", "must be <= 100000"),
        (0 < r.net.width <= 16, "net.width", "must be in (0, 16]"),
        (r.data.image_size is None or 8 <= r.data.image_size <= 1024, "data.image_size", "must be in [8, 1024]"),
        (t.limit_train is None or t.limit_train >= 1, "train.limit_train", "must be >= 1"),
        (t.min_steps is None or t.min_steps >= 1, "train.min_steps", "must be >= 1"),
        (t.bn_recalibration_batches >= 0, "train.bn_recalibration_batches", "must be >= 0"),
        (t.latent_init is None or 0.0 < t.latent_init <= 1.0, "train.latent_init",
         "must be in (0, 1] (latent weights are clipped to [-1, 1]) or null"),
        (0 < t.distill_temperature <= 100, "train.distill_temperature", "must be in (0, 100]"),
        (0 <= t.distill_alpha <= 1, "train.distill_alpha", "must be in [0, 1]"),
        (t.distill_teacher_epochs is None or 1 <= t.distill_teacher_epochs <= 100_000, "train.distill_teacher_epochs",
         "must be in [1, 100000] or null"),
        (t.distill_teacher is None or 0 < len(t.distill_teacher) <= 4096, "train.distill_teacher",
         "must be float-twin or a teacher file's path"),
        (t.recu_tau is None or 0.5 <= t.recu_tau <= 1.0, "train.recu_tau", "must be in [0.5, 1] or null"),
        (t.two_step is None or 0 < t.two_step < 1, "train.two_step", "must be in (0, 1) (a fraction of the steps)"),
        (not t.learned_thresholds or r.net.act_bits == 1, "train.learned_thresholds", "needs net.act_bits: 1"),
        # n-bit weights have a constant scale (levels -1, 0, 1 at 2 bits): torch's default init (|w| ~ 1/sqrt(fan-in))
        # rounds every weight to 0 and the net never trains (measured: CNV-W2A2 stuck at 10% on CIFAR-10)
        (r.net.weight_bits == 1 or t.latent_init is not None, "train.latent_init",
         "must be set for net.weight_bits > 1 (FINN initializes U(-1, 1): latent_init: 1.0)"),
        (r.net.act_quant == "uniform" or r.net.act_bits in (2, 4), "net.act_quant",
         "relu, enq and knq need net.act_bits 2 or 4"),
        (r.net.in_bits > 1 or r.net.arch not in ("bcnn", "bvgg16"), "net.in_bits",
         "must be >= 2 for bcnn/bvgg16 (their input is pixel/255; a 1-bit input needs FINN's 2x-1 nets)"),
    ]
    for ok, key, why in checks:
        if not ok:
            raise BadInputError(f"{source}: '{key}' {why}")


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses a key given twice in one mapping (YAML keeps the last one silently,
    so a recipe would train with a value its author did not see)."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicated key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe file; errors name the file and the offending key."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"recipe {path} not found (recipes live in models/*.yaml)")
    try:
        data = yaml.load(path.read_bytes().decode("utf-8"), Loader=_StrictLoader)  # noqa: S506 - a safe loader
    except UnicodeDecodeError as e:
        raise BadInputError(f"{path}: not a UTF-8 text file (byte {e.start}): save the recipe as UTF-8") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise BadInputError(f"{path}:{line} is not valid YAML ({getattr(e, 'problem', e)})") from None
    if data is None:
        raise BadInputError(f"{path}: the recipe is empty")
    return recipe_from_dict(data, source=str(path))
