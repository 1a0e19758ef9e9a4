"""Library notices as one ``note:`` line on standard error.

The library says what a user should know but that is not an error (bars built from closes, a run that will
take long) with a :class:`kronos.core.errors.Notice` warning; Python would print it with a file name, a line
number and a source line. A command prints it as ``note: <message>``, once per message (once per run for a
category with ``once = True``, such as the close-only notice of a folder of files), and every other warning as
Python does.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kronos.core.errors import Notice, ParameterNotice

__all__ = ["notes"]


@contextmanager
def notes(flag_of: Any = None) -> Iterator[None]:
    """Within the block, :class:`Notice` warnings print as one ``note:`` line each (repeats are dropped); a
    :class:`ParameterNotice` names the flag ``flag_of(param)`` gives, when it gives one."""
    seen: set[str] = set()
    original = warnings.showwarning

    def show(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None):
        if issubclass(category, Notice):
            flag = flag_of(message.param) if isinstance(message, ParameterNotice) and flag_of else None
            text = " ".join((message.reworded(flag) if flag else str(message)).split())
            key = category.__name__ if getattr(category, "once", False) else text  # e.g. one close-only note a run
            if key not in seen:
                seen.add(key)
                print(f"note: {text}", file=sys.stderr, flush=True)
            return
        original(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", Notice)
        warnings.showwarning = show
        yield
