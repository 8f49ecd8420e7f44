"""FPGA board definitions (board/*.yaml): part, default clock and resource budget.

A board file holds: name, part, board_part (Vivado board files, optional), family (zynq7000 or zynq_us+: the
vendor flow's; ecp5 or ice40: the open flow's, whose files add an open_flow section that
bnn_flow/backends/rtl/flow_board.py reads, with resources in the same keys: LUT = LUT4, BRAM18 = DP16KD / EBR),
clock_mhz (default PL clock), resources {LUT, FF, BRAM18, URAM, DSP}, pynq (PYNQ image available),
dma_bits (bits per clock the DMA streams in and out; default by family: 64 for the Zynq-7000 HP ports,
128 for Zynq UltraScale+) and infrastructure {LUT, FF, BRAM18, DSP}: what the shell around the
accelerator takes (DMA, AXI interconnect, resets), counted against the budget by the folding step
(default DEFAULT_INFRASTRUCTURE), and fit_limits {LUT, BRAM18, DSP}: the fraction of each budget a folding may fill
(default 0.85 each; a board lowers one where its tools need the room, e.g. LUTs for routing on the ULX3S).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import yaml

from bnn_flow import sanitize
from bnn_flow.errors import BadInputError

# package data (importlib.resources, as hls4ml ships its templates): the board files and pynq/ travel with a wheel
BOARD_DIR = Path(str(files(__name__)))
PYNQ_DRIVER_DIR = BOARD_DIR / "pynq"  # the PYNQ board driver: copied to the board, never imported here
FAMILIES = ("zynq7000", "zynq_us+", "ecp5", "ice40")
VENDOR_FAMILIES = ("zynq7000", "zynq_us+")  # Vivado + PYNQ (--flow vendor); ecp5 and ice40 take --flow open
RESOURCE_KEYS = ("LUT", "FF", "BRAM18", "URAM", "DSP")
INFRA_KEYS = ("LUT", "FF", "BRAM18", "DSP")
# An AXI DMA (read + write, simple mode) plus an AXI SmartConnect to an HP port and the AXI-Lite control
# interconnect: a few thousand LUTs and a few BRAM18 FIFOs (docs/hls-estimates.md, "infrastructure").
DEFAULT_INFRASTRUCTURE = {"LUT": 5000, "FF": 7000, "BRAM18": 4, "DSP": 0}
FIT_KEYS = ("LUT", "BRAM18", "DSP")
# 15% of every budget kept free for routing and what the estimates miss (docs/hls-estimates.md, --margin)
DEFAULT_FIT_LIMIT = 0.85
# AXI HP port data width (UG585, UG1085). The Lattice boards feed the core from an on-chip frame buffer behind a
# UART whose rate the open flow reports on its own: no host-link bound for the folding.
DMA_BITS = {"zynq7000": 64, "zynq_us+": 128, "ecp5": 4096, "ice40": 4096}


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    family: str
    clock_mhz: float
    resources: dict[str, int]
    board_part: str | None = None
    pynq: bool = False
    infrastructure: dict[str, int] | None = None
    dma_bits: int | None = None
    fit_limits: dict[str, float] | None = None  # fraction of each of FIT_KEYS a folding may fill

    def __post_init__(self) -> None:
        if self.fit_limits is None:
            object.__setattr__(self, "fit_limits", dict.fromkeys(FIT_KEYS, DEFAULT_FIT_LIMIT))
        if self.infrastructure is None:
            object.__setattr__(self, "infrastructure", dict(DEFAULT_INFRASTRUCTURE))
        if self.dma_bits is None:
            object.__setattr__(self, "dma_bits", DMA_BITS[self.family])


def board_names(families: tuple[str, ...] | None = None) -> list[str]:
    """Every board's name, or those of the given families only."""
    names = sorted(p.stem for p in BOARD_DIR.glob("*.yaml"))
    return names if families is None else [n for n in names if load_board(n).family in families]


def load_board(name_or_path: str) -> Board:
    """A board by name (board/NAME.yaml) or by the path of a YAML file; one-line errors."""
    path = Path(name_or_path)
    if not path.suffix:  # a board name: one of ours (a name is never a path: BUILD/report.json may be hostile)
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name_or_path):
            raise BadInputError(f"unknown board {name_or_path!r} (boards: {', '.join(board_names())}, "
                                "or the path of a board YAML)")
        path = BOARD_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise BadInputError(f"unknown board {name_or_path!r} (boards: {', '.join(board_names())}, "
                            "or the path of a board YAML)")
    try:
        d = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as e:
        raise BadInputError(f"{path}: not a readable YAML file ({str(e).splitlines()[0]})") from None
    if not isinstance(d, dict):
        raise BadInputError(f"{path}: a board file is a YAML mapping (name, part, family, clock_mhz, resources)")
    missing = [k for k in ("name", "part", "family", "clock_mhz", "resources") if k not in d]
    if missing:
        raise BadInputError(f"{path}: missing {', '.join(missing)}")
    for key in ("name", "part", "board_part"):  # they end up in Vivado Tcl: checked words only
        if d.get(key) is not None:
            sanitize.word(d[key], f"{path}: {key}")
    if d["family"] not in FAMILIES:
        raise BadInputError(f"{path}: family must be one of {', '.join(FAMILIES)}, not {d['family']!r}")
    res = d["resources"]
    if not isinstance(res, dict):
        raise BadInputError(f"{path}: resources must be a mapping of LUT, FF, BRAM18, URAM, DSP counts")
    bad = [k for k in RESOURCE_KEYS if not isinstance(res.get(k, 0), int) or res.get(k, 0) < 0]
    if bad or not all(k in res for k in ("LUT", "BRAM18", "DSP")):
        raise BadInputError(f"{path}: resources need non-negative integers LUT, FF, BRAM18, URAM, DSP")
    if not (isinstance(d["clock_mhz"], (int, float)) and 0 < d["clock_mhz"] <= 1000):
        raise BadInputError(f"{path}: clock_mhz must be a number in (0, 1000] MHz")
    if not isinstance(d.get("infrastructure") or {}, dict):
        raise BadInputError(f"{path}: infrastructure must be a mapping of LUT, FF, BRAM18, DSP counts")
    infra = {**DEFAULT_INFRASTRUCTURE, **(d.get("infrastructure") or {})}
    if set(infra) - set(INFRA_KEYS) or not all(isinstance(v, int) and v >= 0 for v in infra.values()):
        raise BadInputError(f"{path}: infrastructure takes non-negative integers {', '.join(INFRA_KEYS)}")
    if not isinstance(d.get("fit_limits") or {}, dict):
        raise BadInputError(f"{path}: fit_limits must be a mapping of {', '.join(FIT_KEYS)} fractions")
    fit = {**dict.fromkeys(FIT_KEYS, DEFAULT_FIT_LIMIT), **(d.get("fit_limits") or {})}
    if set(fit) - set(FIT_KEYS) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1
                                           for v in fit.values()):
        raise BadInputError(f"{path}: fit_limits takes fractions in (0, 1] of {', '.join(FIT_KEYS)}")
    dma = d.get("dma_bits", DMA_BITS[d["family"]])
    if not (isinstance(dma, int) and dma > 0 and dma % 8 == 0):
        raise BadInputError(f"{path}: dma_bits must be a positive multiple of 8")
    return Board(str(d["name"]), str(d["part"]), d["family"], float(d["clock_mhz"]),
                 {k: int(res.get(k, 0)) for k in RESOURCE_KEYS}, d.get("board_part"), bool(d.get("pynq", False)),
                 infra, dma, {k: float(v) for k, v in fit.items()})
