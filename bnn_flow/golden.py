"""The golden model: the final dataflow graph executed with the numpy references, batched, on packed bits.

Our own topological executor (the graph is stored sorted): one reference call per node per batch,
no per-node ONNX sessions. Bit tensors travel packed (uint64 words along the last axis).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bnn_flow.conventions import pack_bits
from bnn_flow.errors import BadInputError
from bnn_flow.fileio import write_json_atomic
from bnn_flow.head import apply_head, labels_of
from bnn_flow.ops import fast
from bnn_flow.ops import reference as ref
from bnn_flow.qonnx_exec import load_qonnx
from bnn_flow.transforms.input_spec import InputSpec, load_input_spec


@dataclass
class Tensor:
    """A value in flight: packed bits (channels = logical last-axis length) or integers."""

    data: np.ndarray
    bits: bool
    channels: int


def _attrs(node) -> dict:
    inst = getCustomOp(node)
    return {k: inst.get_nodeattr(k) for k in inst.get_nodeattr_types()}


class _Layer:
    """One node with everything prepared once (packed weights, thresholds, windows)."""

    def __init__(self, model: ModelWrapper, node) -> None:
        self.node, self.op = node, node.op_type
        self.a = _attrs(node) if node.domain == "bnn_flow.ops" else {}
        if self.op in ("BinaryMVAU", "IntegerMVAU"):
            w = model.get_initializer(node.input[1])
            self.w = ref.pack_weights(w) if self.op == "BinaryMVAU" else w.astype(np.int64)
            self.w_absmax = int(np.abs(w).sum(axis=0).max())
            self.t = model.get_initializer(node.input[2]).astype(np.int64) if self.a["act"] == "threshold" else None

    def __call__(self, x: Tensor) -> Tensor:
        a = self.a
        if self.op == "SlidingWindow":
            k, s, pad = tuple(a["kernel"]), tuple(a["stride"]), tuple(a["pad"])
            if x.bits:
                out = ref.sliding_window_bits(x.data, x.channels, k, s, pad, a["pad_value"])
            else:
                out = ref.sliding_window_ints(x.data, k, s, pad, a["pad_value"])
            return Tensor(out, x.bits, x.channels * k[0] * k[1])
        if self.op == "StreamingMaxPool":
            k, s = tuple(a["kernel"]), tuple(a["stride"])
            out = ref.maxpool_bits(x.data, k, s) if x.bits else ref._windows(x.data, k, s).max(axis=(3, 4))
            return Tensor(out, x.bits, x.channels)
        if self.op == "BinaryMVAU":
            out = fast.mvau_binary(x.data, self.w, a["MW"], self.t)
            return Tensor(out, self.t is not None, a["MH"])
        if self.op == "IntegerMVAU":
            bound = int(np.abs(x.data).max(initial=0)) * self.w_absmax
            out = fast.mvau_integer(x.data, self.w, self.t, bound)
            return Tensor(out, self.t is not None, a["MH"])
        if self.op in ("Flatten", "Reshape"):
            n = x.data.shape[0]
            if x.bits:
                c = x.channels * int(np.prod(x.data.shape[1:-1]))
                return Tensor(ref.repack_flatten(x.data, x.channels), True, c)
            return Tensor(x.data.reshape(n, -1), False, int(np.prod(x.data.shape[1:])))
        raise BadInputError(f"golden model: node {self.node.name} ({self.op}) is not a dataflow layer")


def final_model_path(build_dir: Path) -> Path:
    paths = sorted(Path(build_dir).glob("*_dataflow.onnx"))
    if not paths:
        raise BadInputError(f"no *_dataflow.onnx in {build_dir}: compile the model first")
    return paths[-1]


class GoldenModel:
    """Bit-exact reference execution of a compiled build (BUILD/NN_dataflow.onnx + input spec + head)."""

    def __init__(self, build_dir: str | Path, batch: int = 256) -> None:
        self.build_dir = Path(build_dir)
        self.model = load_qonnx(final_model_path(self.build_dir))
        self.spec: InputSpec = load_input_spec(self.build_dir)
        self.head = json.loads((self.build_dir / "head.json").read_text())
        self.layers = [_Layer(self.model, n) for n in self.model.graph.node]
        self.batch = batch

    def input_tensor(self, x: np.ndarray) -> Tensor:
        """Float32 NCHW pixel/255 images -> the graph's input (integers, or packed bits)."""
        q = self.spec.apply(x)
        if self.spec.bits:
            return Tensor(pack_bits(q.astype(np.uint8)), True, q.shape[-1])
        return Tensor(q, False, q.shape[-1])

    def _forward(self, x: np.ndarray, trace: list | None = None) -> np.ndarray:
        t = self.input_tensor(x)
        for layer in self.layers:
            out = layer(t)
            if trace is not None:
                trace.append((layer.node, t, out))
            t = out
        return t.data

    def run_integer(self, x: np.ndarray) -> np.ndarray:
        """The graph's integer output (last layer's accumulators as the hardware emits them), int64 N x classes."""
        x = np.asarray(x, dtype=np.float32)
        outs = [self._forward(x[i : i + self.batch]) for i in range(0, len(x), self.batch)]
        return np.concatenate(outs).reshape(len(x), -1).astype(np.int64)

    def to_dot(self, acc: np.ndarray) -> np.ndarray:
        a, b = self.head["acc_to_dot"]
        return acc * a + b

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores float32 N x classes after the head, labels int64; ties -> lowest index)."""
        dot = self.to_dot(self.run_integer(x))
        scores = apply_head(self.head, dot)
        return scores, labels_of(scores)

    def dump_vectors(self, x: np.ndarray, out_dir: str | Path | None = None) -> Path:
        """Write each layer's input and output (packed words / integers) as .npy + manifest.json."""
        out_dir = Path(out_dir) if out_dir is not None else self.build_dir / "vectors"
        out_dir.mkdir(parents=True, exist_ok=True)
        trace: list = []
        self._forward(np.asarray(x, dtype=np.float32), trace)
        manifest = []
        for i, (node, t_in, t_out) in enumerate(trace):
            entry = {"index": i, "node": node.name, "op": node.op_type}
            for tag, t in (("in", t_in), ("out", t_out)):
                name = f"{i:02d}_{node.name}_{tag}.npy"
                np.save(out_dir / name, t.data)
                entry[tag] = {"file": name, "packed_bits": t.bits, "channels": t.channels,
                              "shape": list(t.data.shape)}
            manifest.append(entry)
        write_json_atomic(out_dir / "manifest.json", {"layers": manifest})
        return out_dir
