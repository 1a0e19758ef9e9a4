"""Helpers that several test modules use (fixtures shared by several modules live in ``conftest.py``)."""

from __future__ import annotations

import typer.main
from typer.testing import CliRunner, Result

import kronos.cli.commands  # noqa: F401  (registers every command on the app)
from kronos.cli import app


def leaf_commands(group=None, prefix=()) -> dict[tuple[str, ...], object]:
    """Every leaf command of the app, keyed by its words (``("train", "check")``)."""
    group = group or typer.main.get_command(app)
    found = {}
    for name, cmd in group.commands.items():
        if getattr(cmd, "commands", None):
            found |= leaf_commands(cmd, (*prefix, name))
        else:
            found[(*prefix, name)] = cmd
    return found


def cli_ok(args: list[str]) -> Result:
    """Run ``kronos ARGS`` in process and require success (the output and exception are the message); the result
    back, for what it printed."""
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def cli_run(args: list[str]) -> Result:
    """Run ``kronos ARGS`` in process, whatever its exit code (for refusals)."""
    return CliRunner().invoke(app, args)


def bars_of(df) -> list[dict]:
    """A bars frame as the JSON records the server's API takes (ISO timestamps)."""
    out = df[["timestamps", "open", "high", "low", "close", "volume"]].copy()
    out["timestamps"] = out["timestamps"].map(lambda t: t.isoformat())
    return out.to_dict("records")
