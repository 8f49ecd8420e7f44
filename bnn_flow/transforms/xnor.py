"""Step 4, xnor: bipolar {-1,+1} tensors become bits {0,1}; binary matmuls become XNOR-popcount.

Binary MatMul thresholds move from the +-1 dot product to the XNOR popcount p (conventions:
dot = 2p - K, so dot >= T <=> p >= ceil((T + K) / 2)).
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from bnn_flow.conventions import dot_threshold_to_popcount, popcount_acc_to_dot
from bnn_flow.transforms.base import (
    META_HEAD,
    SHAPE_OPS,
    const,
    get_meta,
    new_names,
    reinfer,
    set_meta,
    single_consumer,
    unsupported,
)
from bnn_flow.transforms.input_spec import model_input_spec, update_input_spec
from bnn_flow.transforms.zero_padding import PAD_CORRECTION, dot_correction, window_geometry

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
        if n.op_type == "Add" and n.input[1].startswith(PAD_CORRECTION):
            # 2p - K - corr >= T  <=>  p - corr/2 >= (T + K)/2: halves, exact in float32; the dataflow step
            # makes them integer thresholds per pad class
            model.set_initializer(n.input[1], const(model, n.input[1]) / 2)
            mt = single_consumer(model, n.output[0])
            t = const(model, mt.input[1]).astype(np.float64)
            model.set_initializer(mt.input[1], ((t + k) / 2).astype(np.float32))
            continue
        if n.op_type != "MultiThreshold":
            raise unsupported(n, "an XNOR-popcount result must feed a MultiThreshold or the graph output")
        t = const(model, n.input[1])
        model.set_initializer(n.input[1], dot_threshold_to_popcount(t.astype(np.int64), k).astype(np.float32))


def _correct_zero_padding(model: ModelWrapper, window: NodeProto) -> None:
    """A zero-padded bipolar window pads with +1 from now on; its MatMul's result gets Add(-corr) before its
    MultiThreshold, so the dot product is still the zero-padded one (zero_padding.py). Still bipolar here:
    _to_xnor moves the Add and the thresholds to the popcount."""
    mm = single_consumer(model, window.output[0])
    mt = single_consumer(model, mm.output[0]) if mm is not None and mm.op_type == "MatMul" else None
    if mt is None or mt.op_type != "MultiThreshold":
        raise unsupported(window, "a zero-padded binary map must feed a convolution followed by a sign activation "
                                  "(pad the last layer's input with +1 or -1)")
    channels = model.get_tensor_shape(window.input[0])[-1]
    corr = dot_correction(const(model, mm.input[1]), channels, *window_geometry(model, window))
    c_name, y = new_names(model, 1, PAD_CORRECTION)[0], new_names(model, 1)[0]
    model.set_initializer(c_name, -corr[None].astype(np.float32))
    mt.input[0] = y
    model.graph.node.insert(model.get_node_index(mt), helper.make_node("Add", [mm.output[0], c_name], [y]))
    getCustomOp(window).set_nodeattr("pad_value", 1)


def _to_bits(model: ModelWrapper, node: NodeProto) -> None:
    """Rewrite one consumer of a bipolar tensor for bits."""
    if node.op_type == "SlidingWindow":
        inst = getCustomOp(node)
        inst.set_nodeattr("mode", "bits")
        if inst.get_nodeattr("pad_value") == 0 and any(inst.get_nodeattr("pad")):
            _correct_zero_padding(model, node)
        else:
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
