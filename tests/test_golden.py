"""Golden model vs the torch (Brevitas) model: identical labels except counted threshold ties."""

import json

import numpy as np
import pytest
import torch

from bnn_flow.compiler import CompileConfig, compile_model, execute_step_model, outputs_as_scores
from bnn_flow.export import export_qonnx_file
from bnn_flow.golden import GoldenModel
from bnn_flow.nets import build_net
from bnn_flow.qonnx_exec import load_qonnx

TIE = 1e-4


def randomize_bn(net, seed=0, gamma_zero=2, gamma_neg=True):
    """Trained-like BN stats (thresholds off 0), some negative gammas and `gamma_zero` zero gammas."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 6 - 3)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            gamma = torch.rand(n, generator=g) * 2 - (1 if gamma_neg else 0)
            gamma[:gamma_zero] = 0.0
            m.weight.data.copy_(gamma)
            m.bias.data.copy_(torch.rand(n, generator=g) * 2 - 1)
    return net.eval()


def torch_reference(net, x):
    """(outputs, per-image tie flag): a tie is a BN output feeding a sign within TIE of 0."""
    bns = [m for m in net.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
    head = net.classifier[-1]
    flags = torch.zeros(len(x), dtype=torch.bool)

    def hook(_m, _i, out):
        flags.logical_or_(((out.abs() < TIE).flatten(1)).any(1))

    hs = [m.register_forward_hook(hook) for m in bns if m is not head]
    with torch.no_grad():
        out = net(torch.from_numpy(x)).numpy()
    for h in hs:
        h.remove()
    return out, flags.numpy()


def images(n, c, s, seed=1, real_like=False):
    rng = np.random.default_rng(seed)
    if real_like:  # smooth blobs with saturated background, like digits / photos
        yy, xx = np.mgrid[0:s, 0:s] / s
        base = np.stack([np.exp(-((yy - rng.random()) ** 2 + (xx - rng.random()) ** 2) * 8) for _ in range(n * c)])
        px = np.clip(base.reshape(n, c, s, s) * 300 - 30, 0, 255).round()
    else:
        px = rng.integers(0, 256, size=(n, c, s, s))
    return (px / 255.0).astype(np.float32)


def check_against_torch(net, build, c, s, n=64):
    g = GoldenModel(build)
    ties = 0
    for real_like in (False, True):
        x = images(n, c, s, real_like=real_like)
        ref, tie = torch_reference(net, x)
        scores, labels = g.run(x)
        bad = (ref.argmax(1) != labels) & ~tie
        assert not bad.any(), f"{bad.sum()} label mismatches without ties"
        ties += int(tie.sum())
    return g, ties


NETS = {
    "tfc": dict(arch="tfc", in_channels=1, image_size=28, in_bits=1),
    "bcnn28": dict(arch="bcnn", in_channels=1, image_size=28, in_bits=8),
    "cnv": dict(arch="cnv", in_channels=3, image_size=32, in_bits=8),
}


@pytest.fixture(scope="module", params=list(NETS))
def compiled(request, tmp_path_factory):
    kw = NETS[request.param]
    net = randomize_bn(build_net(num_classes=10, width=0.125, **kw))
    d = tmp_path_factory.mktemp(request.param)
    export_qonnx_file(net, d / "m.onnx")
    compile_model(d / "m.onnx", d / "build", CompileConfig())
    return net, d / "build", kw


def test_golden_matches_torch(compiled):
    net, build, kw = compiled
    check_against_torch(net, build, kw["in_channels"], kw["image_size"])


def test_golden_equals_qonnx_execution_of_every_integer_step(compiled):
    _, build, kw = compiled
    g = GoldenModel(build)
    x = images(2, kw["in_channels"], kw["image_size"], seed=5)
    want = g.to_dot(g.run_integer(x))
    for step in ("02_streamline", "03_lower", "04_xnor", "05_dataflow"):
        m = load_qonnx(build / f"{step}.onnx")
        _, dot = outputs_as_scores(m, execute_step_model(m, x))
        np.testing.assert_array_equal(dot, want, err_msg=step)


def test_golden_batching_is_invariant(compiled):
    _, build, kw = compiled
    x = images(10, kw["in_channels"], kw["image_size"], seed=3)
    a = GoldenModel(build, batch=3).run_integer(x)
    np.testing.assert_array_equal(a, GoldenModel(build, batch=10).run_integer(x))


def test_dump_vectors(compiled, tmp_path):
    _, build, kw = compiled
    g = GoldenModel(build)
    x = images(2, kw["in_channels"], kw["image_size"])
    out = g.dump_vectors(x, tmp_path / "vec")
    man = json.loads((out / "manifest.json").read_text())["layers"]
    assert len(man) == len(g.layers)
    last = np.load(out / man[-1]["out"]["file"])
    np.testing.assert_array_equal(last, g.run_integer(x))
    for e in man:
        if e["out"]["packed_bits"]:
            assert np.load(out / e["out"]["file"]).dtype == np.uint64
