"""Where the commands print: rich consoles that never truncate a table written to a file or a pipe.

On a terminal rich fits tables to the window. Written to a file or a pipe, rich would assume 80 columns
and cut wide tables (``close q0.9`` becomes ``clo…``), which makes the output useless to a script; there
the console is made wide enough for any table instead.
"""

from __future__ import annotations

from rich.console import Console

__all__ = ["console", "err_console"]

PIPE_WIDTH = 1000  # columns assumed when not on a terminal: wide enough for every table the commands print


def _console(stderr: bool) -> Console:
    probe = Console(stderr=stderr)
    if probe.is_terminal:
        return probe
    return Console(stderr=stderr, width=PIPE_WIDTH, soft_wrap=True)


def console() -> Console:
    """A console on stdout (made now, so it writes to whatever stdout is at the time of the call)."""
    return _console(stderr=False)


def err_console() -> Console:
    """A console on stderr, for progress notes and summaries that are not the command's result."""
    return _console(stderr=True)
