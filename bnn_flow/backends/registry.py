"""The registry of targets: the one place that names them. `run`, `compare`, `pi-bench`, the demo and
`bitstream` look targets up here; a new back-end is a new folder plus one line in TARGETS (or FLOWS).

Entries are "module:factory" strings, imported on first use: `bnn-flow --help` or `train` must not load
every back-end's toolchain bindings. A factory takes the target name and returns a backends.base.Backend.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable

from bnn_flow.backends.base import Backend
from bnn_flow.errors import BadInputError

TARGETS: dict[str, str] = {
    "golden": "bnn_flow.backends.reference:GoldenTarget",  # the numpy reference every other target must match
    "qonnx": "bnn_flow.backends.reference:QonnxTarget",  # the exported QONNX model, qonnx's executor
    "torch": "bnn_flow.backends.reference:TorchTarget",  # the trained Brevitas model of the build's run
    "csim": "bnn_flow.backends.hls.target:CsimTarget",  # the HLS project in g++ C-simulation
    "rtl": "bnn_flow.backends.rtl.target:RtlTarget",  # the Verilog library + generated top, cycle-accurate in Verilator
    "cpu": "bnn_flow.backends.cpu.target:CpuTarget",  # the C runtime on this machine (ctypes)
    "aarch64": "bnn_flow.backends.cpu.target:PiTarget",  # the C runtime cross-built for a Pi, under qemu-user
    "armv7": "bnn_flow.backends.cpu.target:PiTarget",
    "armv6": "bnn_flow.backends.cpu.target:PiTarget",
    "board": "bnn_flow.backends.rtl.board_link:BoardTarget",  # the open flow's bitstream on a board (--port)
}
BASELINE = "golden"  # what compare checks every other target against

# bitstream flows: name -> "module:function(build, *, board, clock_mhz, jobs, images, data_dir)"
FLOWS: dict[str, str] = {
    "vendor": "bnn_flow.backends.hls.vendor:bitstream",  # Vitis HLS + Vivado (exit 3 with the project without them)
    "open": "bnn_flow.backends.rtl.flow:bitstream",  # yosys + nextpnr (YoWASP, PyPI): ECP5 / iCE40 boards over a UART
}

# the folding search's cost model of each board family (backends/hls/cost.py): "module:object"
COST_MODELS: dict[str, str] = {
    "zynq7000": "bnn_flow.backends.hls.cost:HLS_COST",  # HLS templates on Xilinx parts: LUT6, BRAM18, DSP48
    "zynq_us+": "bnn_flow.backends.hls.cost:HLS_COST",
    "ecp5": "bnn_flow.backends.rtl.estimate:ECP5_COST",  # the RTL library: LUT4, DP16KD, MULT18X18D
    "ice40": "bnn_flow.backends.rtl.estimate:ICE40_COST",  # LUT4, SB_RAM40_4K, SB_MAC16
}


def _load(entry: str) -> Callable:
    module, attr = entry.split(":")
    return getattr(importlib.import_module(module), attr)


@functools.cache
def target(name: str) -> Backend:
    """The back-end of target `name`; BadInputError naming the targets for an unknown one."""
    if name not in TARGETS:
        raise BadInputError(f"unknown target {name!r} (targets: {', '.join(TARGETS)})")
    return _load(TARGETS[name])(name)


def names(kind: str | None = None) -> list[str]:
    """Every target name (of one kind: "integer" or "float"), in registry order."""
    return [n for n in TARGETS if kind is None or target(n).kind == kind]


def flow(name: str) -> Callable:
    """The bitstream function of flow `name`."""
    if name not in FLOWS:
        raise BadInputError(f"unknown bitstream flow {name!r} (flows: {', '.join(FLOWS)})")
    return _load(FLOWS[name])


def cost_model(family: str):  # -> hls.cost.CostModel (not imported: the registry names, never imports, back-ends)
    """The folding cost model of a board family."""
    return _load(COST_MODELS[family])
