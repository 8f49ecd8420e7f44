"""pi-bench output: the JSON record, the printed table and the bar chart (PNG).

The result dict is built by bench.pi_bench; this module only presents it. Keys it reads:
runs[] {threads, binary/float {p50_ms, p99_ms, images_per_s}, speedup_images_per_s}, layers[] {layer,
binary_ms, float_ms, speedup}, bytes {bnn_file?, packed_weights_thresholds, float32_params, ratio_*},
goals, verify, emulated, where, note.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bnn_flow.backends.cpu.float_twin import FloatTwin
from bnn_flow.fileio import write_json_atomic
from bnn_flow.plan import Mvau, Plan, ZeroPadMvau
from bnn_flow.plots import pyplot, save_png


def net_summary(plan: Plan) -> dict[str, Any]:
    """What network was measured: input, layer counts, binary MACs per image."""
    macs = sum(m.mh * m.mw * m.pixels for m in plan.mvaus)
    binary = sum(m.mh * m.mw * m.pixels for m in plan.mvaus if m.binary)
    return {"input_hwc": list(plan.input_shape), "classes": plan.classes, "matrix_layers": len(plan.mvaus),
            "binary_convs": sum(1 for m in plan.mvaus if isinstance(m, Mvau) and m.binary and m.out_spatial),
            "macs_per_image": int(macs), "binary_macs_per_image": int(binary)}


def packed_bytes(plan: Plan) -> int:
    """Weights at their bit width (binary: 1 bit, dense) + one int32 threshold per output channel (per pad
    class and output channel for a zero-padded convolution, with its class map of OH + OW bytes; per level and
    output channel for an n-bit activation)."""
    total = 0
    for m in plan.mvaus:
        total += (m.mh * m.mw * m.w_dtype.bits + 7) // 8
        if isinstance(m, ZeroPadMvau):
            total += 4 * m.class_thresholds.size + sum(m.out_spatial)
        elif m.thresholds is not None:
            total += 4 * m.thresholds.size
    return total


def model_bytes(plan: Plan, bnn_path: Path | None, twin: FloatTwin) -> dict[str, Any]:
    """Sizes and ratios: the .bnn file and the packed payload vs float32 parameters of the twin."""
    packed = packed_bytes(plan)
    out: dict[str, Any] = {"packed_weights_thresholds": packed, "float32_params": twin.float32_bytes,
                           "float32_weight_params": twin.weight_params, "float_bn_params": twin.bn_params,
                           "float_onnx_file": len(twin.onnx_bytes),
                           "ratio_packed": round(twin.float32_bytes / packed, 2)}
    if bnn_path is not None and bnn_path.is_file():
        size = bnn_path.stat().st_size
        out.update(bnn_file=size, ratio_file=round(twin.float32_bytes / size, 2))
    return out


def goals(result: dict[str, Any], speedup_goal: float, size_goal: float, speedup_why: str = "",
          scaling_per_thread: float = 0.85) -> dict[str, Any]:
    """The issue's goals against what was measured (None where it was not measured).

    Thread scaling: the multi-thread run's images/s over the single-thread run's, against
    scaling_per_thread x threads (issue #13: 2 threads >= 1.7x of 1)."""
    runs = result.get("runs", [])
    single = next((r for r in runs if r["threads"] == 1), None)
    multi = max((r for r in runs if r["threads"] > 1 and r.get("binary")), key=lambda r: r["threads"], default=None)
    size = result.get("bytes", {}).get("ratio_file", result.get("bytes", {}).get("ratio_packed"))
    speed = single["speedup_images_per_s"] if single else None
    out = {"speedup_goal": speedup_goal, "speedup_goal_why": speedup_why, "speedup_single_thread": speed,
           "speedup_single_thread_best_round": single.get("speedup_best") if single else None,
           "speedup_single_thread_p50_latency": single.get("speedup_p50") if single else None,
           "speedup_met": None if speed is None else speed >= speedup_goal,
           "size_goal": size_goal, "size_ratio": size, "size_met": None if size is None else size >= size_goal}
    if single and single.get("binary") and multi:
        scaling = multi["binary"]["images_per_s"] / single["binary"]["images_per_s"]
        want = round(scaling_per_thread * multi["threads"], 2)
        used = multi.get("threads_used", {}).get("batch", multi["threads"])
        out.update(threads=multi["threads"], thread_scaling=round(scaling, 2), thread_scaling_goal=want,
                   threads_used=used, thread_scaling_met=scaling >= want if used == multi["threads"] else None)
    return out


def write_json(path: Path, result: dict[str, Any]) -> None:
    write_json_atomic(path, result)


def format_table(result: dict[str, Any]) -> str:
    """A plain-text summary: per thread count latency and throughput, per-layer ratios, sizes, goals."""
    lines = [f"pi-bench {result['build']} on {result.get('where', result['target'])}: "
             f"{result['images']} images ({result['images_source']})"]
    m = result.get("machine", {})
    lines.append(f"  cpu: {m.get('cpu_model')} ({m.get('cores')} cores), onnxruntime {m.get('onnxruntime')}, "
                 f"kernels {result.get('kernels', '-')}, float twin from the {result.get('float_source')}")
    v = result.get("verify")
    if v:
        lines.append(f"  bit-exact with the {v['against']} on {v['images']} images: {v['bit_exact']}")
    if result.get("note"):
        lines.append(f"  note: {result['note']}")
    if result.get("runs"):
        lines.append(f"  {'threads':>7} {'side':<7} {'p50 ms':>9} {'p99 ms':>9} {'images/s':>10} {'speedup':>8} "
                     f"{'best round':>10}  used (batch/1 image)")
        for r in result["runs"]:
            for side in ("binary", "float"):
                s = r[side]
                if s is None:
                    lines.append(f"  {r['threads']:>7} {side:<7} (not available)")
                    continue
                sp = f"{r['speedup_images_per_s']:7.2f}x" if side == "binary" and r["speedup_images_per_s"] else ""
                best = f"{r['speedup_best']:9.2f}x" if side == "binary" and r.get("speedup_best") else ""
                u = r.get("threads_used") if side == "binary" else None
                used = f"  {u['batch']}/{u['one_image']}" if u else ""
                lines.append(f"  {r['threads']:>7} {side:<7} {s['p50_ms']:9.3f} {s['p99_ms']:9.3f} "
                             f"{s['images_per_s']:10.1f} {sp:>8} {best:>10}{used}")
    if result.get("layers"):
        lines.append(f"  {'layer':<16} {'in HxWxC':>12} {'out C':>6} {'binary ms':>10} {'(window)':>9} "
                     f"{'float ms':>9} {'speedup':>8} {'MACs/cyc':>9} {'ceiling':>8} {'%':>6}")
        for r in result["layers"]:
            hwc = "x".join(str(d) for d in r["in_hwc"])
            win = "fused" if r.get("fused") else (f"{r['binary_window_ms']:9.4f}" if "binary_window_ms" in r else "-")
            ceil = (f" {r['macs_per_cycle']:9.1f} {r['ceiling_macs_per_cycle']:8.1f} {r['ceiling_pct']:5.1f}%"
                    if "ceiling_pct" in r else "")
            lines.append(f"  {r['layer']:<16} {hwc:>12} {r['out_channels']:>6} {r['binary_ms']:10.4f} {win:>9} "
                         f"{r['float_ms']:9.4f} {r['speedup']:7.2f}x{ceil}")
        c = result.get("ceiling")
        if c:
            lines.append(f"  ceiling: {c['binary_macs_per_s'] / 1e9:.0f} G binary MACs/s at "
                         f"~{c['clock_hz_estimate'] / 1e9:.2f} GHz ({c['how']})")
    b = result.get("bytes", {})
    if b:
        file_part = f".bnn file {b['bnn_file']} B ({b['ratio_file']}x), " if "bnn_file" in b else ""
        lines.append(f"  size: float32 params {b['float32_params']} B vs {file_part}packed weights+thresholds "
                     f"{b['packed_weights_thresholds']} B ({b['ratio_packed']}x)")
    g = result.get("goals", {})
    if g:
        speed = "" if g["speedup_met"] is None else (f" ({g['speedup_single_thread']}x images/s, "
                                                      f"{g['speedup_single_thread_p50_latency']}x p50 latency)")
        size = "" if g["size_met"] is None else f" ({g['size_ratio']}x)"
        why = f" ({g['speedup_goal_why']})" if g.get("speedup_goal_why") else ""
        lines.append(f"  goals: speedup >= {g['speedup_goal']}x single thread{why}: {_verdict(g['speedup_met'])}"
                     f"{speed}; size >= {g['size_goal']}x: {_verdict(g['size_met'])}{size}")
        if "thread_scaling" in g:
            verdict = (f"not judged: the batch's work ran on {g['threads_used']} (the thread grain)"
                       if g["thread_scaling_met"] is None else _verdict(g["thread_scaling_met"]))
            lines.append(f"         {g['threads']} threads >= {g['thread_scaling_goal']}x the images/s of 1: "
                         f"{verdict} ({g['thread_scaling']}x)")
    return "\n".join(lines)


def _verdict(met: bool | None) -> str:
    return "not measured" if met is None else ("met" if met else "NOT met")


def write_png(path: Path, result: dict[str, Any]) -> None:
    """Bar chart: images/s binary vs float per thread count (log scale), and per-layer speedups."""
    plt = pyplot()
    runs, layers = result.get("runs", []), result.get("layers", [])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1, 2]})
    ax = axes[0]
    if runs:
        xs = range(len(runs))
        for side, dx, label in (("binary", -0.2, "binarized (C runtime)"), ("float", 0.2, "float (onnxruntime)")):
            vals = [r[side]["images_per_s"] if r.get(side) else 0 for r in runs]
            bars = ax.bar([i + dx for i in xs], vals, 0.4, label=label)
            ax.bar_label(bars, fmt="%.0f", fontsize=7)
        ax.set_xticks(list(xs), [f"{r['threads']} thread{'s' if r['threads'] > 1 else ''}" for r in runs])
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no timings\n(" + result.get("where", "") + ")", ha="center", va="center")
    ax.set_ylabel("images/s")
    ax.set_title("throughput")
    ax = axes[1]
    if layers:
        bars = ax.bar(range(len(layers)), [r["speedup"] or 0 for r in layers], color="tab:green")
        ax.bar_label(bars, fmt="%.1fx", fontsize=7)
        ax.set_xticks(range(len(layers)), [r["layer"].replace("BinaryMVAU_", "conv") for r in layers], fontsize=8)
        ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_ylabel("float time / binary time")
    ax.set_title("per binary convolution, 1 thread")
    fig.suptitle(f"pi-bench {Path(result['build']).name} on {result.get('where', result['target'])}", fontsize=10)
    fig.tight_layout()
    save_png(fig, path)
