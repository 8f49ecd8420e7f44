"""The compiler pipeline: QONNX -> tidy -> streamline -> lower -> xnor -> dataflow (DESIGN.md §3).

Each step is `step(model, cfg) -> model`; the model is saved as BUILD/NN_<step>.onnx after each step.
With verify, each step's model runs on sample inputs and is compared with the previous step's:
integer graphs must agree exactly (accumulators as dot products), the float -> integer transition
must give identical labels except on images with a threshold tie (a pre-sign value within 1e-4 of 0).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from onnx import NodeProto
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.util.cleanup import cleanup_model

from bnn_flow.build import Build, as_build
from bnn_flow.conventions import acc_to_dot
from bnn_flow.errors import BadInputError, CheckFailedError
from bnn_flow.head import apply_head, labels_of
from bnn_flow.qonnx_exec import load_qonnx
from bnn_flow.transaction import transaction
from bnn_flow.transforms.base import META_HEAD, Reinfer, apply_in_place, get_meta
from bnn_flow.transforms.dataflow import CheckDataflow, FuseMVAU
from bnn_flow.transforms.input_spec import ExtractInputSpec, model_input_spec
from bnn_flow.transforms.level_decode import MoveLevelDecodeDownstream
from bnn_flow.transforms.lower import (
    AbsorbTransposeIntoFlatten,
    CancelTransposes,
    CheckLowered,
    ConvToSlidingWindow,
    MakeInputNHWC,
    MaxPoolToNHWC,
    ThresholdToNHWC,
)
from bnn_flow.transforms.streamline import (
    AbsorbAffineSignIntoThreshold,
    CheckStreamlined,
    ExtractHead,
    FactorActivationScale,
    MoveScalarMulDownstream,
)
from bnn_flow.transforms.tidy import tidy
from bnn_flow.transforms.xnor import BipolarToBinary, CheckBinary

TIE_TOLERANCE = 1e-4


@dataclass
class CompileConfig:
    """Options of one compile. verify: check each step against the previous one on verify_images sample
    images (qonnx execution, slow) drawn with `seed`."""

    verify: bool = False
    verify_images: int = 4
    seed: int = 0


def _apply(model: ModelWrapper, *trafos) -> ModelWrapper:
    """Run transforms on one private copy of `model` (the caller's model stays intact for --verify).

    One deep copy and one cleanup per step instead of qonnx's copy + cleanup per transform: on a
    full-width VGG the copies alone cost seconds. Each transform rewrites all its matches per apply().
    """
    return apply_in_place(copy.deepcopy(model), *trafos).cleanup()


def step_tidy(model: ModelWrapper, cfg: CompileConfig) -> ModelWrapper:
    return tidy(copy.deepcopy(model))


def step_streamline(model: ModelWrapper, cfg: CompileConfig) -> ModelWrapper:
    return _apply(model, ExtractInputSpec(), Reinfer(), FactorActivationScale(), MoveScalarMulDownstream(),
                  MoveLevelDecodeDownstream(), AbsorbAffineSignIntoThreshold(), ExtractHead(), CheckStreamlined())


def step_lower(model: ModelWrapper, cfg: CompileConfig) -> ModelWrapper:
    return _apply(model, MakeInputNHWC(), ConvToSlidingWindow(), ThresholdToNHWC(), MaxPoolToNHWC(),
                  MoveLevelDecodeDownstream(), CancelTransposes(), AbsorbTransposeIntoFlatten(), CheckLowered())


def step_xnor(model: ModelWrapper, cfg: CompileConfig) -> ModelWrapper:
    return _apply(model, BipolarToBinary(), CheckBinary())


def step_dataflow(model: ModelWrapper, cfg: CompileConfig) -> ModelWrapper:
    return _apply(model, FuseMVAU(), CheckDataflow())


STEPS: list[tuple[str, Callable[[ModelWrapper, CompileConfig], ModelWrapper]]] = [
    ("tidy", step_tidy), ("streamline", step_streamline), ("lower", step_lower), ("xnor", step_xnor),
    ("dataflow", step_dataflow),
]
STEP_NAMES = [name for name, _ in STEPS]


def step_path(build: Build | Path, name: str) -> Path:
    """BUILD/NN_<name>.onnx, the model saved after step `name`."""
    return as_build(build).step_path(STEP_NAMES.index(name) + 1, name)


def _step_index(name: str | None, default: int) -> int:
    if name is None:
        return default
    if name not in STEP_NAMES:
        raise BadInputError(f"unknown step {name!r} (steps: {', '.join(STEP_NAMES)})")
    return STEP_NAMES.index(name)


# --- execution of any step's model (qonnx execute_onnx, one image at a time: models have batch 1) -----

def execute_step_model(model: ModelWrapper, x: np.ndarray, full: bool = False) -> list[dict]:
    """Run a step's model on float32 NCHW images x: applies the model's input spec (if streamlined)."""
    spec = model_input_spec(model)
    xin = (spec.apply(x) if spec is not None else x).astype(np.float32)
    name = model.graph.input[0].name
    shape = model.get_tensor_shape(name)
    return [execute_onnx(model, {name: xin[i : i + 1].reshape(shape)}, return_full_exec_context=full)
            for i in range(len(x))]


def outputs_as_scores(model: ModelWrapper, outs: list[dict]) -> tuple[np.ndarray, np.ndarray | None]:
    """(scores, integer dot products or None for float graphs) from execute_step_model's results."""
    raw = np.concatenate([o[model.graph.output[0].name].reshape(1, -1) for o in outs]).astype(np.float64)
    head = get_meta(model, META_HEAD)
    if head is None:
        return raw.astype(np.float32), None
    dot = acc_to_dot(np.round(raw).astype(np.int64), head)
    return apply_head(head, dot), dot


def tie_images(model: ModelWrapper, x: np.ndarray) -> np.ndarray:
    """Boolean per image: some activation's input lies within TIE_TOLERANCE of a decision boundary (float graph):
    0 for a sign, a half-integer multiple of the scale for an n-bit Quant (where rounding changes level), one of
    a nonuniform activation's thresholds (a MultiThreshold of one global row)."""
    acts = activation_boundaries(model)
    ctxs = execute_step_model(model, x, full=True)
    return np.array([any(near_boundary(c[n.input[0]], b).any() for n, b in acts) for c in ctxs])


Boundary = float | np.ndarray | None  # an n-bit Quant's scale, a nonuniform MultiThreshold's thresholds, a sign


def activation_boundaries(model: ModelWrapper) -> list[tuple[NodeProto, Boundary]]:
    """The activation quantizers of a float graph in graph order, with what decides their levels: the scale of
    an n-bit Quant (boundaries at half-integer multiples), None for a sign (0), a MultiThreshold's thresholds."""
    acts = []
    for n in model.graph.node:
        scale = model.get_initializer(n.input[1]) if n.op_type in ("BipolarQuant", "Quant", "MultiThreshold") else None
        if scale is None or model.get_initializer(n.input[0]) is not None:
            continue
        if n.op_type == "MultiThreshold":
            acts.append((n, scale.reshape(scale.shape[0], -1)))
        elif scale.size == 1:
            acts.append((n, None if n.op_type == "BipolarQuant" else float(scale.reshape(-1)[0])))
    return acts


def near_boundary(v: np.ndarray, boundary: Boundary) -> np.ndarray:
    """Per element of an activation's input v (N, C, ...): within TIE_TOLERANCE of a decision boundary."""
    if isinstance(boundary, np.ndarray):
        if boundary.shape[1] == 0 or v.ndim < 2 or boundary.shape[0] not in (1, v.shape[1]):
            return np.zeros(v.shape, dtype=bool)
        d = np.abs(np.moveaxis(v, 1, -1)[..., None] - boundary)  # channels last, against each channel's thresholds
        return np.moveaxis((d < TIE_TOLERANCE).any(-1), -1, 1)
    d = np.abs(v) if boundary is None else np.abs(np.mod(v / boundary, 1.0) - 0.5)
    return d < TIE_TOLERANCE


def compare_steps(prev: ModelWrapper, cur: ModelWrapper, x: np.ndarray, name: str) -> dict:
    """Compare two consecutive steps on x; raises CheckFailedError on a mismatch; returns a record."""
    ps, pd = outputs_as_scores(prev, execute_step_model(prev, x))
    cs, cd = outputs_as_scores(cur, execute_step_model(cur, x))
    rec = {"step": name, "images": int(len(x)), "ties": 0}
    if pd is not None and cd is not None:
        if not np.array_equal(pd, cd):
            raise CheckFailedError(f"step {name}: integer accumulators differ from the previous step")
        return rec
    differ = labels_of(ps) != labels_of(cs)
    if pd is None and cd is None:
        if differ.any():
            raise CheckFailedError(f"step {name}: labels differ from the previous step on {differ.sum()} images")
        return rec
    ties = tie_images(prev, x)
    rec["ties"] = int(ties.sum())
    bad = differ & ~ties
    if bad.any():
        raise CheckFailedError(f"step {name}: labels differ from the float graph on {bad.sum()} images "
                               "without a threshold tie")
    return rec


def sample_inputs(model: ModelWrapper, n: int, seed: int) -> np.ndarray:
    shape = model.get_tensor_shape(model.graph.input[0].name)
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, size=(n, *shape[1:])) / 255.0).astype(np.float32)


