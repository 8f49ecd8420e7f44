"""The host side of the board (bnn_flow/backends/rtl/board_link.py): against a Python model of board_top.v
behind a fake serial port (every error path), against the bytes the simulation of board_top.v (bit by bit on
its UART pins) really sent, and through a real pseudo-terminal with pyserial."""

from __future__ import annotations

import json
import os
import threading
import time
import tty

import numpy as np
import pytest
from test_rtl_uart import WAIT, Core, board_params, layout, session, simulate

from bnn_flow.backends.rtl import board_protocol as bp
from bnn_flow.backends.rtl.board_link import BoardLink, BoardTarget, load_layout, open_serial
from bnn_flow.backends.rtl.board_protocol import Layout
from bnn_flow.build import Build
from bnn_flow.errors import BadInputError, CheckFailedError, MissingToolError

CORE = Core()


class FakeBoard:
    """board_top.v's protocol in Python behind a serial port's read/write (a pyserial stand-in)."""

    def __init__(self, core: Core, lay: Layout, mode: str = "ok") -> None:
        self.core, self.lay, self.mode = core, lay, mode  # mode: ok, silent, overflow, mute_frame, other_design
        self.timeout: float | None = 0.1
        self.out = bytearray()
        self.pending = bytearray()
        self.closed = False

    def write(self, data: bytes) -> int:
        self.pending += data
        while self.pending and self.mode != "silent":
            cmd = bytes(self.pending[:1])
            if cmd == bp.CMD_INFO:
                info = self.lay.info()
                if self.mode == "other_design":
                    info = bp.Info(**{**info.__dict__, "design_id": info.design_id ^ 1})
                self.out += info.pack()
                del self.pending[:1]
            elif cmd == bp.CMD_FRAME:
                n = 1 + self.lay.in_elems * self.lay.in_bytes
                if len(self.pending) < n:
                    break
                raw = np.frombuffer(bytes(self.pending[1:n]), dtype=np.uint8).reshape(-1, self.lay.in_bytes)
                del self.pending[:n]
                if self.mode == "overflow":
                    self.out += bp.STATUS_OVERFLOW
                elif self.mode != "mute_frame":
                    q = self.decode(raw)
                    acc = self.core.reference(q[None, :])[0]
                    words = np.zeros(self.lay.out_words, dtype="<i4")
                    words[: len(acc)] = acc
                    self.out += bp.STATUS_OK + words.tobytes() + (1234).to_bytes(4, "little")
            else:
                self.out += bp.NAK
                del self.pending[:1]
        return len(data)

    def decode(self, raw: np.ndarray) -> np.ndarray:
        v = sum(raw[:, k].astype(np.int64) << (8 * k) for k in range(raw.shape[1])) & ((1 << self.lay.in_bits) - 1)
        if self.lay.in_signed:
            v = np.where(v >> (self.lay.in_bits - 1), v - (1 << self.lay.in_bits), v)
        return v

    def read(self, size: int) -> bytes:
        if not self.out:
            time.sleep(min(self.timeout or 0, 0.01))
        data = bytes(self.out[:size])
        del self.out[:size]
        return data

    def reset_input_buffer(self) -> None:
        self.out.clear()

    def close(self) -> None:
        self.closed = True


def fake_build(tmp_path, core: Core, lay: Layout) -> Build:
    """A folder with what the board target reads: BUILD/rtl (the accelerator) and BUILD/bitstream/board.json."""
    rtl = tmp_path / "build" / "rtl"
    rtl.mkdir(parents=True)
    (rtl / "bnn_top.v").write_text(core.verilog())
    (rtl / "rtl_project.json").write_text(json.dumps(core.project()))
    from bnn_flow.backends.rtl.flow_project import load_project

    lay = Layout(**{**lay.to_json(), "design_id": bp.design_id(load_project(rtl).design_files)})
    (tmp_path / "build" / "bitstream").mkdir()
    (tmp_path / "build" / "bitstream" / "board.json").write_text(json.dumps({"board": "fake", **lay.to_json()}))
    return Build(tmp_path / "build")


def target_with(mode: str, lay: Layout) -> tuple[BoardTarget, list[FakeBoard]]:
    boards: list[FakeBoard] = []

    def opener(port: str, baud: int) -> FakeBoard:
        assert baud == lay.baud
        boards.append(FakeBoard(CORE, lay, mode))
        return boards[-1]

    t = BoardTarget("board", open_port=opener)
    t.configure(port="/dev/fake")
    return t, boards


@pytest.fixture()
def setup(tmp_path):
    lay0 = layout(CORE, board_params(CORE, cpb=25))
    build = fake_build(tmp_path, CORE, lay0)
    return build, load_layout(build)


