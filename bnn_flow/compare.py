"""`bnn-flow compare BUILD`: the same real test images through every target, one table.

Targets come from the registry (bnn_flow/backends/registry.py): every integer target must be bit-exact
with the baseline (the golden model: identical integer accumulators); every float target (the exported
QONNX, the torch model when the build knows its training run) must give golden's labels except on images
with a threshold tie (some pre-sign value within float rounding of its threshold), which are counted, not
hidden. The compiler's saved step models (qonnx's executor, on the first `step_images` images: it runs one
image at a time) are checked the same way. Any other difference is a mismatch: exit code 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from qonnx.util.cleanup import cleanup_model

from bnn_flow.backends import registry
from bnn_flow.build import Build, as_build
from bnn_flow.compiler import STEP_NAMES, execute_step_model, outputs_as_scores, step_path, tie_images
from bnn_flow.errors import BadInputError, CheckFailedError, MissingToolError
from bnn_flow.golden import GoldenModel
from bnn_flow.head import apply_head, labels_of
from bnn_flow.progress import progress
from bnn_flow.run import head_scores

STEPS = "steps"  # compare's own row group: the compiler's step models (not a target)


@dataclass
class Row:
    target: str
    kind: str  # float | integer
    images: int
    accuracy: float
    agree: int  # labels equal to golden's
    bit_exact: bool | None = None  # integer stages: accumulators identical to golden's
    ties: int = 0  # label differences explained by a threshold tie
    unexplained: int = 0

    @property
    def ok(self) -> bool:
        return self.unexplained == 0 and self.bit_exact is not False


def float_row(name: str, scores: np.ndarray, golden_labels: np.ndarray, y: np.ndarray, tie_fn) -> Row:
    labels = labels_of(scores)
    differ = np.flatnonzero(labels != golden_labels[: len(labels)])
    ties = int(tie_fn(differ).sum()) if len(differ) else 0
    return Row(name, "float", len(labels), float((labels == y[: len(labels)]).mean()),
               int(len(labels) - len(differ)), None, ties, int(len(differ) - ties))


def integer_row(name: str, acc: np.ndarray, labels: np.ndarray, y: np.ndarray, g_acc: np.ndarray,
                g_labels: np.ndarray) -> Row:
    """Bit-exact means identical integer outputs to golden's on every image."""
    agree = int((labels == g_labels[: len(labels)]).sum())
    exact = bool(acc.shape == g_acc[: len(acc)].shape and np.array_equal(acc, g_acc[: len(acc)]))
    return Row(name, "integer", len(labels), float((labels == y[: len(labels)]).mean()), agree, exact, 0,
               len(labels) - agree)


def step_rows(build: Build, x: np.ndarray, y: np.ndarray, golden_labels: np.ndarray,
              golden_dot: np.ndarray, tie_fn) -> list[Row]:
    rows = []
    paths = [step_path(build, name) for name in STEP_NAMES if step_path(build, name).is_file()]
    with progress(len(paths) * len(x), "step models") as bar:
        for path in paths:
            model = build.model(path.name)
            scores, dot = outputs_as_scores(model, execute_step_model(model, x))
            bar.update(len(x))
            if dot is None:
                rows.append(float_row(path.stem, scores, golden_labels, y, tie_fn))
            else:
                rows.append(integer_row(path.stem, dot, labels_of(scores), y, golden_dot, golden_labels))
    return rows


def make_tie_fn(build: Build, x: np.ndarray):
    """Which of the given images have a threshold tie in the float graph (qonnx's executor)."""
    model = cleanup_model(build.source_model())
    return lambda idx: tie_images(model, x[idx]) if len(idx) else np.zeros(0, bool)


def _wanted(targets: list[str] | None) -> list[str]:
    known = [t for t in registry.TARGETS if t != registry.BASELINE]
    unknown = set(targets or ()) - {STEPS, *known}
    if unknown:
        raise BadInputError(f"unknown compare target(s) {', '.join(sorted(unknown))} "
                            f"(targets: {', '.join([*known, STEPS])})")
    return list(targets) if targets else [*known, STEPS]


