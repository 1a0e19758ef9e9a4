"""Synthetic K-lines: unconditional and continuing a real history, always valid bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from kronos import InputError
from kronos.forecasting.prepared import repair_bars, resolve_lookback

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def predictor(tiny_predictor):
    return tiny_predictor


@pytest.fixture()
def ibm(sp500_bars):
    """A long real daily series (S&P 500 index, 1999..2018, from arch; once IBM from ../shared)."""
    return sp500_bars


def _assert_valid(frame: pd.DataFrame) -> None:
    o, h, lo, c = (frame[k].to_numpy() for k in ("open", "high", "low", "close"))
    assert (h >= np.maximum(o, c)).all() and (lo <= np.minimum(o, c)).all()
    assert (frame[["volume", "amount"]].to_numpy() >= 0).all() and (lo > 0).all()
    assert np.isfinite(frame.to_numpy()).all()


def test_unconditional_generation_gives_valid_bars(predictor):
    frames = predictor.generate_synthetic(
        80, n_paths=3, start="2021-03-01", freq="B", generator=torch.Generator().manual_seed(1)
    )
    assert len(frames) == 3
    for frame in frames:
        assert frame.shape == (80, 6) and frame.index[0] == pd.Timestamp("2021-03-01")
        assert (frame.index.dayofweek < 5).all()
        _assert_valid(frame)
    assert not np.allclose(frames[0]["close"], frames[1]["close"])  # paths differ
    again = predictor.generate_synthetic(
        80, n_paths=3, start="2021-03-01", freq="B", generator=torch.Generator().manual_seed(1)
    )
    np.testing.assert_allclose(again[2].to_numpy(), frames[2].to_numpy())  # seeded: reproducible


def test_generation_continuing_a_real_history(predictor, ibm):
    hist = ibm.iloc[4900:5000].reset_index(drop=True)
    frames = predictor.generate_synthetic(
        70, history=hist, x_timestamp=hist["timestamps"], n_paths=2
    )  # longer than max_context
    for frame in frames:
        assert len(frame) == 70 and frame.index[0] > hist["timestamps"].iloc[-1]
        assert (frame.index.dayofweek < 5).all()  # business days, like the history
        _assert_valid(frame)
        # the level continues the history (same normalisation), not some arbitrary scale
        assert 0.5 < frame["close"].median() / hist["close"].median() < 2.0
    like = predictor.generate_synthetic(30, like=hist)
    assert 0.5 < like[0]["close"].median() / hist["close"].mean() < 2.0


def test_a_continuation_starts_from_the_last_bar_as_forecasts_do(predictor, ibm):
    """Anchored as forecasts are: the same draws, every close moved by one shift, the last close's reconstruction
    error; the unconditional series have no history to anchor on."""
    hist = ibm.iloc[4900:4950].reset_index(drop=True)

    def run(**kw):
        return predictor.generate_synthetic(
            12,
            history=hist,
            x_timestamp=hist["timestamps"],
            n_paths=3,
            generator=torch.Generator().manual_seed(4),
            **kw,
        )

    anchored, raw = run(), run(anchor=False)
    shift = np.stack([a["close"].to_numpy() - r["close"].to_numpy() for a, r in zip(anchored, raw)])
    assert abs(shift.mean()) > 1e-4 * hist["close"].iloc[-1] and np.ptp(shift) < 1e-6 * hist["close"].iloc[-1]
    one = predictor.forecast(hist, hist["timestamps"], anchored[0].index, 12, sample_count=2, seed=1, lookback="auto")
    alone = predictor.forecast(
        hist, hist["timestamps"], anchored[0].index, 12, sample_count=2, seed=1, lookback="auto", anchor=False
    )
    np.testing.assert_allclose(one.paths[..., 3] - alone.paths[..., 3], shift.mean(), rtol=1e-4)
    free = predictor.generate_synthetic(5, n_paths=1, anchor=True, generator=torch.Generator().manual_seed(2))
    again = predictor.generate_synthetic(5, n_paths=1, anchor=False, generator=torch.Generator().manual_seed(2))
    np.testing.assert_array_equal(free[0].to_numpy(), again[0].to_numpy())


def test_a_long_history_continues_like_its_tail(predictor, ibm):
    hist = ibm.iloc[4000:4400].reset_index(drop=True)  # 400 bars, longer than the tiny model's context
    used = resolve_lookback("auto", predictor.max_context, 20)
    assert used < len(hist)
    kwargs = {"n_paths": 2, "generator": None}
    runs = []
    for frame in (hist, hist.iloc[-used:].reset_index(drop=True)):
        kwargs["generator"] = torch.Generator().manual_seed(4)
        runs.append(predictor.generate_synthetic(20, history=frame, x_timestamp=frame["timestamps"], **kwargs))
    for a, b in zip(*runs):
        pd.testing.assert_frame_equal(a, b)
    # every bar given (the original's normalisation over the whole history) is another forecast
    kwargs["generator"] = torch.Generator().manual_seed(4)
    everything = predictor.generate_synthetic(20, history=hist, x_timestamp=hist["timestamps"], lookback=None, **kwargs)
    assert not np.allclose(everything[0]["close"], runs[0][0]["close"])


def test_repair_bars_enforces_validity():
    broken = np.array(
        [
            [10.0, 9.0, 11.0, 10.5, -5.0, 3.0],  # high below open/close, low above them, negative volume
            [10.0, 12.0, 9.0, 11.0, 100.0, 1000.0],  # already valid
            [-1.0, 1.0, -2.0, 0.5, 0.0, -1.0],  # non-positive prices
        ]
    )
    fixed, share = repair_bars(broken, price_floor=1e-8)
    assert share == pytest.approx(2 / 3)
    np.testing.assert_array_equal(fixed[1], broken[1])
    assert fixed[0, 1] == 10.5 and fixed[0, 2] == 10.0 and fixed[0, 4] == 0.0
    assert (fixed[2, :4] > 0).all() and fixed[2, 5] == 0.0
    o, h, lo, c = fixed[:, 0], fixed[:, 1], fixed[:, 2], fixed[:, 3]
    assert (h >= np.maximum(o, c)).all() and (lo <= np.minimum(o, c)).all()


def test_generation_bad_input(predictor, ibm):
    with pytest.raises(InputError, match="n_bars"):
        predictor.generate_synthetic(0)
    with pytest.raises(InputError, match="x_timestamp"):
        predictor.generate_synthetic(5, history=ibm.iloc[:50])
    with pytest.raises(InputError, match="price_std"):
        predictor.generate_synthetic(5, price_std=0)
