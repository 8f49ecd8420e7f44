"""The generated HLS project in C-simulation: bit-exact with the golden model through `bnn-flow run --target
csim`, for small random nets (odd sizes, channels not multiples of 64, strides, pools, 1-bit and n-bit
inputs), unfolded and folded (with width converters); warnings, caching, project.json, bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile

import numpy as np
import pytest
from test_hls_templates import own_warnings
from test_pipeline_random import Block, Case, build, images

from bnn_flow import cli
from bnn_flow.backends.hls import ap_types, csim
from bnn_flow.build import Build
from bnn_flow.errors import CheckFailedError, MissingToolError
from bnn_flow.export import export_qonnx_file
from bnn_flow.golden import GoldenModel
from bnn_flow.testing import set_folding

CASES = {
    # 8-bit unit input, stride-2 first conv, max-pool, 66 channels, one hidden FC of 65
    "int8": Case("unit", 8, 3, 11, (Block(5, 1, 2, True), Block(66, 1, 1, False)), (65,), 7, seed=11),
    # 1-bit bipolar input (the host sends bits: an XNOR first layer), valid conv, pool, no hidden FC
    "bits": Case("bipolar", 1, 2, 9, (Block(70, 0, 1, True), Block(3, 1, 1, False)), (), 4, seed=12),
}


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    out = {}
    for name, case in CASES.items():
        d = tmp_path_factory.mktemp(name)
        export_qonnx_file(build(case), d / "m.onnx")
        assert cli.main(["compile", str(d / "m.onnx"), "--out", str(d / "build")]) == 0
        out[name] = (d / "build", images(24, case, seed=5))
    return out


def _run_cli(build_dir, x, tmp_path, target):
    np.save(tmp_path / "x.npy", x)
    rc = cli.main(["run", str(build_dir), "--target", target, "--input", str(tmp_path / "x.npy"),
                   "--output", str(tmp_path / f"{target}.npz")])
    assert rc == 0
    return np.load(tmp_path / f"{target}.npz")


def _check_exact(build_dir, x, tmp_path):
    g = GoldenModel(build_dir)
    acc = csim.run_integer(build_dir, g.spec.apply(x))
    np.testing.assert_array_equal(acc, g.run_integer(x))
    ours, gold = _run_cli(build_dir, x, tmp_path, "csim"), _run_cli(build_dir, x, tmp_path, "golden")
    np.testing.assert_array_equal(ours["labels"], gold["labels"])
    np.testing.assert_array_equal(ours["scores"], gold["scores"])


@pytest.mark.parametrize("name", list(CASES))
def test_csim_bit_exact_unfolded(builds, name, tmp_path):
    build_dir, x = builds[name]
    _check_exact(build_dir, x, tmp_path)
    proj = json.loads((build_dir / "hls" / "project.json").read_text())
    plan = Build(build_dir).plan()
    assert proj["classes"] == plan.classes and proj["frames_arg"] is True
    assert proj["in"]["elems_per_beat"] * proj["in"]["beats_per_frame"] == int(np.prod(plan.input_shape))
    assert proj["in"]["elem_bits"] == plan.input_dtype.bits
    assert all(s in proj["sources"] for s in ("top.cpp",)) and "tb.cpp" not in proj["sources"]


def _legal_folding(plan, rng) -> dict:
    """Random legal PE/SIMD per MVAU (conv SIMD must divide the window's channels)."""
    fold, prev = {}, None
    for layer in plan.layers:
        if layer.kind == "mvau":
            c = prev.in_shape[-1] if prev is not None and prev.kind == "window" else layer.mw
            simd = int(rng.choice([d for d in range(1, c + 1) if c % d == 0]))
            pe = int(rng.choice([d for d in range(1, layer.mh + 1) if layer.mh % d == 0]))
            fold[layer.name] = {"PE": pe, "SIMD": simd}
        prev = layer
    return fold


def test_csim_bit_exact_folded(builds, tmp_path, monkeypatch):
    """PE/SIMD chosen at random (width converters wherever a PE differs from the next SIMD); cache reuse."""
    build_dir, x = builds["int8"]
    plan = Build(build_dir).plan()
    fold = _legal_folding(plan, np.random.default_rng(3))
    set_folding(build_dir, fold)
    try:
        exe = csim.build_csim(build_dir)
        top = (build_dir / "hls" / "top.cpp").read_text()
        assert "width_convert" in top
        _check_exact(build_dir, x, tmp_path)
        with monkeypatch.context() as m:  # unchanged project: nothing is compiled again
            m.setattr(csim, "_compile", lambda *a: pytest.fail(f"recompiled {a[2]}"))
            assert csim.build_csim(build_dir) == exe
    finally:
        set_folding(build_dir, None)
    assert csim.build_csim(build_dir) != exe  # another folding, another executable


def test_generated_project_is_warning_free(builds):
    """Our code (templates + generated files) compiles with -O2 -Wall -Wextra without a warning."""
    build_dir, _ = builds["bits"]
    shutil.rmtree(build_dir / "hls", ignore_errors=True)
    exe = csim.build_csim(build_dir)
    logs = sorted(exe.parent.glob("*.log"))
    assert {p.name.split("-")[0] for p in logs} >= {"top", "tb"} and "-Wextra" in csim.BASE_FLAGS
    for log in logs:
        assert own_warnings(log.read_text()) == [], log.read_text()[-2000:]


def test_illegal_folding_is_one_line_exit_2(builds, tmp_path, capsys):
    build_dir, x = builds["int8"]
    plan = Build(build_dir).plan()
    conv = next(m for m in plan.mvaus if m.out_spatial and m.in_dtype.bits == 1)  # the 5 -> 66 conv: C = 5
    np.save(tmp_path / "x.npy", x)
    args = ["run", str(build_dir), "--target", "csim", "--input", str(tmp_path / "x.npy"),
            "--output", str(tmp_path / "y.npz")]
    for bad, why in (({"PE": 1, "SIMD": 9}, "C % SIMD"), ({"PE": 4, "SIMD": 1}, "MH % PE")):
        set_folding(build_dir, {conv.name: bad})
        try:
            assert cli.main(args) == 2
        finally:
            set_folding(build_dir, None)
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and conv.name in err and why in err and "Traceback" not in err


def test_missing_compiler_is_exit_3(builds, tmp_path, monkeypatch, capsys):
    build_dir, x = builds["bits"]
    monkeypatch.setattr(csim, "CXX", "no-such-g++")
    assert csim.available() is not None
    np.save(tmp_path / "x.npy", x)
    assert cli.main(["run", str(build_dir), "--target", "csim", "--input", str(tmp_path / "x.npy"),
                     "--output", str(tmp_path / "y.npz")]) == 3
    assert "no-such-g++" in capsys.readouterr().err


def _fake_wheel(path, with_header=True):
    with zipfile.ZipFile(path, "w") as z:
        if with_header:
            z.writestr(ap_types.MEMBER_PREFIX + "ap_int.h", "// header\n")
            z.writestr(ap_types.MEMBER_PREFIX + "etc/ap_private.h", "// private\n")
        z.writestr("hls4ml/__init__.py", "")
    return path


@pytest.fixture
def no_ap_types(tmp_path, monkeypatch):
    """Lookup places that are empty (the venv copy hidden), no network needed."""
    monkeypatch.setattr(ap_types, "_venv_dir", lambda: tmp_path / "venv" / "ap_types")
    assert ap_types.ap_types_dir() is None
    return tmp_path


def test_ap_types_extracts_the_pinned_wheel_once(no_ap_types, monkeypatch):
    wheel = _fake_wheel(no_ap_types / ap_types.WHEEL_NAME)
    monkeypatch.setattr(ap_types, "WHEEL_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest())
    got = ap_types.ensure_ap_types(wheel)
    assert got == no_ap_types / "venv" / "ap_types" and (got / "etc" / "ap_private.h").is_file()
    assert not (got / "hls4ml").exists()  # only the ap_types/ folder, flattened
    wheel.unlink()
    assert ap_types.ensure_ap_types() == got  # found: no second fetch


def test_ap_types_refuses_another_wheel(no_ap_types, monkeypatch):
    with pytest.raises(MissingToolError, match="SHA-256"):
        ap_types.ensure_ap_types(_fake_wheel(no_ap_types / ap_types.WHEEL_NAME))
    with pytest.raises(MissingToolError, match="does not exist"):
        ap_types.ensure_ap_types(no_ap_types / "missing.whl")
    assert ap_types.ap_types_dir() is None


def test_testbench_checks_every_output(builds):
    """The generated C++ testbench compares each output with the golden vectors and names a mismatch."""
    build_dir, x = builds["bits"]
    g = GoldenModel(build_dir)
    q, want = g.spec.apply(x), g.run_integer(x)
    assert csim.testbench_check(build_dir, q, want) == f"{len(x)} frames, 0 mismatching outputs"
    want[5, 2] += 1
    with pytest.raises(CheckFailedError, match="1 mismatching outputs.*frame 5 class 2"):
        csim.testbench_check(build_dir, q, want)
