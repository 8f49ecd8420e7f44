"""pi-bench on a real Raspberry Pi (or any Linux box) over ssh: copy, run, time, verify, clean up.

ssh and scp run with host-key checking on, no password prompts and a 10 s connection timeout
(SSH_OPTIONS); an unreachable host, an unknown host key or a refused login is one BadInputError line
(exit 2), a missing ssh/scp a MissingToolError (exit 3). Nothing is installed on the Pi: a temporary
folder (`mktemp -d -t`: under the Pi's $TMPDIR or /tmp) receives the static runner for its architecture,
model.bnn, the input integers, the float twin's ONNX, the images and pi_float.py; it is removed afterwards.

On the Pi, per thread count and round, alternating: the runner (`bnn_run MODEL IN OUT --threads T
--repeat R`, its own timing line parsed) and pi_float.py (onnxruntime, if the Pi has it; otherwise the
result says "float baseline not available on the Pi"). The runner's output on the images is fetched
and checked bit-exact against the golden model on this machine. Per-layer times are not measured there.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bnn_flow.backends.cpu import float_twin as ft
from bnn_flow.backends.cpu.bench_report import model_bytes
from bnn_flow.backends.cpu.pack import pack_build
from bnn_flow.backends.cpu.toolchain import build_runner
from bnn_flow.build import Build, as_build
from bnn_flow.errors import BadInputError, MissingToolError
from bnn_flow.measure import check_bit_exact, speedup_row, thread_counts
from bnn_flow.plan import Plan

SSH_OPTIONS = ("-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10")
UNAME_TARGET = {"aarch64": "aarch64", "arm64": "aarch64", "armv7l": "armv7", "armv8l": "armv7",
                "armv6l": "armv6", "x86_64": "host"}
_SAFE_DIR = re.compile(r"^/[A-Za-z0-9._/-]*/bnn-bench\.[A-Za-z0-9]+$")
_HOST_RE = re.compile(r"^(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9._:\[\]-]+$")
PI_FLOAT = Path(__file__).resolve().parent / "pi_float.py"
# On the Pi each latency sample is the mean of PER_SAMPLE back-to-back single-image runs, for both sides:
# the runner reports one rate per process, and a process's first run is cold (page faults, thread start).
PER_SAMPLE = 10
LATENCY_SAMPLES = 8  # per round and side


def check_host(host: str) -> str:
    """USER@ADDR (or ADDR) with no spaces and no leading '-' (it must never read as an ssh option)."""
    if not host or host.startswith("-") or not _HOST_RE.match(host):
        raise BadInputError(f"--host {host!r}: expected USER@ADDR, e.g. pi@192.168.1.20")
    return host


def ssh_command(host: str, remote: str) -> list[str]:
    """The ssh argv that runs the shell command `remote` on host."""
    return ["ssh", *SSH_OPTIONS, check_host(host), remote]


def scp_command(host: str, files: list[Path], remote_dir: str) -> list[str]:
    """The scp argv that copies local files into remote_dir on host."""
    return ["scp", "-q", *SSH_OPTIONS, *[str(f) for f in files], f"{check_host(host)}:{remote_dir}/"]


def _tools() -> None:
    missing = [t for t in ("ssh", "scp") if shutil.which(t) is None]
    if missing:
        raise MissingToolError(f"{' and '.join(missing)} not found: install the OpenSSH client "
                               "(apt-get install openssh-client) to benchmark on a Pi")


def _fail(host: str, argv: list[str], proc: subprocess.CompletedProcess) -> BadInputError:
    err = ((proc.stderr or b"") or (proc.stdout or b"")).decode(errors="replace").strip().splitlines()
    last = err[-1] if err else f"exit code {proc.returncode}"
    if proc.returncode == 255 or "Host key" in last or "host key" in last:
        hint = ("check the address, that its host key is in ~/.ssh/known_hosts (connect once with ssh by hand) "
                "and that key-based login works (no password prompts)")
        return BadInputError(f"cannot reach {host} over ssh ({last}); {hint}")
    return BadInputError(f"on {host}: `{argv[-1] if argv[0] == 'ssh' else 'scp'}` failed ({last})")


def run_ssh(host: str, remote: str, timeout: float = 600) -> bytes:
    """Run `remote` on host; its stdout. BadInputError (one line) on any failure."""
    argv = ssh_command(host, remote)
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise BadInputError(f"on {host}: `{remote}` did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise _fail(host, argv, proc)
    return proc.stdout


def copy_to(host: str, files: list[Path], remote_dir: str) -> None:
    argv = scp_command(host, files, remote_dir)
    proc = subprocess.run(argv, capture_output=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise _fail(host, argv, proc)


def probe(host: str) -> dict[str, Any]:
    """Architecture, cores, CPU model and onnxruntime version ("none") of the host."""
    out = run_ssh(host, "uname -m; nproc; (grep -m1 -E '^(model name|Model)' /proc/cpuinfo || echo '-: unknown');"
                  " python3 -c 'import onnxruntime as o; print(o.__version__)' 2>/dev/null || echo none")
    lines = out.decode(errors="replace").strip().splitlines()
    if len(lines) < 4:
        raise BadInputError(f"{host}: unexpected answer to the probe ({lines}); is it a Linux machine?")
    return {"machine": lines[0].strip(), "cores": int(lines[1]), "cpu_model": lines[2].split(":", 1)[-1].strip(),
            "onnxruntime": lines[3].strip()}


def pick_target(target: str, machine: str, host: str) -> str:
    """The runner target for the host's `uname -m`; --target must agree when given."""
    found = UNAME_TARGET.get(machine)
    if found is None:
        raise BadInputError(f"{host} is a {machine} machine; pi-bench has runners for aarch64, armv7, armv6, x86_64")
    if target not in ("host", found):
        raise BadInputError(f"--target {target} but {host} is {machine} (use --target {found})")
    return found


