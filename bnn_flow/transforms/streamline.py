"""Step 2, streamline: the float QONNX graph becomes an integer graph (DESIGN.md §1).

Every `layer -> affine ops -> sign` becomes `layer -> MultiThreshold` on the integer accumulator, the
input quantizer becomes the host-side InputSpec and the last layer's affine the host-side head.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import NodeProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from bnn_flow.conventions import (
    accumulator_range,
    bn_to_affine,
    float_thresholds_from_affine,
    multithresholds_from_affine,
    thresholds_from_affine,
)
from bnn_flow.transforms.activations import activation_after, nbit_activation, sign_activation_scale
from bnn_flow.transforms.base import (
    META_HEAD,
    attr,
    channel_vector,
    const,
    decode_table,
    div_before,
    drop_annotation,
    drop_unused,
    mul_after,
    new_names,
    reinfer,
    scalar_const,
    set_meta,
    single_consumer,
    unsupported,
)
from bnn_flow.transforms.level_decode import decoded_range

LAYER_OPS = ("Conv", "MatMul")
QONNX_DOMAIN = "qonnx.custom_op.general"


def _is_layer(model: ModelWrapper, node: NodeProto) -> bool:
    return node.op_type in LAYER_OPS and const(model, node.input[1]) is not None and len(node.input) == 2


def _pad_value(model: ModelWrapper, node: NodeProto) -> float | None:
    """A constant Pad's value (0 when absent); None for another mode or a non-constant value."""
    if attr(node, "mode", b"constant") not in (b"constant", "constant"):
        return None
    return scalar_const(model, node.input[2]) if len(node.input) > 2 and node.input[2] else 0.0


def _commutes_with_scalar_mul(model: ModelWrapper, node: NodeProto, c: float) -> bool:
    """Can `Mul(c)` move from before `node` to after it without changing the math? (A constant Pad's value
    v becomes v / c: `_move_one` rewrites it.)"""
    if node.op_type == "Pad":
        return _pad_value(model, node) is not None and c != 0
    if node.op_type == "MaxPool":
        return c > 0
    return node.op_type in ("Reshape", "Flatten") or _is_layer(model, node)


class MoveScalarMulDownstream(Transformation):
    """Move scalar constant Mul nodes past Pad(0), Reshape/Flatten, MaxPool (c > 0) and Conv/MatMul.

    Pre: shapes known. Post: such a Mul sits right after the linear layer, where the affine absorption
    folds it into thresholds. Exact in real arithmetic (linearity); float32 results may differ in the
    last ulp.
    """

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        moved = False
        while self._move_one(model):  # a Mul may hop several times (Pad, then Conv): repeat to a fixpoint
            moved = True
        return (reinfer(model) if moved else model), False  # one re-inference for all the moves

    @staticmethod
    def _move_one(model: ModelWrapper) -> bool:
        """Move the first movable Mul one node down; False when none can move. Needs no shapes."""
        for m in model.graph.node:
            c = scalar_const(model, m.input[1]) if m.op_type == "Mul" and len(m.input) == 2 else None
            if c is None or const(model, m.input[0]) is not None:
                continue
            n = single_consumer(model, m.output[0])
            if n is None or n.input[0] != m.output[0] or not _commutes_with_scalar_mul(model, n, c):
                continue
            t = new_names(model, 1)[0]
            if n.op_type == "Pad" and _pad_value(model, n):  # Pad(v) then Mul(c) = Mul(c) then Pad(v / c)
                v_name = new_names(model, 1, "pad_value")[0]
                model.set_initializer(v_name, np.array(_pad_value(model, n) / c, dtype=np.float32))
                n.input[2] = v_name
            n.input[0], n.output[0], m.input[0], m.output[0] = m.input[0], t, t, n.output[0]
            model.graph.node.remove(m)
            model.graph.node.insert(model.get_node_index(n) + 1, m)
            drop_unused(model)
            return True
        return False


class FactorActivationScale(Transformation):
    """An activation quantizer with a scale s other than 1 gets scale 1 and a Mul(s) after it, which
    MoveScalarMulDownstream carries into the next layer's affine (thresholds or head):
    - a sign, BipolarQuant(x, s) = s * sign(x) (e.g. Brevitas' SignedBinaryActPerTensorConst at another
      scaling_const): exact, sign does not depend on a positive scale;
    - an n-bit Quant(x, s) = s * clamp(round(x / s)) (QuantIdentity / QuantReLU / QuantHardTanh at n bits) also
      gets a Div(s) before it (before its ReLU, which commutes with a positive scale): the Quant computes
      x / s in float32 exactly as before.

    Pre: the input quantizer already extracted. Post: every activation quantizer has scale 1. A per-channel
    or non-positive scale, a zero point, another rounding mode or bit width is refused (one line, activations.py).
    """

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        changed = False
        for n in list(model.graph.node):
            if n.op_type not in ("BipolarQuant", "Quant") or const(model, n.input[0]) is not None:
                continue
            scale = (sign_activation_scale if n.op_type == "BipolarQuant" else nbit_activation)(model, n).scale
            if scale == 1.0:
                continue
            one = new_names(model, 1)[0]
            model.set_initializer(one, np.ones_like(const(model, n.input[1]), dtype=np.float32))
            n.input[1] = one
            if n.op_type == "Quant":
                relu = model.find_producer(n.input[0])
                before = relu if relu is not None and relu.op_type == "Relu" and single_consumer(
                    model, relu.output[0]) is n else n
                div_before(model, before, scale, f"{n.name}_unscale")
            mul_after(model, n, np.asarray(scale, dtype=np.float32), f"{n.name}_scale")
            changed = True
        return (reinfer(model) if changed else model), False


