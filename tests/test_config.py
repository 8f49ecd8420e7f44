import subprocess
import sys
from pathlib import Path

import pytest

from bnn_flow.config import load_recipe
from bnn_flow.errors import BadInputError

REPO = Path(__file__).resolve().parent.parent
RECIPES = sorted((REPO / "models").glob("*.yaml"))
REQUIRED = {"bcnn-mnist", "bcnn-fashion-mnist", "bcnn-cifar10", "bcnn-gtsrb", "bcnn-cnpb", "bvgg16-cifar10",
            "cnv-cifar10", "tfc-mnist", "demo-bcnn-mnist", "cnv-w1a2-cifar10", "cnv-w2a2-cifar10", "bcnn-a2-cifar10"}


def test_every_required_recipe_exists_and_loads():
    assert REQUIRED <= {p.stem for p in RECIPES}
    for path in RECIPES:
        r = load_recipe(path)
        assert r.name == path.stem


BAD = {
    "unknown key": ("net: {arch: bcnn, widht: 1.0}\n", "unknown key 'net.widht'"),
    "wrong type": ("train: {epochs: ten}\n", "'train.epochs' must be int"),
    "unknown net": ("net: {arch: resnet50}\n", "'net.arch' is 'resnet50'"),
    "unknown data set": ("data: {dataset: imagenet}\n", "'data.dataset' is 'imagenet'"),
    "bad bits": ("net: {weight_bits: 3}\n", "'net.weight_bits' is 3"),
    "not a mapping": ("net: [1, 2]\n", "'net' must be a mapping"),
    "bad yaml": ("net: {arch: bcnn\n", "is not valid YAML"),
    "bad value": ("train: {epochs: 0}\n", "'train.epochs' must be >= 1"),
    "1-bit unit input": ("net: {arch: bcnn, in_bits: 1}\n", "'net.in_bits' must be >= 2"),
    "latent init above 1": ("train: {latent_init: 2.0}\n", "'train.latent_init' must be in (0, 1]"),
    "latent init zero": ("train: {latent_init: 0}\n", "'train.latent_init' must be in (0, 1]"),
    "variant not a bool": ("train: {pool_before_norm: 1}\n", "'train.pool_before_norm' must be bool"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_recipe_names_the_key(tmp_path, case):
    text, message = BAD[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(BadInputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_recipe(path)


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "bnn_flow", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_bad_recipe_on_the_command_line_is_one_line_exit_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("net: {arch: bcnn, widht: 1.0}\n")
    p = run_cli("train", str(path), "--out", str(tmp_path / "run"))
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown key 'net.widht'" in lines[0] and str(path) in lines[0]


def test_bitstream_of_a_folder_that_is_no_build_is_one_line_exit_2(tmp_path):
    p = run_cli("bitstream", str(tmp_path))
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


def test_usage_error_exit_2():
    p = run_cli("train")
    assert p.returncode == 2 and "Traceback" not in p.stderr
