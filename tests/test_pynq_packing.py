"""board/pynq/packing.py: round trips, an independent big-integer model of the byte layout, bad input."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from bnn_flow.boards import PYNQ_DRIVER_DIR

PACKING = PYNQ_DRIVER_DIR / "packing.py"
_spec = importlib.util.spec_from_file_location("bnn_pynq_packing", PACKING)
packing = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = packing  # dataclasses look their module up while the class is built
_spec.loader.exec_module(packing)
StreamLayout = packing.StreamLayout

LAYOUTS = [
    # frame_elems, elems_per_beat, elem_bits, signed, beats_per_frame, bus_bits, words_per_beat
    (784, 1, 8, False, 784, 8, 1),  # MNIST pixels one per beat
    (3 * 5 * 5, 3, 8, True, 25, 32, 1),  # CNV-like INT8 RGB: 24-bit beats on a 32-bit bus
    (10, 10, 16, True, 1, 64, 3),  # 160-bit output beat over three 64-bit words
    (10, 4, 11, True, 3, 64, 1),  # padding elements in the last beat, odd element width
    (130, 65, 1, False, 2, 64, 2),  # bits: 65-bit beats over two words
    (7, 7, 33, True, 1, 128, 2),  # wide accumulators across words
]


def _layout(t) -> StreamLayout:
    return StreamLayout(*t)


def _random_frames(lay: StreamLayout, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(lay.lo, lay.hi + 1, size=(n, lay.frame_elems), dtype=np.int64)


def _bigint_model(frames: np.ndarray, lay: StreamLayout) -> bytes:
    """The layout written out with Python integers: beat = sum(u_i << i*elem_bits), little-endian bytes."""
    out = bytearray()
    slots = lay.beats_per_frame * lay.elems_per_beat
    for frame in frames:
        vals = [int(v) for v in frame] + [0] * (slots - lay.frame_elems)
        for b in range(lay.beats_per_frame):
            beat = 0
            for i, v in enumerate(vals[b * lay.elems_per_beat : (b + 1) * lay.elems_per_beat]):
                beat |= (v & ((1 << lay.elem_bits) - 1)) << (i * lay.elem_bits)
            out += beat.to_bytes(lay.bytes_per_beat, "little")
    return bytes(out)


@pytest.mark.parametrize("t", LAYOUTS)
def test_pack_matches_bigint_model_and_round_trips(t):
    lay = _layout(t)
    q = _random_frames(lay, 5, seed=sum(t[:3]))
    q[0, :] = lay.lo  # the extremes: sign bits and all-ones patterns
    q[1, :] = lay.hi
    buf = packing.pack(q, lay)
    assert buf.dtype == np.uint8 and buf.size == 5 * lay.bytes_per_frame
    assert buf.tobytes() == _bigint_model(q, lay)
    np.testing.assert_array_equal(packing.unpack(buf, 5, lay), q)


def test_pack_takes_nhwc_frames_and_json_round_trip():
    lay = StreamLayout(4 * 4 * 3, 3, 8, False, 16, 32, 1)
    q = np.random.default_rng(1).integers(0, 256, size=(2, 4, 4, 3))
    assert StreamLayout.from_json(lay.to_json()) == lay
    buf = packing.pack(q, lay)
    # NHWC order: the first beat is pixel (0, 0)'s three channels, then a zero pad byte.
    assert list(buf[:4]) == [*q[0, 0, 0], 0]
    np.testing.assert_array_equal(packing.unpack(buf, 2, lay).reshape(q.shape), q)


def test_unpack_sign_extends_and_ignores_padding_bits():
    lay = StreamLayout(2, 2, 4, True, 1, 16, 1)
    buf = np.array([0xF8, 0xFF], np.uint8)  # elements 0x8 = -8 and 0xF = -1; bits above 8 are padding
    np.testing.assert_array_equal(packing.unpack(buf, 1, lay), [[-8, -1]])


@pytest.mark.parametrize("values,match", [
    (np.full((1, 3), 128), "outside"),  # 128 does not fit INT8
    (np.zeros((1, 4)), "frame has 4 elements"),
])
def test_pack_refuses_bad_frames(values, match):
    with pytest.raises(ValueError, match=match):
        packing.pack(values, StreamLayout(3, 3, 8, True, 1, 32, 1))


def test_layout_checks():
    with pytest.raises(ValueError, match="does not fit"):
        StreamLayout(5, 5, 8, False, 1, 32, 1)
    with pytest.raises(ValueError, match="multiple of 8"):
        StreamLayout(1, 1, 8, False, 1, 12, 1)
    with pytest.raises(ValueError, match="buffer holds"):
        packing.unpack(np.zeros(3, np.uint8), 1, StreamLayout(1, 1, 8, False, 1, 32, 1))


def test_driver_head_matches_bnn_flow_head():
    """The board driver's copy of the classifier head agrees with bnn_flow.head (scores and tie-breaking)."""
    from bnn_flow.head import apply_head, labels_of

    spec = importlib.util.spec_from_file_location("bnn_pynq_driver", PACKING.parent / "driver.py")
    driver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(driver)  # pynq is imported only when an overlay is opened
    head = {"scale": [0.5, -1.25, 2.0, 0.5], "bias": [0.1, 3.0, -2.0, 0.1], "acc_to_dot": [2, -9]}
    acc = np.random.default_rng(3).integers(0, 10, size=(50, 4))
    acc[0] = [9, 9, 0, 9]  # classes 0 and 3 tie at the top (4.6): the lowest index wins
    scores, labels = driver.apply_head(head, acc)
    ref = apply_head(head, acc * 2 - 9)
    np.testing.assert_array_equal(scores, ref)
    np.testing.assert_array_equal(labels, labels_of(ref))
    assert labels[0] == 0
