"""A split left unadjusted in a user's bars does not reach the model: every forecast door reads the window at one
price scale, says what it undid, and ``splits=False`` keeps the bars as given."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from kronos.bars.calendars import future_timestamps
from kronos.bars.samples import load_sample
from kronos.bars.stocksplits import SplitsUndoneNotice
from kronos.core.errors import InputError
from kronos.forecasting.calibration import CalibrationOptions

pytestmark = pytest.mark.usefixtures("one_torch_thread")

H = 4
AT = 580  # inside the last max_context - H = 60 bars of the tiny model's window


@pytest.fixture(scope="module")
def adjusted() -> pd.DataFrame:
    return load_sample("googl")


@pytest.fixture(scope="module")
def unadjusted(adjusted) -> pd.DataFrame:
    """GOOGL's bars as a vendor that never applied a 2-for-1 split at row ``AT`` would have them."""
    out = adjusted.copy()
    prices = ["open", "high", "low", "close"]
    out.loc[: AT - 1, prices] = out.loc[: AT - 1, prices] * 2
    out.loc[: AT - 1, "volume"] = out.loc[: AT - 1, "volume"] / 2
    return out


def _forecast(predictor, df, **kw):
    bars = df.drop(columns="timestamps")
    return predictor.forecast(bars, df["timestamps"], future_timestamps(df["timestamps"], H), H, seed=3, **kw)


def test_the_forecast_is_the_adjusted_series_forecast(tiny_predictor, adjusted, unadjusted):
    with pytest.warns(SplitsUndoneNotice, match="2:1 at row 580"):
        fc = _forecast(tiny_predictor, unadjusted, sample_count=12)
    clean = _forecast(tiny_predictor, adjusted, sample_count=12)
    np.testing.assert_allclose(fc.paths, clean.paths, rtol=1e-12)
    assert [(s["row"], s["ratio"]) for s in fc.info["splits"]] == [(AT, "2:1")]
    assert clean.info["splits"] == []
    # as given, the window holds two price levels: the normaliser's spread is the split, not the market
    kept = _forecast(tiny_predictor, unadjusted, sample_count=12, splits=False)
    assert kept.info["splits"] == []
    assert not np.allclose(kept.paths, clean.paths)
    assert kept.history["close"].iloc[0] > 1.8 * fc.history["close"].iloc[0]


def test_a_split_before_the_window_is_not_touched(tiny_predictor, adjusted):
    early = adjusted.copy()
    early.loc[:99, ["open", "high", "low", "close"]] *= 2
    early.loc[:99, "volume"] /= 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", SplitsUndoneNotice)
        fc = _forecast(tiny_predictor, early, sample_count=6, lookback="auto")
    assert fc.info["splits"] == []


def test_calibration_reads_the_whole_history_at_one_scale(tiny_predictor, adjusted):
    """Calibrated, the origins inside the history are read too: a split among them is undone for all of them."""
    early = adjusted.copy()
    early.loc[:519, ["open", "high", "low", "close"]] *= 2  # before the forecast's 60 bars, among the origins'
    early.loc[:519, "volume"] /= 2
    cal = CalibrationOptions(origins=10, sample_count=6)
    with pytest.warns(SplitsUndoneNotice):
        fc = _forecast(tiny_predictor, early, sample_count=6, lookback="auto", calibrate=cal)
    clean = _forecast(tiny_predictor, adjusted, sample_count=6, lookback="auto", calibrate=cal)
    assert [s["row"] for s in fc.info["splits"]] == [520]
    np.testing.assert_allclose(fc.history["close"], adjusted["close"].iloc[-len(fc.history) :], rtol=1e-12)
    np.testing.assert_allclose(fc.paths, clean.paths, rtol=1e-9)


def test_batches_and_panels_undo_per_series(tiny_predictor, adjusted, unadjusted):
    frames = [unadjusted.drop(columns="timestamps"), adjusted.drop(columns="timestamps")]
    xs = [unadjusted["timestamps"], adjusted["timestamps"]]
    ys = [future_timestamps(x, H) for x in xs]
    with pytest.warns(SplitsUndoneNotice, match="series 0: "):
        fcs = tiny_predictor.forecast_batch(frames, xs, ys, H, seeds=[1, 1], sample_count=8)
    assert [len(fc.info["splits"]) for fc in fcs] == [1, 0]
    np.testing.assert_allclose(fcs[0].paths, fcs[1].paths, rtol=1e-12)
    panel = pd.concat([unadjusted.assign(symbol="RAW"), adjusted.assign(symbol="ADJ")])
    clean = pd.concat([adjusted.assign(symbol="RAW"), adjusted.assign(symbol="ADJ")])
    with pytest.warns(SplitsUndoneNotice):
        out = tiny_predictor.forecast_df(panel, H, sample_count=8)
    pd.testing.assert_frame_equal(out, tiny_predictor.forecast_df(clean, H, sample_count=8), rtol=1e-9)
    assert list(out.attrs["splits"]) == ["RAW"] and out.attrs["splits"]["RAW"][0]["ratio"] == "2:1"
    kept = tiny_predictor.forecast_df(panel, H, sample_count=8, splits=False)
    assert not np.allclose(kept.select_dtypes("number"), out.select_dtypes("number"))


def test_splits_must_be_a_bool(tiny_predictor, adjusted):
    with pytest.raises(InputError, match="splits must be True or False"):
        _forecast(tiny_predictor, adjusted, sample_count=2, splits="yes")
