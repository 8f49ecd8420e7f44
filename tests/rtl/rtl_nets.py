"""Tiny compiled nets and helpers for the tests of the `rtl` target (generator, Verilator simulation, cycles,
FIFO sizing). Nets are small Brevitas models (tests/test_pipeline_random.py `Case`), compiled once per module.

`shared_cache` points the user cache (XDG_CACHE_HOME) of every test of a module at one tmp folder, so that
Verilator's run-time objects (simbuild.py) are compiled once per module, not once per test; conftest.py's
autouse fixture would give every test a fresh one."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: test_pipeline_random

from test_pipeline_random import Block, Case, build, images  # noqa: E402

from bnn_flow import cli  # noqa: E402
from bnn_flow.export import export_qonnx_file  # noqa: E402

CASES = {
    # 8-bit unsigned input, stride-2 first conv, max-pool, 5 and 66 channels, one hidden FC of 65
    "int8": Case("unit", 8, 3, 11, (Block(5, 1, 2, True), Block(66, 1, 1, False)), (65,), 7, seed=11),
    # 1-bit bipolar input (an XNOR first layer), valid conv with 70 channels, pool, 3 channels, no hidden FC
    "bits": Case("bipolar", 1, 2, 9, (Block(70, 0, 1, True), Block(3, 1, 1, False)), (), 4, seed=12),
}
SLOW_CASES = {
    # 2-bit signed input, 1 input channel, odd size, 3 convs, pools, two hidden FCs
    "int2": Case("bipolar", 2, 1, 13, (Block(9, 1, 1, True), Block(17, 1, 1, True), Block(6, 1, 1, False)),
                 (33, 10), 5, seed=21),
    # 8-bit, a single FC after one conv without pool (a window into a conv into FC layers)
    "fc": Case("unit", 8, 2, 7, (Block(12, 0, 2, False),), (129,), 10, seed=22),
}


def compile_case(case: Case, d: Path) -> Path:
    export_qonnx_file(build(case), d / "m.onnx")
    assert cli.main(["compile", str(d / "m.onnx"), "--out", str(d / "build")]) == 0
    return d / "build"


def case_images(name: str, n: int, seed: int = 5) -> np.ndarray:
    case = {**CASES, **SLOW_CASES}[name]
    return images(n, case, seed=seed)


def legal_folding(plan, rng: np.random.Generator) -> dict:
    """Random legal PE/SIMD per MVAU (a conv's SIMD must divide its window's channels)."""
    fold, prev = {}, None
    for layer in plan.layers:
        if layer.kind == "mvau":
            c = prev.in_shape[-1] if prev is not None and prev.kind == "window" else layer.mw
            simd = int(rng.choice([d for d in range(1, c + 1) if c % d == 0]))
            pe = int(rng.choice([d for d in range(1, layer.mh + 1) if layer.mh % d == 0]))
            fold[layer.name] = {"PE": pe, "SIMD": simd}
        prev = layer
    return fold


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def shared_cache(_isolated_home, cache_root, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_root))
    yield
