"""The stream chain of a plan: one HLS stage per layer, stream formats between them, width converters.

Stream format = elements per beat (epb), bits per element, signedness and elements per frame. Rules
(DESIGN.md §4 and the folding contract):
* an MVAU consumes SIMD elements per beat and emits PE elements per beat;
* a sliding window passes SIMD elements per beat of its consuming MVAU (C % SIMD == 0 is required);
* a max-pool keeps its producer's elements per beat when they divide its channels (an MVAU's PE does,
  as PE | MH = C), else gcd(producer epb, C); a Flatten is no stage at all;
* wherever a producer's epb differs from what its consumer takes, a width converter is inserted;
* the top's input takes what the first stage consumes (no converter at the input), and its output is
  the last MVAU's accumulators, PE per beat, in class order.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from bnn_flow.backends.hls.layout import tile_words, word_bits_for
from bnn_flow.backends.plan import BIT, Flatten, IntType, Layer, MaxPool, Mvau, Plan, Window
from bnn_flow.errors import BadInputError


@dataclass(frozen=True)
class Fmt:
    """A stream: `epb` elements of `dtype` per beat, `elems` elements per frame."""

    epb: int
    dtype: IntType
    elems: int

    @property
    def width(self) -> int:
        return self.epb * self.dtype.bits

    @property
    def beats(self) -> int:
        return self.elems // self.epb


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
    """A C identifier for layer `name` at position `index` (unique by the index prefix)."""
    return f"L{index}_" + re.sub(r"[^0-9A-Za-z_]", "_", name)


def _frame_elems(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def _needed_epb(layers: list[Layer], i: int, cur: int) -> int:
    """Elements per beat that layer i consumes, given its producer's `cur`."""
    layer = layers[i]
    if isinstance(layer, Mvau):
        return layer.simd
    if isinstance(layer, Window):
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if not isinstance(nxt, Mvau):
            raise BadInputError(f"layer {layer.name}: a sliding window must feed a matrix layer (MVAU)")
        c = layer.in_shape[-1]
        if c % nxt.simd:
            raise BadInputError(f"layer {nxt.name}: illegal folding SIMD={nxt.simd}: its sliding window "
                                f"{layer.name} has C={c} channels and needs C % SIMD == 0 (fix folding.json)")
        return nxt.simd
    if isinstance(layer, MaxPool):
        return math.gcd(cur, layer.in_shape[-1])
    return cur  # Flatten: the stream does not change


def _first_epb(layers: list[Layer]) -> int:
    """What the first real stage consumes (Flattens pass through; a leading pool takes whole pixels)."""
    for i, layer in enumerate(layers):
        if isinstance(layer, Flatten):
            continue
        if isinstance(layer, MaxPool):
            return layer.in_shape[-1]
        return _needed_epb(layers, i, 1)
    raise BadInputError("the dataflow graph has no layers")


def _params(layer: Layer, epb: int) -> dict[str, int | bool]:
    """The template parameters of a layer stage (the names of the config struct members)."""
    if isinstance(layer, Window):
        (h, w, c), (oh, ow, _) = layer.in_shape, layer.out_shape
        return dict(H=h, W=w, CH=c, KH=layer.kernel[0], KW=layer.kernel[1], SH=layer.stride[0],
                    SW=layer.stride[1], PT=layer.pad[0], PL=layer.pad[1], OH=oh, OW=ow, SIMD=epb,
                    EB=layer.dtype.bits, SIGNED=layer.dtype.signed, PAD=int(layer.pad_value))
    if isinstance(layer, MaxPool):
        (h, w, c), (oh, ow, _) = layer.in_shape, layer.out_shape
        return dict(H=h, W=w, CH=c, KH=layer.kernel[0], KW=layer.kernel[1], SH=layer.stride[0],
                    SW=layer.stride[1], OH=oh, OW=ow, PE=epb, EB=layer.dtype.bits, SIGNED=layer.dtype.signed)
    assert isinstance(layer, Mvau)
    return mvau_params(layer)


def mvau_params(m: Mvau) -> dict[str, int | bool]:
    acc = m.acc_dtype
    ab = acc.bits + (0 if acc.signed else 1)
    wordbits, wpt = tile_words(m.simd, m.w_dtype.bits)
    return dict(MW=m.mw, MH=m.mh, SIMD=m.simd, PE=m.pe, PIXELS=m.pixels, SF=m.mw // m.simd, NF=m.mh // m.pe,
                TILES=(m.mh // m.pe) * (m.mw // m.simd), WORDBITS=wordbits, WPT=wpt, TBITS=word_bits_for(ab),
                IB=m.in_dtype.bits, ISIGNED=m.in_dtype.signed, WB=m.w_dtype.bits, WSIGNED=m.w_dtype.signed,
                BINARY=m.binary, AB=ab, THRESH=m.out_bits,
                OB=m.out_dtype.bits, OSIGNED=m.out_dtype.signed)


def _out_fmt(layer: Layer, fin: Fmt, epb: int) -> Fmt:
    if isinstance(layer, Mvau):
        return Fmt(layer.pe, layer.out_dtype, layer.pixels * layer.mh)
    return Fmt(epb, fin.dtype, _frame_elems(layer.out_shape))


def build_chain(plan: Plan) -> tuple[Fmt, list[Stage]]:
    """(the top's input format, the stages in order). Raises BadInputError on an illegal folding."""
    plan.validate()
    layers = plan.layers
    dtype = BIT if plan.input_dtype == BIT else plan.input_dtype
    cur = Fmt(_first_epb(layers), dtype, _frame_elems(plan.input_shape))
    fin_top, stages = cur, []
    for i, layer in enumerate(layers):
        if isinstance(layer, Flatten):
            continue
        need = _needed_epb(layers, i, cur.epb)
        if need != cur.epb:
            if cur.elems % need:
                raise BadInputError(f"layer {layer.name}: {cur.elems} elements per frame cannot be regrouped "
                                    f"{need} per beat (fix folding.json)")
            conv = Fmt(need, cur.dtype, cur.elems)
            stages.append(Stage("dwc", f"{c_ident(layer.name, i)}_dwc", None, cur, conv,
                                dict(IN_E=cur.epb, OUT_E=need, EB=cur.dtype.bits, N=cur.elems,
                                     SIGNED=cur.dtype.signed)))
            cur = conv
        out = _out_fmt(layer, cur, need)
        stages.append(Stage(layer.kind, c_ident(layer.name, i), layer, cur, out, _params(layer, need)))
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
            widths.append((int(p["IN_E"]) + int(p["OUT_E"])) * int(p["EB"]))
    return max(widths)
