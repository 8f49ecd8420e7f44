"""The build folder's provenance: which QONNX model it was compiled from, and from which training run.

`bnn-flow compile` copies the source model into BUILD/00_export.onnx (so a build is self-contained and
`run --target qonnx` executes exactly what was compiled) and writes BUILD/source.json. When the model
sits in a run folder (beside summary.json and recipe.yaml), the run is recorded too, so `compare` can add
the torch model and knows the data set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bnn_flow.errors import BadInputError
from bnn_flow.fileio import write_bytes_atomic, write_json_atomic

SOURCE_MODEL = "00_export.onnx"
SOURCE_INFO = "source.json"


def find_run(model_path: Path) -> Path | None:
    """The training run a model was exported from: its folder holds summary.json and recipe.yaml."""
    folder = model_path.resolve().parent
    if (folder / "summary.json").is_file() and (folder / "recipe.yaml").is_file():
        return folder
    return None


def record_source(build_dir: Path, model_path: Path) -> dict[str, Any]:
    build_dir.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(build_dir / SOURCE_MODEL, model_path.read_bytes())
    info: dict[str, Any] = {"model": str(model_path.resolve()), "run": None, "dataset": None}
    run = find_run(model_path)
    if run is not None:
        summary = json.loads((run / "summary.json").read_text())
        info.update(run=str(run), dataset=summary.get("dataset"), arch=summary.get("arch"),
                    image_size=summary.get("input_shape", [None, None])[1])
    write_json_atomic(build_dir / SOURCE_INFO, info)
    return info


def read_source(build_dir: Path) -> dict[str, Any]:
    path = build_dir / SOURCE_INFO
    if not path.is_file():
        raise BadInputError(f"{build_dir} is not a bnn-flow build (no {SOURCE_INFO}): run bnn-flow compile first")
    return json.loads(path.read_text())


def source_model(build_dir: Path) -> Path:
    path = build_dir / SOURCE_MODEL
    if not path.is_file():
        raise BadInputError(f"{path} is missing: compile the model again (bnn-flow compile MODEL --out {build_dir})")
    return path
