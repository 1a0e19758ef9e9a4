"""Reading bars from CSV/Parquet files, folders and symbol panels (real data from ../shared/data and the bundled
EURUSD sample)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kronos.bars.preprocessing import calendar_features, prepare_features
from kronos.bars.sources import DataSourceError, discover_files, iter_series


@pytest.fixture(scope="module")
def a_share_5min(shared_data):
    return pd.read_parquet(shared_data / "cn_equity" / "SH600977_5min.parquet")


@pytest.fixture(scope="module")
def sp500_slice(shared_data):
    panel = pd.read_parquet(shared_data / "us_equity" / "sp500_daily_panel.parquet")
    keep = panel[panel["symbol"].isin(["AAPL", "MSFT", "XOM"])]
    return keep.groupby("symbol").head(300).reset_index(drop=True)


def test_parquet_file_is_one_instrument_named_after_the_file(shared_data, a_share_5min):
    (series,) = list(iter_series(shared_data / "cn_equity" / "SH600977_5min.parquet"))
    assert series.symbol == "SH600977_5min"
    assert len(series) == len(a_share_5min) == 2500
    np.testing.assert_array_equal(series.features, prepare_features(a_share_5min))
    np.testing.assert_array_equal(
        series.timestamps, a_share_5min["timestamps"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    )


def test_csv_reads_the_same_as_parquet(tmp_path, a_share_5min):
    part = a_share_5min.iloc[:400]
    part.to_parquet(tmp_path / "X.parquet")
    part.rename(columns={"volume": "VOL", "amount": "Amt"}).to_csv(tmp_path / "X.csv", index=False)  # aliases, any case
    (from_pq,) = list(iter_series(tmp_path / "X.parquet"))
    (from_csv,) = list(iter_series(tmp_path / "X.csv"))
    np.testing.assert_allclose(from_csv.features, from_pq.features, rtol=1e-12)
    np.testing.assert_array_equal(from_csv.timestamps, from_pq.timestamps)


def test_long_table_with_symbol_column_yields_one_series_per_symbol(tmp_path, sp500_slice):
    # Interleave the symbols (sorted by time, then symbol): rows of one symbol stay in time order.
    long = sp500_slice.sort_values(["timestamps", "symbol"], kind="stable").drop(columns=[]).reset_index(drop=True)
    long.to_csv(tmp_path / "panel.csv", index=False)
    got = {s.symbol: s for s in iter_series(tmp_path / "panel.csv")}
    assert sorted(got) == ["AAPL", "MSFT", "XOM"]
    for sym, s in got.items():
        ref = sp500_slice[sp500_slice["symbol"] == sym]
        assert len(s) == len(ref) == 300
        np.testing.assert_allclose(
            s.features[:, :5], ref[["open", "high", "low", "close", "volume"]].to_numpy(), rtol=1e-12
        )
        # no amount column: amount = volume * mean(open, high, low, close), as at inference
        expected_amount = ref["volume"].to_numpy() * ref[["open", "high", "low", "close"]].to_numpy().mean(axis=1)
        np.testing.assert_allclose(s.features[:, 5], expected_amount, rtol=1e-12)


def test_symbols_filter_and_unknown_symbol(shared_data):
    panel = shared_data / "cn_equity" / "ashare_daily_panel.parquet"
    got = [s.symbol for s in iter_series(panel, symbols=["SH600519", "SZ000001"])]
    assert got == ["SH600519", "SZ000001"]
    with pytest.raises(DataSourceError, match=r"\['SH999999'\].*not found"):
        list(iter_series(panel, symbols=["SH600519", "SH999999"]))


def test_folder_discovery_and_glob(shared_data):
    files = discover_files(shared_data / "fx", pattern="*_daily.parquet")
    assert files and all(f.name.endswith("_daily.parquet") for f in files)
    assert len(discover_files(shared_data / "fx")) > len(files)
    with pytest.raises(DataSourceError, match="no CSV or Parquet file matching"):
        discover_files(shared_data / "fx", pattern="*.nothing")
    with pytest.raises(DataSourceError, match="does not exist"):
        discover_files(shared_data / "no_such_folder")


def _bad_csv(tmp_path, df, name="bad.csv"):
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


@pytest.mark.filterwarnings("ignore:Could not infer format")
@pytest.mark.parametrize(
    "mutate, pattern",
    [
        (lambda d: d.drop(columns=["close"]), r"bad\.csv: missing price column\(s\) \['close'\]"),
        (lambda d: d.assign(close=d["close"].where(d.index != 7)), r"column 'close' has a NaN value at row 7"),
        (
            lambda d: d.assign(low=d["low"].where(d.index != 5, -1.0)),
            r"column 'low' has a non-positive price -1\.0 at row 5",
        ),
        (
            lambda d: d.assign(timestamps=d["timestamps"].where(d.index != 9, d["timestamps"][8])),
            r"row 9 .* is a duplicate of row 8",
        ),
        (lambda d: d.rename(columns={"timestamps": "when"}), r"no timestamp column"),
        (lambda d: d.assign(timestamps=["not a date"] * len(d)), r"column 'timestamps' cannot be read as timestamps"),
    ],
)
def test_bad_input_names_file_column_and_row(tmp_path, eurusd_bars, mutate, pattern):
    path = _bad_csv(tmp_path, mutate(eurusd_bars.iloc[:20].copy()))
    with pytest.raises(DataSourceError, match=pattern) as err:
        list(iter_series(path))
    assert "bad.csv" in str(err.value)


def test_stamps_of_naive_and_tz_aware_times_agree(tmp_path, eurusd_bars):
    part = eurusd_bars.iloc[:50].copy()
    aware = part.assign(timestamps=part["timestamps"].dt.tz_localize("Asia/Shanghai"))
    aware.to_parquet(tmp_path / "aware.parquet")
    (s,) = list(iter_series(tmp_path / "aware.parquet"))
    np.testing.assert_array_equal(
        calendar_features(pd.DatetimeIndex(s.timestamps)), calendar_features(part["timestamps"])
    )
