"""The ``kronos`` command line: one Typer app, one module per command group.

The command line imports the library (``kronos.*``); no library module imports it. Every command
reports user errors the same way (:mod:`kronos.cli.errors`): one ``error:`` line, exit status 2, and
``kronos --debug COMMAND ...`` for the traceback.
"""

from __future__ import annotations

import typer

from kronos.cli.errors import KronosGroup

app = typer.Typer(
    name="kronos",
    help="Kronos: forecast, evaluate and train foundation models of candlestick (K-line) data.",
    no_args_is_help=True,
    add_completion=False,
    cls=KronosGroup,
    pretty_exceptions_enable=False,
)


@app.callback()
def _global_options(
    debug: bool = typer.Option(
        False, "--debug", help="Show the full traceback of an error instead of one 'error:' line."
    ),
) -> None:
    """Kronos: forecast, evaluate and train foundation models of candlestick (K-line) data."""


def main() -> None:
    """Entry point of the ``kronos`` console script and of ``python -m kronos``."""
    from kronos.cli import commands  # noqa: F401  (registers the command groups on ``app``)

    app()
