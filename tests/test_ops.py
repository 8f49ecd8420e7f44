"""The numpy references over packed bits equal straightforward logical computations."""

import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx

from bnn_flow.conventions import (
    dot_threshold_to_popcount,
    pack_bits,
    qonnx_int_quant,
    unpack_bits,
)
from bnn_flow.ops import fast
from bnn_flow.ops import reference as ref

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("c", [1, 8, 64, 70, 130])
@pytest.mark.parametrize("pad,pad_bit", [((0, 0, 0, 0), 1), ((1, 1, 1, 1), 1), ((1, 0, 2, 1), 0)])
def test_sliding_window_bits_equals_ints(c, pad, pad_bit):
    bits = RNG.integers(0, 2, size=(2, 5, 6, c), dtype=np.uint8)
    want = ref.sliding_window_ints(bits, (3, 3), (1, 2), pad, pad_bit)
    got = ref.sliding_window_bits(pack_bits(bits), c, (3, 3), (1, 2), pad, pad_bit)
    np.testing.assert_array_equal(unpack_bits(got, want.shape[-1]), want)
    assert np.all(unpack_bits(got, got.shape[-1] * 64)[..., want.shape[-1]:] == 0)  # padding bits stay 0


def test_sliding_window_ints_patch_order():
    x = np.arange(2 * 4 * 4 * 3).reshape(2, 4, 4, 3)
    out = ref.sliding_window_ints(x, (2, 2), (2, 2), (0, 0, 0, 0), 0)
    np.testing.assert_array_equal(out[1, 1, 0], np.concatenate([x[1, 2, 0], x[1, 2, 1], x[1, 3, 0], x[1, 3, 1]]))


@pytest.mark.parametrize("c", [8, 64, 100])
def test_maxpool_bits_is_or(c):
    bits = RNG.integers(0, 2, size=(3, 6, 6, c), dtype=np.uint8)
    want = bits.reshape(3, 3, 2, 3, 2, c).max(axis=(2, 4))
    np.testing.assert_array_equal(unpack_bits(ref.maxpool_bits(pack_bits(bits), (2, 2), (2, 2)), c), want)


@pytest.mark.parametrize("k,mh", [(9, 8), (64, 3), (72, 10), (200, 65)])
def test_mvau_binary_equals_bipolar_matmul(k, mh):
    x = RNG.integers(0, 2, size=(4, 5, k), dtype=np.uint8)
    w = RNG.integers(0, 2, size=(k, mh), dtype=np.uint8)
    dot = (2.0 * x - 1) @ (2.0 * w - 1)
    p = ref.mvau_binary(pack_bits(x), ref.pack_weights(w), k, None)
    np.testing.assert_array_equal(2 * p - k, dot)
    t = RNG.integers(0, k + 1, size=mh)
    bits = ref.mvau_binary(pack_bits(x), ref.pack_weights(w), k, t)
    np.testing.assert_array_equal(unpack_bits(bits, mh), (p >= t).astype(np.uint8))


def test_mvau_integer_exact():
    x = RNG.integers(0, 256, size=(7, 27))
    w = RNG.choice([-1, 1], size=(27, 9))
    np.testing.assert_array_equal(ref.mvau_integer(x, w, None, 27 * 255), x @ w)


def test_dot_threshold_to_popcount_exhaustive():
    for k in range(1, 12):
        for t in range(-k - 1, k + 2):
            pt = dot_threshold_to_popcount(np.array([t]), k)[0]
            for p in range(k + 1):
                assert (2 * p - k >= t) == (p >= pt)


def _quant_graph(scale, bits, signed, narrow):
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, [256])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [256])
    node = helper.make_node("Quant", ["x", "s", "z", "b"], ["y"], domain="qonnx.custom_op.general",
                            signed=int(signed), narrow=int(narrow), rounding_mode="ROUND")
    g = helper.make_graph([node], "q", [inp], [out], initializer=[
        helper.make_tensor("s", TensorProto.FLOAT, [], [scale]), helper.make_tensor("z", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("b", TensorProto.FLOAT, [], [float(bits)])])
    return ModelWrapper(helper.make_model(g))


@pytest.mark.parametrize("pre,scale,bits,signed,narrow", [
    (False, np.float32(1 / 255), 8, False, False),  # our nets: integers are the pixels
    (True, 2.0**-7, 8, True, False),  # FINN CNV Q1.7 after 2x-1
    (False, np.float32(1 / 3), 2, False, False),
    (True, 1.0, 2, True, True),
])
def test_int_quant_matches_qonnx_on_all_pixels(pre, scale, bits, signed, narrow):
    x = (np.arange(256, dtype=np.float32) / np.float32(255)).astype(np.float32)
    if pre:
        x = (x * np.float32(2.0) - np.float32(1.0)).astype(np.float32)
    y = execute_onnx(_quant_graph(float(scale), bits, signed, narrow), {"x": x})["y"]
    q = qonnx_int_quant(x, float(scale), 0.0, bits, signed, narrow)
    np.testing.assert_array_equal(q.astype(np.float32) * np.float32(scale), y)


# --- optimized kernels (bnn_flow.ops.fast) against their references ------------------------------------
@pytest.mark.parametrize("m,k,mh", [(1, 1, 1), (7, 63, 5), (300, 64, 64), (1000, 70, 33), (5000, 130, 10),
                                    (2100, 576, 64), (40, 1152, 130), (9000, 27, 200)])
@pytest.mark.parametrize("with_thresholds", [False, True])
def test_fast_binary_mvau_equals_reference(m, k, mh, with_thresholds, monkeypatch):
    monkeypatch.setattr(fast, "_BLOCK_BYTES", 8 * 1024)  # many blocks, on the thread pool, on small shapes
    rng = np.random.default_rng(m * 7 + k)
    x = pack_bits(rng.integers(0, 2, size=(m, k), dtype=np.uint8))
    w = ref.pack_weights(rng.integers(0, 2, size=(k, mh), dtype=np.uint8))
    # thresholds over and beyond the popcount range [0, K]: always-on / always-off channels included
    t = rng.integers(-3, k + 4, size=mh) if with_thresholds else None
    want = ref.mvau_binary(x.reshape(1, m, -1), w, k, t)
    got = fast.mvau_binary(x.reshape(1, m, -1), w, k, t)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("m,k,mh,bits", [(1, 1, 1, 8), (50, 27, 64, 8), (3000, 27, 70, 8), (200, 48, 130, 2),
                                         (64, 4000, 3, 16)])
@pytest.mark.parametrize("with_thresholds", [False, True])
def test_fast_integer_mvau_equals_reference(m, k, mh, bits, with_thresholds):
    rng = np.random.default_rng(m + k + mh)
    x = rng.integers(0, 2**bits, size=(2, m, k))
    w = rng.choice([-1, 1], size=(k, mh))
    bound = (2**bits - 1) * k
    t = rng.integers(-bound - 1, bound + 2, size=mh) if with_thresholds else None
    want = ref.mvau_integer(x, w, t, bound)  # bound >= 2^24 for the last shape: both take the exact path
    got = fast.mvau_integer(x, w, t, bound)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
