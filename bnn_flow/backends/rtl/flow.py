"""The open bitstream flow (`bnn-flow bitstream BUILD --flow open --board ulx3s-85f`): the rtl target's
accelerator (BUILD/rtl/) behind the UART board top, through yosys, nextpnr and ecppack / icepack.

Stages (`run_flow`), in the working folder BUILD/bitstream/<board>/ (every tool with relative paths: the
YoWASP tools see /tmp as a private folder of their own):
1. pll: the design clock from the board oscillator (ecppll / icepll; iCE40 at the oscillator: no PLL) and
   the UART divider (flow_board.py);
2. synth: yosys synth_ecp5 / synth_ice40 of board_<family>.v around board_top.v and bnn_top (kept a module
   of its own), writing the JSON netlist for nextpnr, `stat -json`, and bnn_top's netlist (write_verilog);
3. netlist: bnn_top's post-synthesis netlist simulated with the cell models on the sample frames, bit-exact
   against the expected accumulators, measuring the core's cycles per frame (flow_netlist.py); at the same
   time as
4. pnr: nextpnr with the board's constraint file, the achieved clock as the constraint, a seed; its report
   gives the resources and the Fmax per clock (flow_report.py): a clock below its constraint stops here;
5. pack: ecppack / icepack, then the bitstream is renamed into BUILD/bitstream/<board>.bit (.bin): no file
   of that name exists unless every check passed.
BUILD/bitstream/report.json / report.txt hold the numbers; board.json what the host needs (board_link.py).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bnn_flow.build import Build, as_build
from bnn_flow.errors import BadInputError, CheckFailedError
from bnn_flow.fileio import write_json_atomic, write_text_atomic

from . import flow_netlist, flow_report
from .estimate import FABRICS, yosys_defines
from .flow_board import FAMILY, OpenBoard, check_pins, clocks_per_bit, load_open_board, pll_params
from .flow_project import Project, layout, load_project, stage, top_params
from .flow_tools import Runner, find_tools

BOARD_JSON = "board.json"
REPORT_JSON, REPORT_TXT = "report.json", "report.txt"
PLL_TOLERANCE = 0.01  # the PLL's clock may differ from the requested one by this much (it is then reported)
MIN_IMAGES = 10  # frames of the netlist check, at least (issue #10: bit-exact on >= 10 images)
NETLIST_MAX_CYCLES = 5_000_000


@dataclass(frozen=True)
class OpenConfig:
    board: OpenBoard
    clock_mhz: float
    seed: int = 1
    jobs: int = 1


def bitstream_dir(build: Build) -> Path:
    """BUILD/bitstream/: the bitstreams of both flows and this flow's report."""
    return build.backend_dir("bitstream")


def resolve_config(build: Build, board: str | None, clock_mhz: float | None, jobs: int | None,
                   seed: int) -> OpenConfig:
    """Options first, then the board and clock the build was folded for, then the board's default clock."""
    report = build.report() or {}
    recorded = report.get("board") if isinstance(report.get("board"), dict) else {}
    name = board or recorded.get("name")
    if not name:
        raise BadInputError("--board is needed: the build was not folded for a board (open-flow boards: "
                            "ulx3s-85f, icebreaker)")
    ob = load_open_board(name)
    clock = clock_mhz or (report.get("clock_mhz") if recorded.get("name") == ob.name else None) or ob.board.clock_mhz
    if not (isinstance(clock, (int, float)) and 0 < clock <= 1000):
        raise BadInputError(f"--clock-mhz must be in (0, 1000] MHz, got {clock}")
    if jobs is not None and jobs < 1:
        raise BadInputError(f"--jobs must be at least 1, got {jobs}")
    if not (isinstance(seed, int) and 0 < seed < 2**31):
        raise BadInputError(f"--seed must be a positive integer, got {seed}")
    return OpenConfig(ob, float(clock), seed, jobs or os.cpu_count() or 1)


def yosys_script(sources: list[str], ob: OpenBoard, params: dict[str, int]) -> str:
    """Read, parametrize, synthesize; bnn_top stays a module so its netlist is exactly the implemented one."""
    sets = " ".join(f"-set {k} {v}" if k != "DESIGN_ID" else f"-set {k} 32'h{v:08x}" for k, v in params.items())
    synth = FAMILY[ob.family]["synth"]
    defines = " ".join(yosys_defines(FABRICS[ob.family]))
    return (f"read_verilog -defer {defines} {' '.join(sources)}\n"
            f"chparam {sets} {ob.top}\n"
            f"hierarchy -top {ob.top}\n"
            "select -assert-mod-count 1 bnn_top\n"
            "setattr -mod -set keep_hierarchy 1 bnn_top\n"
            f"{synth} -top {ob.top} -json board.json\n"
            "tee -q -o stat.json stat -json\n"
            "hierarchy -top bnn_top\n"
            f"write_verilog -noattr {flow_netlist.NETLIST}\n")


