"""Rolling evaluation as a DataFrame: :func:`cross_validation` and :func:`evaluation_metrics`.

Nixtla users evaluate with ``cross_validation(df, h, n_windows, step_size)``: one long frame back, a row per
series, cutoff and future bar, the actual value beside every model's forecast, to score or plot in a notebook
beside their own models. This module gives that frame for any forecaster ``kronos evaluate`` knows (baselines,
``kronos``, ``kronos-cal``, a checkpoint directory, a hub id), and turns such a frame back into the metrics table.
It is not a second evaluator: the origins are :mod:`kronos.evaluation.origins`', the forecasts and scores
:func:`kronos.evaluation.rolling.rolling_evaluate`'s, the metrics :func:`kronos.evaluation.metrics.compute_metrics`'.
``kronos evaluate`` runs exactly these two functions, so the command and Python give the same numbers.

The frame (:func:`cross_validation`), one row per series x cutoff x future bar, in that order:

* the id column (when the input had one) and the time column of the future bar, under the input's names
  (``unique_id``/``ds`` stay ``unique_id``/``ds``); ``cutoff``, the last bar each forecast saw; ``step`` (1..h);
* ``close``, what happened (``y`` when the input named its close ``y``), and ``last_close``, the close at the cutoff;
  ``realized_vol``, the realised volatility of one-bar log returns from the cutoff through the bar;
* per forecaster ``f``: ``f`` (the mean path's close), ``f_q{level}`` (quantiles of the close, levels
  0.05 .. 0.95, written as in ``close_q0.1``), ``f_prob_up`` (share of paths closing above ``last_close``), and its
  scores: ``f_crps`` (CRPS of the close paths), ``f_crps_fair`` (its fair estimator), ``f_pit`` (mid-rank PIT) and
  ``f_realized_vol`` (predicted). A forecaster that failed at a cutoff has NaN there (:func:`cross_validate`'s
  ``result.errors`` says why).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kronos.bars.reader import SYMBOL_COL, TIME_COL, read_bars, resolve_columns
from kronos.core.errors import InputError, ParameterError
from kronos.evaluation.data import read_series, undo_series_splits
from kronos.evaluation.forecasters import Forecaster, ForecasterSpec, parse_forecaster_spec
from kronos.evaluation.metrics import QUANTILES, compute_metrics, quantile_column
from kronos.evaluation.origins import RollingConfig
from kronos.evaluation.rolling import RollingResult, rolling_evaluate
from kronos.forecasting.panel import level_name
from kronos.model.registry import DEFAULT_LOOKBACK

__all__ = ["CrossValidation", "cross_validate", "cross_validation", "evaluation_metrics", "to_long", "to_wide"]

CUTOFF = "cutoff"
#: Per forecaster: suffix of its frame column -> the forecasts table's column.
_SCORES = {
    "_prob_up": "prob_up",
    "_crps": "crps",
    "_crps_fair": "crps_fair",
    "_pit": "pit",
    "_realized_vol": "rv_pred",
}


@dataclass
class CrossValidation:
    """The frame of :func:`cross_validation` with what the run behind it knows: the scored forecasts table
    (one row per forecaster, series, origin and step, as ``kronos evaluate`` writes it), failures and the
    origin alignment used."""

    frame: pd.DataFrame
    result: RollingResult
    splits: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # share splits undone, per series


def _names(df: pd.DataFrame, id_col: str | None, time_col: str | None) -> tuple[str | None, str, str]:
    """(id column or None, time column, close column) of a user's frame, as the user spelled them."""
    ident, time = resolve_columns(df.columns, id_col=id_col, time_col=time_col)
    lower = {str(c).strip().lower(): str(c) for c in df.columns}
    close = lower.get("close", lower.get("y", "close"))
    return ident, time, close


