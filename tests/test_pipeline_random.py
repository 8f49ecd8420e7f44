"""Property-based whole-pipeline tests: random small binarized nets, compiled, against torch and qonnx.

Hypothesis draws the architecture (input channels, odd/even sizes, 1-3 conv blocks with channel counts
that are not multiples of 64, optional max-pool, stride-2 first layer, 0-2 hidden FC layers, classes,
first-layer input style and bits) and a seed for the weights, BatchNorm statistics (some gamma < 0, some
gamma == 0: constant channels) and images. Properties:
1. golden model vs torch: identical labels, and identical integer dot products of the last layer, on every
   image without a threshold tie (a sign input within 1e-4 of 0, seen by forward hooks); scores close.
   The random BN statistics keep thresholds off reachable accumulator values, so ties stay rare.
2. golden integer accumulators == qonnx execution of the streamlined (and later) step models.
Plus a deterministic test where thresholds lie exactly on accumulator values (ties everywhere).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from brevitas.nn import QuantIdentity, QuantLinear
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from torch import nn

from bnn_flow.compiler import CompileConfig, compile_model, execute_step_model, outputs_as_scores
from bnn_flow.export import export_qonnx_file
from bnn_flow.golden import GoldenModel
from bnn_flow.nets.common import BnnNet, conv_block, fc_stack
from bnn_flow.nets.quant import QuantSpec
from bnn_flow.qonnx_exec import load_qonnx

TIE = 1e-4
# derandomize: the same examples on every run (CI); the autouse fixtures of conftest.py (HOME in a tmp dir)
# are function-scoped and are shared by the examples of one test, which is harmless here.
SETTINGS = dict(deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# --- random architectures -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Block:
    c_out: int
    pad: int
    stride: int
    pool: bool


@dataclass(frozen=True)
class Case:
    style: str  # 'unit' or 'bipolar'
    in_bits: int
    c_in: int
    size: int
    blocks: tuple[Block, ...]
    hidden: tuple[int, ...]
    classes: int
    seed: int


CHANNELS = st.one_of(st.sampled_from([1, 2, 3, 63, 65, 66, 70, 79]), st.integers(1, 80).filter(lambda c: c % 64))
FC_WIDTHS = st.one_of(st.sampled_from([1, 63, 65, 127, 129]), st.integers(2, 130))


@st.composite
def cases(draw) -> Case:
    style = draw(st.sampled_from(["unit", "bipolar"]))
    in_bits = draw(st.sampled_from([2, 8] if style == "unit" else [1, 2, 8]))
    c_in, size = draw(st.integers(1, 3)), draw(st.integers(5, 13))
    blocks, s = [], size
    for i in range(draw(st.integers(1, 3))):
        # a map smaller than the kernel needs the padding; a +-1 input (in_bits 1) is zero-padded: pad classes
        pad = 1 if s < 3 else draw(st.integers(0, 1))
        stride = draw(st.sampled_from([1, 1, 1, 2])) if i == 0 else 1
        s = (s + 2 * pad - 3) // stride + 1
        pool = s >= 2 and draw(st.booleans())
        s = s // 2 if pool else s
        blocks.append(Block(draw(CHANNELS), pad, stride, pool))
    hidden = tuple(draw(st.lists(FC_WIDTHS, max_size=2)))
    return Case(style, in_bits, c_in, size, tuple(blocks), hidden, draw(st.integers(2, 10)),
                draw(st.integers(0, 2**31 - 1)))


def randomize(net: nn.Module, seed: int, first_quantum: float) -> nn.Module:
    """Random latent weights; BN stats on the accumulator's scale, ~40% gamma < 0, ~15% gamma == 0, ~8% of
    thresholds beyond the accumulator range.

    Zero-gamma channels are constant (beta kept away from 0). Accidental near-ties are avoided: where the
    threshold tau lies within 2e-4 (in BN-output units) of a reachable accumulator value (multiples of the
    input quantum: 1 for bipolar inputs), the mean moves tau to the middle between two such values.
    Exact ties are the subject of the deterministic test below.
    """
    g = torch.Generator().manual_seed(seed)
    layer, q = None, first_quantum
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g))
                q = first_quantum if layer is None else 1.0
                layer = m
            elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                n, k = m.num_features, layer.weight[0].numel()
                u = [torch.rand(n, generator=g, dtype=torch.float64) for _ in range(7)]
                mean = (u[0] * 2 - 1) * 0.6 * k**0.5
                # ~8%: the threshold lies outside the accumulator range (clamped: a constant output)
                mean = torch.where(u[6] < 0.08, torch.sign(u[0] - 0.5) * 1.5 * k, mean)
                var = (u[1] * 0.9 + 0.1) * k
                mag = u[2] + 0.5
                gamma = torch.where(u[3] < 0.15, 0.0, torch.where(u[3] < 0.55, -mag, mag))
                beta = (u[4] * 0.9 + 0.1) * torch.where(u[5] < 0.5, -1.0, 1.0)
                scale = gamma / torch.sqrt(var + m.eps)
                safe = torch.where(gamma == 0, 1.0, scale)
                tau = mean - beta / safe
                near = (gamma != 0) & ((tau / q - torch.round(tau / q)).abs() * q * scale.abs() < 2 * TIE)
                mean = torch.where(near, mean + (torch.round(tau / q) + 0.5) * q - tau, mean)
                for t, v in ((m.running_mean, mean), (m.running_var, var), (m.weight, gamma), (m.bias, beta)):
                    t.copy_(v.float())
    return net.eval()


def build(case: Case) -> BnnNet:
    spec = QuantSpec(weight_bits=1, act_bits=1, in_bits=case.in_bits, input_style=case.style)
    layers: list[nn.Module] = []
    c, s = case.c_in, case.size
    for i, b in enumerate(case.blocks):
        layers += conv_block(spec, c, b.c_out, first=i == 0, pad=b.pad, pool=b.pool, kernel=3, stride=b.stride)
        c, s = b.c_out, (s + 2 * b.pad - 3) // b.stride + 1
        s = s // 2 if b.pool else s
    classifier = fc_stack(spec, c * s * s, list(case.hidden), case.classes)
    net = BnnNet(nn.Sequential(*layers), classifier, bipolar_input=case.style == "bipolar",
                 input_shape=(case.c_in, case.size, case.size), arch="random")
    # spacing of the first layer's accumulator values: its input quantizer's scale (+-1 inputs: 1)
    if case.in_bits == 1:
        quantum = 1.0
    else:
        quantum = 1 / (2**case.in_bits - 1) if case.style == "unit" else 2.0 ** (1 - case.in_bits)
    return randomize(net, case.seed, quantum)


def compile_net(net: BnnNet, d: Path) -> Path:
    export_qonnx_file(net, d / "m.onnx")
    compile_model(d / "m.onnx", d / "build", CompileConfig())
    return d / "build"


def images(n: int, case: Case, seed: int) -> np.ndarray:
    """Uniform random pixels, plus a few saturated (all 0 / all 255) and smooth images."""
    rng = np.random.default_rng(seed)
    shape = (n, case.c_in, case.size, case.size)
    px = rng.integers(0, 256, size=shape).astype(np.float64)
    if n >= 4:
        px[0], px[1] = 0, 255
        yy, xx = np.mgrid[0 : case.size, 0 : case.size] / case.size
        blob = np.exp(-((yy - 0.5) ** 2 + (xx - 0.4) ** 2) * 8)
        px[2] = np.clip(blob * 300 - 30, 0, 255).round()
    return (px / 255.0).astype(np.float32)


# --- torch reference with tie detection -----------------------------------------------------------------

def sign_modules(net: nn.Module) -> list[nn.Module]:
    """The hidden sign activations: QuantIdentity right after a BatchNorm (not the input quantizer)."""
    out = []
    for seq in net.modules():
        if isinstance(seq, nn.Sequential):
            kids = list(seq)
            out += [m for p, m in zip(kids, kids[1:], strict=False)
                    if isinstance(m, QuantIdentity) and isinstance(p, nn.BatchNorm1d | nn.BatchNorm2d)]
    return out


def torch_reference(net: BnnNet, x: np.ndarray, tol: float = TIE):
    """(scores, last layer's dot products, per-image tie flag, number of exactly-zero sign inputs)."""
    flags = torch.zeros(len(x), dtype=torch.bool)
    zeros = [0]
    dots = []

    def pre_hook(_m, inputs):
        v = inputs[0].flatten(1)
        flags.logical_or_((v.abs() < tol).any(1))
        zeros[0] += int((v == 0).sum())

    last = [m for m in net.classifier if isinstance(m, QuantLinear)][-1]
    hs = [m.register_forward_pre_hook(pre_hook) for m in sign_modules(net)]
    hs.append(last.register_forward_hook(lambda _m, _i, out: dots.append(out)))
    try:
        with torch.no_grad():
            out = net(torch.from_numpy(x)).numpy()
    finally:
        for h in hs:
            h.remove()
    return out, dots[0].numpy().astype(np.float64), flags.numpy(), zeros[0]


def head_ties(scores: np.ndarray) -> np.ndarray:
    """Images whose two best torch scores are (nearly) equal: argmax there depends on float rounding."""
    top = np.sort(scores, axis=1)[:, -2:]
    return (top[:, 1] - top[:, 0]) <= 1e-5 * np.maximum(1.0, np.abs(top[:, 1]))


def check_against_torch(net: BnnNet, build_dir: Path, x: np.ndarray) -> dict:
    g = GoldenModel(build_dir)
    ref, ref_dot, tie, _ = torch_reference(net, x)
    scores, labels = g.run(x)
    dot = g.to_dot(g.run_integer(x))
    ok = ~tie
    # a bipolar input to the last layer: torch's float dot product is an exact integer
    np.testing.assert_array_equal(dot[ok], ref_dot[ok], err_msg="last-layer dot products differ off ties")
    mismatch = labels != ref.argmax(1)
    unexplained = mismatch & ~tie & ~head_ties(ref)
    assert int(unexplained.sum()) == 0, f"{int(unexplained.sum())} label mismatches without a tie"
    np.testing.assert_allclose(scores[ok], ref[ok], rtol=1e-5, atol=1e-4)
    return {"images": len(x), "ties": int(tie.sum()), "mismatches": int(mismatch.sum())}


# --- properties -----------------------------------------------------------------------------------------

@settings(max_examples=12, **SETTINGS)
@given(case=cases())
def test_random_net_golden_matches_torch(case):
    note(repr(case))
    net = build(case)
    with tempfile.TemporaryDirectory() as d:
        build_dir = compile_net(net, Path(d))
        rec = check_against_torch(net, build_dir, images(48, case, case.seed + 1))
    note(repr(rec))
    assert rec["ties"] <= rec["images"] // 2, f"too many tie images for a meaningful check: {rec}"


@settings(max_examples=8, **SETTINGS)
@given(case=cases(), n=st.integers(2, 3))
def test_random_net_golden_equals_streamlined_qonnx(case, n):
    note(repr(case))
    net = build(case)
    x = images(n, case, case.seed + 2)
    with tempfile.TemporaryDirectory() as d:
        build_dir = compile_net(net, Path(d))
        g = GoldenModel(build_dir)
        want = g.to_dot(g.run_integer(x))
        for step in ("02_streamline", "05_dataflow"):
            m = load_qonnx(build_dir / f"{step}.onnx")
            _, got = outputs_as_scores(m, execute_step_model(m, x))
            np.testing.assert_array_equal(got, want, err_msg=step)


# --- deterministic: thresholds exactly on integer accumulator values -------------------------------------

def test_integer_threshold_tie_agrees_with_sign_zero_is_plus_one():
    """BN with inv_std == 1 and integer means: the sign input is exactly 0 whenever acc == mean.

    A 1-bit bipolar input makes every accumulator (first layer included) an exact integer in torch, so
    torch's sign(0) = +1 must match the compiler's `acc >= ceil(tau)` (gamma > 0) and `-acc >= ceil(-tau)`
    (gamma < 0, flipped weights) bit for bit; a gamma == 0, beta == 0 channel is the constant +1.
    """
    case = Case("bipolar", 1, 2, 9, (Block(5, 0, 1, False), Block(7, 1, 1, True)), (9,), 4, seed=3)
    net = build(case)
    with torch.no_grad():
        layer = None
        for m in net.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                layer = m
            elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                n, k = m.num_features, layer.weight[0].numel()
                m.eps = 0.0
                m.running_var.fill_(1.0)
                # integer means with the accumulator's parity (dot products of k +-1 terms have parity k)
                m.running_mean.copy_(torch.tensor([(k % 2) + 2 * ((i % 3) - 1) for i in range(n)], dtype=torch.float))
                m.weight.copy_(torch.tensor([(1.0, -1.0, 0.0)[i % 3] for i in range(n)]))
                m.bias.zero_()
        head = net.classifier[-1]  # distinct fractional offsets: no ties among class scores
        head.bias.copy_(0.1 * torch.arange(1, case.classes + 1, dtype=torch.float))
    x = images(64, case, 7)
    ref, ref_dot, _, zeros = torch_reference(net, x, tol=0.0)
    assert zeros > 100, "the construction should put many sign inputs exactly on 0"
    with tempfile.TemporaryDirectory() as d:
        g = GoldenModel(compile_net(net, Path(d)))
        scores, labels = g.run(x)
        np.testing.assert_array_equal(g.to_dot(g.run_integer(x)), ref_dot)
    np.testing.assert_array_equal(labels, ref.argmax(1))
    np.testing.assert_allclose(scores, ref, rtol=1e-6, atol=1e-5)
