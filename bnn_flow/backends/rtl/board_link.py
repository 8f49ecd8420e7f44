"""The host side of a board built by the open flow (`bnn-flow run BUILD --target board --port /dev/ttyUSB0`):
frames over the USB-UART to board_top.v and the accumulators back (board_protocol.py says the bytes).

The host first asks the board for its info block and checks it against BUILD/bitstream/board.json (the
design the flow built: element sizes, frame sizes, clock and the design id, a hash of the accelerator's
files), and board.json against the build's current RTL, so that a board running another design, or a build
re-folded since its bitstream was made, is refused with one line instead of giving wrong numbers. Every read
has a deadline; after a timeout the host waits out the board's own frame timeout and drains the line, so the
next request starts clean. The serial port is opened with pyserial at the board file's baud rate (8N1, no flow
control). Not yet run against a physical board: tested against the Verilator simulation of board_top.v
and a Python model of it (tests/rtl/test_rtl_uart*.py).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import ClassVar, Protocol

import numpy as np

from bnn_flow.backends.base import Backend
from bnn_flow.build import Build
from bnn_flow.errors import BadInputError, CheckFailedError, MissingToolError

from .board_protocol import CMD_INFO, INFO_BYTES, STATUS_OK, STATUS_OVERFLOW, Info, Layout, design_id
from .flow_project import load_project

BOARD_JSON = "board.json"  # written by flow.py into BUILD/bitstream/
BOARD_TIMEOUT_S = 0.1  # board_top drops a stalled frame after this long (flow_project.TIMEOUT_S)
REPLY_MARGIN_S = 1.0  # on top of the line time: USB latency, the core's own time


class SerialPort(Protocol):
    """What the link needs of a port: pyserial's Serial has it, and so do the tests' fakes."""

    timeout: float | None

    def write(self, data: bytes) -> int | None: ...

    def read(self, size: int) -> bytes: ...

    def reset_input_buffer(self) -> None: ...

    def close(self) -> None: ...


def open_serial(port: str, baud: int) -> SerialPort:
    """The port at `baud`, 8N1, no flow control (pyserial)."""
    try:
        import serial  # pyserial: only the board target needs it
    except ImportError:
        raise MissingToolError("pyserial is not installed: pip install 'bnn-flow[fpga]' (or pip install pyserial): "
                               "the board target talks to the board's USB-UART through it") from None
    try:
        return serial.Serial(port, baudrate=baud, bytesize=8, parity="N", stopbits=1, timeout=0.1, rtscts=False,
                             xonxoff=False)
    except (serial.SerialException, OSError, ValueError) as e:
        raise BadInputError(f"cannot open the serial port {port} ({e}): is the board plugged in, and is the "
                            "port the board's?") from None


class BoardLink:
    """Requests to one board over one port; every reply read against a deadline."""

    def __init__(self, port: SerialPort, name: str, baud: int) -> None:
        self.port, self.name, self.baud = port, name, baud

    def line_time(self, nbytes: int) -> float:
        return nbytes * 10 / self.baud

    def read_exact(self, n: int, seconds: float) -> bytes:
        """n bytes, or fewer when the deadline passes first."""
        deadline = time.monotonic() + seconds
        out = bytearray()
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.port.timeout = min(left, 0.1)
            out += self.port.read(n - len(out))
        return bytes(out)

    def recover(self) -> None:
        """Let the board drop a half-received frame (its timeout), then drain whatever is still coming."""
        time.sleep(2 * BOARD_TIMEOUT_S)
        self.port.reset_input_buffer()

    def info(self) -> Info:
        self.port.reset_input_buffer()
        self.port.write(CMD_INFO)
        data = self.read_exact(INFO_BYTES, self.line_time(1 + INFO_BYTES) + REPLY_MARGIN_S)
        if len(data) < INFO_BYTES:
            self.recover()
            raise CheckFailedError(f"the board on {self.name} answered {len(data)} of {INFO_BYTES} bytes to 'I' at "
                                   f"{self.baud} baud: is the open flow's bitstream loaded, and the port the board's?")
        return Info.parse(data)

    def frame(self, lay: Layout, row: np.ndarray) -> tuple[np.ndarray, int]:
        """One frame's accumulators (lay.classes) and the core's cycle count for it."""
        request = lay.frame_request(row)
        self.port.write(request)
        wait = self.line_time(len(request) + lay.reply_bytes) + REPLY_MARGIN_S
        status = self.read_exact(1, wait)
        if status == STATUS_OVERFLOW:
            lay.parse_reply(status)  # raises with the explanation
        if status != STATUS_OK:
            self.recover()
            raise CheckFailedError(f"no reply from the board on {self.name} to a frame within {wait:.1f} s (got "
                                   f"{status.hex() or 'nothing'}): it was reset, or lost bytes on the line")
        rest = self.read_exact(lay.reply_bytes - 1, self.line_time(lay.reply_bytes) + REPLY_MARGIN_S)
        if len(rest) < lay.reply_bytes - 1:
            self.recover()
            raise CheckFailedError(f"the board on {self.name} sent {1 + len(rest)} of {lay.reply_bytes} reply bytes "
                                   "(its core gave no output within its timeout?)")
        return lay.parse_reply(status + rest)

    def run(self, lay: Layout, q: np.ndarray) -> tuple[np.ndarray, list[int], float]:
        """(accumulators N x classes, the core's cycles per frame, wall seconds) of frames q (N x elements)."""
        start = time.monotonic()
        accs, cycles = [], []
        for row in np.asarray(q).reshape(len(q), -1):
            acc, cyc = self.frame(lay, row)
            accs.append(acc)
            cycles.append(cyc)
        out = np.array(accs, dtype=np.int64).reshape(len(q), lay.classes)
        return out, cycles, time.monotonic() - start


def load_layout(build: Build) -> Layout:
    """BUILD/bitstream/board.json, checked against the build's current accelerator (a re-fold since the
    bitstream was made changes its files, so their id)."""
    path = build.backend_dir("bitstream") / BOARD_JSON
    if not path.is_file():
        raise BadInputError(f"{path} is missing: build the bitstream first (bnn-flow bitstream {build.path} "
                            "--flow open --board NAME) and load it onto the board")
    try:
        d = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInputError(f"{path} is not valid JSON ({e}): build the bitstream again") from None
    lay = Layout.from_json(d, str(path))
    rtl = build.backend_dir("rtl")
    now = design_id(load_project(rtl).design_files) if (rtl / "rtl_project.json").is_file() else lay.design_id
    if now != lay.design_id:
        raise BadInputError(f"{rtl} changed since the bitstream in {path.parent} was built (design id "
                            f"0x{now:08x}, the bitstream's 0x{lay.design_id:08x}): build and load the bitstream again")
    return lay


class BoardTarget(Backend):
    """`run --target board --port PORT`: the accelerator on a board built by the open flow, over its UART."""

    kind: ClassVar[str] = "integer"
    description: ClassVar[str] = "the open flow's bitstream on an FPGA board, over its USB-UART"
    options: ClassVar[tuple[str, ...]] = ("port",)

    def __init__(self, name: str, open_port: Callable[[str, int], SerialPort] = open_serial) -> None:
        super().__init__(name)
        self.port: str | None = None
        self.open_port = open_port
        self.last_run: dict | None = None

    def available(self) -> str | None:
        if self.port is None:
            return "no serial port given (bnn-flow run BUILD --target board --port /dev/ttyUSB0)"
        return None

    def unsupported(self, build: Build) -> str | None:
        path = build.backend_dir("bitstream") / BOARD_JSON
        return None if path.is_file() else f"{path} is missing: build it with bnn-flow bitstream --flow open"

    def run_integer(self, build: Build, q: np.ndarray) -> np.ndarray:
        lay = load_layout(build)
        if self.port is None:
            raise BadInputError(self.available())
        port = self.open_port(self.port, lay.baud)
        try:
            link = BoardLink(port, self.port, lay.baud)
            lay.check(link.info(), self.port)
            acc, cycles, seconds = link.run(lay, q)
        finally:
            port.close()
        n = len(q)
        cyc = int(np.median(cycles)) if cycles else 0
        self.last_run = {"frames": n, "seconds": seconds, "fps": n / seconds if seconds else None,
                         "core_cycles": cyc, "core_fps": lay.clock_hz / cyc if cyc else None,
                         "uart_fps": lay.uart_fps()}
        if n:
            print(f"board on {self.port}: {n} frames in {seconds:.2f} s ({n / seconds:.1f} frames/s over the UART, "
                  f"{lay.uart_fps():.1f} at most at {lay.baud} baud); the core: {cyc} cycles for a frame on its own "
                  f"({lay.clock_hz / max(cyc, 1):.0f} frames/s at {lay.clock_hz / 1e6:g} MHz)", file=sys.stderr)
        return acc

