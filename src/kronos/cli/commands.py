"""Registers every command group on the app. Each group lives in its own module."""

from kronos.cli import forecast  # noqa: F401
from kronos.cli import train  # noqa: F401
from kronos.cli import evaluate  # noqa: F401
from kronos.cli import probabilistic  # noqa: F401
