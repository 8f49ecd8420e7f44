"""Which C files make the bnn-flow runtime for a kernel family (shared by the host build and cross builds).

`runtime_sources(kernels)` lists the library sources (everything but the command-line runner) for one
of KERNEL_FAMILIES; a runner is those plus RUNNER. Headers live in INCLUDE_DIR (`-I INCLUDE_DIR`).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from bnn_flow.errors import BadInputError

# package data (importlib.resources): the runtime's sources travel with a wheel, and gcc/zig read them from here
RUNTIME_DIR = Path(str(files(__package__).joinpath("runtime")))
SRC_DIR = RUNTIME_DIR / "src"
INCLUDE_DIR = RUNTIME_DIR / "include"
RUNNER = SRC_DIR / "runner.c"

# The common part: loader, CRC, executor (net.c, its layer-split threads split.c, batch.c, fuse.c, the bit-plane
# integer layers bitplane.c), the fused convolution around the family's bgemm (conv.c), the binary ceiling
# (ceiling.c) and the reference kernels every variant is checked against.
_COMMON = ("model.c", "crc32.c", "net.c", "split.c", "batch.c", "fuse.c", "bitplane.c", "conv.c", "ceiling.c",
           "kernels_ref.c")
# The file providing the bnn_*_opt kernels for each family.
_OPT = {"x86": "kernels_x86.c", "neon": "kernels_neon.c", "armv6": "kernels_armv6.c",
        "generic": "kernels_opt_generic.c"}
KERNEL_FAMILIES = tuple(_OPT)


def runtime_sources(kernels: str) -> list[Path]:
    """The .c files (absolute paths, runner.c excluded) of the runtime with the `kernels` family."""
    if kernels not in _OPT:
        raise BadInputError(f"unknown kernel family {kernels!r} (choose one of {', '.join(KERNEL_FAMILIES)})")
    return [SRC_DIR / name for name in (*_COMMON, _OPT[kernels])]


def all_sources() -> list[Path]:
    """Every C source and header of the runtime (what a cached build's hash covers)."""
    return sorted([*SRC_DIR.glob("*.c"), *SRC_DIR.glob("*.h"), *INCLUDE_DIR.glob("*.h")])
