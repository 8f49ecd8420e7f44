"""Memory layouts of the HLS templates: MVAU weights in the PE x SIMD folding, thresholds, C literals.

The layout contract is the one of hls_templates/mvau.h: output row r = nf*PE + pe belongs to PE lane
`pe`; its columns [sf*SIMD, (sf+1)*SIMD) form tile nf*SF + sf of that lane, element s of a tile at bits
[s*WB, (s+1)*WB) (two's complement for signed weights). A tile is one word of the narrowest of
8/16/32/64 bits that holds it (memories as wide as their data), or WPT = ceil(SIMD*WB/64) little-endian
64-bit words. Thresholds: t[pe][nf] belongs to row nf*PE + pe, stored in the narrowest signed type
holding the accumulator.
"""

from __future__ import annotations

import numpy as np

from bnn_flow.conventions import pack_bits


def word_bits_for(bits: int) -> int:
    """The narrowest C integer type (8, 16, 32 or 64 bits) holding `bits` bits; 64 above that."""
    return next((b for b in (8, 16, 32) if bits <= b), 64)


def tile_words(simd: int, wbits: int) -> tuple[int, int]:
    """(WORDBITS, WPT): a tile of SIMD*WB bits is WPT words of WORDBITS bits."""
    wb = word_bits_for(simd * wbits)
    return wb, -(-simd * wbits // wb)


def pack_mvau_weights(w: np.ndarray, pe: int, simd: int, wbits: int) -> np.ndarray:
    """(MH, MW) integer weights (bits for binary layers) -> (PE, TILES, WPT) words of tile_words() bits
    (uint8 .. uint64).

    Pre: MH % pe == 0, MW % simd == 0, every weight fits `wbits` bits (two's complement if negative).
    """
    mh, mw = w.shape
    nf, sf = mh // pe, mw // simd
    tiles = w.reshape(nf, pe, sf, simd).transpose(1, 0, 2, 3).reshape(pe, nf * sf, simd)
    elems = tiles.astype(np.int64) & ((1 << wbits) - 1)  # two's complement low bits
    tile_bits = simd * wbits
    if tile_bits <= 64:  # one word per tile: shift the elements into place (no per-bit arrays)
        word = np.zeros(tiles.shape[:2], dtype=np.uint64)
        for s in range(simd):
            word |= elems[:, :, s].astype(np.uint64) << np.uint64(s * wbits)
        return word.astype(f"uint{word_bits_for(tile_bits)}")[:, :, None]
    bits = (elems[..., None] >> np.arange(wbits)) & 1  # (PE, TILES, SIMD, WB), element s bit b
    return pack_bits(bits.reshape(pe, nf * sf, tile_bits))


def fold_thresholds(t: np.ndarray | None, mh: int, pe: int, tbits: int = 64) -> np.ndarray:
    """(MH,) or (MH, L) thresholds -> int`tbits` (PE, NF * L), lane pe's t[pe][nf * L + l] = T[nf * PE + pe, l];
    zeros (PE, NF) for a layer without thresholds (unused there).
    Pre: every threshold fits tbits signed bits (the plan clamps them into the accumulator's range)."""
    dtype = f"int{tbits}"
    if t is None:
        return np.zeros((pe, mh // pe), dtype=dtype)
    t = np.asarray(t, dtype=np.int64).reshape(mh, -1)
    info = np.iinfo(dtype)
    if t.size and (t.min() < info.min or t.max() > info.max):
        raise ValueError(f"thresholds do not fit {dtype}")
    levels = t.shape[1]
    return t.reshape(mh // pe, pe, levels).transpose(1, 0, 2).reshape(pe, -1).astype(dtype)


C_TYPES = {np.dtype(f"{k}int{b}"): f"{k}int{b}_t" for k in ("", "u") for b in (8, 16, 32, 64)}


def c_literals(a: np.ndarray) -> str:
    """Comma-separated C integer literals of a flat integer array (hex for values >= 2^63)."""
    flat = np.asarray(a).ravel()
    if flat.dtype == np.uint64 and flat.size and int(flat.max()) >= 1 << 63:
        return ",".join(f"{v:#x}" for v in flat.tolist())
    if flat.dtype != np.uint64 and flat.size and int(flat.min()) == -(1 << 63):
        raise ValueError("INT64_MIN cannot be written as a C literal")
    return ",".join(map(str, flat.tolist()))


def c_array(name: str, a: np.ndarray) -> str:
    """A C definition `const T name[d0][d1]... = {...};` (T from a's dtype) with a flat initializer (fast to
    parse), preceded by its extern declaration (so that the const array has external linkage)."""
    ctype = C_TYPES[a.dtype]
    dims = "".join(f"[{d}]" for d in a.shape)
    return f"extern const {ctype} {name}{dims};\nconst {ctype} {name}{dims} = {{{c_literals(a)}}};\n"
