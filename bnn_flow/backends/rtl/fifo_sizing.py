"""FIFO sizing from simulated occupancy (`size_fifos(build)`), written to BUILD/rtl/fifo_depths.json.

Why: layers consume and produce in bursts (an MVAU with NF > 1 takes its whole input vector in the first
output fold, then none for (NF-1)*SF cycles; a sliding window emits a window per output pixel), so a FIFO of
two beats between two such layers makes one wait for the other and the design runs slower than its slowest
layer. How deep each FIFO must be follows from the cycle behaviour, which the simulation gives exactly.

How (FINN's InsertAndSetFIFODepths idea, in one Verilator model; docs/rtl.md):
0. Minimal design: every FIFO at depth 2 (the generated top itself). If it already runs at the estimated II
   (the slowest stage's cycles per frame, which no FIFO can beat), those are the depths: one build, one run.
1. Deep run: every FIFO deep (DEEP_FRAMES frames of its beats, all the LUT variant so that no block-RAM read
   latency changes the schedule), the input paced at the estimated II: every layer then runs at the rate it
   will have in the real design, and upstream layers cannot run ahead of the bottleneck and fill the FIFO in
   front of it without bound. Random data: module timing does not depend on data. Each FIFO's maximum
   occupancy in the steady-state window is recorded.
2. Occupancy depths: the smallest power of two above that maximum (at least 2): a FIFO that holds one beat more
   than the deep run ever had in it never refuses a beat the deep FIFO took, so the schedule is the deep run's.
3. Minimizing (`minimize`): occupancy over-sizes the FIFO behind a fast producer that runs ahead of a slower,
   bursty consumer; the producer could simply have waited. With the same deep model, each FIFO is given a
   smaller capacity at run time (bnn_top's probe_caps, simulation only: it then acts exactly as a FIFO of that
   depth), largest first: the smallest power of two that keeps the II of the occupancy depths is kept. No
   Verilator build is needed for these trials, only short runs.
4. Check run: the generated top with the final depths (the model every later run uses), input as fast as the
   design takes it. Its II must equal the deep run's: no throughput lost, no deadlock (the run ends). Should
   it not (a depth >= 512 becomes the block-RAM FIFO, whose latency differs), every FIFO that was full is
   doubled and the check repeats, at most MAX_ROUNDS times, else CheckFailedError.
The record keeps the design's structure hash: a change of folding or library makes it stale, and the generator
then uses the default depth until size_fifos runs again (RtlTarget.prepare does).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from bnn_flow.backends.rtl import codegen
from bnn_flow.backends.rtl.design import Design, design_of
from bnn_flow.backends.rtl.sim import SimResult, simulate
from bnn_flow.build import Build, as_build
from bnn_flow.errors import CheckFailedError
from bnn_flow.fileio import write_json_atomic
from bnn_flow.plan import Plan

FRAMES = 8  # frames per sizing run: two to fill the pipeline, the rest the steady-state window
DEEP_FRAMES = 2  # a deep FIFO holds this many frames of its beats
NO_BLOCK_RAM = 1 << 30  # FIFO_BLOCK_DEPTH of the deep run: every FIFO the LUT variant (latency 1)
II_TOLERANCE = 0.002  # a run's II may exceed the reference by rounding of the window average only
MAX_ROUNDS = 3
MAX_TRIALS = 48  # minimizing runs at most (each a short simulation)
METHOD_MINIMAL = "every FIFO at 2 already runs at the estimated II (docs/rtl.md)"
METHOD = ("deep FIFOs with the input paced at the estimated II give each FIFO's steady-state maximum occupancy; "
          "depth = smallest power of two above it (at least 2), then each lowered to the smallest power of two "
          "that keeps the II; checked with the sized top, input unpaced (docs/rtl.md)")


def next_pow2_above(n: int) -> int:
    """The smallest power of two > n, at least 2."""
    return max(2, 1 << int(n).bit_length())


def _random_input(plan: Plan, frames: int, seed: int) -> np.ndarray:
    t = plan.input_dtype
    rng = np.random.default_rng(seed)
    return rng.integers(t.min, t.max + 1, size=(frames, *plan.input_shape), dtype=np.int64)


def deep_overrides(d: Design) -> dict[str, int]:
    over = {e.param: max(64, DEEP_FRAMES * e.fmt.beats + 16) for e in d.edges}
    return {**over, "FIFO_BLOCK_DEPTH": NO_BLOCK_RAM}


def sized_record(build: Build, plan: Plan | None = None) -> dict | None:
    """fifo_depths.json when it holds depths for the build's current design, else None."""
    d = design_of(plan if plan is not None else build.plan())
    if not d.edges:
        return {"structure": d.structure(), "depths": {}}
    out_dir = codegen.rtl_dir(build)
    if not codegen.read_depths(out_dir, d):
        return None
    rec = json.loads((out_dir / codegen.FIFO_DEPTHS).read_text())
    return rec if rec.get("complete") else None  # an interrupted sizing is done again


def _keeps(ii: float | None, reference: float) -> bool:
    return ii is not None and ii <= reference * (1 + II_TOLERANCE)


