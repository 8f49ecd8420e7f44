import numpy as np
import pytest

from bnn_flow import conventions as cv


@pytest.mark.parametrize("c", [1, 7, 63, 64, 65, 130])
def test_pack_roundtrip_and_bit_positions(c):
    rng = np.random.default_rng(c)
    bits = rng.integers(0, 2, size=(3, 5, c), dtype=np.uint8)
    words = cv.pack_bits(bits)
    assert words.shape == (3, 5, cv.words_for(c)) and words.dtype == np.uint64
    np.testing.assert_array_equal(cv.unpack_bits(words, c), bits)
    # channel k -> bit k % 64 of word k // 64, padding bits zero
    for k in range(c):
        got = (words[..., k // 64] >> np.uint64(k % 64)) & np.uint64(1)
        np.testing.assert_array_equal(got, bits[..., k])
    if c % 64:
        assert np.all(words[..., -1] >> np.uint64(c % 64) == 0)


def test_bipolar_encoding_and_dot_product():
    rng = np.random.default_rng(0)
    x = np.where(rng.random((10, 100)) < 0.5, -1.0, 1.0)
    w = np.where(rng.random(100) < 0.5, -1.0, 1.0)
    bx, bw = cv.bipolar_to_bits(x), cv.bipolar_to_bits(w)
    np.testing.assert_array_equal(cv.bits_to_bipolar(bx), x)
    pc = np.sum(bx ^ bw, axis=1)
    np.testing.assert_array_equal(cv.binary_dot_from_xor(pc, 100), (x @ w).astype(np.int64))
    with pytest.raises(ValueError):
        cv.bipolar_to_bits(np.array([0.0, 1.0]))


def test_sign_of_zero_is_plus_one():
    np.testing.assert_array_equal(cv.sign(np.array([-0.5, 0.0, 2.0])), [-1, 1, 1])


def test_thresholds_match_float_affine_exhaustively():
    """For every integer accumulator in range, sign(scale*a + bias) equals the integer threshold test."""
    rng = np.random.default_rng(1)
    scale = np.concatenate([rng.normal(size=20), [0.0, 0.0, -0.0]])
    bias = np.concatenate([rng.normal(size=20) * 10, [1.0, -1.0, 0.0]])
    # exact ties: scale 0.5 with bias -1.5 puts the threshold exactly on a = 3
    scale, bias = np.append(scale, [0.5, -0.5]), np.append(bias, [-1.5, 1.5])
    acc_min, acc_max = -27, 27
    th = cv.thresholds_from_affine(scale, bias, acc_min, acc_max)
    a = np.arange(acc_min, acc_max + 1)[:, None]
    want = scale * a + bias >= 0
    signed_acc = np.where(th.flip, -a, a)
    np.testing.assert_array_equal(signed_acc >= th.threshold, want)


def test_bn_to_affine():
    scale, bias = cv.bn_to_affine(np.array([2.0]), np.array([1.0]), np.array([3.0]), np.array([4.0]), 0.0)
    assert scale[0] == 1.0 and bias[0] == -2.0
