"""Registers every command group on the app. Each group lives in its own module."""

from kronos.cli import (
    evaluate,  # noqa: F401
    forecast,  # noqa: F401
    probabilistic,  # noqa: F401
    serve,  # noqa: F401
    train,  # noqa: F401
)
