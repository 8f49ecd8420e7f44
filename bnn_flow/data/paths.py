"""Where data sets are looked for (DESIGN.md §8) and where downloads and decoded caches go.

Lookup order, first hit wins: the explicit ``root`` (``--data-dir``), ``$BNN_FLOW_DATA``, the user cache
``~/.cache/bnn-flow/``, then ``/usr/share/datasets/`` (Debian's ``dataset-fashion-mnist`` installs
``/usr/share/datasets/fashion-mnist/*-ubyte.gz``). Under each root a data set lives in a folder named
after it (``mnist/``, ``fashion-mnist/``, ``cifar10/``, ``gtsrb/``, ``cnpb/``); a few common alternative
folder names (torchvision's ``MNIST/raw``, a bare ``cifar-10-batches-py``) are accepted as well.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from bnn_flow.cache import cache_dir
from bnn_flow.errors import BadInputError

ENV_VAR = "BNN_FLOW_DATA"
SYSTEM_DATA_DIR = Path("/usr/share/datasets")

# Sub-folders of a root that may hold each data set, most canonical first. The first entry is also
# where a download goes (under the user cache).
DATASET_SUBDIRS: dict[str, tuple[str, ...]] = {
    "mnist": ("mnist", "MNIST/raw"),
    "fashion-mnist": ("fashion-mnist", "FashionMNIST/raw"),
    "cifar10": ("cifar10/cifar-10-batches-py", "cifar10", "cifar-10-batches-py"),
    "gtsrb": ("gtsrb",),
    "cnpb": ("cnpb",),
}


def user_cache_dir() -> Path:
    """The user cache (bnn_flow.cache): downloads and decoded caches."""
    return cache_dir()


def download_dir(name: str) -> Path:
    """The folder a download of data set `name` is unpacked into: ``~/.cache/bnn-flow/<name>/``."""
    return user_cache_dir() / name


def decoded_cache_dir() -> Path:
    """Where decoded arrays (e.g. resized GTSRB crops) are cached as .npz files."""
    return user_cache_dir() / "decoded"


def search_roots(root: str | os.PathLike | None = None) -> list[Path]:
    """The roots to search, in order, without duplicates.

    An explicit `root` that does not exist is an error (most likely a typo in ``--data-dir``); a stale
    ``$BNN_FLOW_DATA`` or a missing cache/system folder is simply skipped later, since those are
    defaults the user did not type for this run.
    """
    roots: list[Path] = []
    if root is not None and str(root) != "":
        explicit = Path(root).expanduser()
        if not explicit.is_dir():
            raise BadInputError(f"data directory {explicit} does not exist; pass an existing --data-dir")
        roots.append(explicit)
    env = os.environ.get(ENV_VAR, "").strip()
    if env:  # the Makefile exports an empty value when ../shared/data is absent
        roots.append(Path(env).expanduser())
    roots += [user_cache_dir(), SYSTEM_DATA_DIR]
    unique: list[Path] = []
    seen: set[str] = set()
    for r in roots:
        key = os.path.realpath(r)
        if key not in seen:
            seen.add(key)
            unique.append(r)
    return unique


def candidate_dirs(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """Every folder, in lookup order, that could hold data set `name` (existing or not)."""
    subdirs = DATASET_SUBDIRS[name]
    return [r / sub for r in search_roots(root) for sub in subdirs]


def locate(
    name: str,
    is_present: Callable[[Path], bool],
    root: str | os.PathLike | None = None,
) -> Path | None:
    """The first candidate folder of `name` for which `is_present(folder)` holds, else None.

    `is_present` checks only that the expected files exist, not their contents: a folder whose files
    exist but are damaged is still chosen, so the loader reports the damage instead of silently using
    another copy.
    """
    for folder in candidate_dirs(name, root):
        if folder.is_dir() and is_present(folder):
            return folder
    return None