def pnr_args(ob: OpenBoard, clock_mhz: float, seed: int) -> list[str]:
    common = ["--json", "board.json", "--report", "pnr.json", "--freq", f"{clock_mhz:g}", "--seed", str(seed),
              "--timing-allow-fail"]  # a missed clock is reported by us, with the numbers; the whole log in pnr.log
    if ob.family == "ecp5":
        return [f"--{ob.device}", "--package", ob.package, "--speed", str(ob.speed), "--lpf", "board.lpf",
                "--textcfg", "board.config", *common]
    return [f"--{ob.device}", "--package", ob.package, "--pcf", "board.pcf", "--asc", "board.asc", *common]


def run_flow(rtl_dir: Path, out_dir: Path, cfg: OpenConfig, q: np.ndarray, expected: np.ndarray, reference: str,
             say: Callable[[str], None] = print, max_cycles: int = NETLIST_MAX_CYCLES) -> dict:
    """Every stage for the accelerator in rtl_dir on cfg.board; returns the report (also written to out_dir).

    q: input integers of the check frames (N x elements, stream order); expected: their accumulators
    (N x classes). CheckFailedError (exit 1) on a netlist mismatch, a failed tool, a design that does not fit
    or a clock below its constraint; no bitstream file is left then.
    """
    ob, fam = cfg.board, FAMILY[cfg.board.family]
    rtl_dir, out_dir = Path(rtl_dir).resolve(), Path(out_dir).resolve()  # the tools run in folders of their own
    start = time.perf_counter()
    final = out_dir / f"{ob.name}{ob.bitstream_suffix}"
    for old in (final, out_dir / REPORT_JSON, out_dir / REPORT_TXT, out_dir / BOARD_JSON):
        old.unlink(missing_ok=True)  # an earlier run's files must never pass for this run's
    work = out_dir / ob.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    project: Project = load_project(rtl_dir)
    check_pins(ob)
    tools = find_tools(["yosys", fam["pnr"], fam["pack"], fam["pll"]])
    runner = Runner(work)

    pll, achieved = pll_params(ob, cfg.clock_mhz, runner, tools[fam["pll"]])
    if abs(achieved - cfg.clock_mhz) > PLL_TOLERANCE * cfg.clock_mhz:
        raise BadInputError(f"the {ob.name}'s PLL makes {achieved:g} MHz, not {cfg.clock_mhz:g}: ask for "
                            f"--clock-mhz {achieved:g}")
    clock_hz = round(achieved * 1e6)
    cpb = clocks_per_bit(clock_hz, ob.baud)
    lay = layout(project, clock_hz, ob.baud, ob.family)
    params = {**pll, "BTN_ACTIVE_LOW": int(ob.reset_active_low), **top_params(project, lay, cpb, ob.family)}
    params["DESIGN_ID"] = lay.design_id  # written as 32'h... (the bits of a signed integer parameter)
    sources = stage(project, ob, work)
    write_text_atomic(work / "synth.ys", yosys_script(sources, ob, params))
    say(f"synthesis ({fam['synth']}) for {ob.name} at {achieved:g} MHz in {work}")
    runner.run("synth", tools["yosys"], ["-q", "synth.ys"])
    cells = flow_report.cell_counts(flow_report.read_json(work / "stat.json", "yosys statistics"))

    sim_dir = work / "netlist"
    sim_dir.mkdir()
    shutil.copyfile(work / flow_netlist.NETLIST, sim_dir / flow_netlist.NETLIST)
    # The netlist check and place and route need only the synthesis: they run at once (a large core's netlist
    # simulation takes as long as its place and route); the bitstream waits for both.
    say(f"post-synthesis netlist of bnn_top: simulating {len(q)} frames, while place and route ({fam['pnr']}, "
        f"seed {cfg.seed}) runs")
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(flow_netlist.simulate, sim_dir, ob.family, tools["yosys"], project.inp, project.out,
                              q, project.classes, expected, max_cycles, max(1, cfg.jobs - 1),
                              cycles_estimate=project.ii_estimate)
        try:
            runner.run("pnr", tools[fam["pnr"]], pnr_args(ob, achieved, cfg.seed))
        finally:
            check = pending.result()  # waits: a failed pnr still reports after the simulation has ended
    runner.timed("netlist", check.seconds)
    if not check.exact:
        raise CheckFailedError(f"the post-synthesis netlist of bnn_top differs from {reference} on frame "
                               f"{check.first_mismatch} (of {check.frames}); no bitstream built (see {sim_dir})")
    pnr = flow_report.read_json(work / "pnr.json", "nextpnr report")
    rows = flow_report.resources(pnr, ob.family, cells)
    clocks = flow_report.fmax(pnr)
    flow_report.check_fit(rows, ob.name)
    report = {
        "flow": "open", "board": ob.name, "part": ob.board.part, "family": ob.family, "clock_mhz": achieved,
        "clock_mhz_requested": cfg.clock_mhz,
        "clock_note": ob.clock_note if achieved == ob.board.clock_mhz else "", "baud": ob.baud,
        "clks_per_bit": cpb, "seed": cfg.seed,
        "design_id": f"0x{lay.design_id:08x}", "bitstream": final.name, "resources": rows, "fmax": clocks,
        "synthesis": {"core_lut4": flow_report.lut_count(cells["core"], ob.family),
                      "core_ff": flow_report.ff_count(cells["core"]),
                      "board_top_lut4": flow_report.lut_count(cells["board_top"], ob.family),
                      "board_top_ff": flow_report.ff_count(cells["board_top"]), "cells": cells},
        "netlist_check": check.to_json(), "reference": reference, "parameters": params,
        "fps": flow_report.fps(check.cycles_per_frame, achieved, min((c["achieved_mhz"] for c in clocks.values()),
                               default=None), lay.uart_fps(), lay.request_bytes, lay.reply_bytes,
                               flow_report.rtl_target_ii(rtl_dir)),
        "stages": runner.times, "tools": {n: t.version() for n, t in tools.items()},
    }
    write_json_atomic(work / REPORT_JSON, report)  # kept with the logs even when timing fails below
    flow_report.check_timing(clocks, achieved)

    say(f"bitstream ({fam['pack']})")
    packed = f"board{ob.bitstream_suffix}"
    src = "board.config" if ob.family == "ecp5" else "board.asc"
    runner.run("pack", tools[fam["pack"]], (["--compress"] if ob.family == "ecp5" else []) + [src, packed])
    report["stages"] = {**runner.times, "total": round(time.perf_counter() - start, 1)}
    report["stages"] = {k: round(v, 1) for k, v in report["stages"].items()}
    tmp = out_dir / f".{final.name}.tmp"
    shutil.copyfile(work / packed, tmp)
    write_json_atomic(out_dir / BOARD_JSON, {"board": ob.name, **lay.to_json()})
    write_json_atomic(out_dir / REPORT_JSON, report)
    write_text_atomic(out_dir / REPORT_TXT, flow_report.text(report))
    os.replace(tmp, final)  # last: the bitstream exists only when everything above passed
    return report


