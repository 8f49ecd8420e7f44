"""The HLS back-end's one table {plan layer class: its handler}: everything this back-end knows per layer kind.

A handler says, for its kind: which elements per beat its stage consumes and emits (the stream chain,
chain.py), the template's configuration (params) and call (codegen.py), its stream widths and its cycle and
resource estimate (estimate.py's formulas, at the plan's folding). Adding a layer kind to the HLS back-end
is one handler here plus its template in templates/. A Flatten is no stage: it relabels a stream.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bnn_flow.backends.hls.estimate import (
    LayerEstimate,
    Prices,
    Resources,
    dma_estimates,
    edge_estimate,
    maxpool_estimate,
    mvau_estimate,
    window_estimate,
)
from bnn_flow.backends.hls.layout import tile_words, word_bits_for
from bnn_flow.conventions import IntType
from bnn_flow.errors import BadInputError
from bnn_flow.plan import Flatten, Layer, MaxPool, MultiThresholdMvau, Mvau, Plan, Window, ZeroPadMvau, handler


@dataclass(frozen=True)
class Fmt:
    """A stream: `elems_per_beat` elements of `dtype` per beat, `elems` elements per frame."""

    elems_per_beat: int
    dtype: IntType
    elems: int

    @property
    def width(self) -> int:
        return self.elems_per_beat * self.dtype.bits

    @property
    def beats(self) -> int:
        return self.elems // self.elems_per_beat


def _next_mvau(layers: Sequence[Layer], i: int) -> Mvau:
    nxt = layers[i + 1] if i + 1 < len(layers) else None
    if not isinstance(nxt, Mvau):
        raise BadInputError(f"layer {layers[i].name}: a sliding window must feed a matrix layer (MVAU); "
                            "recompile the model")
    return nxt


class _Stage:
    """Defaults of a layer that is one template call passing its producer's elements per beat on."""

    makes_stage = True
    template = ""

    def first_elems_per_beat(self, layers: Sequence[Layer], i: int) -> int:
        """What the stage takes when it is the first one (the top's input)."""
        return self.consumes(layers, i, 1)

    def consumes(self, layers: Sequence[Layer], i: int, cur: int) -> int:
        return cur

    def out_fmt(self, layer: Layer, fin: Fmt, elems_per_beat: int) -> Fmt:
        return Fmt(elems_per_beat, fin.dtype, math.prod(layer.out_shape))

    def call(self, cname: str, src: str, dst: str) -> str:
        return f"bnn::{self.template}<{cname}>({src}, {dst}, frames);"

    def widths(self, plan: Plan, i: int, prev: int | None) -> tuple[int, int]:
        lay = plan.layers[i]
        w = prev if prev is not None else lay.in_shape[-1] * lay.dtype.bits
        return w, w


class WindowStage(_Stage):
    template = "window"

    def consumes(self, layers: Sequence[Layer], i: int, cur: int) -> int:
        lay, nxt = layers[i], _next_mvau(layers, i)
        c = lay.in_shape[-1]
        if c % nxt.simd:
            raise BadInputError(f"layer {nxt.name}: illegal folding SIMD={nxt.simd}: its sliding window "
                                f"{lay.name} has C={c} channels and needs C % SIMD == 0 (fix folding.json)")
        return nxt.simd

    def params(self, lay: Window, elems_per_beat: int) -> dict[str, int | bool]:
        (h, w, c), (oh, ow, _) = lay.in_shape, lay.out_shape
        return dict(H=h, W=w, CH=c, KH=lay.kernel[0], KW=lay.kernel[1], SH=lay.stride[0],
                    SW=lay.stride[1], PT=lay.pad[0], PL=lay.pad[1], OH=oh, OW=ow, SIMD=elems_per_beat,
                    EB=lay.dtype.bits, SIGNED=lay.dtype.signed, PAD=int(lay.pad_value))

    def widths(self, plan: Plan, i: int, prev: int | None) -> tuple[int, int]:
        w = _next_mvau(plan.layers, i).simd * plan.layers[i].dtype.bits
        return w, w

    def estimate(self, plan: Plan, i: int, w_in: int, prices: Prices) -> LayerEstimate:
        return window_estimate(plan.layers[i], _next_mvau(plan.layers, i).simd, prices)


