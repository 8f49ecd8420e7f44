"""pi-bench: the float twin (structure, shapes, sizes), the measurement protocol, the report, the ssh
path (fake ssh/scp on a tmp PATH: no network) and the command line. No timing assertions."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from cpu_fixtures import random_plan

from bnn_flow.backends.cpu import bench, bench_remote, bench_report
from bnn_flow.backends.cpu import float_twin as ft
from bnn_flow.build import Build
from bnn_flow.cli import main
from bnn_flow.compiler import CompileConfig, compile_model
from bnn_flow.errors import BadInputError, MissingToolError
from bnn_flow.export import export_qonnx_file
from bnn_flow.golden import GoldenModel
from bnn_flow.measure import speedup_row
from bnn_flow.nets import build_net
from bnn_flow.plan import IntType, Mvau

RECIPE = """\
name: twin
net: {arch: bcnn, width: 0.125, weight_bits: 1, act_bits: 1, in_bits: 8}
data: {dataset: mnist}
train: {epochs: 1, batch_size: 64, lr: 0.01, lr_min: 0.0001, schedule: cosine}
"""


def _randomize_bn(net: torch.nn.Module) -> torch.nn.Module:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 4 + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) * 2 - 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g))
    return net.eval()


@pytest.fixture(scope="module")
def run_build(tmp_path_factory) -> Path:
    """A BCNN-28 (width 0.125, random weights) compiled from a model that sits in a run folder
    (recipe.yaml + summary.json), so source.json records the run and the recipe twin applies."""
    root = tmp_path_factory.mktemp("pibench")
    run = root / "run"
    run.mkdir()
    (run / "recipe.yaml").write_text(RECIPE)
    (run / "summary.json").write_text(json.dumps({"input_shape": [1, 28, 28], "num_classes": 10,
                                                  "dataset": "mnist", "arch": "bcnn"}))
    torch.manual_seed(0)
    net = _randomize_bn(build_net("bcnn", num_classes=10, in_channels=1, image_size=28, width=0.125))
    export_qonnx_file(net, run / "model.onnx")
    build = root / "build"
    Build(build).record_source(run / "model.onnx")
    compile_model(run / "model.onnx", build, CompileConfig())
    return build


def _ops(onnx_bytes: bytes) -> list[str]:
    return [n.op_type for n in onnx.load_from_string(onnx_bytes).graph.node]


def test_plan_twin_has_the_build_structure(run_build):
    plan = Build(run_build).plan()
    twin = ft.plan_twin(plan)
    ops = _ops(twin.onnx_bytes)
    convs = [m for m in plan.mvaus if m.out_spatial]
    assert ops.count("Conv") == len(convs) and ops.count("Gemm") == len(plan.mvaus) - len(convs)
    assert ops.count("MaxPool") == sum(lay.kind == "maxpool" for lay in plan.layers)
    assert ops.count("Relu") == sum(m.out_bits for m in plan.mvaus)  # no activation on the classifier
    assert twin.weight_params == sum(m.mh * m.mw for m in plan.mvaus)
    assert twin.bn_params == 2 * sum(m.mh for m in plan.mvaus)
    assert twin.float32_bytes == 4 * (twin.weight_params + twin.bn_params)
    x = np.random.default_rng(0).random((3, *twin.input_shape), dtype=np.float32)
    y = ft.session(twin.onnx_bytes, 1).run(None, {ft.INPUT: x})[0]
    assert y.shape == (3, plan.classes) and np.all(np.isfinite(y))


def test_recipe_twin_matches_the_plan_twin(run_build):
    """The recipe's own float twin (torch export) and the plan-built one store the same parameters."""
    plan = Build(run_build).plan()
    twin = ft.float_twin(run_build, plan)
    assert twin.source == "recipe"
    from_plan = ft.plan_twin(plan)
    assert (twin.weight_params, twin.bn_params) == (from_plan.weight_params, from_plan.bn_params)
    ops = _ops(twin.onnx_bytes)
    assert ops.count("Conv") == _ops(from_plan.onnx_bytes).count("Conv")
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    assert ft.session(twin.onnx_bytes, 1).run(None, {ft.INPUT: x})[0].shape == (2, 10)


