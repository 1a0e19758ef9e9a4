"""The layering rule of docs/architecture.md, enforced on the import graph of ``src/kronos``.

Every module belongs to one layer; a module may import modules of its own layer or of layers below it,
never above. Imports inside functions count too: a lazy import is still a dependency. The model core
(blocks, tokenizer/model, generation) imports no pandas, and nothing inside the package imports the
``kronos`` facade (``kronos/__init__.py``), which exists for users.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Bottom to top; the docs/architecture.md table lists the same names. Each layer is a subpackage (a prefix
#: covers the whole package); ``kronos`` alone is the facade, ``kronos/__init__.py``.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("kronos.core",)),
    ("model", ("kronos.model",)),
    ("inference", ("kronos.inference",)),
    ("bars", ("kronos.bars",)),
    ("forecasting", ("kronos.forecasting",)),
    # the facade offers kronos.cross_validation (evaluation), so it sits with the workflows; nothing imports it
    ("workflows", ("kronos", "kronos.training", "kronos.evaluation")),
    ("server", ("kronos.server",)),
    ("cli", ("kronos.cli", "kronos.__main__")),
]

#: Layers that hold model code: torch only, no pandas (data frames stop at the forecasting layer).
PANDAS_FREE = {"core", "model", "inference"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / "kronos").rglob("*.py"))}


def layer_of(module: str) -> tuple[int, str] | None:
    """The layer (rank, name) of a module: the longest prefix listed in ``LAYERS`` wins."""
    best: tuple[int, int, str] | None = None
    for rank, (name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            covers = module == prefix or (prefix != "kronos" and module.startswith(prefix + "."))  # the facade: itself
            if covers and (best is None or len(prefix) > best[0]):
                best = (len(prefix), rank, name)
    return None if best is None else (best[1], best[2])


def imports_of(module: str, source: str, known: set[str], is_package: bool) -> set[str]:
    """The ``kronos`` modules a source imports (relative imports resolved; ``from a import b`` is ``a.b``
    when ``a.b`` is a module, else ``a``)."""
    found: set[str] = set()
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "kronos")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "kronos":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    known = set(modules)
    return {
        name: imports_of(name, path.read_text(encoding="utf-8"), known, path.name == "__init__.py")
        for name, path in modules.items()
    }


def test_every_module_has_a_layer():
    """A new module is placed in a layer on purpose (here and in docs/architecture.md)."""
    unplaced = sorted(m for m in all_modules() if layer_of(m) is None)
    assert not unplaced, f"modules without a layer in tests/test_architecture.py LAYERS: {unplaced}"


def test_imports_point_down():
    violations = []
    for module, targets in import_graph().items():
        own = layer_of(module)
        for target in sorted(targets):
            theirs = layer_of(target)
            if own is not None and theirs is not None and theirs[0] > own[0]:
                violations.append(f"{module} ({own[1]}) imports {target} ({theirs[1]})")
    assert not violations, "imports that point up the layers:\n" + "\n".join(violations)


def test_library_never_imports_the_cli_or_the_facade():
    bad = []
    for module, targets in import_graph().items():
        if module.startswith("kronos.cli") or module == "kronos.__main__":
            continue
        bad += [f"{module} imports {t}" for t in targets if t == "kronos.cli" or t.startswith("kronos.cli.")]
        if module != "kronos":
            bad += [f"{module} imports the kronos facade" for t in targets if t == "kronos"]
    assert not bad, "\n".join(bad)


def test_model_core_is_pandas_free():
    offenders = []
    for module, path in all_modules().items():
        layer = layer_of(module)
        if layer is None or layer[1] not in PANDAS_FREE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{module} imports {n}" for n in names if n.split(".")[0] == "pandas"]
    assert not offenders, "\n".join(offenders)


#: The longest a source file may grow before it is split along an idea boundary.
MAX_LINES = 400


def test_the_folders_are_the_layers():
    """Only the facade and ``python -m kronos`` sit at the top; every other module lives in its layer's folder."""
    top = sorted(p.name for p in (SRC / "kronos").glob("*.py"))
    assert top == ["__init__.py", "__main__.py"], top


def test_no_file_over_the_line_limit():
    long = {
        m: n for m, p in all_modules().items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them along an idea boundary): {long}"


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles():
    """No two modules import each other, directly or around a circle (type-only and lazy imports count)."""
    graph = {m: {t for t in targets if t != m} for m, targets in import_graph().items()}
    assert not import_cycles(graph), import_cycles(graph)


def test_cycle_finder_sees_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_documented_layers_match():
    """docs/architecture.md names every layer of the rule, in the same order."""
    doc = (SRC.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    positions = [doc.find(f"**{name}**") for name, _ in LAYERS]
    assert all(p >= 0 for p in positions), [n for (n, _), p in zip(LAYERS, positions) if p < 0]
    assert positions == sorted(positions)


@pytest.mark.parametrize(
    ("module", "source", "is_package", "expected"),
    [
        ("kronos.evaluation.rolling", "from .metrics import crps", False, {"kronos.evaluation.metrics"}),
        ("kronos.evaluation", "from . import metrics", True, {"kronos.evaluation.metrics"}),
        (
            "kronos.server.app",
            "from ..forecasting.predictor import KronosPredictor",
            False,
            {"kronos.forecasting.predictor"},
        ),
        ("kronos.forecasting.panel", "def f():\n    from kronos.cli.forecast import x", False, {"kronos.cli.forecast"}),
        ("kronos.forecasting.panel", "import numpy, kronos.model.kronos", False, {"kronos.model.kronos"}),
    ],
)
def test_import_resolution(module, source, is_package, expected):
    """The checker sees relative and lazy imports (else the rule above could pass by not looking)."""
    known = {"kronos.evaluation.metrics", "kronos.forecasting.predictor", "kronos.cli.forecast", "kronos.model.kronos"}
    assert imports_of(module, source, known, is_package) == expected


def test_rule_catches_an_upward_import():
    own, theirs = layer_of("kronos.model.kronos"), layer_of("kronos.forecasting.predictor")
    assert own is not None and theirs is not None and theirs[0] > own[0]
    assert layer_of("kronos.not_a_module") is None  # the facade's entry claims only kronos/__init__.py
