"""Bad-input suite, part 3: released-model (zoo) files. A zoo file may come from anywhere: every damaged or
crafted one gives one line naming the file and exit 2, never a traceback, never code execution (no pickle)."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from bad_input import Case, Env, run_case

from bnn_flow.config import recipe_from_dict
from bnn_flow.testing import random_net
from bnn_flow.zoo import format as zf
from bnn_flow.zoo.model import state_tensors

CASES: list[Case] = []
HEAD = len(zf.MAGIC) + 4


def _export(path: Path) -> list[str]:
    return ["export", str(path), "--out", str(path.parent / "out.onnx"), "--images", "4"]


def _bytes(name: str, make: Callable[[bytes], bytes]) -> Callable[[Env], list[str]]:
    def argv(e: Env) -> list[str]:
        return _export(e.file(f"{name}.bnnz", make((e.root / "good.bnnz").read_bytes())))
    return argv


def _split(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack_from("<I", data, len(zf.MAGIC))
    return json.loads(data[HEAD:HEAD + n]), data[HEAD + n:]


def _header(change: Callable[[dict], object]) -> Callable[[bytes], bytes]:
    """Edit the header JSON as an attacker would (the payload and its hash stay as they were)."""
    def make(data: bytes) -> bytes:
        h, payload = _split(data)
        out = change(h)
        text = json.dumps(h if out is None else out).encode()
        return zf.MAGIC + struct.pack("<I", len(text)) + text + payload
    return make


def _tensors(change: Callable[[zf.ZooFile], None]) -> Callable[[bytes], bytes]:
    """Change the decoded file and write it again consistently (a valid file with wrong contents)."""
    def make(data: bytes) -> bytes:
        z = zf.decode(Path("good"), data)
        change(z)
        return zf.encode(z)
    return make


def _first(z: zf.ZooFile, kind: type) -> str:
    return next(k for k, a in z.tensors.items() if a.dtype == np.dtype(kind))


def _set(z: zf.ZooFile, key: str, value) -> None:
    z.tensors[key] = value


def _nan(z: zf.ZooFile) -> None:
    k = _first(z, np.float32)
    a = z.tensors[k].copy()
    a.flat[0] = np.nan
    z.tensors[k] = a


def _drop(z: zf.ZooFile) -> None:
    del z.tensors[_first(z, bool)]


def _reshape(z: zf.ZooFile) -> None:
    k = _first(z, bool)
    z.tensors[k] = z.tensors[k].reshape(-1)


def _recipe(path: str, value) -> Callable[[dict], None]:
    def change(h: dict) -> None:
        *parents, last = path.split(".")
        d = h["recipe"]
        for p in parents:
            d = d[p]
        d[last] = value
    return change


BYTES = {
    "empty": lambda d: b"", "junk": lambda d: b"junk" * 50, "magic-only": lambda d: zf.MAGIC,
    "pickle": lambda d: b"\x80\x04\x95\x10\x00cos\nsystem\n.", "zip": lambda d: b"PK\x03\x04" + d,
    "huge-header-length": lambda d: zf.MAGIC + struct.pack("<I", 2**31) + d[HEAD:],
    "header-not-json": lambda d: zf.MAGIC + struct.pack("<I", 5) + b"{nope" + d[HEAD:],
    "header-not-utf8": lambda d: zf.MAGIC + struct.pack("<I", 2) + b"\xff\xfe" + d[HEAD:],
    "flipped-payload-byte": lambda d: d[:-3] + bytes([d[-3] ^ 1]) + d[-2:],
    "extra-bytes": lambda d: d + b"\x00" * 7,
    "other-version": lambda d: zf.MAGIC[:-1] + b"\x02" + d[len(zf.MAGIC):],
}
for frac in (0.01, 0.2, 0.5, 0.9, 0.999):
    BYTES[f"truncated-{frac}"] = lambda d, f=frac: d[: int(len(d) * f)]
HEADERS = {
    "not-an-object": lambda h: [1, 2], "nan": lambda h: json.loads('{"a": NaN}'),
    "no-recipe": lambda h: h.pop("recipe"), "extra-key": lambda h: h.update(code="import os"),
    "format": lambda h: h.update(format="bnn-flow-zoo-v9"), "sha-short": lambda h: h.update(payload_sha256="ab"),
    "tensors-empty": lambda h: h.update(tensors=[]), "tensors-dict": lambda h: h.update(tensors={}),
    "tensor-kind": lambda h: h["tensors"][0].update(kind="pickle"),
    "tensor-shape-negative": lambda h: h["tensors"][0].update(shape=[-1, 3]),
    "tensor-shape-huge": lambda h: h["tensors"][0].update(shape=[2**20, 2**20]),
    "tensor-shape-text": lambda h: h["tensors"][0].update(shape="16,1,3,3"),
    "tensor-nbytes-wrong": lambda h: h["tensors"][0].update(nbytes=h["tensors"][0]["nbytes"] + 1),
    "tensor-nbytes-huge": lambda h: h["tensors"][0].update(nbytes=10**12),
    "tensor-name-empty": lambda h: h["tensors"][0].update(name=""),
    "tensor-duplicate": lambda h: h["tensors"].insert(1, h["tensors"][0]),
    "tensor-scale-on-sign": lambda h: h["tensors"][0].update(scale=1.0),
    "tensor-extra-field": lambda h: h["tensors"][0].update(exec="x"),
    "model-not-object": lambda h: h.update(model=3),
    "model-shape": lambda h: h["model"].update(input_shape=[1, 0, 28]),
    "model-classes": lambda h: h["model"].update(num_classes=1),
    "model-arch-differs": lambda h: h["model"].update(arch="cnv"),
    "model-dataset-unknown": lambda h: h["model"].update(dataset="imagenet"),
    "model-image-other": lambda h: h["model"].update(input_shape=[1, 32, 32]),
    "recipe-not-object": lambda h: h.update(recipe="bcnn"),
    "recipe-unknown-key": _recipe("net.depth", 3), "recipe-arch": _recipe("net.arch", "resnet"),
    "recipe-width": _recipe("net.width", 0.5), "recipe-bits": _recipe("net.weight_bits", 2),
    "recipe-width-nan": _recipe("net.width", float("inf")),
}
TENSORS = {
    "nan": _nan, "missing": _drop, "reshaped": _reshape,
    "extra": lambda z: _set(z, "features.99.weight", np.zeros(3, np.float32)),
    "sign-as-float": lambda z: _set(z, (k := _first(z, bool)), z.tensors[k].astype(np.float32)),
    "float-as-sign": lambda z: _set(z, (k := _first(z, np.float32)), z.tensors[k] > 0),
    "counter-as-float": lambda z: _set(z, (k := _first(z, np.int64)), z.tensors[k].astype(np.float32)),
}
for name, make in BYTES.items():
    CASES.append(Case(f"zoo-bytes-{name}", "models", _bytes(name, make), f"{name}.bnnz"))
for name, change in HEADERS.items():
    CASES.append(Case(f"zoo-header-{name}", "models", _bytes(name, _header(change)), f"{name}.bnnz"))
for name, change in TENSORS.items():
    CASES.append(Case(f"zoo-tensor-{name}", "models", _bytes(name, _tensors(change)), f"{name}.bnnz"))


def _oversized(e: Env) -> list[str]:
    path = e.tmp / "big.bnnz"
    with open(path, "wb") as f:
        f.write(zf.MAGIC)
        f.truncate(zf.MAX_FILE + 1)  # sparse: no disk used
    return _export(path)


CASES += [
    Case("zoo-oversized", "models", _oversized, "big.bnnz"),
    Case("zoo-folder-as-file", "models", lambda e: ["zoo-pack", str(e.tmp / "nope"), "--out", str(e.tmp / "z.bnnz")],
         "nope"),
    Case("zoo-pack-out-is-folder", "models", lambda e: ["zoo-pack", str(e.root / "run"), "--out", str(e.tmp),
                                                        "--images", "4"], "folder"),
    Case("zoo-pack-no-out", "options", lambda e: ["zoo-pack", str(e.root / "run")], "--out"),
]


@pytest.fixture(scope="module")
def root(tmp_path_factory, tiny_run):
    import shutil

    r = tmp_path_factory.mktemp("bad-input-zoo")
    net = random_net(seed=3, arch="bcnn", in_channels=1, image_size=28, width=0.125)
    tensors, scales = state_tensors(net)
    recipe = recipe_from_dict({"name": "good", "net": {"arch": "bcnn", "width": 0.125},
                               "data": {"dataset": "mnist-5k"}})
    header = {"recipe": recipe.to_dict(), "accuracy": {}, "source": {},
              "model": {"arch": "bcnn", "num_classes": 10, "input_shape": [1, 28, 28], "dataset": "mnist-5k"}}
    (r / "good.bnnz").write_bytes(zf.encode(zf.ZooFile(header, tensors, scales)))
    shutil.copytree(tiny_run, r / "run")
    return r


def test_the_good_file_exports(root, tmp_path):
    from bnn_flow import cli

    assert cli.main(_export(Path(root / "good.bnnz"))) == 0


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_zoo_file(case: Case, root, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_case(case, Env(root, tmp_path), capsys)
