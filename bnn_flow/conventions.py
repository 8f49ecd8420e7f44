"""The numeric conventions of bnn-flow (DESIGN.md §1). Every other module imports them from here.

- sign(x) = +1 for x >= 0, else -1.
- Bipolar value v in {-1, +1} is stored as bit b = (v + 1) / 2  (-1 -> 0, +1 -> 1), as in qonnx/FINN.
- Binary dot product of K elements: x.w = 2 * popcount(XNOR(bx, bw)) - K = K - 2 * popcount(bx XOR bw).
- Packing (NHWC): channel c of a pixel goes to bit (c mod 64) of 64-bit word (c div 64), LSB first; the
  unused high bits of the last word are zero and kernels mask them out.
- A binary layer "affine -> sign" is an integer threshold on the accumulator, computed in float64 once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WORD_BITS = 64
PAD_BIPOLAR = 1.0  # binary feature maps are padded with +1 (bit 1), "one-padding" as in Larq


def sign(x: np.ndarray) -> np.ndarray:
    """+1 where x >= 0 else -1, as float32 (the Brevitas/qonnx binary quantizer)."""
    return np.where(np.asarray(x) >= 0, 1.0, -1.0).astype(np.float32)


def bipolar_to_bits(v: np.ndarray) -> np.ndarray:
    """{-1,+1} -> {0,1} as uint8. Raises on values that are not bipolar (0 is not bipolar)."""
    v = np.asarray(v)
    if not np.all((v == 1) | (v == -1)):
        raise ValueError("bipolar_to_bits: input holds values other than -1 and +1")
    return (v > 0).astype(np.uint8)


def bits_to_bipolar(b: np.ndarray) -> np.ndarray:
    """{0,1} -> {-1,+1} as float32."""
    return (2.0 * np.asarray(b, dtype=np.float32) - 1.0).astype(np.float32)


def words_for(channels: int) -> int:
    """Number of 64-bit words that hold `channels` packed bits."""
    return -(-channels // WORD_BITS)


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


def binary_dot_from_xor(popcount_xor: np.ndarray, k: int) -> np.ndarray:
    """The bipolar dot product of K elements from popcount(bx XOR bw): K - 2*popcount."""
    return k - 2 * np.asarray(popcount_xor, dtype=np.int64)


@dataclass(frozen=True)
class ChannelThresholds:
    """Per output channel: out = +1 iff (flip ? -acc : acc) >= threshold (all integers).

    A constant channel (zero scale) is expressed with a threshold outside the accumulator range:
    acc_min for "always +1", acc_max + 1 for "always -1", so kernels need no special case.
    """

    threshold: np.ndarray  # int64 (C,)
    flip: np.ndarray  # bool (C,): the channel's weights are negated so the comparison stays ">="
    constant: np.ndarray  # bool (C,): zero scale; output does not depend on the input


def thresholds_from_affine(
    scale: np.ndarray, bias: np.ndarray, acc_min: int, acc_max: int
) -> ChannelThresholds:
    """Integer thresholds for out = sign(scale * acc + bias) with an integer accumulator acc.

    With tau = -bias/scale: scale > 0 gives acc >= ceil(tau); scale < 0 gives acc <= tau, i.e. the
    flipped accumulator -acc >= ceil(-tau); scale == 0 gives the constant sign(bias). Computed in float64;
    the result is clamped to [acc_min, acc_max + 1] (acc ranges are symmetric for bipolar products,
    so the flipped accumulator has the same range).
    """
    scale = np.asarray(scale, dtype=np.float64)
    bias = np.asarray(bias, dtype=np.float64)
    constant = scale == 0
    flip = scale < 0
    safe = np.where(constant, 1.0, scale)
    tau = -bias / safe  # acc >= tau (scale > 0) or acc <= tau (scale < 0)
    t = np.where(flip, np.ceil(-tau), np.ceil(tau))
    t = np.where(constant, np.where(bias >= 0, acc_min, acc_max + 1), t)
    t = np.clip(t, acc_min, acc_max + 1).astype(np.int64)
    return ChannelThresholds(threshold=t, flip=flip, constant=constant)


def bn_to_affine(
    gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """BatchNorm (inference) as y = scale*x + bias, in float64."""
    inv_std = 1.0 / np.sqrt(np.asarray(var, np.float64) + eps)
    scale = np.asarray(gamma, np.float64) * inv_std
    bias = np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * scale
    return scale, bias


def packed_weight_bytes(n_params: int, bits: int) -> int:
    """Storage of n_params weights of `bits` bits, packed densely and rounded up to whole bytes."""
    return -(-n_params * bits // 8)


# --- Compiler conventions (bnn_flow.transforms / bnn_flow.ops / bnn_flow.golden) -------------------------
# * Every bit tensor of the dataflow graph is packed along its LAST axis (pack_bits), including the
#   sliding-window output (N, OH, OW, kh*kw*C, patch order kh, kw, c with c fastest) and flattened
#   tensors (N, H*W*C in h, w, c order): dense, LSB first, zero padding bits in the last word.
# * Binary MVAU thresholds are expressed on the XNOR popcount p = number of agreeing positions
#   (FINN / finn-hlslib convention): out bit = p >= T. The dot product is 2p - K. A binary MVAU without
#   thresholds (the last layer) outputs p; the head metadata says how to turn p into the dot product.
# * Integer MVAU thresholds are expressed on the integer dot product acc = sum(x * w): out bit = acc >= T.


def dot_threshold_to_popcount(t_dot: np.ndarray, k: int) -> np.ndarray:
    """Threshold on the +-1 dot product (dot >= t) -> threshold on the XNOR popcount (p >= ceil((t+K)/2)).

    dot = 2p - K, so dot >= t <=> p >= (t + K) / 2 <=> p >= ceil((t + K) / 2) as p is an integer.
    """
    t = np.asarray(t_dot, dtype=np.int64)
    return -((-(t + k)) // 2)  # ceil division on integers, exact


def xor_popcount_to_xnor(popcount_xor: np.ndarray, k: int) -> np.ndarray:
    """Agreeing positions p = K - popcount(x XOR w) (padding bits are 0 in both, so they never count)."""
    return k - np.asarray(popcount_xor, dtype=np.int64)


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