def _write_build_files(model: ModelWrapper, build: Build) -> None:
    spec = model_input_spec(model)
    if spec is not None:
        build.write_input_spec(spec)
    head = get_meta(model, META_HEAD)
    if head is not None:
        build.write_head(head)


def run_pipeline(model_path: str | Path, build: Build | str | Path, cfg: CompileConfig,
                 from_step: str | None = None, to_step: str | None = None, verify: bool = False,
                 then: Callable[[Build], object] | None = None) -> Path:
    """Run steps from_step..to_step (inclusive) as one transaction on BUILD (bnn_flow.transaction): a start
    at the first step records the source model in a fresh build, a later start reads the previous step's
    saved model from a copy of the build; `then(stage)` runs last, inside the transaction (the folding).

    Post (only when every step passed): BUILD/NN_<step>.onnx for each step run, input_spec.json, head.json,
    compile_log.json (step times, verify records), manifest.json. Returns the last saved model's path.
    """
    start = _step_index(from_step, 0)
    target = as_build(build)
    with transaction(target, fresh=start == 0) as stage:
        if start == 0:
            stage.record_source(Path(model_path))
        out = _run_steps(model_path, stage, cfg, start, _step_index(to_step, len(STEPS) - 1), verify)
        if then is not None:
            then(stage)
    return target.path / out.name


