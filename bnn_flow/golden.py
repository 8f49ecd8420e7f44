"""The golden model: the build's layer plan executed with the numpy references, batched, on packed bits.

One interpreter of the graph: the same plan every back-end is generated from (bnn_flow/plan.py), one table
{layer class: how to run it}. Bit tensors travel packed (uint64 words along the last axis, conventions).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bnn_flow.build import Build, as_build
from bnn_flow.conventions import acc_to_dot, pack_bits
from bnn_flow.fileio import write_json_atomic
from bnn_flow.head import apply_head, labels_of
from bnn_flow.ops import fast
from bnn_flow.ops import reference as ref
from bnn_flow.plan import Flatten, Layer, MaxPool, MultiThresholdMvau, Mvau, Plan, Window, ZeroPadMvau, handler


@dataclass
class Tensor:
    """A value in flight: packed bits (channels = logical last-axis length) or integers."""

    data: np.ndarray
    bits: bool
    channels: int


Step = Callable[[Tensor], Tensor]


def _window(lay: Window) -> Step:
    def run(x: Tensor) -> Tensor:
        if x.bits:
            out = ref.sliding_window_bits(x.data, x.channels, lay.kernel, lay.stride, lay.pad, lay.pad_value)
        else:
            out = ref.sliding_window_ints(x.data, lay.kernel, lay.stride, lay.pad, lay.pad_value)
        return Tensor(out, x.bits, x.channels * lay.kernel[0] * lay.kernel[1])
    return run


def _maxpool(lay: MaxPool) -> Step:
    def run(x: Tensor) -> Tensor:
        pool = ref.maxpool_bits if x.bits else ref.maxpool_ints
        return Tensor(pool(x.data, lay.kernel, lay.stride), x.bits, x.channels)
    return run


def _mvau(lay: Mvau) -> Step:
    if lay.binary:
        w = pack_bits(lay.weights.astype(np.uint8))  # (MH, words(MW)) packed rows, prepared once

        def run(x: Tensor) -> Tensor:
            return Tensor(fast.mvau_binary(x.data, w, lay.mw, lay.thresholds), lay.out_bits, lay.mh)
        return run
    wt = np.ascontiguousarray(lay.weights.T)  # (MW, MH)
    lo, hi = lay.acc_range
    bound = int(max(np.abs(lo).max(initial=0), np.abs(hi).max(initial=0)))  # bounds every partial sum too

    decode = np.asarray(lay.in_levels, dtype=np.int64) if lay.in_levels else None  # index -> level

    def run_int(x: Tensor) -> Tensor:
        data = x.data if decode is None else decode[x.data]
        return Tensor(fast.mvau_integer(data, wt, lay.thresholds, bound), lay.out_bits, lay.mh)
    return run_int


def _multi_threshold_mvau(lay: MultiThresholdMvau) -> Step:
    accumulate = _mvau(dataclasses.replace(lay, thresholds=None))  # the plain MVAU's accumulators

    def run(x: Tensor) -> Tensor:
        return Tensor(ref.multi_threshold(accumulate(x).data, lay.thresholds, lay.out_offset), False, lay.mh)
    return run


def _zero_pad_mvau(lay: ZeroPadMvau) -> Step:
    w = pack_bits(lay.weights.astype(np.uint8))
    t = lay.position_thresholds()  # (OH, OW, MH): the output pixel's pad class picks its thresholds

    def run(x: Tensor) -> Tensor:
        return Tensor(pack_bits(fast.mvau_binary(x.data, w, lay.mw, None) >= t), True, lay.mh)
    return run


def _flatten(lay: Flatten) -> Step:
    def run(x: Tensor) -> Tensor:
        n = x.data.shape[0]
        if x.bits:
            c = x.channels * int(np.prod(x.data.shape[1:-1]))
            return Tensor(ref.repack_flatten(x.data, x.channels), True, c)
        return Tensor(x.data.reshape(n, -1), False, int(np.prod(x.data.shape[1:])))
    return run


GOLDEN: dict[type, Callable[..., Step]] = {Window: _window, MaxPool: _maxpool, Mvau: _mvau, ZeroPadMvau: _zero_pad_mvau,
                                           MultiThresholdMvau: _multi_threshold_mvau, Flatten: _flatten}


class GoldenModel:
    """Bit-exact reference execution of a compiled build (its plan + input spec + head)."""

    def __init__(self, build: Build | str | Path, batch: int = 256, plan: Plan | None = None) -> None:
        self.build = as_build(build)
        self.plan = plan if plan is not None else self.build.plan(folded=False)  # folding changes no value
        self.spec = self.plan.spec
        self.head = self.plan.head
        self.layers: list[Layer] = list(self.plan.layers)
        self._steps = [handler(GOLDEN, lay, "golden model")(lay) for lay in self.layers]
        self.batch = batch

    def input_tensor(self, q: np.ndarray) -> Tensor:
        """The graph's input integers (InputSpec.apply of the images) as the first tensor."""
        if self.spec.bits:
            return Tensor(pack_bits(q.astype(np.uint8)), True, q.shape[-1])
        return Tensor(q, False, q.shape[-1])

    def _forward(self, q: np.ndarray, trace: list | None = None) -> np.ndarray:
        t = self.input_tensor(q)
        for layer, step in zip(self.layers, self._steps, strict=True):
            out = step(t)
            if trace is not None:
                trace.append((layer, t, out))
            t = out
        return t.data

    def run_integer_q(self, q: np.ndarray) -> np.ndarray:
        """The graph's integer output (int64 N x classes) for its input integers q (N, ...)."""
        q = np.asarray(q)
        outs = [self._forward(q[i : i + self.batch]) for i in range(0, len(q), self.batch)]
        if not outs:
            return np.zeros((0, self.plan.classes), dtype=np.int64)
        return np.concatenate(outs).reshape(len(q), -1).astype(np.int64)

    def run_integer(self, x: np.ndarray) -> np.ndarray:
        """The graph's integer output (last layer's accumulators as the hardware emits them), int64 N x classes,
        for float32 NCHW pixel/255 images x."""
        return self.run_integer_q(self.spec.apply(np.asarray(x, dtype=np.float32)))

    def to_dot(self, acc: np.ndarray) -> np.ndarray:
        return acc_to_dot(acc, self.head)

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores float32 N x classes after the head, labels int64; ties -> lowest index)."""
        scores = apply_head(self.head, self.to_dot(self.run_integer(x)))
        return scores, labels_of(scores)

    def dump_vectors(self, x: np.ndarray, out_dir: str | Path | None = None) -> Path:
        """Write each layer's input and output (packed words / integers) as .npy + manifest.json."""
        out_dir = Path(out_dir) if out_dir is not None else self.build.vectors_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        trace: list = []
        self._forward(self.spec.apply(np.asarray(x, dtype=np.float32)), trace)
        manifest = []
        for i, (layer, t_in, t_out) in enumerate(trace):
            entry = {"index": i, "layer": layer.name, "kind": layer.kind}
            for tag, t in (("in", t_in), ("out", t_out)):
                name = f"{i:02d}_{_file_safe(layer.name)}_{tag}.npy"
                np.save(out_dir / name, t.data)
                entry[tag] = {"file": name, "packed_bits": t.bits, "channels": t.channels,
                              "shape": list(t.data.shape)}
            manifest.append(entry)
        write_json_atomic(out_dir / "manifest.json", {"layers": manifest})
        return out_dir


def _file_safe(name: str) -> str:
    """A layer name as a file name part (names come from the model: never a path)."""
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in name)[:64]
