"""Writing a BUILD folder as one transaction: after a failed, interrupted or concurrent compile, BUILD is the
old complete build or the new complete build, never a mix.

* A lock: compiles into the same BUILD take turns (an exclusive flock on `.<BUILD>.lock` beside it; the
  folder itself is swapped, so the lock cannot live inside it). A second writer waits.
* A staging folder beside BUILD (same file system): a fresh one for a compile from the start, a copy of
  BUILD (hard links: cheap, and every write in bnn-flow replaces files rather than changing them) for a
  compile that starts at a later step or only re-folds.
* manifest.json: the SHA-256 of every top-level file compile wrote, checked by every reader (build.py).
* The swap: renameat2(RENAME_EXCHANGE) exchanges the two folders atomically (Linux); elsewhere two renames,
  with a moment in which BUILD is absent (a reader then gets "not found", never a mix).

A folder that is not a bnn-flow build is never replaced: compile refuses an --out that holds anything else.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from bnn_flow.build import MANIFEST, UNMANIFESTED, Build
from bnn_flow.errors import BadInputError
from bnn_flow.fileio import write_json_atomic

MANIFEST_FORMAT = 1
_STAGING = ".{name}.staging-{pid}-{tag}"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def write_manifest(folder: Path) -> dict[str, str]:
    """manifest.json over the compile-owned top-level files of `folder` (back-end subfolders are not in it:
    they are caches keyed by content, or outputs that say which build they came from)."""
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
             if p.is_file() and p.name not in UNMANIFESTED and not p.name.startswith(".")}
    write_json_atomic(folder / MANIFEST, {"format": MANIFEST_FORMAT, "files": files})
    return files


def _is_build_or_empty(path: Path) -> bool:
    if not path.exists():
        return True
    if not path.is_dir():
        return False
    names = {p.name for p in path.iterdir()}
    return not names or MANIFEST in names or "source.json" in names


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    lock = target.parent / f".{target.name}.lock"
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # another compile of this BUILD: wait for it
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_staging(target: Path) -> None:
    """Staging folders of compiles that were killed (their process is gone)."""
    for p in target.parent.glob(f".{target.name}.staging-*"):
        try:
            pid = int(p.name.rsplit("-", 2)[1])
        except (ValueError, IndexError):
            continue
        if not _pid_alive(pid):
            shutil.rmtree(p, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two folders (Linux renameat2); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except AttributeError:
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    if ctypes.get_errno() in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(ctypes.get_errno(), f"cannot swap {a} and {b}: {os.strerror(ctypes.get_errno())}")


def _swap_in(stage: Path, target: Path) -> None:
    """Make `stage` the folder at `target`; `stage` then holds the old build (or nothing) to delete."""
    if not target.exists():
        os.rename(stage, target)
        stage.mkdir()
        return
    if _exchange(stage, target):
        return
    old = stage.with_name(stage.name + "-old")
    os.rename(target, old)
    os.rename(stage, target)
    os.rename(old, stage)


def _copy_build(src: Path, dst: Path) -> None:
    """A copy of a build made of hard links (files are replaced, never written in place, in bnn-flow)."""
    def link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:  # another file system, or no hard links: a real copy
            shutil.copy2(s, d)

    shutil.copytree(src, dst, copy_function=link, symlinks=True)


@contextlib.contextmanager
def transaction(target: Build | Path, *, fresh: bool) -> Iterator[Build]:
    """Yield the staging Build (unverified: it is being written) for `target`; when the block ends without an
    exception, write its manifest and swap it in. On any exception (a failed check, a bad input, Ctrl-C),
    the staging folder is deleted and `target` is exactly as it was. `fresh`: start from an empty folder
    (a compile from the first step) instead of a copy of the current build."""
    path = Path(target.path if isinstance(target, Build) else target)
    if not _is_build_or_empty(path):
        raise BadInputError(f"{path} exists and is not a bnn-flow build: choose another --out (nothing in it was "
                            "changed)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        _remove_stale_staging(path)
        stage = path.parent / _STAGING.format(name=path.name, pid=os.getpid(), tag=uuid.uuid4().hex[:8])
        try:
            if not fresh and path.is_dir():
                Build(path).verify_all()  # a changed build is never blessed by a new manifest
                _copy_build(path, stage)
                (stage / MANIFEST).unlink(missing_ok=True)
            else:
                stage.mkdir()
            yield Build(stage, verify=False)
            write_manifest(stage)
            _swap_in(stage, path)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
