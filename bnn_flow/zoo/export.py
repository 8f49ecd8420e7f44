"""bnn-flow export models/zoo/<recipe>.bnnz: a released model's network -> QONNX, with export's round trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bnn_flow.data import find_dataset, load_dataset
from bnn_flow.errors import CheckFailedError
from bnn_flow.export import ROUNDTRIP_TOLERANCE, export_qonnx_file, roundtrip
from bnn_flow.zoo.model import load


def export_zoo(path: Path, out: Path, *, images: int = 200, data_dir: str | None = None) -> dict[str, Any]:
    """Rebuild a zoo file's network and export it to QONNX, with the round trip of `bnn-flow export RUN` (on
    the test images when the data set is on disk, else on seeded random images: then only labels and outputs
    are compared)."""
    z, recipe, model = load(path)
    export_qonnx_file(model, out)
    dataset = z.header["model"]["dataset"]
    if find_dataset(dataset, data_dir) is not None:
        x, y = load_dataset(dataset, "test", data_dir, image_size=recipe.data.image_size)
        x, y = x[:images], y[:images]
    else:
        c, h, w = z.header["model"]["input_shape"]
        x = np.random.default_rng(0).integers(0, 256, (images, h, w, c), dtype=np.uint8)
        y = np.zeros(images, np.int64)
    check = roundtrip(model, out, x, y)
    if not check["labels_identical"] or not check["max_abs_diff"] <= ROUNDTRIP_TOLERANCE:
        raise CheckFailedError(f"export round trip failed for {out}: {check['label_mismatches']} label mismatches, "
                               f"max |torch - qonnx| = {check['max_abs_diff']:.3g} on {check['images']} images")
    return {"path": str(out), "bytes": out.stat().st_size, "recipe": recipe.name, "roundtrip": check,
            "accuracy": z.header["accuracy"]}
