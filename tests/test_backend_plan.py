"""The layer plan shared by the back-ends: shapes, types, exact threshold clamping, folding legality."""


import numpy as np
import pytest

from bnn_flow.build import Build
from bnn_flow.compiler import CompileConfig, compile_model
from bnn_flow.errors import BadInputError
from bnn_flow.export import export_qonnx_file
from bnn_flow.golden import GoldenModel
from bnn_flow.nets import build_net
from bnn_flow.ops import reference as ref
from bnn_flow.plan import BIT, IntType, Mvau, Window
from bnn_flow.testing import set_folding


@pytest.fixture(scope="module")
def cnv_build(tmp_path_factory):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from golden import randomize_bn

    d = tmp_path_factory.mktemp("plan")
    net = randomize_bn(build_net(arch="cnv", num_classes=10, in_channels=3, image_size=32, width=0.125), seed=3)
    export_qonnx_file(net, d / "m.onnx")
    compile_model(d / "m.onnx", d / "build", CompileConfig())
    return d / "build"


@pytest.mark.parametrize("lo,hi,bits,signed", [(0, 1, 1, False), (0, 255, 8, False), (-128, 127, 8, True),
                                               (-1, 0, 1, True), (-3, 4, 4, True), (0, 576, 10, False)])
def test_int_type_covering(lo, hi, bits, signed):
    t = IntType.covering(lo, hi)
    assert (t.bits, t.signed) == (bits, signed)
    assert t.min <= lo and hi <= t.max


def test_plan_chains_shapes_and_types(cnv_build):
    plan = Build(cnv_build).plan()
    assert plan.input_shape == (32, 32, 3) and plan.input_dtype == IntType(8, True)
    assert plan.classes == 10 and not plan.mvaus[-1].out_bits
    first = plan.layers[0]
    assert isinstance(first, Window) and first.dtype == plan.input_dtype
    for m in plan.mvaus:
        assert m.weights.shape == (m.mh, m.mw)
        if m.binary:
            assert set(np.unique(m.weights)) <= {0, 1} and m.in_dtype == BIT
    conv = [m for m in plan.mvaus if m.out_spatial]
    assert conv[0].pixels == 30 * 30 and conv[0].out_spatial == (30, 30)


def _run_plan(plan, q):
    """Execute the plan with the numpy references: proves the plan alone carries the whole network."""
    from bnn_flow.conventions import pack_bits

    x, bits, ch = (pack_bits(q.astype(np.uint8)), True, q.shape[-1]) if plan.input_dtype == BIT else (q, False, 0)
    for lay in plan.layers:
        if lay.kind == "window":
            if bits:
                x = ref.sliding_window_bits(x, lay.in_shape[-1], lay.kernel, lay.stride, lay.pad, lay.pad_value)
            else:
                x = ref.sliding_window_ints(x, lay.kernel, lay.stride, lay.pad, lay.pad_value)
        elif lay.kind == "maxpool":
            x = ref.maxpool_bits(x, lay.kernel, lay.stride)
        elif lay.kind == "flatten":
            x = ref.repack_flatten(x, lay.in_shape[-1]) if bits else x.reshape(len(x), -1)
        else:
            assert isinstance(lay, Mvau)
            if lay.binary:
                x = ref.mvau_binary(x, ref.pack_weights(lay.weights.T), lay.mw, lay.thresholds)
            else:
                x = ref.mvau_integer(x, lay.weights.T, lay.thresholds, 2**62)
            bits = lay.out_bits
    return x.reshape(len(q), -1)


def test_plan_with_clamped_thresholds_equals_golden(cnv_build):
    plan = Build(cnv_build).plan()
    golden = GoldenModel(cnv_build)
    x = np.random.default_rng(0).random((6, 3, 32, 32), dtype=np.float32)
    np.testing.assert_array_equal(_run_plan(plan, golden.spec.apply(x)), golden.run_integer(x))
    for m in plan.mvaus:
        if m.thresholds is not None:
            assert m.acc_dtype.min <= m.thresholds.min() and m.thresholds.max() <= m.acc_dtype.max


def test_folding_is_read_and_checked(cnv_build):
    plan = Build(cnv_build).plan()
    m = plan.mvaus[1]
    set_folding(cnv_build, {m.name: {"PE": m.mh, "SIMD": 1}})
    try:
        assert Build(cnv_build).plan().mvaus[1].pe == m.mh
        set_folding(cnv_build, {m.name: {"PE": m.mh + 1, "SIMD": 1}})
        with pytest.raises(BadInputError, match="illegal folding"):
            Build(cnv_build).plan()
    finally:
        set_folding(cnv_build, None)


def test_every_back_end_table_covers_every_plan_kind():
    """A layer kind added to the plan needs an entry in each back-end's table (handler() refuses one it lacks)."""
    from typing import get_args

    from bnn_flow.backends.cpu.float_twin import TWIN
    from bnn_flow.backends.cpu.pack import CPU_LAYERS
    from bnn_flow.backends.hls.layers import HLS_LAYERS
    from bnn_flow.backends.rtl.layers import RTL_LAYERS
    from bnn_flow.golden import GOLDEN
    from bnn_flow.plan import Layer

    kinds = set(get_args(Layer))
    for name, table in (("golden", GOLDEN), ("hls", HLS_LAYERS), ("cpu", CPU_LAYERS), ("float twin", TWIN),
                        ("rtl", RTL_LAYERS)):
        assert set(table) == kinds, name
