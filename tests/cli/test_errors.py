"""The command line's contract: every command fails the same way, shares its defaults and its column names,
and the library never imports the command line.

Runs in a bare clone: bundled samples (kronos.bars.samples) and the hidden ``--random-tiny`` model only.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import kronos.cli.commands  # noqa: F401  (registers every command on the app)
from kronos.bars.samples import sample_data_path
from kronos.cli import app
from kronos.core.errors import ParameterError
from tests.helpers import leaf_commands as _commands

SRC = Path(__file__).resolve().parents[2] / "src" / "kronos"
GOOGL = str(sample_data_path("googl"))


def _user_errors(tmp_path: Path) -> dict[tuple[str, ...], list[str]]:
    """One command line per command that fails because of the user (a file that does not exist)."""
    missing = str(tmp_path / "missing.csv")
    config = str(tmp_path / "missing.yaml")
    empty = tmp_path / "empty_checkpoint"
    empty.mkdir()
    return {
        ("forecast",): ["forecast", "--data", missing, "--random-tiny"],
        ("demo",): ["demo", "--sample", "no-such-sample", "--random-tiny"],
        ("forecast-dist",): ["forecast-dist", "--data", missing, "--random-tiny"],
        ("evaluate",): ["evaluate", "--data", missing, "-f", "drift", "--out", str(tmp_path / "ev")],
        ("backtest",): ["backtest", "--forecasts", str(tmp_path / "f.parquet"), "--out", str(tmp_path / "bt")],
        ("serve",): ["serve", "--model", str(empty)],
        ("train", "tokenizer"): ["train", "tokenizer", config],
        ("train", "predictor"): ["train", "predictor", config],
        ("train", "corpus"): ["train", "corpus", config],
        ("train", "check"): ["train", "check", config],
    }


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def test_every_command_is_covered_by_the_error_contract(tmp_path):
    assert set(_user_errors(tmp_path)) == set(_commands())


@pytest.mark.parametrize("words", list(_commands()), ids=" ".join)
def test_a_user_error_is_one_line_and_exit_2_and_debug_shows_it(words, tmp_path):
    args = _user_errors(tmp_path)[words]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = _error_lines(result.output)
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    # the message names what was wrong: the file, the sample or the checkpoint folder
    assert any(part in lines[0] for part in ("missing", "no-such-sample", "empty_checkpoint", "f.parquet")), lines
    debug = CliRunner().invoke(app, ["--debug", *args])
    assert debug.exit_code == 1 and not _error_lines(debug.output)
    assert isinstance(debug.exception, (ValueError, OSError)), repr(debug.exception)


def test_bad_flag_values_and_unknown_commands_are_one_error_line():
    for args, needle in (
        (["forecast", "--data", GOOGL, "--lookback", "0"], "--lookback"),
        (["forecast"], "--data"),
        (["no-such-command"], "no-such-command"),
        (["train", "check", "x.yaml", "--kind", "both"], "--kind"),
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        lines = _error_lines(result.output)
        assert len(lines) == 1 and needle in lines[0], (args, result.output)


@pytest.mark.slow
def test_debug_prints_the_traceback_from_a_real_process(tmp_path):
    cmd = [sys.executable, "-m", "kronos", "--debug", "forecast", "--data", str(tmp_path / "nope.csv")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "Error: " in proc.stderr and "nope.csv" in proc.stderr
    plain = subprocess.run([c for c in cmd if c != "--debug"], capture_output=True, text=True, timeout=120)
    assert plain.returncode == 2 and plain.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nope.csv'} does not exist"
    ]


def test_library_errors_name_parameters_and_the_cli_names_flags(tmp_path):
    from kronos.evaluation.backtest_run import run_backtest

    with pytest.raises(ParameterError) as info:
        run_backtest(tmp_path / "bt", strategy="pairs")
    assert str(info.value).startswith("strategy: ") and "--" not in str(info.value)
    result = CliRunner().invoke(app, ["backtest", "--out", str(tmp_path / "bt"), "--strategy", "pairs"])
    assert result.exit_code == 2 and _error_lines(result.output) == [
        "error: --strategy: must be 'topk' or 'single', got 'pairs'"
    ]
    # a library parameter spelled differently on the command line: forecasts_path is --forecasts
    result = CliRunner().invoke(app, ["backtest", "--out", str(tmp_path / "bt"), "--forecasts", "nope.parquet"])
    assert _error_lines(result.output) == ["error: --forecasts: nope.parquet: no such file"]


def _flagged_strings(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            for sub in ast.walk(node.exc):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    words = sub.value.replace("(", " ").split()
                    if any(w.startswith("--") and len(w) > 2 and w[2].isalpha() for w in words):
                        found.append(sub.value)
    return found


def _library_trees():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent)
        if rel.parts[:2] == ("kronos", "cli") or str(rel) == "kronos/__main__.py":  # the command line itself
            continue
        yield rel, ast.parse(path.read_text(encoding="utf-8"))


def test_no_library_module_imports_the_cli():
    importers = []
    for rel, tree in _library_trees():
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if any(n == "kronos.cli" or n.startswith("kronos.cli.") for n in names):
                importers.append(f"{rel}:{node.lineno}")
    assert not importers, f"library modules import kronos.cli: {importers}"


def test_no_library_error_names_a_command_line_flag():
    flagged = [f"{rel}: {s!r}" for rel, tree in _library_trees() for s in _flagged_strings(tree)]
    assert not flagged, f"library errors name command-line flags: {flagged}"


def _forget(monkeypatch, prefix: str) -> None:
    """Drop ``prefix`` modules from sys.modules for this test, so they are imported again (then restored)."""
    for name in [n for n in sys.modules if n == prefix or n.startswith(prefix + ".")]:
        monkeypatch.delitem(sys.modules, name)


def test_evaluate_without_the_eval_extra_names_it(monkeypatch, tmp_path):
    _forget(monkeypatch, "kronos.evaluation")
    monkeypatch.setitem(sys.modules, "properscoring", None)
    result = CliRunner().invoke(app, ["evaluate", "--data", GOOGL, "-f", "drift", "--out", str(tmp_path / "ev")])
    assert result.exit_code == 2, result.output
    lines = _error_lines(result.output)
    assert len(lines) == 1 and "properscoring" in lines[0] and 'pip install "kronos-kline[eval]"' in lines[0]


def test_serve_without_the_server_extra_names_it(monkeypatch):
    _forget(monkeypatch, "kronos.server")
    monkeypatch.setitem(sys.modules, "fastapi", None)
    result = CliRunner().invoke(app, ["serve", "--port", "0"])
    assert result.exit_code == 2, result.output
    lines = _error_lines(result.output)
    assert len(lines) == 1 and "fastapi" in lines[0] and "kronos-kline[server]" in lines[0]
