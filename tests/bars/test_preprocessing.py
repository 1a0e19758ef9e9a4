"""Preprocessing at the edges (issue 12): the normaliser reduces exactly like the original on FX and equity
scales, the fixed eps only where it is negligible, fractional epoch seconds.

The predictor's side of the same edges (FX parity, any price scale, epoch units, float32 limits, invalid bars,
time zones) is in ``tests/forecasting/test_predictor.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kronos.bars.normalizer import NORM_EPS, Normalizer
from kronos.bars.preprocessing import prepare_features

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PRICES = ["open", "high", "low", "close"]


@pytest.fixture()
def eurusd(eurusd_bars):
    """Hourly EURUSD bars without amount (the bundled sample)."""
    return eurusd_bars


# -- the normaliser ---------------------------------------------------------------------------------


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


# -- any price scale ---------------------------------------------------------------------------------


def test_the_fixed_eps_stays_only_where_the_level_makes_it_negligible():
    x = np.array([[1.09, 1.1, 1.08, 1.09, 5.0, 0.001], [1.1, 1.12, 1.09, 1.11, 7.0, 0.003]])
    norm = Normalizer.fit(x)
    denom = norm.denominator
    np.testing.assert_array_equal(denom[:5], norm.std[:5] + np.float32(NORM_EPS))  # ordinary levels: the original's
    assert denom[5] == pytest.approx(norm.std[5], rel=2e-5)  # level 0.002: scale-free
    flat = Normalizer.fit(np.ones((10, 6)) * 1e-7)
    assert np.isfinite(flat.transform(np.ones((10, 6)) * 1e-7)).all()


# -- epoch timestamps --------------------------------------------------------------------------------


def test_fractional_epoch_seconds_keep_their_fraction():
    from kronos.bars.preprocessing import to_datetime_index

    idx = to_datetime_index(pd.Series([1_700_000_000.5, 1_700_000_060.25]))
    assert list(idx) == [pd.Timestamp("2023-11-14 22:13:20.5"), pd.Timestamp("2023-11-14 22:14:20.25")]
