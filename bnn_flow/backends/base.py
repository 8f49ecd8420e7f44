"""The back-end protocol: what `run`, `compare`, `pi-bench`, the demo and `bitstream` need of a target.

Two kinds of target:

* integer: runs the compiled graph and returns its integer output (the last layer's accumulators, int64
  N x classes) for the graph's input integers q (`Build.input_spec().apply(images)`). The exactness
  contract: identical to the golden model's on every input (DESIGN.md §1).
* float: runs a float model (the exported QONNX, the trained torch model) on the images and returns class
  scores; it agrees with golden's labels except on threshold ties, which compare counts.

`available()` says whether this machine can run the target at all (None, or the missing tool and how to
get it); `unsupported(build)` whether it can run this build (None, or why not); `prepare(build)` generates
and compiles what the target runs (cached: a second call is cheap). `emulated` targets (qemu) are slow
verification runs: compare gives them fewer images when asked to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from bnn_flow.build import Build
from bnn_flow.errors import BadInputError
from bnn_flow.plan import Plan


def input_frames(q: np.ndarray, plan: Plan, what: str) -> np.ndarray:
    """q as int64 (N, elements per frame), checked against the plan's input shape and element type; `what`
    names the run in the one-line error (e.g. "csim input for BUILD")."""
    q = np.asarray(q)
    per_frame = int(np.prod(plan.input_shape))
    if q.ndim < 2 or int(np.prod(q.shape[1:])) != per_frame:
        raise BadInputError(f"{what}: expected (N, {', '.join(map(str, plan.input_shape))}) integers, got shape "
                            f"{q.shape}")
    q = q.reshape(len(q), per_frame).astype(np.int64)
    t = plan.input_dtype
    if q.size and (q.min() < t.min or q.max() > t.max):
        raise BadInputError(f"{what}: values in [{q.min()}, {q.max()}] do not fit the graph's input type "
                            f"({'signed' if t.signed else 'unsigned'} {t.bits} bits)")
    return q


class Backend:
    """Base of every target; subclasses set `kind` and implement run_integer (integer) or run_scores (float)."""

    kind: ClassVar[str] = "integer"
    emulated: ClassVar[bool] = False
    description: ClassVar[str] = ""
    options: ClassVar[tuple[str, ...]] = ()  # command-line options the target takes (the board target: "port")

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def configure(self, **options: object) -> None:
        """Options given on the command line (e.g. bnn-flow run --port); BadInputError for one it does not take."""
        unknown = [k for k in options if k not in self.options]
        if unknown:
            raise BadInputError(f"target {self.name} takes no --{unknown[0]}")
        for k, v in options.items():
            setattr(self, k, v)

    def available(self) -> str | None:
        """None when this machine can run the target, else a one-line reason naming what to install."""
        return None

    def unsupported(self, build: Build) -> str | None:
        """None when the target can run `build`, else why not (one line)."""
        return None

    @staticmethod
    def lacking_kind(build: Build, lookup: Callable[[Any], Any]) -> str | None:
        """The one-line error of the first layer whose kind `lookup` (a back-end's handler()) refuses, or None
        (an unsupported() for back-ends with a layer table)."""
        try:
            for layer in build.plan(folded=False).layers:
                lookup(layer)
        except BadInputError as e:
            return str(e)
        return None

    def prepare(self, build: Build) -> None:
        """Generate and compile what the target runs for `build` (cached)."""

    def run_integer(self, build: Build, q: np.ndarray) -> np.ndarray:
        """int64 (N, classes): the graph's integer output for its input integers q (integer targets)."""
        raise NotImplementedError(f"target {self.name} is a {self.kind} target")

    def run_scores(self, build: Build, x: np.ndarray) -> np.ndarray:
        """float32 (N, classes) class scores for float32 NCHW pixel/255 images x (float targets)."""
        raise NotImplementedError(f"target {self.name} is a {self.kind} target")
