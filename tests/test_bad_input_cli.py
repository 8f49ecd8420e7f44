"""Bad-input suite, part 1: command-line options, input and output files, recipes (tests/bad_input.py has
the rule every case obeys). Cases that only parse options or files run in milliseconds each."""

from __future__ import annotations

import numpy as np
import pytest
from bad_input import Case, Env, make_root, run_case

CASES: list[Case] = []


def add(*cases: Case) -> None:
    CASES.extend(cases)


# --- options ------------------------------------------------------------------------------------------------

def _b(e: Env) -> str:
    return str(e.good_build)


COUNT_OPTIONS = [  # (command prefix, option)
    (lambda e: ["compare", _b(e)], "--images"), (lambda e: ["compare", _b(e)], "--step-images"),
    (lambda e: ["compare", _b(e)], "--emulated-images"), (lambda e: ["pi-bench", _b(e)], "--images"),
    (lambda e: ["pi-bench", _b(e)], "--repeat"), (lambda e: ["pi-bench", _b(e)], "--threads"),
    (lambda e: ["bitstream", _b(e)], "--images"), (lambda e: ["bitstream", _b(e)], "--jobs"),
    (lambda e: ["export", str(e.tmp)], "--images"), (lambda e: ["train", "models/demo-bcnn-mnist.yaml"], "--epochs"),
    (lambda e: ["train", "models/demo-bcnn-mnist.yaml"], "--limit-train"),
    (lambda e: ["compile", str(e.model), "--out", str(e.tmp / "o")], "--verify-images"),
]
for i, (prefix, opt) in enumerate(COUNT_OPTIONS):
    for bad in ("0", "-5", "abc", "1.5", "99999999999"):
        add(Case(f"count-{i}-{opt}-{bad}", "options", lambda e, p=prefix, o=opt, b=bad: [*p(e), o, b], opt))

NUMBER_OPTIONS = [  # (command prefix, option, values outside its range besides the non-numbers)
    (lambda e: ["compile", str(e.model), "--out", str(e.tmp / "o"), "--board", "pynq-z2"], "--clock-mhz",
     ("-1", "0", "5000")),
    (lambda e: ["compile", str(e.model), "--out", str(e.tmp / "o"), "--board", "pynq-z2"], "--margin", ("-0.1", "1")),
    (lambda e: ["compile", str(e.model), "--out", str(e.tmp / "o"), "--clock-mhz", "100"], "--target-fps",
     ("-1", "0")),
    (lambda e: ["bitstream", _b(e)], "--clock-mhz", ("-1", "0", "5000")),
]
for i, (prefix, opt, out_of_range) in enumerate(NUMBER_OPTIONS):
    for bad in ("nan", "inf", "-inf", "x1", *out_of_range):
        add(Case(f"number-{i}-{opt}-{bad}", "options", lambda e, p=prefix, o=opt, b=bad: [*p(e), o, b], None))

