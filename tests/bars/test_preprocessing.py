"""Correct at the edges (issue 12): parity on FX-like series, any price scale, any timestamp unit or
zone, values beyond float32 and invalid bars.

The FX parity numbers in ``fixtures/parity_eurusd_1h.json`` are greedy forecasts of the original
Kronos code with the ``kronos_tiny`` checkpoints, on windows where a row-major float32 reduction
differs from the original's column-major one in the last bit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kronos import InputError
from kronos.bars.preprocessing import NORM_EPS, Normalizer, calendar_features, prepare_features
from kronos.bars.reader import read_bars

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FIXTURE = Path(__file__).parent / "fixtures" / "parity_eurusd_1h.json"
PRICES = ["open", "high", "low", "close"]


@pytest.fixture()
def predictor(tiny_predictor):
    assert tiny_predictor.clip == 5
    return tiny_predictor


@pytest.fixture()
def eurusd(eurusd_bars):
    """Hourly EURUSD bars without amount (the bundled sample)."""
    return eurusd_bars


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


# -- 1. parity on FX-like series ------------------------------------------------------------------


@pytest.mark.parametrize("use_cache", [False, True], ids=["uncached", "cached"])
@pytest.mark.parametrize("case", ["inside_context", "beyond_context"])
def test_fx_series_without_amount_matches_the_original(predictor, shared_eurusd, case, use_cache):
    spec = json.loads(FIXTURE.read_text())
    c = spec["cases"][case]
    df, xt, yt = _window(shared_eurusd, c["start_row"], c["lookback"], c["pred_len"])
    assert "amount" not in df.columns and (c["lookback"] > spec["max_context"]) == (case == "beyond_context")
    out = _greedy(predictor, df, xt, yt, use_cache=use_cache)
    np.testing.assert_allclose(out.to_numpy(), np.array(c["expected"]), rtol=1e-5)


def _original_reduction(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The original predictor's normalisation, verbatim: pandas fill, .values.astype, numpy reductions."""
    df = df.copy()
    if "volume" not in df.columns:
        df["volume"] = 0.0
        df["amount"] = 0.0
    if "amount" not in df.columns:
        df["amount"] = df["volume"] * df[PRICES].mean(axis=1)
    x = df[PRICES + ["volume", "amount"]].values.astype(np.float32)
    x_mean, x_std = np.mean(x, axis=0), np.std(x, axis=0)
    z = np.clip((x - x_mean) / (x_std + 1e-5), -5, 5)
    return x_mean, x_std, z


@pytest.mark.parametrize(
    "columns", [PRICES + ["volume"], PRICES, PRICES + ["volume", "amount"]], ids=["no_amount", "no_volume", "all"]
)
def test_normaliser_reduces_exactly_like_the_original(eurusd, googl_bars, columns):
    """On FX-scale prices with tick volume (EURUSD) and equity-scale prices with share volume (GOOGL)."""
    frames = [eurusd, googl_bars]
    checked = 0
    for frame in frames:
        if not set(columns) <= set(frame.columns):
            frame = frame.assign(amount=frame["volume"] * frame["close"])
        for start in range(0, 200, 10):
            for lookback in (48, 100, 400):
                df = frame.iloc[start : start + lookback][columns].reset_index(drop=True)
                mean, std, z = _original_reduction(df)
                norm = Normalizer.fit(prepare_features(df), clip=5)
                np.testing.assert_array_equal(norm.mean, mean)
                np.testing.assert_array_equal(norm.std, std)
                np.testing.assert_array_equal(norm.transform(prepare_features(df)), z)
                checked += 1
    assert checked == 2 * 20 * 3


# -- 2. any price scale ------------------------------------------------------------------------------


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


def test_the_fixed_eps_stays_only_where_the_level_makes_it_negligible():
    x = np.array([[1.09, 1.1, 1.08, 1.09, 5.0, 0.001], [1.1, 1.12, 1.09, 1.11, 7.0, 0.003]])
    norm = Normalizer.fit(x)
    denom = norm.denominator
    np.testing.assert_array_equal(denom[:5], norm.std[:5] + np.float32(NORM_EPS))  # ordinary levels: the original's
    assert denom[5] == pytest.approx(norm.std[5], rel=2e-5)  # level 0.002: scale-free
    flat = Normalizer.fit(np.ones((10, 6)) * 1e-7)
    assert np.isfinite(flat.transform(np.ones((10, 6)) * 1e-7)).all()


# -- 3. integer epoch timestamps ---------------------------------------------------------------------


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


def test_fractional_epoch_seconds_keep_their_fraction():
    from kronos.bars.preprocessing import to_datetime_index

    idx = to_datetime_index(pd.Series([1_700_000_000.5, 1_700_000_060.25]))
    assert list(idx) == [pd.Timestamp("2023-11-14 22:13:20.5"), pd.Timestamp("2023-11-14 22:14:20.25")]


def test_reader_detects_binance_milliseconds(tmp_path, eurusd):
    rows = eurusd.iloc[:30].copy()
    ms = rows.assign(timestamps=rows["timestamps"].astype("int64") // 10**6)
    ms.to_csv(tmp_path / "bars.csv", index=False)
    back = read_bars(tmp_path / "bars.csv")
    assert (back["timestamps"] == rows["timestamps"].reset_index(drop=True)).all()


# -- 4. values beyond float32; 5. invalid bars -------------------------------------------------------


@pytest.mark.parametrize(
    "columns,value,match",
    [
        (PRICES, 1e40, r"column 'open' has 1e\+40 at row 3 .*beyond float32"),
        (["volume"], 1e39, r"column 'volume' has 1e\+39 at row 3 .*beyond float32"),
        (PRICES, 1e-46, r"column 'open' has 1e-46 at row 3 .*below the smallest normal float32"),
    ],
)
def test_values_outside_float32_are_refused(predictor, eurusd, columns, value, match):
    df, xt, yt = _window(eurusd, 500, 20, 4)
    df = df.copy()
    df.loc[3, columns] = value
    with pytest.raises(InputError, match=match):
        _greedy(predictor, df, xt, yt)


def test_a_spread_that_overflows_float32_is_refused(predictor, eurusd):
    df, xt, yt = _window(eurusd, 500, 20, 4)
    df = df.assign(volume=[1e37 if i % 2 else 1.0 for i in range(20)])
    with pytest.raises(InputError, match=r"'volume'.*overflows float32"):
        _greedy(predictor, df, xt, yt)


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


# -- 6. time zones -----------------------------------------------------------------------------------


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
