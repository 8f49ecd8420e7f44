"""Progress bars with an ETA for long per-image work (compare, C-simulation, qemu runs), like training's.

tqdm on stderr, shown only on a terminal (disable=None): logs, pipes and tests get no bar.
"""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress(total: int, desc: str, unit: str = "image") -> tqdm:
    """A bar of `total` units; use as a context manager and call .update(n)."""
    return tqdm(total=total, desc=desc, unit=unit, leave=False, disable=None, file=sys.stderr, dynamic_ncols=True)
