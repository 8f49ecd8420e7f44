"""bnn-flow train-many: several recipes trained at once, one process each, sharing the device.

Small-batch binarized nets leave a GPU mostly idle from a single process (the H100 ran CNV 14% busy), and GPU
time comes in short slices, so the way to use one is several runs side by side: each `bnn-flow train` in its
own process (own CUDA context; the GPU time-slices between them), its output in OUT_ROOT/<recipe name>/ and its
log in OUT_ROOT/<recipe name>.log. The host's cores are split between the processes (OMP_NUM_THREADS), so that
their CPU work (the optimiser's host side, evaluation bookkeeping) does not fight over the same cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bnn_flow.config import load_recipe
from bnn_flow.errors import BadInputError, CheckFailedError


@dataclass
class Job:
    name: str
    recipe: Path
    out: Path
    log: Path
    proc: subprocess.Popen | None = None
    started: float = 0.0
    seconds: float = 0.0
    rc: int | None = None


def plan_jobs(recipes: list[Path], out_root: Path) -> list[Job]:
    """One job per recipe, each checked before anything starts; two recipes of one name would share a folder."""
    if not recipes:
        raise BadInputError("train-many: give at least one recipe")
    jobs: list[Job] = []
    for path in recipes:
        name = load_recipe(path).name
        if any(j.name == name for j in jobs):
            raise BadInputError(f"train-many: two recipes are named {name!r} ({path} and "
                                f"{next(j.recipe for j in jobs if j.name == name)}): their runs would share "
                                f"{out_root / name}; rename one")
        jobs.append(Job(name, path, out_root / name, out_root / f"{name}.log"))
    return jobs


def train_many(recipes: list[Path], out_root: Path, *, device: str = "auto", threads: int | None = None,
               train_args: list[str] | None = None, quiet: bool = False) -> list[Job]:
    """Start every recipe's training at once, wait for all; CheckFailedError naming the runs that failed."""
    jobs = plan_jobs(recipes, out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    per_job = threads or max(1, (os.cpu_count() or 1) // len(jobs))
    env = {**os.environ, "OMP_NUM_THREADS": str(per_job), "MKL_NUM_THREADS": str(per_job)}
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    try:
        for j in jobs:
            cmd = [sys.executable, "-m", "bnn_flow", "train", str(j.recipe), "--out", str(j.out), "--device", device,
                   *(train_args or [])]
            with open(j.log, "wb") as log:
                j.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            j.started = time.time()
            say(f"started {j.name} (pid {j.proc.pid}, {per_job} threads) -> {j.out}, log {j.log}")
        while any(j.rc is None for j in jobs):
            for j in jobs:
                if j.rc is None and j.proc is not None and j.proc.poll() is not None:
                    j.rc, j.seconds = j.proc.returncode, time.time() - j.started
                    say(f"finished {j.name}: exit {j.rc} after {j.seconds:.0f} s{_result(j)}")
            time.sleep(0.2)
    finally:  # interrupted: stop the runs this command started (their last checkpoint stays; --resume goes on)
        for j in jobs:
            if j.proc is not None and j.proc.poll() is None:
                j.proc.terminate()
                j.proc.wait()
    failed = [j for j in jobs if j.rc != 0]
    if failed:
        raise CheckFailedError(f"train-many: {len(failed)} of {len(jobs)} runs failed: "
                               + ", ".join(f"{j.name} (exit {j.rc}, see {j.log})" for j in failed))
    return jobs


def _result(j: Job) -> str:
    try:
        s = json.loads((j.out / "summary.json").read_text())
        return f": test accuracy {100 * s['test_acc']:.2f}% after {s['epochs']} epochs"
    except (OSError, ValueError, KeyError, TypeError):
        return ""