CHOICES = [
    ("device", lambda e: ["train", "models/demo-bcnn-mnist.yaml", "--device", "tpu"], "--device"),
    ("run-target", lambda e: ["run", _b(e), "--target", "nope", "--input", str(e.x), "--output", "y.npz"], "nope"),
    ("run-target-empty", lambda e: ["run", _b(e), "--target", "", "--input", str(e.x), "--output", "y.npz"], "''"),
    ("pi-target", lambda e: ["pi-bench", _b(e), "--target", "nope"], "nope"),
    ("pi-host", lambda e: ["pi-bench", _b(e), "--host", "-oProxyCommand=x"], "--host"),
    ("pi-host-space", lambda e: ["pi-bench", _b(e), "--host", "pi@1.2.3.4; rm"], "--host"),
    ("flow", lambda e: ["bitstream", _b(e), "--flow", "nope"], "nope"),
    ("checkpoint", lambda e: ["export", str(e.tmp), "--checkpoint", "first"], "--checkpoint"),
    ("from-step", lambda e: ["compile", str(e.model), "--out", str(e.tmp / "o"), "--from-step", "nope"], "nope"),
    ("to-step", lambda e: ["compile", str(e.model), "--out", str(e.tmp / "o"), "--to-step", "nope"], "nope"),
    ("board", lambda e: ["compile", str(e.model), "--out", str(e.tmp / "o"), "--board", "nope"], "nope"),
    ("board-path", lambda e: ["compile", str(e.model), "--out", str(e.tmp / "o"), "--board", "../../etc/x"], "../"),
    ("board-space", lambda e: ["compile", str(e.model), "--out", str(e.tmp / "o"), "--board", "a b"], "a b"),
    ("bitstream-board", lambda e: ["bitstream", _b(e), "--board", "nope"], "nope"),
    ("compare-targets", lambda e: ["compare", _b(e), "--targets", "csim,nope"], "nope"),
    ("compare-dataset", lambda e: ["compare", _b(e), "--dataset", "imagenet"], "imagenet"),
    ("fit-and-fps", lambda e: ["compile", str(e.model), "--out", str(e.tmp / "o"), "--fit", "--target-fps", "10"],
     "--fit"),
    ("fit-no-board", lambda e: ["compile", str(e.model), "--out", str(e.tmp / "o"), "--fit"], "--board"),
    ("fps-no-clock", lambda e: ["compile", str(e.model), "--out", str(e.tmp / "o"), "--target-fps", "9"],
     "--clock-mhz"),
    ("clock-no-fps", lambda e: ["compile", str(e.model), "--out", str(e.tmp / "o"), "--clock-mhz", "9"],
     "--target-fps"),
    ("fold-to-step", lambda e: ["compile", str(e.model), "--out", str(e.tmp / "o"), "--board", "pynq-z2",
                                "--to-step", "lower"], "--to-step"),
    ("fold-only-no-options", lambda e: ["compile", str(e.model), "--out", _b(e), "--from-step", "fold"],
     "--from-step fold"),
    ("folding-missing", lambda e: ["compile", str(e.model), "--out", str(e.tmp / "o"), "--folding", "nope.json"],
     "nope.json"),
    ("folding-and-fit", lambda e: ["compile", str(e.model), "--out", str(e.tmp / "o"), "--board", "pynq-z2",
                                   "--fit", "--folding", str(e.x)], "--folding"),
    ("unknown-command", lambda e: ["frobnicate"], "frobnicate"),
    ("unknown-option", lambda e: ["compare", _b(e), "--frob"], "--frob"),
    ("run-no-target", lambda e: ["run", _b(e), "--input", str(e.x), "--output", "y.npz"], "--target"),
    ("run-no-input", lambda e: ["run", _b(e), "--target", "golden", "--output", "y.npz"], "--input"),
    ("compile-no-out", lambda e: ["compile", str(e.model)], "--out"),
    ("no-command", lambda e: [], None),
]
for cid, argv, names in CHOICES:
    add(Case(f"option-{cid}", "options", argv, names))

# --- input and output files of `run` --------------------------------------------------------------------------

def _run(e: Env, inp, out=None, target="golden") -> list[str]:
    return ["run", _b(e), "--target", target, "--input", str(inp), "--output", str(out or e.tmp / "y.npz")]


def _npy(e: Env, name: str, a: np.ndarray) -> str:
    np.save(e.tmp / name, a, allow_pickle=True)
    return str(e.tmp / name)


def GOOD() -> np.ndarray:  # noqa: N802 - reads as the constant it stands for
    return np.random.default_rng(1).random((3, 1, 28, 28), dtype=np.float32)


ARRAYS = {
    "empty": lambda: np.zeros((0, 1, 28, 28), np.float32), "shape-chw": lambda: GOOD()[0],
    "shape-hw": lambda: np.zeros((2, 28, 28), np.float32), "shape-c3": lambda: np.zeros((2, 3, 28, 28), np.float32),
    "shape-small": lambda: np.zeros((2, 1, 27, 28), np.float32), "shape-5d": lambda: GOOD()[None],
    "shape-flat": lambda: np.zeros((2, 784), np.float32), "ints": lambda: (GOOD() * 255).astype(np.uint8),
    "int64": lambda: np.ones((2, 1, 28, 28), np.int64), "bool": lambda: np.ones((2, 1, 28, 28), bool),
    "complex": lambda: GOOD().astype(np.complex64), "strings": lambda: np.array(["a", "b"]),
    "negative": lambda: GOOD() - 0.5, "above-one": lambda: GOOD() + 0.6, "pixels-255": lambda: GOOD() * 255,
    "nan": lambda: np.where(GOOD() > 0.5, np.nan, 0.5).astype(np.float32),
    "inf": lambda: np.where(GOOD() > 0.5, np.inf, 0.5).astype(np.float32),
    "object": lambda: np.array([GOOD(), None], dtype=object), "scalar": lambda: np.float32(0.5),
}
for name, make in ARRAYS.items():
    add(Case(f"input-{name}", "inputs", lambda e, n=name, m=make: _run(e, _npy(e, f"{n}.npy", m())), f"{name}.npy"))
FILES = {
    "missing": None, "junk": b"not an npy file", "empty-file": b"", "text": b"0.5, 0.5\n",
    "truncated": "truncated", "huge-header": "huge", "pickle": b"\x80\x04K\x01.",
}


