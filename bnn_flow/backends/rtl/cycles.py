"""Cycle measurement of an RTL simulation against the estimate: BUILD/rtl/cycles.json and cycles.txt.

What the simulation measures (sim.py, sim/tb.cpp), frames streamed back to back without stalls:
* II (initiation interval): cycles between the first output beats of successive frames, averaged over the
  steady-state window (past the pipeline's fill: from frame N/4 to the last frame); also the interval between
  the frames' first accepted input beats, which must agree in steady state.
* latency: from a frame's first accepted input beat to its last output beat (the first frame, into an empty
  pipeline; and the mean over the window, which includes waiting behind earlier frames).
* per stage, in the window while the input still flows (after the last input beat the first stages idle while
  the last ones drain): cycles with in_valid & in_ready (beats taken), in_valid & !in_ready (its producer
  waits on it), !in_valid & in_ready (it waits on its producer), out_valid & out_ready, out_valid &
  !out_ready (it waits on its consumer); per FIFO the maximum occupancy.
* per stage, its own cycles per frame: the same model, reset, with every stage fed and drained at full speed
  (the BNN_PROBES isolation mode of bnn_top: FIFOs bypassed), from the cycles at which it completes frames.
  Inside the pipeline every stage runs at the design's II, so a layer's own speed is only visible alone.
Why probes in the testbench and not counters in the design: the top only brings the handshake bits out
(under `ifdef BNN_PROBES, which synthesis never defines), and the C++ testbench counts whatever window it
needs (fill excluded, per frame, FIFO occupancy from push/pop) with no counter logic in the Verilog.

The estimate is the RTL table's formulas (layers.py): per stage cycles per frame, the design's II = their
maximum. `compare` flags a stage or the II whose measurement differs by more than TOLERANCE.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bnn_flow.backends.rtl.sim import SimResult
from bnn_flow.fileio import write_json_atomic, write_text_atomic

CYCLES_JSON = "cycles.json"
CYCLES_TXT = "cycles.txt"
TOLERANCE = 0.05
COUNTS = ("in_fire", "in_wait", "in_starved", "out_fire", "out_blocked")


def _rel(measured: float | None, estimated: float) -> float | None:
    return None if measured is None or not estimated else (measured - estimated) / estimated


def report(r: SimResult, fifo_record: dict | None = None) -> dict:
    """The cycle record of a run (unstalled, at least 3 frames for an II) as plain JSON data."""
    d, frames, win = r.design, r.frames, r.ii_window()
    n = len(frames)
    measured = r.measured_ii()
    rec: dict = {"frames": n, "window": list(win) if win else None, "stalls": r.stalls.any,
                 "simulation": {"cycles": r.stats.get("cycles"), "wall_s": round(r.wall_s, 3),
                                "images_per_s": round(n / r.wall_s, 2) if r.wall_s > 0 else None,
                                "build_s": round(r.build_s, 3),
                                "cycles_per_s": round(r.stats.get("cycles", 0) / r.wall_s) if r.wall_s > 0 else None}}
    if win:
        a, b = win
        out_gaps = np.diff(frames[a:b + 1, 2])
        rec["measured"] = {"ii": measured, "ii_min": int(out_gaps.min()), "ii_max": int(out_gaps.max()),
                           "input_interval": float(frames[b, 0] - frames[a, 0]) / (b - a),
                           "latency_first_frame": int(frames[0, 3] - frames[0, 0]),
                           "latency_mean": float(np.mean(frames[a:b + 1, 3] - frames[a:b + 1, 0]))}
    else:
        rec["measured"] = {"ii": None, "latency_first_frame": int(frames[0, 3] - frames[0, 0]) if n else None}
    err = _rel(measured, d.ii_estimate)
    rec["ii"] = {"estimated": d.ii_estimate, "measured": measured, "error": err,
                 "bottleneck": d.bottleneck.name, "within_tolerance": None if err is None else abs(err) <= TOLERANCE}
    # per-stage counts cover busy_cycles (the window while the input still flows): per frame at the II
    busy = r.stats.get("busy_cycles", 0)
    span = busy / measured if win and busy and measured else 0
    iso = r.iso_cycles()
    layers = []
    for s in d.stages:
        own = iso[s.index] if s.index < len(iso) else None
        e = _rel(own, s.cycles)
        row = {"name": s.name, "kind": s.kind, "module": s.module, "instance": s.instance,
               "PE": s.params.get("PE"), "SIMD": s.params.get("SIMD"), "estimated_cycles": s.cycles,
               "measured_cycles": own, "error": e, "within_tolerance": None if e is None else abs(e) <= TOLERANCE}
        if span:
            row["per_frame"] = {k: r.stats[k][s.index] / span for k in COUNTS}
        layers.append(row)
    rec["layers"] = layers
    rec["fifos"] = [{"name": e.name, "between": [d.stages[e.index - 1].name, d.stages[e.index].name],
                     "width": e.fmt.width, "depth": r.overrides.get(e.param, d.depth(e)),
                     "max_occupancy": int(r.stats["fifo_max_window"][e.index]) if win else None,
                     "max_occupancy_with_fill": int(r.stats["fifo_max"][e.index])} for e in d.edges]
    if fifo_record is not None:
        rec["fifo_sizing"] = {k: fifo_record.get(k) for k in ("ii", "rounds", "frames", "method")}
    return rec


def _num(v: float | int | None, fmt: str = ",.0f") -> str:
    return "-" if v is None else format(v, fmt)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:+.1f}%"


def format_table(rec: dict) -> str:
    """cycles.txt: the human-readable measurement (see docs/rtl.md, 'Reading cycles.txt')."""
    ii, m, sim = rec["ii"], rec["measured"], rec["simulation"]
    win = rec["window"]
    lines = [f"RTL simulation (Verilator): {rec['frames']} frames back to back"
             + (f", steady state over frames {win[0]}..{win[1]}" if win else " (too few frames for an II)"),
             f"  II: measured {_num(ii['measured'], ',.1f')} cycles/frame, estimated {ii['estimated']:,} "
             f"(bottleneck {ii['bottleneck']}): {_pct(ii['error'])}"]
    if win:
        lines.append(f"      first output beats every {m['ii_min']:,}..{m['ii_max']:,} cycles; input accepted every "
                     f"{m['input_interval']:,.1f}")
        lines.append(f"  latency (first input beat -> last output beat): first frame {m['latency_first_frame']:,} "
                     f"cycles, steady state {m['latency_mean']:,.0f}")
    lines.append(f"  simulation: {sim['cycles']:,} cycles in {sim['wall_s']:.2f} s ({_num(sim['cycles_per_s'])} "
                 f"cycles/s, {_num(sim['images_per_s'], ',.1f')} images/s); model build {sim['build_s']:.1f} s")
    head = (f"  {'stage':<24} {'kind':<7} {'PE':>4} {'SIMD':>4} {'estimated':>10} {'alone':>10} {'diff':>7}   "
            f"{'taken':>8} {'in wait':>8} {'starved':>8} {'given':>8} {'blocked':>8}")
    lines += ["", "  cycles per frame: estimated (layers.py formulas) and measured alone; handshake cycles per frame "
              "in the pipeline", head, "  " + "-" * (len(head) - 2)]
    worst = ii["estimated"]
    for row in rec["layers"]:
        pf = row.get("per_frame") or {}
        mark = " <" if row["estimated_cycles"] == worst else ""
        flag = " !" if row["within_tolerance"] is False else ""
        lines.append(f"  {row['name'][:24]:<24} {row['kind']:<7} {row['PE'] or '':>4} {row['SIMD'] or '':>4} "
                     f"{row['estimated_cycles']:>10,} {_num(row['measured_cycles']):>10} {_pct(row['error']):>7}   "
                     + " ".join(f"{_num(pf.get(k), ',.0f'):>8}" for k in COUNTS) + mark + flag)
    if rec["fifos"]:
        lines += ["", f"  {'fifo':<8} {'width':>6} {'depth':>7} {'max occupancy':>14} {'(with fill)':>12}   between"]
        for f in rec["fifos"]:
            lines.append(f"  {f['name']:<8} {f['width']:>6} {f['depth']:>7} {_num(f['max_occupancy']):>14} "
                         f"{f['max_occupancy_with_fill']:>12,}   {f['between'][0][:24]} -> {f['between'][1][:24]}")
    lines.append("  ('<' the estimated bottleneck, '!' more than 5% off the estimate; docs/rtl.md)")
    return "\n".join(lines) + "\n"


def write_report(project: Path, r: SimResult, fifo_record: dict | None = None) -> dict:
    """BUILD/rtl/cycles.json and cycles.txt for run r; returns the record."""
    rec = report(r, fifo_record)
    write_json_atomic(project / CYCLES_JSON, rec)
    write_text_atomic(project / CYCLES_TXT, format_table(rec))
    return rec


def read_report(project: Path) -> dict | None:
    path = project / CYCLES_JSON
    return json.loads(path.read_text()) if path.is_file() else None


__all__ = ["CYCLES_JSON", "CYCLES_TXT", "TOLERANCE", "format_table", "read_report", "report",
           "write_report"]
