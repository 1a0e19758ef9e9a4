"""Bad input gets a clear error that names the problem and where it is."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kronos import InputError


@pytest.fixture()
def predictor(tiny_predictor):
    return tiny_predictor


@pytest.fixture()
def series(eurusd_bars):
    df = eurusd_bars.iloc[500:540].reset_index(drop=True)
    future = pd.Series(pd.date_range(df.timestamps.iloc[-1] + pd.Timedelta(hours=1), periods=4, freq="h"))
    return df, df["timestamps"], future


def run(predictor, df, xt, yt, pred_len=4, **kw):
    return predictor.predict(df, xt, yt, pred_len, verbose=False, **kw)


def test_valid_input_forecasts(predictor, series):
    out = run(predictor, *series)
    assert out.shape == (4, 6) and np.isfinite(out.to_numpy()).all()


def test_missing_price_column_is_named(predictor, series):
    df, xt, yt = series
    with pytest.raises(InputError, match=r"missing price column\(s\) \['low'\]"):
        run(predictor, df.drop(columns=["low"]), xt, yt)


def test_nan_is_located(predictor, series):
    df, xt, yt = series
    df = df.copy()
    df.loc[7, "close"] = np.nan
    with pytest.raises(InputError, match=r"'close' has a NaN value at row 7"):
        run(predictor, df, xt, yt)


def test_infinite_volume_is_located(predictor, series):
    df, xt, yt = series
    df = df.copy()
    df.loc[3, "volume"] = np.inf
    with pytest.raises(InputError, match=r"'volume' has an infinite value at row 3"):
        run(predictor, df, xt, yt)


def test_non_positive_price_is_located(predictor, series):
    df, xt, yt = series
    df = df.copy()
    df.loc[11, "open"] = 0.0
    with pytest.raises(InputError, match=r"'open' has a non-positive price 0.0 at row 11"):
        run(predictor, df, xt, yt)


def test_unsorted_history_timestamps(predictor, series):
    df, xt, yt = series
    xt = xt.copy()
    xt.iloc[[5, 6]] = xt.iloc[[6, 5]].to_numpy()
    with pytest.raises(InputError, match=r"x_timestamp is not sorted.*position 6"):
        run(predictor, df, xt, yt)


def test_duplicate_history_timestamps(predictor, series):
    df, xt, yt = series
    xt = xt.copy()
    xt.iloc[9] = xt.iloc[8]
    with pytest.raises(InputError, match=r"x_timestamp has a duplicate timestamp .* at position 9"):
        run(predictor, df, xt, yt)


def test_future_that_does_not_follow_history(predictor, series):
    df, xt, _ = series
    with pytest.raises(InputError, match="not after the last history timestamp"):
        run(predictor, df, xt, xt.iloc[-4:])


def test_timestamp_lengths_must_match(predictor, series):
    df, xt, yt = series
    with pytest.raises(InputError, match=r"x_timestamp has 39 timestamps but 40 are needed"):
        run(predictor, df, xt.iloc[1:], yt)
    with pytest.raises(InputError, match=r"y_timestamp has 4 timestamps but 5 are needed"):
        run(predictor, df, xt, yt, pred_len=5)


@pytest.mark.parametrize("pred_len", [0, -3, 2.5])
def test_pred_len_must_be_positive_integer(predictor, series, pred_len):
    with pytest.raises(InputError, match="pred_len must be an integer >= 1"):
        run(predictor, *series, pred_len=pred_len)


def test_empty_history(predictor, series):
    df, xt, yt = series
    with pytest.raises(InputError, match="history is empty"):
        run(predictor, df.iloc[:0], xt.iloc[:0], yt)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(T=0.0), "T \\(temperature\\) must be > 0"),
        (dict(T=-0.5), "T \\(temperature\\) must be > 0"),
        (dict(top_p=0.0), "top_p must be in \\(0, 1\\]"),
        (dict(top_p=1.2), "top_p must be in \\(0, 1\\]"),
        (dict(sample_count=0), "sample_count must be an integer >= 1"),
        (dict(window="fast"), "window must be one of"),
    ],
)
def test_sampling_settings_out_of_range(predictor, series, kwargs, message):
    with pytest.raises(InputError, match=message):
        run(predictor, *series, **kwargs)


def test_batch_errors_name_the_series(predictor, series):
    df, xt, yt = series
    bad = df.copy()
    bad.loc[2, "high"] = np.nan
    with pytest.raises(InputError, match=r"series 1: column 'high' has a NaN value at row 2"):
        predictor.predict_batch([df, bad], [xt, xt], [yt, yt], 4, verbose=False)
    with pytest.raises(InputError, match="same length"):
        predictor.predict_batch([df, df], [xt], [yt, yt], 4, verbose=False)


def test_volume_and_amount_filling_follows_the_original(predictor, series):
    """No volume: volume and amount forecasts are made from zeros; volume only: amount = volume * mean price."""
    from kronos.bars.preprocessing import prepare_features

    df, _, _ = series
    x = prepare_features(df[["open", "high", "low", "close", "volume"]])
    np.testing.assert_allclose(x[:, 5], df.volume * df[["open", "high", "low", "close"]].mean(axis=1))
    x = prepare_features(df[["open", "high", "low", "close"]])
    assert (x[:, 4:] == 0).all()
