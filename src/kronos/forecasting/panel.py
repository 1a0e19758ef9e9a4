"""Universes, not single series: long-format panels in, long-format forecasts out.

The conventions users already know from Nixtla (``unique_id``/``ds``) and Chronos (``predict_df``):
one DataFrame with an id column, a time column and the bars of every series, and one DataFrame back
with, per series and future bar, the mean of each of the six columns under its own name and the
quantiles as ``{column}_q{level}`` (``close_q0.1``). :func:`forecast_df` is what
``KronosPredictor.forecast_df`` and ``kronos forecast`` run.

Each series samples from its own seed, derived from the run's seed and the series' id, so a series'
paths are the same alone, in any panel, in any order and on any process (the basis of sharding a
panel over ``torchrun`` ranks, see :mod:`kronos.forecasting.sharded`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from kronos.bars.calendars import DEFAULT_CALENDAR, market_times
from kronos.bars.closeonly import from_closes
from kronos.bars.preprocessing import check_same_zone, to_datetime_index
from kronos.core.errors import InputError
from kronos.core.validation import positive_int
from kronos.forecasting.forecast import FEATURES, Forecast, level_name
from kronos.forecasting.frames import user_columns
from kronos.forecasting.prepared import ENSEMBLE, Lookback
from kronos.inference.options import SamplingOptions, derive_seed

__all__ = [
    "DEFAULT_QUANTILES",
    "BatchForecaster",
    "forecast_df",
    "forecasts_to_long",
    "level_name",
    "output_columns",
    "series_seed",
    "split_panel",
]

DEFAULT_QUANTILES: tuple[float, ...] = (0.1, 0.5, 0.9)


class BatchForecaster(Protocol):
    """What :func:`forecast_df` needs of a forecaster: ``forecast_batch`` with per-series seeds.

    ``KronosPredictor`` is one; the panel module names only this, so it never imports the predictor
    (the predictor calls down into the panel, not the other way round).
    """

    def forecast_batch(
        self,
        df_list: Sequence[pd.DataFrame],
        x_timestamp_list: Sequence[Any],
        y_timestamp_list: Sequence[Any],
        pred_len: int,
        options: SamplingOptions | None = None,
        *,
        seeds: Sequence[int] | None = None,
        lookback: Lookback = ENSEMBLE,
        labels: Sequence[Any] | None = None,
        verbose: bool = False,
        calibrate: Any = False,
    ) -> list[Forecast]:
        """One :class:`Forecast` per series, each sampled from its own seed on its last ``lookback`` bars; errors and
        notices name each series by its label."""
        ...


def series_seed(seed: int, series_id: Any) -> int:
    """A stable 63-bit seed of one series from the run ``seed`` and the series' id (its string form)."""
    return derive_seed(seed, series_id)


def output_columns(id_col: str | None, time_col: str, quantiles: Sequence[float]) -> list[str]:
    """The long schema: id (when there is one), time, the six means, ``{column}_q{level}`` per column and level,
    then ``prob_up`` (share of paths whose close ends above the last observed close)."""
    cols = ([id_col] if id_col else []) + [time_col] + list(FEATURES)
    return cols + [f"{c}_q{level_name(q)}" for c in FEATURES for q in quantiles] + ["prob_up"]


def _check_quantiles(quantiles: Sequence[float]) -> list[float]:
    levels = [float(q) for q in quantiles]
    bad = [q for q in levels if not 0.0 < q < 1.0]
    if bad:
        raise InputError(f"quantiles must be in (0, 1), got {bad}")
    if len({level_name(q) for q in levels}) != len(levels):
        raise InputError(f"quantiles repeat a level: {levels}")
    return levels


