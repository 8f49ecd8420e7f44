"""Cycle-accurate simulation of the generated RTL top with Verilator (`bnn-flow run BUILD --target rtl`).

`simulate(build, q, ...)` generates BUILD/rtl/ (codegen.py), builds the Verilator model with the hand-written
testbench (simbuild.py, cached), streams the frames of q (the graph's input integers, NHWC) through it back to
back in one process, and returns a `SimResult`: the int64 (N, classes) accumulators and the cycle record
(per-frame input/output cycles, per-stage handshake counts in the steady-state window, FIFO occupancies, and
each stage's own cycles per frame measured in isolation). Timing of every library module is independent of the
data, so random inputs measure the same cycles as real ones (fifo_sizing.py relies on that).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bnn_flow.backends.base import input_frames
from bnn_flow.backends.rtl import codegen, simbuild
from bnn_flow.backends.rtl.design import Design
from bnn_flow.build import Build, as_build
from bnn_flow.errors import BadInputError, CheckFailedError
from bnn_flow.plan import Plan
from bnn_flow.progress import progress

ISO_FRAMES = 2  # periods each stage runs alone: the last one (its second frame to its third) is measured
PROGRESS_STEPS = 50


@dataclass(frozen=True)
class Stalls:
    """Random stalls at the top ports: the input offers a beat in a cycle with probability p_valid/256, the
    output is ready with probability p_ready/256 (256: never stalls)."""

    p_valid: int = 256
    p_ready: int = 256
    seed: int = 1

    def __post_init__(self) -> None:
        if not (1 <= self.p_valid <= 256 and 1 <= self.p_ready <= 256):
            raise BadInputError(f"stall probabilities must be 1..256 (x/256), got p_valid={self.p_valid} "
                                f"p_ready={self.p_ready}")

    @property
    def any(self) -> bool:
        return self.p_valid < 256 or self.p_ready < 256


NO_STALLS = Stalls()


@dataclass
class SimResult:
    outputs: np.ndarray  # int64 (N, classes)
    frames: np.ndarray  # int64 (N, 4): first input beat, last input beat, first output beat, last output beat
    stats: dict  # the testbench's STATS.json (cycles, window, per-stage counts, FIFO occupancies, iso_ends)
    design: Design
    stalls: Stalls
    pace: float | None
    wall_s: float
    build_s: float
    overrides: dict[str, int] = field(default_factory=dict)

    def ii_window(self) -> tuple[int, int] | None:
        a, b = self.stats["window"]
        return (a, b) if 0 <= a < b else None

    def measured_ii(self) -> float | None:
        """Cycles per frame in steady state: between the first output beats of the window's frames."""
        w = self.ii_window()
        if w is None:
            return None
        first_out = self.frames[:, 2]
        return float(first_out[w[1]] - first_out[w[0]]) / (w[1] - w[0])

    def iso_cycles(self) -> list[int | None]:
        """Each stage's own cycles per frame (alone, fed and drained at full speed): its last period."""
        out: list[int | None] = []
        for ends in self.stats["iso_ends"]:
            out.append(int(ends[-1] - ends[-2]) if len(ends) >= 2 else None)
        return out


