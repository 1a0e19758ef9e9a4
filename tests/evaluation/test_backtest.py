"""Backtests on the real S&P 500 daily panel: costs, top-k/n-drop rules, oracle and single-asset rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kronos.evaluation.backtest import (
    TopkConfig,
    infer_periods_per_year,
    long_flat_backtest,
    performance_stats,
    topk_dropout_backtest,
)


@pytest.fixture(scope="module")
def close(shared_data) -> pd.DataFrame:
    panel = pd.read_parquet(
        shared_data / "us_equity" / "sp500_daily_panel.parquet", columns=["symbol", "timestamps", "close"]
    )
    wide = panel.pivot(index="timestamps", columns="symbol", values="close")
    return wide.loc[:, wide.notna().all()].iloc[-300:, :80]


@pytest.fixture(scope="module")
def next_returns(close) -> pd.DataFrame:
    return (close.shift(-1) / close - 1.0).iloc[20:-1]


@pytest.fixture(scope="module")
def momentum(close, next_returns) -> pd.DataFrame:
    """20-day return, known at the close of each day: a real, non-trivial signal."""
    return (close / close.shift(20) - 1.0).reindex(next_returns.index)


def _held(result) -> list[set[str]]:
    return [set(h.split(",")) if h else set() for h in result.holdings["holdings"]]


def test_costs_lower_the_return_by_exactly_the_traded_amount(momentum, next_returns):
    free = topk_dropout_backtest(momentum, next_returns, TopkConfig(top_k=10, n_drop=3, cost_bps=0, slippage_bps=0))
    paid = topk_dropout_backtest(momentum, next_returns, TopkConfig(top_k=10, n_drop=3, cost_bps=10, slippage_bps=5))
    pd.testing.assert_series_equal(free.periods["gross"], paid.periods["gross"])
    pd.testing.assert_series_equal(free.periods["turnover"], paid.periods["turnover"])
    traded = 2 * paid.periods["turnover"]
    np.testing.assert_allclose(free.periods["net"] - paid.periods["net"], traded * 15e-4, rtol=1e-12, atol=1e-15)
    assert paid.periods["cost"].sum() == pytest.approx(15e-4 * traded.sum())
    # the first bar buys the whole book (traded 1.0), later bars swap at most n_drop of k names
    assert traded.iloc[0] == pytest.approx(1.0)
    assert (traded.iloc[1:] > 0).any()
    drag = free.stats.loc["strategy", "annual_return"] - paid.stats.loc["strategy", "annual_return"]
    assert drag > 0
    # the annual return falls by about the yearly cost (compounding makes it approximate)
    assert drag == pytest.approx(traded.mean() * 15e-4 * 252, rel=0.1)


def test_topk_ndrop_rules_hold(momentum, next_returns):
    cfg = TopkConfig(top_k=8, n_drop=2, min_hold=5, cost_bps=0, slippage_bps=0)
    result = topk_dropout_backtest(momentum, next_returns, cfg)
    held = _held(result)
    assert all(len(h) == 8 for h in held)
    bought_at: dict[str, int] = dict.fromkeys(held[0], 0)
    for t in range(1, len(held)):
        sold = held[t - 1] - held[t]
        assert len(sold) <= 2 and len(held[t] - held[t - 1]) == len(sold)
        for name in sold:
            assert t - bought_at[name] >= 5
        for name in held[t] - held[t - 1]:
            bought_at[name] = t
    # the first book is the top 8 of the first day's signal
    assert held[0] == set(momentum.iloc[0].nlargest(8).index)
    # the default benchmark is the equal-weighted universe
    np.testing.assert_allclose(result.periods["benchmark"], next_returns.mean(axis=1).to_numpy())


def test_without_drops_the_first_book_is_kept(momentum, next_returns):
    result = topk_dropout_backtest(momentum, next_returns, TopkConfig(top_k=5, n_drop=0))
    assert (result.periods["turnover"].iloc[1:] == 0).all()
    assert len(set(result.holdings["holdings"])) == 1


def test_an_oracle_signal_beats_the_benchmark_and_a_shuffled_one_does_not(next_returns):
    cfg = TopkConfig(top_k=10, n_drop=10, cost_bps=0, slippage_bps=0)
    oracle = topk_dropout_backtest(next_returns, next_returns, cfg)
    rng = np.random.default_rng(2)
    shuffled = next_returns.apply(lambda row: pd.Series(rng.permutation(row.to_numpy()), index=row.index), axis=1)
    noise = topk_dropout_backtest(shuffled, next_returns, cfg)
    assert oracle.stats.loc["strategy", "excess_return"] > 1.0
    assert oracle.stats.loc["strategy", "sharpe"] > 5
    assert abs(noise.stats.loc["strategy", "excess_return"]) < oracle.stats.loc["strategy", "excess_return"] / 5


def test_single_asset_rules(next_returns):
    r = next_returns["AAPL"] if "AAPL" in next_returns else next_returns.iloc[:, 0]
    always = long_flat_backtest(pd.Series(1.0, index=r.index), r, cost_bps=10, slippage_bps=0)
    np.testing.assert_allclose(always.periods["gross"], r.to_numpy())
    assert always.periods["cost"].iloc[0] == pytest.approx(1e-3) and always.periods["cost"].iloc[1:].sum() == 0
    sign_oracle = long_flat_backtest(r, r, long_short=True, cost_bps=0, slippage_bps=0)
    assert (sign_oracle.periods["gross"] >= 0).all()
    flat = long_flat_backtest(-r.abs() - 1e-9, r)  # never positive: never invested
    assert (flat.periods["position"] == 0).all() and flat.stats.loc["strategy", "total_return"] == 0


def test_performance_statistics_match_their_definitions(next_returns):
    r = next_returns.mean(axis=1)
    stats = performance_stats(r, periods_per_year=252).loc["strategy"]
    assert stats["annual_volatility"] == pytest.approx(r.std(ddof=1) * np.sqrt(252))
    equity = (1 + r).cumprod()
    assert stats["max_drawdown"] == pytest.approx((equity / equity.cummax() - 1).min())
    assert stats["total_return"] == pytest.approx(equity.iloc[-1] - 1)
    assert stats["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252))


def test_periods_per_year_follow_the_data(shared_data):
    spy = pd.read_parquet(shared_data / "etf" / "SPY_daily.parquet", columns=["timestamps"])["timestamps"]
    btc = pd.read_parquet(shared_data / "crypto" / "BINANCE-BTCUSDT_daily.parquet", columns=["timestamps"])[
        "timestamps"
    ]
    assert infer_periods_per_year(spy.iloc[-500:]) == 252
    assert infer_periods_per_year(btc.iloc[-500:]) == 365


def test_spaced_origins_hold_each_decision_for_the_stride(shared_data, tmp_path):
    from kronos.evaluation import (
        RollingConfig,
        load_forecaster,
        read_series,
        rolling_evaluate,
    )
    from kronos.evaluation.backtest_run import run_backtest

    spy = read_series(shared_data / "etf" / "SPY_daily.parquet")["SPY_daily"].iloc[-300:].reset_index(drop=True)
    config = RollingConfig(lookback=60, horizon=5, origins=20, stride=3, num_samples=20)
    forecasts = rolling_evaluate({"SPY": spy}, [load_forecaster("drift")], config, raise_errors=True).forecasts
    out = run_backtest(tmp_path, forecasts=forecasts, strategy="single")
    periods = out.results["drift / SPY"].periods
    close = spy.set_index("timestamps")["close"]
    held = (close.shift(-3) / close - 1.0).reindex(periods.index)  # close to close over the 3-bar stride
    np.testing.assert_allclose(periods["benchmark"], held.to_numpy())
    strategy = out.stats.set_index("row").loc["strategy"]
    assert strategy["periods"] == 20
    # 252 trading days a year, one decision every 3 bars
    assert strategy["annual_volatility"] == pytest.approx(periods["net"].std(ddof=1) * np.sqrt(84))
