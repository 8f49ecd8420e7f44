"""Benchmark: runtime libraries side by side (e.g. this checkout's against one built from an older commit)
and the onnxruntime float twin, interleaved in one process on the same builds and images.

Why: this machine is shared, so numbers from separate runs drift; here every round times each side once, in
an order that rotates, and the report gives medians over rounds of images/s and the ratios between sides.

    .venv/bin/python bench/cpu_versions.py --build bcnn32=BUILD [--build ...] \\
        --library before=/tmp/libbnn_before.so [--rounds 7] [--images 64] [--threads 1] [--json FILE]

The current checkout's library (built as the binding builds it) is always the side "after". A library of an
older commit: `git archive COMMIT bnn_flow/backends/cpu/runtime | tar -x -C DIR`, then gcc with the binding's
flags (binding.CFLAGS) over that commit's runtime sources (sources.py at that commit).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from bnn_flow.backends.cpu import float_twin as ft
from bnn_flow.backends.cpu.bench import bench_images
from bnn_flow.backends.cpu.binding import CpuModel
from bnn_flow.backends.cpu.pack import pack_build
from bnn_flow.build import Build
from bnn_flow.golden import GoldenModel
from bnn_flow.measure import MIN_SAMPLE_S, machine_info


def _rate(fn, x: np.ndarray, reps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(reps):
        fn(x)
    return reps * len(x) / (time.perf_counter() - t0)


def bench_net(build: Build, libraries: dict[str, Path | None], images: int, rounds: int, threads: int) -> dict:
    """images/s per side (medians over rounds) for one build; every binary side checked bit-exact first."""
    plan = build.plan()
    x, _ = bench_images(build, plan, images)
    q = plan.spec.apply(x).astype(np.int16)  # the runtime's input type, as pi-bench gives it
    want = GoldenModel(build).run_integer(x)
    bnn = pack_build(build)
    sess = ft.session(ft.float_twin(build, plan).onnx_bytes, threads)
    sides = {"float": lambda b: sess.run(None, {ft.INPUT: b})}
    inputs = {"float": x}
    for name, lib in libraries.items():
        model = CpuModel(bnn, threads=threads, library=lib)
        if not np.array_equal(model.run_integer(q), want):
            raise SystemExit(f"{name}: not bit-exact with golden on {build.path}")
        sides[name], inputs[name] = model.run_integer, q
    reps = {}
    for name, fn in sides.items():  # warm-up, and batches per sample of at least MIN_SAMPLE_S
        t0 = time.perf_counter()
        fn(inputs[name])
        reps[name] = max(1, int(MIN_SAMPLE_S * 4 / max(time.perf_counter() - t0, 1e-9)))
    rates: dict[str, list[float]] = {n: [] for n in sides}
    order = list(sides)
    for r in range(rounds):
        for name in order[r % len(order):] + order[:r % len(order)]:
            rates[name].append(_rate(sides[name], inputs[name], reps[name]))
    med = {n: statistics.median(v) for n, v in rates.items()}
    out = {"images_per_s": {n: round(v, 1) for n, v in med.items()},
           "vs_float": {n: round(med[n] / med["float"], 2) for n in libraries}}
    if "before" in med:
        out["after_vs_before"] = round(med["after"] / med["before"], 2)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", action="append", required=True, metavar="NAME=BUILD")
    ap.add_argument("--library", action="append", default=[], metavar="NAME=LIBBNN.so")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    libraries: dict[str, Path | None] = {n: Path(p) for n, p in (s.split("=", 1) for s in args.library)}
    libraries["after"] = None  # this checkout's runtime
    result = {"machine": machine_info(), "threads": args.threads, "rounds": args.rounds, "nets": {}}
    for spec in args.build:
        name, path = spec.split("=", 1)
        r = bench_net(Build(Path(path)), libraries, args.images, args.rounds, args.threads)
        result["nets"][name] = r
        print(name, json.dumps(r), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
