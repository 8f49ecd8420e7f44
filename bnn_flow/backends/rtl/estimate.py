"""Resource estimate of the RTL library's modules on Lattice ECP5 / iCE40 (LUT4, FF, DP16KD/EBR, MULT18).

The estimate works on a module's parameters (the very dict a stage of the RTL design carries), so the same
function costs a folding candidate during the search and a generated design afterwards. The constants were
fitted to yosys `synth_ecp5` over a grid of every module (bench/rtl_cost.py writes both side by side: rerun
it after a library or yosys change). LUT4 counts are LUT4 equivalents as nextpnr counts them: a CCU2C carry
cell is two, a TRELLIS_DPR16X4 LUT RAM four.

Memories follow yosys' own mapping rule (memory_libmap with the ECP5 libraries): every candidate mapping has
a cost and the cheapest wins: a DP16KD block costs 128, a TRELLIS_DPR16X4 (16 x 4 LUT RAM, RAMs only) 4, and a
memory left to logic 1/16 per bit (ROM: a LUT4 holds 16 x 1) or 1 per bit (RAM: flip-flops). Predicting
the mapping yosys will choose, instead of forcing one, keeps the generated Verilog free of tool pragmas.
One exception, a family rule (Fabric.rom_logic_max_bits): on ECP5 a ROM of more than 4 Kbit goes to block
RAM even where LUTs are cheaper by that count. A wide, shallow weight ROM in LUTs fans every address bit out
to thousands of LUTs: measured on one binary MVAU (576 x 128, PE 32, SIMD 64, 2,048 x 18 weight bits),
nextpnr-ecp5 needed 13 min to route it at 99.8 MHz with the weights in LUTs, and 28 s at 118.7 MHz with them
in 57 DP16KD (docs/open-flow.md). bnn_rom.v applies the same rule (the macro of yosys_defines).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from bnn_flow.backends.hls.estimate import LayerEstimate, Prices, Resources, dma_estimates
from bnn_flow.backends.hls.layers import Fmt
from bnn_flow.backends.rtl import memfiles
from bnn_flow.backends.rtl.design import DEFAULT_FIFO_DEPTH, design_of
from bnn_flow.backends.rtl.layers import FIFO, rtl_layer
from bnn_flow.plan import MaxPool, Mvau, Plan, Window

ROM_BIT_COST, RAM_BIT_COST = 1 / 16, 1.0  # yosys memory_libmap's costs of a memory left to logic, per bit
# fitted constants (bench/rtl_cost.py): LUT4 per XNOR-popcount input bit, per accumulator bit of a lane ...
POPCOUNT_LUT_PER_BIT = 4.4  # XNOR of 3 pairs + their 2-bit count: 6-input functions, ~3 LUT4 each
POPCOUNT_FF_PER_BIT = 1.0
INT_LUT_PER_PRODUCT_BIT = 3.7  # an integer lane: IB-bit input times a bipolar/WB-bit weight, then the tree
ACC_LUT_PER_BIT = 1.0  # accumulator adder (a CCU2C per two bits) + threshold compare
ACC_FF_PER_BIT = 3.0
MVAU_CONTROL = (100, 60)
ROM_LOGIC_FACTOR = 0.7  # (LUT4, FF): loop counters, output queue control
WINDOW_CONTROL = (350, 150)
POOL_CONTROL = (300, 80)
DWC_CONTROL = (30, 30)
FIFO_CONTROL = (12, 8)


@dataclass(frozen=True)
class Fabric:
    """What a family offers memories (yosys' share/<family>/*.txt libraries): block RAM shapes (depth, width)
    and cost, and whether it has 16 x 4 LUT RAM (ECP5 TRELLIS_DPR16X4, cost 4; iCE40 has none)."""

    name: str
    block: str
    block_shapes: tuple[tuple[int, int], ...]
    block_cost: int
    lut_ram: bool
    rom_logic_max_bits: int | None = None  # a larger ROM goes to block RAM (None: yosys' cost rule alone)
    rom_banks: bool = False  # a weight ROM deeper than one block is built from registered banks (bnn_rom.v)
    # an FF fed straight by another FF or a block RAM output takes a logic cell of its own whose LUT passes it
    # through (iCE40: one LUT4 + one FF per cell; an ECP5 slice feeds its FFs without the LUTs)
    bare_ff_lut: bool = False
    # of the other FFs, the share nextpnr-ice40 cannot pack with the LUT in front of them (fitted on the TFC
    # iCEBreaker builds with and without the weights' second register, 4,503 and 5,022 cells: within 1%)
    unpacked_ff_share: float = 0.0

    def logic_cells(self, lut4: int, ff: int) -> int:
        """What the LUT budget counts: LUT4 (ECP5 slices hold LUTs and FFs apart), or iCE40 logic cells."""
        return lut4 + round(self.unpacked_ff_share * ff)


# DP16KD: 18 Kbit, 512 x 36 in pseudo-dual-port mode; SB_RAM40_4K: 4 Kbit, 256 x 16
# ROM banks stay off on ECP5: measured on the fitted CNV, they lift nextpnr's Fmax from 80 to 87 MHz but double
# router1's time (485-560 s against 228 s), and the ULX3S design clock (75 MHz) is met without them
# (docs/open-flow.md, "Closing timing on the fitted CNV"); a faster clock would turn them on
ECP5 = Fabric("ecp5", "DP16KD", memfiles.DP16KD_SHAPES, 128, True, rom_logic_max_bits=4096, rom_banks=False)
ICE40 = Fabric("ice40", "SB_RAM40_4K", ((2048, 2), (1024, 4), (512, 8), (256, 16)), 64, False, bare_ff_lut=True,
               unpacked_ff_share=0.27)
DPR_COST = 4
FABRICS = {f.name: f for f in (ECP5, ICE40)}


def yosys_defines(fab: Fabric) -> list[str]:
    """read_verilog options that give bnn_rom.v the family's memory rule (the same rule as map_memory's)."""
    rule = [] if fab.rom_logic_max_bits is None else [f"-DBNN_ROM_LOGIC_MAX_BITS={fab.rom_logic_max_bits}"]
    return rule + (["-DBNN_ROM_BANKS"] if fab.rom_banks else [])


@dataclass(frozen=True)
class Mapping:
    """How yosys maps one memory: style block / distributed / logic / none, and what it costs."""

    style: str
    width: int
    depth: int
    lut4: int
    ff: int
    blocks: int

    def as_dict(self) -> dict:  # the HLS report's memory record (hls/estimate.Memory.as_dict)
        return {"style": self.style, "width": self.width, "depth": self.depth, "LUT": self.lut4,
                "BRAM18": self.blocks}


NO_MEMORY = Mapping("none", 0, 0, 0, 0, 0)


def block_layout(width: int, depth: int, fab: Fabric = ECP5) -> tuple[int, int]:
    """(blocks, blocks stacked in depth) of the block shape that needs the fewest blocks."""
    return min((math.ceil(width / w) * math.ceil(depth / d), math.ceil(depth / d)) for d, w in fab.block_shapes)


def blocks_for(width: int, depth: int, fab: Fabric = ECP5) -> int:
    return block_layout(width, depth, fab)[0]


def map_memory(width: int, depth: int, rom: bool, fab: Fabric = ECP5, banked: bool = False) -> Mapping:
    """The mapping of a width x depth memory that yosys' cost rule picks, and its LUT4/FF/DP16KD count.
    banked: a ROM read in two registers (bnn_rom LATENCY 2), built from banks when deeper than one block on a
    family with rom_banks; its count includes the second register."""
    if width <= 0 or depth <= 1:  # depth 1: a constant (ROM) or a register (RAM)
        return Mapping("none", width, depth, 0, 0 if rom else max(width, 0), 0)
    bits = width * depth
    blocks, stacked = block_layout(width, depth, fab)
    options = [(fab.block_cost * blocks, "block")]
    if rom:
        if fab.rom_logic_max_bits is None or bits <= fab.rom_logic_max_bits:
            options.append((ROM_BIT_COST * bits, "logic"))
    else:
        options.append((RAM_BIT_COST * bits, "logic"))
        if fab.lut_ram:
            cells = math.ceil(width / 4) * math.ceil(depth / 16)
            options.append((DPR_COST * cells + (width * (math.ceil(depth / 16) - 1) if depth > 16 else 0),
                            "distributed"))
    style = min(options)[1]
    bank_depth = memfiles.rom_bank_depth(width) if style == "block" and banked and fab.rom_banks else depth
    if depth > bank_depth:  # banks, each registered, then a mux
        banks = math.ceil(depth / bank_depth)
        return Mapping(style, width, depth, width * (banks - 1), width * banks,
                       banks * blocks_for(width, bank_depth, fab))
    second = width if banked else 0  # the second read register, fed by the first
    bare = second if fab.bare_ff_lut else 0
    if style == "block":  # blocks stacked in depth: a LUT mux per output bit and extra block
        return Mapping(style, width, depth, width * (stacked - 1) + bare, width + second, blocks)
    if style == "logic" and rom:  # a LUT4 per 16 words per bit, PFUMX/L6MUX above (free in a slice); ABC
        # shares some LUTs between the bits of a random ROM (ROM_LOGIC_FACTOR, fitted)
        return Mapping(style, width, depth, round(ROM_LOGIC_FACTOR * width * math.ceil(depth / 16)) + bare,
                       width + second, 0)
    if style == "distributed":  # DPR16X4 = 4 LUT4 equivalents, a 2:1 mux level per doubling above 16
        cells = math.ceil(width / 4) * math.ceil(depth / 16)
        return Mapping(style, width, depth, 4 * cells + width * (math.ceil(depth / 16) - 1), 0, 0)  # async read
    return Mapping(style, width, depth, width * max(depth // 4, 1), bits, 0)  # flip-flops and read muxes


@dataclass(frozen=True)
class Cost:
    """LUT4, FF, block RAM and multiplier counts of a module (or a sum of them)."""

    lut4: int = 0
    ff: int = 0
    blocks: int = 0
    mult18: int = 0

    def __add__(self, o: Cost) -> Cost:
        return Cost(self.lut4 + o.lut4, self.ff + o.ff, self.blocks + o.blocks, self.mult18 + o.mult18)

    def as_dict(self) -> dict[str, int]:
        return {"LUT4": self.lut4, "FF": self.ff, "DP16KD": self.blocks, "MULT18": self.mult18}


def _mem(m: Mapping) -> Cost:
    return Cost(m.lut4, m.ff, m.blocks)


def _class_rom(p: dict, classes: int, fab: Fabric) -> Mapping:
    """bnn_mvau's pad-class logic: two reads of the OH + OW line class map, the oy/ox counters, the class and
    the threshold word (constant multiplies: about two LUT4 per bit)."""
    cw, ow = max(1, (classes - 1).bit_length()), p["OW"]
    rom = map_memory(cw, p["PIXELS"] // ow + ow, rom=True, fab=fab)
    counters = math.ceil(math.log2(max(2, ow))) + math.ceil(math.log2(max(2, p["PIXELS"] // ow)))
    word = math.ceil(math.log2(max(2, classes * p["MH"] // p["PE"])))
    return Mapping("logic", cw, p["PIXELS"] // ow + ow, 2 * rom.lut4 + counters + 2 * (cw + word),
                   2 * rom.ff + counters + 2 * cw, 2 * rom.blocks)


def mvau_cost(p: dict, fab: Fabric = ECP5) -> tuple[Cost, dict]:
    mw, mh, simd, pe, ab = p["MW"], p["MH"], p["SIMD"], p["PE"], p["AB"]
    nf, sf = mh // pe, mw // simd
    db = p.get("DB", p["IB"])  # the dot product's element bits: a nonuniform activation's decoded levels (DECODE)
    if p["BINARY"]:
        lanes = Cost(round(pe * simd * POPCOUNT_LUT_PER_BIT), round(pe * simd * POPCOUNT_FF_PER_BIT))
    else:
        prod = db * (1 if p["WBIPOLAR"] else p["WB"])
        lanes = Cost(round(pe * simd * prod * INT_LUT_PER_PRODUCT_BIT), pe * simd * (db + 1))
    # DECODE: per input element, each level bit is a function of the IB index bits (one LUT4 per 4 of them)
    decode = Cost(simd * db * -(-p["IB"] // 4), 0) if p.get("DECODE") else Cost(0, 0)
    acc = Cost(round(pe * ab * ACC_LUT_PER_BIT), pe * ab * round(ACC_FF_PER_BIT))
    weights = map_memory(pe * simd * p["WB"], nf * sf, rom=True, fab=fab, banked=True)
    classes = p.get("CLASSES", 1)  # a zero-padded convolution: CLASSES x NF threshold words, a class ROM
    levels = p.get("LEVELS", 1)  # an n-bit activation: LEVELS thresholds per lane side by side, compared at once
    thresholds = (map_memory(pe * levels * ab, classes * nf, rom=True, fab=fab, banked=True) if p["THRESH"]
                  else NO_MEMORY)
    # the comparators beyond the first (which the accumulator's cost covers), and the count of those reached
    levels_cost = Cost(round(pe * (levels - 1) * ab * ACC_LUT_PER_BIT) + pe * (levels - 1), 0)
    class_rom = _class_rom(p, classes, fab) if classes > 1 else NO_MEMORY
    inbuf = map_memory(simd * p["IB"], sf, rom=False, fab=fab) if sf > 1 else NO_MEMORY
    x2 = simd * db  # the input beat's register beside the weights' second one (fed by the first)
    second_read = Cost(x2 if fab.bare_ff_lut else 0, x2)
    total = (lanes + acc + _mem(weights) + _mem(thresholds) + _mem(class_rom) + _mem(inbuf) + second_read
             + levels_cost + decode + Cost(*MVAU_CONTROL))
    return total, {"weights": weights.as_dict(), "thresholds": thresholds.as_dict(),
                   "input_buffer": inbuf.as_dict(), **({"classes": class_rom.as_dict()} if classes > 1 else {})}


def window_ring_rows(p: dict) -> int:
    """Rows of bnn_window's ring buffer (its header: B = max(KH + SH, H + KH - (OH-1)*SH))."""
    return max(p["KH"] + p["SH"], p["H"] + p["KH"] - (p["OH"] - 1) * p["SH"])