def _input_file(e: Env, name: str, spec) -> str:
    path = e.tmp / f"{name}.npy"
    if spec == "truncated":
        np.save(path, GOOD())
        path.write_bytes(path.read_bytes()[:300])
    elif spec == "huge":
        np.save(path, GOOD())
        data = path.read_bytes().replace(b"(3, 1, 28, 28)", b"(999999999999, 1, 28, 28)")
        path.write_bytes(data)
    elif spec is not None:
        path.write_bytes(spec)
    return str(path)


for name, spec in FILES.items():
    add(Case(f"input-file-{name}", "inputs", lambda e, n=name, s=spec: _run(e, _input_file(e, n, s)), f"{name}.npy"))
add(Case("input-folder", "inputs", lambda e: _run(e, e.tmp), lambda e: str(e.tmp)),
    Case("input-npz-two", "inputs", lambda e: (np.savez(e.tmp / "two.npz", a=GOOD(), b=GOOD()),
                                               _run(e, e.tmp / "two.npz"))[1], "two.npz"),
    Case("input-npz-none", "inputs", lambda e: (np.savez(e.tmp / "none.npz"), _run(e, e.tmp / "none.npz"))[1],
         "none.npz"),
    Case("output-folder", "inputs", lambda e: _run(e, e.x, e.tmp), lambda e: str(e.tmp)),
    Case("output-under-file", "inputs", lambda e: _run(e, e.x, f"{e.x}/y.npz"), "x.npy"),
    Case("output-readonly", "inputs", lambda e: _run(e, e.x, "/proc/y.npz"), "/proc/y.npz"))
for target in ("qonnx", "cpu", "csim"):
    add(Case(f"input-nan-{target}", "inputs", lambda e, t=target: _run(e, _npy(e, "n.npy", ARRAYS["nan"]()),
                                                                      target=t), "n.npy"))

# --- recipes ------------------------------------------------------------------------------------------------

def _recipe(e: Env, text: str | bytes) -> list[str]:
    path = e.file("recipe.yaml", text)
    return ["train", str(path), "--out", str(e.tmp / "run")]


BASE = "name: r\nnet: {arch: bcnn, width: 0.125}\ndata: {dataset: mnist-5k}\n"
RECIPES = {
    "empty": "", "not-yaml": "net: [unclosed\n", "list": "- a\n- b\n", "scalar": "42\n", "binary": b"\xff\xfe\x00",
    "duplicated-key": BASE + "net: {arch: cnv}\n", "duplicated-inner": "net: {arch: bcnn, arch: cnv}\n",
    "python-tag": "name: !!python/object/apply:os.system ['true']\n", "unknown-key": BASE + "nett: {}\n",
    "unknown-inner": "net: {arch: bcnn, depth: 3}\n", "net-not-map": "net: bcnn\n",
}
BAD_VALUES = {
    "net.arch": ["resnet", 3], "net.width": [0, -1, ".inf", ".nan", 100, "wide"], "net.weight_bits": [3, 0, "'one'"],
    "net.act_bits": [16], "net.in_bits": [1, 0], "data.dataset": ["imagenet", 1], "data.image_size": [0, 4, 99999],
    "data.augment": ["mixup"], "train.epochs": [0, -1, 1.5, "ten", 10**9], "train.batch_size": [0, 10**7],
    "train.lr": [0, -0.1, ".inf", ".nan", 1e9, "fast"], "train.lr_min": [-1, 5, ".nan"],
    "train.lr_decay": [0, 1.5, ".inf"], "train.schedule": ["step"], "train.loss": ["mse"],
    "train.label_smoothing": [1, -0.1, ".nan"], "train.weight_decay": [-1, ".inf", 2],
    "train.seed": [1.5, "x"], "train.limit_train": [0, -3], "train.amp": ["maybe", 2],
    "train.time_budget_s": [0, -5, ".nan"], "train.min_steps": [0], "train.bn_recalibration_batches": [-1],
}
for name, text in RECIPES.items():
    add(Case(f"recipe-{name}", "recipes", lambda e, t=text: _recipe(e, t), "recipe.yaml"))
for key, values in BAD_VALUES.items():
    section, field_name = key.split(".")
    for v in values:
        text = f"name: r\n{section}: {{{field_name}: {v}}}\n"
        if section != "data":
            text += "data: {dataset: mnist-5k}\n"
        add(Case(f"recipe-{key}={v}", "recipes", lambda e, t=text: _recipe(e, t), "recipe.yaml"))
add(Case("recipe-missing", "recipes", lambda e: ["train", str(e.tmp / "nope.yaml")], "nope.yaml"),
    Case("recipe-folder", "recipes", lambda e: ["train", str(e.tmp)], lambda e: str(e.tmp)))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("bad-input-cli")
    make_root(r)
    return r


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, root, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative outputs land in the case's folder
    run_case(case, Env(root, tmp_path), capsys)
