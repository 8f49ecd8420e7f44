"""The RTL back-end's one table {plan layer class: its handler}: everything this back-end knows per layer kind.

A handler says, for its kind: which library module (verilog/) implements it, that module's parameters for a
stage of the stream chain (the stage's layer and its input/output stream formats), the memory-init files it
reads, and its cycles per frame from the library's exact formulas (verilog/README.md). The stream chain itself
(elements per beat of every edge, where width converters go) is the HLS back-end's (backends/hls/chain.py):
the two libraries share stream formats and beat orders, so one rule set serves both.

Cycle formulas (no stalls, frames back to back, steady state; CG = channels / elements per beat):
* bnn_mvau     (MH/PE) * (MW/SIMD) * pixels
* bnn_window   max(OH*OW*KH*KW*CG, H*W*CG): the ring buffer reads the next rows while it emits, so the
               output and input beats overlap (the HLS template reads, then emits: their sum)
* bnn_maxpool  H*W*CG: one input beat per cycle, output beats leave while the next row is read
* bnn_dwc      max(N/IN_E, N/OUT_E)
A Flatten is no stage (it relabels a stream): its handler only exists so that the back-end knows the kind.
"""

from __future__ import annotations

import math

from bnn_flow.backends.hls.layers import Fmt
from bnn_flow.backends.rtl import memfiles
from bnn_flow.plan import Flatten, Layer, MaxPool, MultiThresholdMvau, Mvau, Window, ZeroPadMvau, handler


class Bits(int):
    """A parameter value written as a sized Verilog literal (`WIDTH'hVALUE`): a packed table."""

    width: int

    def __new__(cls, value: int, width: int) -> Bits:
        b = super().__new__(cls, value)
        b.width = width
        return b

    def literal(self) -> str:
        return f"{self.width}'h{int(self):x}"


def packed_table(values: tuple[int, ...], bits: int) -> Bits:
    """Entry i at bits [i*bits +: bits], two's complement."""
    mask = (1 << bits) - 1
    return Bits(sum((v & mask) << (i * bits) for i, v in enumerate(values)), len(values) * bits)


Params = dict[str, int | str]


class _RtlLayer:
    """A layer kind's module, parameters, memory files and cycle estimate."""

    module = ""
    makes_stage = True

    def params(self, layer: Layer, fin: Fmt, fout: Fmt, cname: str) -> Params:
        raise NotImplementedError

    def memfiles(self, layer: Layer, cname: str) -> dict[str, str]:
        """{file name: $readmemh text} the module reads (names are built from the sanitized cname only)."""
        return {}

    def cycles(self, layer: Layer, fin: Fmt, fout: Fmt) -> int:
        raise NotImplementedError


class WindowRtl(_RtlLayer):
    module = "bnn_window"

    def params(self, lay: Window, fin: Fmt, fout: Fmt, cname: str) -> Params:
        (h, w, c), (oh, ow, _) = lay.in_shape, lay.out_shape
        return dict(H=h, W=w, CH=c, KH=lay.kernel[0], KW=lay.kernel[1], SH=lay.stride[0], SW=lay.stride[1],
                    PT=lay.pad[0], PL=lay.pad[1], OH=oh, OW=ow, SIMD=fin.elems_per_beat, EB=lay.dtype.bits,
                    PAD=int(lay.pad_value))

    def cycles(self, lay: Window, fin: Fmt, fout: Fmt) -> int:
        (h, w, c), (oh, ow, _) = lay.in_shape, lay.out_shape
        cg = c // fin.elems_per_beat
        return max(oh * ow * lay.kernel[0] * lay.kernel[1] * cg, h * w * cg)


def mvau_widths(m: Mvau) -> dict[str, int]:
    """Element widths of bnn_mvau for a plan MVAU: weights -1/+1 of an integer layer are one bit each
    (WBIPOLAR: a conditional negation instead of a multiplier); AB is the accumulator as a signed number."""
    acc = m.acc_dtype
    ab = acc.bits + (0 if acc.signed else 1)
    if m.binary:
        wb, wsigned, wbipolar = 1, 0, 0
    elif m.bipolar_weights:
        wb, wsigned, wbipolar = 1, 0, 1
    else:
        wb, wsigned, wbipolar = m.w_dtype.bits, int(m.w_dtype.signed), 0
    return dict(WB=wb, WSIGNED=wsigned, WBIPOLAR=wbipolar, AB=ab, OB=m.out_dtype.bits)