def test_layer_models_have_the_layer_shapes(run_build):
    plan = Build(run_build).plan()
    models = ft.layer_models(plan)
    pairs = bench.conv_layers(plan)
    assert list(models) == [m.name for _, m in pairs] and pairs
    for w, m in pairs:
        x = np.zeros((2, w.in_shape[2], w.in_shape[0], w.in_shape[1]), np.float32)
        y = ft.session(models[m.name], 1).run(None, {ft.INPUT: x})[0]
        assert y.shape == (2, m.mh, *m.out_spatial)


def test_measure_pair_protocol(run_build):
    """Two real runners (golden model, onnxruntime twin): every sample is taken, the stats are sane."""
    plan = Build(run_build).plan()
    x, source = bench.bench_images(run_build, plan, 6, None)
    assert x.shape == (6, 1, 28, 28) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    golden = GoldenModel(run_build)
    sess = ft.session(ft.plan_twin(plan).onnx_bytes, 1)
    calls: dict[str, list[int]] = {"binary": [], "float": []}  # batch size of every call

    def gold(b):
        calls["binary"].append(len(b))
        return golden.run_integer(b)

    def flt(b):
        calls["float"].append(len(b))
        return sess.run(None, {ft.INPUT: b})

    stats = bench.measure_pair(gold, flt, x, x, rounds=2, latency_images=3, warmup=1)
    for sizes in calls.values():  # warm-up: 1 single + 1 batch; rounds x (3 singles + >= 1 batch)
        assert sizes.count(1) == 1 + 2 * 3 and sizes.count(6) >= 1 + 2 and set(sizes) == {1, 6}
    for s in stats.values():
        assert s["latency_samples"] == 6 and 0 < s["p50_ms"] <= s["p99_ms"] and s["images_per_s"] > 0


def test_bench_images_random_without_data(run_build, monkeypatch, tmp_path):
    monkeypatch.setenv("BNN_FLOW_DATA", str(tmp_path))  # nothing there, no download
    plan = Build(run_build).plan()
    x, source = bench.bench_images(run_build, plan, 4, str(tmp_path))
    assert x.shape == (4, 1, 28, 28) and source.startswith("random")


