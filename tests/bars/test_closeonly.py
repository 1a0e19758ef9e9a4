"""Users' column conventions in the one reader: Nixtla's ``unique_id``/``ds``/``y`` and close-only series."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from kronos.bars.closeonly import CloseOnlyNotice, close_only_bars, is_close_only
from kronos.bars.reader import DataSourceError, iter_bars, read_bars, resolve_columns
from kronos.core.errors import InputError


def test_close_only_bars_open_at_the_previous_close(googl_bars):
    close = googl_bars["close"].to_numpy()
    bars = close_only_bars(close)
    assert bars["open"].iloc[0] == close[0]
    np.testing.assert_array_equal(bars["open"].to_numpy()[1:], close[:-1])
    np.testing.assert_array_equal(bars["high"], np.maximum(bars["open"], close))
    np.testing.assert_array_equal(bars["low"], np.minimum(bars["open"], close))
    with pytest.raises(InputError, match="row 2"):
        close_only_bars([1.0, 2.0, -1.0])


def test_is_close_only_needs_a_close_and_no_other_price():
    assert is_close_only(["ds", "y"]) and is_close_only(["Date", "Close", "Volume"])
    assert not is_close_only(["date", "open", "close"]) and not is_close_only(["date", "volume"])


def test_nixtla_panel_file_is_read_without_flags(googl_bars, eurusd_bars, tmp_path):
    panel = pd.concat([googl_bars.assign(unique_id="G").tail(30), eurusd_bars.assign(unique_id="E").tail(20)])
    path = tmp_path / "p.csv"
    panel.rename(columns={"timestamps": "ds"}).to_csv(path, index=False)
    assert resolve_columns(pd.read_csv(path, nrows=1).columns) == ("unique_id", "ds")
    bars = read_bars(path)
    assert sorted(bars["symbol"].unique()) == ["E", "G"] and len(bars) == 50
    assert {name for name, _, _ in iter_bars(path)} == {"E", "G"}


def test_close_only_file_becomes_bars_with_one_notice(googl_bars, tmp_path):
    path = tmp_path / "closes.csv"
    googl_bars[["timestamps", "close"]].rename(columns={"timestamps": "ds", "close": "y"}).to_csv(path, index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bars = read_bars(path)
    assert [w.category for w in caught] == [CloseOnlyNotice]
    assert str(path) in str(caught[0].message)
    expected = close_only_bars(googl_bars["close"])
    np.testing.assert_allclose(bars[["open", "high", "low", "close"]].to_numpy(), expected.to_numpy())


def test_partial_bars_are_still_refused_by_name(googl_bars):
    with pytest.raises(DataSourceError, match=r"missing price column\(s\) \['high', 'low'\]"):
        read_bars(googl_bars[["timestamps", "open", "close"]])
