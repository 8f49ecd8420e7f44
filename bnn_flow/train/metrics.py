"""Run-folder reports: metrics.csv (one row per epoch), curves.png and summary.json."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from bnn_flow.fileio import write_text_atomic
from bnn_flow.plots import pyplot, save_png

COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "seconds", "train_seconds")


def write_metrics_csv(path: Path, history: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text_atomic(path, buf.getvalue())


def plot_curves(path: Path, history: list[dict[str, Any]], title: str) -> None:
    """Loss and accuracy per epoch, train and test, side by side (as in the seed papers' figures)."""
    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, style in (("train", "-o"), ("test", "-s")):
        ax_loss.plot(epochs, [h[f"{key}_loss"] for h in history], style, label=key, markersize=3)
        ax_acc.plot(epochs, [100 * h[f"{key}_acc"] for h in history], style, label=key, markersize=3)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, path)
