"""Step 1, tidy: a clean, shape-annotated QONNX graph whose weight quantizers are folded into constants.

Transforms here operate on Brevitas/QONNX exports (NCHW, float32, Quant/BipolarQuant nodes).
"""

from __future__ import annotations

import copy

import numpy as np
import qonnx.core.onnx_exec as oxe
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.transformation.general import (
    GiveReadableTensorNames,
    GiveUniqueNodeNames,
    GiveUniqueParameterTensors,
    RemoveStaticGraphInputs,
    RemoveUnusedTensors,
)
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.transformation.quant_constant_folding import FoldTransposeIntoQuantInit
from qonnx.transformation.remove import RemoveIdentityOps

from bnn_flow.errors import BadInputError
from bnn_flow.transforms.base import apply_in_place, channel_vector, mark_zero_padded, mul_after, reinfer, unsupported

QUANT_OPS = ("Quant", "BipolarQuant")
SUPPORTED_QONNX_OPS = frozenset({
    "Quant", "BipolarQuant", "Conv", "MatMul", "BatchNormalization", "Mul", "Add", "Sub", "Div", "Pad",
    "MaxPool", "Flatten", "Reshape", "Relu",
    "MultiThreshold", "Cast", "Gather",  # a nonuniform activation (transforms/level_decode.py)
})


def _weight_dtype(node, model: ModelWrapper) -> DataType:
    """BIPOLAR for a BipolarQuant, INTn / UINTn for an integer Quant with zero point 0 (the values once the
    quantizer's scale is divided out); FLOAT32 for what has no integer form (a zero point)."""
    if node.op_type == "BipolarQuant":
        return DataType["BIPOLAR"]
    zp, bw = model.get_initializer(node.input[2]), model.get_initializer(node.input[3])
    if not np.all(zp == 0):
        return DataType["FLOAT32"]
    signed = getCustomOp(node).get_nodeattr("signed")
    return DataType[("INT" if signed else "UINT") + str(int(bw))]


def _scale_vector(model: ModelWrapper, quant, scale: np.ndarray, w_shape: tuple[int, ...]) -> np.ndarray:
    """The weight quantizer's scale as one value per output channel of the layer it feeds (axis 0 of a Conv's
    weights, axis 1 of a MatMul's). Refuses what does not fold into the layer's output: another consumer, a
    scale varying along input channels or kernel positions, a zero scale."""
    readers = model.find_consumers(quant.output[0]) or []
    if not readers or any(r.op_type not in ("Conv", "MatMul") or list(r.input).index(quant.output[0]) != 1
                          for r in readers):
        raise unsupported(quant, "a weight quantizer with a scale other than 1 must feed the weights of "
                                 "Conv/MatMul layers only")
    axis = 0 if readers[0].op_type == "Conv" else 1
    if any(r.op_type != readers[0].op_type for r in readers) or len(w_shape) != (4 if axis == 0 else 2):
        raise unsupported(quant, "its weights feed layers of different kinds or ranks")
    vec = channel_vector(scale, w_shape, axis, quant, "its scale varies along the input channels or kernel "
                         "positions: only per-tensor and per-output-channel weight scales fold into the thresholds")
    if np.any(vec == 0):
        raise unsupported(quant, "its scale is zero for some output channel")
    return vec


def _scale_layer_output(model: ModelWrapper, layer, vec: np.ndarray) -> None:
    """Insert Mul(vec, per output channel) right after `layer` (its output keeps its name)."""
    shape = (1, len(vec), 1, 1) if layer.op_type == "Conv" else (len(vec),)
    mul_after(model, layer, vec.reshape(shape), f"{layer.name}_weight_scale")


