"""Step 4, xnor: bipolar {-1,+1} tensors become bits {0,1}; binary matmuls become XNOR-popcount.

Binary MatMul thresholds move from the +-1 dot product to the XNOR popcount p (conventions:
dot = 2p - K, so dot >= T <=> p >= ceil((T + K) / 2)).
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from bnn_flow.conventions import dot_threshold_to_popcount, popcount_acc_to_dot
from bnn_flow.transforms.base import META_HEAD, SHAPE_OPS, const, get_meta, reinfer, set_meta, unsupported
from bnn_flow.transforms.input_spec import model_input_spec, update_input_spec

QONNX_DOMAIN = "qonnx.custom_op.general"
PASS_THROUGH = ("StreamingMaxPool", *SHAPE_OPS)  # monotone / order-only: bits behave like +-1


def _is_bipolar(model: ModelWrapper, t: str) -> bool:
    return model.get_tensor_datatype(t) == DataType["BIPOLAR"]


def _to_xnor(model: ModelWrapper, mm: NodeProto) -> None:
    """MatMul(bipolar x, bipolar W) -> XnorPopcountMatMul(bits x, bits W) and fix what reads p."""
    w = const(model, mm.input[1])
    if w is None or not _is_bipolar(model, mm.input[1]):
        raise unsupported(mm, "a binary activation must meet binary (bipolar, scale 1) weights")
    k = w.shape[0]
    model.set_initializer(mm.input[1], ((w + 1) / 2).astype(np.float32))
    model.set_tensor_datatype(mm.input[1], DataType["BINARY"])
    mm.op_type, mm.domain = "XnorPopcountMatMul", QONNX_DOMAIN
    outputs = [o.name for o in model.graph.output]
    if mm.output[0] in outputs:
        head = get_meta(model, META_HEAD)
        head["acc_to_dot"] = popcount_acc_to_dot(head["acc_to_dot"], k)
        set_meta(model, META_HEAD, head)
        return
    for n in model.find_consumers(mm.output[0]) or []:
        if n.op_type != "MultiThreshold":
            raise unsupported(n, "an XNOR-popcount result must feed a MultiThreshold or the graph output")
        t = const(model, n.input[1])
        model.set_initializer(n.input[1], dot_threshold_to_popcount(t.astype(np.int64), k).astype(np.float32))


def _to_bits(model: ModelWrapper, node: NodeProto) -> None:
    """Rewrite one consumer of a bipolar tensor for bits."""
    if node.op_type == "SlidingWindow":
        inst = getCustomOp(node)
        inst.set_nodeattr("mode", "bits")
        inst.set_nodeattr("pad_value", (inst.get_nodeattr("pad_value") + 1) // 2)
    elif node.op_type == "MatMul":
        _to_xnor(model, node)
    elif node.op_type not in PASS_THROUGH:
        raise unsupported(node, "reads a binary tensor but has no bit-level rule")


class BipolarToBinary(Transformation):
    """Every BIPOLAR tensor becomes BINARY (bit = (v+1)/2), all at once so the graph stays consistent.

    Pre: lowered NHWC graph (MultiThreshold out BIPOLAR with out_scale 2, out_bias -1; SlidingWindow
    pad values +-1). Post: thresholds emit bits; windows pad with bits; bipolar MatMuls are
    XnorPopcountMatMul with {0,1} weights and popcount thresholds; a bipolar graph input takes bits
    (input spec bits=True); the head's acc_to_dot maps the last popcount to the dot product. The integer
    result of every layer is unchanged (up to that documented change of the last accumulator).
    """

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        inp = model.graph.input[0].name
        bipolar = [inp] if _is_bipolar(model, inp) else []
        for mt in model.get_nodes_by_op_type("MultiThreshold"):
            inst = getCustomOp(mt)
            if inst.get_nodeattr("out_dtype") == "BIPOLAR":
                inst.set_nodeattr("out_dtype", "BINARY")
                inst.set_nodeattr("out_scale", 1.0)
                inst.set_nodeattr("out_bias", 0.0)
                bipolar.append(mt.output[0])
        if not bipolar:
            return model, False
        seen: set[str] = set()
        while bipolar:  # follow each bipolar tensor through pass-through ops to its real consumers
            t = bipolar.pop()
            if t in seen:
                continue
            seen.add(t)
            model.set_tensor_datatype(t, DataType["BINARY"])
            for n in model.find_consumers(t) or []:
                _to_bits(model, n)
                if n.op_type in PASS_THROUGH or n.op_type == "SlidingWindow":
                    bipolar.append(n.output[0])
        if inp in seen and model_input_spec(model) is not None:
            update_input_spec(model, bits=True)
        return reinfer(model), True


class CheckBinary(Transformation):
    """No dynamic BIPOLAR tensor remains (bipolar weights of integer layers are fine). Changes nothing."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for n in model.graph.node:
            for t in n.input:
                if _is_bipolar(model, t) and model.get_initializer(t) is None:
                    raise unsupported(n, "still reads a bipolar tensor after the XNOR conversion")
        return model, False
