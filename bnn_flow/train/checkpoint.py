"""Training checkpoints: written atomically, read with torch.load(weights_only=True).

A checkpoint holds everything needed to continue exactly where training stopped: model, optimizer and
scheduler state, the torch RNG state(s) (dropout), the epoch just finished and the metrics so far. The data
order needs no state: it is a pure function of (seed, epoch) (see bnn_flow.data.loader).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from bnn_flow.errors import BadInputError
from bnn_flow.fileio import write_bytes_atomic

FORMAT = "bnn-flow-checkpoint-v1"
REQUIRED = ("format", "epoch", "model", "optimizer", "scheduler", "rng", "history")


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, *, epoch: int, model_state: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
                    scheduler: Any, history: list[dict[str, float]], best_acc: float) -> None:
    payload = {
        "format": FORMAT,
        "epoch": epoch,
        "model": model_state,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
        "history": history,
        "best_acc": best_acc,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    write_bytes_atomic(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load and validate a checkpoint; a missing, truncated or foreign file is a BadInputError."""
    if not path.is_file():
        raise BadInputError(f"checkpoint {path} not found: train first (bnn-flow train RECIPE --out RUN)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for damaged files (zip, pickle, EOF)
        raise BadInputError(
            f"checkpoint {path} is corrupt or not a checkpoint ({type(e).__name__}); "
            "delete it and train again (or resume from another run)"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or any(k not in ckpt for k in REQUIRED):
        raise BadInputError(f"checkpoint {path} is not a {FORMAT} file; train again with bnn-flow train")
    return ckpt
