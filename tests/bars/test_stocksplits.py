"""Unadjusted share splits: found by their signature (a whole-ratio gap that stays, volume moving against it) and
undone; real crashes, futures rolls and 3-for-2-sized falls are left alone."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from kronos.bars.samples import load_sample
from kronos.bars.stocksplits import SplitsUndoneNotice, describe_split, find_splits, undo_frame_splits, undo_splits

AT = 500


def _unadjusted(df: pd.DataFrame, ratio: float, at: int = AT) -> pd.DataFrame:
    """``df`` as a vendor that never applied a ``ratio``-for-1 split at row ``at`` would have it."""
    out = df.copy()
    prices = ["open", "high", "low", "close"]
    out.loc[: at - 1, prices] = out.loc[: at - 1, prices] * ratio
    out.loc[: at - 1, "volume"] = out.loc[: at - 1, "volume"] / ratio
    return out


@pytest.fixture(scope="module")
def googl() -> pd.DataFrame:
    return load_sample("googl")


@pytest.mark.parametrize("ratio, label", [(2.0, "2:1"), (3.0, "3:1"), (0.1, "1:10"), (0.05, "1:20")])
def test_a_split_is_found_and_undone_exactly(googl, ratio, label):
    raw = _unadjusted(googl, ratio)
    splits = find_splits(raw["open"].to_numpy(), raw["close"].to_numpy(), raw["volume"].to_numpy())
    assert [(s.index, s.label) for s in splits] == [(AT, label)]
    assert splits[0].ratio == Fraction(label.replace(":", "/"))
    bars = raw[["open", "high", "low", "close", "volume"]].to_numpy()
    np.testing.assert_allclose(undo_splits(bars, splits), googl[["open", "high", "low", "close", "volume"]], rtol=1e-12)


def test_the_adjusted_series_has_none(googl):
    assert find_splits(googl["open"].to_numpy(), googl["close"].to_numpy(), googl["volume"].to_numpy()) == []


def test_a_crash_with_ordinary_volume_is_not_a_split(googl):
    """A fall to half the price (a futures roll, a crash) whose volume stays where it was: no split; without volume
    data the price alone cannot tell, and it is taken for one."""
    crashed = googl.copy()
    crashed.loc[AT:, ["open", "high", "low", "close"]] = crashed.loc[AT:, ["open", "high", "low", "close"]] / 2
    o, c = crashed["open"].to_numpy(), crashed["close"].to_numpy()
    assert find_splits(o, c, crashed["volume"].to_numpy()) == []
    assert [s.label for s in find_splits(o, c, None)] == ["2:1"]


def test_ratios_below_two_and_gaps_off_the_ratio_are_not_splits(googl):
    for ratio in (1.5, 2.12, 1.9):  # 3-for-2; 6% and 5% away from 2-for-1
        raw = _unadjusted(googl, ratio)
        assert find_splits(raw["open"].to_numpy(), raw["close"].to_numpy(), raw["volume"].to_numpy()) == [], ratio


def test_splits_before_start_are_not_looked_for(googl):
    raw = _unadjusted(googl, 2.0)
    o, c, v = raw["open"].to_numpy(), raw["close"].to_numpy(), raw["volume"].to_numpy()
    assert find_splits(o, c, v, start=AT) != []
    assert find_splits(o, c, v, start=AT + 1) == []


def test_the_frame_is_undone_in_a_copy_and_announced(googl):
    raw = _unadjusted(googl, 2.0)
    before = raw.copy()
    with pytest.warns(SplitsUndoneNotice, match=r"2:1 at row 500 \(2018-"):
        out, records = undo_frame_splits(raw, raw["timestamps"], reach=200)
    pd.testing.assert_frame_equal(raw, before)  # the caller's frame is never changed
    pd.testing.assert_frame_equal(out, googl.astype({"volume": float}), rtol=1e-12)
    assert records == [
        {
            "row": AT,
            "time": googl["timestamps"][AT].isoformat(),
            "ratio": "2:1",
            "gap": pytest.approx(records[0]["gap"]),
        }
    ]
    assert 0.48 < records[0]["gap"] < 0.52
    said = describe_split(records[0])  # the one wording the notice, the HTTP API and the evaluation use
    assert said == f"2:1 at row {AT} ({records[0]['time']}), open {records[0]['gap']:.3f} of the close before"
    assert (
        describe_split({**records[0], "time": None})
        == f"2:1 at row {AT}, open {records[0]['gap']:.3f} of the close before"
    )
    untouched, none = undo_frame_splits(raw, reach=len(raw) - AT)  # the split is the window's first bar: one scale
    assert untouched is raw and none == []


def test_frames_it_cannot_read_are_left_to_validation():
    frame = pd.DataFrame({"open": ["a", "b", "c"], "close": [1.0, 2.0, 3.0]})
    assert undo_frame_splits(frame)[0] is frame
    assert undo_frame_splits(pd.DataFrame({"close": [1.0, 2.0, 3.0]}))[1] == []
    bad = pd.DataFrame({"open": [1.0, np.nan, 0.5, 0.5], "close": [1.0, 1.0, 0.5, 0.5]})
    assert undo_frame_splits(bad)[1] == []


# -- real data: ../shared --------------------------------------------------------------------------------


def _bars(shared_data, name: str) -> pd.DataFrame:
    return pd.read_parquet(next(shared_data.rglob(f"{name}.parquet")))


@pytest.mark.parametrize("name", ["XLK_daily", "XLU_daily"])
def test_the_select_sector_spdrs_unadjusted_split_is_found(shared_data, name):
    """The project's own data holds the SPDR ETFs' 2-for-1 split of 2025-11-17 unadjusted (the held-out period of
    XLK in the model card's evaluation follows it)."""
    df = _bars(shared_data, name)
    splits = find_splits(df["open"].to_numpy(), df["close"].to_numpy(), df["volume"].to_numpy())
    assert [(str(df["timestamps"][s.index].date()), s.label) for s in splits] == [("2025-11-17", "2:1")]


@pytest.mark.parametrize(
    "name, day",
    [
        ("NG_daily", "2026-01-29"),  # natural gas front month 7.46 -> 3.74 on a roll: volume unchanged
        ("AAPL_daily", "2000-09-29"),  # Apple's crash to 0.527 of its close, volume tripled
        ("PG_daily", "2000-03-07"),  # Procter & Gamble's fall of a third (a 3-for-2 gap)
    ],
)
def test_real_crashes_and_rolls_are_not_splits(shared_data, name, day):
    df = _bars(shared_data, name)
    at = int(np.flatnonzero(df["timestamps"] == pd.Timestamp(day))[0])
    assert df["close"][at] / df["close"][at - 1] < 0.7  # the fall is there
    window = df.iloc[at - 300 : at + 20]
    v = window["volume"].to_numpy() if "volume" in window else None
    assert find_splits(window["open"].to_numpy(), window["close"].to_numpy(), v) == []
