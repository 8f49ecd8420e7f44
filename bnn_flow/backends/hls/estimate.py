"""Cycle and resource estimates of the dataflow layers of a plan, for a given folding.

docs/hls-estimates.md states every formula and why. The short version:

* Cycles per frame (DESIGN.md §4): MVAU (MH/PE)*(MW/SIMD)*pixels; sliding window
  (H*W*C + OH*OW*kh*kw*C)/SIMD and max-pool (H*W + OH*OW)*C/lanes (the templates read, then emit);
  flatten 0; DMA bits per frame / dma_bits.
* LUTs: compute (XNOR-popcount trees, or LUT multipliers + adder trees for integer layers),
  accumulators, threshold comparators, memories (weights, thresholds, line buffers) in LUTs when that
  is cheaper than block RAM, a fixed control cost per layer, and per edge a FIFO and (where the
  producer's and consumer's stream widths differ) a width converter.
* BRAM18: memories mapped to 18 Kb blocks with the aspect ratio that needs the fewest blocks.
* DSP: integer layers whose inputs and weights are both >= 4 bits put one multiply per lane in a DSP.

Every function is pure arithmetic on the plan's shapes and types; nothing here reads files.
Postcondition of every estimate: non-negative integers, and cycles >= 1 for every layer that moves data.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

from bnn_flow.plan import MaxPool, MultiThresholdMvau, Mvau, Plan, Window, ZeroPadMvau

# 18 Kb block RAM aspect ratios (depth, width); 512 x 36 is the simple-dual-port mode (7-series UG473,
# UltraScale UG573). Read-only weights and line buffers (one read + one write port) both fit SDP.
BRAM18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
MVAU_CONTROL_LUTS = 150  # loop counters, stream handshakes, output register of one MVAU
WINDOW_CONTROL_LUTS = 200  # address generation of the sliding-window generator
POOL_CONTROL_LUTS = 100
FIFO_DEPTH = 2  # codegen's STREAM_DEPTH; any depth <= 32 costs the same SRL LUTs (SRLC32E: 32 x 1 per LUT)
FIFO_CONTROL_LUTS = 12
DWC_CONTROL_LUTS = 20
DSP_MIN_BITS = 4  # integer multiplies with inputs and weights >= 4 bits go to DSP48 slices


@dataclass(frozen=True)
class Resources:
    """LUT, BRAM18 and DSP counts (FFs are not estimated: they are never the binding budget here)."""

    lut: int = 0
    bram18: int = 0
    dsp: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.lut + other.lut, self.bram18 + other.bram18, self.dsp + other.dsp)

    def as_dict(self) -> dict[str, int]:
        return {"LUT": self.lut, "BRAM18": self.bram18, "DSP": self.dsp}


@dataclass(frozen=True)
class Prices:
    """How many LUTs one BRAM18 / one DSP is worth: used to pick memory styles and the cheapest folding.

    The default is the budget ratio of the pynq-z2 (53,200 LUT / 280 BRAM18 / 220 DSP).
    """

    bram18: float = 190.0
    dsp: float = 242.0

    @staticmethod
    def of_budget(budget: dict[str, int]) -> Prices:
        """Exchange rates equal to the board's budget ratios (a block is worth its share of the board)."""
        lut = max(budget.get("LUT", 0), 1)
        return Prices(lut / max(budget.get("BRAM18", 0), 1), lut / max(budget.get("DSP", 0), 1))

    def cost(self, r: Resources) -> float:
        return r.lut + self.bram18 * r.bram18 + self.dsp * r.dsp


@dataclass(frozen=True)
class Memory:
    """One memory of `width` bits x `depth` words, mapped to `style` lut (LUT ROM/RAM), bram or none."""

    style: str
    width: int
    depth: int
    lut: int
    bram18: int

    def as_dict(self) -> dict:
        return {"style": self.style, "width": self.width, "depth": self.depth, "LUT": self.lut,
                "BRAM18": self.bram18}


