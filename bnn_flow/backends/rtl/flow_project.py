"""The accelerator the open flow builds: BUILD/rtl/rtl_project.json (the rtl target's contract), its files
staged into the flow's working folder, and the parameters of board_top.v around it.

rtl_project.json: {"top": "bnn_top", "sources": [...], "library": [...], "memfiles": [...], "in": {...},
"out": {...}, "classes": N}; "in"/"out" hold width, elems_per_beat, elem_bits, signed, beats_per_frame and
elems_per_frame. Sources and memory files are paths relative to the rtl folder; a library entry is such a path
or the name of a file of the package's Verilog library (verilog/). Every name reaches the yosys script and
the tools' command lines only as a checked word (bnn_flow.sanitize): BUILD folders may be hostile.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path, PurePosixPath

from bnn_flow import sanitize
from bnn_flow.errors import BadInputError

from .board_protocol import MAX_OUT_BITS, Layout, design_id
from .flow_board import BUFFER_BITS, OpenBoard

PROJECT_JSON = "rtl_project.json"
VERILOG_DIR = Path(str(files(__package__) / "verilog"))
TOP = "bnn_top"
SIDE_KEYS = ("width", "elems_per_beat", "elem_bits", "signed", "beats_per_frame")
BOARD_FILES = ("uart_rx.v", "uart_tx.v", "board_top.v", "bnn_fifo.v", "bnn_fifo_lut.v")  # board_top's own
TIMEOUT_S = 0.1  # board_top drops a stalled frame after this long (the host then resynchronizes)


@dataclass(frozen=True)
class Side:
    width: int
    elems_per_beat: int
    elem_bits: int
    signed: bool
    beats_per_frame: int
    elems_per_frame: int


@dataclass(frozen=True)
class Project:
    """A checked rtl_project.json and the files it names (absolute paths, relative names in the work folder)."""

    rtl_dir: Path
    inp: Side
    out: Side
    classes: int
    sources: list[tuple[Path, str]]  # (file, its name in the work folder)
    memfiles: list[tuple[Path, str]]
    ii_estimate: int = 0  # the generator's cycles per frame estimate, when it gives one

    @property
    def design_files(self) -> list[Path]:
        return [self.rtl_dir / PROJECT_JSON] + [p for p, _ in self.sources + self.memfiles]


def _side(d: object, name: str, where: str) -> Side:
    if not isinstance(d, dict) or any(k not in d for k in SIDE_KEYS):
        raise BadInputError(f"{where}: \"{name}\" must hold {', '.join(SIDE_KEYS)}; regenerate the RTL project")
    try:
        vals = [int(d[k]) for k in ("width", "elems_per_beat", "elem_bits", "beats_per_frame")]
        elems = int(d.get("elems_per_frame", vals[1] * vals[3]))
    except (TypeError, ValueError):
        raise BadInputError(f"{where}: \"{name}\" sizes must be integers") from None
    width, epb, bits, beats = vals
    if min(vals) < 1 or epb * bits > width or not 0 < elems <= epb * beats:
        raise BadInputError(f"{where}: \"{name}\": {epb} x {bits}-bit elements in {width}-bit beats, {beats} beats "
                            f"for {elems} elements per frame do not add up")
    return Side(width, epb, bits, bool(d["signed"]), beats, elems)


def _rel(entry: object, where: str) -> PurePosixPath:
    """A relative path inside the rtl folder (no .., not absolute), as checked words."""
    p = PurePosixPath(sanitize.word(entry, where))
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise BadInputError(f"{where} {entry!r} must be a path inside the RTL folder")
    return p


def load_project(rtl_dir: Path) -> Project:
    """rtl_dir/rtl_project.json, checked against the files it names; one-line errors."""
    path = rtl_dir / PROJECT_JSON
    if not path.is_file():
        raise BadInputError(f"{path} is missing: generate the RTL project first (the rtl target)")
    try:
        proj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInputError(f"{path}: not valid JSON ({e}); regenerate the RTL project") from None
    if not isinstance(proj, dict) or any(k not in proj for k in ("top", "sources", "in", "out", "classes")):
        raise BadInputError(f"{path}: needs top, sources, in, out and classes; regenerate the RTL project")
    if proj["top"] != TOP:
        raise BadInputError(f"{path}: the top must be {TOP} (board_top.v instantiates it), not {proj['top']!r}")
    inp, out = _side(proj["in"], "in", str(path)), _side(proj["out"], "out", str(path))
    classes = proj["classes"]
    if not (isinstance(classes, int) and 0 < classes <= out.elems_per_beat * out.beats_per_frame):
        raise BadInputError(f"{path}: classes {classes!r} does not fit the output stream")
    if out.elem_bits > MAX_OUT_BITS or inp.elem_bits > 32:
        raise BadInputError(f"{path}: elements wider than 32 bits (the UART protocol sends int32 accumulators)")
    sources: list[tuple[Path, str]] = []
    for entry in [*proj["sources"], *proj.get("library", [])]:
        rel = _rel(entry, f"{path}: source")
        if (rtl_dir / rel).is_file():
            sources.append((rtl_dir / rel, str(rel)))
        elif len(rel.parts) == 1 and (VERILOG_DIR / rel.name).is_file():
            sources.append((VERILOG_DIR / rel.name, rel.name))
        else:
            raise BadInputError(f"{path}: source {entry!r} not found in {rtl_dir} nor in the Verilog library")
    memfiles = []
    for entry in proj.get("memfiles", []):
        rel = _rel(entry, f"{path}: memory file")
        if not (rtl_dir / rel).is_file():
            raise BadInputError(f"{path}: memory file {entry!r} not found in {rtl_dir}")
        memfiles.append((rtl_dir / rel, str(rel)))
    names = [n for _, n in sources + memfiles]
    if len(set(names)) != len(names):
        raise BadInputError(f"{path}: a file is named twice")
    ii = proj.get("ii_estimate")
    return Project(rtl_dir, inp, out, classes, sources, memfiles, int(ii) if isinstance(ii, (int, float)) else 0)


def stage(project: Project, ob: OpenBoard, work: Path) -> list[str]:
    """Copy the accelerator, board_top and the board wrapper into `work` (relative names kept: $readmemh
    paths are relative to it); returns the Verilog files to read, in order (relative names)."""
    work.mkdir(parents=True, exist_ok=True)
    names = [n for _, n in project.sources]
    extra = [(VERILOG_DIR / n, n) for n in (*BOARD_FILES, f"{ob.top}.v") if n not in names]
    for src, rel in [*project.sources, *project.memfiles, *extra]:
        dest = work / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    shutil.copyfile(ob.constraints, work / f"board{ob.constraints.suffix}")
    return [rel for _, rel in [*project.sources, *extra]]


def layout(project: Project, clock_hz: int, baud: int, family: str) -> Layout:
    """The frames on the wire for this accelerator on a board (board_protocol.Layout)."""
    i, o = project.inp, project.out
    return Layout(in_bits=i.elem_bits, in_signed=i.signed, in_elems=i.elems_per_beat * i.beats_per_frame,
                  frame_elems=i.elems_per_frame, out_words=o.elems_per_beat * o.beats_per_frame,
                  classes=project.classes, design_id=design_id(project.design_files), clock_hz=clock_hz, baud=baud,
                  store_and_forward=input_buffer(project, family)[0] >= i.beats_per_frame)


def input_buffer(project: Project, family: str) -> tuple[int, int]:
    """(depth in beats, 1 for block RAM) of board_top's input buffer: the whole frame when it fits the
    family's budget (the core then starts on a complete frame, so the cycle count is its own), else as much.
    A shallow buffer stays in LUT RAM (ECP5: 16 x 4 bits a cell; a wide beat in block RAM would take a DP16KD
    per 36 bits for a few words); iCE40 has no LUT RAM, so anything but a tiny buffer goes to its EBR."""
    i = project.inp
    depth = max(2, min(i.beats_per_frame, BUFFER_BITS[family] // i.width))
    block = int(depth > 64 if family == "ecp5" else depth >= 8)
    return depth, block


def top_params(project: Project, lay: Layout, cpb: int, family: str) -> dict[str, int]:
    """board_top's parameters (forwarded by the family wrapper)."""
    i, o = project.inp, project.out
    depth, block = input_buffer(project, family)
    return {"CLKS_PER_BIT": cpb, "IN_W": i.width, "IN_EPB": i.elems_per_beat, "IN_EB": i.elem_bits,
            "IN_SIGNED": int(i.signed), "IN_BEATS": i.beats_per_frame, "OUT_W": o.width,
            "OUT_EPB": o.elems_per_beat, "OUT_EB": o.elem_bits, "OUT_SIGNED": int(o.signed),
            "OUT_BEATS": o.beats_per_frame, "IN_FIFO_DEPTH": depth, "IN_FIFO_BLOCK": block,
            "OUT_FIFO_DEPTH": max(2, o.beats_per_frame), "DESIGN_ID": lay.design_id,
            "CLK_HZ": lay.clock_hz, "TIMEOUT_CLKS": int(lay.clock_hz * TIMEOUT_S)}

