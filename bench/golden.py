"""Benchmark: compile time and golden-model throughput of the reference nets, against torch.

For TFC, CNV, BCNN-32 and B-VGG16 at full width (random weights, randomized BatchNorm statistics):
export to QONNX, compile (timed), run the golden model on N images (timed, images/s), and run the
float twin (build_net(..., float_twin=True)) and the Brevitas model in torch (2 threads, eval, no_grad)
on the same images as the base of the ratios. Writes JSON (default bench/results/golden.json) and
prints a table. Timings are the best of --repeat runs (the machine may be shared).

    .venv/bin/python bench/golden.py [--images 512] [--nets tfc,cnv,bcnn32,bvgg16] [--json PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bnn_flow.compiler import CompileConfig, compile_model
from bnn_flow.export import export_qonnx_file
from bnn_flow.fileio import write_json_atomic
from bnn_flow.golden import GoldenModel
from bnn_flow.measure import best_time, machine_info
from bnn_flow.nets import build_net
from bnn_flow.testing import REFERENCE_NETS as NETS
from bnn_flow.testing import random_net, randomize_bn

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "golden.json"


def torch_rate(net: torch.nn.Module, x: np.ndarray, batch: int, repeat: int) -> tuple[float, np.ndarray]:
    """(images/s, labels) of a torch model on x, in batches, eval + no_grad."""
    net.eval()
    xt = torch.from_numpy(x)
    labels: list[np.ndarray] = []

    def run() -> None:
        labels.clear()
        with torch.no_grad():
            for i in range(0, len(x), batch):
                labels.append(net(xt[i : i + batch]).argmax(1).numpy())

    with torch.no_grad():
        net(xt[: min(8, len(x))])  # warm-up: lazy initialization, allocator
    return len(x) / best_time(run, repeat), np.concatenate(labels)


def bench_net(name: str, kw: dict, n: int, repeat: int, batch: int, work: Path) -> dict:
    """Export, compile and time one net; returns its JSON record."""
    net = random_net(**kw)
    onnx_path, build = work / f"{name}.onnx", work / f"{name}_build"
    export_qonnx_file(net, onnx_path)
    t0 = time.perf_counter()
    compile_model(onnx_path, build, CompileConfig())
    compile_s = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    x = (rng.integers(0, 256, size=(n, kw["in_channels"], kw["image_size"], kw["image_size"])) / 255.0)
    x = x.astype(np.float32)
    golden = GoldenModel(build, batch=batch)
    golden.run(x[:8])  # warm-up: thread pool, first-touch allocations
    labels: dict[str, np.ndarray] = {}
    golden_s = best_time(lambda: labels.__setitem__("g", golden.run(x)[1]), repeat)
    twin = randomize_bn(build_net(num_classes=10, float_twin=True, **kw))
    twin_rate, _ = torch_rate(twin, x, batch, repeat)
    brevitas_rate, brevitas_labels = torch_rate(net, x, batch, repeat)
    golden_rate = n / golden_s
    return {
        "net": name, **kw, "images": n, "compile_s": round(compile_s, 3),
        "golden_images_per_s": round(golden_rate, 1),
        "torch_float_images_per_s": round(twin_rate, 1), "brevitas_images_per_s": round(brevitas_rate, 1),
        "golden_vs_torch_float": round(golden_rate / twin_rate, 3),
        "golden_vs_brevitas": round(golden_rate / brevitas_rate, 3),
        # labels of the golden model vs the Brevitas model (differences only at threshold ties)
        "label_agreement": round(float(np.mean(labels["g"] == brevitas_labels)), 4),
    }


def machine() -> dict:
    return {**machine_info(), "python": sys.version.split()[0], "torch": torch.__version__,
            "torch_threads": torch.get_num_threads()}


def print_table(rows: list[dict]) -> None:
    head = f"{'net':8s} {'compile s':>9s} {'golden/s':>9s} {'float/s':>9s} {'brevitas/s':>10s} {'g/float':>8s} " \
           f"{'g/brev':>7s} {'agree':>6s}"
    print(head)
    for r in rows:
        print(f"{r['net']:8s} {r['compile_s']:9.2f} {r['golden_images_per_s']:9.1f} "
              f"{r['torch_float_images_per_s']:9.1f} {r['brevitas_images_per_s']:10.1f} "
              f"{r['golden_vs_torch_float']:8.2f} {r['golden_vs_brevitas']:7.2f} {r['label_agreement']:6.3f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--nets", default=",".join(NETS), help=f"comma list of {', '.join(NETS)}")
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per measurement (best is kept)")
    ap.add_argument("--batch", type=int, default=256, help="batch size of the golden model and of torch")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = ap.parse_args(argv)
    names = [s for s in args.nets.split(",") if s]
    unknown = [s for s in names if s not in NETS]
    if unknown:
        ap.error(f"unknown nets {unknown} (choose from {', '.join(NETS)})")
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bnn-bench-") as tmp:
        for name in names:
            rows.append(bench_net(name, NETS[name], args.images, args.repeat, args.batch, Path(tmp)))
            print(f"done {name}: {rows[-1]}", file=sys.stderr, flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.json, {"machine": machine(), "nets": rows})
    print_table(rows)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
