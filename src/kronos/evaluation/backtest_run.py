"""The run behind ``kronos backtest``: forecasts (given, read or computed) become signals, trades and a report.

The trading rules themselves are in :mod:`kronos.evaluation.backtest`; this module finds the holding period
and the benchmark, runs a rule per forecaster and writes the folder through
:func:`kronos.evaluation.common.staging`, so a failed run leaves an earlier report intact.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kronos.core.errors import InputError, ParameterError, ParameterNotice
from kronos.core.files import atomic_write
from kronos.evaluation import report
from kronos.evaluation.backtest import (
    BacktestResult,
    TopkConfig,
    infer_periods_per_year,
    long_flat_backtest,
    period_returns,
    signal_matrix,
    topk_dropout_backtest,
)
from kronos.evaluation.common import MIN_IC_NAMES, settings_table, split_names, staging
from kronos.evaluation.crosssection import ic_summary, information_coefficient, make_signals, realised_returns
from kronos.evaluation.data import read_series, undo_series_splits
from kronos.evaluation.forecasters import parse_forecaster_spec
from kronos.evaluation.origins import RollingConfig
from kronos.evaluation.rolling import rolling_evaluate

__all__ = ["BacktestOutput", "run_backtest"]


@dataclass
class BacktestOutput:
    """Backtest results per forecaster (and series for the single-asset rule), and the stats table."""

    out_dir: Path
    results: dict[str, BacktestResult]
    stats: pd.DataFrame
    forecasts: pd.DataFrame
    ic: pd.DataFrame | None = None
    files: list[Path] = field(default_factory=list)
    errors: pd.DataFrame | None = None  # skipped series and failed forecasts (also errors.csv)


def _benchmark_returns(
    benchmark: str, forecasts: pd.DataFrame, returns: pd.DataFrame, stride: int, splits: bool = True
) -> pd.Series | None:
    """``equal`` (None: the universe), a series of the forecasts, or a file of bars (its splits undone with
    ``splits``, as the data's are)."""
    if benchmark.lower() == "equal":
        return None
    if benchmark in returns.columns:
        return returns[benchmark]
    path = Path(benchmark)
    if not path.exists():
        raise ParameterError("benchmark", f"{benchmark!r} is not 'equal', not a series of the data, and no such file")
    bench = read_series(path)
    if splits:
        bench = undo_series_splits(bench)[0]
    if len(bench) != 1:
        raise ParameterError("benchmark", f"{benchmark}: expected one series, found {len(bench)}")
    frame = next(iter(bench.values()))
    close = pd.Series(frame["close"].to_numpy(), index=pd.DatetimeIndex(frame["timestamps"]))
    pos = close.index.get_indexer(returns.index, method="ffill")
    values = np.full(len(returns.index), np.nan)
    ok = (pos >= 0) & (pos + stride < len(close))
    values[ok] = close.to_numpy()[pos[ok] + stride] / close.to_numpy()[pos[ok]] - 1.0
    return pd.Series(values, index=returns.index)


def _warn_whole_universe(top_k: int, n_series: int) -> None:
    """A top-k portfolio that holds every series is the universe: say so before the run, not after."""
    if top_k >= n_series:
        warnings.warn(
            ParameterNotice(
                "topk",
                f"holds {top_k} names of a universe of {n_series}: the portfolio is every series, the "
                f"equal-weight universe, and says nothing about the signal; hold fewer than {n_series}",
            ),
            stacklevel=3,
        )


def run_backtest(
    out_dir: str | os.PathLike,
    *,
    forecasts: pd.DataFrame | None = None,
    forecasts_path: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    forecasters: Sequence[str] = (),
    config: RollingConfig | None = None,
    strategy: str = "topk",
    signal: str = "last",
    relative: bool = False,
    topk: TopkConfig = TopkConfig(),
    long_short: bool = False,
    threshold: float = 0.0,
    benchmark: str = "equal",
    periods_per_year: float | None = None,
    symbols: Sequence[str] | None = None,
    max_series: int | None = None,
    n_jobs: int = 0,
    progress: bool = False,
    kronos_options: dict[str, Any] | None = None,
    splits: bool = True,
) -> BacktestOutput:
    """Backtest forecasts (given, read from ``forecasts.parquet`` or computed from ``data``).

    ``strategy`` is ``"topk"`` (cross-sectional top-k / n-drop portfolio, rebalanced at every origin)
    or ``"single"`` (a long/flat, or long/short, rule per series). The holding period between
    decisions is the origins' stride, read from the forecasts (1 bar by default). Files:
    ``backtest.csv`` (per-period returns), ``stats.csv``, ``summary.md``, ``equity.png``,
    ``report.html``, ``ic.csv`` (10 or more series) and, when computed here, ``forecasts.parquet``. ``splits``:
    undo the share splits left in each series of ``data`` first, for every forecaster, so a split is not booked as
    a loss (:func:`kronos.evaluation.data.undo_series_splits`).
    """
    if strategy not in {"topk", "single"}:
        raise ParameterError("strategy", f"must be 'topk' or 'single', got {strategy!r}")
    computed = False
    errors = pd.DataFrame()
    if forecasts is None and forecasts_path is not None:
        path = Path(forecasts_path)
        if not path.exists():
            raise ParameterError("forecasts_path", f"{path}: no such file")
        try:
            forecasts = pd.read_parquet(path)
        except Exception as exc:  # pyarrow's errors name no file
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ParameterError(
                "forecasts_path", f"{path}: cannot be read as a Parquet file of forecasts ({reason})"
            ) from None
    if forecasts is None:
        if data is None or config is None:
            raise ParameterError(
                "forecasts_path", "give a forecasts file, or data with forecasters to compute the forecasts"
            )
        names = split_names(forecasters)
        if not names:
            raise ParameterError("forecasters", "no forecaster given")
        specs = [parse_forecaster_spec(n, **(kronos_options or {})) for n in names]
        series = read_series(data, symbols=list(symbols) if symbols else None, max_series=max_series)
        if splits:
            series = undo_series_splits(series)[0]
        if strategy == "topk" and len(series) < 2:
            raise ParameterError("strategy", f"topk needs a panel of several series; {data} holds {len(series)}")
        if strategy == "topk":
            _warn_whole_universe(topk.top_k, len(series))
        result = rolling_evaluate(series, specs, config, n_jobs=n_jobs, progress=progress)
        forecasts, errors = result.forecasts, result.errors
        computed = True
    required = {"forecaster", "series", "origin_time", "step", "last_close", "y_true", "y_pred"}
    missing = sorted(required - set(forecasts.columns))
    if missing:
        raise InputError(f"forecasts table lacks column(s) {missing}")
    if forecasts.empty:
        raise InputError("the forecasts table is empty: nothing to backtest")

    if strategy == "topk" and not computed:
        _warn_whole_universe(topk.top_k, forecasts["series"].nunique())
    stride = _stride_of(forecasts)
    returns = period_returns(forecasts, stride=stride)
    ppy = float(periods_per_year) if periods_per_year else _decisions_per_year(forecasts, stride)
    bench = _benchmark_returns(benchmark, forecasts, returns, stride, splits)
    signals = make_signals(forecasts, signal, relative=relative)

    results: dict[str, BacktestResult] = {}
    stats_rows = []
    for name, sig in signals.groupby("forecaster", sort=True):
        matrix = signal_matrix(sig)
        if strategy == "topk":
            res = topk_dropout_backtest(matrix, returns, topk, benchmark=bench, periods_per_year=ppy)
            results[str(name)] = res
            stats_rows.append(res.stats.assign(forecaster=name, series="portfolio"))
        else:
            for series_name in matrix.columns:
                res = long_flat_backtest(
                    matrix[series_name],
                    returns[series_name],
                    long_short=long_short,
                    threshold=threshold,
                    cost_bps=topk.cost_bps,
                    slippage_bps=topk.slippage_bps,
                    periods_per_year=ppy,
                )
                results[f"{name} / {series_name}"] = res
                stats_rows.append(res.stats.assign(forecaster=name, series=series_name))
    ic = None
    if forecasts["series"].nunique() >= MIN_IC_NAMES:
        # skill of the same signal, as a predicted return, against the return earned while holding it
        daily = information_coefficient(
            make_signals(forecasts, signal, relative=True),
            realised_returns(forecasts, step=stride),
            min_names=MIN_IC_NAMES,
        )
        ic = ic_summary(daily) if len(daily) else None
    stats = pd.concat(stats_rows).rename_axis("row").reset_index()
    front = ["forecaster", "series", "row"]
    stats = stats[front + [c for c in stats.columns if c not in front]]
    periods = pd.concat({k: v.periods for k, v in results.items()}, names=["run", "origin_time"]).reset_index()

    out = Path(out_dir)
    settings: dict[str, Any] = {
        "strategy": strategy
        if strategy == "single"
        else f"top-{topk.top_k}, drop {topk.n_drop}, min hold {topk.min_hold}",
        "signal": f"{signal} of the predicted close minus last close{' (relative)' if relative else ''}",
        "costs": f"{topk.cost_bps} bps + {topk.slippage_bps} bps slippage per side",
        "benchmark": "equal-weighted universe" if benchmark.lower() == "equal" else benchmark,
        "bars between decisions": stride,
        "periods per year": ppy,
        "decisions": f"{report._fmt(returns.index.min())} .. {report._fmt(returns.index.max())} ({len(returns.index)})",
        "series": forecasts["series"].nunique(),
    }
    if len(errors):
        settings["skipped or failed (errors.csv)"] = len(errors)
    if strategy == "single":
        settings["rule"] = f"{'long/short' if long_short else 'long/flat'}, threshold {threshold}"
    first_series = min(forecasts["series"].unique())
    plot_results = (
        results if strategy == "topk" else {k: v for k, v in results.items() if k.endswith(f"/ {first_series}")}
    )
    shown = stats[stats["row"] != "strategy (gross)"]
    with staging(out) as stage:
        if computed:
            atomic_write(stage / "forecasts.parquet", lambda p: forecasts.to_parquet(p, index=False))
        if len(errors):
            atomic_write(stage / "errors.csv", errors.to_csv(index=False))
        atomic_write(stage / "backtest.csv", periods.to_csv(index=False))
        atomic_write(stage / "stats.csv", stats.to_csv(index=False))
        report.backtest_figures(plot_results, stage, title=f"{strategy} backtest")
        md = [
            "# Kronos backtest",
            "",
            report.markdown_table(settings_table(settings)),
            "",
            "## Performance",
            "",
            (
                "Annualised figures; `max_drawdown` and returns are fractions; turnover is one-way per bar. "
                "Gross rows (before costs) are in stats.csv."
            ),
            "",
            report.markdown_table(shown),
            "",
            "![equity](equity.png)",
            "",
        ]
        if ic is not None:
            atomic_write(stage / "ic.csv", ic.to_csv(index=False))
            md += [
                "## Signal IC / RankIC against the return over the holding period",
                "",
                report.markdown_table(ic),
                "",
            ]
        atomic_write(stage / "summary.md", "\n".join(md))
        report.write_html(
            stage / "report.html",
            "Kronos backtest",
            [
                ("settings", [settings_table(settings)]),
                ("performance", [stats]),
                *([("signal IC / RankIC", [ic])] if ic is not None else []),
                ("equity", report.backtest_plotly(plot_results)),
            ],
        )
        files = sorted(out / p.name for p in stage.iterdir())
    return BacktestOutput(
        out_dir=out, results=results, stats=stats, forecasts=forecasts, ic=ic, files=files, errors=errors
    )


def _decisions_per_year(forecasts: pd.DataFrame, stride: int) -> float:
    """Bars per year of the data (from one series' consecutive forecast targets) over the stride."""
    first = forecasts[forecasts["forecaster"] == forecasts["forecaster"].iloc[0]]
    one = first[first["series"] == first["series"].iloc[0]]
    bars = pd.DatetimeIndex(one["target_time"].unique()).union(pd.DatetimeIndex(one["origin_time"].unique()))
    return infer_periods_per_year(bars) / stride


def _stride_of(forecasts: pd.DataFrame) -> int:
    """Bars between consecutive origins (the holding period of one decision).

    Found as the horizon step whose target time is the next origin of the same series (the most
    common one over all origins); origins further apart than the horizon cannot be backtested.
    """
    first = forecasts[forecasts["forecaster"] == forecasts["forecaster"].iloc[0]]
    keys = first[["series", "origin_time"]].drop_duplicates().sort_values(["series", "origin_time"])
    keys["next_origin"] = keys.groupby("series")["origin_time"].shift(-1)
    keys = keys.dropna(subset=["next_origin"])
    if keys.empty:
        raise InputError("a backtest needs at least two forecast origins per series")
    merged = first.merge(keys, on=["series", "origin_time"])
    hits = merged.loc[merged["target_time"] == merged["next_origin"], "step"]
    if hits.empty:
        raise InputError("forecast origins are further apart than the horizon: compute the forecasts with stride 1")
    return int(hits.mode().iloc[0])
