"""Activation memory of compiled builds: what the RTL design stores of the feature maps (issue #12's ablation).

Per build, from the RTL back-end's design of its unfolded plan (PE = SIMD = 1: the storage does not depend on
the folding): the element bits of every stream between layers, and the bits the design holds of them: the
sliding windows' ring buffers (window_ring_rows x W x C elements; not the input image's), the max-pools' row
and column buffers, and the MVAUs' input-vector buffers (MW elements when the layer has more than one output
fold). A nonuniform activation streams its n-bit index, which is what the design stores; `levels` is the same
net with the levels in the streams instead (level_streams.levels_streamed: what it would cost without the
decode).

    .venv/bin/python bench/activation_memory.py --build enq=BUILD --build uniform=BUILD ... [--out FILE.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bnn_flow.backends.rtl.design import design_of
from bnn_flow.backends.rtl.estimate import window_ring_rows
from bnn_flow.build import Build
from bnn_flow.fileio import write_json_atomic
from bnn_flow.level_streams import levels_streamed
from bnn_flow.plan import Plan

RESULTS = Path(__file__).resolve().parent / "results"


def stored_bits(plan: Plan) -> dict[str, int]:
    """Bits of hidden feature-map storage per kind of buffer in the RTL design of `plan` (after the first MVAU:
    the input image's window is the same for every activation quantizer)."""
    bits = {"window_ring_buffers": 0, "maxpool_buffers": 0, "mvau_input_buffers": 0}
    stages = design_of(plan).stages
    first = next(i for i, s in enumerate(stages) if s.module == "bnn_mvau")
    for s in stages[first + 1:]:
        p = s.params
        if s.module == "bnn_window":
            bits["window_ring_buffers"] += window_ring_rows(p) * p["W"] * p["CH"] * p["EB"]
        elif s.module == "bnn_maxpool":
            bits["maxpool_buffers"] += (p["KW"] + p["KH"] * p["OW"]) * p["CH"] * p["EB"]
        elif s.module == "bnn_mvau" and p["MH"] // p["PE"] > 1:
            bits["mvau_input_buffers"] += p["MW"] * p["IB"]
    return {**bits, "total": sum(bits.values())}


def stream_bits(plan: Plan) -> list[int]:
    """The element bits of each stream an MVAU produces for the next layer (hidden activations)."""
    return [m.out_dtype.bits for m in plan.mvaus[:-1]]


def measure(build: Path) -> dict:
    plan = Build(build).plan(folded=False)
    streamed = levels_streamed(plan)
    return {"build": str(build), "stream_bits": stream_bits(plan), "stored_bits": stored_bits(plan),
            "levels": {"stream_bits": stream_bits(streamed), "stored_bits": stored_bits(streamed)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", action="append", required=True, help="NAME=BUILD (repeatable)")
    ap.add_argument("--out", type=Path, default=RESULTS / "activation_memory.json")
    args = ap.parse_args()
    result = {}
    for item in args.build:
        name, _, path = item.partition("=")
        result[name] = measure(Path(path))
        r = result[name]
        print(f"{name:12s} streams {r['stream_bits']} bits, stored {r['stored_bits']['total']:,} bits"
              f" (levels in the streams: {r['levels']['stored_bits']['total']:,})")
    write_json_atomic(args.out, result)
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
