"""The one user cache of bnn-flow: built C libraries and runners, zig's caches, fetched headers, data sets.

It lives in $XDG_CACHE_HOME/bnn-flow (the XDG convention), else ~/.cache/bnn-flow, and is read when it
is needed (never at import), so a process that changes HOME (the tests do) gets its own.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """~/.cache/bnn-flow[/parts...] (not created)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base, "bnn-flow", *parts)