class FoldWeightQuant(Transformation):
    """Fold Quant/BipolarQuant nodes whose inputs are all initializers (the weight quantizers).

    Pre: shapes inferred. Post: no Quant/BipolarQuant with constant inputs remains. A quantizer with scale 1
    becomes its output; one with another scale (per tensor or per output channel, any sign) becomes its
    integer values (output / scale), and a Mul by the scale follows each layer it feeds, so that the affine
    absorption folds it into the thresholds (or the head). Annotated BIPOLAR / INTn where integer. Activation
    quantizers (dynamic input) are untouched. Exact: the node's own qonnx execution is used; output / scale
    is an integer up to float32 rounding (checked, then rounded).
    """

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in list(model.graph.node):
            if node.op_type not in QUANT_OPS:
                continue
            if any(model.get_initializer(i) is None for i in node.input):
                continue
            ctx = {i: model.get_initializer(i) for i in node.input}
            getCustomOp(node).execute_node(ctx, model.graph)
            dt, out = _weight_dtype(node, model), node.output[0]
            values = np.asarray(ctx[out], dtype=np.float64)
            scale = np.asarray(model.get_initializer(node.input[1]), dtype=np.float64)
            if dt.is_integer() and not np.all(scale == 1.0):
                vec = _scale_vector(model, node, scale, values.shape)
                ints = np.rint(values / np.broadcast_to(scale, values.shape))
                if not np.allclose(ints * scale, values, rtol=1e-6, atol=0):
                    raise unsupported(node, "its output divided by its scale is not integer")
                for layer in model.find_consumers(out):
                    _scale_layer_output(model, layer, vec)
                values = ints
            model.graph.node.remove(node)
            model.set_initializer(out, values.astype(np.float32))
            model.set_tensor_datatype(out, dt)
        return model, False