def steady_window(frames: int) -> tuple[int, int]:
    """Frames (a, b) of the steady-state window: past the pipeline's fill (a quarter of the run, at least one
    frame) to the last frame; (-1, -1) when there are too few frames to measure an interval."""
    if frames < 3:
        return (-1, -1)
    return (max(1, frames // 4), frames - 1)


def _limits(d: Design, frames: int, stalls: Stalls, pace: float | None) -> tuple[int, int]:
    """(max cycles, cycles without a beat at a top port before the run counts as a deadlock): generous bounds
    from the estimate (stalls and pacing slow a run by a known factor at most)."""
    slow = 256.0 / max(1, min(stalls.p_valid, stalls.p_ready))
    period = max(d.ii_estimate, int(pace or 0), d.fin.beats, d.fout.beats)
    fill = sum(s.cycles for s in d.stages)
    max_cycles = int(slow * 4 * (period * frames + fill)) + 100_000
    idle = int(slow * 4 * (fill + period)) + 10_000
    return max_cycles, idle


def run_exe(exe: Path, d: Design, q: np.ndarray, cwd: Path, stalls: Stalls = NO_STALLS, pace: float | None = None,
            iso: bool = True, label: str = "rtl", caps: dict[str, int] | None = None
            ) -> tuple[np.ndarray, np.ndarray, dict, float]:
    """One testbench process over all frames of q, back to back; (outputs, frames, stats, wall seconds)."""
    n = len(q)
    win = steady_window(n)
    max_cycles, idle = _limits(d, n, stalls, pace)
    with tempfile.TemporaryDirectory(prefix="bnn-rtl-") as tmp:
        inp, outp, statp, framep = (Path(tmp) / x for x in ("in.bin", "out.bin", "stats.json", "frames.bin"))
        q.astype("<i8").tofile(inp)
        cmd = [str(exe), str(inp), str(outp), str(statp), str(framep), "--window", str(win[0]), str(win[1]),
               "--max-cycles", str(max_cycles), "--idle", str(idle), "--progress", str(max(1, n // PROGRESS_STEPS))]
        if stalls.any:
            cmd += ["--seed", str(stalls.seed), "--p-valid", str(stalls.p_valid), "--p-ready", str(stalls.p_ready)]
        if pace:
            cmd += ["--pace", repr(float(pace))]
        if iso:
            cmd += ["--iso", str(ISO_FRAMES)]
        if caps:
            cmd += ["--caps", ",".join(str(int(caps.get(e.name, 0xFFFFFFFF))) for e in d.edges)]
        t0 = time.perf_counter()
        with progress(n, label, "frame") as bar, subprocess.Popen(
                cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
            done = 0
            for line in proc.stdout:  # "frames K" every few frames
                if line.startswith("frames "):
                    k = int(line.split()[1])
                    bar.update(k - done)
                    done = k
            err = proc.stderr.read()
            rc = proc.wait()
        wall = time.perf_counter() - t0
        if rc != 0:
            last = err.strip().splitlines()[-1] if err.strip() else "no message"
            raise CheckFailedError(f"RTL simulation of {cwd} failed (exit {rc}): {last}")
        out = np.fromfile(outp, dtype="<i8").reshape(n, -1)
        frames = np.fromfile(framep, dtype="<i8").reshape(n, 4)
        stats = json.loads(statp.read_text())
    return out, frames, stats, wall


def simulate(build: Build | str | Path, q: np.ndarray, stalls: Stalls = NO_STALLS, pace: float | None = None,
             overrides: dict[str, int] | None = None, iso: bool = True, plan: Plan | None = None,
             label: str = "rtl", caps: dict[str, int] | None = None) -> SimResult:
    """Generate, build (cached) and run the RTL simulation of BUILD on input integers q.

    `overrides`: bnn_top parameters for this run's build (the deep FIFOs of the sizing run); `pace`: input at
    that many cycles per frame instead of as fast as the design takes it; `iso`: also measure every stage
    alone; `caps`: {FIFO name: capacity} set at run time (each such FIFO acts as one of that depth).
    Raises CheckFailedError when the simulation fails, times out or deadlocks."""
    build = as_build(build)
    plan = plan if plan is not None else build.plan()
    q = input_frames(q, plan, f"rtl input for {build}")
    d = codegen.generate(build, plan)
    project = codegen.rtl_dir(build)
    t0 = time.perf_counter()
    exe = simbuild.build_sim(project, d, overrides)
    build_s = time.perf_counter() - t0
    if len(q) == 0:
        return SimResult(np.zeros((0, plan.classes), np.int64), np.zeros((0, 4), np.int64),
                         {"window": [-1, -1], "iso_ends": []}, d, stalls, pace, 0.0, build_s, dict(overrides or {}))
    out, frames, stats, wall = run_exe(exe, d, q, project, stalls, pace, iso, label, caps)
    return SimResult(out, frames, stats, d, stalls, pace, wall, build_s, dict(overrides or {}))


__all__ = ["NO_STALLS", "SimResult", "Stalls", "run_exe", "simulate", "steady_window"]
