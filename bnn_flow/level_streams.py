"""Decode at the producer: the plan equivalent whose streams carry a nonuniform activation's levels.

In a plan, a nonuniform activation (ENQ/KNQ, transforms/level_decode.py) streams its n-bit index and the next
integer MVAU decodes it (Mvau.in_levels). A back-end without that decode (the C runtime: its memory is not the
point, its .bnn format has no table) runs this equivalent plan instead: the producer's MultiThresholdMvau gets one
threshold per unit step of the integer table (a level k steps above the previous one repeats that index's
threshold k times: out = table[0] + #{steps reached} = table[index]), its windows pad with the padded index's
level, every type between covers the levels, and the consumer reads them as plain integers.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bnn_flow.conventions import IntType
from bnn_flow.errors import BadInputError
from bnn_flow.plan import Flatten, Layer, MaxPool, MultiThresholdMvau, Mvau, Plan, Window


def emit_levels(layer: MultiThresholdMvau, table: np.ndarray) -> MultiThresholdMvau:
    """A multi-threshold MVAU emitting table[index] instead of the index."""
    if layer.levels != table.size - 1 or layer.out_offset != 0:
        raise BadInputError(f"layer {layer.name}: {layer.levels} thresholds do not index the {table.size} levels "
                            "its consumer decodes: recompile")
    steps = np.arange(int(table[0]) + 1, int(table[-1]) + 1)
    index = np.searchsorted(table, steps, side="left")  # the index whose level first reaches each unit step
    return dataclasses.replace(layer, thresholds=layer.thresholds[:, index - 1], levels=int(steps.size),
                               out_offset=int(table[0]), act_dtype=IntType.covering(int(table[0]), int(table[-1])))


def _carrying(layer: Layer, table: np.ndarray, dtype: IntType) -> Layer:
    """A window / max-pool / flatten between producer and consumer, on the levels."""
    if isinstance(layer, Window):
        return dataclasses.replace(layer, pad_value=int(table[layer.pad_value]), dtype=dtype)
    return dataclasses.replace(layer, dtype=dtype)


def levels_streamed(plan: Plan) -> Plan:
    """The plan with every nonuniform activation's levels in its streams (no Mvau.in_levels left)."""
    layers = list(plan.layers)
    for i, lay in enumerate(layers):
        if not isinstance(lay, Mvau) or not lay.in_levels:
            continue
        table, dtype = np.asarray(lay.in_levels, dtype=np.int64), lay.dot_dtype
        j = i - 1
        while j >= 0 and isinstance(layers[j], Window | MaxPool | Flatten):
            layers[j] = _carrying(layers[j], table, dtype)
            j -= 1
        if j < 0 or not isinstance(layers[j], MultiThresholdMvau):
            raise BadInputError(f"layer {lay.name} decodes levels that no multi-threshold MVAU emits: recompile")
        layers[j] = emit_levels(layers[j], table)
        layers[i] = dataclasses.replace(lay, in_levels=(), in_dtype=dtype)
    return dataclasses.replace(plan, layers=layers)