def split_panel(df: pd.DataFrame, id_col: str | None, time_col: str) -> dict[Any, pd.DataFrame]:
    """``{id: frame sorted by time}`` in order of first appearance (one entry keyed None without an id column).

    Errors name the missing column, or the series and time of a duplicate or missing timestamp.
    """
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if time_col not in df.columns:
        raise InputError(f"no time column {time_col!r}; the frame has columns {list(df.columns)}")
    if len(df) == 0:
        raise InputError("the frame is empty (0 rows)")
    # read as the reader reads a file: epoch units, day-first dates, offsets in the zone they fit
    times = pd.Series(to_datetime_index(df[time_col], name=f"column {time_col!r}"), index=df.index)
    if times.isna().any():
        row = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise InputError(f"column {time_col!r} has a missing time at row {row}: {df[time_col].iloc[row]!r}")
    df = df.assign(**{time_col: times})
    if id_col is None:
        groups: list[tuple[Any, pd.DataFrame]] = [(None, df)]
    else:
        if df[id_col].isna().any():
            row = int(np.flatnonzero(df[id_col].isna().to_numpy())[0])
            raise InputError(f"column {id_col!r} has a missing series id at row {row}")
        groups = list(df.groupby(id_col, sort=False))
    out: dict[Any, pd.DataFrame] = {}
    for key, frame in groups:
        frame = frame.sort_values(time_col, kind="stable").reset_index(drop=True)
        dup = frame[time_col].duplicated()
        if dup.any():
            where = f"series {key!r}: " if id_col is not None else ""
            raise InputError(f"{where}duplicate timestamp {frame[time_col][dup].iloc[0]} in column {time_col!r}")
        out[key] = frame
    return out


def _given_future(
    future: Any, key: Any, last: pd.Timestamp, h: int, id_col: str | None, time_col: str
) -> pd.DatetimeIndex:
    """The first ``h`` given future times after ``last`` for series ``key``."""
    where = f"series {key!r}: " if key is not None else ""
    if isinstance(future, pd.DataFrame):
        if time_col not in future.columns:
            raise InputError(f"future timestamps: no time column {time_col!r}; columns are {list(future.columns)}")
        if id_col is not None and id_col in future.columns:
            future = future[future[id_col] == key]
        times = pd.DatetimeIndex(pd.to_datetime(future[time_col]))
    else:
        times = pd.DatetimeIndex(pd.to_datetime(pd.Series(np.asarray(future))))
    check_same_zone(pd.DatetimeIndex([last]), times, names=(f"{where}the history", "the future timestamps"))
    times = times.sort_values()
    times = times[times > last]
    if len(times) < h:
        raise InputError(f"{where}{len(times)} given future timestamp(s) after the last bar {last}, {h} needed")
    return times[:h]


