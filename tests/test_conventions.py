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


def test_popcount_dot_product():
    """x.w of bipolar vectors = 2p - K with p the agreeing positions of their bits (v -> (v+1)/2)."""
    rng = np.random.default_rng(0)
    x = np.where(rng.random((10, 100)) < 0.5, -1, 1)
    w = np.where(rng.random(100) < 0.5, -1, 1)
    p = np.sum((x > 0) == (w > 0), axis=1)
    np.testing.assert_array_equal(cv.popcount_to_dot(p, 100), x @ w)
    a, b = cv.popcount_acc_to_dot((3, 5), 100)  # a head that scaled the dot product keeps doing so
    np.testing.assert_array_equal(cv.acc_to_dot(p, {"acc_to_dot": [a, b]}), 3 * (x @ w) + 5)


def test_accumulator_range_is_exact_and_bounds_partial_sums():
    rng = np.random.default_rng(3)
    w = rng.integers(-3, 4, size=(6, 5))
    lo, hi = cv.accumulator_range(w, -2, 5)
    grid = np.array(np.meshgrid(*[np.arange(-2, 6)] * 5)).reshape(5, -1).T  # every input vector
    acc = grid @ w.T
    np.testing.assert_array_equal(acc.min(0), lo)
    np.testing.assert_array_equal(acc.max(0), hi)
    partial = np.cumsum(grid[:, None, :] * w[None], axis=2)
    assert np.all(partial >= lo[None, :, None]) and np.all(partial <= hi[None, :, None])
    np.testing.assert_array_equal(cv.popcount_range(9, 2)[1], [9, 9])


def test_thresholds_match_float_affine_exhaustively():
    """For every integer accumulator in range, sign(scale*a + bias) equals the integer threshold test."""
    rng = np.random.default_rng(1)
    scale = np.concatenate([rng.normal(size=20), [0.0, 0.0, -0.0]])
    bias = np.concatenate([rng.normal(size=20) * 10, [1.0, -1.0, 0.0]])
    # exact ties: scale 0.5 with bias -1.5 puts the threshold exactly on a = 3
    scale, bias = np.append(scale, [0.5, -0.5]), np.append(bias, [-1.5, 1.5])
    for acc_min, acc_max in ((-27, 27), (-5, 40)):  # symmetric (bipolar) and skewed (integer layer) ranges
        lo, hi = np.full(len(scale), acc_min), np.full(len(scale), acc_max)
        th = cv.thresholds_from_affine(scale, bias, lo, hi)
        a = np.arange(acc_min, acc_max + 1)[:, None]
        want = scale * a + bias >= 0
        signed_acc = np.where(th.flip, -a, a)
        np.testing.assert_array_equal(signed_acc >= th.threshold, want)
        # inside the (flipped) range: [lo, hi + 1] or [-hi, -lo + 1]
        least, greatest = np.where(th.flip, -hi, lo), np.where(th.flip, -lo, hi)
        assert np.all(th.threshold >= least) and np.all(th.threshold <= greatest + 1)


def test_bn_to_affine():
    scale, bias = cv.bn_to_affine(np.array([2.0]), np.array([1.0]), np.array([3.0]), np.array([4.0]), 0.0)
    assert scale[0] == 1.0 and bias[0] == -2.0
