"""The package's own source trees, found with importlib.resources (hls4ml ships its templates the same way).

The HLS template library, the C runtime and the board files are package data: a wheel installed anywhere
carries them, and the compilers that read them (g++, gcc, zig cc) take real folders (-I), which is what a
regular (unzipped) install gives. Every path to package data comes from here.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _package_dir(*parts: str) -> Path:
    # resolved from the top package, which is imported already: naming a subpackage would import it
    return Path(str(files("bnn_flow").joinpath(*parts)))


HLS_TEMPLATES = _package_dir("backends", "hls", "templates")  # the HLS C++ layer library, wrapper, Tcl
RUNTIME = _package_dir("backends", "cpu", "runtime")  # the C runtime: include/, src/, tests/, fuzz/
BOARDS = _package_dir("boards")  # FPGA board files (*.yaml) and the PYNQ board driver (pynq/)
