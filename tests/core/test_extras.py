"""Optional dependencies: every optional import goes through ``kronos.core.extras.require``, which names the extra."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import kronos.cli.commands  # noqa: F401  (registers every command on the app)
from kronos.core.extras import EXTRAS, MissingExtraError, require

SRC = Path(__file__).resolve().parents[2] / "src" / "kronos"


def test_optional_imports_go_through_require():
    # server/* is imported only through kronos.server, which requires the extra first; pyqlib_available probes
    allowed = {
        "kronos/server/app.py",
        "kronos/server/docs.py",
        "kronos/server/runner.py",
        "kronos/bars/qlib.py:pyqlib_available",
    }
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        rel = str(path.relative_to(SRC.parent))
        if rel in allowed or rel == "kronos/core/extras.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        probes = {
            n.lineno
            for f in ast.walk(tree)
            if isinstance(f, ast.FunctionDef) and f"{rel}:{f.name}" in allowed
            for n in ast.walk(f)
            if hasattr(n, "lineno")
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                tops = [node.module.split(".")[0]]
            else:
                continue
            if any(t in EXTRAS for t in tops) and node.lineno not in probes:
                offenders.append(f"{rel}:{node.lineno}")
    assert not offenders, f"optional imports outside kronos.core.extras.require: {offenders}"


def test_require_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "properscoring", None)
    with pytest.raises(MissingExtraError, match=r'pip install "kronos-kline\[eval\]"') as info:
        require("eval", "properscoring")
    assert info.value.extra == "eval" and isinstance(info.value, ImportError)
    assert require("eval", "json").__name__ == "json"  # present modules come back