_TIMING = re.compile(r"bnn_run: (\d+) images x (\d+) in [\d.]+ s: ([\d.]+) images/s")


def parse_runner_timing(text: str) -> dict[str, Any]:
    """The runner's timing lines -> {"latency_s": [...], "batch_s": float, "images": n}.

    Each line is `bnn_run: N images x R in T s: F images/s (...)`. The last line is the batch run; each
    earlier one a latency sample: one image run R times back to back in one process, 1/F seconds each.
    """
    lines = [m.groups() for m in _TIMING.finditer(text)]
    if not lines:
        raise BadInputError(f"the runner printed no timing line (its output: {text.strip()[-200:]!r})")
    n, r, rate = (int(lines[-1][0]), int(lines[-1][1]), float(lines[-1][2]))
    return {"latency_s": [1.0 / float(f) for _, _, f in lines[:-1]], "batch_s": n * r / rate, "images": n}


def _stage(build: Build, plan: Plan, x: np.ndarray, work: Path,
           target: str) -> tuple[list[Path], Path, ft.FloatTwin]:
    """Write what the Pi needs into work/; returns (files to copy, the local .bnn, the float twin)."""
    bnn = pack_build(build)
    q = plan.spec.apply(x).reshape(len(x), -1)
    (work / "in.bin").write_bytes(q.astype("<i2").tobytes())
    (work / "in1.bin").write_bytes(q[:1].astype("<i2").tobytes())
    np.save(work / "images.npy", x)
    twin = ft.float_twin(build, plan)
    (work / "float.onnx").write_bytes(twin.onnx_bytes)
    # fixed names on the Pi, whatever the local ones
    shutil.copy2(build_runner(target), work / "bnn_run")
    shutil.copyfile(bnn, work / "model.bnn")
    names = ("bnn_run", "model.bnn", "in.bin", "in1.bin", "images.npy", "float.onnx")
    files = [*(work / n for n in names), PI_FLOAT]
    return files, bnn, twin


def _float_round(host: str, rdir: str, threads: int, k_lat: int) -> dict[str, Any]:
    out = run_ssh(host, f"cd {rdir} && python3 pi_float.py float.onnx images.npy {threads} {k_lat} {PER_SAMPLE}")
    res = json.loads(out.decode().strip().splitlines()[-1])
    if "error" in res:
        raise BadInputError(f"on {host}: {res['error']}")
    return res


