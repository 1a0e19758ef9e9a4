"""Backtests driven by forecasts: a cross-sectional top-k/n-drop portfolio and a single-asset rule.

Both read the forecasts table of the rolling engine, so any forecaster (baseline or Kronos
checkpoint) can be traded the same way. Signals come from
:func:`kronos.evaluation.crosssection.make_signals` (predicted close minus last close, as the
original Kronos backtest defines them). The return earned after a decision at origin ``t`` is the
realised return from ``t``'s close to the close ``stride`` bars later, read from the forecasts
table's ``y_true`` at step ``stride``, so no return is ever used before it is known.

Timing and costs, shared by both strategies: positions are decided at the close of ``t`` from the
forecast made at ``t`` and held until the next origin. Each period's cost is
``traded * (cost_bps + slippage_bps) / 1e4``, where ``traded`` is the sum of absolute weight changes
(buys plus sells, as a fraction of equity), and is subtracted from that period's return. Costs do not
change which positions are held, so the net return is exactly the gross return minus costs, period
by period. Turnover is reported one-way (``traded / 2``).

Performance statistics come from ``empyrical`` (annualised return and volatility, Sharpe ratio,
maximum drawdown, excess Sharpe), annualised with the bar frequency of the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kronos.core.errors import InputError
from kronos.core.extras import require

__all__ = [
    "BacktestResult",
    "TopkConfig",
    "infer_periods_per_year",
    "long_flat_backtest",
    "performance_stats",
    "period_returns",
    "signal_matrix",
    "topk_dropout_backtest",
]


@dataclass(frozen=True)
class TopkConfig:
    """Top-k / n-drop portfolio settings (the logic of Qlib's ``TopkDropoutStrategy``).

    Hold up to ``top_k`` names, equally funded when bought. Each bar, among the held names and the
    best-ranked names not held, the ``n_drop`` worst-ranked held names are sold (if held at least
    ``min_hold`` bars) and the freed cash buys the best-ranked names not held, split equally.
    """

    top_k: int = 50
    n_drop: int = 5
    min_hold: int = 1
    cost_bps: float = 10.0
    slippage_bps: float = 5.0

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise InputError(f"top_k must be >= 1, got {self.top_k}")
        if not 0 <= self.n_drop <= self.top_k:
            raise InputError(f"n_drop must be between 0 and top_k ({self.top_k}), got {self.n_drop}")
        if self.min_hold < 0:
            raise InputError(f"min_hold must be >= 0, got {self.min_hold}")
        if self.cost_bps < 0 or self.slippage_bps < 0:
            raise InputError("cost_bps and slippage_bps must be >= 0")

    @property
    def cost_rate(self) -> float:
        return (self.cost_bps + self.slippage_bps) / 1e4


@dataclass
class BacktestResult:
    """Per-period returns (``gross, cost, net, benchmark, turnover, n_holdings``), holdings and stats."""

    periods: pd.DataFrame
    stats: pd.DataFrame
    holdings: pd.DataFrame = field(default_factory=pd.DataFrame)

    def equity(self) -> pd.DataFrame:
        """Cumulative value of 1 invested: net, gross and benchmark."""
        cols = [c for c in ("net", "gross", "benchmark") if c in self.periods]
        return (1.0 + self.periods[cols].fillna(0.0)).cumprod()


# ----------------------------------------------------------------------------------------------
# inputs


def signal_matrix(signals: pd.DataFrame) -> pd.DataFrame:
    """Pivot ``series, origin_time, signal`` rows into an ``origin_time x series`` matrix."""
    return signals.pivot_table(index="origin_time", columns="series", values="signal", aggfunc="first").sort_index()


def period_returns(forecasts: pd.DataFrame, stride: int = 1) -> pd.DataFrame:
    """Realised return per origin and series over the next ``stride`` bars (``origin_time x series``).

    Read from ``y_true`` at step ``stride`` (all forecasters see the same truth; the first one is
    used). ``stride`` must not exceed the horizon of the forecasts.
    """
    max_step = int(forecasts["step"].max())
    if not 1 <= stride <= max_step:
        raise ValueError(f"stride {stride} must be between 1 and the forecast horizon {max_step}")
    first = forecasts["forecaster"].iloc[0]
    rows = forecasts[(forecasts["forecaster"] == first) & (forecasts["step"] == stride)]
    values = rows["y_true"].to_numpy() / rows["last_close"].to_numpy() - 1.0
    frame = pd.DataFrame(
        {"origin_time": rows["origin_time"].to_numpy(), "series": rows["series"].to_numpy(), "ret": values}
    )
    return frame.pivot_table(index="origin_time", columns="series", values="ret", aggfunc="first").sort_index()


def infer_periods_per_year(timestamps: pd.DatetimeIndex | pd.Series) -> float:
    """Bars per year from the spacing of time stamps (252 trading days, 365 when weekends trade)."""
    idx = pd.DatetimeIndex(pd.Series(timestamps).dropna().drop_duplicates().sort_values())
    if len(idx) < 3:
        return 252.0
    step = pd.Series(idx).diff().dropna().median()
    weekend = bool((idx.dayofweek >= 5).mean() > 0.05)
    days = 365.0 if weekend else 252.0
    if step >= pd.Timedelta(days=25):
        return 12.0
    if step >= pd.Timedelta(days=5):
        return 52.0
    if step >= pd.Timedelta(hours=20):
        return days
    bars_per_day = float(pd.Series(idx.normalize()).value_counts().median())
    return days * bars_per_day


# ----------------------------------------------------------------------------------------------
# strategies


def topk_dropout_backtest(
    signals: pd.DataFrame,
    returns: pd.DataFrame,
    config: TopkConfig = TopkConfig(),
    benchmark: pd.Series | None = None,
    periods_per_year: float = 252.0,
) -> BacktestResult:
    """Run the top-k / n-drop portfolio over the origin dates of ``signals``.

    ``signals`` and ``returns`` are ``origin_time x series`` matrices (see :func:`signal_matrix`,
    :func:`period_returns`); a NaN signal means the name cannot be traded that day (held names are
    kept), a NaN return counts as 0 (e.g. a suspended stock). ``benchmark`` is a return per date
    (default: the equal-weighted mean of ``returns``, the universe).
    """
    dates = signals.index.intersection(returns.index).sort_values()
    if len(dates) == 0:
        raise ValueError("topk_dropout_backtest: signals and returns share no date")
    sig = signals.reindex(dates)
    ret = returns.reindex(index=dates, columns=sig.columns.union(returns.columns))
    if benchmark is None:
        benchmark = returns.reindex(dates).mean(axis=1)
    weights: dict[str, float] = {}
    held_for: dict[str, int] = {}
    cash = 1.0
    records = []
    holdings = []
    for t in dates:
        scores = sig.loc[t].dropna().sort_values(ascending=False, kind="stable")
        held = list(weights)
        held_tradable = [x for x in held if x in scores.index]
        n_candidates = max(0, config.n_drop + config.top_k - len(held))
        candidates = [x for x in scores.index if x not in weights][:n_candidates]
        if held and config.n_drop > 0:
            combined = scores[held_tradable + candidates].sort_values(ascending=False, kind="stable")
            worst = set(combined.index[-config.n_drop :])
            sell = [x for x in held_tradable if x in worst and held_for[x] >= config.min_hold]
        else:
            sell = []
        buy = candidates[: max(0, len(sell) + config.top_k - len(held))]
        traded = 0.0
        for x in sell:
            traded += weights[x]
            cash += weights.pop(x)
            held_for.pop(x)
        if buy:
            each = cash / len(buy)
            for x in buy:
                weights[x] = each
                held_for[x] = 0
            traded += cash
            cash = 0.0
        r = ret.loc[t]
        r_held = np.array([r.get(x, np.nan) for x in weights], dtype=np.float64)
        r_held = np.nan_to_num(r_held, nan=0.0)
        w = np.array(list(weights.values()), dtype=np.float64)
        gross = float(np.dot(w, r_held))
        cost = traded * config.cost_rate
        records.append(
            (t, gross, cost, gross - cost, float(benchmark.get(t, np.nan)), traded / 2.0, len(weights), cash)
        )
        holdings.append((t, ",".join(sorted(weights))))
        # let the weights drift with the period's returns (costs are charged to the return, not the mix)
        total = float(np.dot(w, 1.0 + r_held)) + cash
        for (x, wx), rx in zip(list(weights.items()), r_held):
            weights[x] = wx * (1.0 + rx) / total
        cash /= total
        for x in held_for:
            held_for[x] += 1
    periods = pd.DataFrame(
        records, columns=["origin_time", "gross", "cost", "net", "benchmark", "turnover", "n_holdings", "cash"]
    )
    periods = periods.set_index("origin_time")
    stats = performance_stats(
        periods["net"], periods["benchmark"], periods["turnover"], periods_per_year, gross=periods["gross"]
    )
    return BacktestResult(
        periods=periods, stats=stats, holdings=pd.DataFrame(holdings, columns=["origin_time", "holdings"])
    )


def long_flat_backtest(
    signal: pd.Series,
    returns: pd.Series,
    *,
    long_short: bool = False,
    threshold: float = 0.0,
    cost_bps: float = 10.0,
    slippage_bps: float = 5.0,
    periods_per_year: float = 252.0,
) -> BacktestResult:
    """One asset: long when the signal exceeds ``threshold``, else flat (or short below ``-threshold``).

    ``signal`` and ``returns`` are indexed by origin time; the benchmark is buy-and-hold.
    """
    dates = signal.dropna().index.intersection(returns.dropna().index).sort_values()
    if len(dates) == 0:
        raise ValueError("long_flat_backtest: signal and returns share no date")
    s = signal.reindex(dates).to_numpy(dtype=np.float64)
    r = returns.reindex(dates).to_numpy(dtype=np.float64)
    position = np.where(s > threshold, 1.0, np.where((s < -threshold) & long_short, -1.0, 0.0))
    traded = np.abs(np.diff(np.concatenate([[0.0], position])))
    gross = position * r
    cost = traded * (cost_bps + slippage_bps) / 1e4
    periods = pd.DataFrame(
        {
            "gross": gross,
            "cost": cost,
            "net": gross - cost,
            "benchmark": r,
            "turnover": traded / 2.0,
            "position": position,
        },
        index=pd.Index(dates, name="origin_time"),
    )
    stats = performance_stats(
        periods["net"], periods["benchmark"], periods["turnover"], periods_per_year, gross=periods["gross"]
    )
    return BacktestResult(periods=periods, stats=stats)


# ----------------------------------------------------------------------------------------------
# statistics


def performance_stats(
    returns: pd.Series,
    benchmark: pd.Series | None = None,
    turnover: pd.Series | None = None,
    periods_per_year: float = 252.0,
    *,
    gross: pd.Series | None = None,
) -> pd.DataFrame:
    """Standard performance statistics (``empyrical``) of the strategy, gross of costs and benchmark.

    Rows ``strategy``, ``strategy (gross)`` and ``benchmark``; columns ``total_return``,
    ``annual_return`` (CAGR), ``annual_volatility``, ``sharpe``, ``max_drawdown``, ``turnover``
    (mean one-way per bar), ``annual_turnover``, ``excess_return`` (annual return minus the
    benchmark's), ``tracking_error`` and ``information_ratio`` (annualised excess Sharpe).
    """
    ep = require("eval", "empyrical", purpose="backtest statistics")

    ann = float(periods_per_year)

    def row(r: pd.Series, with_benchmark: bool) -> dict[str, float]:
        r = r.fillna(0.0)
        out = {
            "periods": float(len(r)),
            "total_return": float(ep.cum_returns_final(r)),
            "annual_return": float(ep.annual_return(r, annualization=ann)),
            "annual_volatility": float(ep.annual_volatility(r, annualization=ann)),
            "sharpe": float(ep.sharpe_ratio(r, annualization=ann)),
            "max_drawdown": float(ep.max_drawdown(r)),
        }
        if with_benchmark and benchmark is not None:
            b = benchmark.reindex(r.index).fillna(0.0)
            active = r - b
            out["excess_return"] = out["annual_return"] - float(ep.annual_return(b, annualization=ann))
            out["tracking_error"] = float(ep.annual_volatility(active, annualization=ann))
            out["information_ratio"] = float(ep.excess_sharpe(r, b)) * np.sqrt(ann)
        return out

    rows = {"strategy": row(returns, True)}
    if turnover is not None:
        rows["strategy"]["turnover"] = float(turnover.mean())
        rows["strategy"]["annual_turnover"] = float(turnover.mean()) * ann
    if gross is not None:
        rows["strategy (gross)"] = row(gross, True)
    if benchmark is not None:
        rows["benchmark"] = row(benchmark, False)
    return pd.DataFrame(rows).T
