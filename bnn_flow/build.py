"""The BUILD folder: the one owner of its files (their names, how they are read and written).

A build is what `bnn-flow compile` writes and every other command reads:

    00_export.onnx            the source QONNX model, copied (a build is self-contained)
    source.json               provenance: the source model, its training run and data set when known
    NN_<step>.onnx            the model after each compiler step (01_tidy ... 05_dataflow: the final graph)
    input_spec.json           the host-side input quantization (pixels -> the graph's input integers)
    head.json                 the host-side classifier head (acc -> dot -> class scores)
    compile_log.json          step times and verification records
    folding.json              {MVAU name: {"PE": p, "SIMD": s}} (absent: unfolded)
    report.json/.txt/.png     the folding report (estimates)
    compare.json              the last `compare` table
    manifest.json             SHA-256 of every file above but compare.json, written when compile commits
    <back-end>/               each back-end's own folder (Build.backend_dir): hls/, vendor/, bitstream/,
                              cpu/ ... named and owned by the back-end that writes it
    vectors/                  per-layer golden vectors (`run --dump-vectors`)

Every reader turns a missing or unreadable file into one BadInputError naming the file and what to do, and
checks the file against manifest.json first: a build changed after compile (by hand, or mixed by two
writers) is refused, never run. Compile writes builds through bnn_flow.transaction (a lock, a staging
folder, the manifest, an atomic swap); the staging Build is the one opened with verify=False.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from bnn_flow.data import load_dataset
from bnn_flow.errors import BadInputError
from bnn_flow.fileio import write_bytes_atomic, write_json_atomic, write_text_atomic
from bnn_flow.plan import Plan, plan_from_model
from bnn_flow.qonnx_exec import load_qonnx_bytes
from bnn_flow.transforms.input_spec import InputSpec

SOURCE_MODEL = "00_export.onnx"
SOURCE_INFO = "source.json"
INPUT_SPEC = "input_spec.json"
HEAD = "head.json"
COMPILE_LOG = "compile_log.json"
FOLDING = "folding.json"
REPORT_JSON, REPORT_TXT, REPORT_PNG = "report.json", "report.txt", "report.png"
COMPARE = "compare.json"
MANIFEST = "manifest.json"
UNMANIFESTED = (COMPARE, MANIFEST)  # top-level files compile does not own
FINAL_STEP = "dataflow"
RECOMPILE = "compile the model again (bnn-flow compile MODEL.onnx --out {build})"


def find_run(model_path: Path) -> Path | None:
    """The training run a model was exported from: its folder holds summary.json and recipe.yaml."""
    folder = model_path.resolve().parent
    if (folder / "summary.json").is_file() and (folder / "recipe.yaml").is_file():
        return folder
    return None


class Build:
    """A BUILD folder. Cheap to create; files are read on demand (and the parsed ones kept)."""

    def __init__(self, path: str | Path, verify: bool = True) -> None:
        self.path = Path(path)
        self.verify = verify  # False only for the staging folder a compile is writing (bnn_flow.transaction)
        self._cache: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"Build({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    # --- paths ------------------------------------------------------------------------------------------
    def step_path(self, index: int, name: str) -> Path:
        """The model saved after compiler step `index` (1-based) named `name`."""
        return self.path / f"{index:02d}_{name}.onnx"

    @property
    def source_model_path(self) -> Path:
        return self.path / SOURCE_MODEL

    def backend_dir(self, name: str) -> Path:
        """BUILD/<name>/: a back-end's own folder (each back-end names and owns what it writes there)."""
        return self.path / name

    @property
    def vectors_dir(self) -> Path:
        return self.path / "vectors"

    @property
    def report_paths(self) -> tuple[Path, Path, Path]:
        """(report.json, report.txt, report.png)."""
        return self.path / REPORT_JSON, self.path / REPORT_TXT, self.path / REPORT_PNG

    def final_model_path(self) -> Path:
        """The final dataflow graph (NN_dataflow.onnx)."""
        paths = sorted(self.path.glob(f"*_{FINAL_STEP}.onnx"))
        if not paths:
            raise BadInputError(f"no *_{FINAL_STEP}.onnx in {self.path}: {self._recompile()}")
        return paths[-1]

    def plan_inputs(self) -> list[tuple[str, bytes | None]]:
        """(file name, bytes or None when absent) of every file the plan is made of, for content hashes."""
        names = [self.final_model_path().name, FOLDING, INPUT_SPEC, HEAD]
        return [(name, self.read_bytes(name, required=False)) for name in names]

    def exists(self) -> bool:
        return (self.path / SOURCE_INFO).is_file()

    # --- readers ----------------------------------------------------------------------------------------
    def _recompile(self) -> str:
        return RECOMPILE.format(build=self.path)

    def manifest(self) -> dict[str, str]:
        """{file name: SHA-256} of the files compile wrote (manifest.json); one-line errors."""
        if "manifest" not in self._cache:
            path = self.path / MANIFEST
            if not path.is_file():
                if not self.path.is_dir():
                    raise BadInputError(f"build {self.path} not found: compile a model into it first "
                                        f"(bnn-flow compile MODEL.onnx --out {self.path})")
                raise BadInputError(f"{self.path} has no {MANIFEST} (not a compiled build, or compiled by an older "
                                    f"bnn-flow): {self._recompile()}")
            try:
                d = json.loads(path.read_text())
                files = d["files"]
                assert isinstance(files, dict) and all(isinstance(v, str) for v in files.values())
            except (UnicodeDecodeError, ValueError, KeyError, TypeError, AssertionError):
                raise BadInputError(f"{path} is damaged: {self._recompile()}") from None
            self._cache["manifest"] = files
            try:
                self.verify_all()  # the whole build, once: a changed file is refused even where this reader skips it
            except BaseException:
                del self._cache["manifest"]
                raise
        return self._cache["manifest"]

    def read_bytes(self, name: str, required: bool = True) -> bytes | None:
        """A compile-written file's bytes, checked against the manifest (None when absent and not required)."""
        path = self.path / name
        listed = None if not self.verify else self.manifest().get(name)
        if not path.is_file():
            if listed is not None:
                raise BadInputError(f"{path} is missing although {MANIFEST} lists it: {self._recompile()}")
            if required:
                raise BadInputError(f"{path} is missing: {self._recompile()}")
            return None
        data = path.read_bytes()
        if self.verify and (listed is None or hashlib.sha256(data).hexdigest() != listed):
            why = "is not one compile wrote" if listed is None else "was changed after compile"
            raise BadInputError(f"{path} {why} (it does not match {MANIFEST}): a changed or mixed build is not "
                                f"run; {self._recompile()}")
        return data

    def verify_all(self) -> None:
        """Every file the manifest lists is there and unchanged, and compile wrote every top-level file."""
        listed = self._cache["manifest"] if "manifest" in self._cache else self.manifest()
        for name in listed:
            self.read_bytes(name)
        extra = [p.name for p in self.path.iterdir() if p.is_file() and p.name not in listed
                 and p.name not in UNMANIFESTED and not p.name.startswith(".")]
        if extra:
            raise BadInputError(f"{self.path / extra[0]} is not one compile wrote (it is not in {MANIFEST}): a "
                                f"changed build is not used; {self._recompile()}")

    def _json(self, name: str, required: bool = True) -> Any:
        """A JSON file of the build (None when absent and not required); one-line errors."""
        data = self.read_bytes(name, required)
        if data is None:
            return None
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BadInputError(f"{self.path / name} is not valid JSON ({e}): {self._recompile()}") from None

    def _dict(self, name: str, required: bool = True) -> dict | None:
        d = self._json(name, required)
        if d is not None and not isinstance(d, dict):
            raise BadInputError(f"{self.path / name} does not hold a JSON object: {self._recompile()}")
        return d

    def source_info(self) -> dict[str, Any]:
        """source.json: {"model", "run", "dataset", ...}; raises when this is not a build."""
        return self._dict(SOURCE_INFO)

    def source_model(self) -> ModelWrapper:
        """The QONNX model the build was compiled from (its copy, 00_export.onnx)."""
        return self.model(SOURCE_MODEL)

    def run_dir(self) -> Path | None:
        """The training run the source model came from, when recorded and still there."""
        run = self.source_info().get("run")
        if run and (Path(run) / "recipe.yaml").is_file() and (Path(run) / "summary.json").is_file():
            return Path(run)
        return None

    def input_spec(self) -> InputSpec:
        if "spec" not in self._cache:
            d = self._dict(INPUT_SPEC)
            try:
                self._cache["spec"] = InputSpec.from_json(d)
            except (TypeError, KeyError, ValueError) as e:
                raise BadInputError(f"{self.path / INPUT_SPEC} is not an input spec ({e}): {self._recompile()}") \
                    from None
        return self._cache["spec"]

    def head(self) -> dict:
        if "head" not in self._cache:
            head = self._dict(HEAD)
            if not _valid_head(head):
                raise BadInputError(f"{self.path / HEAD} is not a classifier head (finite scale and bias per class, "
                                    f"acc_to_dot two integers): {self._recompile()}")
            self._cache["head"] = head
        return self._cache["head"]

    def folding(self) -> dict[str, dict[str, int]]:
        """folding.json ({} when the build is unfolded)."""
        d = self._dict(FOLDING, required=False)
        if d is None:
            return {}
        ok = all(isinstance(v, dict) and all(isinstance(v.get(k, 1), int) for k in ("PE", "SIMD"))
                 for v in d.values())
        if not ok:
            raise BadInputError(f"{self.path / FOLDING} must map layer names to {{\"PE\": int, \"SIMD\": int}}: "
                                "fold again (bnn-flow compile --from-step fold ...) or delete it")
        return d

    def final_model(self) -> ModelWrapper:
        return self.model(self.final_model_path().name)

    def model(self, name: str) -> ModelWrapper:
        """An ONNX model of the build (a step model, the source copy), checked against the manifest."""
        return load_qonnx_bytes(self.read_bytes(name), self.path / name)

    def plan(self, folded: bool = True) -> Plan:
        """The layer plan of the final graph, with folding.json's PE/SIMD (folded) or PE = SIMD = 1."""
        return plan_from_model(self.final_model(), self.input_spec(), self.head(),
                               self.folding() if folded else None)

    def report(self) -> dict | None:
        """report.json of the last folding, None when the build was never folded."""
        return self._dict(REPORT_JSON, required=False)

    def compile_log(self) -> dict:
        return self._dict(COMPILE_LOG)

    def compare_result(self) -> dict:
        """compare.json, the last compare table: compare writes it after compile, so the manifest never lists it
        (UNMANIFESTED); read as untrusted JSON, one-line errors."""
        path = self.path / COMPARE
        if not path.is_file():
            raise BadInputError(f"{path} is missing: run bnn-flow compare {self.path} first")
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BadInputError(f"{path} is not valid JSON ({e}): run bnn-flow compare {self.path} again") from None
        if not isinstance(d, dict):
            raise BadInputError(f"{path} does not hold a JSON object: run bnn-flow compare {self.path} again")
        return d

    def dataset(self, override: str | None = None) -> str:
        """The data set of the build's test images: `override`, else what source.json records."""
        name = override or self.source_info().get("dataset")
        if not name:
            raise BadInputError(f"{self.path} does not record its data set: pass --dataset NAME")
        return name

    def test_images(self, n: int, dataset: str | None = None, data_dir: str | None = None,
                    download: bool = True) -> tuple[np.ndarray, np.ndarray, str]:
        """(the first n test images as float32 NCHW pixel/255, their labels, the data set's name)."""
        name = self.dataset(dataset)
        size = self.source_info().get("image_size") if name in ("gtsrb", "cnpb") else None
        images, labels = load_dataset(name, "test", data_dir, image_size=size, download=download)
        images, labels = images[:n], labels[:n]
        return (images.astype(np.float32) / np.float32(255.0)).transpose(0, 3, 1, 2), labels, name

    def input_chw(self) -> list[int]:
        """What the source model takes per image (C, H, W): its input shape, kept by the first step's model
        (a build compiled by the API rather than the command line has no copy of the source model)."""
        if self.verify:
            self.manifest()  # "not found" / "not a compiled build" first
        for path in (self.source_model_path, *sorted(self.path.glob("01_*.onnx"))):
            if path.is_file():
                model = self.model(path.name)
                return list(model.get_tensor_shape(model.graph.input[0].name)[1:])
        raise BadInputError(f"{self.source_model_path} is missing: {self._recompile()}")

    # --- writers ----------------------------------------------------------------------------------------
    def record_source(self, model_path: Path) -> dict[str, Any]:
        """Copy the source model in and write source.json (with the training run when there is one)."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(self.source_model_path, model_path.read_bytes())
        info: dict[str, Any] = {"model": str(model_path.resolve()), "run": None, "dataset": None}
        run = find_run(model_path)
        if run is not None:
            summary = json.loads((run / "summary.json").read_text())
            info.update(run=str(run), dataset=summary.get("dataset"), arch=summary.get("arch"),
                        image_size=summary.get("input_shape", [None, None])[1])
        write_json_atomic(self.path / SOURCE_INFO, info)
        self._cache.clear()
        return info

    def save_step(self, index: int, name: str, model: ModelWrapper) -> Path:
        path = self.step_path(index, name)
        write_bytes_atomic(path, model.model.SerializeToString())
        return path

    def write_input_spec(self, spec: InputSpec) -> None:
        write_json_atomic(self.path / INPUT_SPEC, spec.to_json())
        self._cache.pop("spec", None)

    def write_head(self, head: dict) -> None:
        write_json_atomic(self.path / HEAD, head)
        self._cache.pop("head", None)

    def write_compile_log(self, log: dict) -> None:
        write_json_atomic(self.path / COMPILE_LOG, log)

    def write_folding(self, folding: dict[str, dict[str, int]]) -> Path:
        path = self.path / FOLDING
        write_json_atomic(path, folding)
        return path

    def write_report(self, report: dict, table: str) -> None:
        """report.json and report.txt (the PNG is drawn by the report module into report_paths[2])."""
        write_json_atomic(self.path / REPORT_JSON, report)
        write_text_atomic(self.path / REPORT_TXT, table + "\n")

    def write_compare(self, result: dict) -> Path:
        path = self.path / COMPARE
        write_json_atomic(path, result)
        return path


def _valid_head(head: dict) -> bool:
    def numbers(v: object) -> bool:
        return isinstance(v, list) and len(v) > 0 and all(
            isinstance(x, int | float) and not isinstance(x, bool) and np.isfinite(x) for x in v)

    a2d = head.get("acc_to_dot")
    return (numbers(head.get("scale")) and numbers(head.get("bias")) and len(head["scale"]) == len(head["bias"])
            and isinstance(a2d, list) and len(a2d) == 2 and all(type(v) is int for v in a2d))


def as_build(build: Build | str | Path) -> Build:
    """A Build for a path (or the Build itself): the public functions take either."""
    return build if isinstance(build, Build) else Build(build)