def _series_of(
    df: pd.DataFrame, id_col: str | None, time_col: str | None
) -> tuple[dict[str, pd.DataFrame], str | None, str, str]:
    """``{name: canonical frame}`` of a user's frame and the output's id, time and close column names."""
    ident, time, close = _names(df, id_col, time_col)
    bars = read_bars(df, time_column=time, symbol_column=ident or SYMBOL_COL)
    if getattr(bars[TIME_COL].dt, "tz", None) is not None:
        bars[TIME_COL] = bars[TIME_COL].dt.tz_localize(None)
    if SYMBOL_COL not in bars.columns:
        return {"series": bars.reset_index(drop=True)}, None, time, close
    series = {
        str(k): part.drop(columns=SYMBOL_COL).reset_index(drop=True)
        for k, part in bars.groupby(bars[SYMBOL_COL].astype(str), sort=True)
    }
    return series, ident, time, close


def _specs(forecasters: Sequence[str | Forecaster | ForecasterSpec], options: dict[str, Any]) -> list[Any]:
    if isinstance(forecasters, str):
        forecasters = [forecasters]
    out: list[Any] = []
    for f in forecasters:
        if isinstance(f, str):
            out.extend(parse_forecaster_spec(p, **options) for p in f.split(",") if p.strip())
        else:
            out.append(f)
    if not out:
        raise ParameterError("forecasters", "no forecaster given (persistence, drift, ..., kronos or a checkpoint)")
    return out


