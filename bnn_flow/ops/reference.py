"""Numpy reference functions of the dataflow layers: these ARE the golden model (DESIGN.md §2).

Bit tensors are packed along their last axis (conventions.pack_bits: uint64 words, LSB first, zero
padding bits). Integer tensors are int64 (or float64 BLAS carriers where exact). All functions take a
batch axis first and work on any batch size.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from bnn_flow.conventions import WORD_BITS, pack_bits, unpack_bits, words_for

# float64 represents every integer below 2^53 exactly, so a float64 BLAS matmul of integers whose
# partial sums stay below that bound is an exact integer matmul (and much faster than numpy int matmul).
_EXACT_F64 = 2**53
_EXACT_F32 = 2**24


def _windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """(N, H, W, C) -> (N, OH, OW, kh, kw, C) view of the sliding windows (no copy)."""
    v = sliding_window_view(x, kernel, axis=(1, 2))  # (N, OH', OW', C, kh, kw)
    v = v[:, :: stride[0], :: stride[1]]
    return v.transpose(0, 1, 2, 4, 5, 3)


def sliding_window_ints(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
                        pad: tuple[int, int, int, int], pad_value: int) -> np.ndarray:
    """Im2col of an integer NHWC tensor. pad = (top, left, bottom, right).

    Post: (N, OH, OW, kh*kw*C), patch order (kh, kw, c), c fastest.
    """
    t, left, b, r = pad
    if any(pad):
        x = np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=pad_value)
    w = _windows(x, kernel, stride)
    return np.ascontiguousarray(w).reshape(w.shape[0], w.shape[1], w.shape[2], -1)


def channel_mask_words(channels: int) -> np.ndarray:
    """The packed words of a pixel whose `channels` bits are all 1 (padding bits stay 0)."""
    return pack_bits(np.ones(channels, dtype=np.uint8))


def sliding_window_bits(x: np.ndarray, channels: int, kernel: tuple[int, int], stride: tuple[int, int],
                        pad: tuple[int, int, int, int], pad_bit: int) -> np.ndarray:
    """Im2col of a packed bit NHWC tensor (N, H, W, words(C)) -> packed (N, OH, OW, words(kh*kw*C))."""
    t, left, b, r = pad
    if any(pad):
        n, h, w_, nw = x.shape
        fill = channel_mask_words(channels) if pad_bit else np.zeros(nw, np.uint64)
        padded = np.empty((n, h + t + b, w_ + left + r, nw), dtype=np.uint64)
        padded[:] = fill
        padded[:, t : t + h, left : left + w_] = x
        x = padded
    win = _windows(x, kernel, stride)  # (N, OH, OW, kh, kw, words)
    n, oh, ow = win.shape[:3]
    if channels % WORD_BITS == 0:  # whole words: the dense packing is the concatenation of words
        return np.ascontiguousarray(win).reshape(n, oh, ow, -1)
    bits = unpack_bits(np.ascontiguousarray(win), channels)  # (N, OH, OW, kh, kw, C)
    return pack_bits(bits.reshape(n, oh, ow, -1))


def repack_flatten(x: np.ndarray, channels: int) -> np.ndarray:
    """Flatten a packed (N, ..., words(C)) tensor to packed (N, words(prod(...)*C)) in (..., c) order."""
    n = x.shape[0]
    if channels % WORD_BITS == 0:
        return np.ascontiguousarray(x).reshape(n, -1)
    return pack_bits(unpack_bits(x, channels).reshape(n, -1))


def maxpool_bits(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """Max-pool of bipolar bits = OR over the window, word by word. (N, H, W, words) -> (N, OH, OW, words)."""
    win = _windows(x, kernel, stride)
    out = win[:, :, :, 0, 0]
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            if i or j:
                out = out | win[:, :, :, i, j]
    return np.ascontiguousarray(out)


def maxpool_ints(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """Max-pool of integers (n-bit activations). (N, H, W, C) -> (N, OH, OW, C)."""
    return np.ascontiguousarray(_windows(x, kernel, stride).max(axis=(3, 4)))


def xnor_popcount(x: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    """p = number of agreeing positions of each input row with each weight row.

    x: packed (M, KW) uint64; w: packed (MH, KW) uint64; both with zero padding bits, so
    popcount(x XOR w) counts only real disagreements and p = K - that. Post: (M, MH) int64.
    """
    m, kw = x.shape
    # narrow accumulators keep the memory traffic low: K < 2^16 mismatches always fit in uint16
    acc_t = np.uint16 if k < 2**16 else np.int64
    mismatches = np.zeros((m, w.shape[0]), dtype=acc_t)
    tmp = np.empty((m, w.shape[0]), dtype=np.uint64)
    cnt = np.empty((m, w.shape[0]), dtype=np.uint8)
    for j in range(kw):  # one word column at a time: (M, MH) temporaries instead of (M, MH, KW)
        np.bitwise_xor(x[:, j, None], w[None, :, j], out=tmp)
        np.bitwise_count(tmp, out=cnt)
        mismatches += cnt
    return k - mismatches.astype(np.int64)


def threshold_bits(acc: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(M, MH) integers, thresholds (MH,) -> packed bits (M, words(MH)): bit = acc >= T."""
    return pack_bits(acc >= thresholds[None, :])