@dataclass
class AffineChain:
    """The elementwise affine ops after a layer: out = scale * acc + bias (float64, per channel)."""

    nodes: list[NodeProto]
    scale: np.ndarray
    bias: np.ndarray
    end: NodeProto | None  # the consumer that ended the chain (None: the graph output)


def affine_chain(model: ModelWrapper, layer: NodeProto) -> AffineChain:
    """Collect BatchNormalization / constant Mul, Add, Sub, Div after `layer` into one affine."""
    t = layer.output[0]
    shape = model.get_tensor_shape(t)
    ch = shape[1]
    scale, bias, nodes = np.ones(ch), np.zeros(ch), []
    outputs = [o.name for o in model.graph.output]
    while t not in outputs:
        n = single_consumer(model, t)
        if n is None:
            raise unsupported(layer, "its output forks; a layer must feed one chain of affine ops")
        if n.op_type == "BatchNormalization":
            g, b, mu, var = (const(model, i).astype(np.float64) for i in n.input[1:5])
            k, off = bn_to_affine(g, b, mu, var, attr(n, "epsilon", 1e-5))
            scale, bias = k * scale, k * bias + off
        elif n.op_type in ("Mul", "Add", "Sub", "Div") and const(model, n.input[1]) is not None:
            c = channel_vector(const(model, n.input[1]), shape, 1, n)
            if n.op_type == "Mul":
                scale, bias = scale * c, bias * c
            elif n.op_type == "Add":
                bias = bias + c
            elif n.op_type == "Sub":
                bias = bias - c
            else:
                scale, bias = scale / c, bias / c
        elif n.op_type == "Sub" and const(model, n.input[0]) is not None:
            c = channel_vector(const(model, n.input[0]), shape, 1, n)
            scale, bias = -scale, c - bias
        else:
            return AffineChain(nodes, scale, bias, n)
        nodes.append(n)
        t = n.output[0]
    return AffineChain(nodes, scale, bias, None)


