"""Estimate, not a measurement: binary vs float MACs per cycle on a Cortex-A53 (Raspberry Pi 3 / Zero 2 W) from
the instruction mix of the inner loops, with llvm-mca's Cortex-A53 scheduling model.

* Binary: the NEON inner loop that the runtime's aarch64 build really runs (kernels_neon.c compiled by the
  project's cross toolchain, zig cc -mcpu=cortex_a53 -O2): the loop with the most `cnt v.16b`, taken from the
  assembly as it is. Each `cnt v.16b` counts one 128-bit XOR of activation and weight bits: 128 binary MACs.
* Float: the inner loop of a 4 x 16 sgemm micro-kernel as float GEMM libraries write it for the A53 (per k
  step: 4 q-register loads of B, 1 of A, 16 `fmla v.4s, vB.4s, vA.s[i]`: 64 MACs), unrolled twice: the best a
  float network can do per cycle on that core, so the ratio is conservative for the binary side.

Both go through `llvm-mca -mtriple=aarch64 -mcpu=cortex-a53` (L1 hits): the simulated steady-state cycles per
iteration of the in-order model, and the block's resource bound (every latency hidden). The ratio of MACs per
cycle is the expected speedup of a compute-bound binary layer over its float twin on a Pi; the conservative one
is the binary loop as simulated against the float loop at its bound.
Whole networks are lower (memory, the integer first layer, thresholds); time them with pi-bench --host.

    .venv/bin/python bench/a53_estimate.py [--json FILE] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from bnn_flow.backends.cpu import toolchain
from bnn_flow.backends.cpu.sources import INCLUDE_DIR, SRC_DIR

LABEL = re.compile(r"^(\.LBB\d+_\d+):")
FLOAT_STEP = ["ldp q0, q1, [x1], #32", "ldp q2, q3, [x1], #32", "ldr q4, [x0], #16",
              *[f"fmla v{8 + 4 * r + b}.4s, v{b}.4s, v4.s[{r}]" for r in range(4) for b in range(4)]]
FLOAT_LOOP = "\n".join([*FLOAT_STEP, *FLOAT_STEP, "subs x2, x2, #2", "b.ne 0b"])
FLOAT_MACS = 2 * 16 * 4


def neon_asm(out: Path) -> Path:
    """kernels_neon.c compiled for the aarch64 Pi target (cortex_a53), as assembly."""
    target = toolchain.target_of("aarch64")
    cmd = [*toolchain.zig_command(), "cc", "-target", target.triple, f"-mcpu={target.mcpu}", "-O2", "-g0",
           "-std=c11", "-I", str(INCLUDE_DIR), "-I", str(SRC_DIR), "-S", str(SRC_DIR / "kernels_neon.c"), "-o",
           str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


def hottest_loop(asm: str) -> tuple[str, int]:
    """(the instructions of the loop body with the most `cnt v.16b`, that count): label to its back branch."""
    best, best_n, lines = "", 0, asm.splitlines()
    for i, line in enumerate(lines):
        m = LABEL.match(line)
        if not m:
            continue
        body = []
        for nxt in lines[i + 1:]:
            s = nxt.split("//")[0].strip()
            if not s or s.startswith("."):
                if LABEL.match(nxt):
                    break
                continue
            body.append(s)
            if re.match(rf"b(\.\w+)?\s+{re.escape(m.group(1))}$", s) or re.search(rf",\s*{re.escape(m.group(1))}$", s):
                n = sum(1 for b in body if re.match(r"cnt\s+v\d+\.16b", b))
                if n > best_n:
                    best, best_n = "\n".join(body[:-1] + [re.sub(re.escape(m.group(1)), "0b", body[-1])]), n
                break
    return best, best_n


def mca_cycles(loop: str, work: Path, name: str) -> tuple[float, float]:
    """(simulated steady-state cycles per loop iteration under llvm-mca's in-order Cortex-A53 model, the block's
    resource bound: its reciprocal throughput, i.e. the cycles with every latency hidden)."""
    src = work / f"{name}.s"
    src.write_text("0:\n" + loop + "\n")
    r = subprocess.run(["llvm-mca", "-mtriple=aarch64", "-mcpu=cortex-a53", "-iterations=400", str(src)],
                       check=True, capture_output=True, text=True)
    (work / f"{name}.mca.txt").write_text(r.stdout)
    it = int(re.search(r"Iterations:\s+(\d+)", r.stdout).group(1))
    cycles = int(re.search(r"Total Cycles:\s+(\d+)", r.stdout).group(1))
    return cycles / it, float(re.search(r"Block RThroughput:\s+([\d.]+)", r.stdout).group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", type=Path, help="keep the assembly and llvm-mca reports here")
    args = ap.parse_args(argv)
    if shutil.which("llvm-mca") is None:
        raise SystemExit("llvm-mca not found (apt-get install llvm)")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        loop, cnts = hottest_loop(neon_asm(work / "kernels_neon.s").read_text())
        (b_cyc, b_bound), (f_cyc, f_bound) = mca_cycles(loop, work, "binary"), mca_cycles(FLOAT_LOOP, work, "float")
    b_macs = 128 * cnts
    res = {"estimate": "llvm-mca -mcpu=cortex-a53 (steady state, L1 hits); not a measurement",
           "binary": {"loop": "kernels_neon.c aarch64 inner loop (zig cc -mcpu=cortex_a53 -O2)",
                      "instructions": len(loop.splitlines()), "cnt_16b": cnts, "macs_per_iteration": b_macs,
                      "cycles_simulated": round(b_cyc, 2), "cycles_bound": b_bound,
                      "macs_per_cycle_simulated": round(b_macs / b_cyc, 1),
                      "macs_per_cycle_bound": round(b_macs / b_bound, 1)},
           "float": {"loop": "4x16 sgemm micro-kernel, fmla by element, unrolled x2",
                     "instructions": len(FLOAT_LOOP.splitlines()), "macs_per_iteration": FLOAT_MACS,
                     "cycles_simulated": round(f_cyc, 2), "cycles_bound": f_bound,
                     "macs_per_cycle_simulated": round(FLOAT_MACS / f_cyc, 2),
                     "macs_per_cycle_bound": round(FLOAT_MACS / f_bound, 2)}}
    b, f = res["binary"], res["float"]
    res["ratio"] = {  # binary MACs per cycle over float MACs per cycle
        "both_at_resource_bound": round(b["macs_per_cycle_bound"] / f["macs_per_cycle_bound"], 1),
        "both_simulated": round(b["macs_per_cycle_simulated"] / f["macs_per_cycle_simulated"], 1),
        "binary_simulated_vs_float_bound": round(b["macs_per_cycle_simulated"] / f["macs_per_cycle_bound"], 1)}
    print(json.dumps(res, indent=1))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
