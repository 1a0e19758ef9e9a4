"""Forecast scores: per forecast row (from sample paths) and aggregated per series and overall.

Two stages, because sample paths are large and scores are not:

1. :func:`score_paths` runs once per (series, origin) while the paths exist and returns one value
   per horizon step: quantiles, CRPS (``properscoring.crps_ensemble``; the fair estimator from
   ``scoringrules.crps_ensemble``), the PIT value and the
   predicted / realised volatility. The rolling engine stores these in the forecasts table.
2. :func:`compute_metrics` aggregates that table (it never needs the paths again), per forecaster
   and series, overall, and per horizon step.

Metric definitions (``r = y / last_close - 1`` is the simple return from the origin's close):

* ``mae``, ``rmse``, ``mape`` (%): errors of the predicted close (the mean path) in price units;
  price-scale metrics pooled over series weight expensive series more, so compare the return-scale
  metrics across series. MAPE of returns is not reported: returns near zero make it explode.
* ``mae_ret``, ``rmse_ret``: the same errors on returns (scale free).
* ``dir_acc``: share of rows where the sign of the predicted return matches the realised one, over
  rows with a non-zero realised change; a prediction of exactly no change counts as half right.
* ``crps``, ``crps_ret``: continuous ranked probability score of the close paths (price units, and
  divided by the last close); equals the absolute error for a single deterministic path. It is the CRPS of the
  paths as drawn (their empirical distribution), which exceeds the CRPS of the distribution they are drawn from by
  ``E|X - X'| / (2 m)`` for ``m`` paths: a penalty that grows with the forecast's spread, so with few paths it
  favours narrow forecasts.
* ``crps_fair``, ``crps_fair_ret``: the fair (unbiased) ensemble CRPS of the same paths (Ferro 2014: the pairwise
  term divided by ``m (m - 1)``, not ``m^2``), an estimate of the CRPS the model's distribution has whatever the
  number of paths drawn; compare forecasters of different spread (raw and calibrated) on it as well.
* ``cov50/80/90``: share of realised closes inside the central 50/80/90% interval of the paths
  (calibrated forecasts give 0.5/0.8/0.9); ``width50/80/90``: mean interval width / last close.
* ``pit_ks``: Kolmogorov-Smirnov distance of the PIT values from uniform (0 = calibrated).
* ``rv_mae``, ``rv_bias``: error of the forecast realised volatility ``sqrt(E[sum r_i^2])`` of
  one-bar log returns up to the step, against the realised one; for all-step rows, measured at
  the last step (the whole horizon).
* ``rel_mae_ret``: ``mae_ret`` divided by persistence's on the same rows (< 1 beats persistence).
* ``brier``: Brier score of the stated ``prob_up`` (share of paths whose close ends above the last close)
  against whether the close did end above it (0 perfect; 0.25 a coin that always says 0.5).
  :func:`reliability_table` bins the stated ``prob_up`` and gives how often the close rose in each bin.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from kronos.core.extras import require

properscoring = require("eval", "properscoring", purpose="evaluation metrics")
scoringrules = require("eval", "scoringrules", purpose="evaluation metrics")
stats = require("eval", "scipy.stats", purpose="evaluation metrics")

__all__ = [
    "INTERVAL_LEVELS",
    "QUANTILES",
    "compute_metrics",
    "interval_columns",
    "pit_histogram",
    "quantile_column",
    "reliability_table",
    "score_paths",
]

QUANTILES: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
INTERVAL_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9)
ALL = "(all)"


def quantile_column(q: float) -> str:
    """Name of the column holding quantile ``q`` of the close: ``q05``, ``q50``, ``q95``..."""
    return f"q{round(q * 100):02d}"


def interval_columns(level: float) -> tuple[str, str]:
    """The (lower, upper) quantile columns of a central interval, e.g. 0.8 -> (``q10``, ``q90``)."""
    alpha = (1.0 - level) / 2.0
    return quantile_column(alpha), quantile_column(1.0 - alpha)


def score_paths(
    close_paths: np.ndarray,
    y_true: np.ndarray,
    last_close: float,
    quantiles: Sequence[float] = QUANTILES,
) -> dict[str, np.ndarray]:
    """Per-step scores of close sample paths ``(n_paths, horizon)`` against the realised closes.

    Returns arrays of length ``horizon``: ``y_pred`` (mean), ``y_median``, one column per quantile,
    ``crps``, ``crps_fair`` (the fair estimator), ``pit`` (mid-rank probability integral transform: share of
    paths below the truth, ties counted half), ``prob_up`` (share of paths whose close ends above ``last_close``, as
    ``Forecast.prob_up``), ``rv_pred`` and ``rv_true`` (cumulative realised volatility of log returns).
    """
    paths = np.asarray(close_paths, dtype=np.float64)
    truth = np.asarray(y_true, dtype=np.float64)
    if paths.ndim != 2 or paths.shape[1] != truth.shape[0]:
        raise ValueError(f"score_paths: paths {paths.shape} do not match {truth.shape[0]} realised values")
    out: dict[str, np.ndarray] = {
        "y_pred": paths.mean(axis=0),
        "y_median": np.median(paths, axis=0),
    }
    qs = np.quantile(paths, list(quantiles), axis=0)
    for q, row in zip(quantiles, qs):
        out[quantile_column(q)] = row
    out["crps"] = np.asarray(properscoring.crps_ensemble(truth, paths.T), dtype=np.float64)
    if paths.shape[0] > 1:
        fair = scoringrules.crps_ensemble(truth, paths, m_axis=0, estimator="fair")
        out["crps_fair"] = np.asarray(fair, dtype=np.float64)
    else:  # one path: no spread to estimate, the absolute error
        out["crps_fair"] = out["crps"].copy()
    below = (paths < truth).mean(axis=0)
    equal = (paths == truth).mean(axis=0)
    out["pit"] = below + 0.5 * equal
    out["prob_up"] = (paths > last_close).mean(axis=0)
    base = np.log(last_close)
    # a model may sample non-positive prices; floor them so their (huge) returns count against it
    floor = 1e-9 * abs(last_close)
    path_r = np.diff(
        np.concatenate([np.full((paths.shape[0], 1), base), np.log(np.maximum(paths, floor))], axis=1), axis=1
    )
    true_r = np.diff(np.concatenate([[base], np.log(truth)]))
    out["rv_pred"] = np.sqrt(np.cumsum(path_r**2, axis=1).mean(axis=0))
    out["rv_true"] = np.sqrt(np.cumsum(true_r**2))
    return out


def _row_terms(df: pd.DataFrame, levels: Iterable[float]) -> pd.DataFrame:
    """Per-row quantities whose group means are the metrics."""
    err = df["y_pred"] - df["y_true"]
    ret_true = df["y_true"] / df["last_close"] - 1.0
    ret_pred = df["y_pred"] / df["last_close"] - 1.0
    sign_true, sign_pred = np.sign(ret_true), np.sign(ret_pred)
    hit = np.where(sign_pred == 0, 0.5, (sign_pred == sign_true).astype(float))
    terms = pd.DataFrame(
        {
            "abs_err": err.abs(),
            "sq_err": err**2,
            "ape": (err.abs() / df["y_true"].abs()) * 100.0,
            "abs_err_ret": (ret_pred - ret_true).abs(),
            "sq_err_ret": (ret_pred - ret_true) ** 2,
            "hit": np.where(sign_true == 0, np.nan, hit),
            "crps": df["crps"],
            "crps_ret": df["crps"] / df["last_close"],
            "rv_abs": (df["rv_pred"] - df["rv_true"]).abs(),
            "rv_err": df["rv_pred"] - df["rv_true"],
        },
        index=df.index,
    )
    if "crps_fair" in df:
        terms["crps_fair"] = df["crps_fair"]
        terms["crps_fair_ret"] = df["crps_fair"] / df["last_close"]
    if "prob_up" in df:
        terms["brier"] = (df["prob_up"] - (df["y_true"] > df["last_close"]).astype(float)) ** 2
    for level in levels:
        lo, hi = interval_columns(level)
        tag = round(level * 100)
        if lo in df and hi in df:
            terms[f"cov{tag}"] = ((df["y_true"] >= df[lo]) & (df["y_true"] <= df[hi])).astype(float)
            terms[f"width{tag}"] = (df[hi] - df[lo]) / df["last_close"]
    return terms


def _aggregate(df: pd.DataFrame, terms: pd.DataFrame, keys: list[str], last_step_only_rv: bool) -> pd.DataFrame:
    grouped = terms.groupby([df[k] for k in keys], sort=True)
    means = grouped.mean()
    out = pd.DataFrame(index=means.index)
    out["n"] = grouped.size()
    out["mae"] = means["abs_err"]
    out["rmse"] = np.sqrt(means["sq_err"])
    out["mape"] = means["ape"]
    out["mae_ret"] = means["abs_err_ret"]
    out["rmse_ret"] = np.sqrt(means["sq_err_ret"])
    out["dir_acc"] = means["hit"]
    out["crps"] = means["crps"]
    out["crps_ret"] = means["crps_ret"]
    if "crps_fair" in means:
        out["crps_fair"] = means["crps_fair"]
        out["crps_fair_ret"] = means["crps_fair_ret"]
    if "brier" in means:
        out["brier"] = means["brier"]
    for col in terms.columns:
        if col.startswith(("cov", "width")):
            out[col] = means[col]
    out["pit_ks"] = df.groupby(keys, sort=True)["pit"].agg(lambda p: stats.kstest(p.to_numpy(), "uniform").statistic)
    if last_step_only_rv:
        last = df["step"] == df.groupby(keys)["step"].transform("max")
        rv = terms.loc[last, ["rv_abs", "rv_err"]].groupby([df.loc[last, k] for k in keys], sort=True).mean()
    else:
        rv = means[["rv_abs", "rv_err"]]
    out["rv_mae"] = rv["rv_abs"]
    out["rv_bias"] = rv["rv_err"]
    return out.reset_index()


def compute_metrics(forecasts: pd.DataFrame, levels: Sequence[float] = INTERVAL_LEVELS) -> pd.DataFrame:
    """Aggregate the forecasts table into one metrics table.

    Rows: per (forecaster, series) over all steps; per forecaster over all series (``series`` is
    ``"(all)"``); and per forecaster and horizon step over all series. ``step`` is ``"all"`` in the
    first two kinds. Pooled rows average over every (series, origin, step) row, so series with
    more origins weigh more.
    """
    required = {
        "forecaster",
        "series",
        "origin_time",
        "step",
        "last_close",
        "y_true",
        "y_pred",
        "crps",
        "pit",
        "rv_pred",
        "rv_true",
    }
    missing = sorted(required - set(forecasts.columns))
    if missing:
        raise ValueError(f"compute_metrics: forecasts table lacks column(s) {missing}")
    if forecasts.empty:
        raise ValueError("compute_metrics: the forecasts table is empty")
    df = forecasts.reset_index(drop=True)
    terms = _row_terms(df, levels)

    per_series = _aggregate(df, terms, ["forecaster", "series"], last_step_only_rv=True)
    per_series.insert(2, "step", "all")
    overall = _aggregate(df.assign(series=ALL), terms, ["forecaster", "series"], last_step_only_rv=True)
    overall.insert(2, "step", "all")
    by_step = _aggregate(df.assign(series=ALL), terms, ["forecaster", "series", "step"], last_step_only_rv=False)
    by_step["step"] = by_step["step"].astype(object)
    table = pd.concat([overall, per_series, by_step], ignore_index=True)

    if "persistence" in set(df["forecaster"]):
        # relative to persistence on the same series and step (rows that failed for one of them differ)
        base = table[table["forecaster"] == "persistence"].set_index(["series", "step"])["mae_ret"]
        keys = pd.MultiIndex.from_arrays([table["series"], table["step"]])
        denom = base.reindex(keys).to_numpy(dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):  # a series that never moved: undefined
            table["rel_mae_ret"] = np.where(denom > 0, table["mae_ret"].to_numpy() / denom, np.nan)
    return table


def reliability_table(forecasts: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
    """Per forecaster, the stated ``prob_up`` in ``bins`` equal bins of [0, 1] against how often the close rose.

    Columns: ``forecaster``, ``bin`` (``"0.7-0.8"``), ``n`` (rows), ``stated`` (mean stated probability) and
    ``observed`` (share of rows whose close ended above the last close). A reliable forecaster has ``observed``
    close to ``stated`` in every bin with many rows.
    """
    if "prob_up" not in forecasts:
        raise ValueError("reliability_table: the forecasts table has no prob_up column")
    df = forecasts[["forecaster", "prob_up", "y_true", "last_close"]].dropna()
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(df["prob_up"].to_numpy(), edges[1:-1], right=False), 0, bins - 1)
    labels = np.array([f"{edges[i]:.1f}-{edges[i + 1]:.1f}" for i in range(bins)])
    up = (df["y_true"] > df["last_close"]).astype(float)
    grouped = pd.DataFrame(
        {"forecaster": df["forecaster"], "bin": labels[which], "stated": df["prob_up"], "observed": up}
    ).groupby(["forecaster", "bin"], sort=True)
    out = grouped.mean()
    out.insert(0, "n", grouped.size())
    return out.reset_index()


def pit_histogram(pit: np.ndarray | pd.Series, bins: int = 10) -> np.ndarray:
    """Density of PIT values on ``bins`` equal bins of [0, 1] (all ones when calibrated)."""
    values = np.asarray(pit, dtype=np.float64)
    counts, _ = np.histogram(values, bins=bins, range=(0.0, 1.0))
    return counts / max(1, values.size) * bins
