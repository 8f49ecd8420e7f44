"""The vendor flow (`bnn-flow bitstream BUILD --flow vendor`): Vitis HLS IP -> Vivado Zynq design -> .bit/.hwh.

Steps, each a function here:
1. `generate_vendor`: BUILD/hls (the generated HLS core, csim.generate_project) is wrapped for AXI DMA
   (hls_templates/axis_top.cpp.j2) and BUILD/vendor/ gets hls.tcl, vivado.tcl, run.sh, overlay.json (the
   stream layouts the PYNQ driver reads) and pynq/ (driver, packing helpers, README, overlay.json, head.json).
2. `csim_check`: C-simulation on a few images of the core (csim.py) and of the AXI-Stream wrapper around it
   through the PYNQ packing helpers (axis_csim.py), both bit-exact against the golden model.
3. `run_tools`: vitis_hls then vivado, when both are on PATH; the .bit and .hwh (same base name, as PYNQ
   requires) and the driver are copied to BUILD/bitstream/. Without the tools: MissingToolError (exit 3)
   naming the tool(s) and the ready project. No bitstream is ever reported that was not built.

Stream widths: AXI DMA moves bytes over a bus of 8..1024 bits (a power of two) no wider than its memory
side; we cap the bus at the board's dma_bits (board/*.yaml; by default the HP port width: 64 bits on
Zynq-7000, 128 on UltraScale+, the same figure the folding step's DMA estimate uses) and send a wider core
beat as several bus words. board/pynq/packing.py documents the resulting byte layout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from bnn_flow import sanitize
from bnn_flow.backends.hls import axis_csim, codegen, csim
from bnn_flow.boards import PYNQ_DRIVER_DIR, VENDOR_FAMILIES, Board, load_board
from bnn_flow.build import Build, as_build
from bnn_flow.errors import BadInputError, CheckFailedError, MissingToolError
from bnn_flow.fileio import write_json_atomic, write_text_atomic
from bnn_flow.golden import GoldenModel

TEMPLATES = codegen.TEMPLATES
DRIVER_DIR = PYNQ_DRIVER_DIR
DRIVER_FILES = ("driver.py", "packing.py", "README.md")
DEFAULT_BOARD = "pynq-z2"

DMA_BUS_WIDTHS = (8, 16, 32, 64, 128, 256, 512, 1024)  # AXI DMA stream widths
HP_PORT_BITS = {"zynq7000": 64, "zynq_us+": 128}  # high-performance slave port data width
# DMA address width: 32 bits on both families. PYNQ allocates its DMA buffers (CMA) in the low DDR window,
# and a 32-bit DMA works with every PYNQ release's driver; the DDR above 4 GiB on UltraScale+ is left unmapped.
DMA_ADDR_BITS = 32

WRAPPER_TOP = "bnn_axis"  # the HLS top function: the AXI-Stream wrapper
WRAPPER_FILE = "axis_top.cpp"
HLS_PROJECT, SOLUTION = "hls_prj", "sol1"
VIVADO_PROJECT, BD_NAME = "vivado_prj", "bnn_bd"
OUT_DIR = "output"  # vivado.tcl writes <OVERLAY>.bit/.hwh and reports here
PYNQ_DIR = "pynq"  # the board bundle staged beside the scripts
OVERLAY = "bnn"  # base name of the .bit/.hwh
DMA_CELL, ACCEL_CELL = "axi_dma", "bnn_accel"  # block design cells = PYNQ overlay attribute names
IP = {"ip_vendor": "bnn-flow.org", "ip_library": "hls", "ip_name": "bnn_axis", "ip_version": "1.0"}
TOOLS = ("vitis_hls", "vivado")
SIDE_KEYS = ("width", "elems_per_beat", "elem_bits", "signed", "beats_per_frame")


@dataclass(frozen=True)
class Side:
    """One stream direction: the core's beats and how they travel over the DMA bus (see packing.py)."""

    core_bits: int
    frame_elems: int
    elems_per_beat: int
    elem_bits: int
    signed: bool
    beats_per_frame: int
    bus_bits: int
    words_per_beat: int

    def layout_json(self) -> dict:
        """The fields of packing.StreamLayout (overlay.json)."""
        return {k: getattr(self, k) for k in ("frame_elems", "elems_per_beat", "elem_bits", "signed",
                                              "beats_per_frame", "bus_bits", "words_per_beat")}