@dataclass
class LayerEstimate:
    """One layer's cycles per frame and resources; `detail` says where they come from."""

    name: str
    kind: str
    cycles: int
    res: Resources
    pe: int | None = None
    simd: int | None = None
    detail: dict = field(default_factory=dict)


@functools.lru_cache(maxsize=65536)
def bram18_blocks(width: int, depth: int) -> int:
    """Fewest 18 Kb blocks holding width x depth bits (over the block aspect ratios, no packing tricks)."""
    if width <= 0 or depth <= 0:
        return 0
    return min(math.ceil(width / w) * math.ceil(depth / d) for d, w in BRAM18_SHAPES)


@functools.lru_cache(maxsize=65536)
def lut_rom_luts(width: int, depth: int) -> int:
    """LUTs of a read-only memory: a LUT6 holds 64 x 1, a LUT6_2 two 32 x 1; F7/F8 muxes cover 256 deep.

    Depth 1 is a set of constants that synthesis folds into the logic reading them: no LUT.
    """
    if depth <= 1:
        return 0
    if depth <= 32:
        return math.ceil(width / 2)
    luts = width * math.ceil(depth / 64)
    return luts + (width * (math.ceil(depth / 256) - 1) if depth > 256 else 0)  # LUT muxes past F8


@functools.lru_cache(maxsize=65536)
def lut_ram_luts(width: int, depth: int) -> int:
    """LUTs of a simple-dual-port LUT RAM: RAM32M = 4 LUTs for 32 x 6, RAM64M = 4 LUTs for 64 x 3."""
    if depth <= 32:
        return 4 * math.ceil(width / 6)
    luts = 4 * math.ceil(width / 3) * math.ceil(depth / 64)
    return luts + (width * (math.ceil(depth / 256) - 1) if depth > 256 else 0)


@functools.lru_cache(maxsize=65536)
def memory(width: int, depth: int, prices: Prices, rom: bool = True) -> Memory:
    """The cheaper mapping (in LUT-equivalents at `prices`) of a width x depth memory: LUTs or BRAM18."""
    if width <= 0 or depth <= 0:
        return Memory("none", width, depth, 0, 0)
    luts = lut_rom_luts(width, depth) if rom else lut_ram_luts(width, depth)
    if rom and luts == 0:
        return Memory("const", width, depth, 0, 0)
    blocks = bram18_blocks(width, depth)
    if luts <= prices.bram18 * blocks:
        return Memory("lut", width, depth, luts, 0)
    return Memory("bram", width, depth, 0, blocks)


