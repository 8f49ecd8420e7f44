"""The GPU-friendly training loop (issue #11 part 2), checked on the CPU: the device-resident loader gives the
very batches of the numpy loader, the multi-tensor clip equals the per-layer one, train-many runs recipes side
by side and names the ones that fail."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bnn_flow import cli
from bnn_flow.data.device_loader import DeviceLoader, on_device
from bnn_flow.data.loader import ArrayLoader
from bnn_flow.nets import build_net, clip_latent_weights
from bnn_flow.train.epoch import clip_all, latent_weights
from tests.conftest import write_recipe


@pytest.mark.parametrize("augment,drop_last", [("crop-flip", False), ("crop", True), (None, False)])
def test_device_loader_gives_the_numpy_loaders_batches(augment, drop_last):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (203, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 203)
    base = ArrayLoader(images, labels, 64, shuffle=True, augment=augment, seed=5, drop_last=drop_last)
    dev = DeviceLoader(ArrayLoader(images, labels, 64, shuffle=True, augment=augment, seed=5, drop_last=drop_last),
                       torch.device("cpu"))
    for epoch in (1, 2):
        base.set_epoch(epoch)
        dev.set_epoch(epoch)
        got = list(dev)
        want = list(base)
        assert len(got) == len(want) == len(dev)
        for (x, y), (xw, yw) in zip(got, want, strict=True):
            assert torch.equal(x, xw) and torch.equal(y, yw)
            assert x.is_contiguous(memory_format=torch.channels_last)


def test_on_device_keeps_the_numpy_loader_on_the_cpu():
    base = ArrayLoader(np.zeros((4, 8, 8, 1), np.uint8), np.zeros(4), 2, shuffle=False, augment=None, seed=0)
    assert on_device(base, torch.device("cpu")) is base


def test_multi_tensor_clip_equals_the_per_layer_clip():
    torch.manual_seed(0)
    a = build_net("cnv", num_classes=10, in_channels=3, image_size=32, width=0.125)
    b = build_net("cnv", num_classes=10, in_channels=3, image_size=32, width=0.125)
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        for p, q in zip(latent_weights(a), latent_weights(b), strict=True):
            p.mul_(200)
            q.mul_(200)
    clip_latent_weights(a)
    clip_all(latent_weights(b))
    assert all(torch.equal(p, q) for p, q in zip(latent_weights(a), latent_weights(b), strict=True))


RECIPE = """\
name: {name}
net: {{arch: tfc, width: 0.25, in_bits: 1}}
data: {{dataset: mnist-5k}}
train: {{epochs: 1, batch_size: 64, lr: 0.01, limit_train: 256}}
"""


def test_train_many_runs_recipes_side_by_side(tmp_path, capsys):
    recipes = [write_recipe(tmp_path / f"{n}.yaml", RECIPE.format(name=n)) for n in ("one", "two")]
    assert cli.main(["train-many", *map(str, recipes), "--out-root", str(tmp_path / "runs"), "--device", "cpu",
                     "--threads", "1"]) == 0
    for n in ("one", "two"):
        summary = json.loads((tmp_path / "runs" / n / "summary.json").read_text())
        assert summary["epochs"] == 1 and summary["test_acc"] > 0.1
        assert "test accuracy" in (tmp_path / "runs" / f"{n}.log").read_text()


def test_train_many_names_the_failed_run(tmp_path, capsys):
    good = write_recipe(tmp_path / "good.yaml", RECIPE.format(name="good"))
    bad = write_recipe(tmp_path / "bad.yaml", RECIPE.format(name="bad").replace("arch: tfc", "arch: cnv"))
    rc = cli.main(["train-many", str(good), str(bad), "--out-root", str(tmp_path / "runs"), "--device", "cpu",
                   "--threads", "1"])
    err = capsys.readouterr().err
    assert rc == 1  # CNV cannot take 28x28 images: that run fails, is named, and the other one finishes
    assert "bad (exit" in err and "bad.log" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "runs" / "good" / "summary.json").is_file()


def test_train_many_refuses_two_recipes_of_one_name(tmp_path, capsys):
    a = write_recipe(tmp_path / "a.yaml", RECIPE.format(name="same"))
    b = write_recipe(tmp_path / "b.yaml", RECIPE.format(name="same"))
    assert cli.main(["train-many", str(a), str(b), "--out-root", str(tmp_path / "runs")]) == 2
    assert "same" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
