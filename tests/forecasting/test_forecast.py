"""The forecast distribution on real bars: shapes, quantiles, intervals, prob_up, volatility, plots."""

from __future__ import annotations

import builtins

import numpy as np
import pandas as pd
import pytest
import torch

from kronos import Forecast
from kronos.bars.samples import load_sample
from kronos.forecasting.forecast import FEATURES

PRED_LEN, PATHS = 8, 40


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def predictor(tiny_predictor):
    return tiny_predictor


@pytest.fixture(scope="module")
def series():
    """80 hourly EURUSD bars of the bundled sample (gym-anytrading, MIT)."""
    df = load_sample("eurusd").iloc[600:680].reset_index(drop=True)
    return df.iloc[:72], df["timestamps"].iloc[:72], df["timestamps"].iloc[72:]


@pytest.fixture(scope="module")
def fc(predictor, series) -> Forecast:
    df, xt, yt = series
    torch.manual_seed(0)
    return predictor.forecast(df, xt, yt, PRED_LEN, sample_count=PATHS)


def test_shapes_and_index(fc, series):
    _, xt, yt = series
    assert fc.paths.shape == (PATHS, PRED_LEN, 6)
    assert fc.last_close == pytest.approx(float(series[0]["close"].iloc[-1]))
    for frame in (fc.mean(), fc.median(), fc.quantile(0.3)):
        assert list(frame.columns) == list(FEATURES)
        assert (frame.index == pd.DatetimeIndex(yt)).all()
    np.testing.assert_allclose(fc.mean().to_numpy(), fc.paths.mean(axis=0))
    # the history is the window the forecast conditioned on (lookback auto: max_context - pred_len bars)
    assert fc.info["bars_given"] == len(xt)
    assert fc.history is not None and len(fc.history) == fc.info["bars_used"] <= len(xt)
    assert (fc.history.index == pd.DatetimeIndex(xt)[-len(fc.history) :]).all()


def test_quantiles_monotone_in_q_and_list_form(fc):
    levels = [0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98]
    qs = fc.quantile(levels)
    assert isinstance(qs, dict) and sorted(qs) == levels
    stacked = np.stack([qs[q].to_numpy() for q in levels])
    assert np.all(np.diff(stacked, axis=0) >= 0)
    assert np.ptp(stacked[:, :, 3]) > 0  # the paths really differ
    np.testing.assert_allclose(qs[0.25].to_numpy(), fc.quantile(0.25).to_numpy())
    np.testing.assert_allclose(fc.quantile(0.5).to_numpy(), fc.median().to_numpy())


def test_intervals_nested(fc):
    inner, mid, outer = fc.interval(0.5), fc.interval(0.8), fc.interval(0.95)
    for (lo_a, hi_a), (lo_b, hi_b) in ((inner, mid), (mid, outer)):
        assert (lo_b.to_numpy() <= lo_a.to_numpy()).all() and (hi_a.to_numpy() <= hi_b.to_numpy()).all()
    lo, hi = mid
    assert (lo.to_numpy() <= hi.to_numpy()).all()


def test_prob_up_is_a_probability_and_counts_paths(fc):
    prob = fc.prob_up()
    assert ((prob >= 0) & (prob <= 1)).all()
    expected = (fc.column("close") > fc.last_close).mean(axis=0)
    np.testing.assert_allclose(prob.to_numpy(), expected)


def test_paths_frame_round_trips(fc):
    long = fc.paths_frame()
    assert len(long) == PATHS * PRED_LEN
    assert list(long.columns[:3]) == ["path", "step", "timestamp"]
    back = long.sort_values(["path", "step"])[list(FEATURES)].to_numpy().reshape(PATHS, PRED_LEN, 6)
    np.testing.assert_allclose(back, fc.paths)


def test_bad_levels_are_errors(fc):
    with pytest.raises(ValueError, match="quantile level"):
        fc.quantile(1.5)
    with pytest.raises(ValueError, match="interval level"):
        fc.interval(1.0)
    with pytest.raises(KeyError, match="no column"):
        fc.column("vwap")


def test_volatility_forecast_matches_the_definition(fc):
    close = fc.column("close")
    prev = np.concatenate([np.full((PATHS, 1), fc.last_close), close[:, :-1]], axis=1)
    cum = np.sqrt(np.cumsum(np.log(close / prev) ** 2, axis=1))
    vol = fc.volatility_forecast(levels=(0.1, 0.9))
    assert list(vol.columns) == ["mean", "q10", "q90"] and (vol.index == fc.timestamps).all()
    np.testing.assert_allclose(vol["mean"].to_numpy(), cum.mean(axis=0))
    np.testing.assert_allclose(fc.realized_volatility(), cum[:, -1])
    assert (np.diff(vol["mean"].to_numpy()) >= 0).all()  # cumulative: never shrinks with the horizon
    assert (vol["q10"] <= vol["q90"]).all()
    annual = fc.volatility_forecast(annualize=24 * 252)
    np.testing.assert_allclose(annual["mean"].to_numpy()[-1], np.mean(cum[:, -1] * np.sqrt(24 * 252 / PRED_LEN)))


def test_volatility_of_a_known_path():
    # one path doubling every bar: log return ln 2 per bar
    close = 10.0 * 2.0 ** np.arange(1, 5)
    paths = np.repeat(close[None, :, None], 6, axis=2)
    fc = Forecast(paths, pd.date_range("2024-01-01", periods=4, freq="D"), last_close=10.0)
    np.testing.assert_allclose(fc.realized_volatility(), [np.log(2.0) * 2.0])  # sqrt(4) * ln 2


def test_plots_png_and_html(fc, tmp_path):
    png = fc.plot_png(tmp_path / "fc.png", levels=(0.5, 0.8))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    html = fc.plot_html(tmp_path / "fc.html", include_plotlyjs="cdn").read_text()
    assert "candlestick" in html and "80% interval" in html and "mean path" in html
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries
    fig = fc.plot(history_bars=20)
    assert len(fig.axes) == 2  # price panel and prob_up panel


def test_plot_without_matplotlib_names_the_extra(fc, monkeypatch):
    real_import = builtins.__import__

    def fake(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match=r"kronos-kline\[eval\]"):
        fc.plot()
