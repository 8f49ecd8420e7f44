"""Process replay: the generated artefacts of tiny fixed-seed nets are compared with golden files.

For each net of NETS: the final dataflow graph (a canonical JSON of nodes, attributes, datatypes and
initializer hashes: independent of the onnx library's serialization), input_spec.json, head.json, the
folding (folding.json and report.json), the HLS project sources and the .bnn bytes. A refactor must leave
them byte-identical; a deliberate change (a rename in generated code) updates them in the same commit with
`pytest tests/test_snapshots.py --update-snapshots`, so the diff of tests/snapshots/ shows exactly what
changed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from onnx import helper, numpy_helper
from test_pipeline_random import Block, Case, build

from bnn_flow import cli
from bnn_flow.build import Build
from bnn_flow.export import export_qonnx_file
from bnn_flow.nets import build_net
from bnn_flow.qonnx_exec import load_qonnx
from bnn_flow.testing import randomize_bn

SNAPSHOTS = Path(__file__).parent / "snapshots"

# name -> (how the net is made, compile options after MODEL --out BUILD)
NETS = {
    # 8-bit unit input, stride-2 first conv, max-pool, 66 channels, hidden FC of 65, folded to fit a PYNQ-Z2
    "int8": (Case("unit", 8, 3, 11, (Block(5, 1, 2, True), Block(66, 1, 1, False)), (65,), 7, seed=11),
             ["--board", "pynq-z2", "--fit"]),
    # 1-bit bipolar input (XNOR first layer), valid conv, pool; a frame-rate target gives width converters
    "bits": (Case("bipolar", 1, 2, 9, (Block(70, 0, 1, True), Block(3, 1, 1, False)), (), 4, seed=12),
             ["--target-fps", "50000", "--clock-mhz", "100"]),
    # FINN's TFC at a quarter width (2x-1 input, 1-bit first layer), unfolded
    "tfc": ("tfc", []),
    # the same with ENQ 2-bit nonuniform activations: index streams, level tables decoded by the next MVAU
    "tfc-enq": ({"arch": "tfc", "act_bits": 2, "act_quant": "enq"}, []),
}


def _net(spec):
    if isinstance(spec, Case):
        return build(spec)
    torch.manual_seed(0)  # the latent weights
    kwargs = spec if isinstance(spec, dict) else {"arch": spec}
    return randomize_bn(build_net(**kwargs, num_classes=10, in_channels=1, image_size=28, width=0.25, in_bits=1))


def _attr(a) -> object:
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, list):
        return [x.decode() if isinstance(x, bytes) else x for x in v]
    return v


def canonical_graph(path: Path) -> dict:
    """The dataflow graph as plain data: what it computes, not how protobuf lays out its bytes."""
    model = load_qonnx(path)
    g = model.graph
    tensors = sorted({t for n in g.node for t in (*n.input, *n.output)} | {g.input[0].name, g.output[0].name})
    return {
        "input": [g.input[0].name, model.get_tensor_shape(g.input[0].name)],
        "output": [g.output[0].name, model.get_tensor_shape(g.output[0].name)],
        "nodes": [{"name": n.name, "op": n.op_type, "domain": n.domain, "inputs": list(n.input),
                   "outputs": list(n.output), "attrs": {a.name: _attr(a) for a in n.attribute}} for n in g.node],
        "datatypes": {t: model.get_tensor_datatype(t).name for t in tensors},
        "initializers": {i.name: {"shape": list(i.dims), "sha256": hashlib.sha256(
            np.ascontiguousarray(numpy_helper.to_array(i)).tobytes()).hexdigest()[:16]} for i in g.initializer},
        "metadata": {p.key: p.value for p in model.model.metadata_props},
    }


def _text(obj) -> str:
    return json.dumps(obj, indent=1, sort_keys=True) + "\n"


def artefacts(build_dir: Path) -> dict[str, bytes]:
    """Every snapshotted file of a compiled, folded build, by its name in the snapshot folder."""
    from bnn_flow.backends.cpu.pack import pack_plan
    from bnn_flow.backends.hls.csim import generate_project

    out: dict[str, bytes] = {}
    final = sorted(build_dir.glob("*_dataflow.onnx"))[-1]
    out["dataflow.json"] = _text(canonical_graph(final)).encode()
    for name in ("input_spec.json", "head.json", "folding.json", "report.json"):
        if (build_dir / name).is_file():
            out[name] = _text(json.loads((build_dir / name).read_text())).encode()
    hls = generate_project(build_dir)
    for f in sorted(hls.iterdir()):
        if f.is_file():
            text = f.read_text()
            if f.name == "project.json":  # the templates' absolute path depends on where the package lives
                proj = json.loads(text)
                proj["include_dirs"] = [d if not Path(d).is_absolute() else "<templates>" for d in proj["include_dirs"]]
                text = _text(proj)
            out[f"hls/{f.name}"] = text.encode()
    out["model.bnn"] = pack_plan(Build(build_dir).plan(), {"source_sha256": "snapshot"})
    return out


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = {}
    for name, (spec, options) in NETS.items():
        d = tmp_path_factory.mktemp(f"snap-{name}")
        export_qonnx_file(_net(spec), d / "m.onnx")
        assert cli.main(["compile", str(d / "m.onnx"), "--out", str(d / "build"), *options]) == 0
        out[name] = d / "build"
    return out


@pytest.mark.parametrize("name", list(NETS))
def test_generated_artefacts_unchanged(compiled, name, request):
    got = artefacts(compiled[name])
    folder = SNAPSHOTS / name
    if request.config.getoption("--update-snapshots"):
        if folder.is_dir():
            for old in sorted(folder.rglob("*"), reverse=True):
                old.unlink() if old.is_file() else old.rmdir()
        for rel, data in got.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
    want = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert sorted(got) == sorted(want), "the set of generated files changed (--update-snapshots if deliberate)"
    changed = [rel for rel in got if got[rel] != want[rel]]
    assert not changed, f"generated artefacts changed: {changed} (rerun with --update-snapshots if deliberate)"
