"""Which differences between a torch model and its QONNX export are float ties, and which are not.

torch and onnxruntime sum a convolution in different orders, so a pre-activation can differ in its last float32
bits; where it lies within that of an activation's decision boundary, the two quantize it to neighbouring levels
and everything after differs. Such an image is a tie, not an export error. For an image whose outputs differ,
`explain_image` compares the activation quantizers' outputs in order (torch's modules in call order, the graph's
quantizers in graph order: the same sequence for a Brevitas export) up to the first that differs: every element
that differs there must differ by one level and have its QONNX pre-activation within TIE_TOLERANCE of a boundary
(compiler.near_boundary); everything before it agreed, so nothing else can be the cause.
"""

from __future__ import annotations

import numpy as np
import torch
from brevitas.nn.quant_layer import QuantNonLinearActLayer
from onnx import NodeProto
from qonnx.core.modelwrapper import ModelWrapper

from bnn_flow.compiler import activation_boundaries, execute_step_model, near_boundary
from bnn_flow.nets.nonuniform import NonuniformActQuant

ACTIVATION_MODULES = (QuantNonLinearActLayer, NonuniformActQuant)


def torch_activations(model: torch.nn.Module, x: np.ndarray) -> list[np.ndarray]:
    """The outputs of the activation quantizer modules on one image, in call order."""
    outs: list[np.ndarray] = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: outs.append(np.asarray(o.detach().numpy())))
             for m in model.modules() if isinstance(m, ACTIVATION_MODULES)]
    try:
        with torch.no_grad():
            model(torch.from_numpy(x))
    finally:
        for h in hooks:
            h.remove()
    return outs


def _quantized_output(model: ModelWrapper, node: NodeProto) -> str:
    """The tensor holding a quantizer's scaled levels: its output, or a nonuniform MultiThreshold's decoded
    and scaled levels (MultiThreshold -> Cast -> Gather -> Mul)."""
    if node.op_type != "MultiThreshold":
        return node.output[0]
    t = node.output[0]
    for _ in range(3):
        nxt = model.find_consumer(t)
        t = t if nxt is None else nxt.output[0]
    return t


def explain_image(torch_model: torch.nn.Module, graph: ModelWrapper, x: np.ndarray) -> bool | None:
    """On the image x (1, C, H, W): True when the first activation where torch and the graph differ differs only
    at float ties, False when it differs elsewhere (or the two cannot be matched), None when every activation
    agrees (then only the last layer's float arithmetic differs)."""
    ours = torch_activations(torch_model, x)
    acts = activation_boundaries(graph)
    if len(ours) != len(acts):
        return False
    ctx = execute_step_model(graph, x, full=True)[0]
    for mine, (node, boundary) in zip(ours, acts, strict=True):
        theirs = np.asarray(ctx[_quantized_output(graph, node)])
        if mine.shape != theirs.shape:
            return False
        differ = ~np.isclose(mine, theirs, rtol=1e-5, atol=1e-7)
        if differ.any():
            return bool(np.all(near_boundary(np.asarray(ctx[node.input[0]]), boundary)[differ]))
    return None
