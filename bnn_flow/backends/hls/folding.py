"""Folding: PE/SIMD per MVAU for a target frame rate (--target-fps) or the most frame rate a board holds (--fit).

The search works on *units*: an MVAU together with the sliding-window generator that feeds it (a conv:
the window emits SIMD channels per beat, the MVAU's SIMD) and the max-pool right after it (it works on
the MVAU's PE channels per beat). Legal foldings only: MH % PE == 0, MW % SIMD == 0 and, for a conv,
C_in % SIMD == 0. Flattens cost nothing.

* Target T cycles per frame (T = floor(f_clk / F)): every unit takes its cheapest legal folding with
  cycles <= T; cheapest = fewest LUT-equivalents (LUT + BRAM18 and DSP at the board's exchange rates,
  `estimate.Prices`), ties to fewer lanes, then to more SIMD (fewer PEs: fewer accumulators and
  threshold comparators per lane). Because the whole cost is compared, the search itself decides between
  SIMD and PE; no fixed "SIMD first" rule.
* --fit: T runs over every cycle count some unit can reach, fastest first; the first T whose design fits
  the limits (below) in LUT, BRAM18 and DSP wins. Each T is tried at several BRAM prices (cheap BRAM
  moves memories out of LUTs and back), so a design short of LUTs but rich in BRAM is still found.
  (The first variant that fits wins; this is a heuristic for the two-budget knapsack, not an optimum.)
* The budget: each resource up to the board's fit limit (board file `fit_limits`, default 85%), or with
  --margin M every resource up to (1 - M).
* Never a silent PE = SIMD = 1: a target that cannot be met comes back with met=False and the reason.
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from bnn_flow.backends.hls.cost import HLS_COST, CostModel, cost_model
from bnn_flow.backends.hls.estimate import LayerEstimate, Prices, Resources, dma_estimates, total
from bnn_flow.boards import FIT_KEYS, Board, board_names, load_board
from bnn_flow.errors import BadInputError
from bnn_flow.plan import MaxPool, Mvau, Plan, Window

DEFAULT_DMA_BITS = 64  # without a board: a 64-bit AXI stream in and out
# BRAM prices tried at each T, as factors of the board's LUT/BRAM18 ratio: the board ratio first, then
# a geometric sweep from 1/8 to 8 in steps of 2^(1/4) (a Lagrangian walk over the LUT/BRAM trade).
BRAM_PRICE_FACTORS = (1.0, *(2 ** (k / 4) for k in range(-12, 13) if k))


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@dataclass(frozen=True)
class Choice:
    pe: int
    simd: int
    cycles: int
    res: Resources  # the MVAU and its window, without edges
    cost: float


@dataclass
class Unit:
    """An MVAU, the window feeding it and the pool after it; choices sorted by cycles,
    best_upto[i] = the cheapest of choices[:i+1]."""

    mvau: Mvau
    window: Window | None
    pool: MaxPool | None
    choices: list[Choice]
    cycles: list[int] = field(default_factory=list)
    best_upto: list[Choice] = field(default_factory=list)

    def cheapest_within(self, t: int) -> Choice | None:
        i = bisect.bisect_right(self.cycles, t)
        return self.best_upto[i - 1] if i else None

    @property
    def fastest(self) -> Choice:
        return self.cheapest_within(self.cycles[0])


def legal_foldings(m: Mvau, window: Window | None) -> list[tuple[int, int]]:
    """Every legal (PE, SIMD) of `m`: PE | MH, SIMD | MW and, when a window feeds it, SIMD | C_in."""
    simd_base = window.in_shape[-1] if window is not None else m.mw
    if m.mw % simd_base:
        raise BadInputError(f"layer {m.name}: MW={m.mw} is not a multiple of its window's {simd_base} channels")
    return [(pe, simd) for pe in divisors(m.mh) for simd in divisors(simd_base)]


def _rank(c: Choice) -> tuple:
    return (c.cost, c.pe * c.simd, c.pe)


def make_unit(m: Mvau, window: Window | None, pool: MaxPool | None, prices: Prices,
              model: CostModel = HLS_COST) -> Unit:
    """Every legal folding of the unit with its cycles (the slowest of its layers) and own resources."""
    choices = []
    for pe, simd in legal_foldings(m, window):
        parts = model.unit(m, window, pool, pe, simd, prices)
        res = total(parts)
        choices.append(Choice(pe, simd, max(e.cycles for e in parts), res, prices.cost(res)))
    choices.sort(key=lambda c: (c.cycles, _rank(c)))
    unit = Unit(m, window, pool, choices, [c.cycles for c in choices])
    best = None
    for c in choices:
        best = c if best is None or _rank(c) < _rank(best) else best
        unit.best_upto.append(best)
    return unit


def make_units(plan: Plan, prices: Prices, model: CostModel = HLS_COST) -> list[Unit]:
    units = []
    for i, lay in enumerate(plan.layers):
        if isinstance(lay, Mvau):
            prev = plan.layers[i - 1] if i else None
            nxt = plan.layers[i + 1] if i + 1 < len(plan.layers) else None
            units.append(make_unit(lay, prev if isinstance(prev, Window) else None,
                                   nxt if isinstance(nxt, MaxPool) else None, prices, model))
    return units


@dataclass
class FoldResult:
    """The chosen folding (applied to `plan`), its estimates and whether the goal was met (else why not)."""

    mode: str  # "fps" or "fit"
    clock_mhz: float
    board: Board | None
    margin: float | None  # None: the board's fit limits
    target_fps: float | None
    met: bool
    reason: str
    prices: Prices
    plan: Plan
    estimates: list[LayerEstimate]
    infrastructure: Resources
    cost_model: str = "hls"  # whose estimates: "hls" (Xilinx: LUT6, BRAM18, DSP48) or "rtl" (Lattice: LUT4, DP16KD)

    @property
    def folding(self) -> dict[str, dict[str, int]]:
        return self.plan.folding

    @property
    def totals(self) -> Resources:
        return total(self.estimates, self.infrastructure)

    @property
    def bottleneck(self) -> LayerEstimate:
        # ties: the DMA (nothing can speed it up), then the MVAU (a unit's window/pool follow its folding)
        return max(self.estimates, key=lambda e: (e.cycles, e.kind == "dma", e.kind == "mvau"))

    @property
    def fps(self) -> float:
        return self.clock_mhz * 1e6 / self.bottleneck.cycles

    @property
    def latency_cycles(self) -> int:
        """Sum of every layer's cycles per frame: an upper bound for one frame through an empty pipeline
        (layers overlap in reality: a window starts emitting after kh-1 rows)."""
        return sum(e.cycles for e in self.estimates)


def fit_fractions(board: Board, margin: float | None) -> dict[str, float]:
    """The fraction of each budget a folding may fill: 1 - margin for every resource, else the board's limits."""
    return dict(board.fit_limits) if margin is None else dict.fromkeys(FIT_KEYS, 1 - margin)


