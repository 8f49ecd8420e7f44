"""The open flow's view of a board: the `open_flow` section of a Lattice board file (bnn_flow/boards/*.yaml),
its constraint file, the design clock (PLL settings from ecppll / icepll) and the UART divider.

A board file of family ecp5 or ice40 holds, besides the common fields (bnn_flow.boards):

    open_flow:
      device: 85k | up5k ...       nextpnr's device flag (--85k, --up5k)
      package: CABGA381 | sg48     nextpnr's --package
      speed: 6                     ECP5 speed grade (nextpnr-ecp5 --speed); absent for iCE40
      constraints: ecp5/x.lpf      the pin file, relative to the board file's folder (.lpf ECP5, .pcf iCE40)
      oscillator_mhz: 25           the board oscillator on the clk_osc pin
      uart_baud: 3000000           the USB-UART's rate
      reset_active_low: false      the reset button's polarity
      pins: {clk_osc: G2, ...}     the sites of the top's ports (documentation; must equal the constraint file's)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from bnn_flow import sanitize
from bnn_flow.boards import BOARD_DIR, Board, load_board
from bnn_flow.errors import BadInputError

from .flow_tools import Runner, Tool

# family -> (synthesis top in verilog/, yosys synth command, nextpnr, packer, PLL calculator, devices)
FAMILY = {
    "ecp5": {"top": "board_ecp5", "synth": "synth_ecp5", "pnr": "nextpnr-ecp5", "pack": "ecppack", "pll": "ecppll",
             "constraints": ".lpf", "bitstream": ".bit",
             "devices": ("12k", "25k", "45k", "85k", "um-25k", "um-45k", "um-85k", "um5g-25k", "um5g-45k",
                         "um5g-85k")},
    "ice40": {"top": "board_ice40", "synth": "synth_ice40", "pnr": "nextpnr-ice40", "pack": "icepack",
              "pll": "icepll", "constraints": ".pcf", "bitstream": ".bin",
              "devices": ("lp384", "lp1k", "lp4k", "lp8k", "hx1k", "hx4k", "hx8k", "up3", "up5k", "u1k", "u2k",
                          "u4k")},
}
# Input buffer of board_top: a whole frame up to this many bits (store and forward), else cut-through.
BUFFER_BITS = {"ecp5": 4 * 18432, "ice40": 8 * 4096}
MAX_BAUD_ERROR = 0.02  # the UART divider's own error; the receiver tolerates about 4% over a character
ICE40_PLL_MHZ = (16.0, 275.0)  # SB_PLL40 output range (iCE40 sysCLOCK PLL, PLLOUT)


@dataclass(frozen=True)
class OpenBoard:
    board: Board
    family: str
    device: str
    package: str
    speed: int | None
    constraints: Path
    oscillator_mhz: float
    baud: int
    reset_active_low: bool
    pins: dict
    clock_note: str = ""  # why the board's default clock is what it is (the report quotes it)

    @property
    def name(self) -> str:
        return self.board.name

    @property
    def top(self) -> str:
        return FAMILY[self.family]["top"]

    @property
    def bitstream_suffix(self) -> str:
        return FAMILY[self.family]["bitstream"]


def board_file(name_or_path: str) -> Path:
    """The YAML file of a board, as load_board finds it (a name is never a path)."""
    path = Path(name_or_path)
    return path if path.suffix else BOARD_DIR / f"{name_or_path}.yaml"


def load_open_board(name_or_path: str) -> OpenBoard:
    """A board of family ecp5 or ice40 with its open_flow section, checked; one-line errors."""
    board = load_board(name_or_path)
    path = board_file(name_or_path)
    if board.family not in FAMILY:
        raise BadInputError(f"board {board.name} is a {board.family} board: the open flow builds for ECP5 and iCE40 "
                            f"boards ({', '.join(sorted(FAMILY))}); use --flow vendor for it")
    d = yaml.safe_load(path.read_text()).get("open_flow")
    where = f"{path}: open_flow"
    if not isinstance(d, dict):
        raise BadInputError(f"{where} is missing (device, package, constraints, oscillator_mhz, uart_baud, pins)")
    missing = [k for k in ("device", "package", "constraints", "oscillator_mhz", "uart_baud", "pins") if k not in d]
    if missing:
        raise BadInputError(f"{where} lacks {', '.join(missing)}")
    fam = FAMILY[board.family]
    device = sanitize.word(d["device"], f"{where}.device")
    if device not in fam["devices"]:
        raise BadInputError(f"{where}.device must be one of {', '.join(fam['devices'])}, not {device!r}")
    speed = d.get("speed")
    if board.family == "ecp5" and speed not in (6, 7, 8):
        raise BadInputError(f"{where}.speed must be the ECP5 speed grade 6, 7 or 8")
    constraints = path.parent / sanitize.word(d["constraints"], f"{where}.constraints")
    if constraints.suffix != fam["constraints"] or not constraints.is_file():
        raise BadInputError(f"{where}.constraints: {constraints} is not a {fam['constraints']} file")
    osc, baud = d["oscillator_mhz"], d["uart_baud"]
    if not (isinstance(osc, (int, float)) and 1 <= osc <= 500):
        raise BadInputError(f"{where}.oscillator_mhz must be a number in [1, 500] MHz")
    if not (isinstance(baud, int) and 300 <= baud <= 12_000_000):
        raise BadInputError(f"{where}.uart_baud must be an integer in [300, 12000000]")
    if not isinstance(d["pins"], dict):
        raise BadInputError(f"{where}.pins must map the top's ports to sites")
    return OpenBoard(board, board.family, device, sanitize.word(d["package"], f"{where}.package"),
                     None if speed is None else int(speed), constraints, float(osc), baud,
                     bool(d.get("reset_active_low", False)), dict(d["pins"]),
                     _clock_note(d.get("clock_note", ""), where))


def _clock_note(note: object, where: str) -> str:
    """The board's reason for its default clock: report text only (never code), one printable line."""
    if not (isinstance(note, str) and len(note) <= 300 and note.isprintable()):
        raise BadInputError(f"{where}.clock_note must be one printable line of at most 300 characters")
    return note


