"""Released models: a trained run -> a compact zoo file (bnn-flow zoo-pack), and a zoo file -> the network
(its QONNX export: bnn_flow.zoo.export). Needs torch and brevitas only, so a GPU machine can pack its runs.

Only what the deployed network computes is kept: the quantized weights (binary: one sign bit each; n bits:
the integer codes and the scale), the BatchNorm/TensorNorm parameters and statistics (the integer thresholds
and the head are computed from them at compile time, exactly as from a checkpoint), the recipe and the
measured accuracy. No optimizer state, no latent weight magnitudes: a rebuilt network computes the same
function in eval mode (its latent weights are the quantized values), so its export compiles to the same
integer graph as the original's, and the golden outputs are bit-identical.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bnn_flow.config import Recipe, recipe_from_dict
from bnn_flow.data import DATASETS, load_dataset
from bnn_flow.errors import BadInputError, CheckFailedError
from bnn_flow.fileio import write_bytes_atomic
from bnn_flow.nets import build_net
from bnn_flow.nets.common import BnnNet
from bnn_flow.nets.quant import is_quant_weight_layer
from bnn_flow.train.loop import full_float32
from bnn_flow.train.runs import check_finite_weights, load_run
from bnn_flow.zoo import format as zoo_format

# Issue #11's table: a recipe is released (a file in models/zoo/) only at or above its goal (full test set).
GOALS = {"bvgg16-cifar10": 0.88, "bcnn-cifar10": 0.90, "cnv-cifar10": 0.8422, "bcnn-mnist": 0.995,
         "bcnn-fashion-mnist": 0.93, "bcnn-gtsrb": 0.96, "bcnn-cnpb": 0.999, "tfc-mnist": 0.9317,
         "sfc-mnist": 0.9781, "lfc-mnist": 0.9888,
         "cnv-w1a2-cifar10": 0.8780, "cnv-w2a2-cifar10": 0.8903}  # issue #12: the Brevitas bnn_pynq anchors
EVAL_BATCH = 500


def state_tensors(model: BnnNet) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """The state dict in zoo form: quantized weights as sign bits or int8 codes (+ scale), the rest as is."""
    quant = {f"{name}.weight": m for name, m in model.named_modules() if is_quant_weight_layer(m)}
    tensors: dict[str, np.ndarray] = {}
    scales: dict[str, float] = {}
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if key in quant:
                q = quant[key].quant_weight()
                codes = q.int().cpu().numpy()
                scale = q.scale.detach().cpu().reshape(-1)
                if scale.numel() != 1:
                    raise BadInputError(f"{key}: per-channel weight scales are not supported by the zoo format")
                if int(q.bit_width) == 1:
                    tensors[key] = codes > 0  # binary codes are -1/+1 (sign(0) = +1 in brevitas)
                    if float(scale) != 1.0:
                        raise BadInputError(f"{key}: binary weight scale {float(scale)} != 1 is not supported")
                else:
                    tensors[key] = codes.astype(np.int8)
                    scales[key] = float(scale)
            elif t.dtype == torch.int64:
                tensors[key] = t.cpu().numpy().astype(np.int64)
            else:
                tensors[key] = t.detach().cpu().float().numpy()
    return tensors, scales


def _model_info(path: Path, info: Any) -> tuple[str, int, list[int], str]:
    if not isinstance(info, dict) or set(info) != {"arch", "num_classes", "input_shape", "dataset"}:
        raise BadInputError(f"{path}: 'model' must hold arch, num_classes, input_shape and dataset")
    shape, classes = info["input_shape"], info["num_classes"]
    if not (isinstance(shape, list) and len(shape) == 3 and all(type(v) is int and 0 < v <= 4096 for v in shape)
            and type(classes) is int and 1 < classes <= 100_000 and isinstance(info["dataset"], str)
            and isinstance(info["arch"], str)):
        raise BadInputError(f"{path}: 'model' has an invalid input_shape, num_classes, dataset or arch")
    if info["dataset"] not in DATASETS:
        raise BadInputError(f"{path}: unknown data set {info['dataset'][:40]!r} (known: {', '.join(DATASETS)})")
    return info["arch"], classes, shape, info["dataset"]


def rebuild(z: zoo_format.ZooFile, path: Path) -> tuple[Recipe, BnnNet]:
    """The recipe and the network (eval mode) of a zoo file; every tensor must fit the recipe's network."""
    recipe = recipe_from_dict(z.header["recipe"], source=f"{path} (its recipe)") \
        if isinstance(z.header["recipe"], dict) else None
    if recipe is None:
        raise BadInputError(f"{path}: 'recipe' must be a mapping")
    arch, classes, (c, h, _), _dataset = _model_info(path, z.header["model"])
    n = recipe.net
    if arch != n.arch:
        raise BadInputError(f"{path}: model arch {arch!r} differs from its recipe's net.arch {n.arch!r}")
    try:
        model = build_net(n.arch, num_classes=classes, in_channels=c, image_size=h, weight_bits=n.weight_bits,
                          act_bits=n.act_bits, in_bits=n.in_bits, width=n.width, pad=n.pad)
    except ValueError as e:
        raise BadInputError(f"{path}: its recipe's network cannot be built ({e})") from None
    want = model.state_dict()
    missing = [k for k in want if k not in z.tensors]
    extra = [k for k in z.tensors if k not in want]
    if missing or extra:
        what = f"lacks tensor {missing[0]!r}" if missing else f"has tensor {extra[0]!r} the network does not"
        raise BadInputError(f"{path} {what}: it does not fit its recipe's {n.arch} network")
    quant = {f"{name}.weight" for name, m in model.named_modules() if is_quant_weight_layer(m)}
    state = {}
    for key, ref in want.items():
        a = z.tensors[key]
        if tuple(a.shape) != tuple(ref.shape):
            raise BadInputError(f"{path}: tensor {key!r} has shape {list(a.shape)}, the network needs "
                                f"{list(ref.shape)}")
        state[key] = _to_torch(path, key, a, z.scales.get(key), key in quant, n.weight_bits, ref.dtype)
    model.load_state_dict(state)
    return recipe, model.eval()


