"""Evaluation and backtests on data with an unadjusted share split: undone once for every forecaster (Kronos undoes
it itself, a baseline would not), so the baselines are scored on one price scale and a backtest books no loss."""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import pytest

import kronos
from kronos.bars.samples import load_sample
from kronos.bars.stocksplits import SplitsUndoneNotice
from kronos.evaluation.backtest_run import run_backtest
from kronos.evaluation.evaluation_run import run_evaluation
from kronos.evaluation.origins import RollingConfig

AT = 280  # of 300 bars: inside every origin's history


def _panel(raw: bool) -> pd.DataFrame:
    googl = load_sample("googl").tail(300).reset_index(drop=True)
    if raw:  # a vendor that never applied a 2-for-1 split at row AT
        googl.loc[: AT - 1, ["open", "high", "low", "close"]] *= 2
        googl.loc[: AT - 1, "volume"] /= 2
    return googl.assign(symbol="GOOGL")


def _cv(frame: pd.DataFrame, **kw) -> pd.DataFrame:
    return kronos.cross_validation(frame, h=3, n_windows=2, forecasters=("drift", "garch"), num_samples=16, **kw)


def test_baselines_are_scored_on_the_adjusted_series():
    with pytest.warns(SplitsUndoneNotice, match="series 'GOOGL'"):
        undone = _cv(_panel(raw=True))
    pd.testing.assert_frame_equal(undone, _cv(_panel(raw=False)), rtol=1e-9)
    kept = _cv(_panel(raw=True), splits=False)  # the history's 50% "fall" is in drift's and GARCH's returns
    assert (kept["drift_q0.1"] < undone["drift_q0.1"]).all()
    assert kept["garch_crps"].mean() > 2 * undone["garch_crps"].mean()


def test_the_evaluation_summary_lists_what_was_undone(tmp_path):
    _panel(raw=True).to_parquet(tmp_path / "bars.parquet", index=False)
    config = RollingConfig(lookback=100, horizon=3, origins=2, num_samples=8)
    with pytest.warns(SplitsUndoneNotice):
        out = run_evaluation(tmp_path / "bars.parquet", ["drift"], tmp_path / "eval", config)
    assert "GOOGL 2:1 at row 280 (2018-08-02" in (tmp_path / "eval" / "summary.md").read_text()
    assert np.isfinite(out.metrics["crps"]).all()


def test_a_backtest_does_not_book_the_split_as_a_loss(tmp_path):
    """Computed from the data, the forecasts' realised returns (and so the P&L) are those of the adjusted series."""
    config = RollingConfig(lookback=100, horizon=1, origins=40, num_samples=8)
    stats = {}
    for raw in (True, False):
        folder = tmp_path / f"raw{raw}"
        folder.mkdir()
        _panel(raw=raw).drop(columns="symbol").to_parquet(folder / "GOOGL.parquet", index=False)
        with pytest.warns(SplitsUndoneNotice) if raw else contextlib.nullcontext():
            out = run_backtest(folder / "bt", data=folder, forecasters=["drift"], config=config, strategy="single")
        stats[raw] = out.stats.set_index(["forecaster", "series", "row"])
    pd.testing.assert_frame_equal(stats[True], stats[False], rtol=1e-9)


def test_a_benchmark_file_is_read_at_one_price_scale(tmp_path):
    """``--benchmark FILE``: the benchmark's returns do not book its unadjusted split either."""
    folder = tmp_path / "data"
    folder.mkdir()
    _panel(raw=False).drop(columns="symbol").to_parquet(folder / "GOOGL.parquet", index=False)
    config = RollingConfig(lookback=100, horizon=1, origins=40, num_samples=8)
    excess = {}
    for raw in (True, False):
        bench = tmp_path / f"bench_{raw}.parquet"
        _panel(raw=raw).drop(columns="symbol").to_parquet(bench, index=False)
        with pytest.warns(SplitsUndoneNotice) if raw else contextlib.nullcontext():
            out = run_backtest(
                tmp_path / f"bt{raw}",
                data=folder,
                forecasters=["drift"],
                config=config,
                strategy="single",
                benchmark=str(bench),
            )
        excess[raw] = out.stats.set_index(["forecaster", "series", "row"])
    pd.testing.assert_frame_equal(excess[True], excess[False], rtol=1e-9)