def limits(board: Board | None, margin: float | None) -> dict[str, float] | None:
    if board is None:
        return None
    return {k: board.resources[k] * f for k, f in fit_fractions(board, margin).items()}


def limits_note(board: Board, margin: float | None) -> str:
    """How the budget was limited, for the messages: 'with a 15% margin' or the board's per-resource limits."""
    fr = fit_fractions(board, margin)
    if len(set(fr.values())) == 1:
        return f"with a {1 - fr['LUT']:.0%} margin"
    return f"{board.name} fit limits " + ", ".join(f"{k} {v:.0%}" for k, v in fr.items())


def over_budget(res: Resources, lim: dict[str, float] | None) -> list[str]:
    """The resources of `res` above the limits, as 'LUT 51,000 > 45,220' strings (empty: it fits)."""
    if lim is None:
        return []
    have = res.as_dict()
    return [f"{k} {have[k]:,} > {math.floor(lim[k]):,}" for k in lim if have[k] > lim[k]]


class _Search:
    """Designs of one plan at several BRAM prices, with their estimates cached by folding."""

    def __init__(self, plan: Plan, board: Board | None, margin: float | None):
        self.plan, self.board, self.limits = plan, board, limits(board, margin)
        self.model = cost_model(board)
        base = Prices.of_budget(board.resources) if board else Prices()
        # without a budget nothing can fail to fit, and a model whose memories ignore prices gains nothing
        # from a sweep: one price suffices
        sweep = board is not None and self.model.memory_follows_prices
        self.prices = [Prices(base.bram18 * f, base.dsp) for f in (BRAM_PRICE_FACTORS if sweep else (1.0,))]
        self._units: dict[int, list[Unit]] = {}
        inf = board.infrastructure if board else {}
        self.infra = Resources(inf.get("LUT", 0), inf.get("BRAM18", 0), inf.get("DSP", 0))
        self.dma_bits = board.dma_bits if board else DEFAULT_DMA_BITS
        self.dma = max(dma_estimates(plan, self.dma_bits), key=lambda e: e.cycles)
        self._cache: dict[tuple, tuple[list[LayerEstimate], Resources]] = {}

    @property
    def units(self) -> list[Unit]:
        return self.variant(0)[1]

    def variant(self, i: int) -> tuple[Prices, list[Unit]]:
        """Price variant i and the units costed at it (built on first use)."""
        if i not in self._units:
            self._units[i] = make_units(self.plan, self.prices[i], self.model)
        return self.prices[i], self._units[i]

    def evaluate(self, folding: list[tuple[int, int]], prices: Prices) -> tuple[list[LayerEstimate], Resources]:
        key = (tuple(folding), prices)
        if key not in self._cache:
            est = self.model.plan(self.plan.with_folding(folding), prices, self.dma_bits)
            self._cache[key] = (est, total(est, self.infra))
        return self._cache[key]

    def design(self, t: int, units: list[Unit]) -> tuple[list[tuple[int, int]], Resources]:
        """Each unit's cheapest folding within t cycles (pre: t reachable), and the units' resources."""
        picks = [u.cheapest_within(t) for u in units]
        return [(p.pe, p.simd) for p in picks], total(picks, self.infra)

    def first_fitting(self, t: int) -> tuple[list[tuple[int, int]], Prices, list[str]]:
        """The design for T at the first price variant that fits (else the base variant and what is over)."""
        first = None
        for i in range(len(self.prices)):
            prices, units = self.variant(i)
            folding, lower = self.design(t, units)
            # the units alone (a lower bound: edges and flattens come on top) already over: skip the full estimate
            over = over_budget(lower, self.limits) or over_budget(self.evaluate(folding, prices)[1], self.limits)
            if not over:
                return folding, prices, []
            first = first or (folding, prices, over)
        return first