def test_board_target_runs_frames(setup):
    build, lay = setup
    t, boards = target_with("ok", lay)
    q = CORE.frames(5, seed=1)
    np.testing.assert_array_equal(t.run_integer(build, q), CORE.reference(q))
    assert boards[0].closed and t.last_run["frames"] == 5 and t.last_run["core_cycles"] == 1234


@pytest.mark.parametrize("mode,message", [
    ("other_design", "runs another design: design_id"),
    ("silent", "answered 0 of 24 bytes"),
    ("overflow", "input buffer overflowed"),
    ("mute_frame", "no reply from the board"),
])
def test_board_target_errors(setup, mode, message):
    build, lay = setup
    t, boards = target_with(mode, lay)
    with pytest.raises(CheckFailedError, match=message):
        t.run_integer(build, CORE.frames(1, seed=1))
    assert boards[0].closed


def test_board_target_refuses_what_it_cannot_run(setup, tmp_path, monkeypatch):
    build, lay = setup
    t = BoardTarget("board")
    assert "no serial port" in t.available()
    with pytest.raises(BadInputError, match="takes no --baud"):
        t.configure(baud=9600)
    (build.backend_dir("rtl") / "bnn_top.v").write_text(CORE.verilog() + "// re-folded\n")
    with pytest.raises(BadInputError, match="changed since the bitstream"):
        load_layout(build)
    assert "is missing" in t.unsupported(Build(tmp_path / "nothing"))
    monkeypatch.setitem(__import__("sys").modules, "serial", None)
    with pytest.raises(MissingToolError, match="pip install pyserial"):
        open_serial("/dev/ttyUSB0", 115200)


def test_frame_encoding_and_checks():
    lay = layout(Core(in_eb=12, in_signed=True, in_epb=1, in_beats=3), board_params(CORE, 8))
    req = lay.frame_request(np.array([-1, 2047, -2048]))
    assert req == b"F" + bytes([0xFF, 0xFF, 0xFF, 0x07, 0x00, 0xF8])  # two bytes each, sign-extended
    with pytest.raises(BadInputError, match="outside"):
        lay.frame_request(np.array([0, 2048, 0]))
    with pytest.raises(BadInputError, match="takes 3"):
        lay.frame_request(np.array([1, 2]))
    with pytest.raises(CheckFailedError, match="not a bnn-flow info block"):
        bp.Info.parse(b"HELLO" + bytes(19))


def test_host_against_the_simulated_board(tmp_path):
    """The bytes the Verilator simulation of board_top.v sent, read by BoardLink: the host's requests must be the
    simulated host's bytes exactly, and its decoding must give the reference accumulators."""
    core = Core(in_eb=10, in_signed=True, in_epb=3, in_beats=4, classes=5, out_epb=2, out_eb=24)
    params = board_params(core, cpb=8)
    lay = layout(core, params)
    q = core.frames(3, seed=11)
    stim, _ = session(lay, q)
    replies = simulate(tmp_path, core, params, stim, "icarus")
    requests = [w for w in stim if not w & WAIT]

    class Replay:
        """Serves the simulation's replies after checking each request byte against the simulated host's."""

        def __init__(self) -> None:
            self.timeout, self.sent, self.pos, self.data = 0.1, 0, 0, bytearray()

        def write(self, data: bytes) -> int:
            assert list(data) == requests[self.sent:self.sent + len(data)]
            self.sent += len(data)
            self.data = bytearray(replies)
            return len(data)

        def read(self, size: int) -> bytes:
            out = bytes(self.data[self.pos:self.pos + size])
            self.pos += len(out)
            return out

        def reset_input_buffer(self) -> None:
            pass

    link = BoardLink(Replay(), "the simulation", lay.baud)
    lay.check(link.info(), "the simulation")
    acc, cycles, _ = link.run(lay, q)
    np.testing.assert_array_equal(acc, core.reference(q))
    assert all(c > core.in_beats for c in cycles)


def test_pyserial_through_a_pseudo_terminal(setup):
    """pyserial opens a real tty (a pty pair): the Python board model answers on the other end."""
    pytest.importorskip("serial")
    build, lay = setup
    master, slave = os.openpty()
    tty.setraw(master)
    board = FakeBoard(CORE, lay)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            board.write(data)
            while board.out:
                os.write(master, board.read(4096))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        t = BoardTarget("board")
        t.configure(port=os.ttyname(slave))
        q = CORE.frames(3, seed=4)
        np.testing.assert_array_equal(t.run_integer(build, q), CORE.reference(q))
    finally:
        stop.set()
        os.close(slave)
        os.close(master)
