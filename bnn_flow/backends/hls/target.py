"""The `csim` target: the generated HLS project compiled with g++ and run as C-simulation (csim.py)."""

from __future__ import annotations

import numpy as np

from bnn_flow.backends.base import Backend
from bnn_flow.backends.hls import csim
from bnn_flow.backends.hls.layers import hls_layer
from bnn_flow.build import Build


class CsimTarget(Backend):
    description = "the HLS project (hls_templates + generated configuration) in g++ C-simulation"

    def available(self) -> str | None:
        return csim.available()

    def unsupported(self, build: Build) -> str | None:
        """A layer kind the HLS back-end lacks (as the rtl target's)."""
        return self.lacking_kind(build, hls_layer)

    def prepare(self, build: Build) -> None:
        csim.build_csim(build)

    def run_integer(self, build: Build, q: np.ndarray) -> np.ndarray:
        return csim.run_integer(build, q)
