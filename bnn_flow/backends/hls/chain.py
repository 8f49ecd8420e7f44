"""The stream chain of a plan: one HLS stage per layer, stream formats between them, width converters.

Stream format = elements per beat, bits per element, signedness and elements per frame. Rules
(DESIGN.md §4 and the folding contract):
* an MVAU consumes SIMD elements per beat and emits PE elements per beat;
* a sliding window passes SIMD elements per beat of its consuming MVAU (C % SIMD == 0 is required);
* a max-pool keeps its producer's elements per beat when they divide its channels (an MVAU's PE does,
  as PE | MH = C), else gcd(producer's elements per beat, C); a Flatten is no stage at all;
* wherever a producer's elements per beat differ from what its consumer takes, a width converter is inserted;
* the top's input takes what the first stage consumes (no converter at the input), and its output is
  the last MVAU's accumulators, PE per beat, in class order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bnn_flow import sanitize
from bnn_flow.backends.hls.layers import Fmt, hls_layer
from bnn_flow.errors import BadInputError
from bnn_flow.plan import Layer, Plan


@dataclass
class Stage:
    """One template call: `kind` in {window, mvau, maxpool, dwc}; `params` become the config struct."""

    kind: str
    cname: str  # C identifier of the stage (config struct, arrays)
    layer: Layer | None
    fin: Fmt
    fout: Fmt
    params: dict[str, int | bool] = field(default_factory=dict)


def c_ident(name: str, index: int) -> str:
    """A C identifier for layer `name` at position `index` (unique by the index prefix; the name is text
    from the model, so only its letters, digits and underscores are kept)."""
    return sanitize.identifier(name, f"L{index}_")


def _first_elems_per_beat(layers: list[Layer]) -> int:
    """What the first real stage consumes (Flattens pass through)."""
    for i, layer in enumerate(layers):
        rule = hls_layer(layer)
        if rule.makes_stage:
            return rule.first_elems_per_beat(layers, i)
    raise BadInputError("the dataflow graph has no layers")


def build_chain(plan: Plan) -> tuple[Fmt, list[Stage]]:
    """(the top's input format, the stages in order). Raises BadInputError on an illegal folding."""
    plan.validate()
    layers = plan.layers
    cur = Fmt(_first_elems_per_beat(layers), plan.input_dtype, math.prod(plan.input_shape))
    fin_top, stages = cur, []
    for i, layer in enumerate(layers):
        rule = hls_layer(layer)
        if not rule.makes_stage:
            continue
        need = rule.consumes(layers, i, cur.elems_per_beat)
        if need != cur.elems_per_beat:
            if cur.elems % need:
                raise BadInputError(f"layer {layer.name}: {cur.elems} elements per frame cannot be regrouped "
                                    f"{need} per beat (fix folding.json)")
            conv = Fmt(need, cur.dtype, cur.elems)
            stages.append(Stage("dwc", f"{c_ident(layer.name, i)}_dwc", None, cur, conv,
                                dict(IN_PER_BEAT=cur.elems_per_beat, OUT_PER_BEAT=need, EB=cur.dtype.bits, N=cur.elems,
                                     SIGNED=cur.dtype.signed)))
            cur = conv
        out = rule.out_fmt(layer, cur, need)
        stages.append(Stage(layer.kind, c_ident(layer.name, i), layer, cur, out, rule.params(layer, need)))
        cur = out
    if not stages or stages[-1].kind != "mvau":
        raise BadInputError("the dataflow graph must end in a matrix layer (MVAU) without thresholds")
    return fin_top, stages


def widest_word(stages: list[Stage]) -> int:
    """The widest ap_uint any stage uses: stream beats, weight tiles, a converter's buffer."""
    widths = [1]
    for s in stages:
        widths += [s.fin.width, s.fout.width]
        p = s.params
        if s.kind == "mvau":
            widths.append(int(p["SIMD"]) * int(p["WB"]))
        if s.kind == "dwc":
            widths.append((int(p["IN_PER_BEAT"]) + int(p["OUT_PER_BEAT"])) * int(p["EB"]))
    return max(widths)
