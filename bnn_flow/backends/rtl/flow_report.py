"""The open flow's report (BUILD/bitstream/report.json and report.txt): resources used against the device
(nextpnr's `--report` after placement, with yosys's `stat -json` cell counts of the core and of the UART top),
the achieved Fmax per clock, the netlist check, the frame rates (the core's at its clock, the UART's), each
stage's time and the tool versions. Also the two checks that stop a bitstream: the design must fit, and
every clock must meet its constraint.
"""

from __future__ import annotations

import json
from pathlib import Path

from bnn_flow.errors import CheckFailedError

# family -> [(row, nextpnr utilization key)]: the rows of the resource table
ROWS = {
    "ecp5": [("LUT4", "TRELLIS_COMB"), ("FF", "TRELLIS_FF"), ("DP16KD", "DP16KD"), ("MULT18", "MULT18X18D"),
             ("PLL", "EHXPLLL"), ("IO", "TRELLIS_IO")],
    "ice40": [("LUT4 (LC)", "ICESTORM_LC"), ("EBR", "ICESTORM_RAM"), ("DSP", "ICESTORM_DSP"), ("PLL", "ICESTORM_PLL"),
              ("IO", "SB_IO")],
}
CORE = "bnn_top"


def read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckFailedError(f"{what} {path} is missing or unreadable ({e}): the tool did not finish") from None


def cell_counts(stat: dict) -> dict[str, dict[str, int]]:
    """{"design": whole hierarchy, "core": bnn_top alone, "board_top": the rest} cell counts by type."""
    def clean(d: dict) -> dict[str, int]:
        return {k: int(v) for k, v in sorted(d.items()) if not k.startswith("$") and k != CORE}

    design = clean(stat["design"]["num_cells_by_type"])
    core = next((clean(m["num_cells_by_type"]) for name, m in stat["modules"].items() if name.lstrip("\\") == CORE),
                {})
    rest = {k: design.get(k, 0) - core.get(k, 0) for k in design if design.get(k, 0) - core.get(k, 0)}
    return {"design": design, "core": core, "board_top": rest}


def ff_count(cells: dict[str, int]) -> int:
    return sum(v for k, v in cells.items() if k == "TRELLIS_FF" or k.startswith("SB_DFF"))


def lut_count(cells: dict[str, int], family: str) -> int:
    """LUT4s of a synthesized netlist: ECP5 carries hold two, LUT RAM four (two slices); iCE40 SB_LUT4."""
    if family == "ecp5":
        return cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0) + 4 * cells.get("TRELLIS_DPR16X4", 0)
    return cells.get("SB_LUT4", 0)


def resources(pnr: dict, family: str, synth: dict[str, dict[str, int]]) -> dict[str, dict]:
    """The resource table: {row: {"used", "available", "percent"}} from nextpnr's utilization (FF on iCE40 from
    yosys: nextpnr counts logic cells)."""
    util = pnr.get("utilization", {})
    rows: dict[str, dict] = {}
    for row, key in ROWS[family]:
        u = util.get(key, {"used": 0, "available": 0})
        rows[row] = {"used": int(u["used"]), "available": int(u["available"])}
        if key == "ICESTORM_LC":  # each logic cell has one flip-flop
            rows["FF"] = {"used": ff_count(synth["design"]), "available": int(u["available"])}
    for r in rows.values():
        r["percent"] = round(100.0 * r["used"] / r["available"], 1) if r["available"] else None
    return rows


def fmax(pnr: dict) -> dict[str, dict[str, float]]:
    """{clock net: {"achieved_mhz", "constraint_mhz"}} from nextpnr's report."""
    return {net: {"achieved_mhz": round(float(v["achieved"]), 2), "constraint_mhz": round(float(v["constraint"]), 2)}
            for net, v in pnr.get("fmax", {}).items()}


def check_fit(rows: dict[str, dict], board: str) -> None:
    over = [f"{k} {v['used']:,} of {v['available']:,}" for k, v in rows.items() if v["available"]
            and v["used"] > v["available"]]
    if over:
        raise CheckFailedError(f"the design does not fit the {board}: {', '.join(over)}; fold for fewer resources "
                               f"(bnn-flow compile --board {board} --fit)")


