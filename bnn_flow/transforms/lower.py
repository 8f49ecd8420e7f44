"""Step 3, lower: NCHW convolutions become NHWC sliding windows + MatMul; the graph becomes channels last.

Every rewrite first wraps the NCHW op in Transpose pairs (so each transform alone keeps the graph
executable and equal), then CancelTransposes / AbsorbTransposeIntoFlatten remove the pairs.
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from bnn_flow.errors import BadInputError
from bnn_flow.ops import make_node
from bnn_flow.transforms.base import (
    SHAPE_OPS,
    attr,
    bypass_node,
    const,
    decode_table,
    drop_unused,
    new_names,
    reinfer,
    scalar_const,
    single_consumer,
    unsupported,
)
from bnn_flow.transforms.input_spec import model_input_spec, update_input_spec

TO_NHWC, TO_NCHW = [0, 2, 3, 1], [0, 3, 1, 2]


def _transpose(inp: str, out: str, perm: list[int]) -> NodeProto:
    return helper.make_node("Transpose", [inp], [out], perm=perm)


def _wrap_nhwc(model: ModelWrapper, node: NodeProto, new: NodeProto) -> None:
    """Replace NCHW `node` by Transpose -> `new` (NHWC, reading/writing the placeholders 'in'/'out')
    -> Transpose, keeping the original input and output tensor names."""
    a, b = new_names(model, 2)
    new.input[0], new.output[0] = a, b
    idx = model.get_node_index(node)
    for k, n in enumerate([_transpose(node.input[0], a, TO_NHWC), new, _transpose(b, node.output[0], TO_NCHW)]):
        model.graph.node.insert(idx + k, n)
    model.graph.node.remove(node)
    drop_unused(model)


class MakeInputNHWC(Transformation):
    """Pre: 4-D NCHW graph input. Post: the input is NHWC, followed by a Transpose to NCHW; the input spec
    says layout NHWC (the host transposes)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        inp = model.graph.input[0]
        spec = model_input_spec(model)
        shape = model.get_tensor_shape(inp.name)
        if len(shape) != 4 or (spec is not None and spec.layout == "NHWC"):
            return model, False
        n, c, h, w = shape
        t = new_names(model, 1)[0]
        for node in model.find_consumers(inp.name) or []:
            node.input[:] = [t if i == inp.name else i for i in node.input]
        model.graph.node.insert(0, _transpose(inp.name, t, TO_NCHW))
        model.set_tensor_shape(inp.name, [n, h, w, c])
        if spec is not None:
            update_input_spec(model, layout="NHWC")
        return reinfer(model), True


def _pad_spec(model: ModelWrapper, conv: NodeProto) -> tuple[str, list[int], float, NodeProto | None]:
    """(data input, [top, left, bottom, right], pad value, absorbed Pad node or None) of a Conv."""
    cp = list(attr(conv, "pads", [0, 0, 0, 0]))
    pads, value, src, pad_node = [cp[0], cp[1], cp[2], cp[3]], 0.0, conv.input[0], None
    prod = model.find_producer(conv.input[0])
    if prod is not None and prod.op_type == "Pad" and single_consumer(model, prod.output[0]) is conv:
        if attr(prod, "mode", b"constant") not in (b"constant", "constant"):
            raise unsupported(prod, "only constant padding is supported")
        p = const(model, prod.input[1]).astype(int).tolist()
        if p[0] or p[1] or p[4] or p[5]:
            raise unsupported(prod, "padding of batch or channel axes is unsupported")
        v = scalar_const(model, prod.input[2]) if len(prod.input) > 2 and prod.input[2] else 0.0
        if any(cp) and v != 0.0:
            raise unsupported(conv, "Conv padding after a non-zero Pad (two different pad values)")
        pads = [pads[0] + p[2], pads[1] + p[3], pads[2] + p[6], pads[3] + p[7]]
        value, src, pad_node = v, prod.input[0], prod
    dt = model.get_tensor_datatype(src)
    if any(pads) and dt.name in ("BIPOLAR", "BINARY") and not dt.allowed(value) and value != 0.0:
        culprit = pad_node or conv
        raise BadInputError(f"unsupported graph: node {culprit.name} ({culprit.op_type}) pads a bipolar tensor "
                            f"with {value:g}, which is neither bipolar nor zero; pad binary feature maps with +1, "
                            "-1 or 0")
    return src, pads, value, pad_node