def _result(search: _Search, mode: str, clock: float, margin: float | None, fps: float | None, folding, prices: Prices,
            met: bool, reason: str) -> FoldResult:
    est, _ = search.evaluate(folding, prices)
    return FoldResult(mode, clock, search.board, margin, fps, met, reason, prices, search.plan.with_folding(folding),
                      est, search.infra, search.model.name)


def _too_slow(search: _Search, t: int, clock_mhz: float) -> str:
    """Why no design reaches t cycles per frame: the slowest unit at its maximum folding, or the DMA."""
    slow = [u for u in search.units if u.cycles[0] > t]
    if not slow or search.dma.cycles >= max(u.cycles[0] for u in slow):
        d = search.dma
        return (f"the {d.name} moves {search.dma_bits} bits per cycle: {d.cycles:,} cycles per frame, at most "
                f"{clock_mhz * 1e6 / d.cycles:,.0f} FPS at {clock_mhz:g} MHz")
    u = max(slow, key=lambda u: u.cycles[0])
    f = u.fastest
    names = " + ".join(lay.name for lay in (u.window, u.mvau, u.pool) if lay is not None)
    return (f"layer {names} at its maximum folding (PE={f.pe}, SIMD={f.simd}) needs {f.cycles:,} cycles "
            f"per frame: at most {clock_mhz * 1e6 / f.cycles:,.0f} FPS at {clock_mhz:g} MHz")


