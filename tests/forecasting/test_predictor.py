"""The predictor: bad input gets a clear error that names the problem and where it is; correct at the edges
(issue 12: parity on FX-like series, any price scale, any timestamp unit or zone, values beyond float32, invalid
bars); ``predictor.json`` checked; the forecasting API's options and the original ``predict`` signature.

The FX parity numbers in ``fixtures/parity_eurusd_1h.json`` are greedy forecasts of the original
Kronos code with the ``kronos_tiny`` checkpoints, on windows where a row-major float32 reduction
differs from the original's column-major one in the last bit.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from kronos import ConfigError, InputError, KronosPredictor, SamplingOptions
from kronos.bars.calendars import future_timestamps
from kronos.bars.preprocessing import calendar_features
from kronos.cli import (
    app,
    commands,  # noqa: F401  (registers the commands)
)
from kronos.forecasting.panel import forecast_df, series_seed

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- bad input is named ----------------------------------------------------------------------------


@pytest.fixture()
def predictor(tiny_predictor):
    assert tiny_predictor.clip == 5
    return tiny_predictor


@pytest.fixture()
def eurusd(eurusd_bars):
    """Hourly EURUSD bars without amount (the bundled sample)."""
    return eurusd_bars


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


# -- correct at the edges: FX parity, price scales, epochs, float32, invalid bars, time zones ------


FIXTURE = Path(__file__).parents[1] / "fixtures" / "parity_eurusd_1h.json"


PRICES = ["open", "high", "low", "close"]


@pytest.fixture(scope="module")
def shared_eurusd(shared_data):
    """The corpus's EURUSD hourly series: the parity fixture's windows are rows of this file."""
    return pd.read_parquet(shared_data / "fx" / "EURUSD_1h.parquet")


def _window(frame: pd.DataFrame, start: int, lookback: int, pred_len: int):
    rows = frame.iloc[start : start + lookback + pred_len].reset_index(drop=True)
    df = rows.iloc[:lookback][PRICES + ["volume"]]
    return df, rows["timestamps"].iloc[:lookback], rows["timestamps"].iloc[lookback:].reset_index(drop=True)


def _greedy(predictor, df, xt, yt, **kw):
    return predictor.predict(df, xt, yt, len(yt), T=1.0, top_k=1, top_p=1.0, sample_count=1, verbose=False, **kw)


@pytest.mark.parametrize("use_cache", [False, True], ids=["uncached", "cached"])
@pytest.mark.parametrize("case", ["inside_context", "beyond_context"])
def test_fx_series_without_amount_matches_the_original(predictor, shared_eurusd, case, use_cache):
    spec = json.loads(FIXTURE.read_text())
    c = spec["cases"][case]
    df, xt, yt = _window(shared_eurusd, c["start_row"], c["lookback"], c["pred_len"])
    assert "amount" not in df.columns and (c["lookback"] > spec["max_context"]) == (case == "beyond_context")
    out = _greedy(predictor, df, xt, yt, use_cache=use_cache)
    np.testing.assert_allclose(out.to_numpy(), np.array(c["expected"]), rtol=1e-5)


SCALES = [10.0**e for e in range(-9, 10)]


@pytest.mark.parametrize("mode", ["greedy", "seeded"])
def test_forecasts_are_scale_equivariant(predictor, eurusd, mode):
    # The sample's volume is in units (~1e10 a bar); in millions it sits at tick-volume level (~1e4), so the
    # amount at prices x 1e9 stays within float32 and the whole scale range below can be checked.
    df, xt, yt = _window(eurusd.assign(volume=eurusd["volume"] / 1e6), 132, 48, 12)
    kw = (
        dict(T=1.0, top_k=1, top_p=1.0, sample_count=1)
        if mode == "greedy"
        else dict(T=1.0, top_k=0, top_p=0.9, sample_count=4)
    )

    def run(k_price: float, k_volume: float = 1.0) -> np.ndarray:
        scaled = df.copy()
        scaled[PRICES] *= k_price
        scaled["volume"] *= k_volume
        return predictor.predict(
            scaled, xt, yt, 12, verbose=False, generator=torch.Generator().manual_seed(5), **kw
        ).to_numpy()

    base = run(1.0)
    for k in SCALES:
        out = run(k)
        assert (out[:, :4] > 0).all(), k
        np.testing.assert_allclose(out[:, :4], k * base[:, :4], rtol=1e-3, err_msg=f"prices x {k:g}")
        np.testing.assert_allclose(out[:, 4], base[:, 4], rtol=1e-3, err_msg=f"volume with prices x {k:g}")
    for k in SCALES[::3]:
        out = run(1.0, k)
        np.testing.assert_allclose(out[:, 4:], k * base[:, 4:], rtol=1e-3, err_msg=f"volume x {k:g}")
        np.testing.assert_allclose(out[:, :4], base[:, :4], rtol=1e-3, err_msg=f"prices with volume x {k:g}")


@pytest.mark.parametrize("unit,div", [("s", 10**9), ("ms", 10**6), ("us", 10**3), ("ns", 1)])
def test_integer_epochs_are_read_in_their_unit(predictor, eurusd, unit, div):
    df, xt, yt = _window(eurusd, 500, 40, 4)
    expected = _greedy(predictor, df, xt, yt)
    as_int = lambda s: pd.Series(s.astype("int64").to_numpy() // div)  # noqa: E731
    out = _greedy(predictor, df, as_int(xt), as_int(yt))
    assert (out.index == pd.DatetimeIndex(yt)).all() and out.index[0].year > 2000
    np.testing.assert_array_equal(out.to_numpy(), expected.to_numpy())


def test_small_integers_are_not_taken_for_timestamps(predictor, eurusd):
    df, _, _ = _window(eurusd, 500, 40, 4)
    with pytest.raises(InputError, match=r"x_timestamp are numbers from 0 to 39, which are not epoch timestamps"):
        _greedy(predictor, df, pd.Series(range(40)), pd.Series(range(40, 44)))


@pytest.mark.parametrize(
    "columns,value,match",
    [
        (PRICES, 1e40, r"column 'open' has 1e\+40 at row 3 .*beyond float32"),
        (["volume"], 1e39, r"column 'volume' has 1e\+39 at row 3 .*beyond float32"),
        (PRICES, 1e-46, r"column 'open' has 1e-46 at row 3 .*below the price floor 1e-30"),
    ],
)
def test_values_outside_float32_are_refused(predictor, eurusd, columns, value, match):
    df, xt, yt = _window(eurusd, 500, 20, 4)
    df = df.copy()
    df.loc[3, columns] = value
    with pytest.raises(InputError, match=match):
        _greedy(predictor, df, xt, yt)


def test_a_spread_beyond_float32_is_scaled_exactly_not_refused(predictor, eurusd):
    # volumes alternating 1e37 and 1: their float32 variance would overflow; the normaliser scales the column
    # by a power of two first, so the forecast is finite (it used to be refused).
    df, xt, yt = _window(eurusd, 500, 20, 4)
    df = df.assign(volume=[1e37 if i % 2 else 1.0 for i in range(20)])
    out = _greedy(predictor, df, xt, yt)
    assert np.isfinite(out.to_numpy()).all()


@pytest.mark.parametrize(
    "change,match",
    [
        ({"high": 1.0}, r"invalid bar at row 6 .*: high 1.0 is below low"),
        ({"low": 5.0, "high": 6.0}, r"invalid bar at row 6 .*: low 5.0 is above open"),
        ({"close": 9.0}, r"invalid bar at row 6 .*: high .* is below close 9.0"),
        ({"volume": -3.0}, r"invalid bar at row 6 .*: volume -3.0 is negative"),
    ],
)
def test_invalid_bars_are_named(predictor, eurusd, change, match):
    df, xt, yt = _window(eurusd, 500, 20, 4)
    df = df.copy()
    for col, value in change.items():
        df.loc[6, col] = value
    with pytest.raises(InputError, match=match):
        _greedy(predictor, df, xt, yt)


def test_mixed_time_zone_awareness_is_an_input_error(predictor, eurusd):
    df, xt, yt = _window(eurusd, 500, 20, 4)
    aware_x, aware_y = xt.dt.tz_localize("UTC"), yt.dt.tz_localize("UTC")
    with pytest.raises(InputError, match=r"x_timestamp has a time zone \(UTC\) but y_timestamp has none"):
        _greedy(predictor, df, aware_x, yt)
    with pytest.raises(InputError, match=r"y_timestamp has a time zone \(UTC\) but x_timestamp has none"):
        _greedy(predictor, df, xt, aware_y)


def test_aware_timestamps_keep_their_zone_and_local_calendar(predictor, eurusd):
    df, xt, yt = _window(eurusd, 500, 20, 4)
    x_ny, y_ny = xt.dt.tz_localize("America/New_York"), yt.dt.tz_localize("America/New_York")
    out = _greedy(predictor, df, x_ny, y_ny.dt.tz_convert("Asia/Tokyo"))
    assert str(out.index.tz) == "Asia/Tokyo" and (out.index == pd.DatetimeIndex(y_ny)).all()
    # the calendar features are read in each index's own zone, as given
    np.testing.assert_array_equal(calendar_features(x_ny), calendar_features(xt))
    naive = _greedy(predictor, df, xt, yt)
    np.testing.assert_array_equal(_greedy(predictor, df, x_ny, y_ny).to_numpy(), naive.to_numpy())


runner = CliRunner()


# -- predictor.json and max_context ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text,match",
    [
        ("{max_context: 64", "not valid JSON"),
        ("[64]", "expected a JSON object"),
        ('{"max_context": 0}', "max_context must be an integer >= 1, got 0"),
        ('{"clip": -1}', "clip must be > 0"),
        ('{"max_ctx": 64}', r"unknown key\(s\) \['max_ctx'\]"),
    ],
)
def test_invalid_predictor_json_names_the_file(bundle, text, match):
    (bundle / "predictor.json").write_text(text)
    with pytest.raises(ConfigError, match=rf"{bundle / 'predictor.json'}: {match}"):
        KronosPredictor.from_pretrained(bundle)


def test_max_context_zero_is_refused_and_the_default_is_512(bundle):
    with pytest.raises(InputError, match="max_context must be an integer >= 2, got 0"):
        KronosPredictor.from_pretrained(bundle, max_context=0)
    assert KronosPredictor.from_pretrained(bundle).max_context == 512  # no predictor.json: the original's default
    (bundle / "predictor.json").write_text('{"max_context": 64, "clip": 5}')
    assert KronosPredictor.from_pretrained(bundle).max_context == 64
    cli = runner.invoke(app, ["forecast", "--data", "x.csv", "--model", str(bundle), "--max-context", "0"])
    assert cli.exit_code == 2 and "--max-context" in cli.output


# -- the forecasting API's options -----------------------------------------------------------------


@pytest.fixture(scope="module")
def bars(shared_data) -> pd.DataFrame:
    return pd.read_parquet(shared_data / "fx" / "EURUSD_1h.parquet").iloc[10000:10200].reset_index(drop=True)


def test_forecast_api_has_no_defaults_of_its_own():
    """forecast, forecast_batch, forecast_df and kronos.forecasting.panel take SamplingOptions' defaults; no
    private flags."""
    for fn in (KronosPredictor.forecast, KronosPredictor.forecast_batch, KronosPredictor.forecast_df, forecast_df):
        params = inspect.signature(fn).parameters
        assert params["options"].default is None
        assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        assert not {"T", "top_k", "top_p", "sample_count", "batch_size"} & set(params)
        assert not [n for n in params if n.startswith("_")]
    for fn in (KronosPredictor.predict, KronosPredictor.predict_batch):
        assert not [n for n in inspect.signature(fn).parameters if n.startswith("_")]


def test_predict_keeps_the_original_signature_and_defaults():
    for fn in (KronosPredictor.predict, KronosPredictor.predict_batch):
        params = list(inspect.signature(fn).parameters.values())[1:10]
        assert [p.name for p in params[4:]] == ["T", "top_k", "top_p", "sample_count", "verbose"]
        assert [p.default for p in params[4:]] == [1.0, 0, 0.9, 1, True]


def test_invalid_forecast_options_fail_before_any_work(tiny, bars):
    hist, fut = bars.iloc[:60], bars["timestamps"].iloc[60:64]
    with pytest.raises(InputError, match="top_p must be in \\(0, 1\\], got 1.5"):
        tiny.forecast(hist, hist["timestamps"], fut, 4, top_p=1.5)
    with pytest.raises(InputError, match="sample_count"):
        tiny.predict(hist, hist["timestamps"], fut, 4, sample_count=0, verbose=False)
    with pytest.raises(InputError, match="unknown sampling option"):
        tiny.forecast_df(hist, 4, id_col=None, samples=3)


def test_default_forecast_equals_default_forecast_df_and_records_the_defaults(tiny, bars):
    """Same defaults through forecast and forecast_df: the same 100 seeded paths."""
    hist = bars.iloc[:60]
    long = tiny.forecast_df(hist, 4, id_col=None, seed=5, quantiles=[0.5])
    fut = future_timestamps(hist["timestamps"], 4)
    fc = tiny.forecast(hist, hist["timestamps"], fut, 4, seed=series_seed(5, None))
    assert fc.paths.shape[0] == 100 and fc.info["top_p"] == 1.0 and fc.info["T"] == 1.0
    np.testing.assert_array_equal(long["close"].to_numpy(), fc.paths.mean(axis=0)[:, 3])
    batch = tiny.forecast_batch([hist], [hist["timestamps"]], [fut], 4, seeds=[series_seed(5, None)])[0]
    np.testing.assert_array_equal(batch.paths, fc.paths)


def test_predict_is_the_mean_of_a_forecast_with_the_original_settings(tiny, bars):
    hist, fut = bars.iloc[:60], bars["timestamps"].iloc[60:66]
    mean = tiny.predict(hist, hist["timestamps"], fut, 6, sample_count=3, seed=9, verbose=False)
    fc = tiny.forecast(
        hist,
        hist["timestamps"],
        fut,
        6,
        SamplingOptions(top_p=0.9, sample_count=3, anchor=False),
        seed=9,
        lookback="auto",
    )
    # forecast repairs impossible bars (high/low around open/close, volume >= 0) and never moves open or close
    opens_closes = [0, 3]
    np.testing.assert_allclose(mean.to_numpy()[:, opens_closes], fc.paths.mean(axis=0)[:, opens_closes], rtol=1e-5)
    other = tiny.forecast(hist, hist["timestamps"], fut, 6, sample_count=3, seed=9)  # top_p 1.0: other draws
    assert not np.allclose(mean.to_numpy()[:, opens_closes], other.paths.mean(axis=0)[:, opens_closes], rtol=1e-5)


def test_anchored_paths_start_from_the_last_bar_not_its_reconstruction(shipped_predictor):
    """Generated bars are decoded reconstructions: without anchoring every path continues from the tokenizer's
    reconstruction of the last bar, so the first step holds a jump that is the tokenizer's, not the market's. With it
    (the default) each path is shifted by the last bar's reconstruction error, computed here independently."""
    from kronos.bars.preprocessing import prepare_features
    from kronos.bars.samples import load_sample

    p = shipped_predictor
    bars = load_sample("googl")
    hist, window = bars.drop(columns="timestamps"), 200
    fut = future_timestamps(bars["timestamps"], 5)
    kw = dict(seed=3, sample_count=20, lookback=window)
    raw = p.forecast(hist, bars["timestamps"], fut, 5, anchor=False, **kw)
    anchored = p.forecast(hist, bars["timestamps"], fut, 5, **kw)
    assert anchored.info["anchor"] is True and raw.info["anchor"] is False
    shift = anchored.paths[..., 3] - raw.paths[..., 3]
    last = float(bars["close"].iloc[-1])
    assert np.ptp(shift) < 1e-6 * last  # one shift for every path and step
    x = prepare_features(hist.iloc[-window:])
    norm = p.components.normalizer(x)
    z = p.components.tensor(norm.transform(x))[None]
    with torch.no_grad():
        s1, s2 = p.tokenizer.encode(z, half=True)
        decoded = p.tokenizer.decode([s1, s2], half=True)[0, -1].numpy()
    reconstructed_close = norm.inverse(decoded[None].astype(np.float64))[0, 3]
    assert abs(last - reconstructed_close) > 1e-4 * last  # the reconstruction is off: there is a jump to remove
    np.testing.assert_allclose(shift.mean(), last - reconstructed_close, rtol=1e-3)
    # the bar keeps its shape: open, high and low move with the close, so no more bars need repair than before
    np.testing.assert_allclose(
        anchored.paths[..., 1] - anchored.paths[..., 3], raw.paths[..., 1] - raw.paths[..., 3], atol=1e-3 * last
    )
    assert anchored.info["repaired_bars"] <= raw.info["repaired_bars"] + 0.05
