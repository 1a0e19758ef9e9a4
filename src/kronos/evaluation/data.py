"""Reading the series to evaluate: one parquet/CSV file, a panel, or a folder of them.

The reading itself (suffixes, column names, time columns, epochs, panels, checks and messages) is
:mod:`kronos.bars.reader`'s, the same as ``kronos forecast`` and ``kronos train`` use; this module only
collects the series into ``{name: frame}`` the way the evaluation wants them, and undoes the share splits left in
them (:func:`undo_series_splits`) so every forecaster, and a backtest's returns, read one price scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from kronos.bars.reader import iter_bars
from kronos.bars.stocksplits import undo_frame_splits
from kronos.core.errors import InputError

__all__ = ["read_series", "undo_series_splits"]


def read_series(
    path: str | Path,
    *,
    symbols: list[str] | None = None,
    max_series: int | None = None,
    min_rows: int = 1,
) -> dict[str, pd.DataFrame]:
    """Read every series under ``path`` into ``{name: frame}``.

    ``path`` is a ``.parquet``/``.csv`` file or a folder of them (searched recursively), read by
    :func:`kronos.bars.reader.iter_bars`: a file with a ``symbol`` column is a panel and yields one series per
    symbol; a single-series file is named by its stem (``SPY_daily``). ``symbols`` keeps only the
    named series (an unknown name is an error); ``max_series`` keeps the first N in name order;
    series shorter than ``min_rows`` are dropped. Frames have ``timestamps`` (naive wall-clock time)
    and the float64 feature columns present, in time order with a fresh index.
    """
    series: dict[str, pd.DataFrame] = {}
    for name, _, frame in iter_bars(path, symbols=symbols, min_rows=min_rows):
        frame = frame.reset_index(drop=True)
        if getattr(frame["timestamps"].dt, "tz", None) is not None:
            frame["timestamps"] = frame["timestamps"].dt.tz_localize(None)
        series[name] = frame
    series = dict(sorted(series.items()))
    if max_series is not None:
        series = dict(list(series.items())[: max(0, int(max_series))])
    if not series:
        raise InputError(f"{path}: no series with at least {min_rows} rows")
    return series


def undo_series_splits(
    series: dict[str, pd.DataFrame], time_col: str = "timestamps"
) -> tuple[dict[str, pd.DataFrame], dict[str, list[dict[str, Any]]]]:
    """Every series with the share splits left in it undone (:func:`kronos.bars.stocksplits.undo_frame_splits`,
    announced per series), and ``{name: what was undone}`` for the series that had any.

    Why before evaluating: Kronos undoes a split in the bars it reads, the baselines do not, so on unadjusted data a
    baseline would be scored on a history with a 50% overnight "fall" in it (and a backtest would book the split as
    a loss); undoing it once for every forecaster keeps the comparison fair.
    """
    out, undone = {}, {}
    for name, frame in series.items():
        times = frame[time_col] if time_col in frame.columns else None
        out[name], found = undo_frame_splits(frame, times, label=f"series {name!r}")
        if found:
            undone[name] = found
    return out, undone
