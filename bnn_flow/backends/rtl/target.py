"""The `rtl` target: the generated Verilog top (library modules + generated wiring) simulated cycle by cycle
with Verilator (sim.py), its FIFOs sized from simulated occupancy first (fifo_sizing.py); every unstalled run
of three or more frames also writes BUILD/rtl/cycles.json and cycles.txt (cycles.py)."""

from __future__ import annotations

import numpy as np

from bnn_flow.backends.base import Backend
from bnn_flow.backends.rtl import codegen, cycles, simbuild
from bnn_flow.backends.rtl.fifo_sizing import size_fifos
from bnn_flow.backends.rtl.layers import rtl_layer
from bnn_flow.backends.rtl.sim import simulate
from bnn_flow.build import Build


class RtlTarget(Backend):
    description = "the Verilog library + generated top, cycle-accurate in Verilator (sized FIFOs, cycles.json)"
    emulated = True  # a slow verification run (every clock cycle simulated): compare --emulated-images limits it

    def available(self) -> str | None:
        return simbuild.tool_missing()

    def unsupported(self, build: Build) -> str | None:
        """A layer kind this back-end lacks (an illegal folding is an error of the run, as for csim)."""
        return self.lacking_kind(build, rtl_layer)

    def prepare(self, build: Build) -> dict:
        """Size the FIFOs (once per design: one Verilator build and one run when 2-beat FIFOs already reach the
        estimated II, else two builds and a few short runs) and build the simulation of the sized top; returns
        the sizing record."""
        rec = size_fifos(build)
        simbuild.build_sim(codegen.rtl_dir(build), codegen.generate(build))
        return rec

    def run_integer(self, build: Build, q: np.ndarray) -> np.ndarray:
        rec = self.prepare(build)
        r = simulate(build, q)
        if not r.stalls.any and r.ii_window() is not None:
            cycles.write_report(codegen.rtl_dir(build), r, rec)
        return r.outputs