class MvauRtl(_RtlLayer):
    module = "bnn_mvau"

    @staticmethod
    def weight_file(cname: str) -> str:
        return f"{cname}_weights.memh"

    @staticmethod
    def threshold_file(cname: str) -> str:
        return f"{cname}_thresholds.memh"

    def params(self, m: Mvau, fin: Fmt, fout: Fmt, cname: str) -> Params:
        wd = mvau_widths(m)
        p: Params = dict(MW=m.mw, MH=m.mh, SIMD=m.simd, PE=m.pe, PIXELS=m.pixels, IB=m.in_dtype.bits,
                         ISIGNED=int(m.in_dtype.signed), WB=wd["WB"], WSIGNED=wd["WSIGNED"], WBIPOLAR=wd["WBIPOLAR"],
                         BINARY=int(m.binary), AB=wd["AB"], THRESH=int(m.thresholds is not None), OB=wd["OB"],
                         WEIGHT_FILE=self.weight_file(cname))
        if m.thresholds is not None:
            p["THRESH_FILE"] = self.threshold_file(cname)
        if isinstance(m, MultiThresholdMvau):  # bits need neither (bnn_mvau's defaults LEVELS 1, OOFF 0)
            p |= {"LEVELS": m.levels, "OOFF": m.out_offset}
        if m.in_levels:  # a nonuniform activation's index in: decode its level (bnn_mvau's DECODE)
            d = m.dot_dtype
            p |= {"DECODE": 1, "DB": d.bits, "DSIGNED": int(d.signed), "LEVEL_TABLE": packed_table(m.in_levels, d.bits)}
        return p

    def memfiles(self, m: Mvau, cname: str) -> dict[str, str]:
        wd = mvau_widths(m)
        weights = memfiles.mvau_weight_memh(m.weights, m.pe, m.simd, wd["WB"], signed=bool(wd["WSIGNED"]),
                                            bipolar=bool(wd["WBIPOLAR"]))
        files = {self.weight_file(cname): weights,
                 **memfiles.rom_bank_files(self.weight_file(cname), weights, m.pe * m.simd * wd["WB"])}
        if m.thresholds is not None:
            levels = m.thresholds.size // m.mh
            thresholds = memfiles.mvau_threshold_memh(m.thresholds, m.mh, m.pe, wd["AB"])
            files |= {self.threshold_file(cname): thresholds,
                      **memfiles.rom_bank_files(self.threshold_file(cname), thresholds, m.pe * levels * wd["AB"])}
        return files

    def cycles(self, m: Mvau, fin: Fmt, fout: Fmt) -> int:
        return (m.mh // m.pe) * (m.mw // m.simd) * m.pixels


class ZeroPadMvauRtl(MvauRtl):
    """A zero-padded convolution's MVAU: one threshold set per pad class (CLASSES x NF threshold lines,
    class-major) and the class of each output row and column (CLASS_FILE: OH + OW lines)."""

    @staticmethod
    def class_file(cname: str) -> str:
        return f"{cname}_classes.memh"

    def params(self, m: ZeroPadMvau, fin: Fmt, fout: Fmt, cname: str) -> Params:
        return {**super().params(m, fin, fout, cname), "CLASSES": m.pad_class_count,
                "COL_CLASSES": m.class_thresholds.shape[1], "OW": m.out_spatial[1],
                "CLASS_FILE": self.class_file(cname)}

    def memfiles(self, m: ZeroPadMvau, cname: str) -> dict[str, str]:
        files = super().memfiles(m, cname)  # weights, and the first class's thresholds: replaced below
        files = {k: v for k, v in files.items() if not k.startswith(self.threshold_file(cname))}
        ab = mvau_widths(m)["AB"]
        blocks = m.class_thresholds.reshape(-1, m.mh)
        thresholds = "".join(memfiles.mvau_threshold_memh(t, m.mh, m.pe, ab) for t in blocks)
        return {**files, self.threshold_file(cname): thresholds,
                **memfiles.rom_bank_files(self.threshold_file(cname), thresholds, m.pe * ab),
                self.class_file(cname): memfiles.class_map_memh(m.threshold_rows, m.threshold_cols, m.pad_class_count)}


class MaxPoolRtl(_RtlLayer):
    module = "bnn_maxpool"

    def params(self, lay: MaxPool, fin: Fmt, fout: Fmt, cname: str) -> Params:
        (h, w, c), (oh, ow, _) = lay.in_shape, lay.out_shape
        return dict(H=h, W=w, CH=c, KH=lay.kernel[0], KW=lay.kernel[1], SH=lay.stride[0], SW=lay.stride[1],
                    OH=oh, OW=ow, PE=fin.elems_per_beat, EB=lay.dtype.bits, SIGNED=int(lay.dtype.signed))

    def cycles(self, lay: MaxPool, fin: Fmt, fout: Fmt) -> int:
        h, w, c = lay.in_shape
        return h * w * c // fin.elems_per_beat


class FlattenRtl(_RtlLayer):
    makes_stage = False  # the stream does not change


class DwcRtl:
    """The width converter between two stages (no plan layer: the chain inserts it)."""

    module = "bnn_dwc"

    def params(self, fin: Fmt, fout: Fmt) -> Params:
        return dict(IN_E=fin.elems_per_beat, OUT_E=fout.elems_per_beat, EB=fin.dtype.bits, N=fin.elems)

    def cycles(self, fin: Fmt, fout: Fmt) -> int:
        return max(fin.elems // fin.elems_per_beat, fin.elems // fout.elems_per_beat)


class FifoRtl:
    """The FIFO on every edge between two stages."""

    module = "bnn_fifo"

    def params(self, fmt: Fmt, depth: int) -> Params:
        return dict(WIDTH=fmt.width, DEPTH=depth)

    def cycles(self, fmt: Fmt) -> int:
        return math.ceil(fmt.elems / fmt.elems_per_beat)


RTL_LAYERS: dict[type, _RtlLayer] = {Window: WindowRtl(), Mvau: MvauRtl(), ZeroPadMvau: ZeroPadMvauRtl(),
                                     MultiThresholdMvau: MvauRtl(), MaxPool: MaxPoolRtl(), Flatten: FlattenRtl()}
CONVERTER = DwcRtl()
FIFO = FifoRtl()


def rtl_layer(layer: Layer) -> _RtlLayer:
    return handler(RTL_LAYERS, layer, "RTL back-end")


__all__ = ["CONVERTER", "FIFO", "RTL_LAYERS", "Params", "mvau_widths", "rtl_layer"]
