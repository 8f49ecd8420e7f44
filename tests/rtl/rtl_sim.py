"""Simulation helpers of the RTL library tests: pack stream beats, generate a testbench top that drives any
number of module instances (each through tests/rtl/stream_harness.v, with its own stimulus, stall pattern and
output record), build and run it with Icarus Verilog or Verilator, and read the records back.

A `Case` is one module instance with its parameters, input beats and expected output beats. One simulation
runs many cases side by side (one compile, one process), each case in its own harness.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from bnn_flow.backends.rtl.layers import Bits
from bnn_flow.conventions import IntType

REPO = Path(__file__).resolve().parents[2]
VERILOG_DIR = REPO / "bnn_flow" / "backends" / "rtl" / "verilog"
HARNESS = Path(__file__).resolve().parent / "stream_harness.v"
LIBRARY = sorted(VERILOG_DIR.glob("*.v"))


def need(tool: str) -> str:
    """The path of an external tool, or skip the test with the reason."""
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not installed (apt-get install -y iverilog verilator)")
    return path


# --- element types: the plan's own (bnn_flow.conventions.IntType) -----------------------------------------

BIT = IntType(1, False)


# --- beats -------------------------------------------------------------------------------------------------

def pack(elems: np.ndarray, per_beat: int, bits: int) -> list[int]:
    """Flat integer elements -> beats of `per_beat` elements, element i at bits [i*bits, +bits) (two's
    complement low bits), as Python ints."""
    e = np.asarray(elems, dtype=np.int64).reshape(-1, per_beat) & ((1 << bits) - 1)
    out = []
    for row in e.tolist():
        v = 0
        for i, x in enumerate(row):
            v |= x << (i * bits)
        out.append(v)
    return out


def unpack(beats: list[int], per_beat: int, bits: int, signed: bool) -> np.ndarray:
    """Inverse of pack: beats -> flat int64 elements."""
    mask = (1 << bits) - 1
    out = np.empty(len(beats) * per_beat, dtype=np.int64)
    k = 0
    for v in beats:
        for i in range(per_beat):
            x = (v >> (i * bits)) & mask
            if signed and x >> (bits - 1):
                x -= 1 << bits
            out[k] = x
            k += 1
    return out


# --- cases and the generated top ------------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    module: str
    params: dict[str, int | str]
    in_w: int
    out_w: int
    beats_in: list[int]
    expected: list[int]
    seed: int = 1
    p_valid: int = 256  # x/256
    p_ready: int = 256
    files: dict[str, str] = field(default_factory=dict)  # extra files (name -> text), e.g. memory images
    work: int = 0  # cycles the case needs without stalls, if more than its beats in + out (sets the timeout)
    got: list[int] = field(default_factory=list)
    cycles: list[int] = field(default_factory=list)


def _param(v: int | str) -> str:
    if isinstance(v, Bits):
        return v.literal()
    return f'"{v}"' if isinstance(v, str) else str(int(v))


def _instance(i: int, c: Case, d: Path) -> str:
    """A harness and the module under test, on a clock that stops DRAIN cycles after the case is done (so a
    finished case costs no simulation time; `clk | stop` has no glitch: stop rises just after a rising edge)."""
    p = f"c{i}_"
    dut_params = ",\n    ".join(f".{k}({_param(v)})" for k, v in c.params.items())
    return f"""
  // case {i}: {c.name}
  reg {p}stop = 1'b0;
  integer {p}drain = 0;
  wire {p}clk = clk | {p}stop;
  always @(posedge clk) if ({p}done) begin
    {p}drain <= {p}drain + 1;
    if ({p}drain == DRAIN) {p}stop <= 1'b1;
  end
  wire {p}iv, {p}ir, {p}ov, {p}or, {p}done;
  wire [{c.in_w - 1}:0] {p}id;
  wire [{c.out_w - 1}:0] {p}od;
  stream_harness #(.IN_W({c.in_w}), .OUT_W({c.out_w}), .N_IN({max(1, len(c.beats_in))}),
    .N_OUT({len(c.expected)}), .IN_FILE("{d / f"in{i}.hex"}"), .OUT_FILE("{d / f"out{i}.txt"}"),
    .SEED({c.seed}), .P_VALID({c.p_valid}), .P_READY({c.p_ready})) h{i} (
    .clk({p}clk), .rst(rst), .in_valid({p}iv), .in_ready({p}ir), .in_data({p}id),
    .out_valid({p}ov), .out_ready({p}or), .out_data({p}od), .done({p}done));
  {c.module} #(
    {dut_params}
  ) d{i} (
    .clk({p}clk), .rst(rst), .in_valid({p}iv), .in_ready({p}ir), .in_data({p}id),
    .out_valid({p}ov), .out_ready({p}or), .out_data({p}od));