def _binary_round(host: str, rdir: str, threads: int, k_lat: int) -> dict[str, Any]:
    """k_lat latency samples (PER_SAMPLE back-to-back runs of one image each), then one batch run."""
    run = f"./bnn_run model.bnn %s --threads {threads} --repeat %d"
    cmd = (f"cd {rdir} && exec 2>&1 && for i in $(seq {k_lat}); do {run % ('in1.bin out1.bin', PER_SAMPLE)} "
           f"|| exit 1; done && {run % ('in.bin out.bin', 1)}")
    return parse_runner_timing(run_ssh(host, cmd).decode(errors="replace"))


def _stats(lat: list[float], rates: list[float], n: int) -> dict[str, float]:
    a = np.asarray(lat) * 1e3
    return {"p50_ms": round(float(np.percentile(a, 50)), 4), "p99_ms": round(float(np.percentile(a, 99)), 4),
            "images_per_s": round(float(np.median(rates)), 2), "images_per_s_best": round(float(np.max(rates)), 2),
            "latency_samples": len(lat), "batch": n}


def _measure(host: str, rdir: str, threads: list[int], rounds: int, n: int,
             float_ok: bool) -> list[dict]:
    """Per thread count: `rounds` alternating binary/float rounds on the Pi."""
    rows = []
    for t in threads:
        lat: dict[str, list[float]] = {"binary": [], "float": []}
        rate: dict[str, list[float]] = {"binary": [], "float": []}
        for r in range(rounds):
            for side in (("binary", "float") if r % 2 == 0 else ("float", "binary")):
                if side == "float" and not float_ok:
                    continue
                res = (_binary_round(host, rdir, t, LATENCY_SAMPLES) if side == "binary"
                       else _float_round(host, rdir, t, LATENCY_SAMPLES))
                lat[side] += res["latency_s"]
                rate[side].append(res["images"] / res["batch_s"])
        b = _stats(lat["binary"], rate["binary"], n)
        if float_ok:
            rows.append(speedup_row(t, {"binary": b, "float": _stats(lat["float"], rate["float"], n)}))
        else:
            rows.append({"threads": t, "binary": b, "float": None, "speedup_images_per_s": None})
    return rows


def remote_bench(build: Build | Path, plan: Plan, x: np.ndarray, *, host: str, target: str, threads: int | None,
                 rounds: int) -> dict[str, Any]:
    """pi-bench on `host`: the body of the pi_bench result (see bench.pi_bench). threads: None = every core."""
    build = as_build(build)
    check_host(host)
    _tools()
    info = probe(host)
    target = pick_target(target, info["machine"], host)
    float_ok = info["onnxruntime"] != "none"
    with tempfile.TemporaryDirectory(prefix="bnn-pi-") as tmp:
        files, bnn, twin = _stage(build, plan, x, Path(tmp), target)
        rdir = run_ssh(host, "mktemp -d -t bnn-bench.XXXXXX").decode().strip()
        if not _SAFE_DIR.match(rdir):  # it goes into shell commands below
            raise BadInputError(f"{host}: mktemp gave {rdir!r}; cannot stage the benchmark")
        try:
            copy_to(host, files, rdir)
            run_ssh(host, f"cd {rdir} && chmod +x bnn_run && ./bnn_run model.bnn in.bin out.bin")
            acc = np.frombuffer(run_ssh(host, f"cat {rdir}/out.bin"), dtype="<i4").astype(np.int64)
            exact = check_bit_exact(build, acc.reshape(len(x), -1), x, host)
            runs = _measure(host, rdir, thread_counts(min(threads or info["cores"], info["cores"])), rounds,
                            len(x), float_ok)
        finally:
            with contextlib.suppress(BadInputError):  # keep the first error when the link is gone
                run_ssh(host, f"rm -rf {rdir}")
    body: dict[str, Any] = {"where": f"{host} ({info['machine']})", "emulated": False, "target": target,
                            "remote_machine": info, "float_source": twin.source, "verify": exact, "runs": runs,
                            "layers": [], "bytes": model_bytes(plan, bnn, twin)}
    body["latency_note"] = (f"on {host} each latency sample is the mean of {PER_SAMPLE} back-to-back single-image "
                            "runs (the runner timing inside its process, pi_float.py at session.run)")
    if not float_ok:
        body["note"] = "float baseline not available on the Pi (onnxruntime is not installed there)"
    return body
