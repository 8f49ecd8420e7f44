import json

import numpy as np
import pytest
import torch
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx

from bnn_flow import cli
from bnn_flow.export import export_qonnx_file, export_run, roundtrip
from bnn_flow.nets import build_net
from bnn_flow.qonnx_exec import QonnxRunner, load_qonnx


def test_export_run_round_trip_recorded(tiny_run, tmp_path):
    out = tmp_path / "tiny.onnx"
    record = export_run(tiny_run, out, images=64)
    assert out.is_file() and record["bytes"] == out.stat().st_size
    rt = record["roundtrip"]
    assert rt["labels_identical"] and rt["max_abs_diff"] <= 1e-4 and rt["images"] == 64
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["export"]["sha256"] == record["sha256"]
    ops = {n.op_type for n in load_qonnx(out).graph.node}
    assert {"BipolarQuant", "Quant", "Conv", "MaxPool", "Pad"} <= ops


def _randomize_bn(net):
    """Trained-like BN statistics: thresholds away from 0, so float rounding ties are improbable."""
    g = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 6 - 3)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) * 2 - 1)
            m.bias.data.copy_(torch.rand(n, generator=g) * 2 - 1)
    return net.eval()


@pytest.mark.parametrize("arch,c,s,in_bits", [("bcnn", 1, 28, 8), ("bcnn", 3, 100, 8), ("cnv", 3, 32, 8),
                                              ("tfc", 1, 28, 1), ("bvgg16", 3, 32, 8)])
def test_every_network_exports_and_matches_qonnx(tmp_path, arch, c, s, in_bits):
    net = _randomize_bn(build_net(arch, num_classes=10, in_channels=c, image_size=s, width=0.125,
                                  in_bits=in_bits))
    path = tmp_path / f"{arch}.onnx"
    export_qonnx_file(net, path)
    images = np.random.default_rng(0).integers(0, 256, size=(16, s, s, c), dtype=np.uint8)
    rt = roundtrip(net, path, images, np.zeros(16, dtype=np.int64))
    assert rt["labels_identical"] and rt["max_abs_diff"] <= 1e-4, rt


def test_qonnx_runner_batches_equal_single(tmp_path):
    net = _randomize_bn(build_net("tfc", num_classes=10, in_channels=1, image_size=28, in_bits=1))
    export_qonnx_file(net, tmp_path / "m.onnx")
    run = QonnxRunner(load_qonnx(tmp_path / "m.onnx"))
    x = np.random.default_rng(1).random((10, 1, 28, 28), dtype=np.float32)
    np.testing.assert_array_equal(run(x, batch=10), run(x, batch=1))


def test_export_of_missing_run_is_exit_2(tmp_path, capsys):
    assert cli.main(["export", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and len(err.strip().splitlines()) == 1


def test_truncated_or_junk_onnx_is_bad_input(tmp_path):
    from bnn_flow.errors import BadInputError

    net = build_net("tfc", num_classes=10, in_channels=1, image_size=28, in_bits=1)
    export_qonnx_file(net, tmp_path / "good.onnx")
    data = (tmp_path / "good.onnx").read_bytes()
    for name, payload in (("junk", b"\x08\x07\x12\x04junk"), ("truncated", data[: len(data) // 2]),
                          ("empty", b"")):
        bad = tmp_path / f"{name}.onnx"
        bad.write_bytes(payload)
        with pytest.raises(BadInputError, match="not a readable ONNX model"):
            load_qonnx(bad)


def test_exported_model_runs_in_qonnx_as_it_is(tmp_path):
    """The file needs no cleanup first: every tensor has a shape, and qonnx's executor runs it unchanged."""
    torch.manual_seed(0)
    net = build_net("bcnn", num_classes=10, in_channels=1, image_size=28, width=0.125).eval()
    export_qonnx_file(net, tmp_path / "m.onnx")
    model = ModelWrapper(str(tmp_path / "m.onnx"))
    tensors = {t for n in model.graph.node for t in n.output}
    assert all(model.get_tensor_shape(t) is not None for t in tensors)
    x = np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32)
    out = execute_onnx(model, {model.graph.input[0].name: x})[model.graph.output[0].name]
    with torch.no_grad():
        np.testing.assert_allclose(out, net(torch.from_numpy(x)).numpy(), atol=1e-4)


@pytest.mark.parametrize("act_quant", ["relu", "knq"])
def test_round_trip_tells_float_ties_from_export_errors(tmp_path, act_quant):
    """n-bit activations (Brevitas' QuantReLU with its learned scale; KNQ): whatever differs between torch and
    qonnx on these images is explained as float ties at activation boundaries; a Quant scale (or a threshold)
    changed by 5% in the file is an export error that no tie explains."""
    from onnx import numpy_helper

    net = _randomize_bn(build_net("cnv", num_classes=10, in_channels=3, image_size=32, width=0.125, act_bits=2,
                                  act_quant=act_quant))
    path = tmp_path / "m.onnx"
    export_qonnx_file(net, path)
    images = np.random.default_rng(0).integers(0, 256, size=(24, 32, 32, 3), dtype=np.uint8)
    rt = roundtrip(net, path, images, np.zeros(24, dtype=np.int64))
    assert rt["labels_identical"] and rt["max_abs_diff"] <= 1e-4, rt
    m = load_qonnx(path)
    node = [n for n in m.graph.node if n.op_type in ("Quant", "MultiThreshold")][1]  # a hidden activation
    init = next(i for i in m.graph.initializer if i.name == node.input[1])
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(1.05), init.name))
    m.save(str(path))
    bad = roundtrip(net, path, images, np.zeros(24, dtype=np.int64))
    assert not bad["labels_identical"] or bad["max_abs_diff"] > 1e-4, bad