def fold_for_fps(plan: Plan, clock_mhz: float, fps: float, board: Board | None = None,
                 margin: float | None = None) -> FoldResult:
    """The cheapest legal folding reaching `fps` at `clock_mhz` (per unit), checked against the board budget."""
    if not (fps > 0 and clock_mhz > 0):
        raise BadInputError(f"--target-fps and --clock-mhz must be positive (got {fps}, {clock_mhz})")
    search = _Search(plan, board, margin)
    t = math.floor(clock_mhz * 1e6 / fps)
    if any(u.cycles[0] > t for u in search.units) or search.dma.cycles > t:
        picks = [u.cheapest_within(max(t, u.cycles[0])) for u in search.units]
        return _result(search, "fps", clock_mhz, margin, fps, [(c.pe, c.simd) for c in picks],
                       search.prices[0], False, _too_slow(search, t, clock_mhz))
    folding, prices, over = search.first_fitting(t)
    reason = "" if not over else f"the design for {fps:,.0f} FPS exceeds the {board.name} budget: " + ", ".join(
        over) + f" ({limits_note(board, margin)})"
    return _result(search, "fps", clock_mhz, margin, fps, folding, prices, not over, reason)


def fold_fit(plan: Plan, board: Board, clock_mhz: float | None = None, margin: float | None = None) -> FoldResult:
    """The highest-FPS legal folding whose estimate fits the board's limits (`limits`)."""
    clock = clock_mhz or board.clock_mhz
    search = _Search(plan, board, margin)
    t_min = max(max(u.cycles[0] for u in search.units), search.dma.cycles)
    ts = sorted({t_min} | {c for u in search.units for c in u.cycles if c >= t_min})
    faster = None  # (t, over) of the last design that did not fit
    for t in ts:
        folding, prices, over = search.first_fitting(t)
        if not over:
            limit = (_too_slow(search, t - 1, clock) if faster is None else
                     f"the next faster design ({clock * 1e6 / faster[0]:,.0f} FPS) exceeds the budget: "
                     + ", ".join(faster[1]) + f" ({limits_note(board, margin)})")
            return _result(search, "fit", clock, margin, None, folding, prices, True, limit)
        faster = (t, over)
    return _result(search, "fit", clock, margin, None, folding, prices, False,
                   f"even the smallest folding exceeds the {board.name} budget: " + ", ".join(over)
                   + f" ({limits_note(board, margin)})")


@dataclass(frozen=True)
class FoldRequest:
    """What bnn-flow compile was asked to fold for: a target FPS, or (target_fps None) the most that fits."""

    board: Board | None
    clock_mhz: float
    target_fps: float | None
    margin: float | None = None
    given: dict[str, dict[str, int]] | None = None  # a hand-written folding to apply (--folding FILE)


