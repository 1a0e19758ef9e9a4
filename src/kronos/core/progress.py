"""The progress bar of every long loop (generation, rolling evaluation, training): one look, one place.

On a terminal (or in Jupyter) it is rich's live bar. Anywhere else (a pipe, a log file, CI, a job scheduler) a
live bar draws nothing until the end, so a long run looks hung: there it prints plain lines on standard error
instead, ``evaluate: 12/40 origins (30%), 0:00:31 elapsed, about 0:01:10 left``, at most one every
:data:`LINE_EVERY_S` seconds per task plus one when a task completes.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["LINE_EVERY_S", "LineProgress", "progress_bar"]

#: Seconds between two plain progress lines of one task off a terminal.
LINE_EVERY_S = 10.0


def _clock(seconds: float | None) -> str:
    return str(timedelta(seconds=int(seconds))) if seconds is not None else "?"


class LineProgress(Progress):
    """A :class:`~rich.progress.Progress` that prints plain lines instead of a live bar (for output that is not a
    terminal): the same API (``add_task``, ``advance``, ``update``, ``console.print``), no cursor movement.

    A line is printed when a task has advanced and ``every`` seconds have passed since its last line, and once
    when it completes; a task that completes within ``every`` seconds prints nothing.
    """

    def __init__(self, *columns: Any, unit: str | None = None, every: float = LINE_EVERY_S, **kwargs: Any) -> None:
        super().__init__(*columns, auto_refresh=False, **kwargs)
        self._unit = f" {unit}" if unit else ""
        self._every = float(every)
        self._last: dict[Any, float] = {}
        self._done: set[Any] = set()

    def start(self) -> None:  # no live display
        return None

    def stop(self) -> None:
        self._emit(final=True)

    def refresh(self) -> None:
        self._emit()

    def advance(self, task_id: Any, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._emit()

    def update(self, task_id: Any, **kwargs: Any) -> None:  # type: ignore[override]
        kwargs.pop("refresh", None)
        super().update(task_id, **kwargs)
        self._emit()

    def _emit(self, final: bool = False) -> None:
        now = time.monotonic()
        for task in self.tasks:
            if task.id in self._done or not task.visible or task.completed <= 0:
                continue
            started = task.start_time if task.start_time is not None else now
            last = self._last.get(task.id, started)
            if task.total is not None and task.completed >= task.total:
                self._done.add(task.id)
                if task.id not in self._last and now - started < self._every:
                    continue  # a quick task finishes without a word
            elif not (now - last >= self._every or (final and task.id in self._last)):
                continue
            self._last[task.id] = now
            self.console.print(self._line(task), markup=False, highlight=False, soft_wrap=True)

    def _line(self, task: Any) -> str:
        total = f"/{task.total:g}" if task.total is not None else ""
        share = f" ({task.percentage:.0f}%)" if task.total else ""
        text = f"{task.description}: {task.completed:g}{total}{self._unit}{share}, {_clock(task.elapsed)} elapsed"
        if task.total is not None and task.completed < task.total:
            text += f", about {_clock(task.time_remaining)} left"
        info = task.fields.get("info")
        return f"{text} {info}" if info else text


def progress_bar(
    *,
    unit: str | None = None,
    info: bool = False,
    enabled: bool = True,
    transient: bool = False,
    stderr: bool = False,
) -> Progress:
    """A rich :class:`~rich.progress.Progress`: description, bar, ``done/total`` [``unit``] [info], elapsed, left.

    ``info=True`` adds a column showing the task's ``info`` field (give ``info=""`` to ``add_task``
    and update it, e.g. with the latest loss). ``enabled=False`` draws nothing (the loop still
    advances it); ``transient`` clears the bar when done; ``stderr`` draws on standard error.
    """
    columns: list[ProgressColumn] = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
    ]
    if unit:
        columns.append(TextColumn(unit))
    if info:
        columns.append(TextColumn("{task.fields[info]}"))
    columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    if enabled:
        console = Console(stderr=stderr)
        if not console.is_terminal and not console.is_jupyter:
            return LineProgress(*columns, unit=unit, console=Console(stderr=True))
    return Progress(
        *columns,
        transient=transient,
        disable=not enabled,
        **({"console": Console(stderr=True)} if stderr else {}),
    )
