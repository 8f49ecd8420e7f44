"""Execute a QONNX model with qonnx's own executor (the independent reference), batched.

Brevitas exports with a fixed batch size of 1; we clean the graph up and rewrite the batch dimension
with qonnx's ChangeBatchSize so one execute_onnx call runs a whole batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.change_batchsize import ChangeBatchSize
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.cleanup import cleanup_model

from bnn_flow.errors import BadInputError


def load_qonnx(path: str | Path) -> ModelWrapper:
    """Load an ONNX/QONNX file; a missing, truncated or non-ONNX file is a BadInputError naming it."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"model {path} not found")
    return load_qonnx_bytes(path.read_bytes(), path)


def load_qonnx_bytes(data: bytes, where: str | Path) -> ModelWrapper:
    """An ONNX/QONNX model from its bytes (`where` names it in errors): the same checks as load_qonnx."""
    path = where
    try:
        model = ModelWrapper(onnx.load_from_string(data))
    except Exception as e:  # protobuf raises DecodeError and friends for damaged files
        raise BadInputError(f"{path} is not a readable ONNX model ({type(e).__name__}); re-export it") from None
    graph = model.graph
    # protobuf happily parses many byte strings as a (nearly empty) model: require a real graph
    if not graph.node or not graph.input or not graph.output:
        raise BadInputError(f"{path} is not a readable ONNX model (no graph nodes/inputs/outputs); re-export it")
    return model


class QonnxRunner:
    """Runs one model on batches of any size, caching one rewritten graph per batch size."""

    def __init__(self, model: ModelWrapper) -> None:
        self.base = cleanup_model(model)
        self._by_batch: dict[int, ModelWrapper] = {}

    def _for_batch(self, n: int) -> ModelWrapper:
        if n not in self._by_batch:
            m = ModelWrapper(self.base.model.__deepcopy__())
            m = m.transform(ChangeBatchSize(n)).transform(InferShapes())
            self._by_batch[n] = m
        return self._by_batch[n]

    def __call__(self, x: np.ndarray, batch: int = 64) -> np.ndarray:
        outs = []
        for i in range(0, len(x), batch):
            chunk = np.ascontiguousarray(x[i : i + batch], dtype=np.float32)
            m = self._for_batch(len(chunk))
            result = execute_onnx(m, {m.graph.input[0].name: chunk})
            outs.append(result[m.graph.output[0].name])
        return np.concatenate(outs)
