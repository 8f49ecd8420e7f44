"""bnn-flow compile / run / compare on a briefly trained BCNN (the session's tiny run)."""

import numpy as np
import pytest

from bnn_flow import cli


@pytest.fixture(scope="session")
def tiny_build(tiny_run, tmp_path_factory):
    from bnn_flow.export import export_run

    export_run(tiny_run, images=32)
    build = tmp_path_factory.mktemp("build") / "b"
    assert cli.main(["compile", str(tiny_run / "model.onnx"), "--out", str(build)]) == 0
    return build


def _images(n=40):
    from bnn_flow.data import load_dataset

    x, y = load_dataset("mnist-5k", "test")
    return (x[:n].astype(np.float32) / 255).transpose(0, 3, 1, 2), y[:n]


def test_compile_writes_every_step_and_provenance(tiny_build, tiny_run):
    import json

    names = sorted(p.name for p in tiny_build.glob("*.onnx"))
    assert names == ["00_export.onnx", "01_tidy.onnx", "02_streamline.onnx", "03_lower.onnx", "04_xnor.onnx",
                     "05_dataflow.onnx"]
    src = json.loads((tiny_build / "source.json").read_text())
    assert src["run"] == str(tiny_run.resolve()) and src["dataset"] == "mnist-5k"


def test_run_golden_and_qonnx_agree(tiny_build, tmp_path):
    x, _ = _images()
    np.save(tmp_path / "x.npy", x)
    out = {}
    for target in ("golden", "qonnx"):
        assert cli.main(["run", str(tiny_build), "--target", target, "--input", str(tmp_path / "x.npy"),
                         "--output", str(tmp_path / f"{target}.npz")]) == 0
        out[target] = np.load(tmp_path / f"{target}.npz")
        assert out[target]["scores"].dtype == np.float32 and out[target]["scores"].shape == (40, 10)
        assert out[target]["labels"].dtype == np.int64
    np.testing.assert_array_equal(out["golden"]["labels"], out["qonnx"]["labels"])


def test_run_dumps_golden_test_vectors(tiny_build, tmp_path):
    import json

    x, _ = _images(3)
    np.save(tmp_path / "x.npy", x)
    assert cli.main(["run", str(tiny_build), "--target", "golden", "--input", str(tmp_path / "x.npy"),
                     "--output", str(tmp_path / "y.npz"), "--dump-vectors"]) == 0
    manifest = json.loads((tiny_build / "vectors" / "manifest.json").read_text())
    assert len(manifest["layers"]) >= 10
    last = np.load(tiny_build / "vectors" / manifest["layers"][-1]["out"]["file"])
    assert last.shape[0] == 3


def test_compare_table_passes(tiny_build, capsys):
    assert cli.main(["compare", str(tiny_build), "--images", "300", "--step-images", "8",
                     "--targets", "torch,qonnx,steps,cpu"]) == 0
    table = capsys.readouterr().out
    for target in ("torch", "qonnx", "02_streamline", "05_dataflow", "cpu", "golden"):
        assert target in table
    assert "MISMATCH" not in table and "csim" not in table


def test_compare_runs_every_available_back_end_by_default(tiny_build, capsys):
    import json

    from bnn_flow.backends import registry

    assert cli.main(["compare", str(tiny_build), "--images", "12", "--step-images", "2",
                     "--emulated-images", "5"]) == 0
    out = capsys.readouterr().out
    result = json.loads((tiny_build / "compare.json").read_text())
    rows = {r["target"]: r for r in result["rows"]}
    for target in registry.names("integer"):
        backend = registry.target(target)
        reason = backend.available()
        if reason is None:
            n = 5 if backend.emulated else 12  # --emulated-images: qemu targets
            assert rows[target]["bit_exact"] and rows[target]["agree"] == rows[target]["images"] == n
        else:
            assert result["skipped"][target] == reason and f"not run: {target}" in out


@pytest.mark.parametrize("case", ["shape", "range", "not npy", "target"])
def test_run_bad_input_is_one_line_exit_2(tiny_build, tmp_path, capsys, case):
    x, _ = _images(2)
    target = "golden"
    path = tmp_path / "x.npy"
    if case == "shape":
        np.save(path, x[:, :, :27])
    elif case == "range":
        np.save(path, x * 255)
    elif case == "not npy":
        path.write_bytes(b"not a numpy file")
    else:
        np.save(path, x)
        target = "fpga9000"
    rc = cli.main(["run", str(tiny_build), "--target", target, "--input", str(path), "--output",
                   str(tmp_path / "y.npz")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "y.npz").exists()


def test_compile_missing_model_exit_2(tmp_path, capsys):
    assert cli.main(["compile", str(tmp_path / "none.onnx"), "--out", str(tmp_path / "b")]) == 2
    assert "not found" in capsys.readouterr().err
