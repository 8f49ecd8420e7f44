"""board_top.v (the UART board top) in simulation, bit by bit: a testbench plays the host, driving the rx
pin at the baud rate and decoding the tx pin; the bytes go through the host side of the protocol
(bnn_flow/backends/rtl/board_protocol.py) and the accumulators must equal a Python reference exactly.

The accelerator is a stand-in `bnn_top` written here (until the rtl target generates real ones): per frame,
acc[c] = sum_i s(i, c) * x_i with s = -1 where (i + c) % 3 == 0, else +1, over the frame's input elements in
stream order, sent as `classes` accumulators. It can accept only one beat every SLOW cycles (a core slower than
the UART) and holds its result LATENCY cycles. Also imported by test_rtl_flow*.py.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from rtl_sim import VERILOG_DIR, need

from bnn_flow.backends.rtl import board_protocol as bp
from bnn_flow.backends.rtl.board_protocol import Layout

BOARD_FILES = ["uart_rx.v", "uart_tx.v", "board_top.v", "bnn_fifo.v", "bnn_fifo_lut.v"]
WAIT, IDLE = 1 << 31, 1 << 30  # stimulus words: wait for N reply bytes in all / keep the line idle N bit times


@dataclass(frozen=True)
class Core:
    """The stand-in accelerator's streams (rtl_project.json's "in"/"out" and classes)."""

    in_epb: int = 2
    in_eb: int = 8
    in_signed: bool = False
    in_beats: int = 8
    classes: int = 4
    out_epb: int = 2
    out_eb: int = 20
    slow: int = 1  # cycles per accepted input beat
    latency: int = 5

    @property
    def in_w(self) -> int:
        return self.in_epb * self.in_eb + 3  # 3 unused bits: the board must zero-pad

    @property
    def out_beats(self) -> int:
        return -(-self.classes // self.out_epb)

    @property
    def out_w(self) -> int:
        return self.out_epb * self.out_eb

    def project(self) -> dict:
        return {"top": "bnn_top", "sources": ["bnn_top.v"], "library": [], "memfiles": [],
                "in": {"width": self.in_w, "elems_per_beat": self.in_epb, "elem_bits": self.in_eb,
                       "signed": self.in_signed, "beats_per_frame": self.in_beats,
                       "elems_per_frame": self.in_epb * self.in_beats},
                "out": {"width": self.out_w, "elems_per_beat": self.out_epb, "elem_bits": self.out_eb,
                        "signed": True, "beats_per_frame": self.out_beats,
                        "elems_per_frame": self.out_epb * self.out_beats},
                "classes": self.classes}

    def frames(self, n: int, seed: int) -> np.ndarray:
        lo, hi = (-(1 << (self.in_eb - 1)), 1 << (self.in_eb - 1)) if self.in_signed else (0, 1 << self.in_eb)
        return np.random.default_rng(seed).integers(lo, hi, (n, self.in_epb * self.in_beats))

    def reference(self, q: np.ndarray) -> np.ndarray:
        i = np.arange(q.shape[1])[:, None]
        c = np.arange(self.out_epb * self.out_beats)[None, :]
        s = np.where((i + c) % 3 == 0, -1, 1)
        return (q @ s)[:, : self.classes]

    def verilog(self) -> str:
        """The stand-in bnn_top (Verilog-2005)."""
        n_acc = self.out_epb * self.out_beats
        ext = (f"{{{{{self.out_eb - self.in_eb}{{in_data[e*{self.in_eb}+{self.in_eb - 1}]}}}}, "
               f"in_data[e*{self.in_eb} +: {self.in_eb}]}}" if self.in_signed else
               f"{{{self.out_eb - self.in_eb}'d0, in_data[e*{self.in_eb} +: {self.in_eb}]}}")
        return f"""// stand-in accelerator of tests/rtl/test_rtl_uart.py
