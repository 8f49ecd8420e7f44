"""The structure rules of docs/architecture.md, checked on the source: one-way imports (no cycle in the import
graph, function-level and TYPE_CHECKING imports included), targets named only by the registry and their own
back-end folders, modules of a readable size."""

from __future__ import annotations

import ast
from pathlib import Path

import bnn_flow
from bnn_flow.backends import registry

PACKAGE = Path(bnn_flow.__file__).parent
MAX_LINES = 400  # the guideline; a module over it must be split by concern
# the same word meaning something else: a torch device in training, `train --device` and `zoo-pack --device`
# and "board": the FPGA board of a folding or of a bitstream flow (report, vendor flow, demo)
OTHER_MEANINGS = {("bnn_flow.train", "cpu"), ("bnn_flow.cli", "cpu"), ("bnn_flow.zoo", "cpu"),
                  ("bnn_flow.backends.hls", "board"), ("bnn_flow.demo", "board")}


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PACKAGE.rglob("*.py")):
        parts = p.relative_to(PACKAGE.parent).with_suffix("").parts
        if "boards" in parts and "pynq" in parts:  # the PYNQ driver runs on the board, outside the package
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every bnn_flow module `name` imports, wherever the import statement is."""
    is_pkg = path.name == "__init__.py"
    deps = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            deps |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:  # `from pkg import submodule` imports the submodule
                deps.add(f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod)
    return {d for d in deps if d in modules and d != name}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_targets_are_named_only_by_the_registry_and_their_back_end():
    """A string literal equal to a target name may appear only in registry.py, in the back-end folder that
    implements the target, and in the reference back-end (golden, qonnx, torch)."""
    owners = {}
    for target, entry in registry.TARGETS.items():
        module = entry.split(":")[0]
        parts = module.split(".")
        owners[target] = ".".join(parts[:3]) if parts[:2] == ["bnn_flow", "backends"] and len(parts) > 3 else module
    offenders = []
    for name, path in _modules().items():
        if name == "bnn_flow.backends.registry":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in owners:
                target = node.value
                if target in ("golden", "qonnx", "torch") or name.startswith(owners[target]):
                    continue
                if any(name.startswith(m) and target == t for m, t in OTHER_MEANINGS):
                    continue
                offenders.append(f"{name}:{node.lineno} names target {target!r}")
    assert not offenders, offenders


def test_modules_are_readable_sizes():
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines: {long}"
