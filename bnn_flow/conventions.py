"""The numeric conventions of bnn-flow (DESIGN.md §1): every module takes these rules from here.

- sign(x) = +1 for x >= 0, else -1; a bipolar value v in {-1, +1} is stored as bit b = (v + 1) / 2.
- Binary dot product of K elements from the XNOR popcount p (agreeing positions): x.w = 2p - K.
- Packing (NHWC): channel c of a pixel goes to bit (c mod 64) of 64-bit word (c div 64), LSB first; the
  unused high bits of the last word are zero and kernels mask them out.
- A binary layer "affine -> sign" is an integer threshold on the accumulator, computed in float64 once,
  clamped into the accumulator's reachable range [lo, hi + 1] (which changes no output bit).
- The graph's integer output (the last layer's accumulators) maps to dot products by dot = a * acc + b
  (head.json's `acc_to_dot`); the host-side head turns dot products into class scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

WORD_BITS = 64
PAD_BIPOLAR = 1.0  # binary feature maps are padded with +1 (bit 1), "one-padding" as in Larq


# --- integer element types -------------------------------------------------------------------------------

@dataclass(frozen=True)
class IntType:
    """An integer element type: `bits` wide, two's complement when `signed`. Bits (0/1) are UINT1."""

    bits: int
    signed: bool

    @property
    def min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @staticmethod
    def covering(lo: int, hi: int) -> IntType:
        """The narrowest type holding every integer in [lo, hi]."""
        if lo >= 0:
            return IntType(max(1, int(hi).bit_length()), False)
        bits = max(int(hi).bit_length(), int(-lo - 1).bit_length()) + 1
        return IntType(bits, True)


BIT = IntType(1, False)


# --- packing ---------------------------------------------------------------------------------------------

