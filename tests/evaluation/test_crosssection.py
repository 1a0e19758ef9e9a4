"""IC / RankIC on the real S&P 500 daily panel: oracle, noisy oracle and shuffled signals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kronos.evaluation import RollingConfig, read_series, rolling_evaluate
from kronos.evaluation.baselines import paths_to_forecast
from kronos.evaluation.crosssection import (
    ic_summary,
    information_coefficient,
    make_signals,
    realised_returns,
)

H = 5


@pytest.fixture(scope="module")
def realised(shared_data) -> pd.DataFrame:
    panel = pd.read_parquet(
        shared_data / "us_equity" / "sp500_daily_panel.parquet", columns=["symbol", "timestamps", "close"]
    )
    close = panel.pivot(index="timestamps", columns="symbol", values="close")
    close = close.loc[:, close.notna().all()].iloc[-260:, :150]
    forward = (close.shift(-H) / close - 1.0).iloc[:-H]
    out = forward.stack().rename("realised").reset_index()
    return out.rename(columns={"timestamps": "origin_time", "symbol": "series"})


def _summary(signal: pd.DataFrame, realised: pd.DataFrame) -> pd.Series:
    daily = information_coefficient(signal, realised, by=())
    return ic_summary(daily, by=()).iloc[0]


def test_oracle_signal_has_perfect_ic(realised):
    signal = realised.rename(columns={"realised": "signal"})
    s = _summary(signal, realised)
    assert s["dates"] == realised["origin_time"].nunique()
    assert s["ic_mean"] == pytest.approx(1.0) and s["rank_ic_mean"] == pytest.approx(1.0)


def test_noisy_oracle_ic_matches_its_signal_to_noise(realised):
    rng = np.random.default_rng(0)
    # noise with the cross-sectional spread of each day: expected correlation 1/sqrt(2)
    spread = realised.groupby("origin_time")["realised"].transform("std")
    signal = realised.assign(signal=realised["realised"] + rng.standard_normal(len(realised)) * spread).drop(
        columns="realised"
    )
    s = _summary(signal, realised)
    assert 0.62 < s["ic_mean"] < 0.78
    assert s["ic_t"] > 50 and s["ic_ir"] > 3


def test_shuffled_signal_has_no_ic(realised):
    rng = np.random.default_rng(1)
    shuffled = realised.copy()
    shuffled["signal"] = shuffled.groupby("origin_time")["realised"].transform(lambda x: rng.permutation(x.to_numpy()))
    s = _summary(shuffled.drop(columns="realised"), realised)
    assert abs(s["ic_mean"]) < 0.02 and abs(s["rank_ic_mean"]) < 0.02
    assert abs(s["ic_t"]) < 3 and abs(s["rank_ic_t"]) < 3


class _Oracle:
    """One path equal to the realised closes: checks the forecast -> signal -> IC plumbing."""

    name = "oracle"

    def __init__(self, frames: dict[str, pd.DataFrame]) -> None:
        self.closes = {n: f.set_index("timestamps")["close"] for n, f in frames.items()}

    def forecast(self, history, future_timestamps, num_samples, *, seed=None):
        last = history["timestamps"].iloc[-1]
        source = next(c for c in self.closes.values() if last in c.index and c.loc[last] == history["close"].iloc[-1])
        path = source.reindex(pd.DatetimeIndex(future_timestamps)).to_numpy()[None, :]
        return paths_to_forecast(path, history, future_timestamps, self.name)


def test_signals_from_forecasts_rank_by_return_only_when_relative(shared_data):
    names = ["AAPL", "AMZN", "GOOGL", "XOM", "KO", "F", "GE", "T", "BAC", "PFE", "INTC", "CSCO"]
    frames = read_series(shared_data / "us_equity" / "sp500_daily_panel.parquet", symbols=names)
    frames = {n: f.iloc[-120:].reset_index(drop=True) for n, f in frames.items()}
    config = RollingConfig(lookback=10, horizon=H, origins=12, stride=2, align="calendar")
    forecasts = rolling_evaluate(frames, [_Oracle(frames)], config, raise_errors=True).forecasts
    assert forecasts.groupby("origin_time")["series"].nunique().eq(len(names)).all()
    outcome = realised_returns(forecasts)
    relative = ic_summary(information_coefficient(make_signals(forecasts, "last", relative=True), outcome))
    assert relative["rank_ic_mean"].iloc[0] == pytest.approx(1.0)
    # the original's price-difference signal mixes in the price level: no longer a perfect ranking
    absolute = ic_summary(information_coefficient(make_signals(forecasts, "last", relative=False), outcome))
    assert absolute["rank_ic_mean"].iloc[0] < 0.9
    # the four signal kinds aggregate the predicted close path as their names say
    one = forecasts[(forecasts["series"] == "AAPL") & (forecasts["origin_time"] == forecasts["origin_time"].max())]
    last_close = one["last_close"].iloc[0]
    for kind, expected in (
        ("last", one["y_pred"].iloc[-1]),
        ("mean", one["y_pred"].mean()),
        ("max", one["y_pred"].max()),
        ("min", one["y_pred"].min()),
    ):
        sig = make_signals(one, kind)
        assert sig["signal"].iloc[0] == pytest.approx(expected - last_close)
