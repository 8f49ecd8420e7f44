"""Zero padding of bipolar maps: the pad-class geometry against a brute-force convolution, and whole nets that
zero-pad every hidden map compiled, each step executed against the previous one, the golden model against torch.
Back-ends without the per-class thresholds refuse the layer in one line."""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bnn_flow.backends.cpu import cross, pack, toolchain
from bnn_flow.backends.cpu.bench_report import packed_bytes
from bnn_flow.backends.cpu.binding import BnnLoadError, CpuModel
from bnn_flow.backends.cpu.pack import pack_build
from bnn_flow.backends.hls import csim
from bnn_flow.backends.rtl import simbuild
from bnn_flow.build import Build
from bnn_flow.compiler import CompileConfig, compile_model
from bnn_flow.errors import BadInputError
from bnn_flow.export import export_qonnx_file
from bnn_flow.golden import GoldenModel
from bnn_flow.nets import build_net
from bnn_flow.plan import ZeroPadMvau
from bnn_flow.run import run_integer
from bnn_flow.testing import fold_randomly, randomize_bn
from bnn_flow.transforms.zero_padding import class_table, dot_correction, outside_taps, pad_classes


def _conv_nhwc(x: np.ndarray, w: np.ndarray, stride: tuple[int, int], pad: tuple[int, int, int, int],
               value: float) -> np.ndarray:
    """Direct convolution, x (H, W, C), w (kh, kw, C, MH), padded with `value`: (OH, OW, MH)."""
    xp = np.pad(x, ((pad[0], pad[2]), (pad[1], pad[3]), (0, 0)), constant_values=value)
    kh, kw = w.shape[:2]
    oh, ow = (xp.shape[0] - kh) // stride[0] + 1, (xp.shape[1] - kw) // stride[1] + 1
    out = np.zeros((oh, ow, w.shape[-1]), dtype=np.int64)
    for oy in range(oh):
        for ox in range(ow):
            patch = xp[oy * stride[0] : oy * stride[0] + kh, ox * stride[1] : ox * stride[1] + kw]
            out[oy, ox] = np.einsum("yxc,yxcj->j", patch, w)
    return out


@pytest.mark.parametrize("hw,k,s,pad", [((7, 6), (3, 3), (1, 1), (1, 1, 1, 1)), ((8, 8), (3, 3), (2, 2), (1, 1, 1, 1)),
                                        ((5, 9), (5, 3), (1, 2), (2, 0, 2, 1)), ((2, 2), (3, 3), (1, 1), (1, 1, 1, 1)),
                                        ((6, 6), (2, 2), (1, 1), (0, 1, 1, 0))])
def test_correction_makes_one_padding_zero_padding(hw, k, s, pad):
    rng = np.random.default_rng(0)
    c, mh = 5, 7
    x = rng.choice([-1, 1], size=(*hw, c))
    w = rng.choice([-1, 1], size=(*k, c, mh))
    zero, one = _conv_nhwc(x, w, s, pad, 0), _conv_nhwc(x, w, s, pad, 1)
    out_hw = zero.shape[:2]
    corr = dot_correction(w.reshape(-1, mh), c, hw, out_hw, k, s, pad)
    assert np.array_equal(one - corr, zero)
    rows, cols = pad_classes(hw, out_hw, k, s, pad)
    table = class_table(corr, rows, cols)  # raises if corr were not a function of the classes
    assert table.shape[:2] == (max(rows) + 1, max(cols) + 1)
    inside = ~outside_taps(hw, out_hw, k, s, pad).any(axis=(2, 3))
    if inside.any():  # the interior is class (0, 0) and has nothing to correct
        assert rows[int(np.argmax(inside.any(axis=1)))] == 0 and not table[0, 0].any()


def _zero_padded_bcnn(seed: int) -> nn.Module:
    net = build_net("bcnn", num_classes=10, in_channels=1, image_size=28, width=0.125)
    for i, m in enumerate(net.features):  # every hidden map's +1 padding becomes zero padding
        if isinstance(m, nn.ConstantPad2d) and i > 1:
            net.features[i] = nn.ConstantPad2d(1, 0.0)
    return randomize_bn(net, seed=seed)


