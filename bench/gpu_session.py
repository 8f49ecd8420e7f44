"""One GPU session's work for issue #11, as one command on the lent machine (its 15 minutes are scarce).

Phase A (alone on the GPU, --timing): 2 epochs each of cnv-cifar10, bcnn-cifar10 and bvgg16-cifar10 on the whole
CIFAR-10 training set, GPU utilisation sampled by nvidia-smi every 200 ms; the second epoch's training seconds
are the per-epoch time (the first holds cuDNN's autotuning). Phase B (--train): the recipes side by side with
`bnn-flow train-many`, each with the epochs that fit the budget (from --epochs-file or the defaults below) and
--time-budget as a guard; then every run is packed with `bnn-flow zoo-pack` (its files come back at 16 MiB each:
a zoo file is KBs to ~2 MB) and its summary, metrics and log are copied to OUT.

    BNN_FLOW_DATA=shared/data python bench/gpu_session.py --out $OUT --timing --train --budget 420
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

TIMED = ["cnv-cifar10", "bcnn-cifar10", "bvgg16-cifar10"]
# Epochs per recipe for one ~7-minute slice with ten runs side by side (a first guess: adjust from phase A's
# seconds per epoch; the cosine schedule spans exactly these epochs, so a run is complete, only short).
EPOCHS = {"cnv-cifar10": 60, "bcnn-cifar10": 25, "bvgg16-cifar10": 25, "bcnn-mnist": 15,
          "bcnn-fashion-mnist": 15, "bcnn-gtsrb": 40, "bcnn-cnpb": 10, "tfc-mnist": 60, "sfc-mnist": 40,
          "lfc-mnist": 30}

# recipes whose training data is not in BNN_FLOW_DATA (shared/data-gtsrb-train/README.md)
DATA_DIRS = {"bcnn-gtsrb": "shared/data-gtsrb-train"}


def bnn_flow(*args: str, log: Path | None = None) -> int:
    cmd = [sys.executable, "-m", "bnn_flow", *args]
    print("+", " ".join(cmd), flush=True)
    if log is None:
        return subprocess.call(cmd)
    with open(log, "wb") as f:
        return subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)


def gpu_sampler(path: Path) -> subprocess.Popen | None:
    if shutil.which("nvidia-smi") is None:
        return None
    f = open(path, "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits",
                             "-lms", "200"], stdout=f, stderr=subprocess.DEVNULL)


def mean_util(path: Path) -> float | None:
    vals = []
    for line in path.read_text().splitlines():
        try:
            vals.append(float(line.split(",")[0]))
        except ValueError:
            continue
    return sum(vals) / len(vals) if vals else None


def timing(out: Path, work: Path) -> dict:
    results = {}
    for name in TIMED:
        run = work / "timing" / name
        util_log = out / f"timing-{name}-gpu.csv"
        sampler = gpu_sampler(util_log)
        t0 = time.time()
        rc = bnn_flow("train", f"models/{name}.yaml", "--epochs", "2", "--device", "cuda", "--out", str(run),
                      log=out / f"timing-{name}.log")
        if sampler is not None:
            sampler.terminate()
            sampler.wait()
        rows = list(csv.DictReader((run / "metrics.csv").open())) if (run / "metrics.csv").is_file() else []
        results[name] = {"rc": rc, "wall_s": time.time() - t0, "epochs": rows,
                         "train_s_per_epoch": float(rows[-1]["train_seconds"]) if rows else None,
                         "gpu_util_mean": mean_util(util_log) if util_log.is_file() else None}
        print(name, json.dumps({k: v for k, v in results[name].items() if k != "epochs"}), flush=True)
    (out / "timing.json").write_text(json.dumps(results, indent=2))
    return results


def train(out: Path, work: Path, recipes: list[str], epochs: dict[str, int], budget: float, device: str) -> None:
    runs = work / "runs"
    groups: dict[tuple[int, str | None], list[str]] = {}
    for r in recipes:  # train-many takes one --epochs and --data-dir: group the recipes by them
        if Path(r).name not in epochs:
            raise SystemExit(f"no epoch count for {r}: add it to --epochs-file")
        groups.setdefault((epochs[Path(r).name], DATA_DIRS.get(r)), []).append(r)
    procs = []
    for (n, data_dir), names in groups.items():
        cmd = [sys.executable, "-m", "bnn_flow", "train-many", *[f"models/{r}.yaml" for r in names], "--device",
               device, "--out-root", str(runs), "--epochs", str(n), "--time-budget", str(budget),
               "--threads", str(max(1, (os.cpu_count() or 2) // len(recipes))),
               *(["--data-dir", data_dir] if data_dir else [])]
        print("+", " ".join(cmd), flush=True)
        procs.append(subprocess.Popen(cmd))
    for p in procs:
        p.wait()
    packs = []
    for r in (Path(r).name for r in recipes):  # a run folder is named after its recipe (= the file's stem)
        dst = out / "runs" / r
        dst.mkdir(parents=True, exist_ok=True)
        for f in ("summary.json", "metrics.csv", "recipe.yaml", "curves.png"):
            if (runs / r / f).is_file():
                shutil.copy(runs / r / f, dst / f)
        split_checkpoint(runs / r / "last.pt", dst)
        if (runs / f"{r}.log").is_file():
            shutil.copy(runs / f"{r}.log", dst / "train.log")
        if (runs / r / "summary.json").is_file():
            cmd = [sys.executable, "-m", "bnn_flow", "zoo-pack", str(runs / r), "--out", str(out / "zoo" / f"{r}.bnnz"),
                   "--device", device, *(["--data-dir", DATA_DIRS[r]] if r in DATA_DIRS else [])]
            with open(dst / "zoo-pack.log", "wb") as f:
                packs.append(subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT,
                                              env={**os.environ, "OMP_NUM_THREADS": "2"}))
    for p in packs:
        p.wait()


def split_checkpoint(ckpt: Path, dst: Path, part: int = 15 << 20, most: int = 60 << 20) -> None:
    """last.pt (with Adam's state, for --resume in a later session) as 15 MiB parts, if it is small enough to be
    carried back to a device (64 MiB in all): CNV's 18.7 MB yes, BCNN-32's and B-VGG16's ~170 MB no.
    Reassemble with `cat last.pt.part-* > last.pt`."""
    if not ckpt.is_file() or ckpt.stat().st_size > most:
        return
    data = ckpt.read_bytes()
    for i in range(0, len(data), part):
        (dst / f"last.pt.part-{i // part:02d}").write_bytes(data[i:i + part])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--work", default="/tmp/bnn-gpu-session")
    p.add_argument("--timing", action="store_true")
    p.add_argument("--train", action="store_true")
    p.add_argument("--recipes", default=",".join(EPOCHS), help="names under models/ (ablation/cnv-cifar10-recu, ...)")
    p.add_argument("--epochs-file", help="JSON {recipe: epochs} overriding the defaults")
    p.add_argument("--budget", type=float, default=420.0, help="seconds per run (--time-budget guard)")
    p.add_argument("--device", default="cuda", help="cpu: a smoke test of --train with tiny epochs")
    a = p.parse_args()
    out, work = Path(a.out), Path(a.work)
    out.mkdir(parents=True, exist_ok=True)
    if shutil.which("nvidia-smi"):
        subprocess.call(["nvidia-smi"])
    subprocess.call([sys.executable, "-c", "import torch, brevitas; print(torch.__version__, brevitas.__version__)"])
    if a.timing:
        timing(out, work)
    if a.train:
        epochs = {**EPOCHS, **(json.loads(Path(a.epochs_file).read_text()) if a.epochs_file else {})}
        train(out, work, a.recipes.split(","), epochs, a.budget, a.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