def minimize(build: Build, plan: Plan, q: np.ndarray, deep: dict[str, int], depths: dict[str, int],
             reference: float) -> tuple[dict[str, int], int]:
    """Lower each FIFO (largest first) to the smallest power of two that keeps the II at `reference`, using
    run-time capacities in the deep model; returns (depths, trials run)."""
    depths = dict(depths)
    trials = 0

    def ok(caps: dict[str, int]) -> bool:
        nonlocal trials
        trials += 1
        r = simulate(build, q, overrides=deep, caps=caps, iso=False, plan=plan, label="rtl fifo minimizing")
        return _keeps(r.measured_ii(), reference)

    for name in sorted(depths, key=lambda n: -depths[n]):
        lo, hi = 1, int(math.log2(depths[name]))  # exponents: 2**lo is the least, 2**hi is known to work
        while lo < hi and trials < MAX_TRIALS:
            mid = (lo + hi) // 2
            if ok({**depths, name: 1 << mid}):
                hi = mid
            else:
                lo = mid + 1
        depths[name] = 1 << hi
    return depths, trials


def size_fifos(build: Build | str | Path, frames: int = FRAMES, seed: int = 0, force: bool = False,
               minimize_depths: bool = True) -> dict:
    """Size every inter-layer FIFO of BUILD's RTL design from the simulated occupancy (module docstring);
    write BUILD/rtl/fifo_depths.json and regenerate bnn_top.v with those depths. Returns the record.
    Cached: a record for the current design is returned as is unless `force`."""
    build = as_build(build)
    plan = build.plan()
    if not force:
        rec = sized_record(build, plan)
        if rec is not None:
            return rec
    d = design_of(plan)
    path = codegen.rtl_dir(build) / codegen.FIFO_DEPTHS
    if not d.edges:
        codegen.rtl_dir(build).mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, {"structure": d.structure(), "depths": {}, "note": "one stage: no FIFO",
                                 "complete": True})
        codegen.generate(build, plan)
        return json.loads(path.read_text())
    q = _random_input(plan, max(frames, 4), seed)
    rec: dict = {"structure": d.structure(), "depths": {e.name: 2 for e in d.edges}, "frames": len(q),
                 "ii": {"estimate": d.ii_estimate}, "minimizing_runs": 0, "rounds": 0, "complete": False}
    write_json_atomic(path, rec)  # step 0: the generated top with every FIFO at 2
    r0 = simulate(build, q, iso=False, plan=plan, label="rtl fifo check")
    rec["ii"]["minimal"] = r0.measured_ii()
    if _keeps(r0.measured_ii(), d.ii_estimate):
        rec.update(ii={**rec["ii"], "sized": r0.measured_ii()}, rounds=1, method=METHOD_MINIMAL, complete=True)
        write_json_atomic(path, rec)
        return rec
    deep = deep_overrides(d)
    r1 = simulate(build, q, pace=d.ii_estimate, overrides=deep, iso=False, plan=plan, label="rtl fifo sizing")
    occ = {e.name: int(r1.stats["fifo_max_window"][e.index]) for e in d.edges}
    full = [e.name for e in d.edges if int(r1.stats["fifo_max"][e.index]) >= deep[e.param]]
    if full:
        raise CheckFailedError(f"FIFO sizing of {build}: the deep FIFOs {', '.join(full)} filled up (the design does "
                               f"not keep up with its estimated II {d.ii_estimate}); see {path.parent}")
    deep_ii = r1.measured_ii() or float(d.ii_estimate)
    occupancy_depths = {name: next_pow2_above(n) for name, n in occ.items()}
    depths, trials = occupancy_depths, 0
    if minimize_depths:
        depths, trials = minimize(build, plan, q, deep, occupancy_depths, max(deep_ii, d.ii_estimate))
    rec.update(depths=depths, occupancy_depths=occupancy_depths, max_occupancy=occ,
               max_occupancy_with_fill={e.name: int(r1.stats["fifo_max"][e.index]) for e in d.edges},
               deep_depths={e.name: deep[e.param] for e in d.edges}, window=r1.stats["window"],
               minimizing_runs=trials,
               method=METHOD if minimize_depths else METHOD.split(", then")[0] + " (not minimized)")
    rec["ii"]["deep_paced"] = deep_ii
    for rnd in range(1, MAX_ROUNDS + 1):
        write_json_atomic(path, rec)
        r2 = simulate(build, q, iso=False, plan=plan, label="rtl fifo check")
        rec["ii"]["sized"] = r2.measured_ii()
        rec["rounds"] = rnd
        if _keeps(r2.measured_ii(), max(deep_ii, d.ii_estimate)):
            rec["complete"] = True
            write_json_atomic(path, rec)
            return rec
        grow = _full_fifos(r2, rec["depths"])
        if not grow:
            break
        rec["depths"] = {k: v * 2 if k in grow else v for k, v in rec["depths"].items()}
    write_json_atomic(path, rec)
    raise CheckFailedError(f"FIFO sizing of {build}: with the sized FIFOs the design takes {rec['ii'].get('sized')} "
                           f"cycles per frame, the deep FIFOs {deep_ii}: see {path}")


def _full_fifos(r: SimResult, depths: dict[str, int]) -> list[str]:
    """FIFOs that were full at some point of run r (their depth bound the schedule)."""
    return [e.name for e in r.design.edges if int(r.stats["fifo_max"][e.index]) >= depths.get(e.name, 0)]


__all__ = ["minimize", "next_pow2_above", "size_fifos", "sized_record"]
