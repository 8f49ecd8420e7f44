"""Measurement code shared by pi-bench (local and over ssh) and the benchmarks in bench/: the machine's
identity, interleaved timing of two runners, best-of-N timing, speedup rows, and the bit-exactness check
that comes before any timing (a wrong network is never benchmarked).
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

from bnn_flow.build import Build, as_build
from bnn_flow.errors import BadInputError, CheckFailedError
from bnn_flow.golden import GoldenModel

MIN_SAMPLE_S = 0.05  # a throughput sample repeats the batch for at least this long
LOAD_CAVEAT = ("timings on a shared machine: other processes may have run on the same cores; see "
               "load_average; both sides ran interleaved in the same rounds, so ratios are fairer than "
               "absolute numbers")


def best_time(fn: Callable[[], object], repeat: int) -> float:
    """Smallest wall time of `repeat` calls of fn (seconds): the least disturbed run on a shared machine."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _percentile_ms(samples: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(samples) * 1e3, q)), 4)


def measure_pair(binary: Callable[[np.ndarray], object], floating: Callable[[np.ndarray], object],
                 q: np.ndarray, x: np.ndarray, *, rounds: int = 5, latency_images: int = 16,
                 warmup: int = 3) -> dict[str, dict[str, float]]:
    """Interleaved latency and throughput of two runners on the same images (the protocol above).

    binary(q[i:j]) and floating(x[i:j]) each run one batch. Returns {"binary": stats, "float": stats},
    stats = {"p50_ms", "p99_ms", "images_per_s" (median of rounds), "images_per_s_best" (the best round:
    the least disturbed one on a shared machine), "latency_samples", "batch"}.
    """
    sides = {"binary": (binary, q), "float": (floating, x)}
    batches = {}  # batch runs per throughput sample: at least MIN_SAMPLE_S, so one timer slice is not a sample
    for name, (fn, data) in sides.items():
        for _ in range(warmup):
            fn(data[:1])
        t0 = time.perf_counter()
        fn(data)
        batches[name] = max(1, math.ceil(MIN_SAMPLE_S / max(time.perf_counter() - t0, 1e-9)))
    lat: dict[str, list[float]] = {k: [] for k in sides}
    rate: dict[str, list[float]] = {k: [] for k in sides}
    k_lat = min(latency_images, len(q))
    orders = (("binary", "float"), ("float", "binary"))
    for r in range(rounds):
        for i in range(k_lat):  # image by image, alternating: both sides see the same load on the machine
            for name in orders[(r + i) % 2]:
                fn, data = sides[name]
                t0 = time.perf_counter()
                fn(data[i : i + 1])
                lat[name].append(time.perf_counter() - t0)
        for name in orders[r % 2]:
            fn, data = sides[name]
            t0 = time.perf_counter()
            for _ in range(batches[name]):
                fn(data)
            rate[name].append(batches[name] * len(data) / (time.perf_counter() - t0))
    return {name: {"p50_ms": _percentile_ms(lat[name], 50), "p99_ms": _percentile_ms(lat[name], 99),
                   "images_per_s": round(float(np.median(rate[name])), 2),
                   "images_per_s_best": round(float(np.max(rate[name])), 2), "latency_samples": len(lat[name]),
                   "batch": len(q)} for name in sides}


def speedup_row(threads: int, stats: dict[str, dict[str, float]]) -> dict[str, Any]:
    b, f = stats["binary"], stats["float"]
    return {"threads": threads, "binary": b, "float": f,
            "speedup_images_per_s": round(b["images_per_s"] / f["images_per_s"], 2),
            "speedup_best": round(b["images_per_s_best"] / f["images_per_s_best"], 2)
            if "images_per_s_best" in b and "images_per_s_best" in f else None,
            "speedup_p50": round(f["p50_ms"] / b["p50_ms"], 2) if b["p50_ms"] > 0 else None}


def thread_counts(threads: int) -> list[int]:
    """Single thread, and `threads` when more than one."""
    if threads < 1:
        raise BadInputError(f"--threads {threads}: give a positive number of threads")
    return [1] if threads == 1 else [1, threads]


def machine_info() -> dict[str, Any]:
    """CPU model, cores, platform, library versions and the load average (the shared-machine caveat)."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.split(":")[0].strip() in ("model name", "Model", "Hardware"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpu_model": model, "cores": os.cpu_count(), "platform": platform.platform(),
            "onnxruntime": onnxruntime.__version__, "numpy": np.__version__,
            "load_average": [round(v, 2) for v in os.getloadavg()], "caveat": LOAD_CAVEAT}  # 1, 5, 15 min


def check_bit_exact(build: Build | Path, acc: np.ndarray, x: np.ndarray, where: str) -> dict[str, Any]:
    """Compare a back-end's accumulators on images x with the golden model; CheckFailedError if they differ."""
    build = as_build(build)
    gold = GoldenModel(build).run_integer(x)
    acc = np.asarray(acc, dtype=np.int64)
    if acc.shape != gold.shape or not np.array_equal(acc, gold):
        bad = int(np.sum(np.any(acc != gold, axis=1))) if acc.shape == gold.shape else len(x)
        raise CheckFailedError(f"{where}: the binarized runtime differs from the golden model on {bad} of "
                               f"{len(x)} images of {build}; not benchmarking a wrong network")
    return {"images": len(x), "bit_exact": True, "against": "golden model"}
