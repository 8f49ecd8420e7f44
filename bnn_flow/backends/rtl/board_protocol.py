"""The UART protocol between the host and board_top.v (verilog/board_top.v; docs/open-flow.md).

8N1; every multi-byte number little-endian. One request at a time: the host sends a command and reads the
whole reply before it sends the next one.

* ``I`` (0x49) -> 24 bytes of information (`Info`): magic ``BNNF``, protocol version, flags, the input
  element bits and bytes, input elements and output words per frame, the design id (the flow's hash of the
  accelerator it built, `design_id`) and the design clock in Hz. The host checks them against the build
  before it sends a frame (`Layout.check`), so it never feeds one design's integers to another.
* ``F`` (0x46) + one frame -> ``K`` + the accumulators (int32 each, class order) + the core's cycle count
  (u32), or ``E`` alone (the input buffer overflowed; the board reset the core). A frame is every input
  element of one image in the core's stream order (NHWC), each in `in_bytes` little-endian bytes,
  sign-extended when the elements are signed; the board keeps the low `in_bits` bits.
* Any other byte -> ``?``.

Pure functions and dataclasses only (no I/O): the host link (board_link.py), the flow (which writes the
numbers into BUILD/bitstream/board.json) and the tests share them.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bnn_flow.errors import BadInputError, CheckFailedError

MAGIC = b"BNNF"
VERSION = 1
CMD_INFO, CMD_FRAME = b"I", b"F"
STATUS_OK, STATUS_OVERFLOW, NAK = b"K", b"E", b"?"
INFO_BYTES = 24
BITS_PER_BYTE_ON_LINE = 10  # 8N1: start + 8 data + stop
MAX_OUT_BITS = 32  # the board sends each accumulator as an int32
_INFO = struct.Struct("<4sBBBBIIII")


@dataclass(frozen=True)
class Info:
    """What board_top answers to ``I``."""

    version: int
    in_signed: bool
    store_and_forward: bool  # the whole frame is buffered before the core starts: cycles are the core's own
    in_bits: int
    in_bytes: int
    in_elems: int
    out_words: int
    design_id: int
    clock_hz: int

    @staticmethod
    def parse(data: bytes) -> Info:
        """The info block; CheckFailedError when it is not one (wrong length or magic: not our design)."""
        if len(data) != INFO_BYTES or data[:4] != MAGIC:
            raise CheckFailedError(f"the board's answer to 'I' is {data[:INFO_BYTES].hex() or 'nothing'}, not a "
                                   f"bnn-flow info block (magic {MAGIC.decode()}): is the bitstream of "
                                   "bnn-flow bitstream --flow open loaded, and the port the board's?")
        magic, version, flags, in_bits, in_bytes, in_elems, out_words, design, clock = _INFO.unpack(data)
        return Info(version, bool(flags & 1), bool(flags & 2), in_bits, in_bytes, in_elems, out_words, design, clock)

    def pack(self) -> bytes:
        flags = int(self.in_signed) | int(self.store_and_forward) << 1
        return _INFO.pack(MAGIC, self.version, flags, self.in_bits, self.in_bytes, self.in_elems, self.out_words,
                          self.design_id, self.clock_hz)


@dataclass(frozen=True)
class Layout:
    """One design's frames on the wire: what the host needs to talk to it (BUILD/bitstream/board.json)."""

    in_bits: int  # input element bits
    in_signed: bool
    in_elems: int  # elements per frame on the wire (beats x elements per beat; the host zero-pads)
    frame_elems: int  # elements of one image (<= in_elems)
    out_words: int  # int32 words per reply (beats x elements per beat)
    classes: int  # the first `classes` words are the accumulators
    design_id: int
    clock_hz: int
    baud: int
    store_and_forward: bool

    @property
    def in_bytes(self) -> int:
        return -(-self.in_bits // 8)

    @property
    def request_bytes(self) -> int:
        return 1 + self.in_elems * self.in_bytes

    @property
    def reply_bytes(self) -> int:
        return 1 + 4 * self.out_words + 4

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(d: dict, where: str) -> Layout:
        try:
            return Layout(**{k: d[k] for k in Layout.__dataclass_fields__})
        except (KeyError, TypeError) as e:
            raise BadInputError(f"{where} is not a board layout ({e}): run bnn-flow bitstream --flow open again") \
                from None

    def info(self) -> Info:
        """The info block a board running this design answers."""
        return Info(VERSION, self.in_signed, self.store_and_forward, self.in_bits, self.in_bytes, self.in_elems,
                    self.out_words, self.design_id, self.clock_hz)

    def check(self, info: Info, port: str) -> None:
        """The board runs this design; CheckFailedError naming what differs otherwise."""
        want = self.info()
        if info != want:
            diff = [f"{k} {getattr(info, k)} (expected {getattr(want, k)})" for k in want.__dataclass_fields__
                    if getattr(info, k) != getattr(want, k)]
            raise CheckFailedError(f"the board on {port} runs another design: {', '.join(diff)}; load this "
                                   "build's bitstream (BUILD/bitstream) onto it")

    def frame_request(self, frame: np.ndarray) -> bytes:
        """``F`` + one frame's elements (`frame_elems` integers in stream order) as bytes."""
        q = np.asarray(frame, dtype=np.int64).reshape(-1)
        if q.size != self.frame_elems:
            raise BadInputError(f"a frame has {q.size} input integers, the design takes {self.frame_elems}")
        lo, hi = (-(1 << (self.in_bits - 1)), (1 << (self.in_bits - 1)) - 1) if self.in_signed else \
            (0, (1 << self.in_bits) - 1)
        if q.size and (q.min() < lo or q.max() > hi):
            raise BadInputError(f"input integers outside [{lo}, {hi}] ({self.in_bits}-bit "
                                f"{'signed' if self.in_signed else 'unsigned'}): not this design's input")
        wire = np.zeros(self.in_elems, dtype=np.int64)
        wire[: q.size] = q
        # two's complement in in_bytes bytes (sign extension of negative elements), little-endian
        raw = (wire & ((1 << (8 * self.in_bytes)) - 1)).astype("<u8").view(np.uint8).reshape(-1, 8)
        return CMD_FRAME + raw[:, : self.in_bytes].tobytes()

    def parse_reply(self, data: bytes) -> tuple[np.ndarray, int]:
        """(the `classes` accumulators, the core's cycle count) from a complete ``K`` reply."""
        if data[:1] == STATUS_OVERFLOW:
            raise CheckFailedError("the board's input buffer overflowed (a core slower than the UART with a frame "
                                   "larger than its buffer): the board reset the core; no result")
        if len(data) != self.reply_bytes or data[:1] != STATUS_OK:
            raise CheckFailedError(f"the board's reply to a frame is {len(data)} bytes starting {data[:4].hex()}, "
                                   f"expected {self.reply_bytes} starting {STATUS_OK.hex()}")
        words = np.frombuffer(data[1:1 + 4 * self.out_words], dtype="<i4").astype(np.int64)
        (cycles,) = struct.unpack("<I", data[-4:])
        return words[: self.classes], cycles

    def uart_fps(self) -> float:
        """Frames per second the UART allows, one request at a time (request and reply in turn)."""
        return self.baud / (BITS_PER_BYTE_ON_LINE * (self.request_bytes + self.reply_bytes))


def design_id(files: Iterable[Path]) -> int:
    """A 32-bit id of the accelerator: SHA-256 over the names and bytes of its files (sources, memory files,
    rtl_project.json), so that a board running another build, or another folding, is told apart."""
    h = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        data = path.read_bytes()
        h.update(path.name.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
    return int.from_bytes(h.digest()[:4], "little")
