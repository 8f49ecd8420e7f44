"""Memory-init files ($readmemh text) of the Verilog MVAU (verilog/bnn_mvau.v).

Layout (the PE x SIMD folding of hls_templates/mvau.h and backends/hls/layout.py): output row r = nf*PE + pe
belongs to PE lane pe; its columns [sf*SIMD, (sf+1)*SIMD) form tile t = nf*SF + sf of that lane.

* Weights (WEIGHT_FILE): TILES = NF*SF lines, line t one word of PE*SIMD*WB bits holding tile t of every lane
  side by side: element s of lane pe at bits [(pe*SIMD + s)*WB, +WB), two's complement low WB bits (binary
  layers: the weight bits themselves, WB = 1). One wide word per tile lets yosys infer a single ROM per layer
  that it spreads over as many block RAMs as the width needs (narrow lanes share a block).
* Thresholds (THRESH_FILE): NF lines, line nf one word of PE*AB bits, lane pe (row nf*PE + pe) at bits
  [pe*AB, +AB), two's complement.

Each line is the word in hexadecimal, most significant digit first, ceil(bits/4) digits, as $readmemh reads it.
Every function is pure: arrays in, text out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_HEX = np.array(list("0123456789abcdef"))


def hex_lines(bits: np.ndarray) -> str:
    """(rows, nbits) array of bits (bit j of a word at column j, LSB first) -> one hex word per line."""
    bits = np.asarray(bits, dtype=np.uint8)
    rows, nbits = bits.shape
    digits = max(1, -(-nbits // 4))
    padded = np.zeros((rows, digits * 4), dtype=np.uint8)
    padded[:, :nbits] = bits
    nibbles = padded.reshape(rows, digits, 4) @ np.array([1, 2, 4, 8], dtype=np.uint8)
    chars = _HEX[nibbles[:, ::-1]]  # most significant digit first
    return "".join("".join(row) + "\n" for row in chars)


def _twos_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """Signed or unsigned integers -> their low `bits` bits (two's complement), shape (..., bits), LSB first."""
    v = np.asarray(values, dtype=np.int64) & ((1 << bits) - 1)
    return ((v[..., None] >> np.arange(bits)) & 1).astype(np.uint8)


def check_fits(values: np.ndarray, bits: int, signed: bool, what: str) -> None:
    """Raise ValueError unless every value is representable in `bits` bits (two's complement when signed)."""
    v = np.asarray(values, dtype=np.int64)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if v.size and (v.min() < lo or v.max() > hi):
        kind = "signed" if signed else "unsigned"
        raise ValueError(f"{what}: values in [{v.min()}, {v.max()}] do not fit {bits} {kind} bits")


def mvau_weight_tiles(weights: np.ndarray, pe: int, simd: int) -> np.ndarray:
    """(MH, MW) weights -> (TILES, PE, SIMD): tile nf*SF + sf of lane pe = row nf*PE + pe, columns sf*SIMD ...

    Pre: MH % pe == 0 and MW % simd == 0.
    """
    w = np.asarray(weights, dtype=np.int64)
    mh, mw = w.shape
    if pe < 1 or simd < 1 or mh % pe or mw % simd:
        raise ValueError(f"illegal folding PE={pe} SIMD={simd} for MH={mh} MW={mw}")
    nf, sf = mh // pe, mw // simd
    return w.reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, pe, simd)


def mvau_weight_memh(weights: np.ndarray, pe: int, simd: int, wbits: int, *, signed: bool | None = None,
                     bipolar: bool = False) -> str:
    """The WEIGHT_FILE text of bnn_mvau: TILES lines of PE*SIMD*WB bits (see the module docstring).

    weights: (MH, MW) int64, bits 0/1 for binary layers (wbits = 1), signed integers for integer layers.
    signed: whether the weights are two's complement (default: when any is negative) - only checked here.
    bipolar: weights are -1/+1 stored as one bit each, -1 -> 0 and +1 -> 1 (bnn_mvau's WBIPOLAR = 1, wbits = 1).
    """
    w = np.asarray(weights, dtype=np.int64)
    if bipolar:
        if wbits != 1 or not np.all(np.abs(w) == 1):
            raise ValueError("bipolar weights must be -1/+1 with wbits = 1")
        w = (w > 0).astype(np.int64)
    else:
        check_fits(w, wbits, bool(w.size and w.min() < 0) if signed is None else signed, "weights")
    tiles = mvau_weight_tiles(w, pe, simd)  # (TILES, PE, SIMD)
    bits = _twos_bits(tiles, wbits)  # (TILES, PE, SIMD, WB): element (pe, s) at bit (pe*SIMD + s)*WB + b
    return hex_lines(bits.reshape(tiles.shape[0], pe * simd * wbits))