def _to_torch(path: Path, key: str, a: np.ndarray, scale: float | None, is_weight: bool, bits: int,
              dtype: torch.dtype) -> torch.Tensor:
    """One stored tensor as the network's parameter; a quantized weight's kind must match its bit width."""
    kind = zoo_format._kind_of(a)
    want = ("sign" if bits == 1 else "int8") if is_weight else ("int64" if dtype == torch.int64 else "float32")
    if kind != want:
        raise BadInputError(f"{path}: tensor {key!r} is stored as {kind}, the network needs {want}")
    if kind == "sign":
        return torch.from_numpy(np.where(a, 1.0, -1.0).astype(np.float32))
    if kind == "int8":
        limit = 2 ** (bits - 1) - 1  # narrow range
        if np.abs(a.astype(np.int64)).max(initial=0) > limit:
            raise BadInputError(f"{path}: tensor {key!r} has codes outside +-{limit} ({bits}-bit weights)")
        return torch.from_numpy(a.astype(np.float32) * np.float32(scale))
    return torch.from_numpy(a.copy())


def load(path: Path) -> tuple[zoo_format.ZooFile, Recipe, BnnNet]:
    z = zoo_format.read(path)
    recipe, model = rebuild(z, path)
    check_finite_weights(model, str(path))
    return z, recipe, model


@torch.no_grad()
def accuracy(model: BnnNet, images: np.ndarray, labels: np.ndarray, device: str = "cpu") -> tuple[float, np.ndarray]:
    """float32 accuracy of the torch model (= the exported model's and golden's: compare checks it). On CUDA with
    TF32 off: with it on, cuDNN moved 521 of 10,000 CIFAR-10 labels of a BCNN across thresholds."""
    preds = []
    model = model.to(device)
    with full_float32():
        for i in range(0, len(images), EVAL_BATCH):
            x = torch.from_numpy((images[i:i + EVAL_BATCH].astype(np.float32) / 255.0).transpose(0, 3, 1, 2))
            preds.append(model(x.to(device)).argmax(1).cpu().numpy())
    model.cpu()
    pred = np.concatenate(preds) if preds else np.zeros(0, np.int64)
    return float((pred == labels).mean()) if len(labels) else math.nan, pred


def pack_run(run: Path, out: Path, *, checkpoint: str = "last", images: int | None = None,
             data_dir: str | None = None, device: str = "cpu") -> dict[str, Any]:
    """Write RUN's checkpoint as a zoo file with its accuracy measured on the test set (all of it unless
    `images`), from the packed weights themselves; returns the header."""
    if out.is_dir():  # before the minutes of evaluation
        raise BadInputError(f"--out {out} is a folder: give a file name, e.g. models/zoo/<recipe>.bnnz")
    loaded = load_run(run, checkpoint)
    check_finite_weights(loaded.model, f"{run}/{checkpoint}.pt")
    summary, recipe = loaded.summary, loaded.recipe
    tensors, scales = state_tensors(loaded.model)
    info = {"arch": recipe.net.arch, "num_classes": summary["num_classes"], "input_shape": summary["input_shape"],
            "dataset": summary["dataset"]}
    source = {"run": run.name, "checkpoint": checkpoint, "epochs": summary.get("epochs"),
              "train_images": summary.get("train_images"), "device": summary.get("device"),
              "torch": summary.get("torch"), "training_test_acc": summary.get("test_acc")}
    header = {"recipe": recipe.to_dict(), "model": info, "accuracy": {}, "source": source}
    draft = zoo_format.ZooFile(header, tensors, scales)
    _, rebuilt = rebuild(zoo_format.decode(out, zoo_format.encode(draft)), out)
    x, y = load_dataset(summary["dataset"], "test", data_dir, image_size=recipe.data.image_size)
    x, y = (x[:images], y[:images]) if images else (x, y)
    if device == "cuda" and not torch.cuda.is_available():
        raise BadInputError("--device cuda: no CUDA device is available here (use --device cpu)")
    acc, pred = accuracy(rebuilt, x, y, device)
    _, pred_run = accuracy(loaded.model, x, y, device)
    if not np.array_equal(pred, pred_run):
        raise CheckFailedError(f"the packed model's labels differ from {run}/{checkpoint}.pt's on "
                               f"{int((pred != pred_run).sum())} of {len(y)} test images")
    header["accuracy"] = {"test_acc": acc, "images": len(y), "dataset": summary["dataset"],
                          "measured": f"float32 torch model rebuilt from this file, on {device} (TF32 off; = exported "
                                      "QONNX = golden)",
                          "goal": GOALS.get(recipe.name)}
    write_bytes_atomic(out, zoo_format.encode(draft))
    return header
