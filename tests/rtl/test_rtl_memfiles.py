"""bnn_flow.backends.rtl.memfiles: the $readmemh images hold exactly the HLS layout (backends/hls/layout.py:
tile nf*SF + sf of lane pe = row nf*PE + pe, columns sf*SIMD ...), lanes side by side, two's complement."""

from __future__ import annotations

import numpy as np
import pytest

from bnn_flow.backends.hls.layout import fold_thresholds, pack_mvau_weights
from bnn_flow.backends.rtl import memfiles


def _words(text: str) -> list[int]:
    return [int(line, 16) for line in text.split()]


@pytest.mark.parametrize("mh,mw,pe,simd,wbits,signed", [(8, 12, 2, 4, 1, False), (6, 130, 3, 65, 1, False),
                                                         (8, 27, 4, 3, 2, True), (4, 40, 2, 20, 4, True),
                                                         (5, 9, 5, 1, 1, False), (16, 64, 16, 64, 1, False)])
def test_weights_match_hls_layout(mh, mw, pe, simd, wbits, signed):
    rng = np.random.default_rng(mh * mw)
    lo, hi = (-(1 << (wbits - 1)), 1 << (wbits - 1)) if signed else (0, 1 << wbits)
    w = rng.integers(lo, hi, (mh, mw))
    lines = _words(memfiles.mvau_weight_memh(w, pe, simd, wbits))
    hls = pack_mvau_weights(w, pe, simd, wbits)  # (PE, TILES, WPT) little-endian words
    tile_bits = simd * wbits
    word_bits = hls.dtype.itemsize * 8
    assert len(lines) == (mh // pe) * (mw // simd)
    for t, line in enumerate(lines):
        for lane in range(pe):
            want = sum(int(v) << (word_bits * j) for j, v in enumerate(hls[lane, t]))
            assert (line >> (lane * tile_bits)) & ((1 << tile_bits) - 1) == want, (t, lane)
        assert line >> (pe * tile_bits) == 0


def test_thresholds_lanes_and_twos_complement():
    t = np.array([-5, 0, 7, -1, 3, -8], dtype=np.int64)
    lines = _words(memfiles.mvau_threshold_memh(t, 6, 3, 4))
    folded = fold_thresholds(t, 6, 3, 8)  # (PE, NF)
    assert len(lines) == 2
    for nf, line in enumerate(lines):
        for lane in range(3):
            assert (line >> (4 * lane)) & 15 == int(folded[lane, nf]) & 15
    assert memfiles.mvau_threshold_memh(None, 4, 2, 5) == "000\n000\n"


def test_bipolar_one_bit_and_format():
    w = np.array([[-1, 1, 1, -1, -1, -1, 1, 1, 1]])
    assert memfiles.mvau_weight_memh(w, 1, 9, 1, bipolar=True) == "1c6\n"  # bits 011000111, LSB first
    assert memfiles.mvau_weight_memh(w, 1, 9, 2) == "15fd7\n"  # -1 -> 11, +1 -> 01 (2 bits each)
    with pytest.raises(ValueError):
        memfiles.mvau_weight_memh(w, 1, 9, 1)  # -1 does not fit one unsigned bit
    with pytest.raises(ValueError):
        memfiles.mvau_threshold_memh(np.array([16]), 1, 1, 5)
    with pytest.raises(ValueError):
        memfiles.mvau_weight_tiles(np.zeros((4, 6)), 3, 2)


def test_latency_formula():
    assert memfiles.mvau_tree_latency(1, True, 2) == 0
    assert memfiles.mvau_tree_latency(64, True, 2) == 2  # ceil(64/3) = 22 partial counts: 5 levels
    assert memfiles.mvau_tree_latency(27, False, 2) == 2  # 5 levels
    assert memfiles.mvau_tree_latency(27, False, 0) == 0
    assert memfiles.mvau_latency(27, False, 1) == 10  # 5 + 5 levels (the weights read in two registers)
