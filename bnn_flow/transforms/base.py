"""Shared helpers of the graph transforms: errors that name the node, metadata, constants, rewiring."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from onnx import NodeProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.general import GiveUniqueNodeNames, RemoveUnusedTensors
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import get_by_name

from bnn_flow.conventions import IntType
from bnn_flow.errors import BadInputError

META_INPUT_SPEC = "bnn_flow.input_spec"
META_HEAD = "bnn_flow.head"
ELEMENTWISE = ("Mul", "Add", "Sub", "Div")
SHAPE_OPS = ("Reshape", "Flatten")


def unsupported(node: NodeProto, reason: str) -> BadInputError:
    """The one-line error for a node the compiler cannot handle."""
    return BadInputError(f"unsupported graph: node {node.name or '?'} ({node.op_type}): {reason}")


def get_meta(model: ModelWrapper, key: str) -> Any | None:
    raw = model.get_metadata_prop(key)
    return None if raw is None else json.loads(raw)


def set_meta(model: ModelWrapper, key: str, value: Any) -> None:
    model.set_metadata_prop(key, json.dumps(value))


def attr(node: NodeProto, name: str, default: Any = None) -> Any:
    a = get_by_name(node.attribute, name)
    return default if a is None else helper.get_attribute_value(a)


def const(model: ModelWrapper, name: str) -> np.ndarray | None:
    """The initializer behind a tensor name, or None when the tensor is dynamic."""
    return model.get_initializer(name) if name else None


def scalar_const(model: ModelWrapper, name: str) -> float | None:
    """A size-1 initializer's value as a Python float, else None."""
    c = const(model, name)
    return float(np.asarray(c).reshape(-1)[0]) if c is not None and np.asarray(c).size == 1 else None


def single_consumer(model: ModelWrapper, tensor: str) -> NodeProto | None:
    """The only consumer of a tensor that is not a graph output, else None."""
    if tensor in [o.name for o in model.graph.output]:
        return None
    cons = model.find_consumers(tensor)
    return cons[0] if cons is not None and len(cons) == 1 else None


def bypass_node(model: ModelWrapper, node: NodeProto) -> None:
    """Remove a single-data-input node, feeding its consumers (or the graph output) with its input.

    Post: node gone; every use of node.output[0] now reads node.input[0].
    """
    src, dst = node.input[0], node.output[0]
    outputs = [o.name for o in model.graph.output]
    model.graph.node.remove(node)
    if dst in outputs:  # keep the graph output's name: rename the producer side instead
        producer = model.find_producer(src)
        if producer is None:
            raise unsupported(node, "would connect the graph input directly to the output")
        drop_annotation(model, dst)
        model.rename_tensor(src, dst)
        return
    for n in model.graph.node:
        for i, name in enumerate(n.input):
            if name == dst:
                n.input[i] = src


def insert_after(model: ModelWrapper, tensor: str, make: Any) -> str:
    """Insert a node that reads `tensor`; all former consumers read the node's output instead.

    `make(in_name, out_name) -> NodeProto`. Returns the new output's name.
    """
    new = new_names(model, 1)[0]
    consumers = model.find_consumers(tensor) or []
    for n in consumers:
        for i, name in enumerate(n.input):
            if name == tensor:
                n.input[i] = new
    if tensor in [o.name for o in model.graph.output]:
        raise ValueError("insert_after: tensor is a graph output")
    model.graph.node.append(make(tensor, new))
    return new


def clear_value_info(model: ModelWrapper) -> None:
    """Drop intermediate shape info so InferShapes recomputes it after a rewrite."""
    del model.graph.value_info[:]


def channel_vector(c: np.ndarray, out_shape: list[int] | tuple[int, ...], axis: int, node: NodeProto,
                   why: str = "constant operand varies along non-channel axes") -> np.ndarray:
    """A broadcast constant as one value per channel along `axis`; refuses (with `why`) non per-channel ones."""
    full = np.broadcast_to(np.asarray(c, np.float64), out_shape)
    moved = np.moveaxis(full, axis, -1).reshape(-1, out_shape[axis])
    if not np.all(moved == moved[:1]):
        raise unsupported(node, why)
    return moved[0].copy()


def mul_after(model: ModelWrapper, node: NodeProto, c: np.ndarray, name: str) -> None:
    """Insert Mul(c) right after `node`, which keeps its output's name (so a graph output stays one)."""
    out, mid, c_name = node.output[0], *new_names(model, 2)
    model.set_initializer(c_name, np.asarray(c, dtype=np.float32))
    node.output[0] = mid
    model.graph.node.insert(model.get_node_index(node) + 1, helper.make_node("Mul", [mid, c_name], [out], name=name))


def div_before(model: ModelWrapper, node: NodeProto, c: float, name: str) -> None:
    """Insert Div(c) right before `node`'s first input."""
    mid, c_name = new_names(model, 2)
    model.set_initializer(c_name, np.asarray(c, dtype=np.float32))
    model.graph.node.insert(model.get_node_index(node), helper.make_node("Div", [node.input[0], c_name], [mid],
                                                                         name=name))
    node.input[0] = mid