# The ECP5 DP16KD's shapes (words, bits a word; 512 x 36 in pseudo-dual-port mode): estimate.ECP5's block
# shapes and bnn_rom.v's BANK_DEPTH both come from this table
DP16KD_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))


def rom_bank_depth(width: int) -> int:
    """bnn_rom.v's BANK_DEPTH: the words of one DP16KD at the narrowest of its widths that holds `width` bits
    (512 for wider words, which sit side by side in several blocks)."""
    return next((depth for depth, w in DP16KD_SHAPES if width <= w), DP16KD_SHAPES[-1][0])


def rom_bank_files(name: str, text: str, width: int) -> dict[str, str]:
    """The bank files bnn_rom.v reads when the open flow builds a ROM deeper than one block from banks
    (`BNN_ROM_BANKS): <name>.000, .001, ... with rom_bank_depth(width) lines of `text` each (zeros after its
    last line); none when the ROM fits one bank."""
    lines = text.splitlines(keepends=True)
    depth = rom_bank_depth(width)
    if len(lines) <= depth:
        return {}
    banks = -(-len(lines) // depth)
    lines += ["0" * max(1, -(-width // 4)) + "\n"] * (banks * depth - len(lines))  # the last bank filled up
    return {f"{name}.{b:03d}": "".join(lines[b * depth:(b + 1) * depth]) for b in range(banks)}


def mvau_threshold_memh(thresholds: np.ndarray | None, mh: int, pe: int, abits: int) -> str:
    """The THRESH_FILE text of bnn_mvau: NF lines of PE*LEVELS*AB bits, threshold l of lane pe of line nf (row
    nf*PE + pe) at bits [(pe*LEVELS + l)*AB +: AB].

    thresholds: (MH,) or (MH, LEVELS) int64, each within AB-bit two's complement (the plan clamps them into the
    accumulator range); None (a layer without thresholds) gives all-zero lines, which bnn_mvau with THRESH = 0
    ignores.
    """
    if mh % pe:
        raise ValueError(f"illegal folding PE={pe} for MH={mh}")
    t = np.zeros((mh, 1), dtype=np.int64) if thresholds is None else np.asarray(thresholds, dtype=np.int64)
    t = t.reshape(mh, -1) if t.size and t.size % mh == 0 else t
    if t.ndim != 2 or t.shape[0] != mh:
        raise ValueError(f"thresholds: expected {mh} rows, got shape {t.shape}")
    check_fits(t, abits, True, "thresholds")
    levels = t.shape[1]
    lanes = t.reshape(mh // pe, pe, levels)  # line nf, lane pe, threshold l
    return hex_lines(_twos_bits(lanes, abits).reshape(mh // pe, pe * levels * abits))


def mvau_tree_latency(simd: int, binary: bool, stage_levels: int) -> int:
    """Cycles of bnn_mvau's reduction tree for a SIMD and STAGE_LEVELS (bnn_popcount / bnn_adder_tree)."""
    n = -(-simd // 3) if binary else simd
    if stage_levels <= 0 or n <= 1:
        return 0
    return (n - 1).bit_length() // stage_levels


def mvau_latency(simd: int, binary: bool, stage_levels: int = 2) -> int:
    """Cycles from an iteration's issue in bnn_mvau to its result on out_* (when no output stall)."""
    return 5 + mvau_tree_latency(simd, binary, stage_levels)


__all__ = ["check_fits", "hex_lines", "mvau_latency", "mvau_threshold_memh", "mvau_tree_latency",
           "mvau_weight_memh", "mvau_weight_tiles", "rom_bank_depth", "rom_bank_files"]


def class_map_memh(rows: Sequence[int], cols: Sequence[int], classes: int) -> str:
    """bnn_mvau's CLASS_FILE: each output row's pad class, then each output column's, in clog2(CLASSES) bits."""
    width = max(1, (classes - 1).bit_length())
    values = np.asarray([*rows, *cols], dtype=np.int64)
    return hex_lines((values[:, None] >> np.arange(width)[None, :]) & 1)