def forecast_df(
    predictor: BatchForecaster,
    df: pd.DataFrame,
    h: int,
    options: SamplingOptions | None = None,
    *,
    id_col: str | None = "symbol",
    time_col: str = "timestamps",
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    seed: int = 0,
    lookback: Lookback = ENSEMBLE,
    calendar: str | Any | None = DEFAULT_CALENDAR,
    future_timestamps: Any = None,
    verbose: bool = False,
    calibrate: Any = False,
    splits: bool = True,
    **sampling: Any,
) -> pd.DataFrame:
    """Forecast ``h`` bars of every series of a long-format frame; a long frame back (see :func:`output_columns`).

    ``df`` holds ``id_col`` (absent or ``None``: one series), ``time_col`` and the bars
    (``open, high, low, close[, volume, amount]``), in any row order. Each series is forecast from
    its last ``lookback`` bars (default ``"ensemble"``: windows of ``max_context - h``, 128 and 64 bars, paths
    pooled; ``"auto"``: the one window ``max_context - h``, so the forecast fits the model's context; ``None``: every
    bar; see ``KronosPredictor.forecast``), each normaliser fitted on exactly its bars, with
    paths drawn from :func:`series_seed` ``(seed, id)``. Sampling settings: ``options`` and/or
    :class:`~kronos.inference.options.SamplingOptions` fields as keywords (``sample_count``, ``T``, ``top_k``,
    ``top_p``, ``batch_size`` ...), with the same defaults as ``KronosPredictor.forecast`` (100 paths,
    ``top_p=1.0``). Future times come from :func:`kronos.bars.calendars.market_times` with ``calendar``
    (``"auto"``: an exchange calendar when one explains the history, else its learnt schedule; ``None``/``"own"``:
    the learnt schedule; or an exchange name); ``result.attrs["calendars"]`` maps each series to the exchange
    used (``None``: the learnt schedule). Unless
    ``future_timestamps`` gives them: a frame with ``time_col`` (and ``id_col`` for per-series times)
    or one sequence of times for every series; the first ``h`` after each series' last bar are used.
    Histories of different lengths run in padded batches of ``batch_size`` series. ``predictor`` is any
    :class:`BatchForecaster`, usually a ``KronosPredictor``.

    Users' names: with the default ``id_col``/``time_col`` absent, Nixtla's ``unique_id``/``ds`` are taken, and
    the output keeps them. A close-only frame (``close`` or ``y``, no open/high/low) is forecast from bars built
    from the closes, with one notice (:mod:`kronos.bars.closeonly`). ``calibrate`` (``True`` or a
    ``CalibrationOptions``) calibrates each series on its own history, as ``forecast`` does, and adds the column
    ``calibrated``; ``prob_up`` is always there. ``splits`` (default ``True``): undo share splits left in each
    series' bars, as ``KronosPredictor.forecast`` does; ``result.attrs["splits"]`` maps each series that had one
    to what was undone.
    """
    opts = SamplingOptions.resolve(options, **sampling)
    h = positive_int("h", h)
    levels = _check_quantiles(quantiles)
    df, id_col, time_col = user_columns(df, id_col, time_col)
    series = split_panel(df, id_col, time_col)
    series = {k: from_closes(frame, id_col=None) for k, frame in series.items()}
    frames, xs, ys, seeds, keys = [], [], [], [], []
    used: dict[Any, str | None] = {}
    for key, frame in series.items():
        last = frame[time_col].iloc[-1]
        try:
            if future_timestamps is not None:
                future = _given_future(future_timestamps, key, last, h, id_col, time_col)
            else:
                times = market_times(frame[time_col], h, calendar=calendar)
                future, used[key] = times.times, times.calendar
        except InputError as exc:
            raise InputError(
                str(exc) if key is None or str(exc).startswith("series ") else f"series {key!r}: {exc}"
            ) from None
        frames.append(frame.drop(columns=[c for c in (id_col, time_col) if c is not None]).reset_index(drop=True))
        xs.append(frame[time_col].reset_index(drop=True))
        ys.append(pd.Series(future))
        seeds.append(series_seed(seed, key))
        keys.append(key)
    extra: dict[str, Any] = {"calibrate": calibrate} if calibrate is not False else {}
    if splits is not True:
        extra["splits"] = splits
    # errors and notices name the user's ids (one series without an id: no name)
    labels = [f"series {key!r}" for key in keys] if id_col is not None else [None]
    forecasts = predictor.forecast_batch(
        frames, xs, ys, h, opts, seeds=seeds, lookback=lookback, labels=labels, verbose=verbose, **extra
    )
    out = forecasts_to_long(forecasts, keys, id_col=id_col, time_col=time_col, quantiles=levels)
    if calibrate is not False:
        out["calibrated"] = np.repeat([fc.is_calibrated for fc in forecasts], [fc.horizon for fc in forecasts])
    out.attrs["calendars"] = used
    out.attrs["splits"] = {key: fc.info["splits"] for key, fc in zip(keys, forecasts) if fc.info.get("splits")}
    return out


def forecasts_to_long(
    forecasts: Sequence[Forecast], keys: Sequence[Any], *, id_col: str | None, time_col: str, quantiles: Sequence[float]
) -> pd.DataFrame:
    """Stack forecasts into the long schema of :func:`output_columns` (rows by series, then time)."""
    parts = []
    for key, fc in zip(keys, forecasts):
        part = fc.to_frame(quantiles).reset_index(drop=True)
        part.insert(0, time_col, pd.DatetimeIndex(fc.timestamps))
        if id_col is not None:
            part.insert(0, id_col, [key] * fc.horizon)
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    return out[output_columns(id_col, time_col, quantiles)]