def test_model_bytes_counts_packed_bits(run_build):
    plan = Build(run_build).plan()
    expect = sum((m.mh * m.mw * m.w_dtype.bits + 7) // 8 + (4 * m.mh if m.out_bits else 0) for m in plan.mvaus)
    assert bench_report.packed_bytes(plan) == expect
    assert all(isinstance(m, Mvau) and m.w_dtype.bits == 1 for m in plan.mvaus if m.binary)
    b = bench_report.model_bytes(plan, None, ft.plan_twin(plan))
    assert b["ratio_packed"] == round(b["float32_params"] / expect, 2) and "bnn_file" not in b


def _fake_result(build: Path) -> dict:
    side = {"p50_ms": 1.0, "p99_ms": 2.0, "images_per_s": 900.0, "latency_samples": 10, "batch": 8}
    runs = [speedup_row(t, {"binary": {**side, "images_per_s": 900.0 * t}, "float": {**side, "images_per_s": 100.0 * t,
                                                                                "p50_ms": 9.0}})
            for t in (1, 2)]
    result = {"build": str(build), "target": "host", "where": "host", "images": 8, "images_source": "random",
              "machine": {"cpu_model": "x", "cores": 2, "onnxruntime": "1"}, "kernels": "ref",
              "float_source": "plan", "verify": {"images": 8, "bit_exact": True, "against": "golden model"},
              "runs": runs, "layers": [{"layer": "BinaryMVAU_0", "in_hwc": [8, 8, 16], "out_channels": 16,
                                        "binary_ms": 0.1, "float_ms": 0.5, "speedup": 5.0}],
              "bytes": {"packed_weights_thresholds": 10, "float32_params": 320, "ratio_packed": 32.0}}
    result["goals"] = bench_report.goals(result, 8.0, 25.0)
    return result


def test_report_table_json_png(tmp_path):
    result = _fake_result(tmp_path / "b")
    assert result["runs"][0]["speedup_images_per_s"] == 9.0 and result["runs"][0]["speedup_p50"] == 9.0
    assert result["goals"]["speedup_met"] is True and result["goals"]["size_met"] is True
    text = bench.format_summary(result)
    assert "9.00x" in text and "BinaryMVAU_0" in text and "32.0x" in text and "NOT met" not in text
    bench_report.write_json(tmp_path / "r.json", result)
    assert json.loads((tmp_path / "r.json").read_text())["runs"][1]["threads"] == 2
    bench_report.write_png(tmp_path / "r.png", result)
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result["runs"][0]["binary"]["images_per_s"] = 500.0
    result["runs"] = [speedup_row(1, {k: result["runs"][0][k] for k in ("binary", "float")})]
    assert "NOT met" in bench_report.format_table({**result, "goals": bench_report.goals(result, 8.0, 25.0)})


# ---- the ssh path, with fake ssh/scp on a tmp PATH -------------------------------------------------

def test_thread_scaling_goal(tmp_path):
    result = _fake_result(tmp_path / "b")  # 900 images/s on 1 thread, 1,800 on 2
    assert result["goals"]["thread_scaling"] == 2.0 and result["goals"]["thread_scaling_met"] is True
    result["runs"][1]["binary"]["images_per_s"] = 1500.0
    result["goals"] = bench_report.goals(result, 8.0, 25.0)
    assert result["goals"]["thread_scaling_met"] is False
    assert "2 threads >= 1.7x the images/s of 1: NOT met (1.67x)" in bench.format_summary(result)
    result["runs"][1]["threads_used"] = {"batch": 1, "one_image": 1}  # too little work for 2 threads
    result["goals"] = bench_report.goals(result, 8.0, 25.0)
    assert result["goals"]["thread_scaling_met"] is None
    assert "not judged: the batch's work ran on 1 (the thread grain)" in bench.format_summary(result)
    result["runs"] = result["runs"][:1]  # a single-thread run states no scaling
    assert "thread_scaling" not in bench_report.goals(result, 8.0, 25.0)


def test_speedup_goal_by_kind_of_net(run_build):
    rng = np.random.default_rng(0)
    int8 = IntType(8, True)
    wide = random_plan(rng, (8, 8, 3), int8, [("conv", 64, 3, 1, 1, -1), ("conv", 64, 3, 1, 1, 1), ("flatten",),
                                              ("fc", 10)])
    flat = random_plan(rng, (64,), int8, [("fc", 64), ("fc", 10)])
    assert bench.speedup_goal(wide) == (8.0, "convolutional net")
    assert bench.speedup_goal(Build(run_build).plan())[0] == 3.0  # the demo-like width 0.125: 8-16 channels
    assert bench.speedup_goal(flat) == (2.0, "fully connected net")


def _fake_tool(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _path_with(monkeypatch, tmp_path, tools: dict[str, str]) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in tools.items():
        _fake_tool(bin_dir, name, body)
    monkeypatch.setenv("PATH", str(bin_dir))  # no real ssh reachable
    return bin_dir


_LOG_ARGS = "import json, os, sys\nopen(os.environ['FAKE_LOG'], 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"


def test_ssh_command_construction():
    argv = bench_remote.ssh_command("pi@10.0.0.2", "uname -m")
    assert argv[0] == "ssh" and argv[-2:] == ["pi@10.0.0.2", "uname -m"]
    joined = " ".join(argv)
    for opt in ("StrictHostKeyChecking=yes", "BatchMode=yes", "ConnectTimeout=10"):
        assert f"-o {opt}" in joined
    scp = bench_remote.scp_command("pi@10.0.0.2", [Path("/a/b.bnn")], "/tmp/bnn-bench.x")
    assert scp[0] == "scp" and scp[-1] == "pi@10.0.0.2:/tmp/bnn-bench.x/" and "/a/b.bnn" in scp
    assert "StrictHostKeyChecking=yes" in scp


@pytest.mark.parametrize("host", ["-oProxyCommand=sh", "pi@host name", "pi@h;rm", ""])
def test_bad_host_is_refused(host):
    with pytest.raises(BadInputError, match="USER@ADDR"):
        bench_remote.check_host(host)


def test_unreachable_host_one_line_exit_2(run_build, monkeypatch, tmp_path, capsys):
    log = tmp_path / "log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    _path_with(monkeypatch, tmp_path, {
        "ssh": _LOG_ARGS + "sys.stderr.write('ssh: connect to host 10.9.9.9 port 22: Connection timed out\\n')\n"
                           "sys.exit(255)\n",
        "scp": _LOG_ARGS + "sys.exit(1)\n"})
    rc = main(["pi-bench", str(run_build), "--host", "pi@10.9.9.9", "--json", str(tmp_path / "r.json")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "cannot reach pi@10.9.9.9" in err and "Connection timed out" in err and "known_hosts" in err
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls[0][:6] == list(bench_remote.SSH_OPTIONS) and calls[0][6] == "pi@10.9.9.9"
    assert not (tmp_path / "r.json").exists()


def test_host_key_failure_says_known_hosts(monkeypatch, tmp_path):
    _path_with(monkeypatch, tmp_path, {"ssh": "import sys\nsys.stderr.write('Host key verification failed.\\n')\n"
                                              "sys.exit(255)\n", "scp": "import sys\nsys.exit(1)\n"})
    with pytest.raises(BadInputError, match="Host key verification failed.*known_hosts"):
        bench_remote.probe("pi@pi.local")


def test_missing_ssh_exit_3(run_build, monkeypatch, tmp_path, capsys):
    _path_with(monkeypatch, tmp_path, {})
    with pytest.raises(MissingToolError, match="ssh and scp not found"):
        bench_remote._tools()
    rc = main(["pi-bench", str(run_build), "--host", "pi@10.0.0.2", "--json", str(tmp_path / "r.json")])
    assert rc == 3 and "openssh-client" in capsys.readouterr().err


def test_probe_and_target_choice(monkeypatch, tmp_path):
    _path_with(monkeypatch, tmp_path, {"ssh": "print('armv7l'); print(4); print('Model\\t: Raspberry Pi 3');"
                                              " print('none')\n"})
    info = bench_remote.probe("pi@pi.local")
    assert info == {"machine": "armv7l", "cores": 4, "cpu_model": "Raspberry Pi 3", "onnxruntime": "none"}
    assert bench_remote.pick_target("host", "armv7l", "pi") == "armv7"
    with pytest.raises(BadInputError, match="--target armv7"):
        bench_remote.pick_target("aarch64", "armv7l", "pi")
    with pytest.raises(BadInputError, match="mips"):
        bench_remote.pick_target("host", "mips", "pi")


def test_cli_usage_errors(run_build, tmp_path, capsys):
    assert main(["pi-bench", str(run_build), "--threads", "0", "--no-layers"]) == 2
    assert "--threads: must be at least 1" in capsys.readouterr().err
    assert main(["pi-bench", str(tmp_path / "nope")]) == 2
    assert "not found" in capsys.readouterr().err


def test_pi_float_script_runs_standalone(run_build, tmp_path):
    """The script copied to the Pi runs with only numpy + onnxruntime and prints its JSON line."""
    import subprocess

    plan = Build(run_build).plan()
    (tmp_path / "f.onnx").write_bytes(ft.plan_twin(plan).onnx_bytes)
    np.save(tmp_path / "x.npy", np.zeros((3, 1, 28, 28), np.float32))
    out = subprocess.run([sys.executable, str(bench_remote.PI_FLOAT), str(tmp_path / "f.onnx"),
                          str(tmp_path / "x.npy"), "1", "2"], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": ""}, cwd=tmp_path)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["images"] == 3 and len(res["latency_s"]) == 2 and res["batch_s"] > 0


def test_pi_bench_on_host_end_to_end(run_build, tmp_path, capsys):
    """The real runtime (ctypes binding) against the onnxruntime twin: bit-exact check, both thread counts,
    per-layer rows, sizes, JSON + PNG through the command line."""
    out = tmp_path / "pb.json"
    rc = main(["pi-bench", str(run_build), "--threads", "2", "--images", "6", "--repeat", "1",
               "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and "bit-exact with the golden model on 6 images: True" in text
    r = json.loads(out.read_text())
    assert [row["threads"] for row in r["runs"]] == [1, 2] and r["verify"]["bit_exact"] is True
    assert r["float_source"] == "recipe" and r["images_source"].startswith(("mnist", "random"))
    plan = Build(run_build).plan()
    assert [row["layer"] for row in r["layers"]] == [m.name for _, m in bench.conv_layers(plan)]
    assert all(row["binary_ms"] > 0 and row["float_ms"] > 0 for row in r["layers"])
    # a fused convolution's time is all its window's (the head of the fused group); else the matrix has time
    assert all((row["binary_window_ms"] > 0 and row["binary_matrix_ms"] == 0) if row["fused"]
               else (row["binary_window_ms"] >= 0 and row["binary_matrix_ms"] > 0) for row in r["layers"])
    # each layer's binary MACs per cycle against the kernel family's ceiling
    assert r["ceiling"]["binary_macs_per_s"] > 0 and r["ceiling"]["clock_hz_estimate"] > 0
    assert all(row["ceiling_pct"] > 0 and row["macs_per_cycle"] > 0 for row in r["layers"])
    assert "ceiling:" in text and "MACs/cyc" in text
    b = r["bytes"]
    assert b["bnn_file"] == (run_build / "cpu" / "model.bnn").stat().st_size
    assert b["ratio_file"] == round(b["float32_params"] / b["bnn_file"], 2)
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert r["goals"]["speedup_single_thread"] == r["runs"][0]["speedup_images_per_s"]


_SSH_LOCAL = _LOG_ARGS + """import subprocess
# a fake Pi: run the remote command here, with $TMPDIR inside the test's tmp dir
env = dict(os.environ, TMPDIR=os.environ["FAKE_PI_TMP"])
sys.exit(subprocess.run(["sh", "-c", sys.argv[-1]], env=env).returncode)
"""
_SCP_LOCAL = _LOG_ARGS + """import shutil
*files, dest = [a for a in sys.argv[1:] if not a.startswith("-") and "=" not in a]
folder = dest.split(":", 1)[1]
for f in files:
    shutil.copy(f, folder)
"""


def test_remote_bench_with_a_fake_pi(run_build, monkeypatch, tmp_path):
    """The whole --host path against a fake ssh/scp that run here (an x86_64 'Pi'): staging, the static
    runner's timing lines, pi_float.py, the bit-exact check on the fetched output, clean-up."""
    log, pi_tmp = tmp_path / "log", tmp_path / "pi_tmp"
    pi_tmp.mkdir()
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.setenv("FAKE_PI_TMP", str(pi_tmp))
    bin_dir = _path_with(monkeypatch, tmp_path, {"ssh": _SSH_LOCAL, "scp": _SCP_LOCAL})
    _fake_tool(bin_dir, "python3", "import os, sys\nos.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    r = bench.pi_bench(run_build, host="pi@fake-pi", threads=2, images=4, rounds=1,
                       json_path=tmp_path / "r.json")
    assert r["where"] == "pi@fake-pi (x86_64)" and r["verify"]["bit_exact"] is True
    assert [row["threads"] for row in r["runs"]] == [1, 2]
    for row in r["runs"]:
        for side in ("binary", "float"):
            assert row[side]["latency_samples"] == bench_remote.LATENCY_SAMPLES and row[side]["images_per_s"] > 0
    assert r["remote_machine"]["onnxruntime"] != "none" and "note" not in r
    assert not list(pi_tmp.glob("bnn-bench.*"))  # the remote folder is removed
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert all(c[:6] == list(bench_remote.SSH_OPTIONS) for c in calls if c[0] != "-q")
    scp = [c for c in calls if c[0] == "-q"]
    assert len(scp) == 1 and {Path(f).name for f in scp[0][7:-1]} >= {"bnn_run", "model.bnn", "float.onnx"}
    # a Pi without onnxruntime: the binary side is still measured, the float side says why it is missing
    (bin_dir / "python3").unlink()
    _fake_tool(bin_dir, "python3", "import sys\nsys.exit(1)\n")
    r = bench.pi_bench(run_build, host="pi@fake-pi", threads=1, images=2, rounds=1)
    assert r["runs"][0]["float"] is None and r["runs"][0]["binary"]["images_per_s"] > 0
    assert "float baseline not available on the Pi" in r["note"]
    assert "(not available)" in bench.format_summary(r) and r["goals"]["speedup_met"] is None


def test_parse_runner_timing():
    text = ("bnn_run: 1 images x 10 in 0.041 s: 243.9 images/s (1 threads, kernels x86-avx2)\n"
            "bnn_run: 1 images x 10 in 0.040 s: 250.0 images/s (1 threads, kernels x86-avx2)\n"
            "bnn_run: 64 images x 1 in 0.260 s: 246.2 images/s (1 threads, kernels x86-avx2)\n")
    t = bench_remote.parse_runner_timing(text)
    assert t["images"] == 64 and t["latency_s"] == [1 / 243.9, 1 / 250.0]
    assert t["batch_s"] == pytest.approx(64 / 246.2)
    with pytest.raises(BadInputError, match="no timing line"):
        bench_remote.parse_runner_timing("bnn_run: bad model m.bnn: CRC mismatch\n")


@pytest.mark.slow
def test_qemu_target_verifies_without_timings(run_build, tmp_path):
    """--target aarch64 without --host: the cross-built runner under qemu is bit-exact; no timings."""
    from bnn_flow.backends import registry

    why = registry.target("aarch64").available()
    if why:
        pytest.skip(why)
    r = bench.pi_bench(run_build, target="aarch64", images=3, png_path=tmp_path / "q.png")
    assert r["emulated"] is True and r["verify"]["bit_exact"] is True and r["runs"] == [] and r["layers"] == []
    assert "not Pi speeds" in r["note"] and r["goals"]["speedup_met"] is None
    assert "not measured" in bench.format_summary(r)


def test_layer_seconds_names_must_match_the_plan(run_build):
    from bnn_flow.errors import CheckFailedError

    w, m = bench.conv_layers(Build(run_build).plan())[0]
    assert bench.layer_seconds([w.name, m.name, "x"], [0.5, 1.5, 9.0], w, m) == (0.5, 1.5)
    assert bench.layer_seconds([m.name], [2.0], w, m) == (0.0, 2.0)  # window fused into the matrix layer
    with pytest.raises(CheckFailedError, match=m.name):
        bench.layer_seconds(["conv0"], [1.0], w, m)


@pytest.mark.slow
def test_bench_cpu_script_on_a_given_build(run_build, tmp_path):
    """bench/cpu.py with an existing build: the JSON holds the machine once and the net's record."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_bench_cpu", Path(__file__).parent.parent / "bench" / "cpu.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "cpu.json"
    assert mod.main(["--nets", "bcnn32", "--build", f"bcnn32={run_build}", "--images", "4", "--repeat", "1",
                     "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert "cpu_model" in r["machine"] and r["nets"]["bcnn32"]["verify"]["bit_exact"] is True
    assert (tmp_path / "cpu_bcnn32.png").is_file()