"""


def write_top(cases: list[Case], d: Path, max_cycles: int) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for i, c in enumerate(cases):
        digits = max(1, -(-c.in_w // 4))
        (d / f"in{i}.hex").write_text("".join(f"{b:0{digits}x}\n" for b in c.beats_in) or "0\n")
        for name, text in c.files.items():
            (d / name).write_text(text)
    done = " & ".join(f"c{i}_stop" for i in range(len(cases)))
    body = "".join(_instance(i, c, d) for i, c in enumerate(cases))
    top = d / "tb_top.v"
    top.write_text(f"""`timescale 1ns / 1ps
module tb_top;
  reg clk = 1'b0;
  reg rst = 1'b1;
  integer t = 0;
  localparam integer DRAIN = 64;  // cycles a finished case keeps running: an extra output beat would show
  always #5 clk = ~clk;
{body}
  wire all_stopped = {done};
  always @(posedge clk) begin
    t <= t + 1;
    if (t == 3) rst <= 1'b0;
    if (all_stopped) begin
      $fflush();
      $finish;
    end
    if (t == {max_cycles}) begin
      $display("TIMEOUT after {max_cycles} cycles");
      $fflush();
      $finish;
    end
  end
endmodule
""")
    return top


def _read_records(cases: list[Case], d: Path) -> None:
    for i, c in enumerate(cases):
        lines = (d / f"out{i}.txt").read_text().split()
        c.cycles = [int(x) for x in lines[0::2]]
        c.got = [int(x, 16) for x in lines[1::2]]


def timeout_cycles(cases: list[Case]) -> int:
    """A generous bound for the slowest case (the cases run side by side), stalls included."""
    return 8 * max(max(c.work, len(c.beats_in) + len(c.expected)) for c in cases) + 5000


def run_icarus(cases: list[Case], d: Path, max_cycles: int | None = None) -> str:
    """Compile and run the cases with Icarus Verilog (iverilog -g2012, vvp); fills Case.got / Case.cycles."""
    iverilog, vvp = need("iverilog"), need("vvp")
    top = write_top(cases, d, max_cycles or timeout_cycles(cases))
    exe = d / "sim.vvp"
    proc = subprocess.run([iverilog, "-g2012", "-Wall", "-Wno-timescale", "-o", str(exe), "-s", "tb_top", str(top),
                           str(HARNESS), *map(str, LIBRARY)], capture_output=True, text=True, cwd=d)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = subprocess.run([vvp, "-n", str(exe)], capture_output=True, text=True, cwd=d)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "TIMEOUT" not in run.stdout and "ERROR" not in run.stdout, run.stdout[-3000:]
    _read_records(cases, d)
    return proc.stderr


def run_verilator(cases: list[Case], d: Path, max_cycles: int | None = None) -> None:
    """The same with Verilator (--binary --timing): proves Verilator accepts and simulates the cases."""
    verilator = need("verilator")
    top = write_top(cases, d, max_cycles or timeout_cycles(cases))
    obj = d / "obj"
    jobs = str(min(2, os.cpu_count() or 1))
    proc = subprocess.run([verilator, "--binary", "--timing", "-j", jobs, "-Wno-fatal", "-Wno-lint", "-Wno-style",
                           "--top-module", "tb_top", "-Mdir", str(obj), "-o", "sim", str(top), str(HARNESS),
                           *map(str, LIBRARY)], capture_output=True, text=True, cwd=d)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    run = subprocess.run([str(obj / "sim")], capture_output=True, text=True, cwd=d)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "TIMEOUT" not in run.stdout and "ERROR" not in run.stdout, run.stdout[-3000:]
    _read_records(cases, d)


def check(cases: list[Case]) -> None:
    """Every case produced exactly its expected beats, in order."""
    bad = []
    for c in cases:
        if c.got != c.expected:
            n = min(len(c.got), len(c.expected))
            first = next((k for k in range(n) if c.got[k] != c.expected[k]), n)
            bad.append(f"{c.name}: {len(c.got)} beats, expected {len(c.expected)}; first difference at beat {first}")
    assert not bad, "\n".join(bad)


def frame_periods(c: Case, frames: int) -> list[int]:
    """Cycles between the last output beats of consecutive frames (steady-state cycles per frame)."""
    per = len(c.got) // frames
    ends = [c.cycles[(f + 1) * per - 1] for f in range(frames)]
    return [b - a for a, b in zip(ends, ends[1:], strict=False)]


def stalled_and_clean(name: str, module: str, params: dict, in_w: int, out_w: int, beats_in: list[int],
                      expected: list[int], seed: int, files: dict[str, str] | None = None,
                      work: int = 0) -> list[Case]:
    """Two instances of one configuration: random stalls on both sides (about 2 in 5 cycles idle on the input,
    1 in 3 not ready on the output), and none (for the cycle count)."""
    files = files or {}
    return [Case(f"{name} stalls", module, params, in_w, out_w, beats_in, expected, seed=seed, p_valid=150,
                 p_ready=170, files=files, work=work),
            Case(f"{name} clean", module, params, in_w, out_w, beats_in, expected, seed=seed + 1, work=work)]
