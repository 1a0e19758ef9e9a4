"""The ``kronos`` command line: one Typer app, one module per command group.

The command line imports the library (``kronos.*``); no library module imports it. Every command
reports user errors the same way (:mod:`kronos.cli.errors`): one ``error:`` line, exit status 2, and
``kronos --debug COMMAND ...`` for the traceback.
"""

from __future__ import annotations

from kronos.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``kronos`` console script and of ``python -m kronos``."""
    from kronos.cli import commands  # noqa: F401  (registers the command groups on ``app``)

    app()
