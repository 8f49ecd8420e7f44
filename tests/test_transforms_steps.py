"""Every transform alone: outputs before == after (qonnx execute_onnx on sample inputs), and the op
types it removes are gone. Runs on a tiny net with every pattern: 8-bit first conv with zero pad,
+1-padded binary conv, max-pool, flatten of a feature map, binary FC, BatchNorm head."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.cleanup import cleanup_model
from torch import nn

from bnn_flow.compiler import execute_step_model, outputs_as_scores
from bnn_flow.conventions import accumulator_range
from bnn_flow.export import export_qonnx_file
from bnn_flow.nets.common import BnnNet, conv_block, fc_stack
from bnn_flow.nets.quant import QuantSpec
from bnn_flow.qonnx_exec import load_qonnx
from bnn_flow.transforms import dataflow, input_spec, lower, streamline, tidy, xnor

_spec = importlib.util.spec_from_file_location("_golden_helpers", Path(__file__).parent / "test_golden.py")
_h = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_h)

EXACT = "exact"
# (transform factory, op types that must be gone afterwards, comparison)
SEQUENCE = [
    (tidy.FoldWeightQuant, [], "close"),
    (input_spec.ExtractInputSpec, ["Quant"], "close"),
    (streamline.FactorActivationScale, [], "close"),
    (streamline.MoveScalarMulDownstream, [], "close"),
    (streamline.AbsorbAffineSignIntoThreshold, ["BipolarQuant"], "labels"),
    (streamline.ExtractHead, ["BatchNormalization", "Mul", "Add"], "labels"),
    (lower.MakeInputNHWC, [], EXACT),
    (lower.ConvToSlidingWindow, ["Conv", "Pad"], EXACT),
    (lower.ThresholdToNHWC, [], EXACT),
    (lower.MaxPoolToNHWC, ["MaxPool"], EXACT),
    (lower.CancelTransposes, [], EXACT),
    (lower.AbsorbTransposeIntoFlatten, ["Transpose"], EXACT),
    (xnor.BipolarToBinary, [], EXACT),
    (dataflow.FuseMVAU, ["MatMul", "XnorPopcountMatMul", "MultiThreshold"], EXACT),
]


def tiny_net():
    spec = QuantSpec(in_bits=8)
    feats = nn.Sequential(*conv_block(spec, 2, 8, first=True), *conv_block(spec, 8, 70, first=False, pool=True))
    cls = fc_stack(spec, 70 * 4 * 4, [16], 5)
    return _h.randomize_bn(BnnNet(feats, cls, bipolar_input=False, input_shape=(2, 8, 8), arch="tiny"))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The model before and after each transform of SEQUENCE, applied cumulatively."""
    d = tmp_path_factory.mktemp("tiny")
    export_qonnx_file(tiny_net(), d / "m.onnx")
    m = cleanup_model(load_qonnx(d / "m.onnx")).transform(InferShapes()).transform(InferDataTypes())
    out = []
    for make, _, _ in SEQUENCE:
        after = m.transform(make()).transform(InferShapes()).transform(InferDataTypes())
        out.append((m, after))
        m = after
    return out


@pytest.mark.parametrize("i", range(len(SEQUENCE)), ids=[s[0].__name__ for s in SEQUENCE])
def test_transform_preserves_outputs(models, i):
    before, after = models[i]
    _, gone, how = SEQUENCE[i]
    x = _h.images(3, 2, 8, seed=i)
    bs, bd = outputs_as_scores(before, execute_step_model(before, x))
    as_, ad = outputs_as_scores(after, execute_step_model(after, x))
    if how == EXACT:
        np.testing.assert_array_equal(ad, bd)
    elif how == "close":
        np.testing.assert_allclose(as_, bs, rtol=1e-5, atol=1e-4)
    else:
        np.testing.assert_array_equal(as_.argmax(1), bs.argmax(1))
        np.testing.assert_allclose(as_, bs, rtol=1e-4, atol=1e-3)
    ops = {n.op_type for n in after.graph.node}
    assert not ops & set(gone), ops


def test_fold_weight_quant_annotates_bipolar(models):
    _, after = models[0]
    weights = [n.input[1] for n in after.graph.node if n.op_type in ("Conv", "MatMul")]
    assert weights and all(after.get_tensor_datatype(w).name == "BIPOLAR" for w in weights)


def test_final_graph_holds_only_dataflow_ops(models):
    _, final = models[-1]
    final = final.transform(dataflow.CheckDataflow())
    assert {n.op_type for n in final.graph.node} <= dataflow.DATAFLOW_OPS | {"Flatten", "Reshape"}


def test_negative_and_zero_gamma_channels(models):
    """randomize_bn gives zero gammas (constant channels) and negative ones (flipped weights)."""
    before, after = models[[m for m, _, _ in SEQUENCE].index(streamline.AbsorbAffineSignIntoThreshold)]
    th = [after.get_initializer(n.input[1]) for n in after.graph.node if n.op_type == "MultiThreshold"]
    conv = next(n for n in after.graph.node if n.op_type == "Conv")
    w = after.get_initializer(conv.input[1])
    lo, hi = accumulator_range(np.rint(w.reshape(w.shape[0], -1)).astype(np.int64), 0, 255)  # 8-bit pixels
    # the two zero-gamma channels are constant: a threshold at an edge of their accumulator range
    assert th[0][0, 0] in (lo[0], hi[0] + 1) and th[0][1, 0] in (lo[1], hi[1] + 1)