def _run_steps(model_path: str | Path, build: Build, cfg: CompileConfig, start: int, stop: int,
               verify: bool) -> Path:
    src = Path(model_path) if start == 0 else step_path(build, STEP_NAMES[start - 1])
    model = load_qonnx(src) if start == 0 else build.model(src.name)
    x = sample_inputs(model, cfg.verify_images, cfg.seed) if verify and start == 0 else None
    log, out = [], src
    for name, fn in STEPS[start : stop + 1]:
        t0 = time.perf_counter()
        new = fn(model, cfg)
        rec = {"step": name, "seconds": round(time.perf_counter() - t0, 3), "nodes": len(new.graph.node)}
        out = build.save_step(STEP_NAMES.index(name) + 1, name, new)
        _write_build_files(new, build)
        if x is not None and name != "tidy":
            rec["verify"] = compare_steps(model, new, x, name)
        elif x is not None:
            rec["verify"] = compare_steps(cleanup_model(model), new, x, name)
        log.append(rec)
        model = new
    build.write_compile_log({"steps": log})
    return out


def compile_model(onnx_path: str | Path, build: Build | str | Path, cfg: CompileConfig | None = None) -> Path:
    """Compile a QONNX model into BUILD (all steps). Returns the final dataflow model's path."""
    cfg = cfg or CompileConfig()
    return run_pipeline(onnx_path, build, cfg, verify=cfg.verify)
