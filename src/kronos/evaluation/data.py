"""Reading the series to evaluate: one parquet/CSV file, a panel, or a folder of them.

The reading itself (suffixes, column names, time columns, epochs, panels, checks and messages) is
:mod:`kronos.bars.reader`'s, the same as ``kronos forecast`` and ``kronos train`` use; this module only
collects the series into ``{name: frame}`` the way the evaluation wants them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kronos.bars.reader import iter_bars
from kronos.core.errors import InputError

__all__ = ["read_series"]


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
