"""The Typer application every command group registers on, and the options that come before a command
(``--debug``). Its own module so that command modules import it without importing the package that
loads them."""

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