def reinfer(model: ModelWrapper) -> ModelWrapper:
    """Recompute shapes and datatypes after a rewrite (stale value_info is dropped first).

    Pre: any graph. Post: unused tensors removed, graph sorted, every node named (so errors can name
    new nodes too), shapes and datatypes re-inferred. In place (no deep copy): transforms call this
    once per apply(), after rewriting every match, because re-inference dominates compile time.
    """
    model = model.cleanup()
    clear_value_info(model)
    for t in (GiveUniqueNodeNames(), InferShapes(), InferDataTypes()):
        model = model.transform(t, make_deepcopy=False, cleanup=False)
    mark_zero_padded(model)
    mark_decoded_levels(model)
    return model


def mark_zero_padded(model: ModelWrapper) -> None:
    """A Pad by 0 of a bipolar tensor holds -1, 0 and +1 (qonnx infers the input's BIPOLAR): TERNARY."""
    for n in model.get_nodes_by_op_type("Pad"):
        value = scalar_const(model, n.input[2]) if len(n.input) > 2 and n.input[2] else 0.0
        if value == 0.0 and model.get_tensor_datatype(n.input[0]) == DataType["BIPOLAR"]:
            model.set_tensor_datatype(n.output[0], DataType["TERNARY"])


MAX_LEVEL_TABLE = 256  # a nonuniform activation's index has 8 bits at most
# Ops a level decode commutes with (a sliding window's pad value is mapped to its index: level_decode._move_past)
DECODE_COMMUTES = frozenset({"MaxPool", "StreamingMaxPool", "Reshape", "Flatten", "Transpose", "SlidingWindow"})


def decode_table(model: ModelWrapper, gather: NodeProto) -> np.ndarray | None:
    """The levels of a level decode `Cast -> Gather(constant table, axis 0)` ending in `gather` (int64), or None
    when `gather` is not one. A decode whose table is not strictly increasing integers is refused."""
    if gather.op_type != "Gather" or len(gather.input) != 2:
        return None
    table, cast = const(model, gather.input[0]), model.find_producer(gather.input[1])
    if table is None or cast is None or cast.op_type != "Cast":
        return None
    ok = (table.ndim == 1 and 2 <= table.size <= MAX_LEVEL_TABLE and attr(gather, "axis", 0) == 0
          and np.all(np.isfinite(table)) and np.all(np.rint(table) == table) and np.all(np.diff(table) > 0)
          and np.all(np.abs(table) < 2**15))
    if not ok:
        raise unsupported(gather, "a nonuniform activation's level table must be 2..256 strictly increasing "
                                  "integers below 2^15 in magnitude (levels on an integer grid times one scale)")
    return np.rint(table).astype(np.int64)


def levels_type(table: np.ndarray) -> DataType:
    t = IntType.covering(int(table.min()), int(table.max()))
    return DataType[("INT" if t.signed else "UINT") + str(t.bits)]


def mark_decoded_levels(model: ModelWrapper) -> None:
    """After datatype inference (which knows no Gather): a decode's output, and a Pad right after it, hold the
    table's integers."""
    for g in model.get_nodes_by_op_type("Gather"):
        table = decode_table(model, g)
        if table is None:
            continue
        model.set_tensor_datatype(g.output[0], levels_type(table))
        pad = single_consumer(model, g.output[0])
        if pad is not None and pad.op_type == "Pad":
            model.set_tensor_datatype(pad.output[0], levels_type(table))


class Reinfer(Transformation):
    """reinfer() as a pipeline entry (after transforms that leave inference to the next one)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        return reinfer(model), False


def drop_unused(model: ModelWrapper) -> None:
    """Remove initializers, value_info and annotations no node reads or writes (cheap, in place).

    Called after each rewrite inside a one-pass transform, so dead constants do not reserve names
    (new_names then hands out the same names as a rewrite-then-cleanup loop would).
    """
    RemoveUnusedTensors().apply(model)


def apply_in_place(model: ModelWrapper, *trafos: Any) -> ModelWrapper:
    """Apply transforms in order without qonnx's per-transform deep copy and cleanup.

    Pre: the caller owns `model` (it is modified). Post: the transformed model (maybe a new wrapper).
    """
    for t in trafos:
        model = model.transform(t, make_deepcopy=False, cleanup=False)
    return model


def drop_annotation(model: ModelWrapper, name: str) -> None:
    """Delete a tensor's quantization annotation entirely (before another tensor is renamed to it)."""
    anns = model.graph.quantization_annotation
    for i in reversed(range(len(anns))):
        if anns[i].tensor_name == name:
            del anns[i]


def new_names(model: ModelWrapper, k: int, prefix: str = "t") -> list[str]:
    """k tensor names not used anywhere in the graph (qonnx's make_new_valueinfo_name repeats itself
    until the name is actually used, so it cannot hand out several at once)."""
    used = set(model.get_all_tensor_names()) | {i.name for i in model.graph.initializer}
    # node tensors too: transforms rewrite many matches before one re-inference, so value_info lags
    used |= {t for n in model.graph.node for t in (*n.input, *n.output)}
    out, i = [], 0
    while len(out) < k:
        name = f"{prefix}{i}"
        if name not in used:
            out.append(name)
            used.add(name)
        i += 1
    return out
