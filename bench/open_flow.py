"""Benchmark: the open FPGA flow end to end, stage by stage, on real nets (issue #10's measured table).

For each net: `bnn-flow compile MODEL --board BOARD --fit` (or --target-fps), `bnn-flow compare BUILD --targets
rtl` on N test images (bit-exact against the golden model; the rtl run measures the cycles per frame), then
`bnn-flow bitstream BUILD --flow open` (synthesis, post-synthesis netlist check, place and route, pack). Every
command runs as the user would run it (a subprocess of this Python); each one's wall time is recorded. The numbers of
the result (LUT4/FF/DP16KD/MULT18, Fmax, cycles estimated and measured, FPS of the core and over the UART) come from
the build's own reports. Writes JSON (default bench/results/open_flow.json) and prints a table.

Nets: a QONNX file (a trained model: `bnn-flow export RUN`), or `random:tfc` / `random:cnv` (the FINN reference
nets with random weights and randomized BatchNorm, negative and zero gammas included: bnn_flow.testing).

    .venv/bin/python bench/open_flow.py --net tfc=MODEL.onnx --net random:cnv [--board ulx3s-85f] [--images 1000]
        [--fps 20000] [--margin 0.05] [--work DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bnn_flow.fileio import write_json_atomic
from bnn_flow.measure import machine_info

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "open_flow.json"


def cli(args: list[str], log: Path) -> float:
    """`bnn-flow args` with its output appended to log; its wall time. Exit on failure (the log says why)."""
    t0 = time.perf_counter()
    with log.open("a") as f:
        f.write(f"$ bnn-flow {' '.join(args)}\n")
        f.flush()
        proc = subprocess.run([sys.executable, "-m", "bnn_flow", *args], stdout=f, stderr=subprocess.STDOUT,
                              check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"bnn-flow {' '.join(args)} failed (exit {proc.returncode}); see {log}")
    return seconds


def random_model(kind: str, out: Path) -> Path:
    from bnn_flow.export import export_qonnx_file
    from bnn_flow.testing import REFERENCE_NETS, random_net

    path = out / f"random-{kind}.onnx"
    export_qonnx_file(random_net(**REFERENCE_NETS[kind]), path)
    return path


RANDOM_DATASETS = {"tfc": "mnist", "cnv": "cifar10"}  # the test images a random net is compared on


def bench_net(name: str, model: Path, args: argparse.Namespace, work: Path, dataset: str | None = None) -> dict:
    build, log = work / f"{name}-build", work / f"{name}.log"
    fold = ["--fit"] if args.fps is None else ["--target-fps", str(args.fps)]
    fold += [] if args.margin is None else ["--margin", str(args.margin)]
    times = {"compile": cli(["compile", str(model), "--out", str(build), "--board", args.board, *fold], log)}
    times["compare_rtl"] = cli(["compare", str(build), "--images", str(args.images), "--targets", "rtl",
                                "--emulated-images", str(args.images), *(["--dataset", dataset] if dataset else [])],
                               log)
    times["bitstream"] = cli(["bitstream", str(build), "--flow", "open", "--board", args.board], log)
    folding = json.loads((build / "report.json").read_text())
    cycles = json.loads((build / "rtl" / "cycles.json").read_text())
    flow = json.loads((build / "bitstream" / "report.json").read_text())
    return {"net": name, "model": str(model), "board": args.board, "images": args.images, "wall_s": times,
            "folding": {"mode": folding["mode"], "estimated_fps": folding["fps"], "totals": folding["totals"],
                        "folding": folding["folding"]},
            "cycles": {"estimated": cycles["ii"]["estimated"], "measured": cycles["ii"]["measured"],
                       "error": cycles["ii"]["error"], "netlist": flow["netlist_check"]["cycles_per_frame"]},
            "bitstream": {k: flow[k] for k in ("clock_mhz", "resources", "fmax", "fps", "stages", "synthesis",
                                               "netlist_check", "tools")}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--net", action="append", required=True, help="NAME=MODEL.onnx or random:tfc / random:cnv")
    ap.add_argument("--board", default="ulx3s-85f")
    ap.add_argument("--images", type=int, default=1000, help="images of the rtl run (bit-exact vs golden)")
    ap.add_argument("--fps", type=float, help="fold for this frame rate instead of --fit")
    ap.add_argument("--margin", type=float, help="fraction of the budget the folding keeps free (compile's default)")
    ap.add_argument("--work", type=Path, help="keep the builds here (default: a temporary folder)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bnn-open-flow-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for spec in args.net:
            dataset = None
            if spec.startswith("random:"):
                kind = spec.split(":", 1)[1]
                name, model, dataset = f"random-{kind}", random_model(kind, work), RANDOM_DATASETS[kind]
            else:
                name, _, path = spec.partition("=")
                model = Path(path)
            rows.append(bench_net(name, model, args, work, dataset))
            print(f"done {name}: {json.dumps(rows[-1]['wall_s'])}", file=sys.stderr, flush=True)
            # after every net: a long batch that stops later keeps what it measured
            args.json.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(args.json, {"machine": machine_info(), "rows": rows})
    for r in rows:
        b, c = r["bitstream"], r["cycles"]
        res = {row["resource"]: row["used"] for row in b["resources"]} if isinstance(b["resources"], list) else \
            b["resources"]
        print(f"{r['net']}: {res}; cycles est {c['estimated']:,} measured {c['measured']} netlist {c['netlist']}; "
              f"fmax {b['fmax']}; fps {b['fps']}; wall {r['wall_s']}; stages {b['stages']}")
    print(f"-> {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
