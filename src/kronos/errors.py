"""Exceptions users catch: one module so that model code, front-ends and the CLI share the same classes."""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """User input that cannot be used (a column, row, value or option), with what and where named."""