def layer_accumulator_range(model: ModelWrapper, layer: NodeProto) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel, the reachable accumulator range of an integer layer (conventions.accumulator_range
    over its integer weights and its input's datatype)."""
    dt = model.get_tensor_datatype(layer.input[0])
    decoded = decoded_range(model, layer.input[0])  # a nonuniform activation's levels: the table's own range
    if not dt.is_integer():
        raise unsupported(layer, f"its input is {dt.name}, not integer: is an input quantizer missing?")
    w = const(model, layer.input[1])
    if not np.all(np.round(w) == w):
        raise unsupported(layer, "its weights are not integers: quantize them with a symmetric (zero-point-free) "
                                 "Brevitas weight quantizer")
    rows = w.reshape(w.shape[0], -1) if layer.op_type == "Conv" else w.T  # (output channels, fan-in)
    lo, hi = decoded or (int(dt.min()), int(dt.max()))
    return accumulator_range(np.rint(rows).astype(np.int64), lo, hi)


def _flip_channels(model: ModelWrapper, layer: NodeProto, flip: np.ndarray) -> None:
    """Negate the weights of the output channels in `flip` (so the comparison stays acc >= T)."""
    w = const(model, layer.input[1]).copy()
    if layer.op_type == "Conv":
        w[flip] *= -1
    else:
        w[:, flip] *= -1
    model.set_initializer(layer.input[1], w)


class AbsorbAffineSignIntoThreshold(Transformation):
    """`Conv/MatMul -> affine ops -> BipolarQuant(scale 1)` becomes `Conv/MatMul -> MultiThreshold`, and
    `Conv/MatMul -> affine ops -> [Relu ->] Quant(scale 1, n bits)` an n-bit one.

    Pre: integer-annotated layer input, integer weights, shapes known. Post: one MultiThreshold
    (sign: out_dtype BIPOLAR, out_scale 2, out_bias -1, integer thresholds (C,1); n bits: out_dtype INTn/UINTn,
    out_scale 1, out_bias the lowest level, thresholds (C, levels - 1)) on the accumulator; channels
    with a negative affine scale have their weights negated; zero-scale channels are constant (threshold
    outside the accumulator range). Exact except where the float pre-activation is within rounding of 0.
    """

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        # All layers in one pass: a rewrite changes only its own chain, whose tensors keep their shapes,
        # and the MultiThreshold output keeps the BipolarQuant's BIPOLAR type, so nothing read later is stale.
        changed = False
        for layer in list(model.graph.node):
            if _is_layer(model, layer):
                changed |= self._absorb(model, layer)
        return (reinfer(model) if changed else model), False

    @staticmethod
    def _absorb(model: ModelWrapper, layer: NodeProto) -> bool:
        """Rewrite one layer's affine -> activation chain (False: it does not end in an activation)."""
        chain = affine_chain(model, layer)
        act = activation_after(model, chain.end)
        if act is None:
            return False
        lo, hi = layer_accumulator_range(model, layer)
        if act.thresholds is not None:  # nonuniform: the index of its level table (level_decode.py)
            th = float_thresholds_from_affine(chain.scale, chain.bias, lo, hi, act.thresholds)
            out_type = act.datatype
            mt_attrs = dict(out_dtype=out_type.name, out_scale=1.0, out_bias=0.0)
        elif act.levels is None:
            th = thresholds_from_affine(chain.scale, chain.bias, lo, hi)
            mt_attrs, out_type = dict(out_dtype="BIPOLAR", out_scale=2.0, out_bias=-1.0), DataType["BIPOLAR"]
        else:
            th = multithresholds_from_affine(chain.scale, chain.bias, lo, hi, act.levels)
            out_type = act.datatype
            mt_attrs = dict(out_dtype=out_type.name, out_scale=1.0, out_bias=float(act.levels.start))
        _flip_channels(model, layer, th.flip)
        t_name = new_names(model, 1)[0]
        model.set_initializer(t_name, th.threshold.astype(np.float32).reshape(len(chain.scale), -1))
        rank = len(model.get_tensor_shape(layer.output[0]))
        mt = helper.make_node("MultiThreshold", [layer.output[0], t_name], [act.nodes[-1].output[0]],
                              domain=QONNX_DOMAIN, data_layout="NCHW" if rank == 4 else "NC", **mt_attrs)
        for n in [*chain.nodes, *act.nodes]:
            model.graph.node.remove(n)
        model.graph.node.insert(model.get_node_index(layer) + 1, mt)
        model.set_tensor_datatype(mt.output[0], out_type)
        drop_unused(model)
        return True


class ExtractHead(Transformation):
    """The last layer's affine ops (BatchNorm1d, TensorNorm's Sub/Div/Mul/Add) move to the host head.

    Pre: the graph output is reached from a Conv/MatMul through affine ops only. Post: the graph output is
    the layer's integer accumulator; metadata `bnn_flow.head` = {scale, bias, acc_to_dot: [a, b]} with
    scores = scale * (a * out + b) + bias per class (float64, then float32), labels = argmax (ties: lowest).
    """

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        out = model.graph.output[0].name
        for layer in model.graph.node:
            if not _is_layer(model, layer):
                continue
            chain = affine_chain(model, layer)
            if chain.end is not None or not chain.nodes:
                continue
            for n in chain.nodes:
                model.graph.node.remove(n)
            drop_annotation(model, out)  # the renamed tensor brings its own annotation
            model.rename_tensor(layer.output[0], out)
            set_meta(model, META_HEAD, {"scale": chain.scale.tolist(), "bias": chain.bias.tolist(),
                                        "acc_to_dot": [1, 0]})
            return reinfer(model), True
        return model, False


class CheckStreamlined(Transformation):
    """Every node is an integer layer, MultiThreshold, Pad, MaxPool, reshape or a level decode (Cast -> Gather of
    a nonuniform activation); names the first other."""

    ALLOWED = frozenset({"Conv", "MatMul", "MultiThreshold", "Pad", "MaxPool", "Flatten", "Reshape"})

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for n in model.graph.node:
            decode = n.op_type == "Cast" and any(decode_table(model, g) is not None
                                                 for g in model.find_consumers(n.output[0]))
            if n.op_type not in self.ALLOWED and not decode and decode_table(model, n) is None:
                raise unsupported(n, "left over after streamlining (expected layer -> BatchNorm/affine -> sign)")
            if n.op_type == "MultiThreshold":
                layer, t = model.find_producer(n.input[0]), const(model, n.input[1])
                if layer is None or layer.op_type not in LAYER_OPS or t is None or np.any(np.rint(t) != t):
                    raise unsupported(n, "a MultiThreshold must be a nonuniform activation after a Conv/MatMul "
                                         "(its thresholds became integers); export activations as Quant or "
                                         "BipolarQuant")
        if model.get_metadata_prop(META_HEAD) is None:  # no affine after the last layer: identity head
            classes = model.get_tensor_shape(model.graph.output[0].name)[-1]
            set_meta(model, META_HEAD, {"scale": [1.0] * classes, "bias": [0.0] * classes, "acc_to_dot": [1, 0]})
        return model, False
