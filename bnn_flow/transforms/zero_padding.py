"""Zero padding of a bipolar map, made exact on bits (the approach of Larq Compute Engine's zero padding).

Zero is not a bipolar value, so the window pads with +1 (bit 1) instead, and the layer subtracts what the
padded taps added: for output position (oy, ox) and channel j,

    dot_zero = dot_one - corr[oy, ox, j],   corr = sum over the taps (ky, kx) outside the map of W_j(ky, kx),

W_j(ky, kx) being the sum of the bipolar weights of that tap over the input channels. A position's padded taps
depend only on how far its window sticks out at the top/bottom (a row class, per oy) and at the left/right (a
column class, per ox); so the thresholds of such a layer are a table per (row class, column class) instead of
one per channel, and every back-end selects the row of the table by the output pixel's classes. The interior
(nothing padded) is class 0 in each direction whenever the map has an interior.
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

PAD_CORRECTION = "pad_correction"  # name prefix of the correction constants between a matmul and its thresholds


def _clips(out: int, size: int, k: int, s: int, pad_lo: int) -> list[tuple[int, int]]:
    """Per output index: (kernel taps before the map's start, kernel taps past its end)."""
    return [(max(0, pad_lo - o * s), max(0, o * s - pad_lo + k - size)) for o in range(out)]


def _classes(clips: list[tuple[int, int]]) -> tuple[tuple[int, ...], list[tuple[int, int]]]:
    """(class index per output index, the clip pair of each class): (0, 0) first, then in order of appearance."""
    keys = sorted(set(clips), key=lambda c: (c != (0, 0), clips.index(c)))
    return tuple(keys.index(c) for c in clips), keys


def pad_classes(in_hw: tuple[int, int], out_hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                pad: tuple[int, int, int, int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(row class per output row, column class per output column) of a padded window; pad = (t, l, b, r)."""
    rows, _ = _classes(_clips(out_hw[0], in_hw[0], kernel[0], stride[0], pad[0]))
    cols, _ = _classes(_clips(out_hw[1], in_hw[1], kernel[1], stride[1], pad[1]))
    return rows, cols


def outside_taps(in_hw: tuple[int, int], out_hw: tuple[int, int], kernel: tuple[int, int],
                 stride: tuple[int, int], pad: tuple[int, int, int, int]) -> np.ndarray:
    """(OH, OW, kh, kw) bool: the taps of each output position's window that fall outside the map."""
    (h, w), (oh, ow), (kh, kw), (sh, sw) = in_hw, out_hw, kernel, stride
    iy = np.arange(oh)[:, None] * sh - pad[0] + np.arange(kh)[None, :]  # (OH, kh)
    ix = np.arange(ow)[:, None] * sw - pad[1] + np.arange(kw)[None, :]  # (OW, kw)
    row_out = (iy < 0) | (iy >= h)
    col_out = (ix < 0) | (ix >= w)
    return row_out[:, None, :, None] | col_out[None, :, None, :]


def dot_correction(w_bipolar: np.ndarray, channels: int, in_hw: tuple[int, int], out_hw: tuple[int, int],
                   kernel: tuple[int, int], stride: tuple[int, int], pad: tuple[int, int, int, int]) -> np.ndarray:
    """(OH, OW, MH) int64 corr: dot_zero = dot_one - corr. w_bipolar: (kh*kw*C, MH) +-1 in (ky, kx, c) order."""
    kh, kw = kernel
    per_tap = np.asarray(w_bipolar, dtype=np.int64).reshape(kh, kw, channels, -1).sum(axis=2)  # (kh, kw, MH)
    mask = outside_taps(in_hw, out_hw, kernel, stride, pad).astype(np.int64)
    return np.einsum("abyx,yxj->abj", mask, per_tap)


def class_table(per_position: np.ndarray, rows: tuple[int, ...], cols: tuple[int, ...]) -> np.ndarray:
    """(row classes, column classes, MH) from an (OH, OW, MH) table that depends only on the classes."""
    table = np.empty((max(rows) + 1, max(cols) + 1, per_position.shape[-1]), dtype=per_position.dtype)
    for oy, r in enumerate(rows):
        for ox, c in enumerate(cols):
            table[r, c] = per_position[oy, ox]
    if not np.array_equal(table[np.asarray(rows)][:, np.asarray(cols)], per_position):
        raise AssertionError("per-position values are not a function of the pad classes")  # a geometry bug
    return table


Geometry = tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int, int, int]]


def window_geometry(model: ModelWrapper, window: NodeProto) -> Geometry:
    """(in (H, W), out (OH, OW), kernel, stride, pad) of a SlidingWindow node (NHWC tensors)."""
    inst = getCustomOp(window)
    _, h, w, _ = model.get_tensor_shape(window.input[0])
    _, oh, ow, _ = model.get_tensor_shape(window.output[0])
    return ((h, w), (oh, ow), tuple(inst.get_nodeattr("kernel")), tuple(inst.get_nodeattr("stride")),
            tuple(inst.get_nodeattr("pad")))
