"""Property-based test (hypothesis): whatever frame a user passes, ``predict``, ``forecast`` and the
CSV/Parquet reader give either a finite result on the right timestamps or an :class:`InputError`,
never any other exception.

Frames are generated with random price and volume scales (1e-45 .. 1e45, so some leave float32),
gaps, time zones (also mismatched between history and future), integer epoch timestamps, missing
columns, NaN / infinite / non-positive values, broken bars and lengths from 0 to 3 x max_context.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kronos import InputError, Kronos, KronosPredictor, KronosTokenizer
from kronos.bars.reader import read_bars

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

MAX_CONTEXT = 16
PRICES = ["open", "high", "low", "close"]
ZONES = [None, "UTC", "America/New_York", "Asia/Kolkata"]
FREQS = ["min", "5min", "h", "D", "B"]


@pytest.fixture(scope="module")
def predictor() -> KronosPredictor:
    torch.manual_seed(0)
    tokenizer = KronosTokenizer(d_model=16, n_heads=2, ff_dim=32, n_enc_layers=2, n_dec_layers=2, s1_bits=4, s2_bits=4)
    model = Kronos(s1_bits=4, s2_bits=4, n_layers=1, d_model=16, n_heads=2, ff_dim=32)
    return KronosPredictor(model, tokenizer, device="cpu", max_context=MAX_CONTEXT)


@st.composite
def cases(draw):
    """A history frame, its timestamps and the future timestamps, as a user might pass them."""
    n = draw(st.integers(0, 3 * MAX_CONTEXT))
    pred_len = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    exponents = st.one_of(st.integers(-30, 30), st.integers(-45, 45))  # mostly inside float32, sometimes beyond
    price_scale = 10.0 ** draw(exponents)
    volume_scale = 10.0 ** draw(exponents)
    close = price_scale * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = np.r_[close[:1], close[:-1]]
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.01, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.01, n)))
    df = pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume_scale * rng.lognormal(0, 1, n)}
    )
    if draw(st.booleans()):
        df["amount"] = df["volume"] * df["close"]
    missing = draw(st.sampled_from([(), ("volume",), (), ("low",), (), ("amount",), (), ("volume", "amount"), ()]))
    df = df.drop(columns=[c for c in missing if c in df.columns])
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2])) if n else 0):  # NaN / inf / bad values in random places
        row, col = draw(st.integers(0, n - 1)), draw(st.sampled_from(list(df.columns)))
        df.loc[row, col] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -1.0, 1e300]))

    freq = draw(st.sampled_from(FREQS))
    start = pd.Timestamp("1990-01-01") + pd.Timedelta(
        days=draw(st.integers(0, 14000)), minutes=draw(st.integers(0, 1439))
    )
    grid = pd.date_range(start, periods=2 * (n + pred_len) + 2, freq=freq)
    keep = (
        np.sort(rng.choice(len(grid), size=n + pred_len, replace=False))
        if draw(st.booleans())
        else np.arange(n + pred_len)
    )
    stamps = grid[keep]
    x_zone = draw(st.sampled_from(ZONES))
    y_zone = draw(st.sampled_from([x_zone, x_zone, x_zone, *ZONES]))  # sometimes another zone, or none
    x_idx, y_idx = stamps[:n], stamps[n:]
    if x_zone:
        x_idx = x_idx.tz_localize(x_zone, ambiguous="NaT", nonexistent="NaT")
    if y_zone:
        y_idx = y_idx.tz_localize(y_zone, ambiguous="NaT", nonexistent="NaT")
    kind = draw(st.sampled_from(["series", "index", "epoch_s", "epoch_ms", "strings"]))
    if kind == "epoch_s" and x_zone is None and y_zone is None:
        xt, yt = pd.Series(x_idx.asi8 // 10**9), pd.Series(y_idx.asi8 // 10**9)
    elif kind == "epoch_ms" and x_zone is None and y_zone is None:
        xt, yt = pd.Series(x_idx.asi8 // 10**6), pd.Series(y_idx.asi8 // 10**6)
    elif kind == "index":
        xt, yt = x_idx, y_idx
    elif kind == "strings":
        xt, yt = pd.Series(x_idx.astype(str)), pd.Series(y_idx.astype(str))
    else:
        xt, yt = pd.Series(x_idx), pd.Series(y_idx)
    if n > 2 and draw(st.integers(0, 9)) == 7:  # the occasional unsorted or duplicated history time
        xt = pd.Series(np.asarray(xt)).copy()
        xt.iloc[1] = xt.iloc[0]
    return df, xt, yt, pred_len, draw(st.sampled_from(["csv", "parquet"]))


def _expected_index(yt) -> pd.DatetimeIndex:
    from kronos.bars.preprocessing import to_datetime_index

    return to_datetime_index(yt)


def _check(result_index, values: np.ndarray, yt) -> None:
    assert np.isfinite(values).all()
    assert (pd.DatetimeIndex(result_index) == _expected_index(yt)).all()


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(case=cases())
def test_predict_forecast_and_reader_give_a_result_or_an_input_error(predictor, case):
    df, xt, yt, pred_len, fmt = case
    gen = torch.Generator().manual_seed(0)
    try:
        out = predictor.predict(df, xt, yt, pred_len, T=1.0, top_p=0.9, sample_count=2, verbose=False, generator=gen)
    except InputError:
        pass
    else:
        assert list(out.columns) == ["open", "high", "low", "close", "volume", "amount"]
        _check(out.index, out.to_numpy(), yt)
    try:
        fc = predictor.forecast(df, xt, yt, pred_len, sample_count=3, generator=gen)
    except InputError:
        pass
    else:
        assert fc.paths.shape == (3, pred_len, 6)
        _check(fc.timestamps, fc.paths, yt)
        _check(fc.quantile(0.5).index, fc.quantile(0.5).to_numpy(), yt)

    # the same bars through a file and the reader
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"bars.{fmt}"
        frame = df.assign(timestamps=list(xt) if len(xt) == len(df) else pd.NaT)
        try:
            frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path, index=False)
        except (
            ValueError,
            TypeError,
            OverflowError,
            ImportError,
        ):  # pyarrow refuses some mixed columns: not ours to read
            return
        try:
            bars = read_bars(path)
        except InputError:
            return
        assert "timestamps" in bars.columns and len(bars) == len(df)
        try:
            out = predictor.predict(
                bars.drop(columns="timestamps"), bars["timestamps"], yt, pred_len, verbose=False, generator=gen
            )
        except InputError:
            return
        _check(out.index, out.to_numpy(), yt)


def test_the_generator_reaches_both_outcomes(predictor):
    """Guard against a vacuous property: the strategy must produce valid frames and refused ones."""
    outcomes = set()

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(case=cases())
    def probe(case):
        df, xt, yt, pred_len, _ = case
        try:
            predictor.predict(df, xt, yt, pred_len, sample_count=1, verbose=False)
            outcomes.add("result")
        except InputError:
            outcomes.add("refused")

    probe()
    assert outcomes == {"result", "refused"}
