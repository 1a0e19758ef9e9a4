"""kronos.bars.reader: the one reader of bar files, and the same file behaving the same in every command.

Built from the bundled samples and small frames only, so it runs in a bare clone (no ../shared).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kronos.bars.preprocessing import FEATURE_COLS, InputError
from kronos.bars.reader import DataSourceError, discover_files, iter_bars, read_bars, read_table
from kronos.bars.samples import load_sample, sample_data_path

PRICES = ["open", "high", "low", "close"]


@pytest.fixture()
def eurusd(eurusd_bars):
    """Hourly EURUSD bars without amount (the bundled sample)."""
    return eurusd_bars


@pytest.fixture(scope="module")
def googl() -> pd.DataFrame:
    """The bundled GOOGL sample as it is on disk: timestamps, open, high, low, close, volume."""
    return pd.read_csv(sample_data_path("googl"), parse_dates=["timestamps"])


def _same_bars(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got["timestamps"]) == list(pd.DatetimeIndex(want["timestamps"]))
    for c in [c for c in FEATURE_COLS if c in want.columns]:
        np.testing.assert_array_equal(got[c].to_numpy(), want[c].to_numpy(dtype=np.float64))


# -- the reader's rules ---------------------------------------------------------------------------


def test_canonical_frame_of_the_bundled_sample(googl):
    bars = read_bars(sample_data_path("googl"))
    assert list(bars.columns) == ["timestamps", *PRICES, "volume"]
    assert all(bars[c].dtype == np.float64 for c in bars.columns[1:])
    _same_bars(bars, googl)
    pd.testing.assert_frame_equal(load_sample("googl"), bars)


def test_case_and_aliases_and_a_date_column(googl, tmp_path):
    frame = googl.iloc[:50].rename(columns={"timestamps": " Date ", "volume": "Vol"})
    frame.columns = [c if c in (" Date ", "Vol") else c.upper() for c in frame.columns]
    frame["AMT"] = frame["Vol"] * 2.0
    frame["Comment"] = "dropped"
    frame.to_csv(tmp_path / "upper.csv", index=False)
    bars = read_bars(tmp_path / "upper.csv")
    assert list(bars.columns) == ["timestamps", *PRICES, "volume", "amount"]
    _same_bars(bars, googl.iloc[:50])
    np.testing.assert_array_equal(bars["amount"], 2.0 * googl["volume"].iloc[:50])
    turnover = read_bars(googl.iloc[:5].rename(columns={"volume": "Turnover"}))
    assert "amount" in turnover.columns and "volume" not in turnover.columns
    both = read_bars(googl.iloc[:5].assign(vol=-1.0))  # the canonical name wins over its alias
    np.testing.assert_array_equal(both["volume"], googl["volume"].iloc[:5])


@pytest.mark.parametrize("name", ["timestamps", "timestamp", "DateTime", "date", "TIME"])
def test_time_column_candidates(googl, name):
    bars = read_bars(googl.iloc[:10].rename(columns={"timestamps": name}))
    _same_bars(bars, googl.iloc[:10])


def test_a_time_index_in_a_frame_and_in_parquet(googl, tmp_path):
    indexed = googl.iloc[:40].set_index("timestamps")
    _same_bars(read_bars(indexed), googl.iloc[:40])
    indexed.rename_axis("Date").to_parquet(tmp_path / "indexed.parquet")
    _same_bars(read_bars(tmp_path / "indexed.parquet"), googl.iloc[:40])
    googl.iloc[:40].to_parquet(tmp_path / "plain.pq", index=False)
    _same_bars(read_bars(tmp_path / "plain.pq"), googl.iloc[:40])


def test_a_configured_time_column_wins_and_must_exist(googl):
    frame = googl.iloc[:10].assign(when=googl["timestamps"].iloc[:10] + pd.Timedelta(hours=1))
    bars = read_bars(frame, time_column="When")
    assert bars["timestamps"].iloc[0] == googl["timestamps"].iloc[0] + pd.Timedelta(hours=1)
    with pytest.raises(InputError, match=r"no time column 'stamp'; the columns are \['timestamps', 'open'"):
        read_bars(frame, time_column="stamp")
    with pytest.raises(InputError, match=r"no timestamp column; expected one of \['timestamps'"):
        read_bars(googl.iloc[:10].rename(columns={"timestamps": "when"}))


@pytest.mark.parametrize("unit, scale", [("s", 10**9), ("ms", 10**6), ("us", 10**3)])
def test_epoch_timestamps_get_their_unit_from_the_magnitude(googl, tmp_path, unit, scale):
    rows = googl.iloc[:30]
    rows.assign(timestamps=rows["timestamps"].astype("int64") // scale).to_csv(tmp_path / "epoch.csv", index=False)
    _same_bars(read_bars(tmp_path / "epoch.csv"), rows)
    with pytest.raises(InputError, match="not epoch timestamps"):
        read_bars(rows.assign(timestamps=np.arange(30)))  # row numbers are not times


def test_a_symbol_column_makes_a_panel(googl, tmp_path):
    a = googl.iloc[:30].assign(ticker="AAA")
    b = googl.iloc[:30].assign(ticker="BBB", close=googl["close"].iloc[:30] * 2, high=googl["high"].iloc[:30] * 2)
    panel = pd.concat([a, b]).sort_values(["timestamps", "ticker"], kind="stable")  # interleaved rows
    panel.to_parquet(tmp_path / "panel.parquet", index=False)
    bars = read_bars(tmp_path / "panel.parquet", symbol_column="Ticker")
    assert list(bars.columns) == ["symbol", "timestamps", *PRICES, "volume"] and len(bars) == 60
    series = {name: frame for name, _, frame in iter_bars(tmp_path / "panel.parquet", symbol_column="ticker")}
    assert sorted(series) == ["AAA", "BBB"]
    _same_bars(series["BBB"], b)
    assert list(series["BBB"].index[:3]) == [1, 3, 5]  # the file's data rows, for messages
    only = [name for name, _, _ in iter_bars(tmp_path / "panel.parquet", symbol_column="ticker", symbols=["AAA"])]
    assert only == ["AAA"]
    with pytest.raises(DataSourceError, match=r"\['ZZZ'\]: series not found"):
        list(iter_bars(tmp_path / "panel.parquet", symbol_column="ticker", symbols=["AAA", "ZZZ"]))
    bad = panel.copy()
    bad.loc[(bad["ticker"] == "BBB").to_numpy() & (np.arange(60) == 9), "low"] = 1e6
    bad.to_csv(tmp_path / "panel.csv", index=False)
    with pytest.raises(DataSourceError, match=r"panel\.csv \(symbol 'BBB'\): invalid bar at row 4 \(index 9\)"):
        read_bars(tmp_path / "panel.csv", symbol_column="ticker")


def test_rows_in_any_order_are_read_in_time_order(googl, tmp_path):
    shuffled = googl.iloc[:30].sample(frac=1.0, random_state=0)
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    _same_bars(read_bars(tmp_path / "shuffled.csv"), googl.iloc[:30])
    panel = pd.concat([shuffled.assign(symbol="B"), googl.iloc[:30].assign(symbol="A")])
    bars = read_bars(panel)
    assert list(bars["symbol"].iloc[[0, 29, 30]]) == ["B", "B", "A"]  # the series keep their places
    _same_bars(bars[bars["symbol"] == "B"], googl.iloc[:30])
    ((_, _, b),) = list(iter_bars(tmp_path / "shuffled.csv"))
    assert b["timestamps"].is_monotonic_increasing and list(b.index[:2]) != [0, 1]  # file rows kept for messages
    bad = shuffled.copy()
    bad.iloc[3, 0] = bad.iloc[10, 0]
    with pytest.raises(DataSourceError, match=r"duplicate timestamps; row (10|3) \(.*\) is a duplicate of row (3|10)"):
        read_bars(bad)


def test_folders_are_searched_recursively_and_names_are_unique(googl, tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    googl.iloc[:20].to_csv(tmp_path / "a" / "ONE.csv.gz", index=False)
    googl.iloc[:20].to_parquet(tmp_path / "a" / "b" / "TWO.parquet", index=False)
    (tmp_path / "a" / "notes.txt").write_text("not a table")
    assert [p.name for p in discover_files(tmp_path / "a")] == ["ONE.csv.gz", "TWO.parquet"]
    assert [name for name, _, _ in iter_bars(tmp_path / "a")] == ["ONE", "TWO"]
    googl.iloc[:20].to_csv(tmp_path / "a" / "b" / "ONE.csv", index=False)
    with pytest.raises(DataSourceError, match="series 'ONE' appears in both"):
        list(iter_bars(tmp_path / "a"))


def test_a_file_that_is_not_csv_or_parquet_is_refused_by_name(googl, tmp_path):
    googl.iloc[:10].to_csv(tmp_path / "bars.txt", index=False)
    for call in (read_bars, discover_files):
        with pytest.raises(DataSourceError, match=r"bars\.txt: not a CSV or Parquet file name \(expected one of"):
            call(tmp_path / "bars.txt")
    (tmp_path / "broken.parquet").write_text("timestamps,open\n")
    with pytest.raises(DataSourceError, match=r"broken\.parquet: cannot be read as Parquet"):
        read_bars(tmp_path / "broken.parquet")
    with pytest.raises(DataSourceError, match=r"absent\.csv does not exist"):
        read_bars(tmp_path / "absent.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataSourceError, match=r"empty\.csv: the file is empty"):
        read_bars(tmp_path / "empty.csv")


@pytest.mark.parametrize(
    "mutate, pattern",
    [
        (lambda d: d.drop(columns=["close"]), r"bad\.csv: missing price column\(s\) \['close'\]"),
        (lambda d: d.assign(Close=1.0), r"bad\.csv: duplicate column name\(s\) \['close'\]"),
        (
            lambda d: d.assign(close=d["close"].where(d.index != 7)),
            r"bad\.csv: column 'close' has a NaN value at row 7",
        ),
        (
            lambda d: d.assign(low=d["low"].where(d.index != 5, -1.0)),
            r"bad\.csv: column 'low' has a non-positive price -1\.0 at row 5",
        ),
        (
            lambda d: d.assign(high=d["high"].where(d.index != 11, d["low"] / 2)),
            r"bad\.csv: invalid bar at row 11 \(index 11\): high [\d.]+ is below low",
        ),
        (
            lambda d: d.assign(timestamps=d["timestamps"].where(d.index != 9, d["timestamps"][8])),
            r"bad\.csv: duplicate timestamps; row 9 \(.*\) is a duplicate of row 8",
        ),
        (lambda d: d.assign(timestamps=["not a date"] * len(d)), r"column 'timestamps' cannot be read as timestamps"),
        (lambda d: d.iloc[:0], r"bad\.csv: no bars"),
    ],
)
@pytest.mark.filterwarnings("ignore:Could not infer format")
def test_bad_files_name_the_file_column_row_and_value(googl, tmp_path, mutate, pattern):
    mutate(googl.iloc[:20].copy()).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataSourceError, match=pattern):
        read_bars(tmp_path / "bad.csv")


def test_read_table_reads_times_without_prices(googl, tmp_path):
    googl[["timestamps"]].iloc[:3].rename(columns={"timestamps": "Date"}).to_csv(tmp_path / "t.csv", index=False)
    times = read_table(tmp_path / "t.csv")
    assert list(times.columns) == ["timestamps"] and times["timestamps"].iloc[2] == googl["timestamps"].iloc[2]


# -- epoch milliseconds -----------------------------------------------------------------------------


def test_reader_detects_binance_milliseconds(tmp_path, eurusd):
    rows = eurusd.iloc[:30].copy()
    ms = rows.assign(timestamps=rows["timestamps"].astype("int64") // 10**6)
    ms.to_csv(tmp_path / "bars.csv", index=False)
    back = read_bars(tmp_path / "bars.csv")
    assert (back["timestamps"] == rows["timestamps"].reset_index(drop=True)).all()