@dataclass(frozen=True)
class VendorConfig:
    board: Board
    clock_mhz: float
    jobs: int


def bus_side(side: dict, frame_elems: int, max_bus: int) -> Side:
    """The DMA bus for one direction of the core.

    Pre: side has the project.json keys SIDE_KEYS; max_bus >= 8 (the board's dma_bits). Post: bus_bits is
    an AXI DMA width, >= 8 and at most max_bus rounded down to a DMA width; words_per_beat * bus_bits >= the
    core's beat width.
    """
    core = int(side["width"])
    cap = max(w for w in DMA_BUS_WIDTHS if w <= max(8, max_bus))
    bus = next(w for w in DMA_BUS_WIDTHS if w >= min(core, cap))
    words = -(-core // bus)
    return Side(core, frame_elems, int(side["elems_per_beat"]), int(side["elem_bits"]), bool(side["signed"]),
                int(side["beats_per_frame"]), bus, words)


def vendor_dir(build: Build) -> Path:
    """BUILD/vendor/: the vendor project (wrapper, Tcl, run.sh, pynq/ bundle) and its C-simulation."""
    return build.backend_dir("vendor")


def bitstream_dir(build: Build) -> Path:
    """BUILD/bitstream/: what Vivado wrote (.bit, .hwh) with the PYNQ driver, ready to copy to the board."""
    return build.backend_dir("bitstream")


def load_project(build: Build | Path) -> dict:
    """BUILD/hls/project.json (the HLS engineer's contract), checked; one-line errors name the file."""
    path = codegen.hls_dir(as_build(build)) / codegen.PROJECT_JSON
    if not path.is_file():
        raise BadInputError(f"{path} is missing: generate the HLS project first")
    try:
        proj = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise BadInputError(f"{path}: not valid JSON ({e}); regenerate the HLS project") from None
    missing = [k for k in ("top", "sources", "in", "out", "classes") if k not in proj]
    missing += [f"{s}.{k}" for s in ("in", "out") for k in SIDE_KEYS if k not in proj.get(s, {})]
    if missing:
        raise BadInputError(f"{path}: missing {', '.join(missing)}; regenerate the HLS project")
    for s in ("in", "out"):
        d = proj[s]
        if d["elems_per_beat"] * d["elem_bits"] > d["width"] or d["elem_bits"] > 62:
            raise BadInputError(f"{path}: {s}: {d['elems_per_beat']} x {d['elem_bits']}-bit elements do not fit "
                                f"a {d['width']}-bit beat (or elements wider than 62 bits)")
    return proj


def sides(proj: dict, max_bus: int) -> tuple[Side, Side]:
    """(input, output) stream sides; a frame is elems_per_frame elements (the output: the classes)."""
    i, o = proj["in"], proj["out"]
    in_elems = int(i.get("elems_per_frame", i["beats_per_frame"] * i["elems_per_beat"]))
    return bus_side(i, in_elems, max_bus), bus_side(o, int(proj["classes"]), max_bus)


def _recorded(build: Build, key: str):
    """A value that compile/codegen recorded (project.json, then report.json), or None."""
    path = codegen.hls_dir(build) / codegen.PROJECT_JSON
    try:
        proj = json.loads(path.read_text()) if path.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        proj = {}
    report = build.report() or {}  # a report.json compile did not write is refused, not silently skipped
    for d in (proj, report):
        value = d.get(key) if isinstance(d, dict) else None
        if value is not None:
            return value
    return None


def resolve_config(build: Build | Path, board: str | None, clock_mhz: float | None, jobs: int | None) -> VendorConfig:
    """Options first, then what the build recorded, then the defaults (pynq-z2, its clock, all cores)."""
    build = as_build(build)
    recorded = _recorded(build, "board")  # report.json holds the folding's board as a dict
    recorded = recorded.get("name") if isinstance(recorded, dict) else recorded
    b = load_board(board or recorded or DEFAULT_BOARD)
    if b.family not in VENDOR_FAMILIES:
        raise BadInputError(f"board {b.name} is a Lattice {b.family} board: build it with --flow open")
    clock = clock_mhz if clock_mhz is not None else (_recorded(build, "clock_mhz") or b.clock_mhz)
    if not (isinstance(clock, (int, float)) and 0 < clock <= 1000):
        raise BadInputError(f"--clock-mhz must be in (0, 1000] MHz, got {clock}")
    if jobs is not None and jobs < 1:
        raise BadInputError(f"--jobs must be at least 1, got {jobs}")
    return VendorConfig(b, float(clock), jobs or os.cpu_count() or 1)


def render(template: str, **ctx) -> str:
    """Render hls_templates/<template>; an undefined variable is an error, not an empty string."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    return env.get_template(template).render(**ctx)


def _tcl_path(path: str | Path, base: Path, build_dir: Path, vendor: Path, what: str) -> str:
    """`path` (relative to `base` unless absolute) for the Tcl scripts: "$here/..." when inside BUILD, so
    the project moves with BUILD; absolute otherwise (the package's header library). The path itself is
    one checked word (bnn_flow.sanitize): project.json is a BUILD file, and BUILD folders may be hostile."""
    p = Path(path)
    p = (p if p.is_absolute() else base / p).resolve()
    if p.is_relative_to(build_dir.resolve()):
        return "$here/" + sanitize.word(os.path.relpath(p, vendor.resolve()), what)
    return sanitize.word(p, what)


def template_context(build: Build | Path, proj: dict, cfg: VendorConfig) -> dict:
    """Everything the wrapper and Tcl templates need, from project.json and the board."""
    build = as_build(build)
    build_dir, vendor, hls = build.path, vendor_dir(build), codegen.hls_dir(build)
    inp, out = sides(proj, cfg.board.dma_bits)
    b, where = cfg.board, f"board file of {cfg.board.name!r}:"
    project = codegen.hls_dir(build) / codegen.PROJECT_JSON
    return {  # every text that lands in Tcl or shell is one checked word (bnn_flow.sanitize)
        **IP, "board": sanitize.word(b.name, f"{where} name"), "part": sanitize.word(b.part, f"{where} part"),
        "board_part": sanitize.word(b.board_part, f"{where} board_part") if b.board_part else b.board_part,
        "family": b.family, "clock_mhz": f"{cfg.clock_mhz:g}", "period_ns": f"{1000.0 / cfg.clock_mhz:.3f}",
        "jobs": int(cfg.jobs), "top": sanitize.word(proj["top"], f"{project}: top"),
        "frames_arg": bool(proj.get("frames_arg", True)),
        "wrapper_top": WRAPPER_TOP, "wrapper": WRAPPER_FILE, "inp": inp, "out": out,
        "sources": [_tcl_path(s, hls, build_dir, vendor, f"{project}: source") for s in proj["sources"]],
        "include_dirs": [_tcl_path(d, hls, build_dir, vendor, f"{project}: include folder")
                         for d in proj.get("include_dirs", [])],
        "hls_project": HLS_PROJECT, "solution": SOLUTION, "vivado_project": VIVADO_PROJECT, "bd_name": BD_NAME,
        "ip_repo": f"{HLS_PROJECT}/{SOLUTION}/impl/ip", "out_dir": OUT_DIR, "overlay": OVERLAY,
        "dma_cell": DMA_CELL, "accel_cell": ACCEL_CELL, "hp_bits": HP_PORT_BITS[cfg.board.family],
        "addr_bits": DMA_ADDR_BITS, "mm_in_bits": max(32, inp.bus_bits),
        "mm_out_bits": max(32, out.bus_bits), "ip_display_name": f"bnn-flow {proj['top']} (AXI-Stream)",
        "ip_description": "bnn-flow binarized CNN dataflow accelerator behind an AXI-Stream wrapper",
        "hls_script": "hls.tcl", "vivado_script": "vivado.tcl", "driver_dir": PYNQ_DIR,
        "bitstream_dir": "../bitstream",
    }


def overlay_json(ctx: dict, cfg: VendorConfig, proj: dict) -> dict:
    """What the PYNQ driver needs to talk to the overlay (board/pynq/driver.py reads it)."""
    return {"overlay": f"{OVERLAY}.bit", "dma": DMA_CELL, "accel": ACCEL_CELL, "frames_register": "frames",
            "board": cfg.board.name, "part": cfg.board.part, "clock_mhz": cfg.clock_mhz, "classes": proj["classes"],
            "in": ctx["inp"].layout_json(), "out": ctx["out"].layout_json()}


def generate_vendor(build: Build | Path, cfg: VendorConfig) -> Path:
    """Write BUILD/vendor/ (wrapper, hls.tcl, vivado.tcl, run.sh, pynq/). Pre: BUILD/hls/project.json exists."""
    build = as_build(build)
    proj = load_project(build)
    vendor = vendor_dir(build)
    ctx = template_context(build, proj, cfg)
    write_text_atomic(vendor / WRAPPER_FILE, render("axis_top.cpp.j2", **ctx))
    write_text_atomic(vendor / "hls.tcl", render("tcl/hls.tcl.j2", **ctx, script_name="hls.tcl"))
    write_text_atomic(vendor / "vivado.tcl", render("tcl/vivado.tcl.j2", **ctx, script_name="vivado.tcl"))
    write_text_atomic(vendor / "run.sh", render("tcl/run.sh.j2", **ctx))
    (vendor / "run.sh").chmod(0o755)
    bundle = vendor / PYNQ_DIR
    for name in DRIVER_FILES:
        write_text_atomic(bundle / name, (DRIVER_DIR / name).read_text())
    write_json_atomic(bundle / "overlay.json", overlay_json(ctx, cfg, proj))
    write_json_atomic(bundle / "head.json", build.head())
    return vendor


def sample_images(build: Build | Path, n: int, data_dir: str | None = None, seed: int = 0
                  ) -> tuple[np.ndarray, str]:
    """(n float32 NCHW images in [0, 1], where they came from): the build's test set, else random pixels."""
    build = as_build(build)
    try:
        x, _, name = build.test_images(n, None, data_dir)
        return x, f"{name} test images"
    except BadInputError:
        pass
    pixels = np.random.default_rng(seed).integers(0, 256, size=(n, *build.input_chw()))
    return (pixels / 255.0).astype(np.float32), "random images"


def mismatching_rows(expected: np.ndarray, got: np.ndarray) -> np.ndarray:
    """Indices of the frames whose integers differ (every frame when the shapes disagree)."""
    if got.size != expected.size:
        return np.arange(len(expected))
    return np.flatnonzero((got.reshape(expected.shape) != expected).any(axis=1))


def _require_exact(expected: np.ndarray, got: np.ndarray, what: str, source: str) -> None:
    bad = mismatching_rows(expected, got)
    if len(bad):
        raise CheckFailedError(f"C-simulation of {what} differs from the golden model on {len(bad)} of "
                               f"{len(expected)} {source} (first: image {bad[0]}); no bitstream is built from it")


def csim_check(build: Build | Path, images: int, data_dir: str | None = None) -> str:
    """C-simulate the core, then the AXI-Stream wrapper around it through packing.py, on `images` images.

    Both must give the golden model's integers, and the wrapper TLAST on its last output word only;
    CheckFailedError (exit 1) otherwise. Pre: generate_vendor ran.
    """
    build = as_build(build)
    reason = csim.available()
    if reason:
        raise MissingToolError(f"cannot run the C-simulation check: {reason}")
    x, source = sample_images(build, images, data_dir)
    golden = GoldenModel(build)
    expected, q = golden.run_integer(x), golden.spec.apply(x)
    got = np.asarray(csim.run_integer(build, q), dtype=np.int64)
    _require_exact(expected, got, f"the core in {codegen.hls_dir(build)}", source)
    got, last = axis_csim.run_integer(build, q)
    _require_exact(expected, got, f"the AXI-Stream wrapper in {vendor_dir(build)}", source)
    if last != "0" * (len(last) - 1) + "1":
        raise CheckFailedError(f"the AXI-Stream wrapper in {vendor_dir(build)} does not raise TLAST on exactly the "
                               "last output word; no bitstream is built from it")
    return (f"C-simulation bit-exact with the golden model on {len(x)} {source}: the core, and the AXI-Stream "
            "wrapper through the PYNQ packing (TLAST on the last word)")


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def _run_tool(cmd: list[str], vendor: Path, log: str, env: dict | None = None) -> None:
    """Run one vendor tool in BUILD/vendor (console output in <tool>.out); a failure names the tool's log."""
    with open(vendor / f"{cmd[0]}.out", "w") as f:
        rc = subprocess.run(cmd, cwd=vendor, stdout=f, stderr=subprocess.STDOUT, env=env, check=False).returncode
    if rc != 0:
        raise CheckFailedError(f"{cmd[0]} failed (exit {rc}); see {vendor / log}")


def run_tools(build: Build | Path, jobs: int) -> Path:
    """vitis_hls -f hls.tcl, vivado -source vivado.tcl; check their outputs; collect BUILD/bitstream/.

    Pre: generate_vendor ran and both tools are on PATH. Post: BUILD/bitstream holds bnn.bit and bnn.hwh
    (copied from what Vivado wrote, never created here) and the PYNQ bundle.
    """
    build = as_build(build)
    vendor = vendor_dir(build)
    outputs = [vendor / OUT_DIR / f"{OVERLAY}{ext}" for ext in (".bit", ".hwh")]
    for p in outputs:  # an earlier run's files must never pass for this run's
        p.unlink(missing_ok=True)
    shutil.rmtree(vendor / HLS_PROJECT / SOLUTION / "impl" / "ip", ignore_errors=True)
    _run_tool(["vitis_hls", "-f", "hls.tcl", "-l", "vitis_hls.log"], vendor, "vitis_hls.log")
    ip = vendor / HLS_PROJECT / SOLUTION / "impl" / "ip" / "component.xml"
    if not ip.is_file():
        raise CheckFailedError(f"vitis_hls exported no IP ({ip} missing); see {vendor / 'vitis_hls.log'}")
    _run_tool(["vivado", "-mode", "batch", "-nojournal", "-log", "vivado.log", "-source", "vivado.tcl"], vendor,
              "vivado.log", env={**os.environ, "BNN_FLOW_JOBS": str(jobs)})
    absent = [str(p) for p in outputs if not p.is_file() or p.stat().st_size == 0]
    if absent:
        raise CheckFailedError(f"vivado finished but wrote no {', '.join(absent)}; see {vendor / 'vivado.log'}")
    dest = bitstream_dir(build)
    dest.mkdir(parents=True, exist_ok=True)
    for p in [*outputs, *sorted((vendor / PYNQ_DIR).iterdir())]:
        shutil.copy2(p, dest / p.name)
    return dest


def bitstream(build: Build | Path, *, board: str | None = None, clock_mhz: float | None = None, jobs: int | None = None,
              images: int = 8, data_dir: str | None = None, say: Callable[[str], None] = print) -> Path:
    """The whole vendor flow, reporting each step through `say`; returns BUILD/bitstream.

    MissingToolError (exit 3) when vitis_hls or vivado is absent (after generation and C-simulation),
    CheckFailedError (exit 1) on a C-simulation mismatch or a failed tool run.
    """
    build = as_build(build)
    build.head()  # one clear error when BUILD is not a compiled build
    if images < 1:
        raise BadInputError(f"--images must be at least 1 (the C-simulation check), got {images}")
    cfg = resolve_config(build, board, clock_mhz, jobs)
    csim.generate_project(build)  # always: cheap (unchanged files stay), and never stale after a re-fold
    vendor = generate_vendor(build, cfg)
    say(f"vendor project for {cfg.board.name} ({cfg.board.part}, {cfg.clock_mhz:g} MHz) -> {vendor}")
    say(csim_check(build, images, data_dir))
    absent = missing_tools()
    if absent:
        raise MissingToolError(f"{' and '.join(absent)} not found on PATH: no bitstream built. The project is ready "
                               f"in {vendor} (C-simulation passed); on a machine with Vitis HLS and Vivado run: "
                               f"cd {vendor} && ./run.sh. Without Vivado, --board ulx3s-85f --flow open builds a real "
                               "bitstream with open tools (yosys + nextpnr from PyPI; make bitstream BOARD=ulx3s-85f)")
    say(f"running vitis_hls and vivado in {vendor} (logs there; this takes a while)")
    dest = run_tools(build, cfg.jobs)
    say(f"bitstream {dest / (OVERLAY + '.bit')} and {dest / (OVERLAY + '.hwh')} with the PYNQ driver in {dest} "
        "(copy the folder to the board; see README.md there)")
    return dest