def compare(build: Build | str | Path, *, images: int = 1000, dataset: str | None = None,
            targets: list[str] | None = None, step_images: int = 100, data_dir: str | None = None,
            emulated_images: int | None = None) -> dict[str, Any]:
    """The compare table as a dict (also written to BUILD/compare.json).

    The step models run on the first `step_images` images and the emulated targets (qemu) on the first
    `emulated_images` (default: all); every other target on all `images`.
    """
    build = as_build(build)
    wanted = _wanted(targets)
    x, y, name = build.test_images(images, dataset, data_dir)
    golden = GoldenModel(build)
    g_acc = golden.run_integer(x)  # once: the labels, the steps and the back-ends all use it
    g_dot = golden.to_dot(g_acc)
    g_labels = labels_of(apply_head(golden.head, g_dot))
    tie_fn = make_tie_fn(build, x)
    rows: list[Row] = []
    skipped: dict[str, str] = {}
    chosen = [registry.target(t) for t in registry.TARGETS if t in wanted]

    def target_rows(kind: str) -> None:
        for backend in (b for b in chosen if b.kind == kind):
            reason = backend.available() or backend.unsupported(build)
            if reason is not None:
                if targets and backend.available():  # asked for by name: a missing tool is an error, not a skip
                    raise MissingToolError(f"compare --targets {backend.name}: {reason}")
                skipped[backend.name] = reason
                continue
            n = len(y) if emulated_images is None or not backend.emulated else min(emulated_images, len(y))
            if kind == "float":
                rows.append(float_row(backend.name, backend.run_scores(build, x[:n]), g_labels, y, tie_fn))
            else:
                acc = np.asarray(backend.run_integer(build, golden.spec.apply(x[:n])), dtype=np.int64)
                rows.append(integer_row(backend.name, acc, labels_of(head_scores(build, acc)), y, g_acc, g_labels))

    target_rows("float")
    if STEPS in wanted:
        rows += step_rows(build, x[:step_images], y, g_labels, g_dot, tie_fn)
    target_rows("integer")
    rows.append(Row(registry.BASELINE, "integer", len(y), float((g_labels == y).mean()), len(y), True))
    result = {"build": str(build.path), "dataset": name, "images": int(len(y)), "step_images": step_images,
              "emulated_images": emulated_images,
              "rows": [asdict(r) | {"ok": r.ok} for r in rows], "skipped": skipped,
              "ok": all(r.ok for r in rows)}
    build.write_compare(result)
    return result


def format_table(result: dict[str, Any]) -> str:
    head = f"{'target':<16} {'kind':<8} {'images':>7} {'accuracy':>9} {'= golden':>9} {'bit-exact':>9} " \
           f"{'ties':>5} {'status':>7}"
    lines = [f"compare {result['build']} on {result['images']} {result['dataset']} test images "
             f"(step models on the first {result['step_images']}"
             + (f", qemu-emulated targets on the first {result['emulated_images']}" if result.get("emulated_images")
                else "") + ")", head, "-" * len(head)]
    for r in result["rows"]:
        exact = "-" if r["bit_exact"] is None else ("yes" if r["bit_exact"] else "NO")
        agree = f"{100 * r['agree'] / r['images']:.2f}%" if r["images"] else "-"
        status = "ok" if r["ok"] else "MISMATCH"
        lines.append(f"{r['target']:<16} {r['kind']:<8} {r['images']:>7} {100 * r['accuracy']:>8.2f}% "
                     f"{agree:>9} {exact:>9} {r['ties']:>5} {status:>7}")
    lines += [f"(not run: {t}: {why})" for t, why in result.get("skipped", {}).items()]
    return "\n".join(lines)


def check(result: dict[str, Any]) -> None:
    if not result["ok"]:
        bad = [r["target"] for r in result["rows"] if not r["ok"]]
        raise CheckFailedError(f"compare: unexplained mismatches with golden in {', '.join(bad)} "
                               f"(details in {result['build']}/compare.json)")
