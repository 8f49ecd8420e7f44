"""bnn-flow's dataflow layers as qonnx custom ops, domain "bnn_flow.ops" (qonnx imports this module).

Each op is a thin class: attributes, shape and datatype inference, and `execute_node`, which runs the
numpy reference of `bnn_flow.ops.reference` on the node's logical tensors (float32 carriers holding
integers or {0,1} bits). The golden model calls the same references on packed bits directly.
Tensors are NHWC; folding attributes PE/SIMD are carried for the back-ends (default 1, unused here).
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.base import CustomOp

from bnn_flow.conventions import pack_bits, position_thresholds, unpack_bits
from bnn_flow.ops import reference as ref

DOMAIN = "bnn_flow.ops"
_FOLDING = {"PE": ("i", False, 1), "SIMD": ("i", False, 1)}


class _BnnOp(CustomOp):
    """Shared plumbing: constant shape stand-in, output dtype from an attribute, no extra checks."""

    def output_shape(self, model) -> list[int]:  # pragma: no cover - overridden
        raise NotImplementedError

    def make_shape_compatible_op(self, model):
        return self.make_const_shape_op(self.output_shape(model))

    def _in_nhwc(self, model) -> list[int]:
        """Input shape from attributes (shape inference may run before the input's shape is known)."""
        shape = model.get_tensor_shape(self.onnx_node.input[0])
        n = shape[0] if shape else 1
        h, w = self.get_nodeattr("ifm_dim")
        return [n, h, w, self.get_nodeattr("channels")]

    def infer_node_datatype(self, model) -> None:
        model.set_tensor_datatype(self.onnx_node.output[0], DataType[self.get_nodeattr("out_dtype")])

    def verify_node(self) -> list[str]:
        return []

    def _same_dtype(self, model) -> None:
        node = self.onnx_node
        model.set_tensor_datatype(node.output[0], model.get_tensor_datatype(node.input[0]))

    def _window(self) -> tuple[tuple[int, int], tuple[int, int]]:
        k, s = self.get_nodeattr("kernel"), self.get_nodeattr("stride")
        return (int(k[0]), int(k[1])), (int(s[0]), int(s[1]))


class SlidingWindow(_BnnOp):
    """Im2col on NHWC: (N,H,W,C) -> (N,OH,OW,kh*kw*C), patch order (kh, kw, c), padded with pad_value.

    mode "bits": the tensor holds bits and pad_value is a bit; "ints": integers (pad_value an integer).
    """

    def get_nodeattr_types(self):
        return {"kernel": ("ints", True, []), "stride": ("ints", True, []), "pad": ("ints", False, [0, 0, 0, 0]),
                "pad_value": ("i", False, 0), "channels": ("i", True, 0), "ifm_dim": ("ints", True, []),
                "mode": ("s", False, "ints", {"ints", "bits"}), **_FOLDING}

    def output_shape(self, model) -> list[int]:
        n, h, w, c = self._in_nhwc(model)
        (kh, kw), (sh, sw) = self._window()
        t, left, b, r = self.get_nodeattr("pad")
        return [n, (h + t + b - kh) // sh + 1, (w + left + r - kw) // sw + 1, kh * kw * c]

    def infer_node_datatype(self, model) -> None:
        self._same_dtype(model)
        zero_padded = self.get_nodeattr("pad_value") == 0 and any(self.get_nodeattr("pad"))
        if zero_padded and model.get_tensor_datatype(self.onnx_node.input[0]) == DataType["BIPOLAR"]:
            model.set_tensor_datatype(self.onnx_node.output[0], DataType["TERNARY"])  # +-1 and the zeros

    def execute_node(self, context, graph) -> None:
        x = context[self.onnx_node.input[0]]
        k, s = self._window()
        pad = tuple(self.get_nodeattr("pad"))
        out = ref.sliding_window_ints(x, k, s, pad, self.get_nodeattr("pad_value"))
        context[self.onnx_node.output[0]] = out.astype(np.float32)


class StreamingMaxPool(_BnnOp):
    """NHWC max-pool without padding; on bits it is OR (the golden model packs it that way)."""

    def get_nodeattr_types(self):
        return {"kernel": ("ints", True, []), "stride": ("ints", True, []), "channels": ("i", True, 0),
                "ifm_dim": ("ints", True, [])}

    def output_shape(self, model) -> list[int]:
        n, h, w, c = self._in_nhwc(model)
        (kh, kw), (sh, sw) = self._window()
        return [n, (h - kh) // sh + 1, (w - kw) // sw + 1, c]

    def infer_node_datatype(self, model) -> None:
        self._same_dtype(model)

    def execute_node(self, context, graph) -> None:
        x = context[self.onnx_node.input[0]]
        k, s = self._window()
        context[self.onnx_node.output[0]] = ref.maxpool_ints(x, k, s).astype(np.float32)


class _MVAU(_BnnOp):
    """Matrix-vector-activation unit: inputs x (..., MW), weights (MW, MH) and optional thresholds (MH,)."""

    def get_nodeattr_types(self):
        # threshold_rows/_cols: a zero-padded binary convolution's pad class per output row/column; its thresholds
        # are then (row classes x column classes, MH), row-major (transforms/zero_padding.py)
        return {"MW": ("i", True, 0), "MH": ("i", True, 0), "act": ("s", False, "none", {"none", "threshold"}),
                "out_dtype": ("s", True, ""), "out_bias": ("i", False, 0), "threshold_rows": ("ints", False, []),
                "threshold_cols": ("ints", False, []), "in_levels": ("ints", False, []), **_FOLDING}

    def make_shape_compatible_op(self, model):
        node = self.onnx_node  # a MatMul with the weights has the right output shape
        return helper.make_node("MatMul", [node.input[0], node.input[1]], [node.output[0]])

    def _thresholds(self, context) -> np.ndarray | None:
        if self.get_nodeattr("act") == "none":
            return None
        return np.asarray(context[self.onnx_node.input[2]]).astype(np.int64)

    @property
    def _nbit_out(self) -> bool:
        """An n-bit activation: thresholds (MH, L), out = out_bias + the number reached (else bits or p / acc)."""
        return self.get_nodeattr("act") == "threshold" and self.get_nodeattr("out_dtype") != "BINARY"

    def _levels(self, acc: np.ndarray, t: np.ndarray) -> np.ndarray:
        return ref.multi_threshold(acc, t, self.get_nodeattr("out_bias")).astype(np.float32)


class BinaryMVAU(_MVAU):
    """XNOR-popcount MVAU on bits: p = agreeing positions; act "threshold": bit p >= T, "none": p."""

    def execute_node(self, context, graph) -> None:
        node = self.onnx_node
        x = np.asarray(context[node.input[0]])
        xp = pack_bits(x.astype(np.uint8))
        wp = ref.pack_weights(context[node.input[1]])
        t = self._thresholds(context)
        rows, cols = self.get_nodeattr("threshold_rows"), self.get_nodeattr("threshold_cols")
        if self._nbit_out:
            context[node.output[0]] = self._levels(ref.mvau_binary(xp, wp, self.get_nodeattr("MW"), None), t)
            return
        t = None if t is None else t.reshape(-1)
        if t is not None and rows:  # per output pixel, its pad class's thresholds
            acc = ref.mvau_binary(xp, wp, self.get_nodeattr("MW"), None)
            table = t.reshape(max(rows) + 1, max(cols) + 1, -1)
            out = pack_bits(acc >= position_thresholds(table, rows, cols))
        else:
            out = ref.mvau_binary(xp, wp, self.get_nodeattr("MW"), t)
        if t is not None:
            out = unpack_bits(out, self.get_nodeattr("MH"))
        context[node.output[0]] = out.astype(np.float32)


class IntegerMVAU(_MVAU):
    """Integer MAC MVAU (the first layer, or after n-bit activations): acc = x.w; act "threshold": bit acc >= T
    (or n bits, see _nbit_out), "none": acc."""

    def execute_node(self, context, graph) -> None:
        node = self.onnx_node
        x = np.asarray(context[node.input[0]]).astype(np.int64)
        if self.get_nodeattr("in_levels"):  # a nonuniform activation's index: decode its levels
            x = np.asarray(self.get_nodeattr("in_levels"), dtype=np.int64)[x]
        w = np.asarray(context[node.input[1]]).astype(np.int64)
        t = self._thresholds(context)
        bound = int(np.abs(x).max(initial=0)) * int(np.abs(w).sum(axis=0).max(initial=0))
        if self._nbit_out:
            context[node.output[0]] = self._levels(ref.mvau_integer(x, w, None, bound), t)
            return
        out = ref.mvau_integer(x, w, None if t is None else t.reshape(-1), bound)
        if t is not None:
            out = unpack_bits(out, self.get_nodeattr("MH"))
        context[node.output[0]] = out.astype(np.float32)


def make_node(op_type: str, inputs: list[str], outputs: list[str], **attrs) -> object:
    """An ONNX node of one of our ops, in our domain."""
    return helper.make_node(op_type, inputs, outputs, domain=DOMAIN, **attrs)


__all__ = ["BinaryMVAU", "IntegerMVAU", "SlidingWindow", "StreamingMaxPool"]
