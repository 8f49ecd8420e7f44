"""The Xilinx arbitrary-precision headers (ap_int.h, ap_fixed.h, ...) for C-simulation with plain g++.

They are open source (Apache-2.0) and ship inside the hls4ml wheel at hls4ml/templates/vivado/ap_types/.
We never commit them: `make setup` (or the first C-simulation) downloads the pinned wheel with pip,
checks its SHA-256 and extracts that folder. Lookup order of `ap_types_dir()`:

1. $BNN_FLOW_AP_TYPES (a folder holding ap_int.h), for machines that keep their own copy;
2. <venv>/share/bnn-flow/ap_types/hls4ml-<version>/ (where `make setup` puts them; survives the
   isolated HOME of the tests);
3. $XDG_CACHE_HOME or ~/.cache / bnn-flow/ap_types/hls4ml-<version>/.

`ensure_ap_types()` fetches into the first writable of 2 and 3 when none is found. A local wheel can be
given with $BNN_FLOW_HLS4ML_WHEEL (offline machines). Failure is a MissingToolError (exit 3).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from bnn_flow.errors import MissingToolError

HLS4ML_VERSION = "1.3.0"
WHEEL_NAME = f"hls4ml-{HLS4ML_VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "01bf1de2cd9bca56699b9fe3385cb1735026b022f9580fe1d73faf192dfb90f2"
MEMBER_PREFIX = "hls4ml/templates/vivado/ap_types/"
# The one header the C-simulation needs first; its presence marks a complete extraction.
MARKER = "ap_int.h"


def _venv_dir() -> Path:
    return Path(sys.prefix) / "share" / "bnn-flow" / "ap_types" / f"hls4ml-{HLS4ML_VERSION}"


def _user_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "bnn-flow" / "ap_types" / f"hls4ml-{HLS4ML_VERSION}"


def candidate_dirs() -> list[Path]:
    """Where ap_types may live, in lookup order."""
    env = os.environ.get("BNN_FLOW_AP_TYPES")
    return ([Path(env)] if env else []) + [_venv_dir(), _user_dir()]


def ap_types_dir() -> Path | None:
    """The first folder holding the headers, or None."""
    return next((d for d in candidate_dirs() if (d / MARKER).is_file()), None)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download_wheel(dest: Path) -> Path:
    """The pinned wheel: $BNN_FLOW_HLS4ML_WHEEL, else `pip download` (uses pip's own cache)."""
    local = os.environ.get("BNN_FLOW_HLS4ML_WHEEL")
    if local:
        if not Path(local).is_file():
            raise MissingToolError(f"BNN_FLOW_HLS4ML_WHEEL={local} does not exist: point it at {WHEEL_NAME}")
        return Path(local)
    cmd = [sys.executable, "-m", "pip", "download", f"hls4ml=={HLS4ML_VERSION}", "--no-deps", "--only-binary",
           ":all:", "--disable-pip-version-check", "-q", "-d", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        proc = None
        why = str(e)
    if proc is None or proc.returncode != 0 or not (dest / WHEEL_NAME).is_file():
        why = why if proc is None else (proc.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise MissingToolError(f"cannot fetch the Xilinx ap_types headers (pip download hls4ml=={HLS4ML_VERSION}: "
                               f"{why}); run `make setup` with network access, or set "
                               f"BNN_FLOW_HLS4ML_WHEEL=/path/to/{WHEEL_NAME} or BNN_FLOW_AP_TYPES=/dir/with/ap_int.h")
    return dest / WHEEL_NAME


def _extract(wheel: Path, target: Path) -> None:
    """Extract ap_types/ from the checked wheel into `target` atomically (temp folder, then rename)."""
    digest = _sha256(wheel)
    if digest != WHEEL_SHA256:
        raise MissingToolError(f"{wheel}: SHA-256 {digest} is not the pinned hls4ml {HLS4ML_VERSION} wheel "
                               f"({WHEEL_SHA256}); delete it and fetch again")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".ap_types.", dir=target.parent))
    try:
        with zipfile.ZipFile(wheel) as z:
            for info in z.infolist():
                if info.filename.startswith(MEMBER_PREFIX) and not info.is_dir():
                    rel = info.filename[len(MEMBER_PREFIX):]
                    out = tmp / rel
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(z.read(info))
        if not (tmp / MARKER).is_file():
            raise MissingToolError(f"{wheel} holds no {MEMBER_PREFIX}{MARKER}: not the expected hls4ml wheel")
        if (target / MARKER).is_file():  # another process won the race: keep its copy
            return
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _writable(d: Path) -> bool:
    probe = d
    while not probe.exists():
        probe = probe.parent
    return os.access(probe, os.W_OK)


def ensure_ap_types() -> Path:
    """The ap_types folder, fetching it on first use. Raises MissingToolError when that is impossible."""
    found = ap_types_dir()
    if found:
        return found
    target = next((d for d in candidate_dirs()[-2:] if _writable(d)), None)
    if target is None:
        raise MissingToolError("no writable place for the ap_types headers (the venv and ~/.cache are read-only); "
                               "set BNN_FLOW_AP_TYPES=/dir/with/ap_int.h")
    with tempfile.TemporaryDirectory(prefix="bnn-flow-hls4ml-") as tmp:
        _extract(_download_wheel(Path(tmp)), target)
    return target


def main() -> int:
    """`python -m bnn_flow.backends.hls.ap_types`: fetch if needed and print the folder (make setup)."""
    from bnn_flow.errors import BnnFlowError

    try:
        print(ensure_ap_types())
    except BnnFlowError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
