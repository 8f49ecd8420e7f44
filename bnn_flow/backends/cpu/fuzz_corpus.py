"""Seed corpus for fuzz_loader: real .bnn files of small random networks, plus given builds.

Usage: python -m bnn_flow.backends.cpu.fuzz_corpus OUT_DIR [BUILD_DIR ...]   (make fuzz runs it)

Compiles a few small binarized nets with random weights and random BatchNorm statistics (so thresholds are
not trivial): a TFC with 8-bit and with 1-bit (bits) input, a CNV with 3x3 valid convs and max-pools, a BCNN
with one-padded 3x3 convs and one with zero-padded ones (.bnn kind 6), each packed with
bnn_flow.backends.cpu.pack.pack_plan; then each BUILD_DIR given (its BUILD/cpu/model.bnn, packed when
missing). Files are named by content hash, so re-running adds nothing twice. Small seeds keep libFuzzer fast
(its -max_len defaults to the largest seed).
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

from bnn_flow.backends.cpu.pack import pack_build, pack_plan
from bnn_flow.build import Build
from bnn_flow.compiler import CompileConfig, compile_model
from bnn_flow.export import export_qonnx_file
from bnn_flow.fileio import write_bytes_atomic
from bnn_flow.nets import build_net
from bnn_flow.testing import randomize_bn

# (arch, in_channels, image_size, in_bits, width, zero padding of the hidden maps)
NETS = [("tfc", 1, 28, 8, 0.125, False), ("tfc", 1, 28, 1, 0.125, False), ("cnv", 3, 32, 8, 0.125, False),
        ("bcnn", 1, 28, 8, 0.125, False), ("bcnn", 1, 28, 8, 0.125, True)]


def small_net_bytes(arch: str, c: int, size: int, in_bits: int, width: float, seed: int, zero_pad: bool = False
                    ) -> bytes:
    """The .bnn bytes of one small random net (compiled in a temporary folder)."""
    torch.manual_seed(seed)
    net = build_net(arch, num_classes=10, in_channels=c, image_size=size, width=width, in_bits=in_bits)
    if zero_pad:  # the hidden maps' +1 pads become zero pads
        for m in net.modules():
            if isinstance(m, nn.ConstantPad2d) and m.value != 0:
                m.value = 0.0
    net = randomize_bn(net, seed)
    with tempfile.TemporaryDirectory(prefix="bnn-corpus-") as tmp:
        onnx = Path(tmp) / "m.onnx"
        export_qonnx_file(net, onnx)
        compile_model(onnx, Path(tmp) / "build", CompileConfig())
        return pack_plan(Build(Path(tmp) / "build").plan())


def save(out: Path, data: bytes, label: str) -> None:
    path = out / f"{label}-{hashlib.sha256(data).hexdigest()[:12]}.bnn"
    write_bytes_atomic(path, data)
    print(f"{path} ({len(data)} bytes)")


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for i, (arch, c, size, in_bits, width, zero_pad) in enumerate(NETS):
        save(out, small_net_bytes(arch, c, size, in_bits, width, seed=i, zero_pad=zero_pad),
             f"{arch}-in{in_bits}{'-zero-pad' if zero_pad else ''}")
    for build in argv[1:]:
        save(out, pack_build(Path(build)).read_bytes(), Path(build).resolve().parent.name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
