"""A user's frame read as the reader reads a file, for the Python doors.

Why: the command line and the server read bars through :mod:`kronos.bars.reader`, which understands column names in
any case and their aliases, the usual time column names or a time index, day-first dates and offsets; a user calling
``forecast_df`` or ``forecast`` on a yfinance or Nixtla frame should get what the same data gives as a file. This
module finds a frame's id, time and feature columns (:func:`user_columns`) and fills in what a one-series forecast
leaves out: its history's times and the market's next bar times (:func:`series_times`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from kronos.bars.calendars import DEFAULT_CALENDAR, market_times
from kronos.bars.preprocessing import feature_names
from kronos.bars.reader import SYMBOL_COL, TIME_COL, resolve_columns
from kronos.core.errors import InputError
from kronos.core.validation import positive_int

__all__ = ["series_times", "user_columns"]


def user_columns(df: pd.DataFrame, id_col: str | None, time_col: str) -> tuple[pd.DataFrame, str | None, str]:
    """A user's frame with the reader's names understood: ``(frame, id column, time column)``.

    As :mod:`kronos.bars.reader` reads a file: feature columns in any case and their aliases (``Open``, ``vol``)
    take the canonical names; the time column is ``time_col`` in any case, or with the default, the first of the
    reader's time names (``timestamps``, ``date``, ``Datetime``, Nixtla's ``ds`` ...), else a ``DatetimeIndex`` (a
    yfinance frame); the id column is ``id_col`` in any case, or with the default ``symbol`` (else Nixtla's
    ``unique_id``), absent: one series. The id and time columns keep the user's spelling, as the output does.
    """
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame, got {type(df).__name__}")
    default_time = time_col == TIME_COL
    ident, found = resolve_columns(
        df.columns, id_col=None if id_col == SYMBOL_COL else id_col, time_col=None if default_time else time_col
    )
    if (found is None or found not in df.columns) and isinstance(df.index, pd.DatetimeIndex):
        name = df.index.name if df.index.name is not None and df.index.name not in df.columns else TIME_COL
        df, found = df.reset_index(names=name), name
    if found is None:
        found = time_col  # split_panel says it is missing
    if id_col is None or ident not in df.columns:
        ident = None  # one series
    return feature_names(df, skip=(ident, found)), ident, found


def series_times(
    df: pd.DataFrame, x_timestamp: Any, y_timestamp: Any, pred_len: Any, calendar: Any = DEFAULT_CALENDAR
) -> tuple[Any, Any, int, str | None]:
    """What a one-series forecast needs when the caller leaves some of it out: ``(x, y, pred_len, calendar used)``.

    ``x_timestamp`` None: the frame's time column as the reader finds it (``timestamps``, ``date``, ``ds`` ... in any
    case) or its ``DatetimeIndex``. ``y_timestamp`` None: the ``pred_len`` bars after the history by
    :func:`~kronos.bars.calendars.market_times` with ``calendar`` (as ``forecast_df`` and the command line make
    them); the calendar used is returned (``None``: the learnt schedule or times given). ``pred_len`` None: the
    length of ``y_timestamp``.
    """
    if x_timestamp is None:
        if not isinstance(df, pd.DataFrame):
            raise InputError(f"expected a pandas DataFrame, got {type(df).__name__}")
        _, found = resolve_columns(df.columns)
        if found is not None:
            x_timestamp = df[found]
        elif isinstance(df.index, pd.DatetimeIndex):
            x_timestamp = df.index
        else:
            raise InputError(
                f"x_timestamp is None and the frame has no time column (timestamps, date, ds ...) or time index; the "
                f"columns are {list(df.columns)}"
            )
    if pred_len is None:
        if y_timestamp is None:
            raise InputError("pred_len is needed when y_timestamp is not given")
        pred_len = len(pd.DatetimeIndex(y_timestamp)) if not isinstance(y_timestamp, pd.Series) else len(y_timestamp)
    used = None
    if y_timestamp is None:
        times = market_times(x_timestamp, positive_int("pred_len", pred_len), calendar=calendar)
        y_timestamp, used = pd.Series(times.times).rename(None), times.calendar
    return x_timestamp, y_timestamp, int(pred_len), used
