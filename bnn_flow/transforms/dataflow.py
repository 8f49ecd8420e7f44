"""Step 5, dataflow: MatMul/XnorPopcountMatMul (+ MultiThreshold) fuse into our MVAU ops.

The result holds only bnn_flow.ops layers (SlidingWindow, BinaryMVAU, IntegerMVAU, StreamingMaxPool)
and Flatten/Reshape; it is what the golden model and the back-ends execute.
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from bnn_flow.ops import DOMAIN, make_node
from bnn_flow.transforms.base import SHAPE_OPS, const, drop_unused, new_names, reinfer, single_consumer, unsupported
from bnn_flow.transforms.zero_padding import PAD_CORRECTION, class_table, pad_classes, window_geometry

DATAFLOW_OPS = frozenset({"SlidingWindow", "BinaryMVAU", "IntegerMVAU", "StreamingMaxPool"})


def _pad_correction_of(model: ModelWrapper, mm: NodeProto) -> NodeProto | None:
    """The Add(pad correction) between a zero-padded binary convolution and its thresholds (xnor step), or None."""
    add = single_consumer(model, mm.output[0])
    return add if add is not None and add.op_type == "Add" and add.input[1].startswith(PAD_CORRECTION) else None


def _threshold_of(model: ModelWrapper, mm: NodeProto) -> NodeProto | None:
    """The MultiThreshold that alone reads a matmul's output, or its pad correction's (checked to emit plain
    bits), or None."""
    corr = _pad_correction_of(model, mm)
    mt = single_consumer(model, (corr or mm).output[0])
    if mt is None or mt.op_type != "MultiThreshold":
        return None
    inst = getCustomOp(mt)
    ok = (inst.get_nodeattr("out_dtype") == "BINARY" and inst.get_nodeattr("out_scale") == 1.0
          and inst.get_nodeattr("out_bias") == 0.0 and const(model, mt.input[1]).shape[1] == 1)
    if not ok:
        raise unsupported(mt, "expected a single-threshold MultiThreshold emitting bits")
    return mt


class FuseMVAU(Transformation):
    """XnorPopcountMatMul / integer MatMul, with its MultiThreshold if any, -> BinaryMVAU / IntegerMVAU.

    Pre: xnor step done (thresholds on the popcount for binary layers, on the dot product for integer
    ones). Post: one MVAU node per layer with MW, MH, act, PE=SIMD=1 and int64 thresholds (MH,). Exact.
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
        inputs, out, classes = [mm.input[0], mm.input[1]], mm.output[0], {}
        if mt is not None:
            t_name = new_names(model, 1, "thresholds")[0]
            if corr is not None:
                table, classes = _class_thresholds(model, mm, corr, mt)
                model.set_initializer(t_name, table)
                model.graph.node.remove(corr)
            else:
                model.set_initializer(t_name, const(model, mt.input[1]).reshape(-1).astype(np.int64))
            inputs.append(t_name)
            out = mt.output[0]
            model.graph.node.remove(mt)
        dtype = "BINARY" if mt is not None else ("UINT32" if binary else "INT32")
        node = make_node("BinaryMVAU" if binary else "IntegerMVAU", inputs, [out], MW=int(w.shape[0]),
                         MH=int(w.shape[1]), act="threshold" if mt is not None else "none", out_dtype=dtype,
                         **classes)
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
