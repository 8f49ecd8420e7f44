import csv
import json
import subprocess
import sys

import pytest
import torch

from bnn_flow.config import load_recipe
from bnn_flow.train.loop import TrainOptions, train
from tests.conftest import write_recipe


def test_short_training_really_learns(tiny_run):
    """A width-0.125 BCNN W1A1 on the embedded MNIST-5k, 3 short epochs: far above 10% chance."""
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["dataset"] == "mnist-5k" and summary["epochs"] == 3
    assert summary["test_acc"] > 0.6, summary
    assert summary["storage"]["packed_bytes"] * 8 < summary["storage"]["float32_bytes"]
    for name in ("recipe.yaml", "metrics.csv", "curves.png", "best.pt", "last.pt"):
        assert (tiny_run / name).is_file(), name
    rows = list(csv.DictReader((tiny_run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert set(rows[0]) == {"epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "seconds",
                            "train_seconds"}


def _tiny(tmp_path, epochs):
    return load_recipe(write_recipe(tmp_path / "r.yaml", f"""\
name: resume
net: {{arch: tfc, width: 0.5, in_bits: 1}}
data: {{dataset: mnist-5k}}
train: {{epochs: {epochs}, batch_size: 64, lr: 0.01, limit_train: 640, seed: 3}}
"""))


def test_resume_equals_uninterrupted_training(tmp_path, monkeypatch):
    """2 epochs in one go == interrupted right after epoch 1's checkpoint, then --resume."""
    from bnn_flow.train import loop

    full = tmp_path / "full"
    train(_tiny(tmp_path, 2), TrainOptions(out=full, quiet=True))
    part = tmp_path / "part"
    real_plot = loop.plot_curves

    def interrupt(*args, **kwargs):  # called after last.pt of epoch 1 is written
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "plot_curves", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(_tiny(tmp_path, 2), TrainOptions(out=part, quiet=True))
    assert torch.load(part / "last.pt", weights_only=True)["epoch"] == 1
    monkeypatch.setattr(loop, "plot_curves", real_plot)
    torch.manual_seed(12345)  # resume must not depend on the process' RNG state
    train(_tiny(tmp_path, 2), TrainOptions(out=part, quiet=True, resume=True))
    a = torch.load(full / "last.pt", weights_only=True)
    b = torch.load(part / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 2
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert a["history"][-1]["test_acc"] == b["history"][-1]["test_acc"]


def test_corrupt_checkpoint_is_one_line_exit_2(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    recipe = write_recipe(tmp_path / "r.yaml", "net: {arch: tfc, in_bits: 1}\ndata: {dataset: mnist-5k}\n")
    (run / "recipe.yaml").write_text(recipe.read_text())  # the run's own recipe: only the checkpoint is bad
    p = subprocess.run([sys.executable, "-m", "bnn_flow", "train", str(recipe), "--out", str(run), "--resume"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert "last.pt is corrupt" in p.stderr


def test_missing_data_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    """No data set on disk and the download failing (as offline): one clear line, exit 2."""
    import urllib.error

    from bnn_flow import cli
    from bnn_flow.data import download

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(download, "_fetch_url", offline)  # tests never touch the network (nor DNS)
    recipe = write_recipe(tmp_path / "r.yaml", "net: {arch: cnv}\ndata: {dataset: cifar10}\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("BNN_FLOW_DATA", str(empty))
    rc = cli.main(["train", str(recipe), "--out", str(tmp_path / "run"), "--data-dir", str(empty)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "cifar" in err.lower() and str(empty) in err


def test_bn_recalibration_is_the_cumulative_batch_average():
    import numpy as np
    from torch import nn

    from bnn_flow.data.loader import ArrayLoader
    from bnn_flow.nets import build_net
    from bnn_flow.train.loop import recalibrate_norms

    net = build_net("tfc", num_classes=10, in_channels=1, image_size=28, in_bits=1, width=0.25)
    images = np.random.default_rng(0).integers(0, 256, size=(96, 28, 28, 1), dtype=np.uint8)
    loader = ArrayLoader(images, np.zeros(96, dtype=np.int64), 32, shuffle=False, augment=None, seed=0)
    bn = next(m for m in net.modules() if isinstance(m, nn.BatchNorm1d))
    seen = []
    hook = bn.register_forward_hook(lambda m, i, o: seen.append(i[0].mean(0)))
    recalibrate_norms(net, loader, torch.device("cpu"), batches=2)
    hook.remove()
    assert len(seen) == 2 and int(bn.num_batches_tracked) == 2 and bn.momentum == 0.1
    torch.testing.assert_close(bn.running_mean, (seen[0] + seen[1]) / 2)
    assert not any(m.training for m in net.modules() if isinstance(m, nn.Dropout))


def test_evaluation_turns_tf32_off_and_restores_it():
    import torch

    from bnn_flow.train.loop import full_float32

    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    try:
        with full_float32():
            assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_build_model_applies_the_training_only_settings():
    from types import SimpleNamespace

    from bnn_flow.config import recipe_from_dict
    from bnn_flow.nets.quant import is_quant_weight_layer
    from bnn_flow.train.loop import build_model

    data = SimpleNamespace(info=SimpleNamespace(num_classes=10), channels=3, image_size=32)
    plain = build_model(recipe_from_dict({"net": {"arch": "bvgg16", "width": 0.125}}), data)
    assert not plain.pool_before_norm and plain.padding_weight_grad
    recipe = recipe_from_dict({"net": {"arch": "bvgg16", "width": 0.125},
                               "train": {"latent_init": 0.3, "pool_before_norm": True, "padding_weight_grad": False}})
    net = build_model(recipe, data)
    assert net.pool_before_norm and not net.padding_weight_grad
    for m in net.modules():
        if is_quant_weight_layer(m):
            assert m.weight.abs().max() <= 0.3 and m.weight.abs().max() > 0.25, m
