"""Nonuniform activations (issue #12, ENQ/KNQ): the quantizers, their export and the compiler's pieces.

The end-to-end checks (golden = torch's labels, every target bit-exact) run in test_nbit_layers.py's zoo, cases
a2-enq and w2a4-knq-zero-padded-mixed.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from bnn_flow.build import Build
from bnn_flow.compiler import CompileConfig, compile_model
from bnn_flow.conventions import float_thresholds_from_affine
from bnn_flow.errors import BadInputError
from bnn_flow.export import export_qonnx_file
from bnn_flow.level_streams import emit_levels, levels_streamed
from bnn_flow.nets.nonuniform import NonuniformActQuant, enq_table, snap_to_grid
from bnn_flow.plan import MultiThresholdMvau
from bnn_flow.qonnx_exec import load_qonnx
from bnn_flow.testing import random_net


def test_enq_levels_are_octaves_on_an_integer_grid():
    assert enq_table(2) == [0, 1, 2, 4]
    assert enq_table(3) == [0, 1, 2, 4, 8, 16, 32, 64]
    t = enq_table(4)  # 2^14 would not fit 8 bits: geometric from 1 to 255
    assert len(t) == 16 and t[1] == 1 and t[-1] == 255 and np.all(np.diff(t) > 0)


def test_snap_to_grid_keeps_zero_and_strictly_increasing_levels():
    table, scale = snap_to_grid(torch.tensor([0.0, 0.01, 0.011, 0.5, 3.0]), 4)
    assert table[0] == 0 and table[-1] == 15 and np.all(np.diff(table) > 0)
    assert scale == pytest.approx(3.0 / 15)


@pytest.mark.parametrize("method", ["enq", "knq"])
def test_quantizer_gives_the_nearest_level_and_a_straight_through_gradient(method):
    q = NonuniformActQuant(2, method)
    x = torch.linspace(-1, 4, 501, requires_grad=True)
    levels = q.levels
    y = q.eval()(x)
    nearest = levels[(x.detach()[:, None] - levels[None, :]).abs().argmin(1)]
    off_tie = ((x.detach()[:, None] - levels[None, :]).abs().sort(1).values.diff(dim=1)[:, 0] > 1e-4)
    assert torch.equal(y[off_tie], nearest[off_tie])
    q.train()(x).sum().backward()
    inside = (x.detach() > 0) & (x.detach() < float(q.levels[-1]))
    assert torch.all(x.grad[inside] == 1) and torch.all(x.grad[x.detach() < 0] == 0)


def test_knq_levels_fit_the_activations_better_than_enq():
    """KNQ's running k-means on an exponential distribution ends with less squared error than ENQ's octaves."""
    torch.manual_seed(0)
    data = [torch.distributions.Exponential(2.0).sample((4096,)) for _ in range(150)]
    errors = {}
    for method in ("enq", "knq"):
        q = NonuniformActQuant(2, method).train()
        for x in data:
            q(x)
        test = torch.distributions.Exponential(2.0).sample((20000,))
        errors[method] = float(((q.eval()(test) - test) ** 2).mean())
    assert errors["knq"] < errors["enq"]


def test_float_thresholds_on_an_affine_accumulator():
    """#{k : s * acc + b >= T_k} = #{k : (flip ? -acc : acc) >= t_k} for every acc, s > 0, s < 0 and s = 0."""
    rng = np.random.default_rng(0)
    scale = np.array([0.3, -0.7, 0.0, 0.0, 1.0])
    bias = np.array([0.1, 2.0, 0.5, -0.5, 0.0])
    thresholds = np.sort(rng.normal(size=(5, 3)), axis=1)
    thresholds[4] = [-1.0, 0.0, 1.0]  # exact ties on integers: y >= T includes them
    lo, hi = np.full(5, -20), np.full(5, 20)
    th = float_thresholds_from_affine(scale, bias, lo, hi, thresholds)
    for acc in range(-20, 21):
        y = scale * acc + bias
        want = (y[:, None] >= thresholds).sum(1)
        a = np.where(th.flip, -acc, acc)
        np.testing.assert_array_equal((a[:, None] >= th.threshold).sum(1), want, err_msg=str(acc))


