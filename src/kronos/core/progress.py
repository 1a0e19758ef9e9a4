"""The progress bar of every long loop (generation, rolling evaluation, training): one look, one place."""

from __future__ import annotations

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

__all__ = ["progress_bar"]


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
    return Progress(
        *columns,
        transient=transient,
        disable=not enabled,
        **({"console": Console(stderr=True)} if stderr else {}),
    )
