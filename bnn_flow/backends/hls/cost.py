"""The folding search's cost model: what one back-end's hardware costs and how fast it runs, per folding.

The search (folding.py) is generic: it asks a cost model for the estimates of a unit (an MVAU with the window
feeding it and the pool after it) at a candidate (PE, SIMD), and for the estimates of a whole folded plan
(layers plus the FIFOs and width converters of its edges). Each bitstream flow brings its own model, because
the same folding costs differently on each: Vitis HLS on a Xilinx part (LUT6, BRAM18, DSP48; the HLS
templates' cycle formulas) and the hand-written RTL library on a Lattice part (LUT4, DP16KD, MULT18; the RTL
modules' cycle formulas). The registry names the model of each board family (backends/registry.py,
COST_MODELS).
"""

from __future__ import annotations

from typing import Protocol

from bnn_flow.backends.hls.estimate import (
    LayerEstimate,
    Prices,
    maxpool_estimate,
    mvau_estimate,
    window_estimate,
)
from bnn_flow.backends.hls.layers import estimate_plan
from bnn_flow.boards import Board
from bnn_flow.plan import MaxPool, Mvau, Plan, Window


class CostModel(Protocol):
    name: str  # "hls" or "rtl": which library the estimates describe
    units: dict[str, str]  # what the budget keys LUT / BRAM18 / DSP count on this model's parts
    memory_follows_prices: bool  # False: memory mapping ignores the exchange rates (one price variant suffices)

    def unit(self, m: Mvau, window: Window | None, pool: MaxPool | None, pe: int, simd: int,
             prices: Prices) -> list[LayerEstimate]: ...

    def plan(self, plan: Plan, prices: Prices, dma_bits: int) -> list[LayerEstimate]: ...


class HlsCost:
    """The HLS templates on Xilinx parts (estimate.py, docs/hls-estimates.md)."""

    name = "hls"
    units = {"LUT": "LUT", "BRAM18": "BRAM18", "DSP": "DSP"}  # the Xilinx names the budget keys already are
    memory_follows_prices = True

    def unit(self, m: Mvau, window: Window | None, pool: MaxPool | None, pe: int, simd: int,
             prices: Prices) -> list[LayerEstimate]:
        parts = [mvau_estimate(m, pe, simd, prices)]
        if window is not None:
            parts.append(window_estimate(window, simd, prices))
        if pool is not None:
            parts.append(maxpool_estimate(pool, pe, prices))
        return parts

    def plan(self, plan: Plan, prices: Prices, dma_bits: int) -> list[LayerEstimate]:
        return estimate_plan(plan, prices, dma_bits)


HLS_COST = HlsCost()


def cost_model(board: Board | None) -> CostModel:
    """The cost model of the flow that builds `board` (no board: the HLS model, the vendor flow's)."""
    from bnn_flow.backends import registry  # lazy: the registry's entries import this module

    return HLS_COST if board is None else registry.cost_model(board.family)
