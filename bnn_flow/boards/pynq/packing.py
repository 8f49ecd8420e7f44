"""Packing of frames into the AXI DMA byte stream of a bnn-flow overlay, and back (numpy only).

This file runs on the board (PYNQ's Python, numpy only) and in bnn-flow's tests; it imports nothing
from bnn-flow. Its layout must agree bit for bit with the AXI-Stream wrapper that bnn-flow generates
(bnn_flow/backends/hls/templates/axis_top.cpp.j2); the numbers come from overlay.json, written by `bnn-flow bitstream`.

Byte layout (one stream direction; the input and the output each have their own `StreamLayout`):

* A frame (one image in, one score vector out) is `frame_elems` integers: the input in NHWC order, the
  output in class order (the last layer's integer accumulators). It is sent as `beats_per_frame` core
  beats of `elems_per_beat` elements each; elements beyond `frame_elems` in the last beat are zero on
  the way in and ignored on the way out.
* Element i of a beat sits at bits [i*elem_bits, (i+1)*elem_bits) of the beat's integer, LSB first,
  in two's complement when `signed` (the HLS core's `ap_uint<W>` beat). Bits above
  elems_per_beat*elem_bits are zero.
* The DMA bus is `bus_bits` wide (a width AXI DMA supports, a multiple of 8). A core beat travels as
  `words_per_beat` consecutive bus words, lowest bits first, so in memory a core beat is simply its
  integer in little-endian order over `bytes_per_beat` = words_per_beat*bus_bits/8 bytes (AXI DMA puts
  the lowest address on TDATA[7:0]).
* Frames follow each other with no gaps: a batch of N frames is N*bytes_per_frame bytes, one DMA
  transfer; the wrapper raises TLAST on the last output word of the batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class StreamLayout:
    """How one direction's frames map to bytes (see the module docstring)."""

    frame_elems: int
    elems_per_beat: int
    elem_bits: int
    signed: bool
    beats_per_frame: int
    bus_bits: int
    words_per_beat: int

    def __post_init__(self) -> None:
        if not 1 <= self.elem_bits <= 62:
            raise ValueError(f"elem_bits must be in [1, 62] (int64 arithmetic), got {self.elem_bits}")
        if self.bus_bits % 8 or self.bus_bits <= 0:
            raise ValueError(f"bus_bits must be a positive multiple of 8, got {self.bus_bits}")
        if self.elems_per_beat * self.elem_bits > self.bus_bits * self.words_per_beat:
            raise ValueError("a core beat does not fit in words_per_beat bus words")
        if self.frame_elems > self.elems_per_beat * self.beats_per_frame:
            raise ValueError("frame_elems exceeds beats_per_frame * elems_per_beat")

    @property
    def bytes_per_beat(self) -> int:
        return self.words_per_beat * self.bus_bits // 8

    @property
    def bytes_per_frame(self) -> int:
        return self.beats_per_frame * self.bytes_per_beat

    @property
    def lo(self) -> int:
        return -(1 << (self.elem_bits - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        return (1 << (self.elem_bits - 1)) - 1 if self.signed else (1 << self.elem_bits) - 1

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(d: dict) -> StreamLayout:
        return StreamLayout(**{k: d[k] for k in StreamLayout.__dataclass_fields__})


def pack(values: np.ndarray, layout: StreamLayout) -> np.ndarray:
    """Frames -> the DMA byte buffer.

    Pre: values has shape (N, ...) with frame_elems elements per frame (NHWC order for the input), all
    integers in the element type's range. Post: uint8 array of N*bytes_per_frame bytes.
    """
    v = np.asarray(values)
    n = v.shape[0]
    v = v.reshape(n, -1).astype(np.int64)
    if v.shape[1] != layout.frame_elems:
        raise ValueError(f"a frame has {v.shape[1]} elements, the stream takes {layout.frame_elems}")
    if v.size and (v.min() < layout.lo or v.max() > layout.hi):
        raise ValueError(f"values outside [{layout.lo}, {layout.hi}] for {layout.elem_bits}-bit elements")
    slots = layout.beats_per_frame * layout.elems_per_beat
    padded = np.zeros((n, slots), np.int64)
    padded[:, : layout.frame_elems] = v
    u = padded & ((1 << layout.elem_bits) - 1)  # two's complement in elem_bits
    bits = ((u[..., None] >> np.arange(layout.elem_bits)) & 1).astype(np.uint8)
    bits = bits.reshape(n, layout.beats_per_frame, layout.elems_per_beat * layout.elem_bits)
    beat_bits = layout.bytes_per_beat * 8
    full = np.zeros((n, layout.beats_per_frame, beat_bits), np.uint8)
    full[..., : bits.shape[-1]] = bits
    return np.packbits(full, axis=-1, bitorder="little").reshape(-1)


def unpack(buf: np.ndarray, frames: int, layout: StreamLayout) -> np.ndarray:
    """The DMA byte buffer -> frames.

    Pre: buf holds at least frames*bytes_per_frame bytes (uint8). Post: int64 (frames, frame_elems),
    sign-extended when the elements are signed; padding elements and padding bits are dropped.
    """
    need = frames * layout.bytes_per_frame
    b = np.asarray(buf, dtype=np.uint8).reshape(-1)
    if b.size < need:
        raise ValueError(f"buffer holds {b.size} bytes, {frames} frames need {need}")
    bits = np.unpackbits(b[:need].reshape(frames, layout.beats_per_frame, layout.bytes_per_beat),
                         axis=-1, bitorder="little")
    used = layout.elems_per_beat * layout.elem_bits
    bits = bits[..., :used].reshape(frames, layout.beats_per_frame, layout.elems_per_beat, layout.elem_bits)
    u = (bits.astype(np.int64) << np.arange(layout.elem_bits)).sum(-1)
    if layout.signed:
        u = np.where(u >= (1 << (layout.elem_bits - 1)), u - (1 << layout.elem_bits), u)
    return u.reshape(frames, -1)[:, : layout.frame_elems]