class MvauStage(_Stage):
    template = "mvau"

    def consumes(self, layers: Sequence[Layer], i: int, cur: int) -> int:
        return layers[i].simd

    def params(self, m: Mvau, elems_per_beat: int) -> dict[str, int | bool]:
        acc = m.acc_dtype
        ab = acc.bits + (0 if acc.signed else 1)
        wordbits, wpt = tile_words(m.simd, m.w_dtype.bits)
        return dict(MW=m.mw, MH=m.mh, SIMD=m.simd, PE=m.pe, PIXELS=m.pixels, SF=m.mw // m.simd, NF=m.mh // m.pe,
                    TILES=(m.mh // m.pe) * (m.mw // m.simd), WORDBITS=wordbits, WPT=wpt, TBITS=word_bits_for(ab),
                    IB=m.in_dtype.bits, ISIGNED=m.in_dtype.signed, DECODE=bool(m.in_levels),
                    DB=m.dot_dtype.bits, IN_LEVELS=m.in_levels, WB=m.w_dtype.bits, WSIGNED=m.w_dtype.signed,
                    BINARY=m.binary, AB=ab, THRESH=m.thresholds is not None,
                    LEVELS=m.levels if isinstance(m, MultiThresholdMvau) else 1,
                    OOFF=m.out_offset if isinstance(m, MultiThresholdMvau) else 0,
                    OB=m.out_dtype.bits, OSIGNED=m.out_dtype.signed)

    def out_fmt(self, m: Mvau, fin: Fmt, elems_per_beat: int) -> Fmt:
        return Fmt(m.pe, m.out_dtype, m.pixels * m.mh)

    def call(self, cname: str, src: str, dst: str) -> str:
        return f"bnn::mvau<{cname}>({src}, {dst}, {cname}_weights, {cname}_thresholds, frames);"

    def widths(self, plan: Plan, i: int, prev: int | None) -> tuple[int, int]:
        m = plan.layers[i]
        return m.simd * m.in_dtype.bits, m.pe * m.out_dtype.bits

    def estimate(self, plan: Plan, i: int, w_in: int, prices: Prices) -> LayerEstimate:
        m = plan.layers[i]
        return mvau_estimate(m, m.pe, m.simd, prices)


class ZeroPadMvauStage(MvauStage):
    """A zero-padded convolution's MVAU: CLASSES threshold blocks and the pad class of each output row and
    column ({cname}_class_rows, {cname}_class_cols in weights_<stage>.cpp)."""

    def params(self, m: ZeroPadMvau, elems_per_beat: int) -> dict[str, int | bool]:
        return {**super().params(m, elems_per_beat), "CLASSES": m.pad_class_count,
                "COL_CLASSES": m.class_thresholds.shape[1], "OW": m.out_spatial[1]}

    def call(self, cname: str, src: str, dst: str) -> str:
        return (f"bnn::mvau_padded<{cname}>({src}, {dst}, {cname}_weights, {cname}_thresholds, "
                f"{cname}_class_rows, {cname}_class_cols, frames);")


class MaxPoolStage(_Stage):
    template = "maxpool"

    def first_elems_per_beat(self, layers: Sequence[Layer], i: int) -> int:
        return layers[i].in_shape[-1]  # a leading pool takes whole pixels

    def consumes(self, layers: Sequence[Layer], i: int, cur: int) -> int:
        return math.gcd(cur, layers[i].in_shape[-1])

    def params(self, lay: MaxPool, elems_per_beat: int) -> dict[str, int | bool]:
        (h, w, c), (oh, ow, _) = lay.in_shape, lay.out_shape
        return dict(H=h, W=w, CH=c, KH=lay.kernel[0], KW=lay.kernel[1], SH=lay.stride[0],
                    SW=lay.stride[1], OH=oh, OW=ow, PE=elems_per_beat, EB=lay.dtype.bits, SIGNED=lay.dtype.signed)

    def estimate(self, plan: Plan, i: int, w_in: int, prices: Prices) -> LayerEstimate:
        lay = plan.layers[i]
        return maxpool_estimate(lay, max(1, w_in // lay.dtype.bits), prices)


class FlattenStage(_Stage):
    makes_stage = False  # the stream does not change

    def estimate(self, plan: Plan, i: int, w_in: int, prices: Prices) -> LayerEstimate:
        return LayerEstimate(plan.layers[i].name, "flatten", 0, Resources(), None, None, {})


HLS_LAYERS: dict[type, _Stage] = {Window: WindowStage(), Mvau: MvauStage(), ZeroPadMvau: ZeroPadMvauStage(),
                                  MultiThresholdMvau: MvauStage(), MaxPool: MaxPoolStage(), Flatten: FlattenStage()}


def hls_layer(layer: Layer) -> _Stage:
    return handler(HLS_LAYERS, layer, "HLS back-end")


# --- estimates over a whole plan (the table applied layer by layer) -----------------------------------------

def stream_widths(plan: Plan) -> list[tuple[int, int]]:
    """(input, output) stream width in bits of every layer at the plan's folding.

    Window: SIMD*A both sides (SIMD = its MVAU's); MVAU: SIMD*A in, PE*(1 or accumulator bits) out;
    max-pool and flatten pass their producer's width on (the graph input: the first layer's width).
    """
    widths: list[tuple[int, int]] = []
    prev = None
    for i, lay in enumerate(plan.layers):
        io = hls_layer(lay).widths(plan, i, prev)
        widths.append(io)
        prev = io[1]
    return widths


def layer_estimate(plan: Plan, i: int, w_in: int, prices: Prices) -> LayerEstimate:
    """Layer i's own estimate at the plan's folding, fed by a stream of w_in bits per beat."""
    return hls_layer(plan.layers[i]).estimate(plan, i, w_in, prices)


def estimate_plan(plan: Plan, prices: Prices, dma_bits: int = 64) -> list[LayerEstimate]:
    """Every layer's estimate at the plan's folding; each layer carries its input edge (FIFO + converter).

    Post: the input DMA, one LayerEstimate per plan layer in order, the output DMA.
    """
    widths = stream_widths(plan)
    dma_in, dma_out = dma_estimates(plan, dma_bits)
    out: list[LayerEstimate] = [dma_in]
    for i, lay in enumerate(plan.layers):
        w_prev = widths[i - 1][1] if i else widths[0][0]
        est = layer_estimate(plan, i, w_prev, prices)
        if hls_layer(lay).makes_stage:  # a flatten is a relabeling: the next layer's edge covers it
            luts, edge = edge_estimate(w_prev, widths[i][0])
            est.res = est.res + Resources(luts)
            est.detail["edge"] = edge
        out.append(est)
    return [*out, dma_out]
