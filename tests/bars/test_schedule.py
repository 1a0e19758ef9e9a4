"""The learnt schedule, property-tested on generated markets: every future time is a regular bar of the market,
strictly after the history and strictly increasing, whatever the clock, daylight saving, holidays or specials."""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kronos.bars.calendars import future_timestamps
from kronos.bars.schedule import infer_schedule, localize
from tests.bars.schedules import specs


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs(), st.integers(1, 60))
def test_future_times_lie_in_the_generated_schedule(market, pred_len):
    spec, end = market
    hist = spec.stamps(spec.wall_history(end))
    got = future_timestamps(hist, pred_len, calendar="own")
    assert len(got) == pred_len
    assert got[0] > hist[-1] and (got[1:] > got[:-1]).all()  # strictly after the history, strictly increasing
    assert str(got.tz) == str(hist.tz)  # the history's own frame (zone, or naive)
    inside = spec.contains(got)
    assert inside.all(), f"{spec.kind}/{spec.written}: {list(got[~inside][:3])} are not bars of the schedule"


def test_the_fx_week_is_read_in_new_york_time_so_the_utc_open_moves_with_daylight_saving():
    wall = pd.date_range("2019-01-06 17:00", "2019-06-28 16:00", freq="h")
    wall = wall[
        ((wall.dayofweek < 4) | ((wall.dayofweek == 4) & (wall.hour < 17)))
        | ((wall.dayofweek == 6) & (wall.hour >= 17))
    ]
    utc = wall.tz_localize("America/New_York").tz_convert("UTC").tz_localize(None)
    sched = infer_schedule(utc)
    assert sched.zone == "America/New_York" and sched.utc
    assert sched.sessions()[6] == [(pd.Timedelta(hours=17), pd.Timedelta(hours=23))]  # Sunday reopen at the roll
    assert sched.sessions()[4] == [(pd.Timedelta(0), pd.Timedelta(hours=16))]  # Friday's last bar before 17:00


def test_localize_never_raises_on_daylight_saving_and_keeps_real_instants():
    wall = pd.DatetimeIndex(["2021-03-14 01:00", "2021-03-14 02:00", "2021-03-14 03:00", "2021-11-07 01:00"])
    got = localize(wall, "America/New_York", intraday=True)
    # 02:00 of the spring change does not exist (dropped); 01:00 of the fall change happens twice (both kept)
    assert [str(t) for t in got] == [
        "2021-03-14 01:00:00-05:00",
        "2021-03-14 03:00:00-04:00",
        "2021-11-07 01:00:00-04:00",
        "2021-11-07 01:00:00-05:00",
    ]
    daily = localize(pd.DatetimeIndex(["2018-11-04"]), "America/Sao_Paulo", intraday=False)  # midnight skipped
    assert str(daily[0]) == "2018-11-04 01:00:00-02:00"


def test_the_most_recent_regime_wins_when_a_market_changes_its_hours_and_its_week():
    # 30 weeks of Monday..Saturday 09:00-15:00 half-hourly bars, then 8 weeks of Monday..Friday 10:00-15:00
    days = pd.date_range("2023-01-02", periods=38 * 7, freq="D")
    old = [d + pd.Timedelta(minutes=30 * k) for d in days[: 30 * 7] if d.dayofweek < 6 for k in range(9 * 2, 15 * 2)]
    new = [d + pd.Timedelta(minutes=30 * k) for d in days[30 * 7 :] if d.dayofweek < 5 for k in range(10 * 2, 15 * 2)]
    hist = pd.DatetimeIndex(old + new)
    sched = infer_schedule(hist)
    assert set(sched.slots) == set(range(5))  # Saturday dropped: none of its last four dates traded
    assert sched.sessions()[0] == [(pd.Timedelta(hours=10), pd.Timedelta(hours=14, minutes=30))]
    got = future_timestamps(hist, 30, calendar="own")
    assert got[0] == pd.Timestamp("2023-09-25 10:00") and not (got.dayofweek == 5).any()