class ConvToSlidingWindow(Transformation):
    """Conv (constant weights, group 1, dilation 1, no bias) -> SlidingWindow + MatMul in NHWC.

    A constant Pad that only feeds the Conv is folded into the window's padding (value and all).
    Pre: shapes and datatypes known. Post: no Conv; Transpose(NHWC) -> SlidingWindow -> MatMul(W') ->
    Transpose(NCHW) with W' = W.transpose(2,3,1,0).reshape(kh*kw*C, OC) (patch order kh, kw, c). Exact.
    Zero padding of a bipolar tensor stays a zero pad here (exact in this float graph); the xnor step turns it
    into one padding and per-position thresholds. Refuses (BadInputError naming the node) other non-bipolar
    pad values of a bipolar tensor.
    """

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        # Every Conv in one pass: a rewrite reads only its own input's (unchanged) shape and datatype.
        convs = model.get_nodes_by_op_type("Conv")
        for conv in convs:
            self._lower(model, conv)
        return (reinfer(model) if convs else model), False

    @staticmethod
    def _lower(model: ModelWrapper, conv: NodeProto) -> None:
        w = const(model, conv.input[1])
        if w is None or len(conv.input) > 2:
            raise unsupported(conv, "needs constant weights and no bias")
        if attr(conv, "group", 1) != 1 or any(d != 1 for d in attr(conv, "dilations", [1, 1])):
            raise unsupported(conv, "grouped or dilated convolutions are unsupported")
        src, pads, value, pad_node = _pad_spec(model, conv)
        _, c, h, wd = model.get_tensor_shape(src)
        oc, _, kh, kw = w.shape
        mode = "bits" if model.get_tensor_datatype(src).name == "BINARY" else "ints"
        swg = make_node("SlidingWindow", ["in"], ["out"], kernel=[kh, kw],
                        stride=list(attr(conv, "strides", [1, 1])), pad=pads, pad_value=int(value),
                        channels=c, ifm_dim=[h, wd], mode=mode)
        w_name = new_names(model, 1)[0]
        model.set_initializer(w_name, w.transpose(2, 3, 1, 0).reshape(kh * kw * c, oc).astype(np.float32))
        model.set_tensor_datatype(w_name, model.get_tensor_datatype(conv.input[1]))
        if pad_node is not None:
            model.graph.node.remove(pad_node)
        a, b, y = new_names(model, 3)
        swg.input[0], swg.output[0] = a, b
        idx = model.get_node_index(conv)
        new = [_transpose(src, a, TO_NHWC), swg, helper.make_node("MatMul", [b, w_name], [y]),
               _transpose(y, conv.output[0], TO_NCHW)]
        for k, n in enumerate(new):
            model.graph.node.insert(idx + k, n)
        model.graph.node.remove(conv)
        drop_unused(model)


class ThresholdToNHWC(Transformation):
    """4-D MultiThreshold with data_layout NCHW -> Transpose, MultiThreshold(NHWC), Transpose. Exact."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        changed = False
        for mt in model.get_nodes_by_op_type("MultiThreshold"):
            if attr(mt, "data_layout", b"") in (b"NCHW", "NCHW"):
                new = helper.make_node("MultiThreshold", ["in", mt.input[1]], ["out"], domain=mt.domain)
                new.attribute.extend([a for a in mt.attribute if a.name != "data_layout"])
                new.attribute.append(helper.make_attribute("data_layout", "NHWC"))
                _wrap_nhwc(model, mt, new)
                changed = True
        return (reinfer(model) if changed else model), False


class MaxPoolToNHWC(Transformation):
    """MaxPool (no padding, no ceil mode) -> Transpose, StreamingMaxPool (NHWC), Transpose. Exact."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        pools = model.get_nodes_by_op_type("MaxPool")
        for mp in pools:
            if any(attr(mp, "pads", [0])) or attr(mp, "ceil_mode", 0) or len(mp.output) > 1:
                raise unsupported(mp, "only unpadded floor-mode max-pools are supported")
            _, c, h, w = model.get_tensor_shape(mp.input[0])
            k = list(attr(mp, "kernel_shape"))
            new = make_node("StreamingMaxPool", ["in"], ["out"], kernel=k,
                            stride=list(attr(mp, "strides", k)), channels=c, ifm_dim=[h, w])
            _wrap_nhwc(model, mp, new)
        return (reinfer(model) if pools else model), False


def _inverse(p: list[int], q: list[int]) -> bool:
    return [p[i] for i in q] == list(range(len(p)))


class CancelTransposes(Transformation):
    """Transpose(p) -> Transpose(q) with q undoing p (and no other reader in between) -> nothing. Exact."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        changed = False
        while self._cancel_one(model):  # pairs are disjoint, but bypassing rewires: rescan after each
            changed = True
        return (reinfer(model) if changed else model), False

    @staticmethod
    def _cancel_one(model: ModelWrapper) -> bool:
        for t1 in model.get_nodes_by_op_type("Transpose"):
            t2 = single_consumer(model, t1.output[0])
            if t2 is not None and t2.op_type == "Transpose" and _inverse(list(attr(t1, "perm")),
                                                                         list(attr(t2, "perm"))):
                bypass_node(model, t2)
                bypass_node(model, t1)
                drop_unused(model)
                return True
        return False


class AbsorbTransposeIntoFlatten(Transformation):
    """Transpose(NHWC->NCHW) -> Flatten/Reshape to 2-D -> MatMul(W): flatten NHWC and permute W's rows
    from (c, h, w) order to (h, w, c). Exact."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        changed = False
        for t in model.get_nodes_by_op_type("Transpose"):
            fl = single_consumer(model, t.output[0])
            if list(attr(t, "perm")) != TO_NCHW or fl is None or fl.op_type not in SHAPE_OPS:
                continue
            mm = single_consumer(model, fl.output[0])
            gather = single_consumer(model, mm.output[0]) if mm is not None and mm.op_type == "Cast" else None
            if gather is not None and decode_table(model, gather) is not None:  # a level decode reads the flatten
                mm = single_consumer(model, gather.output[0])
            if mm is None or mm.op_type != "MatMul" or const(model, mm.input[1]) is None:
                raise unsupported(fl, "a flatten of a feature map must feed one MatMul with constant weights")
            _, c, h, w = model.get_tensor_shape(t.output[0])
            wm = const(model, mm.input[1])
            model.set_initializer(mm.input[1], wm.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(wm.shape))
            bypass_node(model, t)
            drop_unused(model)
            changed = True
        return (reinfer(model) if changed else model), False


class CheckLowered(Transformation):
    """Refuse anything left in NCHW: Conv, Pad, MaxPool, Transpose (names the node)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for n in model.graph.node:
            if n.op_type in ("Conv", "Pad", "MaxPool", "Transpose"):
                raise unsupported(n, "could not be lowered to NHWC (a Pad must feed a Conv directly)")
        inp = model.graph.input[0].name
        if model.get_tensor_datatype(inp) == DataType["FLOAT32"]:
            raise BadInputError("unsupported graph: the graph input is not integer after streamlining")
        return model, False
