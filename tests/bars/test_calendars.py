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
    assert future_timestamps(hist, 5, calendar="own")[1] == pd.Timestamp("2021-02-11")


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


def _shared_times(shared_data, path: str) -> pd.Series:
    return pd.read_parquet(shared_data / path, columns=["timestamps"])["timestamps"]


@pytest.mark.parametrize(
    ("cut", "reopen"), [("2019-03-08 21:00", "2019-03-10 21:00"), ("2019-11-01 20:00", "2019-11-03 22:00")]
)
@pytest.mark.parametrize("aware", [False, True])
def test_fx_hourly_reopens_at_the_new_york_roll_across_both_daylight_saving_changes(shared_data, cut, reopen, aware):
    # EURUSD hourly in UTC: Friday's close and Sunday's reopen are 17:00 New York, 21:00 or 22:00 UTC with the season.
    times = _shared_times(shared_data, "fx/EURUSD_1h.parquet")
    hist, real = _cut(times, cut, 30)
    if aware:  # the same instants written in New York time: the answer is the same instants
        hist = pd.Series(pd.DatetimeIndex(hist).tz_localize("UTC").tz_convert("America/New_York"))
        real = real.tz_localize("UTC").tz_convert("America/New_York")
    got = future_timestamps(hist, 30)
    assert got[0] == (pd.Timestamp(reopen, tz="UTC").tz_convert("America/New_York") if aware else pd.Timestamp(reopen))
    assert list(got) == list(real)


@pytest.mark.parametrize(
    ("cut", "day", "hours"), [("2020-03-07 23:00", "2020-03-08", 23), ("2020-10-31 23:00", "2020-11-01", 25)]
)
def test_a_24_7_series_in_a_daylight_saving_zone_neither_raises_nor_skips_an_hour(shared_data, cut, day, hours):
    # Gemini BTCUSD hourly, written in New York time: the spring gap has no 02:00, the fall overlap two 01:00s.
    times = _shared_times(shared_data, "crypto/GEMINI-BTCUSD_1h.parquet")
    hist, real = _cut(times, cut, 30)
    ny = pd.Series(pd.DatetimeIndex(hist).tz_localize("UTC").tz_convert("America/New_York"))
    got = future_timestamps(ny, 30)
    assert list(got) == list(real.tz_localize("UTC").tz_convert("America/New_York"))
    assert (pd.Series(got).diff().dropna() == pd.Timedelta(hours=1)).all()
    assert (got.strftime("%Y-%m-%d") == day).sum() == hours  # 23 bars on the spring day, 25 on the fall day


def test_nse_5min_special_saturdays_do_not_become_the_rule(shared_data):
    times = _shared_times(shared_data, "in_equity/TATASTEEL_5min.parquet")
    assert (times.dt.dayofweek == 5).sum() > 0  # the file holds special Saturday sessions
    hist, real = _cut(times, "2024-05-17 15:25", 80)  # Friday before the special Saturday 18 May 2024
    for calendar in ("own", "auto", "XBOM"):
        got = future_timestamps(hist, 80, calendar=calendar)
        assert got[0] == pd.Timestamp("2024-05-20 09:15") or got[0] == pd.Timestamp("2024-05-21 09:15"), calendar
        assert not (got.dayofweek >= 5).any(), calendar
    got = future_timestamps(hist, 80, calendar="own")  # 20 May 2024 was an election holiday in Mumbai
    assert got[0] == pd.Timestamp("2024-05-20 09:15") and set(got.time) <= set(times.dt.time)


def test_moving_us_holidays_are_learnt_without_a_calendar(googl_bars):
    # The demo's GOOGL history ends 2018-08-29: Labor Day (first Monday of September) and Thanksgiving (fourth
    # Thursday of November) are closures learnt from the years before, as 25 December is.
    got = future_timestamps(googl_bars["timestamps"], 70, calendar="own")
    assert pd.Timestamp("2018-09-03") not in got and pd.Timestamp("2018-11-22") not in got
    assert pd.Timestamp("2018-09-04") in got and pd.Timestamp("2018-11-23") in got
    sched = infer_schedule(googl_bars["timestamps"])
    assert {(9, 0, 1), (11, 3, 4)} <= sched.closed_weekdays


def test_the_2262_edge_is_one_clear_error(googl_bars):
    times = googl_bars["timestamps"]
    weeks = (pd.Timestamp("2262-03-20") - times.iloc[-1]).days // 7
    shifted = times + pd.Timedelta(weeks=weeks)  # real spacing and weekdays, ending three weeks before the end of time
    got = future_timestamps(shifted, 5, calendar="own")
    assert got[0] > shifted.iloc[-1] and got.is_monotonic_increasing and not (got.dayofweek >= 5).any()
    with pytest.raises(InputError, match=r"would pass 2262-04-11, the last day a pandas timestamp can hold"):
        future_timestamps(shifted, 40)


def test_auto_keeps_the_calendars_it_built_on_disk_for_the_next_process(sp500_bars, tmp_path, monkeypatch):
    from kronos.bars import calendars

    monkeypatch.setenv("KRONOS_CACHE_DIR", str(tmp_path))
    for cached in (calendars._disk_sessions, calendars._sessions):
        cached.cache_clear()
    hist = sp500_bars["timestamps"][sp500_bars["timestamps"] <= "2017-12-22"]
    first = calendars.match_calendar(hist)
    assert first[0] == "XNYS" and first[1] == 1.0  # the S&P 500 trades on the NYSE's sessions
    assert len(list(tmp_path.glob("calendar-sessions-*.npz"))) == 1
    for cached in (calendars._disk_sessions, calendars._sessions):  # a new process: nothing in memory
        cached.cache_clear()
    monkeypatch.setattr(calendars, "_build", lambda *a: pytest.fail("built a calendar the cache holds"))
    assert calendars.match_calendar(hist) == first
    for cached in (calendars._disk_sessions, calendars._sessions):
        cached.cache_clear()


def test_auto_falls_back_to_the_learnt_schedule_when_the_calendar_ends_too_soon(sp500_bars, tmp_path, monkeypatch):
    import exchange_calendars as xcals

    from kronos.bars import calendars

    monkeypatch.setenv("KRONOS_CACHE_DIR", str(tmp_path))
    short = xcals.get_calendar("XNYS", start="2016-01-01", end="2018-01-05")  # ends a week after the history
    monkeypatch.setattr(calendars, "_build", lambda name, start: short)
    for cached in (calendars._disk_sessions, calendars._sessions):
        cached.cache_clear()
    hist = sp500_bars["timestamps"][sp500_bars["timestamps"] <= "2017-12-22"]
    got = calendars.market_times(hist, 20)
    assert got.calendar is None and "ends at 2018-01-05" in got.note and "the learnt schedule" in got.note
    assert list(got.times) == list(calendars.future_timestamps(hist, 20, calendar="own"))
    with pytest.raises(InputError, match="ends at 2018-01-05"):
        calendars.market_times(hist, 20, calendar=short)  # a calendar the caller named is not replaced
    for cached in (calendars._disk_sessions, calendars._sessions):
        cached.cache_clear()
