"""The ``kronos`` command line: one Typer app, one module per command group."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="kronos",
    help="Kronos: forecast, evaluate and train foundation models of candlestick (K-line) data.",
    no_args_is_help=True,
    add_completion=False,
)


def main() -> None:
    """Entry point of the ``kronos`` console script and of ``python -m kronos``."""
    from kronos.cli import commands  # noqa: F401  (registers the command groups on ``app``)

    app()
