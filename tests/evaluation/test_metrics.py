"""Scores on real series: CRPS against an independent implementation, calibration, oracle limits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kronos.evaluation import (
    RollingConfig,
    compute_metrics,
    read_series,
    rolling_evaluate,
)
from kronos.evaluation.baselines import DriftRandomWalk, Persistence, paths_to_forecast
from kronos.evaluation.metrics import pit_histogram, score_paths

H = 5


@pytest.fixture(scope="module")
def spx(bars_folder) -> pd.DataFrame:
    """The last 900 daily S&P 500 bars (to 2018-08; arch's dataset, read as a bar file like any other)."""
    return read_series(bars_folder / "index" / "SP500_daily.parquet")["SP500_daily"].iloc[-900:].reset_index(drop=True)


class _Climatology:
    """Paths from the whole sample's h-step log returns: calibrated in aggregate by construction.

    It peeks at the entire series on purpose (only to test the calibration metrics): every realised
    h-step return is a draw from the pool its paths come from.
    """

    name = "climatology"

    def __init__(self, frame: pd.DataFrame, n: int = 200) -> None:
        log_close = np.log(frame["close"].to_numpy())
        self.pool = {h: log_close[h:] - log_close[:-h] for h in range(1, H + 1)}
        self.n = n

    def forecast(self, history, future_timestamps, num_samples, *, seed=None):
        rng = np.random.default_rng(seed)
        last = float(history["close"].iloc[-1])
        paths = np.stack([last * np.exp(rng.choice(self.pool[h], self.n)) for h in range(1, H + 1)], axis=1)
        return paths_to_forecast(paths, history, future_timestamps, self.name)


class _Oracle:
    """A single path equal to the realised future (deliberate look-ahead, for the metric limits).

    Its ``forecast`` takes no seed: the engine accepts the plain three-argument protocol too.
    """

    name = "oracle"

    def __init__(self, frame: pd.DataFrame) -> None:
        self.close = frame.set_index("timestamps")["close"]

    def forecast(self, history, future_timestamps, num_samples):
        path = self.close.reindex(pd.DatetimeIndex(future_timestamps)).to_numpy()[None, :]
        return paths_to_forecast(path, history, future_timestamps, self.name)


def test_crps_agrees_with_scoringrules_on_real_paths(spx):
    import scoringrules

    history = spx.iloc[:600]
    future = spx.iloc[600 : 600 + H]
    fc = DriftRandomWalk().forecast(history, pd.DatetimeIndex(future["timestamps"]), 200, seed=4)
    scores = score_paths(fc.column("close"), future["close"].to_numpy(), float(history["close"].iloc[-1]))
    expected = scoringrules.crps_ensemble(future["close"].to_numpy(), fc.column("close").T, estimator="nrg")
    np.testing.assert_allclose(scores["crps"], expected, rtol=1e-9)
    # the fair estimator: the pairwise term over m (m - 1) pairs, not m^2
    x, y = fc.column("close"), future["close"].to_numpy()
    m = x.shape[0]
    pairs = np.abs(x[:, None, :] - x[None, :, :]).sum(axis=(0, 1))
    np.testing.assert_allclose(scores["crps_fair"], np.abs(x - y).mean(axis=0) - pairs / (2 * m * (m - 1)), rtol=1e-9)
    # realised volatility from the data directly
    r = np.diff(np.log(np.concatenate([[history["close"].iloc[-1]], future["close"].to_numpy()])))
    np.testing.assert_allclose(scores["rv_true"], np.sqrt(np.cumsum(r**2)), rtol=1e-12)


def test_the_fair_crps_does_not_reward_a_narrow_forecast_drawn_with_few_paths():
    """Outcomes from N(100, 1), forecasts of 5 paths: the CRPS of the paths as drawn prefers paths from a narrower
    N(100, 0.8) to paths from the truth; the fair CRPS prefers the truth, and its mean is the true CRPS."""
    import scoringrules

    rng = np.random.default_rng(0)
    n, m = 20000, 5
    y = 100.0 + rng.standard_normal(n)
    scores = {}
    for sigma in (1.0, 0.8):
        paths = 100.0 + sigma * rng.standard_normal((m, n))
        s = score_paths(paths, y, 100.0)
        scores[sigma] = (s["crps"].mean(), s["crps_fair"].mean())
    assert scores[0.8][0] < scores[1.0][0]  # as drawn: the narrow forecast wins
    assert scores[1.0][1] < scores[0.8][1]  # fair: the true distribution wins
    true = float(np.mean(scoringrules.crps_normal(y, 100.0, 1.0)))
    assert abs(scores[1.0][1] - true) < 0.02 < scores[1.0][0] - true


def test_calibrated_paths_cover_at_the_nominal_rate_and_persistence_does_not(spx):
    config = RollingConfig(lookback=20, horizon=H, origins=250, stride=3, num_samples=1)
    forecasts = rolling_evaluate({"SPX": spx}, [_Climatology(spx), Persistence()], config, raise_errors=True).forecasts
    metrics = compute_metrics(forecasts)
    overall = metrics[(metrics["series"] == "(all)") & (metrics["step"] == "all")].set_index("forecaster")
    clim = overall.loc["climatology"]
    for level in (50, 80, 90):
        assert abs(clim[f"cov{level}"] - level / 100) < 0.06, (level, clim[f"cov{level}"])
    assert clim["pit_ks"] < 0.08
    hist = pit_histogram(forecasts.loc[forecasts["forecaster"] == "climatology", "pit"])
    assert np.abs(hist - 1).max() < 0.35
    pers = overall.loc["persistence"]
    assert pers["cov90"] < 0.05 and pers["pit_ks"] > 0.4
    assert clim["crps_ret"] < pers["crps_ret"]  # a calibrated spread beats a point on CRPS
    # interval widths grow with the level
    assert clim["width50"] < clim["width80"] < clim["width90"]


def test_oracle_reaches_the_metric_limits(spx):
    config = RollingConfig(lookback=20, horizon=H, origins=30, num_samples=1)
    forecasts = rolling_evaluate({"SPX": spx}, [_Oracle(spx), Persistence()], config, raise_errors=True).forecasts
    metrics = compute_metrics(forecasts)
    oracle = metrics[
        (metrics["forecaster"] == "oracle") & (metrics["series"] == "(all)") & (metrics["step"] == "all")
    ].iloc[0]
    assert oracle["mae"] == 0 and oracle["rmse_ret"] == 0 and oracle["crps"] == 0 and oracle["mape"] == 0
    assert oracle["dir_acc"] == 1.0
    assert oracle["rv_mae"] == pytest.approx(0, abs=1e-15)
    assert oracle["cov80"] == 1.0 and oracle["width80"] == 0
    assert oracle["rel_mae_ret"] == 0
    # metrics per series and per step are there for every forecaster
    assert set(metrics.loc[metrics["series"] != "(all)", "series"]) == {"SPX"}
    steps = metrics.loc[(metrics["series"] == "(all)") & (metrics["step"] != "all"), "step"]
    assert sorted(set(steps)) == list(range(1, H + 1))
