"""The folding report: BUILD/report.json (everything), report.txt (the human table) and report.png (bar chart).

The JSON is the record other tools read (estimates to be checked later against RTL simulation and
synthesis); the table and the chart say the same for people: frame rate and latency at the clock, the
bottleneck layer, per-layer cycles and resources, and the totals against the board's budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bnn_flow.backends.hls.cost import cost_model
from bnn_flow.backends.hls.folding import FoldRequest, FoldResult, fit_fractions, fold_plan, limits
from bnn_flow.build import Build, as_build
from bnn_flow.errors import CheckFailedError
from bnn_flow.plots import pyplot, save_png

RESOURCES = ("LUT", "BRAM18", "DSP")


def _layer_row(e) -> dict:
    return {"name": e.name, "kind": e.kind, "PE": e.pe, "SIMD": e.simd, "cycles": e.cycles,
            **e.res.as_dict(), "detail": e.detail}


def make_report(r: FoldResult) -> dict:
    """The report as plain JSON data. `status` is MET or NOT MET; `reason` says why not, `limit` what
    stops a met design from going faster."""
    b, tot = r.board, r.totals.as_dict()
    lim = limits(b, r.margin)
    rep = {
        "status": "MET" if r.met else "NOT MET",
        "mode": r.mode,
        "target_fps": r.target_fps,
        "board": None if b is None else {"name": b.name, "part": b.part, "family": b.family,
                                         "clock_mhz": b.clock_mhz, "dma_bits": b.dma_bits},
        "clock_mhz": r.clock_mhz,
        "fps": r.fps,
        "bottleneck": {"name": r.bottleneck.name, "cycles": r.bottleneck.cycles},
        "latency": {"cycles": r.latency_cycles, "us": r.latency_cycles / r.clock_mhz,
                    "note": "sum of every layer's cycles per frame (an upper bound: layers overlap)"},
        "totals": tot,
        "infrastructure": r.infrastructure.as_dict(),
        "budget": None if b is None else {k: b.resources[k] for k in RESOURCES},
        "margin": r.margin,
        "fit_limits": None if b is None else fit_fractions(b, r.margin),
        "limits": None if lim is None else {k: int(v) for k, v in lim.items()},
        "utilization": None if b is None else {k: tot[k] / b.resources[k] if b.resources[k] else None
                                               for k in RESOURCES},
        "prices": {"LUT_per_BRAM18": r.prices.bram18, "LUT_per_DSP": r.prices.dsp},
        "folding": r.folding,
        "layers": [_layer_row(e) for e in r.estimates],
        "cost_model": r.cost_model,
        "units": cost_model(b).units,
        "formulas": "docs/hls-estimates.md" if r.cost_model == "hls" else "bnn_flow/backends/rtl/estimate.py",
    }
    rep["reason" if not r.met else "limit"] = r.reason
    return rep


def _mem(d: dict) -> str:
    parts = [f"{k[0]}:{d[k]['style']}" for k in ("weights", "thresholds", "input_buffer", "buffer")
             if k in d and d[k]["style"] not in ("none",)]
    return " ".join(parts)


def format_table(rep: dict) -> str:
    """The human-readable report (also printed by bnn-flow compile)."""
    b = rep["board"]
    where = f"{b['name']} ({b['part']})" if b else "no board"
    goal = {"fps": f"target {rep['target_fps'] or 0:,.0f} FPS", "fit": "fit (most FPS within budget)",
            "given": "the given folding"}[rep["mode"]]
    lines = [f"folding: {goal} on {where} at {rep['clock_mhz']:g} MHz: {rep['status']}"]
    if rep["status"] != "MET":
        lines.append(f"  reason: {rep['reason']}")
    lines.append(f"  estimated {rep['fps']:,.0f} FPS, bottleneck {rep['bottleneck']['name']} "
                 f"({rep['bottleneck']['cycles']:,} cycles/frame), latency <= {rep['latency']['us']:,.1f} us "
                 f"({rep['latency']['cycles']:,} cycles)")
    if rep.get("limit"):
        lines.append(f"  limited by: {rep['limit']}")
    head = (f"  {'layer':<20} {'kind':<8} {'PE':>4} {'SIMD':>4} {'cycles':>9} {'LUT':>7} {'BRAM18':>6} {'DSP':>4}"
            "  memory")
    lines += ["", head, "  " + "-" * (len(head) + 8)]
    worst = rep["bottleneck"]["cycles"]
    for row in rep["layers"]:
        mark = " <" if row["cycles"] == worst else ""
        lines.append(f"  {row['name']:<20} {row['kind']:<8} {row['PE'] or '':>4} {row['SIMD'] or '':>4} "
                     f"{row['cycles']:>9,} {row['LUT']:>7,} {row['BRAM18']:>6} {row['DSP']:>4}  "
                     f"{_mem(row['detail'])}{mark}")
    inf, tot = rep["infrastructure"], rep["totals"]
    lines.append(f"  {'infrastructure':<20} {'':<8} {'':>4} {'':>4} {'':>9} {inf['LUT']:>7,} {inf['BRAM18']:>6} "
                 f"{inf['DSP']:>4}  (DMA, AXI interconnect)")
    lines.append(f"  {'total':<20} {'':<8} {'':>4} {'':>4} {'':>9} {tot['LUT']:>7,} {tot['BRAM18']:>6} {tot['DSP']:>4}")
    if rep["budget"]:
        bud, lim = rep["budget"], rep["limits"]
        lines.append(f"  {'budget':<20} {'':<8} {'':>4} {'':>4} {'':>9} {bud['LUT']:>7,} {bud['BRAM18']:>6} "
                     f"{bud['DSP']:>4}")
        use = ", ".join(f"{k} {100 * tot[k] / bud[k]:.0f}%" for k in RESOURCES if bud[k])
        fr = rep["fit_limits"]
        if len(set(fr.values())) == 1:
            said = f"limit {100 * fr['LUT']:.0f}% of the budget: " + ", ".join(f"{k} {lim[k]:,}" for k in RESOURCES)
        else:
            said = "limits: " + ", ".join(f"{k} {lim[k]:,} ({100 * fr[k]:.0f}%)" for k in RESOURCES)
        lines.append(f"  utilization: {use} ({said})")
    units = rep.get("units") or {}
    counted = ", ".join(f"{k} = {v}" for k, v in units.items() if k != v)
    lines.append(f"  (estimates; formulas in {rep['formulas']}; '<' marks the bottleneck"
                 + (f"; {counted})" if counted else ")"))
    return "\n".join(lines)


def plot(rep: dict, path: Path) -> None:
    """Per-layer bar chart: cycles per frame (bottleneck in red, target as a dashed line) and LUTs."""
    plt = pyplot()
    rows = [r for r in rep["layers"] if r["cycles"] or r["LUT"]]
    names = [r["name"] for r in rows]
    worst = rep["bottleneck"]["cycles"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 0.32 * len(rows) + 1.8), sharey=True)
    ax1.barh(names, [r["cycles"] for r in rows],
             color=["tab:red" if r["cycles"] == worst else "tab:blue" for r in rows])
    if rep["target_fps"]:
        ax1.axvline(rep["clock_mhz"] * 1e6 / rep["target_fps"], ls="--", color="k", label="target")
        ax1.legend(loc="lower right")
    ax1.set_xlabel("cycles per frame")
    ax1.invert_yaxis()
    ax2.barh(names, [r["LUT"] for r in rows], color="tab:green")
    ax2.set_xlabel("LUTs (layer + its input FIFO/converter)")
    where = rep["board"]["name"] if rep["board"] else "no board"
    fig.suptitle(f"{where} @ {rep['clock_mhz']:g} MHz: {rep['fps']:,.0f} FPS ({rep['status']}), "
                 f"LUT {rep['totals']['LUT']:,}, BRAM18 {rep['totals']['BRAM18']}")
    fig.tight_layout()
    save_png(fig, path)


def write_reports(build: Build | Path, r: FoldResult) -> tuple[dict, str]:
    """Write BUILD/report.json, report.txt and report.png; return the report and its table."""
    build = as_build(build)
    rep = make_report(r)
    table = format_table(rep)
    build.write_report(rep, table)
    plot(rep, build.report_paths[2])
    return rep, table


@dataclass
class FoldOutcome:
    """What a folding step wrote: its table, and whether the goal was met (else why not)."""

    table: str
    met: bool
    reason: str

    def check(self, build: Build | Path) -> None:
        """CheckFailedError (exit 1) when the goal was not met; called after the build was committed."""
        if not self.met:
            raise CheckFailedError(f"folding target NOT MET: {self.reason} (report: "
                                   f"{as_build(build).report_paths[1]})")


def fold_and_report(build: Build | Path, req: FoldRequest) -> FoldOutcome:
    """Fold BUILD for `req`, write folding.json and the reports (into `build`: compile's staging folder).

    Post: BUILD/folding.json (always a legal folding), report.json/.txt/.png, even when the goal is not met
    (the outcome says so; FoldOutcome.check raises after the build is committed).
    """
    build = as_build(build)
    result = fold_plan(build.plan(folded=False), req)  # a stale folding.json may not even be legal
    build.write_folding(result.folding)
    rep, table = write_reports(build, result)
    return FoldOutcome(table, result.met, rep.get("reason", ""))