def constraint_pins(path: Path) -> dict[str, str]:
    """{port: site} of an .lpf (LOCATE COMP "port" SITE "site") or .pcf (set_io [-opts] port pin) file."""
    text = path.read_text()
    if path.suffix == ".lpf":
        return dict(re.findall(r'^\s*LOCATE\s+COMP\s+"([^"]+)"\s+SITE\s+"([^"]+)"', text, re.M))
    pins = {}
    for line in text.splitlines():
        words = line.split("#")[0].split()
        if words[:1] == ["set_io"]:
            args = [w for w in words[1:] if w != "-nowarn"]
            while args and args[0].startswith("-"):  # an option and its value (-pullup yes)
                args = args[2:]
            if len(args) >= 2:
                pins[args[0]] = args[1]
    return pins


def yaml_pins(ob: OpenBoard) -> dict[str, str]:
    """The board file's pins as {port: site}, a list (led: [...]) as led[0], led[1], ..."""
    out = {}
    for port, site in ob.pins.items():
        if isinstance(site, list):
            out.update({f"{port}[{i}]": str(s) for i, s in enumerate(site)})
        else:
            out[str(port)] = str(site)
    return out


def check_pins(ob: OpenBoard) -> None:
    """The constraint file places exactly the ports the board file lists, on the same sites (an unplaced
    port would land on any pin: on a real board, maybe one that drives something)."""
    want, got = yaml_pins(ob), constraint_pins(ob.constraints)
    if want != got:
        diff = sorted(set(want.items()) ^ set(got.items()))
        raise BadInputError(f"{ob.constraints} and the pins of board {ob.name} differ: {diff[:4]}")


def clocks_per_bit(clock_hz: float, baud: int) -> int:
    """The UART divider; BadInputError when the clock cannot make the baud rate closely enough."""
    cpb = round(clock_hz / baud)
    err = abs(clock_hz / max(cpb, 1) - baud) / baud
    if cpb < 4 or err > MAX_BAUD_ERROR:
        raise BadInputError(f"a {clock_hz / 1e6:g} MHz clock cannot make {baud} baud (divider {cpb}, error "
                            f"{100 * err:.1f}%): choose a clock near a multiple of {baud / 1e6:g} MHz")
    return cpb


def _number(pattern: str, text: str, what: str) -> float:
    m = re.search(pattern, text)
    if not m:
        raise BadInputError(f"could not read {what} from the PLL calculator's output: {text[-300:]!r}")
    return float(m.group(1))


def pll_params(ob: OpenBoard, clock_mhz: float, runner: Runner, tool: Tool) -> tuple[dict[str, int], float]:
    """({wrapper parameter: value}, achieved MHz) for the design clock `clock_mhz` from the oscillator.

    ECP5: ecppll's EHXPLLL setting (always a PLL). iCE40: the oscillator itself when the clock equals it, else
    icepll's SB_PLL40_PAD setting. BadInputError when the PLL cannot make the clock.
    """
    osc = ob.oscillator_mhz
    if ob.family == "ice40":
        if abs(clock_mhz - osc) < 1e-9:
            return {"USE_PLL": 0}, osc
        lo, hi = ICE40_PLL_MHZ
        if not lo <= clock_mhz <= hi:
            raise BadInputError(f"the iCE40 PLL makes {lo:g} to {hi:g} MHz, not {clock_mhz:g}: use {osc:g} MHz (the "
                                "oscillator) or a clock in that range")
        out = runner.run("pll", tool, ["-i", f"{osc:g}", "-o", f"{clock_mhz:g}"])
        p = {k: int(_number(rf"{k}:\s*(\d+)", out, k)) for k in ("DIVR", "DIVF", "DIVQ", "FILTER_RANGE")}
        return {"USE_PLL": 1, **p}, _number(r"F_PLLOUT:\s*([\d.]+)\s*MHz \(achieved\)", out, "the output clock")
    out = runner.run("pll", tool, ["-i", f"{osc:g}", "-o", f"{clock_mhz:g}", "-f", "ecppll.v"])
    text = (runner.cwd / "ecppll.v").read_text()
    p = {k: int(_number(rf"\.{k}\((\d+)\)", text, k)) for k in ("CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV", "CLKOP_CPHASE")}
    return p, _number(r"clkout0 frequency:\s*([\d.]+)\s*MHz", out, "the output clock")
