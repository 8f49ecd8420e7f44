"""A BUILD after a failed, interrupted or concurrent compile is the old complete build or the new complete
build, never a mix; a hand-changed build is refused; the BUILD reader survives arbitrary file contents."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bnn_flow import cli
from bnn_flow.backends.cpu.pack import pack_plan
from bnn_flow.build import Build
from bnn_flow.errors import BadInputError, BnnFlowError
from bnn_flow.export import export_qonnx_file
from bnn_flow.golden import GoldenModel
from bnn_flow.testing import random_net
from bnn_flow.transaction import write_manifest

X = np.random.default_rng(0).random((6, 1, 28, 28), dtype=np.float32)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two different tiny models, each compiled alone once: their golden answers are the reference."""
    root = tmp_path_factory.mktemp("integrity")
    out = {}
    for name, seed in (("a", 1), ("b", 2)):
        export_qonnx_file(random_net(seed=seed, arch="tfc", in_channels=1, image_size=28, width=0.25, in_bits=1),
                          root / f"{name}.onnx")
        assert cli.main(["compile", str(root / f"{name}.onnx"), "--out", str(root / f"build_{name}")]) == 0
        out[name] = (root / f"{name}.onnx", GoldenModel(root / f"build_{name}").run_integer(X))
    return root, out


def _which(build: Path, models) -> str:
    """Which model a complete build holds (it must verify, and answer exactly as that model compiled alone)."""
    _, refs = models
    b = Build(build)
    b.verify_all()
    source = hashlib.sha256((build / "00_export.onnx").read_bytes()).digest()
    got = GoldenModel(b).run_integer(X)
    for name, (onnx_path, want) in refs.items():
        if hashlib.sha256(onnx_path.read_bytes()).digest() == source:
            assert np.array_equal(got, want), f"the build holds {name}'s source but not its answers"
            return name
    raise AssertionError("the build's source model is neither of the two")


def test_failed_compile_leaves_the_old_build(models, tmp_path, monkeypatch):
    root, refs = models
    build = tmp_path / "build"
    shutil.copytree(root / "build_a", build)
    import bnn_flow.compiler as compiler

    def broken(model, cfg):
        raise KeyboardInterrupt  # Ctrl-C in the middle of the lower step

    monkeypatch.setattr(compiler, "STEPS", [(n, broken if n == "lower" else f) for n, f in compiler.STEPS])
    assert cli.main(["compile", str(refs["b"][0]), "--out", str(build)]) == 130  # "interrupted"
    assert _which(build, models) == "a"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".build.staging")]


def test_killed_compile_leaves_the_old_build_and_its_staging_is_cleaned(models, tmp_path):
    root, refs = models
    build = tmp_path / "build"
    shutil.copytree(root / "build_a", build)
    proc = subprocess.Popen([sys.executable, "-m", "bnn_flow", "compile", str(refs["b"][0]), "--out", str(build),
                             "--verify", "--verify-images", "50"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob(".build.staging-*/01_tidy.onnx")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(tmp_path.glob(".build.staging-*")), "the compile was killed before it staged anything"
    assert _which(build, models) == "a"
    assert cli.main(["compile", str(refs["b"][0]), "--out", str(build)]) == 0
    assert _which(build, models) == "b"
    assert not list(tmp_path.glob(".build.staging-*"))  # the dead compile's folder was removed


def _compile(model: str, out: str) -> None:
    os._exit(cli.main(["compile", model, "--out", out]))


def test_concurrent_compiles_never_mix(models, tmp_path):
    """Two processes compile different models into one --out at the same moment, many times."""
    root, refs = models
    build = tmp_path / "build"
    ctx = multiprocessing.get_context("fork")  # bnn_flow is imported already: forked workers start at once
    seen = set()
    for trial in range(8):
        order = ("a", "b") if trial % 2 == 0 else ("b", "a")
        procs = [ctx.Process(target=_compile, args=(str(refs[n][0]), str(build))) for n in order]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
            assert p.exitcode == 0
        seen.add(_which(build, models))
        assert not list(tmp_path.glob(".build.staging-*"))
    assert seen <= {"a", "b"}


def test_hand_edited_build_is_refused_until_recompiled(models, tmp_path, capsys):
    root, refs = models
    build = tmp_path / "build"
    shutil.copytree(root / "build_a", build)
    head = json.loads((build / "head.json").read_text())
    head["scale"][0] *= 2
    (build / "head.json").write_text(json.dumps(head))
    with pytest.raises(BadInputError, match="changed after compile"):
        GoldenModel(build)
    assert cli.main(["compile", str(refs["a"][0]), "--out", str(build)]) == 0
    assert _which(build, models) == "a"


def test_compare_result_is_read_after_compile(models, tmp_path):
    """compare.json is written after compile (never in the manifest): the build still verifies and the table
    reads back (the demo's summary does so); a damaged one is one clear error, not a traceback."""
    root, _ = models
    build = tmp_path / "build"
    shutil.copytree(root / "build_a", build)
    Build(build).write_compare({"images": 6, "rows": []})
    Build(build).verify_all()
    assert Build(build).compare_result() == {"images": 6, "rows": []}
    (build / "compare.json").write_text("[1, 2")
    with pytest.raises(BadInputError, match="not valid JSON"):
        Build(build).compare_result()
    (build / "compare.json").write_text("[1, 2]")
    with pytest.raises(BadInputError, match="JSON object"):
        Build(build).compare_result()


@pytest.fixture(scope="module")
def fuzz_base(models, tmp_path_factory):
    root, _ = models
    base = tmp_path_factory.mktemp("fuzz") / "build"
    shutil.copytree(root / "build_a", base)
    return base


NAMES = ["00_export.onnx", "05_dataflow.onnx", "input_spec.json", "head.json", "source.json", "manifest.json",
         "compile_log.json"]


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), edits=st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 255)),
                                                      min_size=1, max_size=8),
       cut=st.one_of(st.none(), st.integers(0, 10**9)), fix_manifest=st.booleans())
def test_build_reader_survives_any_file_contents(fuzz_base, tmp_path, name, edits, cut, fix_manifest):
    """Fuzz target of the BUILD reader (manifest + JSON + ONNX): random byte edits and truncations of one file,
    with or without the manifest fixed up as an attacker would. Every reader either works or raises a
    BnnFlowError (one line, exit 2 at the command line); nothing else escapes."""
    build = tmp_path / f"b{len(list(tmp_path.iterdir()))}"
    shutil.copytree(fuzz_base, build)
    path = build / name
    data = bytearray(path.read_bytes())
    for pos, value in edits:
        if data:
            data[pos % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    path.write_bytes(bytes(data))
    if fix_manifest and name != "manifest.json":
        write_manifest(build)
    try:
        b = Build(build)
        plan = b.plan()
        GoldenModel(b, plan=plan).run_integer(X[:2])
        pack_plan(plan)
        b.source_info(), b.head(), b.input_spec()
    except BnnFlowError:
        pass
    else:
        assert fix_manifest or bytes(data) == (fuzz_base / name).read_bytes() or name == "manifest.json"
