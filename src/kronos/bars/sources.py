"""Training series from CSV and Parquet files and folders: :mod:`kronos.bars.reader`'s series as model arrays.

Reading (suffixes, column names and aliases, time columns, epochs, panels, the checks and their
messages) is :mod:`kronos.bars.reader`'s, the same for ``kronos train`` as for ``forecast`` and ``evaluate``.
This module only turns each series into a :class:`SeriesData`: its time stamps (int64 nanoseconds,
naive wall-clock time) and the six model features built by
:func:`kronos.bars.preprocessing.prepare_features`, so training sees exactly what inference sees.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kronos.bars.preprocessing import prepare_features
from kronos.bars.reader import (
    SUFFIXES,
    TIME_COLUMNS,
    DataSourceError,
    check_series,
    discover_files,
    iter_bars,
    read_table,
)

__all__ = [
    "DataSourceError",
    "SUPPORTED_SUFFIXES",
    "SeriesData",
    "TIMESTAMP_CANDIDATES",
    "discover_files",
    "iter_series",
    "read_table",
    "series_from_frame",
]

#: File name endings read as tables (case-insensitive); :data:`kronos.bars.reader.SUFFIXES`.
SUPPORTED_SUFFIXES: tuple[str, ...] = SUFFIXES
#: Column names tried, in order, when no timestamp column is configured; :data:`kronos.bars.reader.TIME_COLUMNS`.
TIMESTAMP_CANDIDATES: tuple[str, ...] = TIME_COLUMNS


@dataclass(frozen=True)
class SeriesData:
    """One instrument's bars, ready for the corpus builder.

    ``timestamps`` are int64 nanoseconds of naive wall-clock time (time-zone-aware input keeps its
    local wall time, which is what the calendar features describe); ``features`` is ``(n, 6)``
    float64 in the model's column order (open, high, low, close, volume, amount).
    """

    symbol: str
    source: str
    timestamps: np.ndarray
    features: np.ndarray

    def __len__(self) -> int:
        return int(self.timestamps.shape[0])


def _series_data(frame: pd.DataFrame, features: np.ndarray, symbol: str, source: str) -> SeriesData:
    idx = pd.DatetimeIndex(frame["timestamps"])
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    return SeriesData(symbol=symbol, source=source, timestamps=idx.as_unit("ns").asi8.copy(), features=features)


def series_from_frame(df: pd.DataFrame, *, symbol: str, source: str, timestamp_column: str | None = None) -> SeriesData:
    """Check one instrument's frame (:func:`kronos.bars.reader.check_series`) and build its :class:`SeriesData`.

    The frame is read as :func:`kronos.bars.reader.read_table` reads one (names, time column, epochs); errors
    name ``source``, the symbol and the row, taken from the frame's index.
    """
    where = f"{source} (symbol {symbol!r})"
    frame = read_table(df, time_column=timestamp_column, label=where).set_axis(df.index)
    return _series_data(frame, check_series(frame, label=where), symbol, source)


def iter_series(
    paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    symbol_column: str = "symbol",
    timestamp_column: str | None = None,
    symbols: Sequence[str] | None = None,
    min_rows: int = 1,
    pattern: str | None = None,
) -> Iterator[SeriesData]:
    """Yield every instrument found under ``paths``, one at a time (memory stays per-file).

    The series are :func:`kronos.bars.reader.iter_bars`': files and folders (recursive), panels by
    ``symbol_column``, only ``symbols`` when given, at least ``min_rows`` bars.
    """
    for name, path, frame in iter_bars(
        paths,
        time_column=timestamp_column,
        symbol_column=symbol_column,
        symbols=symbols,
        min_rows=min_rows,
        pattern=pattern,
    ):
        features = prepare_features(frame, check_prices=False)  # iter_bars has checked the values
        yield _series_data(frame, features, name, str(path))