class CheckSupportedOps(Transformation):
    """Refuse (BadInputError naming node and op) any op the compiler has no rule for. Changes nothing."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in model.graph.node:
            if node.op_type not in SUPPORTED_QONNX_OPS:
                raise unsupported(node, "no compiler rule for this op type")
            if node.op_type in ("Add", "Sub", "Mul", "Div") and all(
                    model.get_initializer(i) is None for i in node.input):
                raise unsupported(node, "both operands are dynamic (residual/skip connections are unsupported)")
        if len(model.graph.input) != 1 or len(model.graph.output) != 1:
            raise unsupported(model.graph.node[0], "the graph must have exactly one input and one output")
        return model, False


class FoldConstantsOnce(Transformation):
    """Fold every node whose inputs are all constant (except quantizers) into an initializer, in one pass.

    qonnx's FoldConstants folds one node per apply() and re-infers shapes after each (its issue #104),
    which costs a full shape inference per node of the exporter's pad sub-graphs. Walking the sorted
    graph once folds whole constant chains, since a folded output is an initializer for later nodes.
    Pre: graph topologically sorted, shapes inferred. Post: no foldable node; shapes re-inferred once.
    Exact: each node runs through qonnx's execute_node, as in FoldConstants.
    """

    def __init__(self, exclude_op_types: tuple[str, ...] = QUANT_OPS) -> None:
        super().__init__()
        self.exclude = exclude_op_types

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        opset = model.model.opset_import[0].version
        ctx = model.make_empty_exec_context()
        folded = []
        for n in model.graph.node:
            if n.op_type in self.exclude or not self._foldable(model, n):
                continue
            for inp in n.input:  # as FoldConstants: make sure initializers have value_info
                model.get_tensor_shape(inp, fix_missing_init_shape=True)
            oxe.execute_node(n, ctx, model.graph, opset_version=opset)
            model.set_initializer(n.output[0], ctx[n.output[0]])
            folded.append(n)
        for n in folded:
            model.graph.node.remove(n)
        return (model.transform(InferShapes(), make_deepcopy=False, cleanup=False) if folded else model), False

    @staticmethod
    def _foldable(model: ModelWrapper, n) -> bool:
        """All inputs constant, or a Shape of a known shape, or no inputs (FoldConstants' rule)."""
        if not n.input:
            return True
        if n.op_type == "Shape" and model.get_tensor_shape(n.input[0]) is not None:
            return True
        return all(model.get_initializer(i) is not None for i in n.input)


MAX_INPUT_ELEMS = 1 << 26  # 64 M elements per image: far above any image a BNN takes, refused before allocating
MAX_DIM = 1 << 16


def fix_batch_dimension(model: ModelWrapper) -> None:
    """A dynamic batch dimension (the common `dynamic_axes={"input": {0: "N"}}` export) becomes 1, in place:
    the compiled graph runs one image at a time and the host batches. Any other symbolic or absurd input
    dimension is refused (one line naming it), before anything is allocated from it."""
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if not dims:
            raise BadInputError(f"the model's {value.name!r} has no shape: export it with a fixed input shape")
        if dims[0].dim_param or dims[0].dim_value in (0, 1):
            dims[0].dim_value = 1  # also clears dim_param (a oneof)
        for i, d in enumerate(dims[1:], 1):
            if d.dim_param or d.dim_value <= 0:
                raise BadInputError(f"the model's {value.name!r} has a symbolic dimension {i} "
                                    f"({d.dim_param or d.dim_value!r}): export it with a fixed image size")
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    if shape[0] != 1:
        raise BadInputError(f"the model's input has batch size {shape[0]}: export it with batch size 1 (or N)")
    if max(shape) > MAX_DIM or int(np.prod(shape, dtype=np.float64)) > MAX_INPUT_ELEMS:
        raise BadInputError(f"the model's input shape {shape} is larger than any image bnn-flow compiles "
                            f"(at most {MAX_DIM} per dimension and {MAX_INPUT_ELEMS} elements)")


def check_finite(model: ModelWrapper) -> None:
    """Every constant (weights, BatchNorm parameters, quantizer scales) is finite: a NaN or infinite one
    would turn into garbage integer thresholds. One line naming the tensor and the node reading it."""
    for init in model.graph.initializer:
        a = model.get_initializer(init.name)
        if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
            readers = [n.name or n.op_type for n in model.graph.node if init.name in n.input]
            where = f" (read by {', '.join(readers)})" if readers else ""
            raise BadInputError(f"the model's tensor {init.name!r}{where} holds NaN or infinite values: "
                                "retrain or re-export the model")


def cleanup_fast(model: ModelWrapper) -> ModelWrapper:
    """qonnx's cleanup_model (preserving quantizers) in place, with the one-pass constant folding."""
    for n in model.graph.node:  # cleanup_model's fix of the quantizers' domain
        if n.op_type in ("Quant", "Trunc", "BipolarQuant"):
            n.domain = "qonnx.custom_op.general"
    trafos = [InferShapes(), GiveUniqueParameterTensors(),
              FoldConstantsOnce(("Quant", "BipolarQuant", "QuantizeLinear", "DequantizeLinear")),
              FoldTransposeIntoQuantInit(), RemoveUnusedTensors(), RemoveStaticGraphInputs(),
              GiveUniqueNodeNames(), GiveReadableTensorNames()]
    for t in trafos:
        model = model.transform(t, make_deepcopy=False)
    return model


def tidy(model: ModelWrapper) -> ModelWrapper:
    """cleanup_fast (folds the exporter's constant sub-graphs, names nodes), drop identities, infer
    shapes, fold weight quantizers, annotate datatypes, and check every op is one we can compile.
    Pre: the caller hands over `model` (modified in place)."""
    fix_batch_dimension(model)
    check_finite(model)
    model = cleanup_fast(model)
    model = apply_in_place(model, RemoveIdentityOps(), InferShapes(), FoldWeightQuant(), InferDataTypes())
    model.set_tensor_datatype(model.graph.input[0].name, DataType["FLOAT32"])
    mark_zero_padded(model)
    model = apply_in_place(model, CheckSupportedOps()).cleanup()
    check_shapes(reinfer(copy.deepcopy(model)))  # inferred afresh: the exporter's value_info may be stale
    return model


def check_shapes(model: ModelWrapper) -> None:
    """Shape inference reached every tensor: the later steps need every shape (a graph whose declared input
    shape does not fit its layers leaves some unknown, or wrong)."""
    for node in model.graph.node:
        for t in node.output:
            shape = model.get_tensor_shape(t)
            if shape is None or any(not isinstance(d, int) or d <= 0 for d in shape):
                raise unsupported(node, f"the shape of its output {t!r} cannot be inferred ({shape}): does the "
                                        "model's input shape fit its layers? re-export it")
