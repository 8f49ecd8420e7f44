"""The RTL design of a plan: the stages in stream order (library module instances with their parameters and
cycle estimates), the FIFO on every edge between them, and the design's estimated initiation interval.

The stage list is the HLS back-end's stream chain (backends/hls/chain.py: the same stream formats, the same
width converters); each stage's module, parameters and cycles come from this back-end's table (layers.py).
The top's input takes what the first stage consumes; its output is the last MVAU's accumulators.

FIFO depths are top-level parameters of bnn_top (FIFO<k>_DEPTH, edge k feeds stage k). Their values come
from BUILD/rtl/fifo_depths.json when that file was written for this very design (its `structure` key: a
hash of every stage's module and parameters and of the library sources, i.e. of everything that decides the
design's cycle behaviour), else DEFAULT_FIFO_DEPTH.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from bnn_flow import sanitize
from bnn_flow.backends.hls.chain import build_chain
from bnn_flow.backends.hls.layers import Fmt
from bnn_flow.backends.rtl.layers import CONVERTER, FIFO, Params, rtl_layer
from bnn_flow.plan import Layer, Plan

LIBRARY_DIR = Path(str(files(__package__).joinpath("verilog")))
DEFAULT_FIFO_DEPTH = 2  # the smallest bnn_fifo; size_fifos (fifo_sizing.py) sets the real depths


@dataclass(frozen=True)
class Stage:
    """One library module instance of the stream chain."""

    index: int
    cname: str  # Verilog identifier of the stage (sanitized layer name with an L<i>_ prefix)
    kind: str  # window, mvau, maxpool, dwc
    module: str
    layer: Layer | None  # None for a width converter
    fin: Fmt
    fout: Fmt
    params: Params
    cycles: int  # estimated cycles per frame (layers.py formulas)

    @property
    def instance(self) -> str:
        return f"u_{self.cname}"

    @property
    def name(self) -> str:
        """The plan layer's name as it may appear in any file this back-end writes (sanitize.comment: model
        text is untrusted), or the converter's cname."""
        return sanitize.comment(self.layer.name) if self.layer is not None else self.cname


@dataclass(frozen=True)
class Edge:
    """The FIFO between stage k-1 and stage k (k >= 1): its beats are stage k-1's output format."""

    index: int  # k: the consumer's stage index
    fmt: Fmt

    @property
    def name(self) -> str:
        return f"fifo{self.index}"

    @property
    def param(self) -> str:
        return f"FIFO{self.index}_DEPTH"


@dataclass
class Design:
    fin: Fmt
    stages: list[Stage]
    classes: int
    depths: dict[str, int] = field(default_factory=dict)  # edge name -> depth

    @property
    def fout(self) -> Fmt:
        return self.stages[-1].fout

    @property
    def edges(self) -> list[Edge]:
        return [Edge(k, self.stages[k - 1].fout) for k in range(1, len(self.stages))]

    def depth(self, edge: Edge) -> int:
        return int(self.depths.get(edge.name, DEFAULT_FIFO_DEPTH))

    @property
    def ii_estimate(self) -> int:
        """The design's cycles per frame: the slowest stage (the input port takes one beat per cycle, and
        the first stage's formula covers its input beats)."""
        return max(s.cycles for s in self.stages)

    @property
    def bottleneck(self) -> Stage:
        return max(self.stages, key=lambda s: s.cycles)

    def modules(self) -> list[str]:
        """Library modules the top instantiates directly (bnn_fifo on the edges included)."""
        used = {s.module for s in self.stages} | ({FIFO.module} if self.edges else set())
        return sorted(used)

    def structure(self) -> str:
        """A hash of what decides the design's cycle behaviour: stage modules and parameters (memory file
        names aside: weights do not change timing) and the library sources it uses."""
        h = hashlib.sha256()
        for s in self.stages:
            p = {k: v for k, v in s.params.items() if not k.endswith("_FILE")}
            h.update(json.dumps([s.module, p, s.fin.width, s.fout.width], sort_keys=True).encode())
        for name in library_closure(self.modules()):  # only the modules it uses (not board wrappers)
            h.update(hashlib.sha256((LIBRARY_DIR / name).read_bytes()).digest())
        return h.hexdigest()[:20]


def design_of(plan: Plan, depths: dict[str, int] | None = None) -> Design:
    """The RTL design of `plan` at its folding (BadInputError on a layer kind this back-end lacks or an
    illegal folding, one line)."""
    for layer in plan.layers:  # every kind must be known here, even one that makes no stage
        rtl_layer(layer)
    fin, chain = build_chain(plan)
    stages = []
    for k, s in enumerate(chain):
        if s.layer is None:
            params, module, cycles = CONVERTER.params(s.fin, s.fout), CONVERTER.module, CONVERTER.cycles(s.fin, s.fout)
        else:
            rule = rtl_layer(s.layer)
            params, module = rule.params(s.layer, s.fin, s.fout, s.cname), rule.module
            cycles = rule.cycles(s.layer, s.fin, s.fout)
        stages.append(Stage(k, s.cname, s.kind, module, s.layer, s.fin, s.fout, params, cycles))
    return Design(fin, stages, plan.classes, dict(depths or {}))


def library_closure(modules: list[str]) -> list[str]:
    """The library files (names) of `modules` and of every module they instantiate, in name order."""
    sources = {p.stem: p.read_text() for p in LIBRARY_DIR.glob("*.v")}
    todo, seen = list(modules), set()
    while todo:
        m = todo.pop()
        if m in seen or m not in sources:
            continue
        seen.add(m)
        todo += [other for other in sources if other != m and f"{other} #(" in sources[m]]
    return sorted(f"{m}.v" for m in seen)


__all__ = ["DEFAULT_FIFO_DEPTH", "LIBRARY_DIR", "Design", "Edge", "Stage", "design_of", "library_closure"]
