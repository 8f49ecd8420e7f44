"""Matplotlib for the reports' charts (folding report, pi-bench, training curves): headless and atomic.

matplotlib is imported on first use, not with the modules that draw: it takes about half a second to load
and a command that writes no chart (`bnn-flow run`, `--help`) should not pay for it; the Agg backend is
selected before pyplot loads, so no display is ever needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bnn_flow.fileio import atomic_open


def pyplot() -> Any:
    """matplotlib.pyplot with the non-interactive Agg backend."""
    import matplotlib  # lazily: see the module docstring

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: Path, dpi: int = 100) -> None:
    """Write the figure as PNG atomically and close it."""
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=dpi)
    pyplot().close(fig)