def _conv_own_padding() -> nn.Module:
    """A conv that zero-pads through its own `padding` (no Pad node), stride 2, on a bipolar map."""
    from bnn_flow.nets.common import BnnNet, classifier_head, conv_block
    from bnn_flow.nets.quant import QuantSpec, activation, conv

    spec = QuantSpec()
    features = nn.Sequential(*conv_block(spec, 1, 16, first=True),
                             conv(spec, 16, 16, 3, padding=1, stride=2), nn.BatchNorm2d(16), activation(spec))
    net = BnnNet(features, nn.Sequential(*classifier_head(spec, 16 * 14 * 14, 10)), bipolar_input=False,
                 input_shape=(1, 28, 28), arch="test")
    return randomize_bn(net, seed=3)


def _wide_small_map() -> nn.Module:
    """A zero-padded 128-channel conv on a 2x2 map after a max-pool: 4 output rows, so that 8 threads on one
    image split its output channels (two 64-bit words) instead of its rows."""
    from bnn_flow.nets.common import BnnNet, classifier_head, conv_block
    from bnn_flow.nets.quant import QuantSpec, activation, conv

    spec = QuantSpec()
    features = nn.Sequential(*conv_block(spec, 1, 8, first=True, pool=True), nn.ConstantPad2d(1, 0.0),
                             conv(spec, 8, 128, 3), nn.BatchNorm2d(128), activation(spec))
    net = BnnNet(features, nn.Sequential(*classifier_head(spec, 128 * 2 * 2, 10)), bipolar_input=False,
                 input_shape=(1, 4, 4), arch="test")
    return randomize_bn(net, seed=5)


NETS = {"bcnn": lambda: _zero_padded_bcnn(1), "own-padding": _conv_own_padding, "wide-small-map": _wide_small_map}


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict[str, tuple[nn.Module, Path]]:
    """Each net compiled once, every step verified against the previous one."""
    out = {}
    for name, make in NETS.items():
        torch.manual_seed(0)
        net, root = make(), tmp_path_factory.mktemp(name)
        export_qonnx_file(net, root / "m.onnx")
        compile_model(root / "m.onnx", root / "b", CompileConfig(verify=True, verify_images=3))
        out[name] = (net, root / "b")
    return out


def _images(n: int, seed: int = 0, size: int = 28) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 1, size, size), dtype=np.float32)


def _images_for(build: Path, n: int, seed: int = 0) -> np.ndarray:
    return _images(n, seed, Build(build).plan().input_shape[0])


