"""Exceptions users catch: one module so that model code, front-ends and the CLI share the same classes.

A library function cannot know whether it was called from Python, from the ``kronos`` command line or
from the HTTP server, so its messages name its own parameters (``benchmark: not 'equal', ...``), never a
command-line flag. :class:`ParameterError` keeps the parameter's name apart from the rest of the message,
so the command line reports the same problem as ``--benchmark: not 'equal', ...``.
"""

from __future__ import annotations

__all__ = ["InputError", "Notice", "ParameterError", "ParameterNotice"]


class InputError(ValueError):
    """User input that cannot be used (a column, row, value or option), with what and where named."""


class _AboutParameter:
    """A message about the parameter ``param``: ``str()`` is ``"{param}: {detail}"``, and a door that calls the
    parameter otherwise (a command-line flag, a JSON field) rewords it with :meth:`reworded`."""

    def __init__(self, param: str, detail: str) -> None:
        super().__init__(f"{param}: {detail}")
        self.param = param
        self.detail = detail

    def reworded(self, name: str) -> str:
        """The message with the parameter called ``name``."""
        return f"{name}: {self.detail}"


class ParameterError(_AboutParameter, InputError):
    """A bad value of the parameter ``param``; ``str()`` is ``"{param}: {detail}"``."""


class Notice(UserWarning):
    """Something the user should know that is not an error (input the library adapted, a run that will take
    long): a warning in Python, one ``note:`` line on the command line."""


class ParameterNotice(_AboutParameter, Notice):
    """A notice about the parameter ``param`` (``top_k: covers every series ...``); the command line rewords it
    with its flag, as it does :class:`ParameterError`."""
