"""Reading a Qlib provider directory (written here from real A-share bars) with numpy and, if installed, pyqlib."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kronos.bars.preprocessing import prepare_features
from kronos.bars.qlib import QlibSource, iter_qlib_series, pyqlib_available
from kronos.bars.sources import DataSourceError

SYMBOLS = ["SH600519", "SZ000001", "SZ300750"]
SUSPENDED = {"SZ000001": ["2019-03-05", "2019-03-06", "2019-07-15"]}
FIELDS = ["open", "high", "low", "close", "volume", "amount"]


@pytest.fixture(scope="module")
def provider(shared_data, tmp_path_factory):
    """A provider directory in Qlib's layout: calendar, instrument lists, one float32 .bin per field."""
    panel = pd.read_parquet(shared_data / "cn_equity" / "ashare_daily_panel.parquet")
    panel = panel[
        panel["symbol"].isin(SYMBOLS) & (panel["timestamps"] >= "2019-01-01") & (panel["timestamps"] < "2020-01-01")
    ]
    root = tmp_path_factory.mktemp("qlib")
    calendar = pd.DatetimeIndex(sorted(panel["timestamps"].unique()))
    (root / "calendars").mkdir()
    (root / "calendars" / "day.txt").write_text("\n".join(d.strftime("%Y-%m-%d") for d in calendar) + "\n")
    (root / "instruments").mkdir()
    lines, source = [], {}
    for sym in SYMBOLS:
        df = panel[panel["symbol"] == sym].set_index("timestamps")
        df = df.drop(pd.DatetimeIndex(SUSPENDED.get(sym, [])), errors="ignore")
        source[sym] = df
        first, last = calendar.get_loc(df.index[0]), calendar.get_loc(df.index[-1])
        aligned = df.reindex(calendar[first : last + 1])  # NaN on days without a bar, as Qlib stores them
        folder = root / "features" / sym.lower()
        folder.mkdir(parents=True)
        for field in FIELDS:
            np.concatenate([[first], aligned[field].to_numpy()]).astype("<f4").tofile(folder / f"{field}.day.bin")
        lines.append(f"{sym}\t{df.index[0]:%Y-%m-%d}\t{df.index[-1]:%Y-%m-%d}")
    (root / "instruments" / "all.txt").write_text("\n".join(lines) + "\n")
    (root / "instruments" / "half.txt").write_text(
        "SH600519\t2019-01-01\t2019-06-30\nSZ000001\t2019-10-01\t2019-12-31\n"
    )
    return root, source


def test_numpy_reader_returns_the_bars_without_suspended_days(provider):
    root, source = provider
    got = {s.symbol: s for s in iter_qlib_series(QlibSource(str(root)))}
    assert sorted(got) == SYMBOLS
    for sym, s in got.items():
        ref = source[sym]
        assert len(s) == len(ref)
        np.testing.assert_array_equal(s.timestamps, ref.index.as_unit("ns").asi8)
        np.testing.assert_array_equal(s.features, prepare_features(ref[FIELDS].astype(np.float32).astype(np.float64)))
    assert not np.isin(pd.DatetimeIndex(SUSPENDED["SZ000001"]).asi8, got["SZ000001"].timestamps).any()


def test_market_membership_spans_and_time_bounds(provider):
    root, source = provider
    got = {s.symbol: s for s in iter_qlib_series(QlibSource(str(root), instruments="half", end_time="2019-11-30"))}
    assert sorted(got) == ["SH600519", "SZ000001"]
    t519 = pd.DatetimeIndex(got["SH600519"].timestamps)
    assert t519.min() == source["SH600519"].index.min() and t519.max() <= pd.Timestamp("2019-06-30")
    t001 = pd.DatetimeIndex(got["SZ000001"].timestamps)
    assert t001.min() >= pd.Timestamp("2019-10-01") and t001.max() <= pd.Timestamp("2019-11-30")
    explicit = [s.symbol for s in iter_qlib_series(QlibSource(str(root), instruments=("SZ300750",)))]
    assert explicit == ["SZ300750"]


def test_bad_provider_directories_are_named(provider, tmp_path):
    root, _ = provider
    with pytest.raises(DataSourceError, match=r"calendars.*1min\.txt.*not found"):
        list(iter_qlib_series(QlibSource(str(root), freq="1min")))
    with pytest.raises(DataSourceError, match=r"instruments.*csi300\.txt.*not found"):
        list(iter_qlib_series(QlibSource(str(root), instruments="csi300")))
    with pytest.raises(DataSourceError, match=r"features for 'SH000000' not found"):
        list(iter_qlib_series(QlibSource(str(root), instruments=("SH000000",))))


@pytest.mark.skipif(not pyqlib_available(), reason="pyqlib is not installed (pip install 'kronos-kline[qlib]')")
def test_pyqlib_reader_agrees_with_the_numpy_reader(provider):
    root, _ = provider
    ours = {s.symbol: s for s in iter_qlib_series(QlibSource(str(root), use_pyqlib=False))}
    theirs = {s.symbol: s for s in iter_qlib_series(QlibSource(str(root), use_pyqlib=True))}
    assert sorted(ours) == sorted(theirs)
    for sym in ours:
        np.testing.assert_array_equal(ours[sym].timestamps, theirs[sym].timestamps)
        np.testing.assert_allclose(ours[sym].features, theirs[sym].features, rtol=1e-6)