def window_cost(p: dict, fab: Fabric = ECP5) -> tuple[Cost, dict]:
    beat = p["SIMD"] * p["EB"]
    ring = map_memory(beat, window_ring_rows(p) * p["W"] * p["CH"] // p["SIMD"], rom=False, fab=fab)
    return _mem(ring) + Cost(2 * beat, beat) + Cost(*WINDOW_CONTROL), {"buffer": ring.as_dict()}


def maxpool_cost(p: dict, fab: Fabric = ECP5) -> tuple[Cost, dict]:
    beat, cg = p["PE"] * p["EB"], p["CH"] // p["PE"]
    hbanks = map_memory(beat, cg, rom=False, fab=fab)
    vbanks = map_memory(beat, p["OW"] * cg, rom=False, fab=fab)
    cmp = (p["KW"] - 1 + p["KH"] - 1) * beat * (1 if p["EB"] == 1 else 2)
    cost = Cost(p["KW"] * hbanks.lut4 + p["KH"] * vbanks.lut4 + cmp, p["KW"] * hbanks.ff + p["KH"] * vbanks.ff
                + 3 * beat, p["KW"] * hbanks.blocks + p["KH"] * vbanks.blocks)
    return cost + Cost(*POOL_CONTROL), {"buffer": vbanks.as_dict(), "row_buffer": hbanks.as_dict()}


def dwc_cost(p: dict, fab: Fabric = ECP5) -> tuple[Cost, dict]:
    w_in, w_out = p["IN_E"] * p["EB"], p["OUT_E"] * p["EB"]
    positions = max(w_in, w_out) // math.gcd(w_in, w_out)
    levels = max(1, math.ceil(math.log2(positions)))
    buf = w_in + w_out
    return Cost(buf * levels, buf) + Cost(*DWC_CONTROL), {}


def fifo_cost(p: dict, fab: Fabric = ECP5) -> tuple[Cost, dict]:
    width, depth = p["WIDTH"], p["DEPTH"]
    mem = map_memory(width, depth, rom=False, fab=fab)
    if depth >= p.get("BLOCK_DEPTH", 512):  # the block variant: a synchronous read and a 3-beat prefetch queue
        return _mem(mem) + Cost(2 * width + 12, 2 * width + 8), {"buffer": mem.as_dict()}
    return _mem(mem) + Cost(*FIFO_CONTROL), {"buffer": mem.as_dict()}


MODULES = {"bnn_mvau": mvau_cost, "bnn_window": window_cost, "bnn_maxpool": maxpool_cost, "bnn_dwc": dwc_cost,
           "bnn_fifo": fifo_cost}


def module_cost(module: str, params: dict, fab: Fabric = ECP5) -> tuple[Cost, dict]:
    """The estimate of one library module instance on `fab` and how its memories map."""
    return MODULES[module](params, fab)


def module_estimate(cfg: dict) -> dict[str, int]:
    """{LUT4, FF, DP16KD, MULT18} of {"module": name, **parameters} (bench/rtl_cost.py's rows)."""
    return module_cost(cfg["module"], {k: v for k, v in cfg.items() if k != "module"})[0].as_dict()


# --- the folding search's cost model of the open flow (backends/hls/cost.py's protocol) ----------------------

def _layer_estimate(fab: Fabric, name: str, kind: str, cycles: int, cost: Cost, pe: int | None, simd: int | None,
                    detail: dict) -> LayerEstimate:
    # Resources' keys are the budget's: LUT = LUT4, BRAM18 = DP16KD (18 Kbit) / EBR (4 Kbit), DSP = MULT18X18D /
    # SB_MAC16
    return LayerEstimate(name, kind, cycles, Resources(fab.logic_cells(cost.lut4, cost.ff), cost.blocks, cost.mult18),
                         pe, simd, {**detail, "FF": cost.ff})


class RtlCost:
    """The RTL library on a Lattice family: this module's resource formulas, the library's cycle formulas
    (layers.py), at the stages and edges design.py builds."""

    name = "rtl"
    memory_follows_prices = False  # yosys maps memories by its own costs (map_memory)

    def __init__(self, fab: Fabric, dsp: str):
        self.fab = fab
        lut = "LUT4" if not fab.unpacked_ff_share else "logic cell (LUT4 + FF)"
        self.units = {"LUT": lut, "BRAM18": fab.block, "DSP": dsp}

    def unit(self, m: Mvau, window: Window | None, pool: MaxPool | None, pe: int, simd: int,
             prices: Prices) -> list[LayerEstimate]:
        mf = dataclasses.replace(m, pe=pe, simd=simd)
        fin = Fmt(simd, m.in_dtype, m.mw * m.pixels)
        fout = Fmt(pe, m.out_dtype, m.mh * m.pixels)
        rule = rtl_layer(mf)
        cost, detail = module_cost(rule.module, rule.params(mf, fin, fout, "u"), self.fab)
        parts = [_layer_estimate(self.fab, m.name, "mvau", rule.cycles(mf, fin, fout), cost, pe, simd, detail)]
        if window is not None:
            wfin = Fmt(simd, window.dtype, math.prod(window.in_shape))
            wrule = rtl_layer(window)
            params = wrule.params(window, wfin, wfin, "u")
            cost, detail = module_cost(wrule.module, params, self.fab)
            parts.append(_layer_estimate(self.fab, window.name, "window", wrule.cycles(window, wfin, wfin), cost,
                                         None, simd, detail))
        if pool is not None:
            pfin = Fmt(pe, pool.dtype, math.prod(pool.in_shape))
            prule = rtl_layer(pool)
            cost, detail = module_cost(prule.module, prule.params(pool, pfin, pfin, "u"), self.fab)
            parts.append(_layer_estimate(self.fab, pool.name, "maxpool", prule.cycles(pool, pfin, pfin), cost, pe,
                                         None, detail))
        return parts

    def plan(self, plan: Plan, prices: Prices, dma_bits: int) -> list[LayerEstimate]:
        """One estimate per plan layer (a stage, the converter before it and the FIFO into it), between the
        input and output streams (dma_estimates: the open flow's board shell feeds the core from a frame
        buffer, dma_bits per cycle)."""
        design = design_of(plan)
        by_layer: dict[int, list] = {}
        pending = Cost()  # a converter's and FIFOs' cost, charged to the next layer's stage
        pending_detail: dict = {}
        for k, s in enumerate(design.stages):
            cost, detail = module_cost(s.module, s.params, self.fab)
            if k:
                fifo, _ = module_cost(FIFO.module, FIFO.params(s.fin, DEFAULT_FIFO_DEPTH), self.fab)
                cost = cost + fifo
            if s.layer is None:  # a width converter
                pending, pending_detail = pending + cost, {"dwc": [s.fin.width, s.fout.width]}
                continue
            by_layer[id(s.layer)] = [s, cost + pending, {**detail, **pending_detail}]
            pending, pending_detail = Cost(), {}
        dma_in, dma_out = dma_estimates(plan, dma_bits)
        out = [dma_in]
        for lay in plan.layers:
            if id(lay) in by_layer:
                s, cost, detail = by_layer[id(lay)]
                out.append(_layer_estimate(self.fab, lay.name, s.kind, s.cycles, cost, s.params.get("PE"),
                                           s.params.get("SIMD"), detail))
            else:  # a flatten: no stage
                out.append(LayerEstimate(lay.name, type(lay).__name__.lower(), 0, Resources()))
        return [*out, dma_out]


ECP5_COST = RtlCost(ECP5, "MULT18X18D")
ICE40_COST = RtlCost(ICE40, "SB_MAC16")
