"""pi-bench: the binarized network (C runtime) against its float twin (onnxruntime) on the same core(s).

Measurement protocol (one process, same cores, both sides in every round):

* warm-up: each side runs a few single images and one batch first (thread pools, caches, page faults);
* `rounds` rounds; each runs `latency_images` single-image calls per side (one latency sample each, for
  p50/p99), binary and float image by image, then a throughput sample per side: the batch of all bench
  images, repeated to last at least MIN_SAMPLE_S (tiny nets run a batch in a millisecond); the order
  of the two sides alternates, so a drift of the machine's load hits both;
* images/s is the median over rounds of the batch rates; latencies are taken at the Python call (both
  sides pay one call's overhead per image: ctypes for the runtime, session.run for onnxruntime);
* once single-threaded and once with `threads` (when > 1);
* per binary convolution: the runtime's own per-layer timer (CpuModel.run_timed: the layer's sliding
  window + matrix layer) against a one-layer onnxruntime model of the same convolution (Conv + BatchNorm
  + Relu, same shapes and padding) on the same batch, single thread; medians over rounds;
* model bytes: the .bnn file (and the packed weights + thresholds alone) against float32 parameters of
  the float twin (conv/FC weights + 2 per BatchNorm channel, its folded scale and shift).

Before timing, the runtime's output on the bench images is checked bit-exact against the golden model.
`--target aarch64|armv7|armv6` without --host only verifies under qemu: emulated timings are no Pi speeds
and are not reported. `--host USER@ADDR` runs the same measurements on the Pi (bench_remote).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from bnn_flow.backends.cpu import bench_remote, bench_report
from bnn_flow.backends.cpu import float_twin as ft
from bnn_flow.backends.cpu.bench_report import model_bytes
from bnn_flow.backends.cpu.binding import CpuModel
from bnn_flow.backends.cpu.pack import cpu_dir, pack_build
from bnn_flow.backends.cpu.target import PiTarget
from bnn_flow.backends.cpu.toolchain import TARGETS
from bnn_flow.build import Build, as_build
from bnn_flow.errors import BadInputError, BnnFlowError, CheckFailedError, MissingToolError
from bnn_flow.measure import check_bit_exact, machine_info, measure_pair, speedup_row, thread_counts
from bnn_flow.plan import MaxPool, Mvau, Plan, Window

# Single-thread images/s over the float twin's (issues #5 and #13), by the kind of net (speedup_goal)
SPEEDUP_GOAL = 8.0  # convolutional nets whose binary convolutions have >= 64 input channels
NARROW_SPEEDUP_GOAL = 3.0  # narrower binary convolutions (the `make demo` net: 16-32 channels)
FLAT_SPEEDUP_GOAL = 2.0  # fully connected nets (TFC): float's GEMM is small and already fast
SIZE_GOAL = 25.0  # packed weights >= 25x smaller than float32
PI_TARGETS = ("aarch64", "armv7", "armv6")
_INPUT_DATASETS = {(28, 28, 1): "mnist", (32, 32, 3): "cifar10"}


def bench_images(build: Build | Path, plan: Plan, n: int, data_dir: str | None = None) -> tuple[np.ndarray, str]:
    """(n float32 NCHW images in [0, 1], where they came from): the data set's test images when found.

    The data set is the one source.json records, else guessed from the input shape (MNIST, CIFAR-10).
    Otherwise random valid pixels: the timing of both sides does not depend on the values.
    """
    build = as_build(build)
    try:
        name = build.source_info().get("dataset")
    except BadInputError:
        name = None
    name = name or _INPUT_DATASETS.get(tuple(plan.input_shape))
    if name:
        try:
            x, _, _ = build.test_images(n, name, data_dir, download=False)
            if len(x) >= n and x.shape[1:] == (plan.input_shape[2], *plan.input_shape[:2]):
                return np.ascontiguousarray(x), f"{name} test set (first {n})"
        except (BnnFlowError, OSError, ValueError):
            pass
    shape = plan.input_shape  # (H, W, C) -> NCHW images; a flat graph input (K,) -> (N, K)
    rng = np.random.default_rng(0)
    x = (rng.integers(0, 256, size=(n, shape[2], shape[0], shape[1]) if len(shape) == 3 else (n, *shape))
         / 255.0).astype(np.float32)
    return x, "random valid pixels (no test set found; timing does not depend on values)"




def speedup_goal(plan: Plan) -> tuple[float, str]:
    """The single-thread speedup goal for this net and why: binary words of a narrow map are mostly padding,
    and a fully connected net has no convolution for the binary side to win on."""
    if not any(isinstance(layer, Window) for layer in plan.layers):
        return FLAT_SPEEDUP_GOAL, "fully connected net"
    if any(w.in_shape[2] < 64 for w, _ in conv_layers(plan)):
        return NARROW_SPEEDUP_GOAL, "binary convolutions under 64 channels"
    return SPEEDUP_GOAL, "convolutional net"


def conv_layers(plan: Plan) -> list[tuple[Window, Mvau]]:
    """The binary convolutions of the plan: (window, matrix layer) pairs."""
    pairs, prev = [], None
    for lay in plan.layers:
        if isinstance(lay, Mvau) and lay.binary and lay.out_spatial and prev is not None:
            pairs.append((prev, lay))
        prev = lay if isinstance(lay, Window) else None
    return pairs


def layer_seconds(names: list[str], per_layer: list[float], window: Window, mvau: Mvau) -> tuple[float, float]:
    """The runtime's time for one convolution: (its window entry, its matrix layer entry), seconds.

    A runtime that fuses the window into the matrix layer reports 0 for the window. Raises
    CheckFailedError when the runtime reports neither (its layer names would not match the plan).
    """
    by_name = dict(zip(names, per_layer, strict=True))
    if window.name not in by_name and mvau.name not in by_name:
        raise CheckFailedError(f"the runtime reports no time for layer {mvau.name} (its layers: {names})")
    return float(by_name.get(window.name, 0.0)), float(by_name.get(mvau.name, 0.0))


def measure_layers(model, plan: Plan, q: np.ndarray, *, rounds: int = 5, batch: int = 8,
                   ceiling: tuple[float, float] | None = None) -> list[dict]:
    """Per binary convolution: runtime seconds (run_timed) vs the same layer in onnxruntime, 1 thread.

    Each row also splits the runtime's time into the sliding window (im2col on bits) and the matrix layer
    (a fused convolution reports its whole time as the window's: `fused`), and gives its binary MACs per
    cycle against the kernel family's ceiling (`ceiling`: MACs/s and clock Hz of CpuModel.isa_ceiling).
    """
    pairs = conv_layers(plan)
    codes = dict(zip(model.layer_names, getattr(model, "layer_fused", []), strict=False))
    fused = {n: f == 1 for n, f in codes.items()}
    after = {a.name: b for a, b in zip(plan.layers, plan.layers[1:], strict=False)}
    floats = ft.layer_models(plan)
    rng = np.random.default_rng(2)
    sessions = {m.name: ft.session(floats[m.name], 1) for _, m in pairs}
    inputs = {w.name: rng.random((batch, w.in_shape[2], w.in_shape[0], w.in_shape[1]), dtype=np.float32)
              for w, _ in pairs}
    qb = q[:batch]
    model.run_timed(qb)  # warm-up
    for w, m in pairs:
        sessions[m.name].run(None, {ft.INPUT: inputs[w.name]})
    b_t: dict[str, list[tuple[float, float]]] = {m.name: [] for _, m in pairs}
    f_t: dict[str, list[float]] = {m.name: [] for _, m in pairs}
    for _ in range(rounds):
        _, _, per_layer = model.run_timed(qb)
        for w, m in pairs:
            win, mat = layer_seconds(list(model.layer_names), list(per_layer), w, m)
            b_t[m.name].append((win / len(qb), mat / len(qb)))
            t0 = time.perf_counter()
            sessions[m.name].run(None, {ft.INPUT: inputs[w.name]})
            f_t[m.name].append((time.perf_counter() - t0) / batch)
    rows = []
    for w, m in pairs:
        parts = np.asarray(b_t[m.name])
        b, f = float(np.median(parts.sum(axis=1))), float(np.median(f_t[m.name]))
        row = {"layer": m.name, "in_hwc": list(w.in_shape), "out_channels": m.mh, "kernel": list(w.kernel),
               "fused": bool(fused.get(w.name)), "binary_ms": round(b * 1e3, 4),
               "binary_window_ms": round(float(np.median(parts[:, 0])) * 1e3, 4),
               "binary_matrix_ms": round(float(np.median(parts[:, 1])) * 1e3, 4),
               "float_ms": round(f * 1e3, 4), "speedup": round(f / b, 2) if b > 0 else None}
        pix = m.pixels
        nxt = after.get(m.name)
        if isinstance(nxt, MaxPool) and codes.get(nxt.name) == 2 and m.out_spatial:  # a fused 2x2 pool computes
            pix = (m.out_spatial[0] // 2 * 2) * (m.out_spatial[1] // 2 * 2)  # only the pixels it reads (floor)
        rows.append({**row, **_ceiling_columns(pix * m.mh * m.mw, b, ceiling)})
    return rows


def _ceiling_columns(macs: int, seconds: float, ceiling: tuple[float, float] | None) -> dict:
    """A layer's binary MACs (real ones: computed pixels x channels x kh*kw*C, no padding bits), its MACs per
    cycle and its share of the ceiling (MACs/s of the family's XNOR-popcount step, the clock estimate)."""
    if not ceiling or seconds <= 0 or ceiling[0] <= 0 or ceiling[1] <= 0:
        return {"binary_macs": macs}
    rate, hz = macs / seconds, ceiling[1]
    return {"binary_macs": macs, "macs_per_cycle": round(rate / hz, 1),
            "ceiling_macs_per_cycle": round(ceiling[0] / hz, 1), "ceiling_pct": round(100 * rate / ceiling[0], 1)}




def _host_bench(build: Build, plan: Plan, x: np.ndarray, threads: int, rounds: int, latency_images: int,
                per_layer: bool) -> dict[str, Any]:
    """The measurements on this machine (binary runtime via the ctypes binding, float via onnxruntime)."""
    bnn = pack_build(build)
    q = plan.spec.apply(x).astype(np.int16)  # the runtime's input type (InputSpec's ranges fit it; not timed)
    twin = ft.float_twin(build, plan)
    first = CpuModel(bnn, threads=1)
    exact = check_bit_exact(build, first.run_integer(q), x, "host")
    runs = []
    for t in thread_counts(threads):
        model = first if t == 1 else CpuModel(bnn, threads=t)
        sess = ft.session(twin.onnx_bytes, t)
        stats = measure_pair(model.run_integer, lambda b, s=sess: s.run(None, {ft.INPUT: b}), q, x,
                             rounds=rounds, latency_images=latency_images)
        # the runtime starts fewer threads for little work (bnn_set_thread_grain): say how many ran
        runs.append({**speedup_row(t, stats), "threads_used": {"batch": model.threads_used(len(q)),
                                                               "one_image": model.threads_used(1)}})
    ceiling = first.isa_ceiling() if per_layer else None
    layers = measure_layers(first, plan, q, rounds=rounds, ceiling=ceiling) if per_layer else []
    extra = {"ceiling": {"binary_macs_per_s": round(ceiling[0]), "clock_hz_estimate": round(ceiling[1]),
                         "how": "the kernel family's XNOR-popcount tile step alone (bnn_isa_mix_opt, operands in "
                         "L1), best of 56 short samples; clock from a chain of dependent adds"}} if ceiling else {}
    return {**extra, "where": "host", "emulated": False, "kernels": first.kernels, "bnn": str(bnn),
            "float_source": twin.source, "verify": exact, "runs": runs, "layers": layers,
            "bytes": model_bytes(plan, bnn, twin)}




def _qemu_verify(build: Build, plan: Plan, x: np.ndarray, target: str) -> dict[str, Any]:
    """Bit-exactness of the cross-built runtime under qemu-user; no timings (emulation is no Pi speed)."""
    pi = PiTarget(target)
    why = pi.available()
    if why:
        raise MissingToolError(f"--target {target}: cannot run here: {why}")
    acc = pi.run_integer(build, plan.spec.apply(x))
    twin = ft.float_twin(build, plan)
    return {"where": f"qemu-user ({target})", "emulated": True, "kernels": TARGETS[target].kernels,
            "verify": check_bit_exact(build, acc, x, target), "runs": [], "layers": [],
            "float_source": twin.source, "bytes": model_bytes(plan, pack_build(build), twin),
            "note": "emulated under qemu: verified bit-exact only; timings under emulation are not Pi speeds "
                    "and are not reported (give --host USER@ADDR to time on a Pi)"}


def default_outputs(build: Build | Path) -> tuple[Path, Path]:
    """Where pi-bench writes its JSON and chart unless told: BUILD/cpu/pi-bench.json and .png."""
    folder = cpu_dir(as_build(build))
    return folder / "pi-bench.json", folder / "pi-bench.png"


def pi_bench(build_dir: str | Path, *, target: str = "host", host: str | None = None, threads: int | None = None,
             images: int = 64, rounds: int = 5, latency_images: int = 16, per_layer: bool = True,
             json_path: Path | None = None, png_path: Path | None = None, data_dir: str | None = None) -> dict:
    """Run pi-bench on BUILD and return the result (the JSON record); write JSON/PNG when paths are given.

    target: host (this machine), or aarch64/armv7/armv6: under qemu (verification only) or, with
    host=USER@ADDR, on that Pi over ssh. threads: the multi-thread count (default: every core of the
    machine that runs the benchmark).
    Raises BadInputError (usage, unreachable Pi), MissingToolError (ssh, qemu, compiler missing),
    CheckFailedError (the runtime is not bit-exact with the golden model).
    """
    build = as_build(build_dir)
    if target not in ("host", *PI_TARGETS):
        raise BadInputError(f"--target {target}: choose host, {', '.join(PI_TARGETS)}")
    if images < 1 or rounds < 1:
        raise BadInputError("--images and --repeat must be at least 1")
    if threads is not None:
        thread_counts(threads)  # validates
    if host:
        bench_remote.check_host(host)
    if not build.path.is_dir():
        raise BadInputError(f"build {build} not found (bnn-flow compile MODEL.onnx --out {build})")
    load_before = [round(v, 2) for v in os.getloadavg()]
    plan = build.plan()
    x, source = bench_images(build, plan, images, data_dir)
    if host:
        body = bench_remote.remote_bench(build, plan, x, host=host, target=target, threads=threads, rounds=rounds)
    elif target == "host":
        body = _host_bench(build, plan, x, threads or os.cpu_count() or 1, rounds, latency_images, per_layer)
    else:
        body = _qemu_verify(build, plan, x, target)
    result = {"build": str(build), "target": target, "images": len(x), "images_source": source,
              "net": bench_report.net_summary(plan), "machine": {**machine_info(), "load_average_before": load_before},
              "protocol": {"rounds": rounds, "latency_images": min(latency_images, len(x)), "warmup": 3,
                           "order": "binary/float alternating per round", "float_runtime": "onnxruntime "
                           "(ORT_ENABLE_ALL, sequential, inter_op 1, intra_op = threads)",
                           "latency": "batch 1, timed at the Python call; images/s: one batch of all images; "
                           "the binary side starts from the input integers (InputSpec.apply not timed), the "
                           "float side from float32 pixels",
                           "per_layer": "runtime's own timer (sliding window + XNOR-popcount + thresholds) vs a "
                           "one-layer onnxruntime Conv+BatchNorm+Relu of the same shapes, batch 8, 1 thread",
                           "float_bn": "BatchNormalization nodes in the ONNX; onnxruntime folds them into the "
                           "convolutions (ORT_ENABLE_ALL)"},
              **body}
    goal, why = speedup_goal(plan)
    result["goals"] = bench_report.goals(result, goal, SIZE_GOAL, why)
    if json_path:
        bench_report.write_json(json_path, result)
    if png_path:
        bench_report.write_png(png_path, result)
    return result


def format_summary(result: dict) -> str:
    """The printed table of a pi_bench result (for the CLI and the end of make demo)."""
    return bench_report.format_table(result)
