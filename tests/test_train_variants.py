"""The training techniques of issue #11 part 3 (recipe options): each does what it says, and the network it trains
exports and compiles like any other (learned thresholds fold into the integer thresholds: compare bit-exact)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bnn_flow import cli
from bnn_flow.config import load_recipe, recipe_from_dict
from bnn_flow.errors import BadInputError
from bnn_flow.nets import build_net
from bnn_flow.nets.quant import is_quant_weight_layer
from bnn_flow.testing import randomize_bn
from bnn_flow.train import distill, variants
from bnn_flow.train.loop import TrainOptions, train
from tests.conftest import write_recipe


def _net(arch: str = "cnv") -> torch.nn.Module:
    torch.manual_seed(0)
    if arch == "cnv":
        return build_net("cnv", num_classes=10, in_channels=3, image_size=32, width=0.125)
    return build_net("tfc", num_classes=10, in_channels=1, image_size=28, width=0.25, in_bits=8)


def test_bireal_ste_keeps_the_sign_and_uses_the_polynomial_gradient():
    net = _net("tfc").train()
    act = [m for m in net.modules() if variants.is_binary_activation(m)][0]
    x = torch.linspace(-1.5, 1.5, 31).repeat(2, 1).requires_grad_(True)
    plain = act(x)
    variants.bireal_ste(net)
    out = act(x)
    assert torch.equal(out, plain) and set(out.unique().tolist()) == {-1.0, 1.0}
    out.sum().backward()
    assert torch.allclose(x.grad, torch.clamp(2 - 2 * x.detach().abs(), min=0))


def test_rectification_keeps_every_sign_and_bounds_the_magnitudes():
    net = _net()
    before = [m.weight.detach().clone() for m in net.modules() if is_quant_weight_layer(m)]
    variants.rectify_latent_weights(net, 0.9)
    for w0, m in zip(before, [m for m in net.modules() if is_quant_weight_layer(m)], strict=True):
        assert torch.equal(torch.where(w0 >= 0, 1, -1), torch.where(m.weight >= 0, 1, -1))
        assert m.weight.abs().max() <= torch.quantile(w0.abs().flatten(), 0.91)
        assert m.weight.abs().max() < w0.abs().max()


def test_learned_thresholds_fold_into_the_batchnorm_bias():
    net = randomize_bn(_net())
    th = variants.SignThresholds(net)
    assert len(th.pairs) == 8
    with torch.no_grad():
        for t in th.params:
            t.uniform_(-1, 1)
    x = torch.rand(8, 3, 32, 32)
    with torch.no_grad():
        want = net.eval()(x)
        fresh = build_net("cnv", num_classes=10, in_channels=3, image_size=32, width=0.125)
        fresh.load_state_dict(variants.folded_state(net))  # strict: no threshold keys left
        assert torch.allclose(fresh.eval()(x), want, atol=1e-5)
        assert not torch.equal(fresh(x), _net().eval()(x))


def test_two_step_switches_the_weight_quantizers():
    net = _net("tfc").eval()
    layer = next(m for m in net.modules() if is_quant_weight_layer(m))
    x = torch.rand(3, layer.in_features)
    variants.set_weight_quant(net, False)
    assert torch.allclose(layer(x), x @ layer.weight.T)
    variants.set_weight_quant(net, True)
    assert torch.equal(layer(x), x @ torch.where(layer.weight >= 0, 1.0, -1.0).T)


def test_distill_loss():
    base = torch.tensor(0.7)
    s, t = torch.randn(4, 10), torch.randn(4, 10)
    assert distill.distill_loss(base, s, t, 4.0, 0.0) == base
    assert torch.isclose(distill.distill_loss(base, s, s, 4.0, 0.5), base / 2)
    assert distill.distill_loss(base, s, t, 4.0, 1.0) > 0


@pytest.mark.parametrize("key,value", [("ste", "tanh"), ("recu_tau", 0.2), ("two_step", 1.0),
                                       ("distill_alpha", 2), ("distill_temperature", 0), ("learned_thresholds", 1)])
def test_bad_options_are_refused(key, value):
    with pytest.raises(BadInputError, match=f"train.{key}"):
        recipe_from_dict({"net": {"arch": "tfc", "in_bits": 1}, "train": {key: value}})


RECIPE = """\
name: v
net: {{arch: tfc, width: 0.25, in_bits: 1}}
data: {{dataset: mnist-5k}}
train: {{epochs: 2, batch_size: 64, lr: 0.01, limit_train: 640, {extra}}}
"""


def _train(tmp_path, name: str, extra: str, **kw):
    recipe = load_recipe(write_recipe(tmp_path / f"{name}.yaml", RECIPE.format(extra=extra)))
    return train(recipe, TrainOptions(out=tmp_path / name, **{"quiet": True, **kw}))


def test_every_option_trains_and_exports(tmp_path):
    extra = ("seed: 3, ste: bireal, recu_tau: 0.95, learned_thresholds: true, two_step: 0.5, "
             "distill_teacher: float-twin, distill_teacher_epochs: 1")
    summary = _train(tmp_path, "all", extra)
    assert summary["test_acc"] > 0.15  # above chance; 20 steps of TFC are noisy
    ckpt = torch.load(tmp_path / "all" / "last.pt", weights_only=True)
    assert not any(k.startswith(variants.THRESHOLD_KEY) for k in ckpt["model"])
    assert cli.main(["export", str(tmp_path / "all"), "--images", "50"]) == 0


def test_learned_thresholds_compare_bit_exact(tmp_path, capsys):
    """torch (the folded checkpoint), QONNX and the golden integer model agree on every image."""
    _train(tmp_path, "th", "learned_thresholds: true")
    run = tmp_path / "th"
    assert cli.main(["export", str(run), "--images", "50"]) == 0
    assert cli.main(["compile", str(run / "model.onnx"), "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    assert cli.main(["compare", str(tmp_path / "b"), "--images", "300", "--targets", "torch,qonnx",
                     "--dataset", "mnist-5k"]) == 0
    assert "mismatch" not in capsys.readouterr().out.lower()


def test_the_float_teacher_is_trained_once_and_cached(tmp_path, capsys):
    _train(tmp_path, "a", "distill_teacher: float-twin, distill_teacher_epochs: 1", quiet=False)
    assert "training the float teacher" in capsys.readouterr().out
    _train(tmp_path, "b", "distill_teacher: float-twin, distill_teacher_epochs: 1", quiet=False)
    assert "cached float teacher" in capsys.readouterr().out
    path = tmp_path / "teacher.pt"
    path.write_bytes(b"\x80\x04junk")
    with pytest.raises(BadInputError, match="teacher.pt"):
        _train(tmp_path, "c", f"distill_teacher: {json.dumps(str(path))}")


def test_default_recipe_trains_as_before(tmp_path):
    """No option on: the same weights as a run with every option spelled out as off."""
    _train(tmp_path, "p", "seed: 3")
    _train(tmp_path, "q", "seed: 3, ste: clipped, learned_thresholds: false, distill_teacher: null")
    a = torch.load(tmp_path / "p" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "q" / "last.pt", weights_only=True)["model"]
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
