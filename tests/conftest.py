"""Shared fixtures. Nothing is written outside pytest's tmp dirs; HOME points into one for every test."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# hypothesis keeps a cache folder in the working directory unless told otherwise: keep it in tmp.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", tempfile.mkdtemp(prefix="bnn-flow-hypothesis-"))

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser):
    parser.addoption("--update-snapshots", action="store_true",
                     help="rewrite tests/snapshots/ from the current code (a deliberate change of generated files)")


def shared_data_dir() -> Path | None:
    """The real data sets beside the checkout (CI and dev machines), if present."""
    env = os.environ.get("BNN_FLOW_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if cand.is_dir():
            return cand
    return None


ZIG_CACHE = Path(tempfile.gettempdir()) / "bnn-flow-zig-cache"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Keep the user cache (~/.cache/bnn-flow) of every test inside a tmp dir."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    # zig builds musl + compiler-rt once per target (~1 min each): one cache in the tmp dir for every test
    monkeypatch.setenv("ZIG_GLOBAL_CACHE_DIR", str(ZIG_CACHE))
    yield


def write_recipe(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


TINY_RECIPE = """\
name: tiny
net: {arch: bcnn, width: 0.125, weight_bits: 1, act_bits: 1, in_bits: 8}
data: {dataset: mnist-5k}
train: {epochs: 3, batch_size: 64, lr: 0.01, lr_min: 0.0001, schedule: cosine}
"""


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A BCNN (width 0.125) trained briefly on the embedded MNIST-5k: shared by export/CLI tests."""
    from bnn_flow.config import load_recipe
    from bnn_flow.train.loop import TrainOptions, train

    root = tmp_path_factory.mktemp("tiny")
    recipe = load_recipe(write_recipe(root / "tiny.yaml", TINY_RECIPE))
    run = root / "run"
    train(recipe, TrainOptions(out=run, quiet=True))
    return run
