"""The whole pipeline on our nets and on Brevitas' own bnn_pynq models; bad input; step control."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bnn_flow.build import Build
from bnn_flow.compiler import STEP_NAMES, CompileConfig, compile_model, run_pipeline
from bnn_flow.errors import BadInputError
from bnn_flow.export import export_qonnx_file
from bnn_flow.golden import GoldenModel
from bnn_flow.nets import build_net
from bnn_flow.testing import nontrivial_tensor_norm

sys.path.insert(0, str(Path(__file__).parent))
_spec = importlib.util.spec_from_file_location("_golden_helpers", Path(__file__).parent / "test_golden.py")
_h = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_h)


def _compile(tmp_path, net, **cfg):
    export_qonnx_file(net, tmp_path / "m.onnx")
    compile_model(tmp_path / "m.onnx", tmp_path / "build", CompileConfig(**cfg))
    return tmp_path / "build"


@pytest.mark.parametrize("arch,c,s,in_bits,width", [
    ("cnv", 3, 32, 8, 1.0),
    ("bvgg16", 3, 32, 8, 0.125),  # ~2.5 s with the one-pass transforms
    ("bcnn", 3, 100, 8, 0.125),  # integer stem conv 4x4 stride 3
    ("cnv", 3, 32, 1, 0.125),  # 1-bit bipolar first layer (2x-1, sign): an XNOR first layer
    ("cnv", 3, 32, 2, 0.125),
    ("bcnn", 1, 28, 2, 0.125),
    ("tfc", 1, 28, 8, 1.0),
])
def test_pipeline_matches_torch(tmp_path, arch, c, s, in_bits, width):
    net = _h.randomize_bn(build_net(arch, num_classes=10, in_channels=c, image_size=s, width=width,
                                    in_bits=in_bits))
    build = _compile(tmp_path, net)
    _h.check_against_torch(net, build, c, s, n=24)
    names = sorted(p.name for p in build.glob("*.onnx"))
    assert names == ["00_export.onnx", *(f"{i + 1:02d}_{n}.onnx" for i, n in enumerate(STEP_NAMES))]


def test_verify_records_every_step(tmp_path):
    net = _h.randomize_bn(build_net("tfc", num_classes=10, in_channels=1, image_size=28, in_bits=1))
    build = _compile(tmp_path, net, verify=True, verify_images=2)
    log = json.loads((build / "compile_log.json").read_text())["steps"]
    assert [r["step"] for r in log] == STEP_NAMES and all("verify" in r for r in log)


def test_from_and_to_step(tmp_path):
    net = _h.randomize_bn(build_net("tfc", num_classes=10, in_channels=1, image_size=28, in_bits=1))
    export_qonnx_file(net, tmp_path / "m.onnx")
    out = run_pipeline(tmp_path / "m.onnx", tmp_path / "b", CompileConfig(), to_step="streamline")
    assert out.name == "02_streamline.onnx" and not (tmp_path / "b" / "03_lower.onnx").exists()
    out = run_pipeline(tmp_path / "m.onnx", tmp_path / "b", CompileConfig(), from_step="lower")
    assert out.name == "05_dataflow.onnx"
    assert Build(tmp_path / "b").input_spec().bits  # 1-bit input: the host emits bits
    with pytest.raises(BadInputError, match="unknown step"):
        run_pipeline(tmp_path / "m.onnx", tmp_path / "b", CompileConfig(), from_step="nope")


def _brevitas_example(name, net, tmp_path, c):
    from brevitas.export import export_qonnx

    net = _h.randomize_bn(net, gamma_zero=0)
    export_qonnx(net, input_t=torch.zeros(1, c, *((32, 32) if c == 3 else (28, 28))),
                 export_path=str(tmp_path / "m.onnx"), dynamo=False)
    compile_model(tmp_path / "m.onnx", tmp_path / "build", CompileConfig())
    return net, tmp_path / "build"


@pytest.mark.parametrize("which", ["cnv_1w1a", "tfc_1w1a"])
def test_brevitas_bnn_pynq_models(tmp_path, which):
    from brevitas_examples.bnn_pynq import models

    net = nontrivial_tensor_norm(getattr(models, which)(pretrained=False))
    c, s = (3, 32) if which.startswith("cnv") else (1, 28)
    net, build = _brevitas_example(which, net, tmp_path, c)
    g = GoldenModel(build)
    x = _h.images(16, c, s)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    scores, labels = g.run(x)
    np.testing.assert_array_equal(labels, ref.argmax(1))
    np.testing.assert_allclose(scores, ref, rtol=1e-5, atol=1e-4)


def test_truncated_onnx_is_bad_input(tmp_path):
    net = build_net("tfc", num_classes=10, in_channels=1, image_size=28, in_bits=1)
    export_qonnx_file(net, tmp_path / "m.onnx")
    data = (tmp_path / "m.onnx").read_bytes()
    (tmp_path / "t.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInputError) as e:
        compile_model(tmp_path / "t.onnx", tmp_path / "b")
    assert "\n" not in str(e.value)


def test_unsupported_op_is_refused(tmp_path):
    from onnx import helper

    from bnn_flow.qonnx_exec import load_qonnx

    net = build_net("tfc", num_classes=10, in_channels=1, image_size=28, in_bits=1)
    export_qonnx_file(net, tmp_path / "m.onnx")
    m = load_qonnx(tmp_path / "m.onnx")
    out = m.graph.output[0].name
    last = m.find_producer(out)
    last.output[0] = "pre_tanh"
    m.graph.node.append(helper.make_node("Tanh", ["pre_tanh"], [out], name="my_tanh"))
    m.save(str(tmp_path / "bad.onnx"))
    with pytest.raises(BadInputError, match=r"\(Tanh\): no compiler rule"):
        compile_model(tmp_path / "bad.onnx", tmp_path / "b")