`default_nettype none
module bnn_top (
    input wire clk, input wire rst,
    input wire in_valid, output wire in_ready, input wire [{self.in_w - 1}:0] in_data,
    output wire out_valid, input wire out_ready, output wire [{self.out_w - 1}:0] out_data);
  localparam integer EPB = {self.in_epb}, BEATS = {self.in_beats}, NACC = {n_acc}, OEB = {self.out_eb};
  localparam integer OEPB = {self.out_epb}, OBEATS = {self.out_beats}, SLOW = {self.slow}, LAT = {self.latency};
  reg [NACC*OEB-1:0] acc;
  reg [31:0] beat, obeat, wait_n, slow_n;
  reg [1:0] phase;
  reg sending;
  integer c, e;
  reg [OEB-1:0] a, x;
  assign in_ready = !sending && slow_n == 0;
  assign out_valid = sending && wait_n == 0;
  assign out_data = acc[obeat*OEPB*OEB +: OEPB*OEB];
  always @(posedge clk) begin
    if (rst) begin
      acc <= 0; beat <= 0; obeat <= 0; phase <= 0; sending <= 0; wait_n <= 0; slow_n <= 0;
    end else begin
      if (slow_n != 0) slow_n <= slow_n - 1;
      if (wait_n != 0) wait_n <= wait_n - 1;
      if (in_valid && in_ready) begin
        for (c = 0; c < NACC; c = c + 1) begin
          a = acc[c*OEB +: OEB];
          for (e = 0; e < EPB; e = e + 1) begin
            x = {ext};
            if ((phase + e + c) % 3 == 0) a = a - x; else a = a + x;
          end
          acc[c*OEB +: OEB] <= a;
        end
        phase <= (phase + EPB) % 3;
        slow_n <= SLOW - 1;
        beat <= beat + 1;
        if (beat == BEATS - 1) begin
          sending <= 1; beat <= 0; wait_n <= LAT;
        end
      end
      if (out_valid && out_ready) begin
        obeat <= obeat + 1;
        if (obeat == OBEATS - 1) begin
          sending <= 0; obeat <= 0; acc <= 0; phase <= 0;
        end
      end
    end
  end
endmodule
`default_nettype wire
"""


def board_params(core: Core, cpb: int, depth: int | None = None, timeout: int = 20000) -> dict[str, int]:
    return {"CLKS_PER_BIT": cpb, "IN_W": core.in_w, "IN_EPB": core.in_epb, "IN_EB": core.in_eb,
            "IN_SIGNED": int(core.in_signed), "IN_BEATS": core.in_beats, "OUT_W": core.out_w,
            "OUT_EPB": core.out_epb, "OUT_EB": core.out_eb, "OUT_SIGNED": 1, "OUT_BEATS": core.out_beats,
            "IN_FIFO_DEPTH": core.in_beats if depth is None else depth, "IN_FIFO_BLOCK": 0,
            "OUT_FIFO_DEPTH": max(2, core.out_beats), "DESIGN_ID": 0x1234ABCD, "CLK_HZ": 1000 * cpb,
            "TIMEOUT_CLKS": timeout}


def layout(core: Core, params: dict[str, int]) -> Layout:
    return Layout(in_bits=core.in_eb, in_signed=core.in_signed, in_elems=core.in_epb * core.in_beats,
                  frame_elems=core.in_epb * core.in_beats, out_words=core.out_epb * core.out_beats,
                  classes=core.classes, design_id=params["DESIGN_ID"], clock_hz=params["CLK_HZ"], baud=1000,
                  store_and_forward=params["IN_FIFO_DEPTH"] >= core.in_beats)


def host_testbench(params: dict[str, int], n_stim: int, host_clks: int, max_cycles: int) -> str:
    """The host: sends the stimulus bytes on rx with `host_clks` cycles per bit, decodes tx into reply.hex."""
    cpb = params["CLKS_PER_BIT"]
    plist = ",\n    ".join(f".{k}({v})" for k, v in params.items())
    return f"""`timescale 1ns / 1ps
module tb;
  reg clk = 1'b0, rst = 1'b1, rx = 1'b1;
  wire tx;
  wire [7:0] led;
  always #5 clk = ~clk;
  board_top #(
    {plist}
  ) dut (.clk(clk), .rst(rst), .uart_rx(rx), .uart_tx(tx), .led(led));
  reg [31:0] stim [0:{n_stim - 1}];
  integer got = 0, k, b, f, t = 0;
  reg [7:0] byte_in;
  initial begin
    $readmemh("stim.hex", stim);
    f = $fopen("reply.hex", "w");
    repeat (5) @(posedge clk);
    rst = 1'b0;
    repeat (3 * {cpb}) @(posedge clk);
    for (k = 0; k < {n_stim}; k = k + 1) begin
      if (stim[k][31]) begin
        while (got < stim[k][23:0]) @(posedge clk);
      end else if (stim[k][30]) begin
        repeat (stim[k][23:0] * {host_clks}) @(posedge clk);
      end else begin
        rx = 1'b0;
        repeat ({host_clks}) @(posedge clk);
        for (b = 0; b < 8; b = b + 1) begin
          rx = stim[k][b];
          repeat ({host_clks}) @(posedge clk);
        end
        rx = 1'b1;
        repeat ({host_clks}) @(posedge clk);
      end
    end
    repeat (30 * {cpb}) @(posedge clk);  // an extra reply byte would show
    $fclose(f);
    $finish;
  end
  // the host's receiver: wait for a start bit, sample each bit in its middle, check the stop bit
  initial begin
    forever begin
      @(negedge tx);
      repeat ({cpb // 2}) @(posedge clk);
      if (tx !== 1'b0) $display("ERROR: glitch on tx");
      for (b = 0; b < 8; b = b + 1) begin
        repeat ({cpb}) @(posedge clk);
        byte_in[b] = tx;
      end
      repeat ({cpb}) @(posedge clk);
      if (tx !== 1'b1) $display("ERROR: stop bit low");
      $fwrite(f, "%h\\n", byte_in);
      got = got + 1;
    end
  end
  always @(posedge clk) begin
    t <= t + 1;
    if (t == {max_cycles}) begin
      $display("TIMEOUT");
      $fclose(f);
      $finish;
    end
  end
endmodule
"""


def simulate(tmp: Path, core: Core, params: dict[str, int], stim: list[int], simulator: str = "verilator",
             host_clks: int | None = None) -> bytes:
    """Run board_top + the stand-in with the host testbench; the bytes the host received. Icarus for the
    short runs (no C++ build), Verilator for the case of test_board_top_frames_bit_exact that proves it."""
    tmp.mkdir(parents=True, exist_ok=True)
    cpb = params["CLKS_PER_BIT"]
    (tmp / "stim.hex").write_text("".join(f"{w:08x}\n" for w in stim))
    (tmp / "bnn_top.v").write_text(core.verilog())
    line_cycles = sum(cpb * 11 if w < IDLE else (w & 0xFFFFFF) * cpb * 2 for w in stim)
    tb = tmp / "tb.v"
    tb.write_text(host_testbench(params, len(stim), host_clks or cpb, 4 * line_cycles + 200_000))
    files = [str(tb), str(tmp / "bnn_top.v"), *[str(VERILOG_DIR / n) for n in BOARD_FILES]]
    if simulator == "verilator":
        obj = tmp / "obj"
        proc = subprocess.run([need("verilator"), "--binary", "--timing", "-j", "2", "-Wno-fatal", "-Wno-lint",
                               "-Wno-style", "--top-module", "tb", "-Mdir", str(obj), "-o", "sim", *files],
                              capture_output=True, text=True, cwd=tmp)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
        run = subprocess.run([str(obj / "sim")], capture_output=True, text=True, cwd=tmp)
    else:
        proc = subprocess.run([need("iverilog"), "-g2005", "-Wall", "-Wno-timescale", "-o", str(tmp / "sim.vvp"),
                               "-s", "tb", *files], capture_output=True, text=True, cwd=tmp)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        run = subprocess.run([need("vvp"), "-n", str(tmp / "sim.vvp")], capture_output=True, text=True, cwd=tmp)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "TIMEOUT" not in run.stdout and "ERROR" not in run.stdout, run.stdout[-2000:]
    return bytes(int(x, 16) for x in (tmp / "reply.hex").read_text().split())


def session(lay: Layout, q: np.ndarray, info: bool = True) -> tuple[list[int], int]:
    """The stimulus of a host session (info, then every frame, each waiting for its reply) and the reply length."""
    stim, expect = [], 0
    if info:
        stim += [ord("I")]
        expect += bp.INFO_BYTES
        stim += [WAIT | expect]
    for row in q:
        stim += list(lay.frame_request(row))
        expect += lay.reply_bytes
        stim += [WAIT | expect]
    return stim, expect


def split_replies(lay: Layout, data: bytes, frames: int) -> tuple[bp.Info, np.ndarray, list[int]]:
    info = bp.Info.parse(data[: bp.INFO_BYTES])
    accs, cycles = [], []
    for k in range(frames):
        start = bp.INFO_BYTES + k * lay.reply_bytes
        acc, cyc = lay.parse_reply(data[start:start + lay.reply_bytes])
        accs.append(acc)
        cycles.append(cyc)
    return info, np.array(accs), cycles


@pytest.mark.parametrize("simulator,core", [
    ("verilator", Core()),
    ("icarus", Core(in_epb=3, in_eb=12, in_signed=True, in_beats=5, classes=5, out_epb=2, out_eb=32, latency=0)),
    ("icarus", Core(in_epb=1, in_eb=1, in_beats=20, classes=3, out_epb=1, out_eb=9)),
])
def test_board_top_frames_bit_exact(tmp_path, simulator, core):
    """Info block, then frames: every accumulator exact, the cycle count the core's own (store and forward)."""
    params = board_params(core, cpb=8)
    lay = layout(core, params)
    q = core.frames(4, seed=3)
    stim, expect = session(lay, q)
    data = simulate(tmp_path, core, params, stim, simulator)
    assert len(data) == expect
    info, acc, cycles = split_replies(lay, data, len(q))
    lay.check(info, "the simulation")
    assert info.store_and_forward and info.design_id == 0x1234ABCD
    np.testing.assert_array_equal(acc, core.reference(q))
    # the core takes a beat a cycle: in_beats cycles, its latency, the output beats (+ FIFO hand-offs)
    assert all(core.in_beats + core.latency <= c <= core.in_beats + core.latency + core.out_beats + 8 for c in cycles)


@pytest.mark.parametrize("skew", [0.97, 1.03])
def test_host_clock_off_by_3_percent(tmp_path, skew):
    """The host's bit time 3% off the board's: the mid-bit sampling still reads every byte."""
    core = Core()
    params = board_params(core, cpb=25)
    lay = layout(core, params)
    q = core.frames(2, seed=5)
    stim, _ = session(lay, q)
    data = simulate(tmp_path, core, params, stim, "icarus", host_clks=round(25 * skew))
    np.testing.assert_array_equal(split_replies(lay, data, len(q))[1], core.reference(q))


def test_unknown_command_partial_frame_and_overflow(tmp_path):
    """'?' for an unknown byte; a frame cut short is dropped after the timeout and the next one is exact; a
    core slower than the UART behind a buffer smaller than the frame is reported ('E'), not hung."""
    core = Core(slow=400, in_beats=12)
    params = board_params(core, cpb=8, depth=2, timeout=3000)
    lay = layout(core, params)
    q = core.frames(2, seed=7)
    stim = [ord("x"), WAIT | 1]
    stim += list(lay.frame_request(q[0]))[:9] + [IDLE | 600]  # 9 bytes, then silence past the timeout
    stim += list(lay.frame_request(q[1])) + [WAIT | 2]  # overflows: answered with 'E' alone
    stim += [IDLE | 600, ord("I"), WAIT | (2 + bp.INFO_BYTES)]
    data = simulate(tmp_path, core, params, stim, "icarus")
    assert data[:2] == b"?E" and len(data) == 2 + bp.INFO_BYTES
    lay.check(bp.Info.parse(data[2:]), "the simulation")

    fast = replace(core, slow=1)  # the same buffer, a core as fast as the line: cut-through works
    stim, expect = session(lay, q, info=False)
    data = simulate(tmp_path / "fast", fast, params, stim, "icarus")
    assert len(data) == expect
    np.testing.assert_array_equal(np.array([lay.parse_reply(data[k * lay.reply_bytes:(k + 1) * lay.reply_bytes])[0]
                                            for k in range(2)]), fast.reference(q))


def test_board_top_lint(tmp_path):
    """verilator --lint-only -Wall: board_top and the UART over several parameter sets, no warning."""
    verilator = need("verilator")
    for core, extra in [(Core(), {}), (Core(in_epb=1, in_eb=16, in_signed=True, out_eb=32, out_epb=1), {}),
                        (Core(), {"IN_FIFO_DEPTH": 600, "IN_FIFO_BLOCK": 1})]:
        (tmp_path / "bnn_top.v").write_text(core.verilog())
        params = {**board_params(core, cpb=25), **extra}
        cmd = [verilator, "--lint-only", "-Wall", "-Wno-fatal", "--top-module", "board_top", *[f"-G{k}={v}" for k, v in
               params.items()], str(tmp_path / "bnn_top.v"), *[str(VERILOG_DIR / n) for n in BOARD_FILES]]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        warnings = [ln for ln in proc.stderr.splitlines() if "%Warning" in ln and "bnn_top.v" not in ln]
        assert proc.returncode == 0 and not warnings, proc.stderr[-3000:]
    for module in ("uart_rx", "uart_tx"):
        for cpb in (4, 25, 104):
            proc = subprocess.run([verilator, "--lint-only", "-Wall", "--top-module", module, f"-GCLKS_PER_BIT={cpb}",
                                   str(VERILOG_DIR / f"{module}.v")], capture_output=True, text=True)
            assert proc.returncode == 0 and "%Warning" not in proc.stderr, proc.stderr[-2000:]