def multi_threshold(acc: np.ndarray, thresholds: np.ndarray, offset: int) -> np.ndarray:
    """(..., MH) integers, thresholds (MH, L) -> n-bit integers offset + #{l : acc >= T[:, l]} (int64), FINN's
    MultiThreshold; one pass per threshold column keeps the temporaries at the accumulators' size."""
    out = np.full(acc.shape, offset, dtype=np.int64)
    for col in np.asarray(thresholds).T:
        out += acc >= col
    return out


def mvau_binary(x: np.ndarray, w_packed: np.ndarray, k: int, thresholds: np.ndarray | None) -> np.ndarray:
    """Binary MVAU over packed (..., words(K)) input: XNOR-popcount, then thresholds (bits) or raw p."""
    lead = x.shape[:-1]
    acc = xnor_popcount(x.reshape(-1, x.shape[-1]), w_packed, k)
    out = acc if thresholds is None else threshold_bits(acc, thresholds)
    return out.reshape(*lead, out.shape[-1])


def int_matmul(x: np.ndarray, w: np.ndarray, bound: int) -> np.ndarray:
    """Exact integer matmul (M, K) x (K, MH) -> int64 via float64 BLAS when |partial sums| < 2^53."""
    if bound < _EXACT_F32:  # float32 holds every integer below 2^24 exactly
        return (x.astype(np.float32) @ w.astype(np.float32)).astype(np.int64)
    if bound < _EXACT_F64:
        return (x.astype(np.float64) @ w.astype(np.float64)).astype(np.int64)
    return x.astype(np.int64) @ w.astype(np.int64)


def mvau_integer(x: np.ndarray, w: np.ndarray, thresholds: np.ndarray | None, bound: int) -> np.ndarray:
    """Integer MVAU: (..., K) ints x (K, MH) ints -> thresholds (packed bits) or raw int64 accumulators."""
    lead = x.shape[:-1]
    acc = int_matmul(x.reshape(-1, x.shape[-1]), w, bound)
    out = acc if thresholds is None else threshold_bits(acc, thresholds)
    return out.reshape(*lead, out.shape[-1])


def pack_weights(w_bits: np.ndarray) -> np.ndarray:
    """Logical binary weight matrix (K, MH) in {0,1} -> packed rows (MH, words(K))."""
    return pack_bits(np.asarray(w_bits, dtype=np.uint8).T)


__all__ = [
    "channel_mask_words", "int_matmul", "maxpool_bits", "maxpool_ints", "multi_threshold", "mvau_binary",
    "mvau_integer", "pack_weights", "repack_flatten", "sliding_window_bits", "sliding_window_ints", "threshold_bits",
    "words_for", "xnor_popcount",
]
