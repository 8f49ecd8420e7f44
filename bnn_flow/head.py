"""The host-side classifier head (DESIGN.md §1): per-class affine on the integer dot products, then argmax.

head.json (written by the compiler) holds `scale`, `bias` (one per class) and `acc_to_dot` = (a, b), which
maps the graph's integer output (popcounts) to bipolar dot products: dot = a * acc + b.
"""

from __future__ import annotations

import numpy as np


def apply_head(head: dict, dot: np.ndarray) -> np.ndarray:
    """Scores = scale * dot + bias, computed in float64 and returned as float32."""
    return (np.asarray(head["scale"]) * dot + np.asarray(head["bias"])).astype(np.float32)


def labels_of(scores: np.ndarray) -> np.ndarray:
    """argmax with ties to the lowest index (numpy's argmax returns the first maximum)."""
    return np.argmax(scores, axis=1).astype(np.int64)
