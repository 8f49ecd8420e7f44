"""Nonuniform activations: an n-bit index and an integer level table, decoded where the next layer reads it.

A nonuniform activation quantizer (ENQ/KNQ, nets/nonuniform.py) exports as
`MultiThreshold(x, T) -> Cast(int64) -> Gather(table) -> Mul(scale)`: the MultiThreshold counts the float
thresholds reached (the index i, n bits), the table maps i to an integer level (strictly increasing), the Mul
scales it. Streamlining absorbs the layer's affine into integer thresholds as for a uniform activation; the
Mul(scale) moves into the next layer's affine; the `Cast -> Gather` pair (a level decode) moves down past what
commutes with it (max-pool: the table increases; reshapes; transposes; the sliding window, whose pad value becomes
that level's index) until it reads straight into the next matrix layer, which absorbs it (IntegerMVAU
`in_levels`). So the streams between layers carry the n-bit index, and each layer's dot product is over the
decoded integer levels: exact.
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from bnn_flow.transforms.base import (
    DECODE_COMMUTES,
    const,
    decode_table,
    new_names,
    reinfer,
    single_consumer,
    unsupported,
)


def decode_before(model: ModelWrapper, tensor: str) -> tuple[NodeProto, NodeProto, np.ndarray] | None:
    """(cast, gather, table) when `tensor` is a level decode's output, else None."""
    g = model.find_producer(tensor)
    table = None if g is None else decode_table(model, g)
    return None if table is None else (model.find_producer(g.input[1]), g, table)


def decoded_range(model: ModelWrapper, tensor: str) -> tuple[int, int] | None:
    """The least and greatest value of a tensor a level decode produced (through a Pad: with its value), or None
    for another tensor."""
    node = model.find_producer(tensor)
    if node is not None and node.op_type == "Pad":
        inner = decoded_range(model, node.input[0])
        if inner is None:
            return None
        v = const(model, node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros(1)
        return min(inner[0], int(v.reshape(-1)[0])), max(inner[1], int(v.reshape(-1)[0]))
    found = decode_before(model, tensor)
    return None if found is None else (int(found[2].min()), int(found[2].max()))


def _move_past(model: ModelWrapper, cast: NodeProto, gather: NodeProto, table: np.ndarray, n: NodeProto) -> None:
    """`x -> Cast -> Gather -> n -> y` becomes `x -> n -> Cast -> Gather -> y`."""
    if n.op_type == "SlidingWindow":
        inst = getCustomOp(n)
        pad = inst.get_nodeattr("pad_value")
        if any(inst.get_nodeattr("pad")):
            if pad not in table:
                raise unsupported(n, f"pads with {pad}, which is not a level of the nonuniform activation before "
                                     f"it ({table.tolist()}): pad with one of its levels (0 for ENQ/KNQ)")
            inst.set_nodeattr("pad_value", int(np.flatnonzero(table == pad)[0]))
    t = new_names(model, 1, "level_index")[0]
    n.input[0], cast.input[0], gather.output[0], n.output[0] = cast.input[0], t, n.output[0], t
    for d in (cast, gather):
        model.graph.node.remove(d)
    at = model.get_node_index(n) + 1
    model.graph.node.insert(at, gather)
    model.graph.node.insert(at, cast)


class MoveLevelDecodeDownstream(Transformation):
    """Move each level decode (`Cast -> Gather(table)`) past max-pools, reshapes, transposes and sliding windows
    (a sliding window's pad value becomes its level's index), so it reads straight into a matrix layer (or a Pad
    before one, which lowering makes a sliding window). Exact: the table increases, so the largest index is the
    largest level. Pre: none. Post: no decode feeds a commuting op."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        moved = False
        while self._move_one(model):
            moved = True
        return (reinfer(model) if moved else model), False

    @staticmethod
    def _move_one(model: ModelWrapper) -> bool:
        for g in model.get_nodes_by_op_type("Gather"):
            found = decode_before(model, g.output[0])
            n = single_consumer(model, g.output[0])
            if found is None or n is None or n.op_type not in DECODE_COMMUTES or n.input[0] != g.output[0]:
                continue
            cast, gather, table = found
            if single_consumer(model, cast.output[0]) is not gather:
                continue
            _move_past(model, cast, gather, table, n)
            return True
        return False