def words_for(channels: int) -> int:
    """Number of 64-bit words that hold `channels` packed bits."""
    return -(-channels // WORD_BITS)


def packed_bytes(n_values: int, bits: int) -> int:
    """Storage of n_values values of `bits` bits, packed densely and rounded up to whole bytes."""
    return -(-n_values * bits // 8)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack the last axis of a {0,1} array into uint64 words, channel c -> bit c%64 of word c//64.

    Shape (..., C) -> (..., ceil(C/64)); the padding bits of the last word are 0.
    """
    bits = np.asarray(bits, dtype=np.uint8)
    c = bits.shape[-1]
    padded = np.zeros(bits.shape[:-1] + (words_for(c) * WORD_BITS,), dtype=np.uint8)
    padded[..., :c] = bits
    # packbits with bitorder="little" puts element i at bit i of each byte; 8 little-endian bytes
    # then form one uint64 with element i at bit i, which is exactly the LSB-first contract.
    as_bytes = np.packbits(padded, axis=-1, bitorder="little")
    return np.ascontiguousarray(as_bytes).view("<u8").astype(np.uint64)


def unpack_bits(words: np.ndarray, channels: int) -> np.ndarray:
    """Inverse of pack_bits: (..., W) uint64 -> (..., channels) uint8 in {0,1}."""
    words = np.ascontiguousarray(np.asarray(words, dtype="<u8"))
    as_bytes = words.view(np.uint8)
    bits = np.unpackbits(as_bytes, axis=-1, bitorder="little")
    return bits[..., :channels]


# --- accumulators ----------------------------------------------------------------------------------------

def accumulator_range(weights: np.ndarray, x_min: int, x_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output row of `weights` (rows x K integers): the least and greatest x.w over every input vector
    whose elements lie in [x_min, x_max]. Each product takes its extreme independently, so this is exact.

    Pre: x_min <= 0 <= x_max (every input type here holds 0). Then every partial sum of x.w also lies in
    [lo, hi], which is what bounds intermediate values (float BLAS exactness, hardware word widths).
    """
    w = np.asarray(weights, dtype=np.int64)
    pos, neg = np.clip(w, 0, None).sum(axis=-1), np.clip(w, None, 0).sum(axis=-1)
    return pos * x_min + neg * x_max, pos * x_max + neg * x_min


def popcount_range(k: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The XNOR popcount p of K bit pairs lies in [0, K], for each of `rows` outputs."""
    return np.zeros(rows, np.int64), np.full(rows, k, np.int64)


def popcount_to_dot(p: np.ndarray, k: int) -> np.ndarray:
    """The bipolar dot product of K elements from the XNOR popcount p: 2p - K."""
    return 2 * np.asarray(p, dtype=np.int64) - k


def dot_threshold_to_popcount(t_dot: np.ndarray, k: int) -> np.ndarray:
    """Threshold on the +-1 dot product (dot >= t) -> threshold on the XNOR popcount (p >= ceil((t+K)/2)).

    dot = 2p - K, so dot >= t <=> p >= (t + K) / 2 <=> p >= ceil((t + K) / 2) as p is an integer.
    """
    t = np.asarray(t_dot, dtype=np.int64)
    return -((-(t + k)) // 2)  # ceil division on integers, exact


def popcount_acc_to_dot(acc_to_dot: tuple[int, int], k: int) -> list[int]:
    """The `acc_to_dot` (a, b) of a last layer whose accumulator becomes the popcount of K pairs:
    dot = a * (2p - K) + b = 2a * p + (b - a*K)."""
    a, b = acc_to_dot
    return [2 * a, a * -k + b]


def acc_to_dot(acc: np.ndarray, head: dict) -> np.ndarray:
    """The graph's integer output (last layer's accumulators) as dot products: a * acc + b (head.json)."""
    a, b = head["acc_to_dot"]
    return np.asarray(acc, dtype=np.int64) * a + b


# --- thresholds ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChannelThresholds:
    """Per output channel: out = +1 iff (flip ? -acc : acc) >= threshold (all integers).

    A constant channel (zero scale) is expressed with a threshold at the edge of the (flipped) accumulator
    range: its least value for "always +1", its greatest + 1 for "always -1", so kernels need no special case.
    """

    threshold: np.ndarray  # int64 (C,), or (C, L) for an n-bit activation (multithresholds_from_affine)
    flip: np.ndarray  # bool (C,): the channel's weights are negated so the comparison stays ">="
    constant: np.ndarray  # bool (C,): zero scale; output does not depend on the input


def thresholds_from_affine(scale: np.ndarray, bias: np.ndarray, acc_lo: np.ndarray, acc_hi: np.ndarray
                           ) -> ChannelThresholds:
    """Integer thresholds for out = sign(scale * acc + bias) with an integer accumulator acc in [lo, hi].

    With tau = -bias/scale: scale > 0 gives acc >= ceil(tau); scale < 0 gives acc <= tau, i.e. the
    flipped accumulator -acc (in [-hi, -lo]) >= ceil(-tau); scale == 0 gives the constant sign(bias).
    Computed in float64; clamped into the (flipped) accumulator's range [least, greatest + 1].
    """
    scale = np.asarray(scale, dtype=np.float64)
    bias = np.asarray(bias, dtype=np.float64)
    constant = scale == 0
    flip = scale < 0
    lo = np.where(flip, -np.asarray(acc_hi), np.asarray(acc_lo)).astype(np.int64)
    hi = np.where(flip, -np.asarray(acc_lo), np.asarray(acc_hi)).astype(np.int64)
    safe = np.where(constant, 1.0, scale)
    tau = -bias / safe  # acc >= tau (scale > 0) or acc <= tau (scale < 0)
    t = np.where(flip, np.ceil(-tau), np.ceil(tau))
    t = np.where(constant, np.where(bias >= 0, lo, hi + 1), t)
    t = np.clip(t, lo, hi + 1).astype(np.int64)
    return ChannelThresholds(threshold=t, flip=flip, constant=constant)


def multithresholds_from_affine(scale: np.ndarray, bias: np.ndarray, acc_lo: np.ndarray, acc_hi: np.ndarray,
                                levels: range) -> ChannelThresholds:
    """Integer thresholds (C, L) for the n-bit activation q = clamp(round(scale * acc + bias)) of an integer
    accumulator acc in [lo, hi], round half to even (torch.round, QONNX Quant ROUND), q in `levels` = [q_lo, q_hi]:
    q = q_lo + #{k : (flip ? -acc : acc) >= threshold[:, k]}, one threshold per level above q_lo (FINN's
    MultiThreshold). Clamping to the levels is the count's own bounds, and a ReLU before the quantizer only
    raises q_lo to 0 (every threshold is for a level >= 1, which a negative value never reaches).

    round(y) >= k  <=>  y > k - 1/2, or y = k - 1/2 with k even. With scale > 0 and tau = (k - 1/2 - bias) /
    scale: acc >= ceil(tau) for an even k, acc >= floor(tau) + 1 for an odd one (they differ only on the tie);
    scale < 0 flips as in thresholds_from_affine; scale 0 is the constant round(bias). float64, clamped.
    """
    scale = np.asarray(scale, dtype=np.float64)[:, None]
    bias = np.asarray(bias, dtype=np.float64)[:, None]
    k = np.arange(levels.start + 1, levels.stop, dtype=np.float64)[None, :]
    constant, flip = scale == 0, scale < 0
    lo = np.where(flip, -np.asarray(acc_hi)[:, None], np.asarray(acc_lo)[:, None]).astype(np.int64)
    hi = np.where(flip, -np.asarray(acc_lo)[:, None], np.asarray(acc_hi)[:, None]).astype(np.int64)
    tau = (k - 0.5 - bias) / np.where(constant, 1.0, np.abs(scale))
    even = np.remainder(k, 2) == 0
    t = np.where(even, np.ceil(tau), np.floor(tau) + 1)
    t = np.where(constant, np.where(np.round(bias) >= k, lo, hi + 1), t)
    t = np.clip(t, lo, hi + 1).astype(np.int64)
    return ChannelThresholds(threshold=t, flip=flip[:, 0], constant=constant[:, 0])


def float_thresholds_from_affine(scale: np.ndarray, bias: np.ndarray, acc_lo: np.ndarray, acc_hi: np.ndarray,
                                 thresholds: np.ndarray) -> ChannelThresholds:
    """Integer thresholds (C, L) for q = #{k : scale * acc + bias >= thresholds[:, k]} (a MultiThreshold on the
    affine of an integer accumulator acc in [lo, hi]; thresholds (C or 1, L) floats, e.g. a nonuniform
    quantizer's): q = #{k : (flip ? -acc : acc) >= threshold[:, k]}. With tau = (T - bias) / |scale| both signs
    give ceil(tau) (y >= T includes the tie, and for scale < 0 it is -acc >= tau); scale 0 is the constant
    [bias >= T]. float64, clamped as in thresholds_from_affine.
    """
    scale = np.asarray(scale, dtype=np.float64)[:, None]
    bias = np.asarray(bias, dtype=np.float64)[:, None]
    t_in = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (scale.shape[0], np.shape(thresholds)[1]))
    constant, flip = scale == 0, scale < 0
    lo = np.where(flip, -np.asarray(acc_hi)[:, None], np.asarray(acc_lo)[:, None]).astype(np.int64)
    hi = np.where(flip, -np.asarray(acc_lo)[:, None], np.asarray(acc_hi)[:, None]).astype(np.int64)
    t = np.ceil((t_in - bias) / np.where(constant, 1.0, np.abs(scale)))
    t = np.where(constant, np.where(bias >= t_in, lo, hi + 1), t)
    t = np.clip(t, lo, hi + 1).astype(np.int64)
    return ChannelThresholds(threshold=t, flip=flip[:, 0], constant=constant[:, 0])


def bn_to_affine(
    gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """BatchNorm (inference) as y = scale*x + bias, in float64."""
    inv_std = 1.0 / np.sqrt(np.asarray(var, np.float64) + eps)
    scale = np.asarray(gamma, np.float64) * inv_std
    bias = np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * scale
    return scale, bias


# --- input quantization ----------------------------------------------------------------------------------

def qonnx_int_quant(x: np.ndarray, scale: float, zeropt: float, bitwidth: int, signed: bool,
                    narrow: bool) -> np.ndarray:
    """The integers of a QONNX Quant node (rounding_mode ROUND), bit-exact with qonnx's execution.

    Same float32 operations in the same order as qonnx.custom_op.general.intquant.int_quant: divide by
    the scale, add the zero point, clamp, round half to even; the result minus the zero point is returned
    as int64 (the Quant node's output divided by its scale).
    """
    x = np.asarray(x, dtype=np.float32)
    y = x / np.float32(scale) + np.float32(zeropt)
    if bitwidth == 1 and signed:
        return np.where(y >= 0, 1, -1).astype(np.int64)
    lo = -(2 ** (bitwidth - 1)) + int(narrow) if signed else 0
    hi = 2 ** (bitwidth - 1) - 1 if signed else 2**bitwidth - 1 - int(narrow)
    y = np.where(y > hi, np.float32(hi), y)
    y = np.where(y < lo, np.float32(lo), y)
    return (np.round(y) - np.float32(zeropt)).astype(np.int64)


def position_thresholds(table: np.ndarray, rows: Sequence[int], cols: Sequence[int]) -> np.ndarray:
    """(OH, OW, MH) thresholds of a zero-padded binary convolution from its (row classes, column classes, MH)
    table: output pixel (oy, ox) takes class (rows[oy], cols[ox]) (transforms/zero_padding.py)."""
    return np.asarray(table)[np.asarray(rows)][:, np.asarray(cols)]
