"""forecast_df meets users' conventions: Nixtla's unique_id/ds kept in the output, a yfinance frame (time index,
Title-case columns) read as the reader reads its CSV, prob_up and the calibration flag as columns, close-only frames
forecast from bars built from their closes."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from kronos import CalibrationOptions
from kronos.bars.closeonly import CloseOnlyNotice, close_only_bars
from kronos.forecasting.panel import output_columns, series_seed

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_unique_id_and_ds_are_taken_and_kept(tiny, panel):
    nixtla = panel.rename(columns={"symbol": "unique_id", "timestamps": "ds"})
    out = tiny.forecast_df(nixtla, 3, sample_count=4, seed=2)
    assert list(out.columns) == output_columns("unique_id", "ds", (0.1, 0.5, 0.9))
    ours = tiny.forecast_df(panel, 3, sample_count=4, seed=2)
    np.testing.assert_array_equal(out.drop(columns=["unique_id", "ds"]), ours.drop(columns=["symbol", "timestamps"]))


def test_a_yfinance_frame_is_read_as_the_reader_reads_its_csv(tiny, googl_bars, tmp_path):
    """Title-case columns, an 'Adj Close' beside them, times in a DatetimeIndex named 'Date': what yf.download gives.
    The CLI read such a file, but forecast_df and forecast refused the frame ('no time column', 'missing price
    columns')."""
    hist = googl_bars.tail(150).reset_index(drop=True)
    ours = tiny.forecast_df(hist, 3, sample_count=4, seed=2)
    yf = hist.rename(columns=str.title).rename(columns={"Timestamps": "Date"}).set_index("Date")
    yf["Adj Close"] = yf["Close"] * 0.97
    for frame in (yf, yf.reset_index(), hist.rename(columns={"volume": "Vol"})):
        out = tiny.forecast_df(frame, 3, sample_count=4, seed=2)
        assert out.columns[0] == ("timestamps" if "Vol" in frame.columns else "Date")
        np.testing.assert_array_equal(out.iloc[:, 1:].to_numpy(), ours.iloc[:, 1:].to_numpy())
    # day-first dates, as the reader reads them in a file (they were refused as unreadable)
    dmy = hist.assign(timestamps=hist["timestamps"].dt.strftime("%d/%m/%Y"))
    np.testing.assert_array_equal(tiny.forecast_df(dmy, 3, sample_count=4, seed=2)["close"], ours["close"])
    # the one-series door takes the same columns
    fut = ours["timestamps"]
    a = tiny.forecast(yf.reset_index(drop=True), hist["timestamps"], fut, 3, sample_count=4, seed=5)
    b = tiny.forecast(hist.drop(columns="timestamps"), hist["timestamps"], fut, 3, sample_count=4, seed=5)
    np.testing.assert_array_equal(a.paths, b.paths)


def test_prob_up_is_the_forecasts_and_calibration_is_flagged(tiny, googl_bars):
    hist = googl_bars.tail(200).reset_index(drop=True)
    out = tiny.forecast_df(hist, 4, sample_count=16, seed=3)
    assert "calibrated" not in out.columns
    fc = tiny.forecast_batch(
        [hist.drop(columns="timestamps")],
        [hist["timestamps"]],
        [out["timestamps"]],
        4,
        sample_count=16,
        seeds=[series_seed(3, None)],
    )[0]
    np.testing.assert_array_equal(out["prob_up"], fc.prob_up().to_numpy())
    cal = tiny.forecast_df(hist, 4, sample_count=16, seed=3, calibrate=CalibrationOptions(origins=9))
    assert cal["calibrated"].all() and cal["prob_up"].between(0, 1).all()


def test_close_only_frame_is_forecast_from_its_closes(tiny, googl_bars):
    hist = googl_bars.tail(120).reset_index(drop=True)
    closes = hist[["timestamps", "close"]].rename(columns={"timestamps": "ds", "close": "y"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = tiny.forecast_df(closes, 3, sample_count=4, seed=1)
    assert [w.category for w in caught] == [CloseOnlyNotice]
    built = pd.concat([hist[["timestamps"]], close_only_bars(hist["close"])], axis=1)
    same = tiny.forecast_df(built, 3, sample_count=4, seed=1)
    np.testing.assert_array_equal(out["close"], same["close"])
    assert list(out["ds"]) == list(same["timestamps"])


def test_forecast_and_calibration_take_a_close_only_frame(tiny, googl_bars):
    hist = googl_bars.tail(200).reset_index(drop=True)
    future = pd.Series(pd.bdate_range(hist["timestamps"].iloc[-1] + pd.offsets.BDay(1), periods=3))
    built = close_only_bars(hist["close"])
    cal = CalibrationOptions(origins=9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CloseOnlyNotice)
        fc = tiny.forecast(hist[["close"]], hist["timestamps"], future, 3, sample_count=8, seed=4, calibrate=cal)
    same = tiny.forecast(built, hist["timestamps"], future, 3, sample_count=8, seed=4, calibrate=cal)
    assert fc.is_calibrated
    np.testing.assert_array_equal(fc.paths, same.paths)


def test_forecast_needs_only_the_frame_and_pred_len(tiny, googl_bars):
    """forecast(df, pred_len=3): the time column (or index) is found as the reader finds it and the future times are
    the market's next bars, as forecast_df makes them; with future times given, pred_len is their count."""
    from kronos.bars.calendars import market_times
    from kronos.core.errors import InputError

    hist = googl_bars.tail(150).reset_index(drop=True)
    times = market_times(hist["timestamps"], 3)
    explicit = tiny.forecast(hist, hist["timestamps"], pd.Series(times.times), 3, sample_count=4, seed=7)
    short = tiny.forecast(hist, pred_len=3, sample_count=4, seed=7)
    np.testing.assert_array_equal(short.paths, explicit.paths)
    assert short.info["calendar"] == times.calendar == "XNYS"
    indexed = hist.rename(columns={"timestamps": "Date"}).set_index("Date")
    np.testing.assert_array_equal(tiny.forecast(indexed, pred_len=3, sample_count=4, seed=7).paths, explicit.paths)
    counted = tiny.forecast(hist, y_timestamp=times.times, sample_count=4, seed=7)
    np.testing.assert_array_equal(counted.paths, explicit.paths)
    # day-first strings whose first date reads either way (09/02/2018) give the same history and future times:
    # market_times reads times as the reader does (pandas alone took the first as month-first and failed on 13/02)
    late = googl_bars[googl_bars["timestamps"] >= "2018-02-09"].reset_index(drop=True)
    dmy = late.assign(timestamps=late["timestamps"].dt.strftime("%d/%m/%Y"))
    assert dmy["timestamps"].iloc[0] == "09/02/2018"
    again = tiny.forecast(dmy, pred_len=3, sample_count=4, seed=7)
    iso = tiny.forecast(late, pred_len=3, sample_count=4, seed=7)
    assert (again.timestamps == iso.timestamps).all()
    np.testing.assert_array_equal(again.paths, iso.paths)
    with pytest.raises(InputError, match="pred_len is needed when y_timestamp is not given"):
        tiny.forecast(hist, sample_count=4)
    with pytest.raises(InputError, match="no time column .* or time index"):
        tiny.forecast(hist.drop(columns="timestamps"), pred_len=3, sample_count=4)


def test_a_forecasts_frame_is_its_row_of_forecast_df(tiny, googl_bars):
    """Forecast.to_frame gives one series what forecast_df (and the CLI's CSV) give a panel: means, quantiles by
    column and level, prob_up, per future bar."""
    hist = googl_bars.tail(150).reset_index(drop=True)
    long = tiny.forecast_df(hist, 3, sample_count=8, seed=4, quantiles=(0.05, 0.5, 0.95))
    fc = tiny.forecast(hist, y_timestamp=long["timestamps"], sample_count=8, seed=series_seed(4, None))
    frame = fc.to_frame((0.05, 0.5, 0.95))
    assert list(frame.columns) == output_columns(None, "timestamps", (0.05, 0.5, 0.95))[1:]
    np.testing.assert_array_equal(frame.to_numpy(), long.drop(columns="timestamps").to_numpy())
    assert (frame.index == pd.DatetimeIndex(long["timestamps"])).all()
    assert (frame["close_q0.05"] <= frame["close_q0.95"]).all() and frame["prob_up"].between(0, 1).all()
