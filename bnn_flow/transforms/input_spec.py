"""The host-side input specification: float32 pixel/255 NCHW input -> the integers the graph takes.

The QONNX graph starts with preprocessing (e.g. Mul 2, Sub 1 for FINN's 2x-1) and an input quantizer
(Quant or BipolarQuant). `ExtractInputSpec` removes them from the graph and records them as an
`InputSpec`, which the host applies with the same float32 operations (bit-exact with qonnx's Quant).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from bnn_flow.conventions import qonnx_int_quant
from bnn_flow.errors import BadInputError
from bnn_flow.transforms.base import (
    ELEMENTWISE,
    META_INPUT_SPEC,
    SHAPE_OPS,
    bypass_node,
    get_meta,
    insert_after,
    new_names,
    scalar_const,
    set_meta,
    single_consumer,
    unsupported,
)

_FLOAT_OPS = {"Mul": np.multiply, "Add": np.add, "Sub": np.subtract, "Div": np.divide}


@dataclass(frozen=True)
class InputSpec:
    """ops: elementwise float32 [op, constant] pairs applied in order; then the quantizer.

    bitwidth 1 + signed: sign (BipolarQuant). `bits`: emit {0,1} (bipolar -> bit) instead of {-1,+1}.
    `layout`: the layout the graph's input takes (the host transposes NCHW images when it is NHWC).
    """

    ops: list[tuple[str, float]] = field(default_factory=list)
    scale: float = 1.0
    zeropt: float = 0.0
    bitwidth: int = 1
    signed: bool = True
    narrow: bool = False
    bits: bool = False
    layout: str = "NCHW"

    @property
    def dtype(self) -> DataType:
        if self.bitwidth == 1 and self.signed:
            return DataType["BINARY" if self.bits else "BIPOLAR"]
        return DataType[("INT" if self.signed else "UINT") + str(self.bitwidth)]

    def apply(self, x: np.ndarray) -> np.ndarray:
        """float32 N,C,H,W (pixel/255) -> int64 integers (or bits) in `layout`."""
        y = np.asarray(x, dtype=np.float32)
        for op, c in self.ops:
            y = _FLOAT_OPS[op](y, np.float32(c)).astype(np.float32)
        q = qonnx_int_quant(y, self.scale, self.zeropt, self.bitwidth, self.signed, self.narrow)
        if self.bits:
            q = (q + 1) // 2
        if self.layout == "NHWC" and q.ndim == 4:
            q = q.transpose(0, 2, 3, 1)
        return np.ascontiguousarray(q)

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(d: dict) -> InputSpec:
        """The spec of input_spec.json, checked field by field (a BUILD file may be hostile): ValueError
        naming the field otherwise."""
        if not isinstance(d, dict) or set(d) - set(InputSpec.__dataclass_fields__):
            raise ValueError(f"unknown fields {sorted(set(d) - set(InputSpec.__dataclass_fields__))}")
        ops = d.get("ops", [])
        if not isinstance(ops, list) or not all(isinstance(o, list | tuple) and len(o) == 2 and o[0] in _FLOAT_OPS
                                                and _finite(o[1]) for o in ops):
            raise ValueError(f"ops must be [op, number] pairs with op in {', '.join(_FLOAT_OPS)}")
        spec = InputSpec(**{**d, "ops": [(str(o[0]), float(o[1])) for o in ops]})
        checks = [(_finite(spec.scale) and spec.scale > 0, "scale"), (_finite(spec.zeropt), "zeropt"),
                  (type(spec.bitwidth) is int and 1 <= spec.bitwidth <= 16, "bitwidth"),
                  (all(type(v) is bool for v in (spec.signed, spec.narrow, spec.bits)), "signed/narrow/bits"),
                  (spec.layout in ("NCHW", "NHWC"), "layout")]
        bad = [name for ok, name in checks if not ok]
        if bad:
            raise ValueError(f"bad {', '.join(bad)}")
        return spec


def _finite(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and bool(np.isfinite(v))


def model_input_spec(model: ModelWrapper) -> InputSpec | None:
    d = get_meta(model, META_INPUT_SPEC)
    return None if d is None else InputSpec.from_json(d)


def update_input_spec(model: ModelWrapper, **changes) -> None:
    spec = model_input_spec(model)
    set_meta(model, META_INPUT_SPEC, replace(spec, **changes).to_json())


def _quant_params(model: ModelWrapper, node) -> dict:
    if node.op_type == "BipolarQuant":
        scale = scalar_const(model, node.input[1])
        if scale != 1.0:
            raise unsupported(node, "the input BipolarQuant must have scale 1")
        return {"scale": 1.0, "zeropt": 0.0, "bitwidth": 1, "signed": True, "narrow": False}
    vals = [scalar_const(model, i) for i in node.input[1:4]]
    if any(v is None for v in vals):
        raise unsupported(node, "the input quantizer needs constant scalar scale, zero point and bit width")
    inst = getCustomOp(node)
    if inst.get_nodeattr("rounding_mode") not in ("ROUND", "HALF_EVEN"):
        raise unsupported(node, "only ROUND (half-even) rounding is supported for the input quantizer")
    if vals[1] != 0.0:
        raise unsupported(node, "a non-zero input zero point is not supported")
    return {"scale": vals[0], "zeropt": 0.0, "bitwidth": int(vals[2]),
            "signed": bool(inst.get_nodeattr("signed")), "narrow": bool(inst.get_nodeattr("narrow"))}


class ExtractInputSpec(Transformation):
    """Move the input preprocessing and input quantizer out of the graph into an InputSpec.

    Pre: tidy graph; from the graph input, a chain of scalar Mul/Add/Sub/Div and Reshape/Flatten nodes
    ends in a Quant or BipolarQuant. Post: the graph input carries the quantizer's integers (annotated
    INTn/UINTn/BIPOLAR), the elementwise nodes and the quantizer are gone (shape nodes stay), a scalar
    Mul(scale) follows where the scale is not 1, and the spec is in the metadata. The new graph on
    spec.apply(x) equals the old graph on x up to float32 reassociation of the scale.
    """

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        if model_input_spec(model) is not None:
            return model, False
        inp = model.graph.input[0].name
        cur, ops = inp, []
        while True:
            node = single_consumer(model, cur)
            if node is None:
                raise BadInputError("unsupported graph: the graph input must feed one preprocessing chain "
                                    "that ends in an input quantizer (Quant/BipolarQuant)")
            if node.op_type in SHAPE_OPS:
                cur = node.output[0]
            elif node.op_type in ELEMENTWISE and node.input[0] == cur:
                c = scalar_const(model, node.input[1])
                if c is None:
                    raise unsupported(node, "input preprocessing needs a scalar constant operand")
                ops.append((node.op_type, c))
                bypass_node(model, node)
            elif node.op_type in ("Quant", "BipolarQuant"):
                params = _quant_params(model, node)
                bypass_node(model, node)
                break
            else:
                raise unsupported(node, "not an input preprocessing op (scalar Mul/Add/Sub/Div, Reshape, Quant)")
        spec = InputSpec(ops=ops, **params)
        if spec.scale != 1.0:
            s_name = new_names(model, 1)[0]
            model.set_initializer(s_name, np.asarray(spec.scale, dtype=np.float32))
            insert_after(model, cur, lambda i, o: helper.make_node("Mul", [i, s_name], [o]))
        model.set_tensor_datatype(inp, spec.dtype)
        set_meta(model, META_INPUT_SPEC, spec.to_json())
        return model, False
