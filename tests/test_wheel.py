"""The package owns its sources: a wheel of the checkout, installed into a fresh venv and run from an empty
folder outside the checkout, compiles and folds a FINN-style model, C-simulates it and runs the C runtime,
bit-exact with the golden model. No network: the wheel is built with this venv's setuptools from a copy of
the sources, the fresh venv borrows this venv's third-party packages through a path entry (not its editable
install of bnn_flow), and the Xilinx ap_types headers are copied where `make setup` would put them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from bnn_flow.backends.hls import ap_types
from bnn_flow.export import export_qonnx_file
from bnn_flow.testing import random_net

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _run(cmd: list, cwd: Path) -> str:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory) -> Path:
    """A new venv with only the bnn-flow wheel installed (third-party packages borrowed read-only)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", "tests", "runs", "build", "*.egg-info",
                                                             "__pycache__", "*.o"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", root / "dist", src],
         root)
    wheel = next((root / "dist").glob("bnn_flow-*.whl"))
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", venv], root)
    py = venv / "bin" / "python"
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root).strip())
    # a plain path entry: the borrowed folder's own .pth files (this venv's editable bnn_flow) are not run
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([py, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel], root)
    have = ap_types.ensure_ap_types()
    dest = venv / "share" / "bnn-flow" / "ap_types" / have.name
    shutil.copytree(have, dest)
    return venv


def test_installed_wheel_compiles_folds_and_runs_bit_exact(fresh_venv, tmp_path):
    work = tmp_path / "elsewhere"  # an empty folder outside the checkout
    work.mkdir()
    py, cli = fresh_venv / "bin" / "python", fresh_venv / "bin" / "bnn-flow"
    where = _run([py, "-c", "import bnn_flow; print(bnn_flow.__file__)"], work)
    assert str(fresh_venv) in where and str(REPO) not in where  # the wheel, not the checkout
    net = random_net(arch="cnv", in_channels=3, image_size=32, width=0.125)  # FINN's CNV, 2x-1 input
    export_qonnx_file(net, work / "cnv.onnx")
    x = np.random.default_rng(0).random((6, 3, 32, 32), dtype=np.float32)
    np.save(work / "x.npy", x)
    _run([cli, "compile", "cnv.onnx", "--out", "build", "--board", "pynq-z2", "--fit"], work)
    assert (work / "build" / "folding.json").is_file()
    outs = {}
    for target in ("golden", "csim", "cpu"):
        _run([cli, "run", "build", "--target", target, "--input", "x.npy", "--output", f"{target}.npz"], work)
        outs[target] = np.load(work / f"{target}.npz")
    for target in ("csim", "cpu"):
        np.testing.assert_array_equal(outs[target]["scores"], outs["golden"]["scores"], err_msg=target)
        np.testing.assert_array_equal(outs[target]["labels"], outs["golden"]["labels"], err_msg=target)
