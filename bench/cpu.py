"""Benchmark: the binarized C runtime against the float twin in onnxruntime on this CPU (pi-bench on host).

For TFC, CNV, BCNN-32 and B-VGG16 at full width (random weights, randomized BatchNorm statistics as in
bench/golden.py): export to QONNX, compile, then `pi_bench` (bnn_flow/backends/cpu/bench.py): bit-exact
check against the golden model, interleaved binary/float rounds single-threaded and with --threads,
p50/p99 latency and images/s, per binary convolution speedups, model bytes. Writes JSON (default
bench/results/cpu.json), one chart per net (bench/results/cpu_<net>.png) and prints the tables.

    .venv/bin/python bench/cpu.py [--nets bcnn32,cnv,tfc,bvgg16] [--images 64] [--threads 2] [--repeat 5]
    .venv/bin/python bench/cpu.py --build bcnn32=/work/artifacts/rand/bcnn32/build   # an existing build
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bnn_flow.backends.cpu.bench import format_summary, pi_bench
from bnn_flow.backends.cpu.bench_report import write_png
from bnn_flow.fileio import write_json_atomic
from bnn_flow.measure import machine_info
from bnn_flow.testing import REFERENCE_NETS as NETS
from bnn_flow.testing import compile_net, random_net

RESULTS = Path(__file__).resolve().parent / "results"
ORDER = ("bcnn32", "cnv", "tfc", "bvgg16")


def make_build(name: str, work: Path) -> Path:
    """Export and compile the full-width random-weight net `name` into work/<name>_build."""
    return compile_net(random_net(**NETS[name]), work, name).path


def _keep(result: dict) -> dict:
    """The per-net record of cpu.json: pi_bench's result; of its machine block (kept once) only the load."""
    m = result["machine"]
    return {**{k: v for k, v in result.items() if k != "machine"},
            "load_average": {"before": m.get("load_average_before"), "after": m.get("load_average")}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", default=",".join(ORDER), help=f"comma list of {', '.join(ORDER)}")
    ap.add_argument("--build", action="append", default=[], metavar="NAME=BUILD",
                    help="use an existing build for NAME instead of compiling one")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5, help="alternating binary/float rounds")
    ap.add_argument("--json", type=Path, default=RESULTS / "cpu.json")
    args = ap.parse_args(argv)
    given = dict(b.split("=", 1) for b in args.build)
    names = [s for s in args.nets.split(",") if s]
    unknown = [s for s in names if s not in NETS]
    if unknown:
        ap.error(f"unknown nets {unknown} (choose from {', '.join(ORDER)})")
    out: dict = {"machine": machine_info(), "nets": {}}
    with tempfile.TemporaryDirectory(prefix="bnn-bench-cpu-") as tmp:
        for name in names:
            build = Path(given[name]) if name in given else make_build(name, Path(tmp))
            result = pi_bench(build, threads=args.threads, images=args.images, rounds=args.repeat)
            result["build"] = given.get(name, f"{name} (random weights, compiled in a tmp dir)")
            write_png(args.json.parent / f"{args.json.stem}_{name}.png", result)
            out["nets"][name] = _keep(result)
            print(format_summary(result), flush=True)
            write_json_atomic(args.json, out)  # after each net: a long run keeps what it measured
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
