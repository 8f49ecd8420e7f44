"""Released models (models/zoo/): the compact format round-trips to a QONNX model whose compiled golden output is
bit-identical to the original export's; released files meet their recipe's goal and reproduce their accuracy."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, shared_data_dir

from bnn_flow import cli
from bnn_flow.config import Recipe, recipe_from_dict
from bnn_flow.golden import GoldenModel
from bnn_flow.testing import compile_net, random_net
from bnn_flow.zoo import format as zoo_format
from bnn_flow.zoo.model import GOALS, rebuild, state_tensors

ZOO = REPO / "models" / "zoo"


def _zoo_file(net, arch: str, shape: list[int], **net_cfg) -> zoo_format.ZooFile:
    tensors, scales = state_tensors(net)
    train = {"latent_init": 1.0} if net_cfg.get("weight_bits", 1) > 1 else {}  # config's rule for n-bit weights
    recipe = recipe_from_dict({"name": f"t-{arch}", "net": {"arch": arch, **net_cfg}, "train": train})
    header = {"recipe": recipe.to_dict(), "accuracy": {}, "source": {},
              "model": {"arch": arch, "num_classes": 10, "input_shape": shape, "dataset": "mnist-5k"}}
    return zoo_format.ZooFile(header, tensors, scales)


@pytest.mark.parametrize("arch,shape,width", [("bcnn", [1, 28, 28], 0.125), ("cnv", [3, 32, 32], 0.125),
                                               ("tfc", [1, 28, 28], 0.25)])
def test_rebuilt_net_compiles_to_bit_identical_golden(arch, shape, width, tmp_path):
    """Random trained-like nets (negative and zero BN gammas, latent weights of all magnitudes): the rebuilt
    network's export compiles to a golden model with identical integer scores."""
    net = random_net(seed=1, arch=arch, in_channels=shape[0], image_size=shape[1], width=width)
    data = zoo_format.encode(_zoo_file(net, arch, shape, width=width))
    _, rebuilt = rebuild(zoo_format.decode(tmp_path / "z.bnnz", data), tmp_path / "z.bnnz")
    x = np.random.default_rng(0).random((16, *shape), dtype=np.float32)
    with torch.no_grad():
        assert torch.equal(net(torch.from_numpy(x)), rebuilt(torch.from_numpy(x)))
    a = GoldenModel(compile_net(net, tmp_path, "orig"))
    b = GoldenModel(compile_net(rebuilt, tmp_path, "zoo"))
    assert np.array_equal(a.run_integer(x), b.run_integer(x))
    assert (tmp_path / "orig_build" / "05_dataflow.onnx").read_bytes() == \
        (tmp_path / "zoo_build" / "05_dataflow.onnx").read_bytes()


def test_multibit_weights_keep_their_codes(tmp_path):
    net = random_net(seed=2, arch="tfc", in_channels=1, image_size=28, width=0.25, weight_bits=2)
    z = _zoo_file(net, "tfc", [1, 28, 28], width=0.25, weight_bits=2)
    assert any(a.dtype == np.int8 for a in z.tensors.values())
    _, rebuilt = rebuild(zoo_format.decode(tmp_path / "z", zoo_format.encode(z)), tmp_path / "z")
    x = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(net(x), rebuilt(x))


def test_bvgg16_file_is_a_few_megabytes():
    net = random_net(seed=0, arch="bvgg16", in_channels=3, image_size=32)
    size = len(zoo_format.encode(_zoo_file(net, "bvgg16", [3, 32, 32])))
    params = sum(p.numel() for p in net.parameters())
    assert size < 3 * 2**20 and size < 4 * params / 25  # vs ~60 MB float checkpoint: > 25x smaller


def test_pack_and_export_from_the_command_line(tiny_run, tmp_path):
    """zoo-pack a trained run, export the zoo file: its compiled golden scores equal the run's own export's."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    zoo = tmp_path / "tiny.bnnz"
    assert cli.main(["zoo-pack", str(run), "--out", str(zoo), "--images", "300"]) == 0
    header = zoo_format.read(zoo).header
    assert header["accuracy"]["images"] == 300 and 0.0 <= header["accuracy"]["test_acc"] <= 1.0
    assert header["recipe"]["name"] == "tiny" and "optimizer" not in str(header)
    assert zoo.stat().st_size < (run / "last.pt").stat().st_size / 10
    assert cli.main(["export", str(zoo), "--out", str(tmp_path / "zoo.onnx"), "--images", "16"]) == 0
    assert cli.main(["export", str(run), "--out", str(tmp_path / "orig.onnx"), "--images", "16"]) == 0
    x = np.random.default_rng(1).random((32, 1, 28, 28), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    scores = []
    for name in ("zoo", "orig"):
        assert cli.main(["compile", str(tmp_path / f"{name}.onnx"), "--out", str(tmp_path / f"b_{name}")]) == 0
        assert cli.main(["run", str(tmp_path / f"b_{name}"), "--target", "golden", "--input",
                         str(tmp_path / "x.npy"), "--output", str(tmp_path / f"{name}.npz")]) == 0
        scores.append(np.load(tmp_path / f"{name}.npz")["scores"])
    assert np.array_equal(scores[0], scores[1])


def test_default_export_name_is_the_zoo_files(tiny_run, tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    assert cli.main(["zoo-pack", str(run), "--out", str(tmp_path / "tiny.bnnz"), "--images", "50"]) == 0
    monkeypatch.chdir(tmp_path)
    assert cli.main(["export", str(tmp_path / "tiny.bnnz"), "--images", "4"]) == 0
    assert (tmp_path / "tiny.onnx").is_file()


def _released() -> list[Path]:
    return sorted(ZOO.glob("*.bnnz"))


def test_released_models_meet_their_goals():
    """models/zoo/ holds only recipes at or above their goal, each named after its recipe, a few MB at most."""
    for path in _released():
        z = zoo_format.read(path)
        recipe: Recipe = recipe_from_dict(z.header["recipe"], str(path))
        assert path.stem == recipe.name, path
        assert recipe.name in GOALS and z.header["accuracy"]["test_acc"] >= GOALS[recipe.name], path
        assert z.header["accuracy"]["images"] >= 500 and path.stat().st_size < 8 * 2**20


@pytest.mark.slow
@pytest.mark.parametrize("path", _released(), ids=[p.stem for p in _released()])
def test_released_model_reproduces_its_accuracy(path, tmp_path):
    """The golden integer model of the exported zoo file gives the recorded accuracy on the shared test set."""
    from bnn_flow.data import load_dataset

    data = shared_data_dir()
    z = zoo_format.read(path)
    acc = z.header["accuracy"]
    if data is None:
        pytest.skip("no shared data sets")
    assert cli.main(["export", str(path), "--out", str(tmp_path / "m.onnx"), "--data-dir", str(data)]) == 0
    assert cli.main(["compile", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "b")]) == 0
    x, y = load_dataset(acc["dataset"], "test", data, image_size=z.header["recipe"]["data"]["image_size"])
    x, y = x[:acc["images"]], y[:acc["images"]]
    np.save(tmp_path / "x.npy", (x.astype(np.float32) / 255).transpose(0, 3, 1, 2))
    assert cli.main(["run", str(tmp_path / "b"), "--target", "golden", "--input", str(tmp_path / "x.npy"),
                     "--output", str(tmp_path / "y.npz")]) == 0
    assert float((np.load(tmp_path / "y.npz")["labels"] == y).mean()) == acc["test_acc"]
