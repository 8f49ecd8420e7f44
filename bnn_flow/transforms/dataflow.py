"""Step 5, dataflow: MatMul/XnorPopcountMatMul (+ MultiThreshold) fuse into our MVAU ops.

The result holds only bnn_flow.ops layers (SlidingWindow, BinaryMVAU, IntegerMVAU, StreamingMaxPool)
and Flatten/Reshape; it is what the golden model and the back-ends execute.
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from bnn_flow.ops import DOMAIN, make_node
from bnn_flow.transforms.base import SHAPE_OPS, const, drop_unused, new_names, reinfer, single_consumer, unsupported
from bnn_flow.transforms.level_decode import decode_before
from bnn_flow.transforms.zero_padding import PAD_CORRECTION, class_table, pad_classes, window_geometry

DATAFLOW_OPS = frozenset({"SlidingWindow", "BinaryMVAU", "IntegerMVAU", "StreamingMaxPool"})


def _pad_correction_of(model: ModelWrapper, mm: NodeProto) -> NodeProto | None:
    """The Add(pad correction) between a zero-padded binary convolution and its thresholds (xnor step), or None."""
    add = single_consumer(model, mm.output[0])
    return add if add is not None and add.op_type == "Add" and add.input[1].startswith(PAD_CORRECTION) else None


def _threshold_of(model: ModelWrapper, mm: NodeProto) -> NodeProto | None:
    """The MultiThreshold that alone reads a matmul's output, or its pad correction's, or None. It emits plain
    bits (one threshold) or n-bit integers (out_scale 1, an integer out_bias: the lowest level), checked."""
    corr = _pad_correction_of(model, mm)
    mt = single_consumer(model, (corr or mm).output[0])
    if mt is None or mt.op_type != "MultiThreshold":
        return None
    inst = getCustomOp(mt)
    levels = const(model, mt.input[1]).shape[1]
    if inst.get_nodeattr("out_dtype") == "BINARY":
        ok = inst.get_nodeattr("out_scale") == 1.0 and inst.get_nodeattr("out_bias") == 0.0 and levels == 1
        if not ok:
            raise unsupported(mt, "expected a single-threshold MultiThreshold emitting bits")
        return mt
    bias, dt = inst.get_nodeattr("out_bias"), DataType[inst.get_nodeattr("out_dtype")]
    ok = (dt.is_integer() and inst.get_nodeattr("out_scale") == 1.0 and bias == int(bias)
          and dt.allowed(bias) and dt.allowed(bias + levels))
    if not ok:
        raise unsupported(mt, "expected a MultiThreshold emitting bits, or n-bit integers (out_scale 1, an integer "
                              "out_bias)")
    if corr is not None:
        raise unsupported(mt, "an n-bit activation after a zero-padded binary convolution is unsupported: pad the "
                              "binary map with +1")
    return mt


class FuseMVAU(Transformation):
    """XnorPopcountMatMul / integer MatMul, with its MultiThreshold if any, -> BinaryMVAU / IntegerMVAU.

    Pre: xnor step done (thresholds on the popcount for binary layers, on the dot product for integer
    ones). Post: one MVAU node per layer with MW, MH, act, PE=SIMD=1 and int64 thresholds (MH,), or (MH, L)
    with out_dtype INTn/UINTn and out_bias (the lowest level) for an n-bit activation. Exact.
    """

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        # Every layer in one pass: a fusion touches only its own matmul, threshold and their tensors.
        mms = [n for n in model.graph.node if n.op_type in ("XnorPopcountMatMul", "MatMul")]
        for mm in mms:
            self._fuse(model, mm)
        return (reinfer(model) if mms else model), False

    @staticmethod
    def _fuse(model: ModelWrapper, mm: NodeProto) -> None:
        w = const(model, mm.input[1])
        if w is None:
            raise unsupported(mm, "needs constant weights")
        binary = mm.op_type == "XnorPopcountMatMul"
        mt = _threshold_of(model, mm)
        corr = _pad_correction_of(model, mm)
        inputs, out, attrs = [mm.input[0], mm.input[1]], mm.output[0], {}
        decode = decode_before(model, mm.input[0])
        if decode is not None:  # a nonuniform activation's index in, its levels decoded inside (level_decode.py)
            inputs[0] = decode[0].input[0]
            attrs["in_levels"] = decode[2].tolist()
            for d in decode[:2]:
                model.graph.node.remove(d)
        if mt is not None:
            t_name = new_names(model, 1, "thresholds")[0]
            if corr is not None:
                table, class_attrs = _class_thresholds(model, mm, corr, mt)
                attrs |= class_attrs
                model.set_initializer(t_name, table)
                model.graph.node.remove(corr)
            else:
                t = const(model, mt.input[1]).astype(np.int64)
                model.set_initializer(t_name, t.reshape(-1) if t.shape[1] == 1 else t)  # (MH,) or (MH, levels)
            inputs.append(t_name)
            out = mt.output[0]
            dtype, bias = getCustomOp(mt).get_nodeattr("out_dtype"), int(getCustomOp(mt).get_nodeattr("out_bias"))
            model.graph.node.remove(mt)
        else:
            dtype, bias = ("UINT32" if binary else "INT32"), 0
        extra = {"out_bias": bias} if bias else {}
        node = make_node("BinaryMVAU" if binary else "IntegerMVAU", inputs, [out], MW=int(w.shape[0]),
                         MH=int(w.shape[1]), act="threshold" if mt is not None else "none", out_dtype=dtype,
                         **attrs, **extra)
        model.graph.node.insert(model.get_node_index(mm), node)
        model.graph.node.remove(mm)
        drop_unused(model)


def _class_thresholds(model: ModelWrapper, mm: NodeProto, corr: NodeProto, mt: NodeProto
                      ) -> tuple[np.ndarray, dict[str, list[int]]]:
    """The integer popcount thresholds of a zero-padded binary convolution per pad class ((row classes x column
    classes, MH), row-major) and the node attributes naming each output row's and column's class.

    p + c >= t with c = -corr/2 and t = (T + K)/2 (xnor step)  <=>  p >= ceil((2t - 2c) / 2), all exact.
    """
    rows, cols = pad_classes(*window_geometry(model, model.find_producer(mm.input[0])))
    twice = np.rint(2 * const(model, mt.input[1]).reshape(1, 1, -1).astype(np.float64)
                    - 2 * const(model, corr.input[1])[0].astype(np.float64)).astype(np.int64)  # (OH, OW, MH)
    table = class_table(-((-twice) // 2), rows, cols)
    return table.reshape(-1, table.shape[-1]), {"threshold_rows": list(rows), "threshold_cols": list(cols)}


class CheckDataflow(Transformation):
    """Only our dataflow ops and Flatten/Reshape remain (names the first other node). Changes nothing."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for n in model.graph.node:
            if not ((n.domain == DOMAIN and n.op_type in DATAFLOW_OPS) or n.op_type in SHAPE_OPS):
                raise unsupported(n, "is not a dataflow layer after the dataflow step")
        model.set_opset_import(DOMAIN, 1)
        return model, False
