"""Synthetic layer plans for the CPU runtime tests, and an independent numpy model of what they compute.

`random_plan` builds a Plan directly (no torch, no compile: milliseconds) from a compact architecture
description, with random weights and thresholds spread over the reachable accumulator range, so the
C runtime can be checked over many shapes (channels not multiples of 64, odd sizes, strides, padding
with 0 or +1 bits, integer and bit inputs). `expected` evaluates such a plan on unpacked integers
with plain numpy, written from DESIGN.md §1 (not from the C code or the golden model's packed ops).
"""

from __future__ import annotations

import numpy as np

from bnn_flow.plan import BIT, Flatten, IntType, MaxPool, Mvau, Plan, Window
from bnn_flow.transforms.input_spec import InputSpec

# Architecture items: ("conv", c_out, k, stride, pad, pad_value) | ("pool", k, stride) | ("flatten",)
#                     | ("fc", c_out). The last matrix layer gets no thresholds (integer scores).


def _thresholds(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Thresholds in [lo, hi + 1] per channel, concentrated mid-range so outputs are mixed 0/1."""
    mid, span = (lo + hi) / 2, np.maximum((hi - lo) / 6, 1)
    t = np.rint(rng.normal(mid, span)).astype(np.int64)
    return np.clip(t, lo, hi + 1)


def _mvau(rng, name, shape, dtype, c_out, last) -> Mvau:
    spatial, mw = tuple(shape[:-1]), shape[-1]
    if dtype == BIT:
        w = rng.integers(0, 2, size=(c_out, mw))
        lo, hi = np.zeros(c_out, np.int64), np.full(c_out, mw, np.int64)
        w_dtype = BIT
    else:
        w = rng.integers(-3, 4, size=(c_out, mw))
        pos, neg = np.clip(w, 0, None), np.clip(w, None, 0)
        hi = pos.sum(1) * dtype.max + neg.sum(1) * dtype.min
        lo = pos.sum(1) * dtype.min + neg.sum(1) * dtype.max
        w_dtype = IntType(3, True)
    t = None if last else _thresholds(rng, lo, hi)
    acc = IntType.covering(int(lo.min()), int(hi.max()) + 1)
    pixels = int(np.prod(spatial)) if spatial else 1
    return Mvau(name, dtype == BIT, mw, c_out, pixels, spatial, w.astype(np.int64), t, dtype, w_dtype, acc)


def random_plan(rng: np.random.Generator, input_shape: tuple[int, ...], in_dtype: IntType, arch: list[tuple]) -> Plan:
    """A valid Plan for `arch` on per-image input `input_shape` (H, W, C) or (K,) of type `in_dtype`."""
    plan = Plan(tuple(input_shape), in_dtype, InputSpec(), {})
    shape, dtype = tuple(input_shape), in_dtype
    n_mat = sum(1 for a in arch if a[0] in ("conv", "fc"))
    seen = 0
    for i, item in enumerate(arch):
        if item[0] == "conv":
            _, c_out, k, s, p, pv = item
            h, w, c = shape
            oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            plan.layers.append(Window(f"win{i}", shape, (oh, ow, k * k * c), (k, k), (s, s), (p, p, p, p),
                                      pv if dtype == BIT else 0, dtype))
            shape = (oh, ow, k * k * c)
        if item[0] in ("conv", "fc"):
            seen += 1
            m = _mvau(rng, f"mvau{i}", shape, dtype, item[1], seen == n_mat)
            plan.layers.append(m)
            shape, dtype = (*m.out_spatial, m.mh), m.out_dtype
        elif item[0] == "pool":
            _, k, s = item
            h, w, c = shape
            out = ((h - k) // s + 1, (w - k) // s + 1, c)
            plan.layers.append(MaxPool(f"pool{i}", shape, out, (k, k), (s, s), dtype))
            shape = out
        elif item[0] == "flatten":
            plan.layers.append(Flatten(f"flat{i}", shape, (int(np.prod(shape)),), dtype))
            shape = (int(np.prod(shape)),)
    plan.validate()
    return plan


def random_input(rng: np.random.Generator, plan: Plan, n: int) -> np.ndarray:
    """n images of the plan's input integers (bits as 0/1), NHWC int64."""
    d = plan.input_dtype
    return rng.integers(d.min, d.max + 1, size=(n, *plan.input_shape)).astype(np.int64)


def _window(x: np.ndarray, lay: Window) -> np.ndarray:
    t, le, b, r = lay.pad
    xp = np.pad(x, ((0, 0), (t, b), (le, r), (0, 0)), constant_values=lay.pad_value)
    (kh, kw), (sh, sw) = lay.kernel, lay.stride
    oh, ow = lay.out_shape[:2]
    out = np.empty((x.shape[0], oh, ow, kh * kw * x.shape[3]), dtype=np.int64)
    for oy in range(oh):
        for ox in range(ow):
            out[:, oy, ox] = xp[:, oy * sh:oy * sh + kh, ox * sw:ox * sw + kw, :].reshape(x.shape[0], -1)
    return out


def expected(plan: Plan, q: np.ndarray) -> np.ndarray:
    """The plan's last-layer accumulators (N, classes) for input integers q (N, *input_shape)."""
    x = q.astype(np.int64).reshape(q.shape[0], *plan.input_shape)
    for lay in plan.layers:
        if isinstance(lay, Window):
            x = _window(x, lay)
        elif isinstance(lay, MaxPool):
            (kh, kw), (sh, sw) = lay.kernel, lay.stride
            oh, ow = lay.out_shape[:2]
            x = np.stack([np.stack([x[:, oy * sh:oy * sh + kh, ox * sw:ox * sw + kw].max(axis=(1, 2))
                                    for ox in range(ow)], 1) for oy in range(oh)], 1)
        elif isinstance(lay, Flatten):
            x = x.reshape(x.shape[0], -1)
        else:
            # binary: p = number of agreeing bits (XNOR popcount); integer: the dot product
            acc = (x[..., None, :] == lay.weights).sum(-1) if lay.binary else x @ lay.weights.T
            x = acc if lay.thresholds is None else (acc >= lay.thresholds).astype(np.int64)
    return x.reshape(x.shape[0], -1)