def check_timing(clocks: dict[str, dict[str, float]], clock_mhz: float) -> None:
    """Every constrained clock reaches its constraint (the design clock: the requested one)."""
    if not clocks:
        raise CheckFailedError("nextpnr reported no clock: the design clock is not constrained (no bitstream written)")
    failed = [f"{net}: {c['achieved_mhz']:.1f} MHz < {c['constraint_mhz']:.1f} MHz" for net, c in clocks.items()
              if c["achieved_mhz"] + 1e-6 < c["constraint_mhz"]]
    if failed:
        best = min(c["achieved_mhz"] for c in clocks.values())
        raise CheckFailedError(f"timing not met at {clock_mhz:g} MHz ({'; '.join(failed)}): no bitstream written; "
                               f"rerun with --clock-mhz {int(best)} or below, or fold for a shorter critical path")


def rtl_target_ii(rtl_dir: Path) -> float | None:
    """The II the rtl target measured in Verilator (BUILD/rtl/cycles.json), when that file is newer than the
    design it describes (rtl_project.json), else None."""
    path, proj = rtl_dir / "cycles.json", rtl_dir / "rtl_project.json"
    try:
        if path.stat().st_mtime < proj.stat().st_mtime:
            return None
        ii = json.loads(path.read_text())["ii"]["measured"]
        return float(ii) if ii is not None else None
    except (OSError, KeyError, TypeError, ValueError):
        return None


def fps(cycles: int | None, clock_mhz: float, fmax_mhz: float | None, uart_fps: float, request: int,
        reply: int, rtl_ii: float | None = None) -> dict:
    """Frames per second: the core's (its netlist's cycles per frame at the design clock and at its Fmax), the
    UART's (one request at a time), the board's (the smaller)."""
    core = None if not cycles else clock_mhz * 1e6 / cycles
    return {"core_cycles_per_frame": cycles, "rtl_target_ii": rtl_ii,
            "core_fps": None if core is None else round(core, 1),
            "core_fps_at_fmax": None if not cycles or not fmax_mhz else round(fmax_mhz * 1e6 / cycles, 1),
            "uart_fps": round(uart_fps, 1), "request_bytes": request, "reply_bytes": reply,
            "board_fps": None if core is None else round(min(core, uart_fps), 1)}


def text(rep: dict) -> str:
    """report.txt: the tables a person reads."""
    lines = [f"open flow: {rep['board']} ({rep['part']}), design clock {rep['clock_mhz']:g} MHz "
             f"(requested {rep['clock_mhz_requested']:g}), UART {rep['baud']:,} baud, seed {rep['seed']}",
             *([f"clock: {rep['clock_note']}"] if rep.get("clock_note") else []),
             f"bitstream: {rep['bitstream']}   design id {rep['design_id']}", "",
             f"{'resource':<12} {'used':>9} {'available':>10} {'%':>6}"]
    for k, v in rep["resources"].items():
        pct = "" if v["percent"] is None else f"{v['percent']:.1f}"
        lines.append(f"{k:<12} {v['used']:>9,} {v['available']:>10,} {pct:>6}")
    syn = rep["synthesis"]
    lines += ["", f"synthesis (LUT4 / FF): core {syn['core_lut4']:,} / {syn['core_ff']:,}, UART board top "
              f"{syn['board_top_lut4']:,} / {syn['board_top_ff']:,}", "", "clock                                 "
              "achieved MHz  constraint MHz"]
    for net, c in rep["fmax"].items():
        lines.append(f"{net[:36]:<37} {c['achieved_mhz']:>12.1f} {c['constraint_mhz']:>15.1f}")
    n, f = rep["netlist_check"], rep["fps"]
    lines += ["", f"post-synthesis netlist: {n['frames']} frames {'bit-exact' if n['bit_exact'] else 'MISMATCH'} "
              f"against {rep['reference']} ({n['simulator']}); {n['cycles_per_frame']} cycles per frame (latency "
              f"{n['latency_cycles']})" + ("" if f["rtl_target_ii"] is None else
                                           f"; the rtl target measured {f['rtl_target_ii']:.1f} in Verilator"),
              f"frames per second: core {f['core_fps']} at {rep['clock_mhz']:g} MHz ({f['core_fps_at_fmax']} at its "
              f"Fmax), UART {f['uart_fps']} ({f['request_bytes']} + {f['reply_bytes']} bytes a frame), board "
              f"{f['board_fps']}", "",
              "stage times (s): " + ", ".join(f"{k} {v:.1f}" for k, v in rep["stages"].items()),
              "tools: " + "; ".join(f"{k}: {v}" for k, v in rep["tools"].items())]
    return "\n".join(lines) + "\n"
