"""Regression tests of the untrusted-input findings that are not a plain "bad input -> one line, exit 2" case
(those are in tests/test_bad_input_*.py): code injection through names, inputs users expect to work (dynamic
batch, flat features, .npz), and the smaller robustness fixes."""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from bnn_flow import cli
from bnn_flow.backends.hls import ap_types, csim
from bnn_flow.backends.hls.csim import exit_status
from bnn_flow.build import Build
from bnn_flow.errors import MissingToolError
from bnn_flow.export import export_qonnx_file
from bnn_flow.fileio import write_text_atomic
from bnn_flow.nets.common import BnnNet, fc_stack, input_quant
from bnn_flow.nets.quant import QuantSpec
from bnn_flow.testing import random_net, randomize_bn
from bnn_flow.transaction import write_manifest

PAYLOAD = 'x\n#include "/etc/passwd"\nint evil() { return system("touch pwned"); }\n//'


def _run(build, target: str, x: np.ndarray, tmp: Path) -> np.lib.npyio.NpzFile:
    np.save(tmp / "x.npy", x)
    assert cli.main(["run", str(build), "--target", target, "--input", str(tmp / "x.npy"),
                     "--output", str(tmp / f"{target}.npz")]) == 0
    return np.load(tmp / f"{target}.npz")


@pytest.fixture(scope="module")
def tfc(tmp_path_factory):
    root = tmp_path_factory.mktemp("untrusted")
    export_qonnx_file(random_net(seed=4, arch="tfc", in_channels=1, image_size=28, width=0.25, in_bits=1),
                      root / "m.onnx")
    assert cli.main(["compile", str(root / "m.onnx"), "--out", str(root / "build")]) == 0
    return root


@pytest.mark.skipif(csim.available() is not None, reason="no C-simulation here")
def test_a_crafted_layer_name_never_reaches_generated_code(tfc, tmp_path):
    """An attacker renames a node of 05_dataflow.onnx to C++ code and fixes up the manifest: the generated
    HLS sources hold no trace of it, and the C-simulation still runs bit-exact (it used to compile the code)."""
    build = tmp_path / "build"
    shutil.copytree(tfc / "build", build)
    model = onnx.load(build / "05_dataflow.onnx")
    model.graph.node[0].name = PAYLOAD
    onnx.save(model, build / "05_dataflow.onnx")
    write_manifest(build)
    x = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    got = _run(build, "csim", x, tmp_path)["scores"]
    for f in (build / "hls").rglob("*"):
        if f.is_file() and f.suffix in (".h", ".cpp", ".json", ".tcl"):
            text = f.read_text(errors="replace")
            assert "passwd" not in text and "evil" not in text and "system(" not in text, f
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    np.testing.assert_array_equal(got, _run(build, "golden", x, tmp_path)["scores"])


def test_dynamic_batch_dimension_compiles_and_runs(tfc, tmp_path):
    model = onnx.load(tfc / "m.onnx")
    for v in (model.graph.input[0], model.graph.output[0]):
        v.type.tensor_type.shape.dim[0].dim_param = "N"
    onnx.save(model, tmp_path / "dyn.onnx")
    assert cli.main(["compile", str(tmp_path / "dyn.onnx"), "--out", str(tmp_path / "b")]) == 0
    x = np.random.default_rng(1).random((5, 1, 28, 28), dtype=np.float32)
    a, b = _run(tmp_path / "b", "golden", x, tmp_path), _run(tfc / "build", "golden", x, tmp_path)
    np.testing.assert_array_equal(a["scores"], b["scores"])


def test_flat_feature_models_take_flat_inputs(tmp_path):
    """A model whose input is N x features (no image): it compiled before, but `run` refused every input."""
    torch.manual_seed(0)
    spec = QuantSpec(1, 1, 8, input_style="unit")
    net = randomize_bn(BnnNet(nn.Sequential(), nn.Sequential(input_quant(spec), *fc_stack(spec, 20, [16], 4)),
                              bipolar_input=False, input_shape=(20,), arch="flat"))
    export_qonnx_file(net, tmp_path / "flat.onnx")
    assert cli.main(["compile", str(tmp_path / "flat.onnx"), "--out", str(tmp_path / "b")]) == 0
    x = np.random.default_rng(2).random((7, 20), dtype=np.float32)
    golden, cpu = _run(tmp_path / "b", "golden", x, tmp_path), _run(tmp_path / "b", "cpu", x, tmp_path)
    np.testing.assert_array_equal(golden["scores"], cpu["scores"])
    with torch.no_grad():
        np.testing.assert_array_equal(golden["labels"], net(torch.from_numpy(x)).argmax(1).numpy())


def test_npz_input(tfc, tmp_path):
    x = np.random.default_rng(3).random((3, 1, 28, 28), dtype=np.float32)
    np.savez(tmp_path / "x.npz", images=x)
    assert cli.main(["run", str(tfc / "build"), "--target", "golden", "--input", str(tmp_path / "x.npz"),
                     "--output", str(tmp_path / "y.npz")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "y.npz")["scores"], _run(tfc / "build", "golden", x,
                                                                              tmp_path)["scores"])


def test_a_damaged_bnn_is_repacked(tfc, tmp_path):
    build = tmp_path / "build"
    shutil.copytree(tfc / "build", build)
    x = np.random.default_rng(4).random((3, 1, 28, 28), dtype=np.float32)
    want = _run(build, "cpu", x, tmp_path)["scores"]
    bnn = build / "cpu" / "model.bnn"
    data = bytearray(bnn.read_bytes())
    data[-20] ^= 0xFF  # a payload byte: the header and its source hash still look up to date, the CRC does not
    bnn.write_bytes(bytes(data))
    np.testing.assert_array_equal(_run(build, "cpu", x, tmp_path)["scores"], want)
    assert bnn.read_bytes() != bytes(data)


def test_crashed_child_is_named_by_its_signal():
    assert exit_status(-11) == "killed by SIGSEGV" and exit_status(3) == "exit 3"


def test_atomic_writes_have_the_usual_mode_and_clean_orphans(tmp_path):
    old = os.umask(0o022)
    try:
        orphan = tmp_path / ".f.txt.999999.abcd.tmp"  # a writer that was killed (no such process)
        orphan.write_text("half")
        live = tmp_path / f".f.txt.{os.getpid()}.efgh.tmp"  # a live writer's file stays
        live.write_text("busy")
        write_text_atomic(tmp_path / "f.txt", "x")
        assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o644
        assert not orphan.exists() and live.exists()
    finally:
        os.umask(old)


def test_ap_types_extraction_checks_member_paths(tmp_path, monkeypatch):
    wheel = tmp_path / ap_types.WHEEL_NAME
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(ap_types.MEMBER_PREFIX + "ap_int.h", "//")
        z.writestr(ap_types.MEMBER_PREFIX + "../../escape.h", "//")
    import hashlib

    monkeypatch.setattr(ap_types, "WHEEL_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest())  # pin "passes"
    with pytest.raises(MissingToolError, match="unsafe member path"):
        ap_types._extract(wheel, tmp_path / "out")
    assert not (tmp_path / "escape.h").exists()


def test_verified_build_reads_are_cheap_to_repeat(tfc):
    b = Build(tfc / "build")
    assert b.head() is b.head()  # parsed once per Build
