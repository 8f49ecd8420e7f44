"""The bad-input suite's machinery: a table of cases, each one bnn-flow command on something wrong, and the
one rule every case must obey (issue: untrusted inputs):

* the exit code (2: bad input or usage; 1: a check failed; 3: a missing tool),
* exactly one line on stderr, naming the input (a file, folder or option) and saying what to do,
* no Python traceback, no "internal error" (exit 70 is a bug),
* nothing partial or mixed left behind: a good BUILD that a failing command touched still gives the
  answers it gave before.

The cases live in tests/test_bad_input_*.py; `run_case` checks them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from onnx import helper, numpy_helper

from bnn_flow import cli
from bnn_flow.export import export_qonnx_file
from bnn_flow.testing import random_net


@dataclass
class Env:
    """What a case may use: good inputs made once per module, and a fresh folder for the case."""

    root: Path  # module-scoped: the good model, build, images (never changed by a case)
    tmp: Path  # the case's own folder

    @property
    def model(self) -> Path:
        return self.root / "model.onnx"

    @property
    def good_build(self) -> Path:
        return self.root / "build"

    @property
    def x(self) -> Path:
        return self.root / "x.npy"

    def build(self) -> Path:
        """A private copy of the good build, for a case that changes or compiles into it."""
        dst = self.tmp / "build"
        if not dst.exists():
            shutil.copytree(self.good_build, dst, symlinks=True)
        return dst

    def file(self, name: str, data: bytes | str) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path


@dataclass
class Case:
    id: str
    category: str  # options | inputs | recipes | models | checkpoints | builds
    argv: Callable[[Env], list[str]]
    names: Callable[[Env], str] | str | None = None  # text the one error line must contain
    code: int = 2
    keeps_build: bool = False  # the case acts on env.build(): afterwards it must still give its old answers
    extra: dict = field(default_factory=dict)


def make_root(root: Path) -> None:
    """The good artefacts every case starts from: a tiny conv net (8-bit input, pool, FC), its build, images."""
    net = random_net(seed=3, arch="bcnn", in_channels=1, image_size=28, width=0.125)
    export_qonnx_file(net, root / "model.onnx")
    assert cli.main(["compile", str(root / "model.onnx"), "--out", str(root / "build")]) == 0
    x = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    np.save(root / "x.npy", x)
    assert cli.main(["run", str(root / "build"), "--target", "golden", "--input", str(root / "x.npy"),
                     "--output", str(root / "y.npz")]) == 0


def golden_answers(build: Path, env: Env) -> np.ndarray:
    out = env.tmp / "check.npz"
    assert cli.main(["run", str(build), "--target", "golden", "--input", str(env.x), "--output", str(out)]) == 0
    return np.load(out)["scores"]


def run_case(case: Case, env: Env, capsys) -> str:
    """Run one case and check the rule; returns the error line."""
    argv = [str(a) for a in case.argv(env)]
    capsys.readouterr()
    rc = cli.main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == case.code, f"{case.id}: exit {rc} (wanted {case.code}): {err.strip()}"
    assert len(lines) == 1, f"{case.id}: {len(lines)} lines on stderr:\n{err}"
    assert "Traceback" not in err and "internal error" not in err, f"{case.id}: {err}"
    want = case.names(env) if callable(case.names) else case.names
    if want:
        assert want in lines[0], f"{case.id}: the error does not name {want!r}: {lines[0]}"
    if case.keeps_build:
        assert np.array_equal(golden_answers(env.tmp / "build", env), np.load(env.root / "y.npz")["scores"]), \
            f"{case.id}: the build no longer gives its old answers"
    return lines[0]


# --- building blocks for model cases ---------------------------------------------------------------------

def mutate_model(env: Env, name: str, change: Callable) -> Path:
    """A copy of the good model changed by `change(onnx ModelProto)`, saved as tmp/<name>."""
    import onnx

    model = onnx.load(env.model)
    change(model)
    path = env.tmp / name
    onnx.save(model, path)
    return path


def set_initializer(model, index: int, fill: float) -> None:
    init = model.graph.initializer[index]
    a = numpy_helper.to_array(init).astype(np.float32).copy()
    a.flat[0] = fill
    init.CopyFrom(numpy_helper.from_array(a, init.name))


def replace_first_op(model, op_type: str) -> None:
    node = next(n for n in model.graph.node if n.op_type == "MatMul" or n.op_type == "Conv")
    new = helper.make_node(op_type, list(node.input[:1]), list(node.output), name=node.name)
    idx = list(model.graph.node).index(node)
    model.graph.node.remove(node)
    model.graph.node.insert(idx, new)


def edit_build_file(build: Path, name: str, change: Callable[[bytes], bytes], fix_manifest: bool) -> None:
    """Change one file of a build; with fix_manifest, rewrite manifest.json as an attacker would."""
    from bnn_flow.transaction import write_manifest

    path = build / name
    path.write_bytes(change(path.read_bytes()))
    if fix_manifest:
        write_manifest(build)


def json_edit(change: Callable[[dict], object]) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        d = json.loads(data)
        out = change(d)
        return json.dumps(d if out is None else out).encode()
    return edit


def torch_seed() -> None:
    torch.manual_seed(0)