def to_wide(
    forecasts: pd.DataFrame,
    *,
    id_col: str | None = SYMBOL_COL,
    time_col: str = TIME_COL,
    target: str = "close",
    quantiles: Sequence[float] = QUANTILES,
    order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The forecasts table of :func:`~kronos.evaluation.rolling.rolling_evaluate` as the cross-validation frame,
    forecasters in ``order`` (default: as they appear)."""
    keys = ["series", "origin_time", "step"]
    base = (
        forecasts[[*keys, "target_time", "y_true", "last_close", "rv_true"]]
        .drop_duplicates(keys)
        .sort_values(keys, kind="stable")
        .reset_index(drop=True)
    )
    frame = pd.DataFrame(
        {
            "series": base["series"],
            time_col: pd.DatetimeIndex(base["target_time"]),
            CUTOFF: pd.DatetimeIndex(base["origin_time"]),
            "step": base["step"].astype(np.int64),
            target: base["y_true"],
            "last_close": base["last_close"],
            "realized_vol": base["rv_true"],
        }
    )
    index = pd.MultiIndex.from_frame(base[keys])
    present = list(pd.unique(forecasts["forecaster"]))
    for name in [n for n in (order or []) if n in present] + [n for n in present if n not in (order or [])]:
        part = forecasts[forecasts["forecaster"] == name].set_index(keys).reindex(index)
        frame[str(name)] = part["y_pred"].to_numpy()
        for q in quantiles:
            frame[f"{name}_q{level_name(q)}"] = part[quantile_column(q)].to_numpy()
        for suffix, col in _SCORES.items():
            frame[f"{name}{suffix}"] = part[col].to_numpy() if col in part else np.nan
    if id_col is None:
        return frame.drop(columns="series")
    return frame.rename(columns={"series": id_col})


def _forecaster_names(frame: pd.DataFrame) -> list[str]:
    """Forecasters of a cross-validation frame: the columns that have a ``_crps`` partner."""
    return [c for c in frame.columns if f"{c}_crps" in frame.columns]


def to_long(frame: pd.DataFrame, *, id_col: str | None = None, target: str | None = None) -> pd.DataFrame:
    """A cross-validation frame back as the forecasts table :func:`compute_metrics` scores (rows a forecaster
    failed on, NaN in the frame, are left out). ``id_col``/``target``: as in the frame (found when not given)."""
    names = _forecaster_names(frame)
    if not names:
        raise InputError(
            "the frame has no forecaster columns (a forecaster f needs f, f_q0.05 .. f_q0.95, f_crps, f_pit and "
            "f_realized_vol, as cross_validation writes them)"
        )
    cols = {str(c).lower(): c for c in frame.columns}
    need = [CUTOFF, "step", "last_close", "realized_vol"]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise InputError(f"the frame lacks column(s) {missing} that cross_validation writes")
    target = target or cols.get("close") or cols.get("y")
    if target is None or target not in frame.columns:
        raise InputError("the frame has no actual-value column (close or y)")
    if id_col is None:
        id_col = cols.get("unique_id") or cols.get("symbol")
    series = frame[id_col].astype(str) if id_col is not None else pd.Series("series", index=frame.index)
    fixed = set(need) | {target} | ({id_col} if id_col else set())
    time_col = next(c for c in frame.columns if c not in fixed and pd.api.types.is_datetime64_any_dtype(frame[c]))
    parts = []
    for name in names:
        ok = frame[name].notna()
        part = pd.DataFrame(
            {
                "forecaster": name,
                "series": series[ok].to_numpy(),
                "origin_time": frame.loc[ok, CUTOFF].to_numpy(),
                "step": frame.loc[ok, "step"].to_numpy(dtype=np.int64),
                "target_time": frame.loc[ok, time_col].to_numpy(),
                "last_close": frame.loc[ok, "last_close"].to_numpy(dtype=np.float64),
                "y_true": frame.loc[ok, target].to_numpy(dtype=np.float64),
                "y_pred": frame.loc[ok, name].to_numpy(dtype=np.float64),
                "rv_true": frame.loc[ok, "realized_vol"].to_numpy(dtype=np.float64),
            }
        )
        for c in frame.columns:
            if str(c).startswith(f"{name}_q"):
                part[quantile_column(float(str(c)[len(name) + 2 :]))] = frame.loc[ok, c].to_numpy(dtype=np.float64)
        for suffix, col in _SCORES.items():
            if f"{name}{suffix}" in frame.columns:  # a frame written before a score existed lacks it
                part[col] = frame.loc[ok, f"{name}{suffix}"].to_numpy(dtype=np.float64)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def evaluation_metrics(frame: pd.DataFrame, *, id_col: str | None = None) -> pd.DataFrame:
    """The metrics table of a :func:`cross_validation` frame: what ``kronos evaluate`` writes to ``metrics.csv``.

    Rows per forecaster and series over all steps, per forecaster pooled over every series (``series`` is
    ``"(all)"``), and pooled per horizon step; columns ``n``, the errors of the mean (``mae``, ``mae_ret``,
    ``rmse``...), ``dir_acc`` (direction), ``crps``/``crps_ret``, coverage and width of the 50/80/90% intervals,
    ``pit_ks``, ``rv_mae``/``rv_bias`` (realised-volatility error), ``brier`` of ``prob_up``, and ``rel_mae_ret``
    when ``persistence`` is among the forecasters. Definitions: :mod:`kronos.evaluation.metrics`.
    """
    return compute_metrics(to_long(frame, id_col=id_col))


def cross_validate(
    df: pd.DataFrame | str | os.PathLike | dict[str, pd.DataFrame],
    h: int,
    n_windows: int,
    step_size: int | None = None,
    forecasters: Sequence[str | Forecaster | ForecasterSpec] = ("kronos",),
    *,
    id_col: str | None = None,
    time_col: str | None = None,
    lookback: int | str = "auto",
    num_samples: int = 100,
    seed: int = 0,
    align: str = "auto",
    n_jobs: int = 1,
    progress: bool = False,
    symbols: Sequence[str] | None = None,
    max_series: int | None = None,
    splits: bool = True,
    **kronos_options: Any,
) -> CrossValidation:
    """:func:`cross_validation` with the run behind it (the scored forecasts table, failures, splits undone)."""
    if isinstance(df, dict):
        series, ident, time, target = df, SYMBOL_COL, TIME_COL, "close"
    elif isinstance(df, pd.DataFrame):
        series, ident, time, target = _series_of(df, id_col, time_col)
    else:
        series = read_series(df, symbols=list(symbols) if symbols else None, max_series=max_series)
        ident, time, target = SYMBOL_COL, TIME_COL, "close"
    if isinstance(df, pd.DataFrame) and (symbols or max_series is not None):
        names = [s for s in series if not symbols or s in {str(x) for x in symbols}]
        series = {k: series[k] for k in names[: max_series if max_series is not None else None]}
    undone: dict[str, list[dict[str, Any]]] = {}
    if splits:
        series, undone = undo_series_splits(series, time)
    if lookback == "auto":
        lookback = DEFAULT_LOOKBACK
    config = RollingConfig(
        lookback=int(lookback),
        horizon=int(h),
        origins=int(n_windows),
        stride=step_size,
        num_samples=int(num_samples),
        seed=int(seed),
        align=align,
    )
    specs = _specs(forecasters, kronos_options)
    result = rolling_evaluate(series, specs, config, n_jobs=n_jobs, progress=progress)
    if result.forecasts.empty:
        detail = "; ".join(result.errors["error"].astype(str).head(3)) if len(result.errors) else "no origin"
        raise InputError(f"every forecast failed ({detail})")
    labels = [f.label if isinstance(f, ForecasterSpec) else f.name for f in specs]
    frame = to_wide(
        result.forecasts, id_col=ident, time_col=time, target=target, quantiles=config.quantiles, order=labels
    )
    return CrossValidation(frame=frame, result=result, splits=undone)


def cross_validation(
    df: pd.DataFrame | str | os.PathLike,
    h: int,
    n_windows: int,
    step_size: int | None = None,
    forecasters: Sequence[str | Forecaster | ForecasterSpec] = ("kronos",),
    *,
    id_col: str | None = None,
    time_col: str | None = None,
    lookback: int | str = "auto",
    num_samples: int = 100,
    seed: int = 0,
    align: str = "auto",
    n_jobs: int = 1,
    progress: bool = False,
    splits: bool = True,
    **kronos_options: Any,
) -> pd.DataFrame:
    """Forecast every series from ``n_windows`` cutoffs, ``h`` bars each, with every forecaster; one long frame back.

    ``df``: a long frame of bars (an id column, ``symbol`` or ``unique_id``, for several series; a time column,
    ``timestamps``/``ds``/``date`` ...; ``open, high, low, close[, volume, amount]``, or only ``close``/``y``, see
    docs/close-only.md), or a bar file or folder as ``kronos evaluate --data`` takes. ``id_col``/``time_col`` name
    other columns. Cutoffs are placed back from each series' end (a panel's: from the common end, the same dates
    for every series) every ``step_size`` bars (default ``h``, so the windows do not overlap); each forecaster sees
    the ``lookback`` bars up to its cutoff (``"auto"``: :data:`kronos.model.registry.DEFAULT_LOOKBACK`, of which
    Kronos conditions on its own auto window). ``forecasters``: names as ``kronos evaluate -f`` takes them
    (``kronos``, ``kronos-cal``, ``drift``, ``garch``, ``ets``, ``persistence``, a checkpoint directory,
    ``LABEL=SPEC``), or built forecasters. ``num_samples`` paths per forecast; ``seed`` fixes every path.
    ``kronos_options``: ``device``, ``max_context``, ``temperature``, ``top_k``, ``top_p``, ``max_history``.
    ``splits`` (default ``True``): undo the share splits left in each series first, for every forecaster
    (:func:`kronos.evaluation.data.undo_series_splits`); ``False`` scores the bars as given.

    Returns the frame described in :mod:`kronos.evaluation.cross_validation` (``cutoff``, the actual ``close``,
    per forecaster its mean, quantile and score columns); :func:`evaluation_metrics` turns it into the metrics
    table. Raises :class:`~kronos.core.errors.InputError` when no window fits or every forecast failed.
    """
    return cross_validate(
        df,
        h,
        n_windows,
        step_size,
        forecasters,
        id_col=id_col,
        time_col=time_col,
        lookback=lookback,
        num_samples=num_samples,
        seed=seed,
        align=align,
        n_jobs=n_jobs,
        progress=progress,
        splits=splits,
        **kronos_options,
    ).frame