def generate_rtl(build: Build, say: Callable[[str], None] = print) -> Path:
    """BUILD/rtl/ from the build's plan and folding (the rtl target's generator, codegen.py), its FIFOs sized
    by simulation first when Verilator is here (fifo_sizing.py; cached per design)."""
    from . import codegen, simbuild
    from .fifo_sizing import size_fifos

    missing = simbuild.tool_missing()
    if missing is None:
        size_fifos(build)
    else:
        say(f"FIFOs at their default depths, not sized by simulation ({missing})")
    codegen.generate(build)
    return codegen.rtl_dir(build)


def sample_frames(build: Build, n: int, data_dir: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """(input integers N x elements in stream order, golden accumulators N x classes, what they are)."""
    from bnn_flow.golden import GoldenModel

    try:
        x, _, name = build.test_images(n, None, data_dir)
        source = f"{name} test images"
    except BadInputError:
        pixels = np.random.default_rng(0).integers(0, 256, size=(n, *build.input_chw()))
        x, source = (pixels / 255.0).astype(np.float32), "random images"
    golden = GoldenModel(build)
    q = np.asarray(golden.spec.apply(x), dtype=np.int64)
    return q.reshape(len(q), -1), np.asarray(golden.run_integer(x), dtype=np.int64), f"the golden model on {source}"


def bitstream(build: Build | Path, *, board: str | None = None, clock_mhz: float | None = None, jobs: int | None = None,
              images: int = MIN_IMAGES, data_dir: str | None = None, seed: int = 1,
              say: Callable[[str], None] = print) -> Path:
    """The open flow on a compiled build; returns the bitstream's path (BUILD/bitstream/<board>.bit or .bin).

    The netlist check runs on max(images, 10) images. MissingToolError (exit 3) without the YoWASP tools or a
    Verilog simulator; CheckFailedError (exit 1) on a failed check.
    """
    build = Build(as_build(build).path.resolve())  # the tools run in folders of their own: absolute paths
    build.head()  # one clear error when BUILD is not a compiled build
    if images < 1:
        raise BadInputError(f"--images must be at least 1 (the netlist check), got {images}")
    cfg = resolve_config(build, board, clock_mhz, jobs, seed)
    rtl_dir = generate_rtl(build, say)
    q, expected, reference = sample_frames(build, max(images, MIN_IMAGES), data_dir)
    out = bitstream_dir(build)
    report = run_flow(rtl_dir, out, cfg, q, expected, reference, say)
    final = out / report["bitstream"]
    say(flow_report.text(report).rstrip())
    say(f"bitstream {final} (load it onto the {cfg.board.name}, then: bnn-flow run {build.path} --target board "
        "--port PORT ...)")
    return final

