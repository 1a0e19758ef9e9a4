"""Future bar times follow the market: checked against the bars that really came next in real data."""

from __future__ import annotations

import pandas as pd
import pytest

from kronos.bars.calendars import future_timestamps, get_calendar, infer_schedule
from kronos.bars.preprocessing import InputError
from kronos.bars.samples import load_sample


def _cut(times: pd.Series, last: str, n: int) -> tuple[pd.Series, pd.DatetimeIndex]:
    """History up to ``last`` (inclusive) and the ``n`` real bar times after it."""
    times = times.reset_index(drop=True)
    k = int((times <= pd.Timestamp(last)).sum())
    return times.iloc[:k], pd.DatetimeIndex(times.iloc[k : k + n])


@pytest.mark.parametrize("calendar", [None, "XNYS"])
def test_daily_us_equity_skips_weekends_and_holidays_like_the_real_next_bars(sp500_bars, calendar):
    us = sp500_bars["timestamps"]  # the S&P 500 index trades on the NYSE calendar (arch's sample, 1999..2018)
    # Friday 22 Dec 2017: next come Christmas (Mon), a weekend and New Year's Day (Mon).
    hist, real = _cut(us, "2017-12-22", 6)
    got = future_timestamps(hist, 6, calendar=calendar)
    assert list(got) == list(real)
    assert (got.dayofweek < 5).all()
    assert pd.Timestamp("2017-12-25") not in got and pd.Timestamp("2018-01-01") not in got


def test_fixed_date_closures_are_inferred_from_years_of_history(sp500_bars):
    us = sp500_bars["timestamps"]
    closed = infer_schedule(us).closed
    assert {(12, 25), (1, 1), (7, 4)} <= closed
    assert (12, 24) not in closed and (3, 15) not in closed  # ordinary trading days stay open


def test_daily_a_shares_with_the_exchange_calendar_skip_the_spring_festival(shared_data):
    panel = pd.read_parquet(shared_data / "cn_equity" / "ashare_daily_panel.parquet", columns=["symbol", "timestamps"])
    times = panel.loc[panel["symbol"] == panel["symbol"].iloc[0], "timestamps"]
    hist, _ = _cut(times, "2021-02-09", 5)
    got = future_timestamps(hist, 5, calendar="XSHG")
    cal = get_calendar("XSHG", start=pd.Timestamp("2021-01-01"))
    sessions = cal.sessions_in_range("2021-02-10", "2021-03-31")
    assert list(got) == list(sessions[:5])  # exchange sessions only: no weekend, no holiday
    assert not ((got > pd.Timestamp("2021-02-10")) & (got < pd.Timestamp("2021-02-18"))).any()
    # Without the calendar the weekday schedule cannot know the holiday: the calendar is what fixes it.
    assert future_timestamps(hist, 5)[1] == pd.Timestamp("2021-02-11")


@pytest.mark.parametrize("calendar", [None, "XSHG"])
def test_a_share_5min_skips_the_lunch_break_and_the_night(shared_data, calendar):
    times = pd.read_parquet(shared_data / "cn_equity" / "SH600977_5min.parquet", columns=["timestamps"])["timestamps"]
    hist, real = _cut(times, "2024-08-28 11:30", 10)
    got = future_timestamps(hist, 10, calendar=calendar)
    assert got[0] == pd.Timestamp("2024-08-28 13:05") and list(got) == list(real)
    clock = got.hour * 60 + got.minute
    assert not ((clock > 11 * 60 + 30) & (clock <= 13 * 60)).any()
    hist, real = _cut(times, "2024-08-23 15:00", 3)  # a Friday close: next is Monday's first bar
    got = future_timestamps(hist, 3, calendar=calendar)
    assert list(got) == list(real) and got[0] == pd.Timestamp("2024-08-26 09:35")


def test_fx_hourly_skips_the_weekend_close(eurusd_bars):
    times = eurusd_bars["timestamps"]  # the bundled hourly sample, 2017-11..12
    hist, real = _cut(times, "2017-12-08 18:00", 30)  # Friday evening (UTC), no clock change ahead
    got = future_timestamps(hist, 30)
    assert list(got) == list(real)
    assert not (got.dayofweek == 5).any()  # no Saturday bar
    sunday = got[got.dayofweek == 6]
    assert len(sunday) and (sunday.hour >= 21).all()
    assert got[3] - got[2] > pd.Timedelta(hours=24)  # the jump over the weekend


def test_tz_aware_history_keeps_its_zone_and_uses_exchange_local_time(shared_data):
    times = pd.read_parquet(shared_data / "cn_equity" / "SH600977_5min.parquet", columns=["timestamps"])["timestamps"]
    hist, real = _cut(times, "2024-08-28 11:30", 4)
    utc = pd.Series(pd.DatetimeIndex(hist).tz_localize("Asia/Shanghai").tz_convert("UTC"))
    got = future_timestamps(utc, 4, calendar="XSHG")
    assert str(got.tz) == "UTC"
    assert list(got.tz_convert("Asia/Shanghai").tz_localize(None)) == list(real)


def test_coarse_bars_and_errors():
    monthly = pd.Series(pd.date_range("2020-01-31", periods=12, freq="ME"))
    assert list(future_timestamps(monthly, 2)) == list(pd.date_range("2021-01-31", periods=2, freq="ME"))
    with pytest.raises(InputError, match="unknown exchange calendar 'XNOPE'"):
        future_timestamps(monthly, 2, calendar="XNOPE")
    with pytest.raises(InputError, match="not sorted: row 2"):
        future_timestamps(pd.Series(pd.to_datetime(["2020-01-01", "2020-01-02", "2019-12-31"])), 2)
    with pytest.raises(InputError, match="at least two"):
        future_timestamps(pd.Series(pd.to_datetime(["2020-01-01"])), 2)
    with pytest.raises(InputError, match="pred_len"):
        future_timestamps(monthly, 0)


def test_future_timestamps_of_the_sample_skip_weekends():
    bars = load_sample("googl")
    future = future_timestamps(bars["timestamps"], 5)
    assert len(future) == 5 and future[0] > bars["timestamps"].iloc[-1] and (future.dayofweek < 5).all()
