"""The Xilinx arbitrary-precision headers (ap_int.h, ap_fixed.h, ...) for C-simulation with plain g++.

They are open source (Apache-2.0) and ship inside the hls4ml wheel at hls4ml/templates/vivado/ap_types/.
We never commit them: `make setup` (or the first C-simulation) downloads the pinned wheel with pip,
checks its SHA-256 and extracts that folder. Lookup order of `ap_types_dir()`:

1. <venv>/share/bnn-flow/ap_types/hls4ml-<version>/ (where `make setup` puts them; survives the
   isolated HOME of the tests);
2. the user cache (bnn_flow.cache) / ap_types/hls4ml-<version>/.

`ensure_ap_types()` fetches into the first writable of them when none is found. An offline machine
installs them from a copy of the wheel: `python -m bnn_flow.backends.hls.ap_types --wheel PATH`.
Failure is a MissingToolError (exit 3).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from bnn_flow.cache import cache_dir
from bnn_flow.errors import BnnFlowError, MissingToolError

HLS4ML_VERSION = "1.3.0"
WHEEL_NAME = f"hls4ml-{HLS4ML_VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "01bf1de2cd9bca56699b9fe3385cb1735026b022f9580fe1d73faf192dfb90f2"
MEMBER_PREFIX = "hls4ml/templates/vivado/ap_types/"
# The one header the C-simulation needs first; its presence marks a complete extraction.
MARKER = "ap_int.h"


def _venv_dir() -> Path:
    return Path(sys.prefix) / "share" / "bnn-flow" / "ap_types" / f"hls4ml-{HLS4ML_VERSION}"


def _user_dir() -> Path:
    return cache_dir("ap_types", f"hls4ml-{HLS4ML_VERSION}")


def candidate_dirs() -> list[Path]:
    """Where ap_types may live, in lookup order."""
    return [_venv_dir(), _user_dir()]


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
    """The pinned wheel, fetched with `pip download` (which uses pip's own cache)."""
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
                               f"{why}); run `make setup` with network access, or install them from a copy of the "
                               f"wheel: python -m bnn_flow.backends.hls.ap_types --wheel /path/to/{WHEEL_NAME}")
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
                    out = (tmp / rel).resolve()
                    # the checksum pin is one defence; the member path is checked on its own as well
                    if Path(rel).is_absolute() or ".." in Path(rel).parts or not out.is_relative_to(tmp.resolve()):
                        raise MissingToolError(f"{wheel}: refusing the unsafe member path {info.filename!r}")
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


def ensure_ap_types(wheel: Path | None = None) -> Path:
    """The ap_types folder, extracted on first use from `wheel` (a local copy of the pinned hls4ml wheel) or
    from a download. Raises MissingToolError when that is impossible."""
    found = ap_types_dir()
    if found:
        return found
    target = next((d for d in candidate_dirs() if _writable(d)), None)
    if target is None:
        raise MissingToolError("no writable place for the ap_types headers (the venv and ~/.cache are read-only): "
                               "make one of them writable")
    if wheel is not None:
        if not Path(wheel).is_file():
            raise MissingToolError(f"{wheel} does not exist: give the path of {WHEEL_NAME}")
        _extract(Path(wheel), target)
        return target
    with tempfile.TemporaryDirectory(prefix="bnn-flow-hls4ml-") as tmp:
        _extract(_download_wheel(Path(tmp)), target)
    return target


def main(argv: list[str] | None = None) -> int:
    """`python -m bnn_flow.backends.hls.ap_types [--wheel PATH]`: fetch (or extract the given wheel) if
    needed and print the folder (make setup)."""
    p = argparse.ArgumentParser(prog="python -m bnn_flow.backends.hls.ap_types", description=main.__doc__)
    p.add_argument("--wheel", type=Path, help=f"a local copy of {WHEEL_NAME} (offline machines)")
    args = p.parse_args(argv)
    try:
        print(ensure_ap_types(args.wheel))
    except BnnFlowError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
