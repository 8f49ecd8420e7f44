"""`bnn-flow compare BUILD`: the same real test images through every target, one table.

Targets: the torch model (when the build knows its training run), the exported QONNX (qonnx's executor),
every saved step model (qonnx's executor, on the first `step_images` images: it runs one image at a
time), and the golden dataflow model. Integer stages must be bit-exact with golden (identical integer
accumulators); float stages must give golden's labels except on images with a threshold tie (some
pre-sign value within float rounding of its threshold), which are counted, not hidden. Any other
difference is a mismatch: exit code 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bnn_flow.build import read_source, source_model
from bnn_flow.errors import BadInputError, CheckFailedError, MissingToolError
from bnn_flow.fileio import write_json_atomic
from bnn_flow.head import apply_head, labels_of
from bnn_flow.targets import BACKENDS, backend_unavailable, run_integer_target, run_target


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


def load_images(build_dir: Path, dataset: str | None, n: int, data_dir: str | None):
    from bnn_flow.data import load_dataset

    src = read_source(build_dir)
    name = dataset or src.get("dataset")
    if not name:
        raise BadInputError(f"{build_dir} does not record its data set: pass --dataset NAME")
    images, labels = load_dataset(name, "test", data_dir, image_size=src.get("image_size")
                                  if name in ("gtsrb", "cnpb") else None)
    images, labels = images[:n], labels[:n]
    return (images.astype(np.float32) / 255.0).transpose(0, 3, 1, 2), labels, name


def float_row(name: str, scores: np.ndarray, golden_labels: np.ndarray, y: np.ndarray, tie_fn) -> Row:
    labels = labels_of(scores)
    differ = np.flatnonzero(labels != golden_labels[: len(labels)])
    ties = int(tie_fn(differ).sum()) if len(differ) else 0
    return Row(name, "float", len(labels), float((labels == y[: len(labels)]).mean()),
               int(len(labels) - len(differ)), None, ties, int(len(differ) - ties))


def step_rows(build_dir: Path, x: np.ndarray, y: np.ndarray, golden_labels: np.ndarray,
              golden_dot: np.ndarray, tie_fn) -> list[Row]:
    from bnn_flow.compiler import STEP_NAMES, execute_step_model, outputs_as_scores, step_path
    from bnn_flow.qonnx_exec import load_qonnx

    rows = []
    for name in STEP_NAMES:
        path = step_path(build_dir, name)
        if not path.is_file():
            continue
        model = load_qonnx(path)
        scores, dot = outputs_as_scores(model, execute_step_model(model, x))
        if dot is None:
            rows.append(float_row(path.stem, scores, golden_labels, y, tie_fn))
            continue
        labels = labels_of(scores)
        exact = bool(np.array_equal(dot, golden_dot[: len(dot)]))
        agree = int((labels == golden_labels[: len(labels)]).sum())
        rows.append(Row(path.stem, "integer", len(labels), float((labels == y[: len(labels)]).mean()), agree,
                        exact, 0, len(labels) - agree))
    return rows


def make_tie_fn(build_dir: Path, x: np.ndarray):
    """Which of the given images have a threshold tie in the float graph (qonnx's executor)."""
    from qonnx.util.cleanup import cleanup_model

    from bnn_flow.compiler import tie_images
    from bnn_flow.qonnx_exec import load_qonnx

    model = cleanup_model(load_qonnx(source_model(build_dir)))
    return lambda idx: tie_images(model, x[idx]) if len(idx) else np.zeros(0, bool)


EMULATED = ("aarch64", "armv7", "armv6")  # run under qemu-user: verification, ~100x slower than native


def compare(build_dir: Path, *, images: int = 1000, dataset: str | None = None, targets: list[str] | None = None,
            step_images: int = 100, data_dir: str | None = None,
            emulated_images: int | None = None) -> dict[str, Any]:
    """The compare table as a dict (also written to BUILD/compare.json).

    The step models run on the first `step_images` images and the qemu-emulated targets on the first
    `emulated_images` (default: all); every other target on all `images`.
    """
    from bnn_flow.golden import GoldenModel

    x, y, name = load_images(build_dir, dataset, images, data_dir)
    golden = GoldenModel(build_dir)
    g_acc = golden.run_integer(x)  # once: the labels, the steps and the back-ends all use it
    g_dot = golden.to_dot(g_acc)
    g_labels = labels_of(apply_head(golden.head, g_dot))
    tie_fn = make_tie_fn(build_dir, x)
    unknown = set(targets or ()) - {"torch", "qonnx", "steps", *BACKENDS}
    if unknown:
        raise BadInputError(f"unknown compare target(s) {', '.join(sorted(unknown))} "
                            f"(targets: torch, qonnx, steps, {', '.join(BACKENDS)})")
    wanted = set(targets) if targets else {"torch", "qonnx", "steps", *BACKENDS}
    rows: list[Row] = []
    skipped: dict[str, str] = {}
    src = read_source(build_dir)
    if "torch" in wanted and src.get("run"):
        rows.append(float_row("torch", torch_scores(Path(src["run"]), x), g_labels, y, tie_fn))
    if "qonnx" in wanted:
        rows.append(float_row("qonnx (export)", run_target(build_dir, "qonnx", x)[0], g_labels, y, tie_fn))
    if "steps" in wanted:
        rows += step_rows(build_dir, x[:step_images], y, g_labels, g_dot, tie_fn)
    for target in (t for t in BACKENDS if t in wanted):
        reason = backend_unavailable(target)
        if reason is not None:
            if targets:  # asked for by name: a missing tool is an error, not a silent skip
                raise MissingToolError(f"compare --targets {target}: {reason}")
            skipped[target] = reason
            continue
        n = len(y) if emulated_images is None or target not in EMULATED else min(emulated_images, len(y))
        rows.append(backend_row(build_dir, target, x[:n], y[:n], g_acc[:n], g_labels[:n]))
    rows.append(Row("golden", "integer", len(y), float((g_labels == y).mean()), len(y), True))
    result = {"build": str(build_dir), "dataset": name, "images": int(len(y)), "step_images": step_images,
              "emulated_images": emulated_images,
              "rows": [asdict(r) | {"ok": r.ok} for r in rows], "skipped": skipped,
              "ok": all(r.ok for r in rows)}
    write_json_atomic(build_dir / "compare.json", result)
    return result


def backend_row(build_dir: Path, target: str, x: np.ndarray, y: np.ndarray, g_acc: np.ndarray,
                g_labels: np.ndarray) -> Row:
    """An integer back-end: bit-exact means identical integer outputs to golden's on every image."""
    from bnn_flow.targets import head_scores

    acc = run_integer_target(build_dir, target, x)
    labels = labels_of(head_scores(build_dir, acc))
    agree = int((labels == g_labels).sum())
    return Row(target, "integer", len(labels), float((labels == y).mean()), agree,
               bool(acc.shape == g_acc.shape and np.array_equal(acc, g_acc)), 0, len(labels) - agree)


def torch_scores(run: Path, x: np.ndarray, batch: int = 256) -> np.ndarray:
    import torch

    from bnn_flow.export import load_run

    model = load_run(run).model
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(x[i : i + batch])).numpy() for i in range(0, len(x), batch)])


def format_table(result: dict[str, Any]) -> str:
    head = f"{'target':<16} {'kind':<8} {'images':>7} {'accuracy':>9} {'= golden':>9} {'bit-exact':>9} " \
           f"{'ties':>5} {'status':>7}"
    lines = [f"compare {result['build']} on {result['images']} {result['dataset']} test images "
             f"(step models on the first {result['step_images']}"
             + (f", qemu-emulated targets on the first {result['emulated_images']}" if result.get("emulated_images")
                else "") + ")", head, "-" * len(head)]
    for r in result["rows"]:
        exact = "-" if r["bit_exact"] is None else ("yes" if r["bit_exact"] else "NO")
        agree = f"{100 * r['agree'] / r['images']:.2f}%"
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