def test_emit_levels_repeats_thresholds_per_unit_step():
    """The planned layer (levels) gives table[index] of the dataflow layer (index) for every accumulator."""
    rng = np.random.default_rng(1)
    table = np.array([0, 1, 3, 7])
    t = np.sort(rng.integers(-30, 30, size=(6, 3)), axis=1)
    w = np.ones((6, 4), dtype=np.int64)
    lay = MultiThresholdMvau("m", False, 4, 6, 1, (), w, t, None, None, None, levels=3, out_offset=0)
    planned = emit_levels(lay, table)
    assert planned.levels == 7 and planned.out_offset == 0 and planned.act_dtype.bits == 3
    for acc in range(-35, 35):
        index = (acc >= t).sum(1)
        np.testing.assert_array_equal(planned.out_offset + (acc >= planned.thresholds).sum(1), table[index])


@pytest.fixture(scope="module")
def enq_cnv(tmp_path_factory):
    d = tmp_path_factory.mktemp("enq_cnv")
    net = random_net(0, arch="cnv", in_channels=3, image_size=32, act_bits=2, act_quant="enq", width=0.125)
    export_qonnx_file(net, d / "m.onnx")
    return d


def test_export_form_and_compiled_streams_carry_indices(enq_cnv):
    """MultiThreshold -> Cast -> Gather(table) -> Mul(scale) in the QONNX; the dataflow graph's and the plan's
    integer MVAUs read the 2-bit index and decode the table (in_levels); levels_streamed (the C runtime's plan)
    streams the 3-bit levels instead."""
    m = onnx.load(enq_cnv / "m.onnx")
    ops = [n.op_type for n in m.graph.node]
    i = ops.index("MultiThreshold")
    assert ops[i:i + 4] == ["MultiThreshold", "Cast", "Gather", "Mul"]
    build = Build(enq_cnv / "build")
    compile_model(enq_cnv / "m.onnx", build, CompileConfig())
    final = load_qonnx(build.path / "05_dataflow.onnx")
    decoding = [n for n in final.graph.node if any(a.name == "in_levels" for a in n.attribute)]
    assert len(decoding) == 8  # every layer after the first reads indices
    for n in decoding:
        assert list(next(a for a in n.attribute if a.name == "in_levels").ints) == [0, 1, 2, 4]
        assert final.get_tensor_datatype(n.input[0]).name == "UINT2"
    plan = build.plan()
    nbit = [lay for lay in plan.mvaus if isinstance(lay, MultiThresholdMvau)]
    assert len(nbit) == 8 and all(lay.levels == 3 and lay.act_dtype.bits == 2 for lay in nbit)
    assert [lay.in_levels for lay in plan.mvaus] == [()] + [(0, 1, 2, 4)] * 8
    streamed = levels_streamed(plan)
    nbit = [lay for lay in streamed.mvaus if isinstance(lay, MultiThresholdMvau)]
    assert all(lay.levels == 4 and lay.act_dtype.bits == 3 for lay in nbit)
    assert all(not lay.in_levels for lay in streamed.mvaus)


def test_a_level_table_out_of_order_is_refused_in_one_line(enq_cnv, tmp_path):
    m = onnx.load(enq_cnv / "m.onnx")
    gather = next(n for n in m.graph.node if n.op_type == "Gather")
    table = next(i for i in m.graph.initializer if i.name == gather.input[0])
    table.CopyFrom(numpy_helper.from_array(np.array([0, 2, 1, 4], dtype=np.float32), table.name))
    onnx.save(m, tmp_path / "bad.onnx")
    with pytest.raises(BadInputError, match="strictly increasing") as e:
        compile_model(tmp_path / "bad.onnx", Build(tmp_path / "b"), CompileConfig())
    assert "\n" not in str(e.value)


def test_a_multithreshold_without_its_level_table_is_refused_in_one_line(enq_cnv, tmp_path):
    """The first activation's Cast -> Gather -> Mul removed: a bare float MultiThreshold, which nothing may
    truncate to integers silently."""
    m = onnx.load(enq_cnv / "m.onnx")
    nodes = list(m.graph.node)
    i = [n.op_type for n in nodes].index("MultiThreshold")
    cast, gather, mul = nodes[i + 1:i + 4]
    for n in nodes:
        for k, name in enumerate(n.input):
            if name == mul.output[0]:
                n.input[k] = nodes[i].output[0]
    for n in (cast, gather, mul):
        m.graph.node.remove(n)
    onnx.save(m, tmp_path / "bare.onnx")
    with pytest.raises(BadInputError) as e:
        compile_model(tmp_path / "bare.onnx", Build(tmp_path / "b"), CompileConfig())
    assert "\n" not in str(e.value) and "unsupported graph" in str(e.value)
