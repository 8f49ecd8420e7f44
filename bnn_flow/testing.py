"""Helpers shared by the tests, the benchmarks and the fuzz corpus: random but trained-like networks.

A freshly built network has BatchNorm statistics mean 0, var 1, gamma 1, beta 0: every threshold sits at
the middle of its accumulator range and no channel is flipped or constant, so such a net exercises little
of the compiler. `randomize_bn` gives it the statistics a trained net has.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bnn_flow.backends.hls.folding import legal_foldings
from bnn_flow.build import Build
from bnn_flow.compiler import CompileConfig, compile_model
from bnn_flow.export import export_qonnx_file
from bnn_flow.nets import build_net
from bnn_flow.plan import Mvau, Window
from bnn_flow.transaction import transaction

# The reference nets of the benchmarks: name -> build_net keyword arguments (10 classes).
REFERENCE_NETS: dict[str, dict] = {
    "tfc": dict(arch="tfc", in_channels=1, image_size=28),
    "cnv": dict(arch="cnv", in_channels=3, image_size=32),
    "bcnn32": dict(arch="bcnn", in_channels=3, image_size=32),
    "bvgg16": dict(arch="bvgg16", in_channels=3, image_size=32),
}


def randomize_bn(net: torch.nn.Module, seed: int = 0, zero_gammas: int = 2, negative_gammas: bool = True
                 ) -> torch.nn.Module:
    """Trained-like BatchNorm statistics, in place; returns the net in eval mode.

    Per BatchNorm: mean in [-3, 3) (thresholds off the middle of the range), var in [0.5, 1.5), beta in
    [-1, 1), gamma in [-1, 1) (negative gammas flip a channel's weights; [0, 1) without negative_gammas)
    and the first `zero_gammas` gammas exactly 0 (constant channels).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) * 6 - 3)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                gamma = torch.rand(n, generator=g) * 2 - (1 if negative_gammas else 0)
                gamma[:zero_gammas] = 0.0
                m.weight.copy_(gamma)
                m.bias.copy_(torch.rand(n, generator=g) * 2 - 1)
    return net.eval()


def nontrivial_tensor_norm(net: torch.nn.Module) -> torch.nn.Module:
    """FINN's TensorNorm heads (bnn_pynq models) set to a non-identity affine, in place: the head is then checked."""
    with torch.no_grad():
        for m in net.modules():
            if type(m).__name__ == "TensorNorm":
                m.weight.fill_(0.7)
                m.bias.fill_(0.2)
                m.running_mean.fill_(1.5)
                m.running_var.fill_(3.0)
    return net


def assert_golden_gives_torch_labels(build: Build | Path, net: torch.nn.Module, x: np.ndarray,
                                     max_ties: int = 20) -> None:
    """The compiled build's golden labels equal torch's on every image of x without a threshold or rounding tie
    (compiler.tie_images on the source graph), and ties are few enough for the check to mean something."""
    from qonnx.util.cleanup import cleanup_model

    from bnn_flow.compiler import tie_images
    from bnn_flow.golden import GoldenModel

    _, labels = GoldenModel(build).run(x)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy().argmax(1)
    ties = tie_images(cleanup_model(Build(build).source_model()), x)
    assert ties.sum() <= max_ties, "too many tie images for a meaningful check"
    assert np.array_equal(labels[~ties], want[~ties])


def random_net(seed: int = 0, **net_kwargs) -> torch.nn.Module:
    """A network of build_net(**net_kwargs) (10 classes by default) with seeded latent weights and trained-like
    BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    return randomize_bn(build_net(**{"num_classes": 10, **net_kwargs}), seed)


def set_folding(build: Build | Path, folding: dict[str, dict[str, int]] | None) -> None:
    """Write `folding` into a compiled build as compile would (a transaction: the manifest stays valid), or
    remove it (None), without the legality checks of `compile --folding` (tests check the back-ends' own)."""
    with transaction(build, fresh=False) as stage:
        if folding is None:
            (stage.path / "folding.json").unlink(missing_ok=True)
        else:
            stage.write_folding(folding)


def fold_randomly(build: Build | Path, seed: int) -> None:
    """A random legal PE x SIMD for every MVAU of a compiled build (several lanes and input beats per threshold
    block), written as its folding."""
    rng, plan, fold = np.random.default_rng(seed), Build(build).plan(), {}
    for prev, layer in zip([None, *plan.layers], plan.layers, strict=False):
        if isinstance(layer, Mvau):
            options = legal_foldings(layer, prev if isinstance(prev, Window) else None)
            pe, simd = options[int(rng.integers(len(options)))]
            fold[layer.name] = {"PE": pe, "SIMD": simd}
    set_folding(build, fold)


def compile_net(net: torch.nn.Module, work: Path, name: str = "net") -> Build:
    """Export `net` to work/<name>.onnx and compile it into work/<name>_build (every step, no folding)."""
    onnx_path = Path(work) / f"{name}.onnx"
    export_qonnx_file(net, onnx_path)
    build = Build(Path(work) / f"{name}_build")
    compile_model(onnx_path, build, CompileConfig())
    return build
