"""The reference targets: the golden model, and the float models a build was compiled from.

* golden  the build's layer plan in numpy (bnn_flow.golden): the integer reference of every other target;
* qonnx   the exported QONNX model (BUILD/00_export.onnx) run by qonnx's own executor, batched;
* torch   the trained Brevitas model of the build's training run (when the build records one).
"""

from __future__ import annotations

import numpy as np

from bnn_flow.backends.base import Backend
from bnn_flow.build import Build
from bnn_flow.golden import GoldenModel
from bnn_flow.qonnx_exec import QonnxRunner


class GoldenTarget(Backend):
    description = "the layer plan in numpy, bit-exact by definition"

    def run_integer(self, build: Build, q: np.ndarray) -> np.ndarray:
        return GoldenModel(build).run_integer_q(q)


class QonnxTarget(Backend):
    kind = "float"
    description = "the exported QONNX model in qonnx's executor"

    def run_scores(self, build: Build, x: np.ndarray) -> np.ndarray:
        return QonnxRunner(build.source_model())(x).astype(np.float32)


class TorchTarget(Backend):
    kind = "float"
    description = "the trained Brevitas model of the build's training run"

    def unsupported(self, build: Build) -> str | None:
        return None if build.run_dir() is not None else "the build records no training run (compile RUN/model.onnx)"

    def run_scores(self, build: Build, x: np.ndarray, batch: int = 256) -> np.ndarray:
        # lazily: only this target needs torch and brevitas; `bnn-flow run --target cpu` does not load them
        import torch

        from bnn_flow.export import load_run

        run = build.run_dir()
        model = load_run(run).model
        with torch.no_grad():
            outs = [model(torch.from_numpy(np.ascontiguousarray(x[i : i + batch]))).numpy()
                    for i in range(0, len(x), batch)]
        return np.concatenate(outs).astype(np.float32) if outs else np.zeros((0, 0), np.float32)