def read_folding_file(path: Path) -> dict[str, dict[str, int]]:
    """A hand-written folding.json: {MVAU name: {"PE": p, "SIMD": s}}; one-line errors name the file."""
    try:
        d = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BadInputError(f"--folding {path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInputError(f"--folding {path}: not a JSON file ({e})") from None
    ok = isinstance(d, dict) and all(isinstance(v, dict) and set(v) <= {"PE", "SIMD"} and all(
        isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in v.values()) for v in d.values())
    if not ok:
        raise BadInputError(f'--folding {path}: expected {{"MVAU name": {{"PE": p, "SIMD": s}}, ...}} with positive '
                            "integers")
    return d


def fold_request(board: str | None, clock_mhz: float | None, target_fps: float | None, fit: bool,
                 margin: float | None = None, folding: Path | None = None) -> FoldRequest | None:
    """Check the folding options of compile (before any work); None when no folding was asked for.

    --board alone means --fit. --fit needs --board; --target-fps needs --board or --clock-mhz. --folding
    FILE applies a hand-written folding (estimated for --board / --clock-mhz, default 100 MHz).
    """
    if folding is not None:
        if fit or target_fps is not None:
            raise BadInputError("--folding applies a given folding: drop --fit / --target-fps")
        b = load_board(board) if board else None
        clock = clock_mhz or (b.clock_mhz if b else 100.0)
        if not 0 < clock <= 1000:
            raise BadInputError(f"--clock-mhz must be in (0, 1000] MHz, not {clock}")
        return FoldRequest(b, clock, None, margin, read_folding_file(folding))
    if board is None and not fit and target_fps is None and clock_mhz is None:
        return None
    if fit and target_fps is not None:
        raise BadInputError("--fit and --target-fps exclude each other: give one")
    if margin is not None and not 0 <= margin < 1:
        raise BadInputError(f"--margin must be in [0, 1) (a fraction of the budget kept free), not {margin}")
    for flag, v in (("--clock-mhz", clock_mhz), ("--target-fps", target_fps)):
        if v is not None and not v > 0:
            raise BadInputError(f"{flag} must be a positive number, not {v}")
    if clock_mhz is not None and clock_mhz > 1000:
        raise BadInputError(f"--clock-mhz must be in (0, 1000] MHz, not {clock_mhz}")
    if board is None:
        if fit:
            raise BadInputError(f"--fit needs --board NAME (boards: {', '.join(board_names())})")
        if target_fps is None:
            raise BadInputError("--clock-mhz needs --target-fps (or --board for --fit)")
        if clock_mhz is None:
            raise BadInputError("--target-fps without --board needs --clock-mhz")
        return FoldRequest(None, clock_mhz, target_fps, margin)
    b = load_board(board)
    return FoldRequest(b, clock_mhz or b.clock_mhz, target_fps, margin)


def fold_given(plan: Plan, folding: dict[str, dict[str, int]], board: Board | None, clock_mhz: float,
               margin: float | None = None) -> FoldResult:
    """A hand-written folding, checked for legality (BadInputError naming the layer) and estimated; "met"
    when it fits the board's budget (always, without a board)."""
    unknown = set(folding) - {m.name for m in plan.mvaus}
    if unknown:
        raise BadInputError(f"--folding names layers the build does not have: {', '.join(sorted(unknown))} "
                            f"(its matrix layers: {', '.join(m.name for m in plan.mvaus)})")
    folded = plan.with_folding(folding)
    folded.validate()
    search = _Search(plan, board, margin)
    picks = [(m.pe, m.simd) for m in folded.mvaus]
    for unit, (pe, simd) in zip(search.units, picks, strict=True):
        if (pe, simd) not in {(c.pe, c.simd) for c in unit.choices}:
            c_in = unit.window.in_shape[-1] if unit.window else unit.mvau.mw
            raise BadInputError(f"layer {unit.mvau.name}: illegal folding PE={pe} SIMD={simd} (need MH % PE == 0 "
                                f"and, with its sliding window, C % SIMD == 0: MH={unit.mvau.mh}, C={c_in})")
    prices = search.prices[0]
    over = over_budget(search.evaluate(picks, prices)[1], search.limits)
    reason = "" if not over else f"the given folding exceeds the {board.name} budget: " + ", ".join(over)
    return _result(search, "given", clock_mhz, margin, None, picks, prices, not over, reason)


def fold_plan(plan: Plan, req: FoldRequest) -> FoldResult:
    """Fold `plan` as `req` asks: the result's plan carries the chosen PE/SIMD (`plan` is not changed)."""
    if req.given is not None:
        return fold_given(plan, req.given, req.board, req.clock_mhz, req.margin)
    if req.target_fps is None:
        return fold_fit(plan, req.board, req.clock_mhz, req.margin)
    return fold_for_fps(plan, req.clock_mhz, req.target_fps, req.board, req.margin)
