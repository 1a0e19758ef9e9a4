"""Optional dependencies: import one, or fail with an error that names the extra that installs it.

The core install (``pip install kronos-kline``) forecasts; evaluation, plots, exchange calendars, the
HTTP server, training configs and pyqlib come with extras. Every optional import in the package goes
through :func:`require`, so a missing package always reads the same way: which package, for what, and
``pip install "kronos-kline[EXTRA]"``. :class:`MissingExtraError` is an :class:`InputError` (the
environment, not the code, is at fault), so the command line reports it as one ``error:`` line.
"""

from __future__ import annotations

import sys
from types import ModuleType

from kronos.core.errors import InputError

__all__ = ["EXTRAS", "MissingExtraError", "install_hint", "require"]

#: Which extra of ``pyproject.toml`` provides each optional top-level package.
EXTRAS: dict[str, str] = {
    "arch": "eval",
    "statsforecast": "eval",
    "properscoring": "eval",
    "matplotlib": "eval",
    "mplfinance": "eval",
    "plotly": "eval",
    "scipy": "eval",
    "empyrical": "eval",
    "exchange_calendars": "calendars",
    "fastapi": "server",
    "starlette": "server",
    "uvicorn": "server",
    "multipart": "server",
    "fastapi_offline": "server",
    "yaml": "train",
    "tensorboard": "train",
    "qlib": "qlib",
}


class MissingExtraError(InputError, ImportError):
    """An optional dependency is not installed; the message says which extra installs it."""

    def __init__(self, message: str, *, extra: str, module: str) -> None:
        super().__init__(message)
        self.extra = extra
        self.module = module
        self.name = module  # ImportError's attribute


def install_hint(extra: str) -> str:
    """The command that installs ``extra``: ``pip install "kronos-kline[eval]"``."""
    return f'pip install "kronos-kline[{extra}]"'


def require(extra: str, module: str, *, purpose: str | None = None) -> ModuleType:
    """Import ``module`` (dotted names allowed) or raise :class:`MissingExtraError` naming ``extra``.

    ``purpose`` says what needs it ("evaluation metrics"), shown in the message when given.
    A package that is installed but fails to import for another reason (a broken build) is also reported
    here, with the original error appended, since reinstalling the extra is the fix for both.
    """
    top = module.split(".")[0]
    try:
        # the top package first: a sub-module already imported must not hide that the package is gone;
        # through __import__, so an import hook sees the attempt as it would an import statement
        __import__(top)
        __import__(module)
        return sys.modules[module]
    except ImportError as exc:
        missing = getattr(exc, "name", None) or top
        why = f" (needed for {purpose})" if purpose else ""
        detail = "" if missing.split(".")[0] == top else f" ({type(exc).__name__}: {exc})"
        raise MissingExtraError(
            f"{top} is not installed{why}; it comes with the {extra!r} extra: {install_hint(extra)}{detail}",
            extra=extra,
            module=top,
        ) from None