def adder_tree_luts(n: int, bits: int) -> int:
    """LUTs of a balanced tree of carry-chain adders summing n operands of `bits` bits.

    HLS sizes a sum one bit wider than its operands and Vivado builds that width as a carry chain with
    one LUT per result bit: level k (k = 1..ceil(log2 n)) has floor(n_k / 2) adders of bits + k LUTs.
    """
    luts, level, width = 0, n, bits
    while level > 1:
        luts += (level // 2) * (width + 1)
        level, width = math.ceil(level / 2), width + 1
    return luts


def popcount_luts(n: int) -> int:
    """XNOR + popcount of n bit pairs: ~3 LUTs per lane.

    Two lanes' XNORs fold into the LUTs of their 2-bit sum (4 inputs, 2 outputs: 2 LUTs), an odd lane
    is one XNOR LUT, then an adder tree over the ceil(n/2) partial sums of 2 bits.
    """
    return 2 * (n // 2) + n % 2 + adder_tree_luts(math.ceil(n / 2), 2)


def mvau_compute(m: Mvau, pe: int, simd: int) -> tuple[int, int]:
    """(LUTs, DSPs) of the PE x SIMD multiply lanes and their per-PE reduction trees."""
    if m.binary:
        return pe * popcount_luts(simd), 0
    a, w = m.dot_dtype.bits, m.w_dtype.bits  # a nonuniform activation's decoded levels
    # a level table read per input element, shared by the PE lanes: a LUT per level bit per 4 index bits
    decode = simd * a * -(-m.in_dtype.bits // 4) if m.in_levels else 0
    if a >= DSP_MIN_BITS and w >= DSP_MIN_BITS:
        return decode + pe * adder_tree_luts(simd, a + w), pe * simd
    mult = a if m.bipolar_weights else a * w  # LUT array multiplier: ~1 LUT per partial-product bit
    return decode + pe * (simd * mult + adder_tree_luts(simd, a + w)), 0


def mvau_estimate(m: Mvau, pe: int, simd: int, prices: Prices) -> LayerEstimate:
    """Cycles and resources of one MVAU folded PE x SIMD (pre: MH % PE == 0 and MW % SIMD == 0).

    Memories as hls_templates/mvau.h holds them: per PE a weight ROM of TILES = NF*SF tiles of SIMD*W
    bits and a threshold ROM of NF entries (acc_bits wide; CLASSES x NF for a zero-padded convolution, with
    its row and column class tables; LEVELS x acc_bits wide for an n-bit activation), plus the input vector
    buffer (SF beats of SIMD*A bits, re-read for every output fold).
    """
    assert m.mh % pe == 0 and m.mw % simd == 0, (m.name, pe, simd)
    nf, sf = m.mh // pe, m.mw // simd
    cycles = nf * sf * m.pixels
    acc = m.acc_dtype.bits
    wmem = memory(simd * m.w_dtype.bits, nf * sf, prices)
    classes = m.pad_class_count if isinstance(m, ZeroPadMvau) else 1  # threshold sets of a zero-padded conv
    levels = m.levels if isinstance(m, MultiThresholdMvau) else 1  # an n-bit activation's thresholds, read at once
    thresh = m.thresholds is not None
    tmem = memory(acc * levels, classes * nf, prices) if thresh else Memory("none", 0, 0, 0, 0)
    ibuf = memory(simd * m.in_dtype.bits, sf, prices, rom=False) if sf > 1 else Memory("none", 0, 0, 0, 0)
    compute, dsp = mvau_compute(m, pe, simd)
    accumulate = pe * acc if sf > 1 else 0
    compare = pe * (acc + 1) * levels - pe if thresh else 0  # comparators, and the count of those reached
    cmem = memory(8, sum(m.out_spatial), prices) if classes > 1 else Memory("none", 0, 0, 0, 0)  # class rows, cols
    lut = compute + accumulate + compare + pe * (wmem.lut + tmem.lut) + ibuf.lut + cmem.lut + MVAU_CONTROL_LUTS
    bram = pe * (wmem.bram18 + tmem.bram18) + ibuf.bram18 + cmem.bram18
    detail = {"lanes": pe * simd, "fold": nf * sf, "compute_LUT": compute, "acc_LUT": accumulate + compare,
              "weights": {**wmem.as_dict(), "copies": pe}, "thresholds": {**tmem.as_dict(), "copies": pe},
              "input_buffer": ibuf.as_dict()}
    return LayerEstimate(m.name, "mvau", cycles, Resources(lut, bram, dsp), pe, simd, detail)


def window_cycles(w: Window, simd: int) -> int:
    """window.h reads the rows an output row needs, then emits its patches (not overlapped): every input
    element once plus every patch element once, SIMD per clock."""
    (h, wd, c), (oh, ow, _) = w.in_shape, w.out_shape
    kh, kw = w.kernel
    return (h * wd * c + oh * ow * kh * kw * c) // simd


def window_estimate(w: Window, simd: int, prices: Prices) -> LayerEstimate:
    """Sliding-window generator emitting `simd` channels of one patch position per beat (pre: C % simd == 0).

    Line buffer (linebuf.h): kh input rows of W*C/simd beats of simd*A bits, one LUT RAM or BRAM; the
    padding beat is a constant. Output mux simd*A LUTs.
    """
    h, wd, c = w.in_shape
    assert c % simd == 0, (w.name, simd)
    buf = memory(simd * w.dtype.bits, w.kernel[0] * wd * c // simd, prices, rom=False)
    lut = buf.lut + simd * w.dtype.bits + WINDOW_CONTROL_LUTS
    return LayerEstimate(w.name, "window", window_cycles(w, simd), Resources(lut, buf.bram18), None, simd,
                         {"buffer": buf.as_dict()})


def maxpool_estimate(p: MaxPool, lanes: int, prices: Prices) -> LayerEstimate:
    """Max-pool on a stream of `lanes` channels per beat (maxpool.h): reads kh rows, then emits one beat
    per output pixel and channel group, comparing the kh*kw window beats at once.

    Cycles: input beats + output beats. Buffer: kh rows of W*C/lanes beats; kh*kw-1 OR gates (bits) or
    a-bit compare-selects (integers) per lane.
    """
    (h, wd, c), (oh, ow, _) = p.in_shape, p.out_shape
    a = p.dtype.bits
    kh, kw = p.kernel
    buf = memory(lanes * a, kh * wd * c // lanes, prices, rom=False)
    unit = (kh * kw - 1) * lanes * (1 if a == 1 else 2 * a)
    lut = buf.lut + unit + POOL_CONTROL_LUTS
    cycles = (h * wd + oh * ow) * c // lanes
    return LayerEstimate(p.name, "maxpool", cycles, Resources(lut, buf.bram18), lanes, None, {"buffer": buf.as_dict()})


def edge_estimate(w_in: int, w_out: int) -> tuple[int, dict]:
    """LUTs of one edge: a FIFO of the consumer's width and, when widths differ, a width converter.

    FIFO: hls::stream of depth <= 32 in shift-register LUTs (one SRLC32E per bit). Converter (dwc.h):
    a buffer of w_in + w_out bits into which each input word is shifted by a variable amount: a barrel
    shifter over p = w_out / gcd(w_in, w_out) positions, ceil(log2(p) / 2) levels of 4:1 muxes (one
    LUT6 each) per buffer bit, plus one LUT per bit for the buffer update.
    """
    fifo = w_out * math.ceil(FIFO_DEPTH / 32) + FIFO_CONTROL_LUTS
    if w_in == w_out:
        return fifo, {"fifo_LUT": fifo}
    positions = w_out // math.gcd(w_in, w_out)
    levels = math.ceil(math.log2(positions) / 2) if positions > 1 else 0
    dwc = (w_in + w_out) * (1 + levels) + DWC_CONTROL_LUTS
    return fifo + dwc, {"fifo_LUT": fifo, "dwc": [w_in, w_out], "dwc_LUT": dwc}


def dma_estimates(plan: Plan, dma_bits: int) -> tuple[LayerEstimate, LayerEstimate]:
    """The DMA streams into and out of the accelerator: dma_bits per clock at most (an HP port's width).

    Their resources are in the board's infrastructure; their cycles bound the frame rate like a layer's.
    """
    in_bits = math.prod(plan.input_shape) * plan.input_dtype.bits
    out_bits = plan.classes * plan.output_dtype.bits
    return (LayerEstimate("input DMA", "dma", math.ceil(in_bits / dma_bits), Resources(), None, None,
                          {"bits_per_frame": in_bits, "dma_bits": dma_bits}),
            LayerEstimate("output DMA", "dma", math.ceil(out_bits / dma_bits), Resources(), None, None,
                          {"bits_per_frame": out_bits, "dma_bits": dma_bits}))


def total(estimates: list, infrastructure: Resources | None = None) -> Resources:
    """The sum of the `.res` of `estimates` (layer estimates or folding choices) and the infrastructure."""
    acc = infrastructure or Resources()
    for e in estimates:
        acc = acc + e.res
    return acc
