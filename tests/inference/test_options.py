"""One set of sampling options: validated once, the same defaults everywhere, the original's ``predict`` kept.

Also the validation helpers, and seeded calibration (a series calibrates the same alone or in a batch).
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from kronos import CalibrationOptions, InputError, Kronos, KronosPredictor, KronosTokenizer, SamplingOptions
from kronos.bars.calendars import future_timestamps
from kronos.core.validation import integer, number, one_of, positive_int, probability
from kronos.forecasting.panel import forecast_df, series_seed

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(tiny_reference) -> KronosPredictor:
    tok = KronosTokenizer.from_pretrained(tiny_reference / "tokenizer")
    model = Kronos.from_pretrained(tiny_reference / "model")
    return KronosPredictor(model, tok, device="cpu", max_context=32)


@pytest.fixture(scope="module")
def bars(shared_data) -> pd.DataFrame:
    return pd.read_parquet(shared_data / "fx" / "EURUSD_1h.parquet").iloc[10000:10200].reset_index(drop=True)


# -- the options object ----------------------------------------------------------------------------
def test_defaults_are_the_documented_forecasting_defaults():
    o = SamplingOptions()
    assert (o.temperature, o.top_k, o.top_p, o.sample_count) == (1.0, 0, 1.0, 100)
    assert (o.use_cache, o.window, o.block, o.batch_size) == (True, "exact", None, None)
    with pytest.raises(AttributeError):
        o.top_p = 0.5  # frozen: validated once, never changed below the public API


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(temperature=0.0), "temperature"),
        (dict(temperature=True), "temperature"),
        (dict(temperature=float("nan")), "temperature"),
        (dict(top_k=-1), "top_k"),
        (dict(top_k=2.5), "top_k"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.5), "top_p"),
        (dict(sample_count=0), "sample_count"),
        (dict(sample_count=True), "sample_count"),
        (dict(use_cache="yes"), "use_cache"),
        (dict(window="sliding"), "window"),
        (dict(block=0), "block"),
        (dict(batch_size=-3), "batch_size"),
    ],
)
def test_invalid_options_name_the_parameter_and_value(kwargs, name):
    ((key, value),) = kwargs.items()
    with pytest.raises(InputError, match=rf"{name}.*{value!r}" if not isinstance(value, float) else name):
        SamplingOptions(**kwargs)


def test_resolve_merges_keywords_and_accepts_the_original_T():
    base = SamplingOptions(sample_count=7)
    assert SamplingOptions.resolve(base) is base
    assert SamplingOptions.resolve(base, T=0.5, top_p=0.9) == SamplingOptions(
        temperature=0.5, top_p=0.9, sample_count=7
    )
    assert SamplingOptions.resolve(None, top_k=3) == SamplingOptions(top_k=3)
    with pytest.raises(InputError, match="not both"):
        SamplingOptions.resolve(T=0.5, temperature=0.5)
    with pytest.raises(InputError, match=r"unknown sampling option\(s\) \['samples'\]"):
        SamplingOptions.resolve(samples=3)
    with pytest.raises(InputError, match="options must be a SamplingOptions"):
        SamplingOptions.resolve({"top_k": 3})


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
    fc = tiny.forecast(hist, hist["timestamps"], fut, 6, SamplingOptions(top_p=0.9, sample_count=3), seed=9)
    np.testing.assert_allclose(mean.to_numpy(), fc.paths.mean(axis=0), rtol=1e-5)
    other = tiny.forecast(hist, hist["timestamps"], fut, 6, sample_count=3, seed=9)  # top_p 1.0: other draws
    assert not np.allclose(mean.to_numpy(), other.paths.mean(axis=0), rtol=1e-5)


# -- calibration with seeds ------------------------------------------------------------------------
def test_seeded_calibration_is_the_same_alone_and_in_a_batch(tiny, bars):
    a, b = bars.iloc[:150], bars.iloc[20:190].reset_index(drop=True)
    fut_a, fut_b = future_timestamps(a["timestamps"], 4), future_timestamps(b["timestamps"], 4)
    cal = CalibrationOptions(origins=9, stride=4, lookback=32)
    opts = SamplingOptions(sample_count=8)
    batch = tiny.forecast_batch(
        [a, b], [a["timestamps"], b["timestamps"]], [fut_a, fut_b], 4, opts, seeds=[1, 2], calibrate=cal
    )
    alone = tiny.forecast(b, b["timestamps"], fut_b, 4, opts, seed=2, calibrate=cal)
    assert batch[1].is_calibrated and alone.is_calibrated
    np.testing.assert_array_equal(batch[1].calibration.offsets, alone.calibration.offsets)
    np.testing.assert_array_equal(batch[1].paths, alone.paths)
    again = tiny.forecast(b, b["timestamps"], fut_b, 4, opts, seed=2, calibrate=cal)
    np.testing.assert_array_equal(again.paths, alone.paths)
    other = tiny.forecast(b, b["timestamps"], fut_b, 4, opts, seed=3, calibrate=cal)
    assert not np.array_equal(other.calibration.offsets, alone.calibration.offsets)


def test_calibration_options_are_validated_once_with_names():
    with pytest.raises(InputError, match="at least 9 origins"):
        CalibrationOptions(origins=5)
    with pytest.raises(InputError, match="stride must be an integer >= 1, got 0"):
        CalibrationOptions(stride=0)
    with pytest.raises(InputError, match="lookback must be an integer >= 2, got 1"):
        CalibrationOptions(lookback=1)
    with pytest.raises(InputError, match="scale must be one of"):
        CalibrationOptions(scale="log")


# -- the validation helpers ------------------------------------------------------------------------
def test_validation_helpers_refuse_bools_floats_and_out_of_range_values():
    assert positive_int("n", np.int64(3)) == 3 and type(positive_int("n", np.int64(3))) is int
    assert integer("k", 0, minimum=0) == 0
    for bad in (True, 2.0, 0, "3"):
        with pytest.raises(InputError, match=rf"n must be an integer >= 1, got {bad!r}"):
            positive_int("n", bad)
    assert probability("p", 1) == 1.0
    with pytest.raises(InputError, match=r"p must be in \(0, 1\], got 0"):
        probability("p", 0)
    with pytest.raises(InputError, match="x must be >= 0, got -1"):
        number("x", -1, low=0.0, low_open=False)
    with pytest.raises(ValueError, match="finite"):
        number("x", float("inf"), error=ValueError)
    assert one_of("w", "a", ("a", "b")) == "a"
    with pytest.raises(InputError, match=r"w must be one of \('a', 'b'\), got 'c'"):
        one_of("w", "c", ("a", "b"))