@pytest.mark.parametrize("name", NETS)
def test_zero_padded_net_compiles_and_golden_matches_torch(builds, name):
    net, build = builds[name]
    golden = GoldenModel(build)
    assert any(isinstance(layer, ZeroPadMvau) for layer in golden.plan.layers)
    x = torch.from_numpy(_images_for(build, 300))
    with torch.no_grad():
        logits = net(x).numpy()
    scores, labels = golden.run(x.numpy())
    top2 = np.sort(logits, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-4  # off ties
    assert clear.mean() > 0.9 and np.array_equal(labels[clear], logits.argmax(1)[clear])
    assert len(np.unique(labels)) >= 2


def test_fit_and_estimates_count_the_pad_classes(builds, tmp_path):
    """--fit folds a zero-padded net for an HLS and an open-flow board; the estimates hold CLASSES x NF
    threshold words (and the RTL a class ROM of one entry per output pixel)."""
    from bnn_flow.backends.rtl.estimate import mvau_cost
    from bnn_flow.cli import main

    _, build = builds["bcnn"]
    onnx_path = build.parent / "m.onnx"
    for board in ("pynq-z2", "ulx3s-85f"):
        assert main(["compile", str(onnx_path), "--out", str(tmp_path / board), "--board", board, "--fit"]) == 0
        assert (tmp_path / board / "folding.json").is_file()
    layer = next(x for x in Build(build).plan().layers if isinstance(x, ZeroPadMvau))
    assert layer.pad_class_count == 9  # 3x3 kernel, pad 1: top/interior/bottom x left/interior/right
    oh, ow = layer.out_spatial
    params = dict(MW=layer.mw, MH=layer.mh, SIMD=1, PE=1, AB=8, BINARY=1, IB=1, WB=1, THRESH=1,
                  PIXELS=layer.pixels, OW=ow)
    _, plain = mvau_cost(params)
    _, padded = mvau_cost({**params, "CLASSES": 9, "COL_CLASSES": 3})
    assert padded["thresholds"]["depth"] == 9 * plain["thresholds"]["depth"]
    assert padded["classes"]["depth"] == oh + ow and "classes" not in plain


@pytest.mark.parametrize("fuse", ["0", "1"])
@pytest.mark.parametrize("name", NETS)
def test_cpu_runtime_bit_exact(builds, name, fuse, monkeypatch):
    """Kind 6 of the .bnn format: optimized kernels unfused and fused (the fused convolution's bgemm with a
    block of popcount limits per pad class; BNN_FUSE), reference kernels, image- and layer-split threads."""
    monkeypatch.setenv("BNN_FUSE", fuse)
    _, build = builds[name]
    golden = GoldenModel(build)
    x = _images_for(build, 12, seed=1)
    want, q = golden.run_integer(x), golden.spec.apply(x)
    bnn = pack_build(build)
    assert pack.read_header(bnn.read_bytes())["version"] == 2
    assert 6 in [e["kind"] for e in pack.read_entries(bnn.read_bytes())]
    plan = Build(build).plan()
    assert packed_bytes(plan) < bnn.stat().st_size  # the payload counts every class's thresholds and map
    assert packed_bytes(plan) > sum(4 * m.class_thresholds.size for m in plan.mvaus if isinstance(m, ZeroPadMvau))
    kinds = [e["kind"] for e in pack.read_entries(bnn.read_bytes())]
    fused = CpuModel(bnn).layer_fused
    assert all((fused[i - 1] == 1) == (fuse == "1") for i, k in enumerate(kinds) if k == 6)  # its window heads it
    for reference in (False, True):
        for threads, n in ((1, 12), (3, 12), (3, 2), (8, 1)):  # (8, 1): few rows: a channel split
            m = CpuModel(bnn, threads=threads, reference=reference, thread_grain=0)
            assert np.array_equal(m.run_integer(q[:n]), want[:n]), (reference, threads, n)


def test_padded_layer_entry_is_validated(builds):
    data = pack_build(builds["own-padding"][1]).read_bytes()
    i = [e["kind"] for e in pack.read_entries(data)].index(6)
    entry = pack.HEADER_SIZE + i * pack.ENTRY_SIZE
    e = pack.read_entries(data)[i]
    cases = {"version 1 has no kind 6": (4, "<H", 1), "no row classes": (entry + 68, "<H", 0),
             "a row class past the count": (e["class_offset"], "<B", e["row_classes"]),
             "a column class past the count": (e["class_offset"] + e["out_h"], "<B", e["col_classes"]),
             "reserved bytes": (entry + 72, "<B", 1), "thresholds for one class": (entry + 60, "<I", e["out_c"])}
    for why, (offset, fmt, value) in cases.items():
        buf = bytearray(data)
        struct.pack_into(fmt, buf, offset, value)
        body = bytes(buf[:-4])
        with pytest.raises(BnnLoadError) as err:
            CpuModel(data=body + struct.pack("<I", zlib.crc32(body)))
        assert err.value.code == 2, why  # BNN_E_FORMAT
    rng = np.random.default_rng(4)
    for _ in range(300):  # random bytes of the padded entry and its class map never crash the loader
        buf = bytearray(data)
        for offset in rng.integers(entry, entry + 80, 3).tolist() + [int(e["class_offset"] + rng.integers(0, 20))]:
            buf[offset] = int(rng.integers(0, 256))
        body = bytes(buf[:-4])
        try:
            CpuModel(data=body + struct.pack("<I", zlib.crc32(body))).run_integer(np.zeros((1, 28 * 28), np.int16))
        except BadInputError:  # BnnLoadError is one
            pass


@pytest.mark.parametrize("target", list(toolchain.TARGETS))
def test_pi_targets_bit_exact_under_qemu(builds, target, monkeypatch):
    """The cross-built runner, unfused (ARM's default) and fused on the portable bgemm (BNN_FUSE=1)."""
    why = cross.available(target)
    if why:
        pytest.skip(why)
    _, build = builds["bcnn"]
    x = _images(6, seed=2)
    want = GoldenModel(build).run_integer(x)
    for fuse in ("0", "1"):
        monkeypatch.setenv("BNN_FUSE", fuse)  # qemu-user passes the environment on
        assert np.array_equal(run_integer(build, target, x), want), fuse


@pytest.mark.parametrize("synthesizable", [False, True])
def test_hls_csim_bit_exact(builds, synthesizable, monkeypatch, tmp_path):
    """The MVAU template's fast C-simulation path and its synthesizable loops (-DBNN_NO_FAST_CSIM), folded."""
    if csim.available():
        pytest.skip(csim.available())
    if synthesizable:
        monkeypatch.setattr(csim, "BASE_FLAGS", [*csim.BASE_FLAGS, "-DBNN_NO_FAST_CSIM"])
    for k, name in enumerate(NETS):
        build = tmp_path / name
        shutil.copytree(builds[name][1], build)
        fold_randomly(build, seed=k)
        x = _images_for(build, 4, seed=3)
        assert np.array_equal(run_integer(build, "csim", x), GoldenModel(build).run_integer(x)), name


def test_rtl_bit_exact(builds, tmp_path):
    """bnn_mvau's pad-class threshold words (CLASSES x NF, a class ROM read one cycle ahead), folded."""
    if simbuild.tool_missing():
        pytest.skip(simbuild.tool_missing())
    for k, name in enumerate(NETS):
        build = tmp_path / name
        shutil.copytree(builds[name][1], build)
        fold_randomly(build, seed=10 + k)
        x = _images_for(build, 3, seed=4)
        assert np.array_equal(run_integer(build, "rtl", x), GoldenModel(build).run_integer(x)), name


def test_recipes_can_ask_for_zero_padding(tmp_path):
    """net.pad: zero builds nets whose hidden binary maps are zero-padded (compiled exactly); other values are
    refused in one line."""
    from bnn_flow.config import recipe_from_dict

    recipe = recipe_from_dict({"net": {"arch": "bcnn", "width": 0.125, "pad": "zero"}}, source="test")
    n = recipe.net
    torch.manual_seed(0)
    net = randomize_bn(build_net(n.arch, num_classes=10, in_channels=1, image_size=28, width=n.width, pad=n.pad))
    pads = [m.value for m in net.modules() if isinstance(m, nn.ConstantPad2d)]
    assert pads[0] == 0.0 and set(pads[1:]) == {0.0}  # the integer input's pad, then the hidden maps'
    assert {m.value for m in build_net("bcnn", num_classes=10, in_channels=1, image_size=28, width=0.125).modules()
            if isinstance(m, nn.ConstantPad2d)} == {0.0, 1.0}  # the default: +1 around binary maps
    export_qonnx_file(net, tmp_path / "m.onnx")
    compile_model(tmp_path / "m.onnx", tmp_path / "b")
    assert sum(isinstance(x, ZeroPadMvau) for x in Build(tmp_path / "b").plan().layers) == len(pads) - 1
    with pytest.raises(BadInputError, match="net.pad") as e:
        recipe_from_dict({"net": {"pad": "two"}}, source="test")
    assert "\n" not in str(e.value)
