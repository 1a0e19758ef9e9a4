"""The trading schedule a series' own history shows, and the bar times it continues with.

Kronos embeds the times of the bars it forecasts (minute, hour, weekday, day, month), so the future
times must be the market's. :func:`infer_schedule` reads them from the **whole** history:

* **the market's clock**: intraday bars are read in the zone whose wall clock makes the sessions
  regular. A naive or aware history is first taken as given; when reading it as UTC converted to a
  daylight-saving zone (New York first) makes the first and last bar of each weekday steadier, that
  zone is the market's clock. So an FX series stamped in UTC opens every Sunday at 17:00 New York time
  (21:00 or 22:00 UTC with the season) and a US session stamped in UTC moves an hour with DST;
* **trading weekdays**: a weekday trades when it had bars on at least half of its dates in the last
  26 weeks and at least once in its last 4, so a few special Saturday sessions are not the rule and a
  market that dropped a weekday is believed at once;
* **the bars of a day**: per weekday, the times seen on at least a fifth of its last 20 trading dates and
  within the first and last bar of its last 4 (the recent regime wins when a market changes its hours);
  gaps inside are the lunch breaks;
* **closures** learnt over all years: a month-day (25 December) or a weekday of a month (the first
  Monday of September, the fourth Thursday of November, the last Monday of May) that fell on a trading
  weekday at least twice, with bars within three days either side, and never had a bar.

:func:`continue_schedule` lays bars on the schedule in the market's wall clock and turns them into
instants without ever raising on a daylight-saving gap (a wall time that does not exist is skipped) or
overlap (an intraday wall time that happens twice gives both bars; a daily bar takes the first).
No pandas in the model code: this module is only used on the DataFrame side.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kronos.bars.preprocessing import to_datetime_index
from kronos.core.errors import InputError

__all__ = ["DST_ZONES", "Schedule", "continue_schedule", "infer_schedule", "localize", "to_index", "to_wall"]

DAY = pd.Timedelta(days=1)
WEEK = pd.Timedelta(days=7)
#: Zones tried as the market's clock for intraday bars (New York first: the FX roll and US sessions).
DST_ZONES = ("America/New_York", "Europe/London", "Europe/Berlin", "America/Chicago", "Australia/Sydney")
RECENT_WEEKS = 26  # weeks over which a weekday's share of trading dates is measured
RECENT_DATES = 20  # a weekday's last trading dates that give its bar times
SLOT_SHARE = 0.2  # a time of day belongs to a weekday when seen on at least this share of those dates
REGIME_DATES = 4  # ... and lies within the first and last bar times of the weekday's last few dates
WEEKDAY_SHARE = 0.5  # a weekday trades when it had bars on at least this share of its recent dates
ZONE_GAIN = 0.05  # a zone replaces the given clock when it makes this share, or half the irregular days, regular
CLOCK_WEEKS = 53  # weeks read to find the clock: a year holds both daylight-saving changes
NEAR = 3  # days either side that must hold bars for a missing day to count as a closure


@dataclass
class Schedule:
    """When a series trades, in the wall clock of ``zone``.

    ``step``: the most common spacing. ``slots``: trading weekday (0 = Monday) → sorted times of day
    (``Timedelta`` since midnight). ``closed``: (month, day) never traded; ``closed_weekdays``: (month,
    weekday, n) never traded, n = 1..5 the n-th such weekday of the month, -1 the last. ``zone``: the
    IANA zone of the wall clock (``None``: the naive timestamps as given); ``utc``: naive timestamps were
    read as UTC to reach ``zone``. ``freq``: the pandas frequency of weekly and coarser bars.
    """

    step: pd.Timedelta
    intraday: bool
    slots: dict[int, list[pd.Timedelta]] = field(default_factory=dict)
    closed: set[tuple[int, int]] = field(default_factory=set)
    closed_weekdays: set[tuple[int, int, int]] = field(default_factory=set)
    zone: str | None = None
    utc: bool = False
    freq: str | None = None

    def sessions(self) -> dict[int, list[tuple[pd.Timedelta, pd.Timedelta]]]:
        """Per weekday the (first, last) bar time of each run of bars one step apart: two runs are a lunch break."""
        out: dict[int, list[tuple[pd.Timedelta, pd.Timedelta]]] = {}
        for weekday, times in self.slots.items():
            runs: list[tuple[pd.Timedelta, pd.Timedelta]] = []
            for t in times:
                if runs and t - runs[-1][1] <= self.step:
                    runs[-1] = (runs[-1][0], t)
                else:
                    runs.append((t, t))
            out[weekday] = runs
        return out

    def is_closed(self, day: pd.Timestamp) -> bool:
        """Whether ``day`` (a wall-clock date) is a learnt closure."""
        if (day.month, day.day) in self.closed:
            return True
        nth = (day.day - 1) // 7 + 1
        last = day.day + 7 > day.days_in_month
        return (day.month, day.dayofweek, nth) in self.closed_weekdays or (
            last and (day.month, day.dayofweek, -1) in self.closed_weekdays
        )

    def bars_on(self, day: pd.Timestamp) -> list[pd.Timestamp]:
        """The wall-clock bar times of ``day`` (a midnight), none on a closed day or weekday."""
        if day.dayofweek not in self.slots or self.is_closed(day):
            return []
        return [day + s for s in self.slots[day.dayofweek]]


def to_index(timestamps: object) -> pd.DatetimeIndex:
    """Sorted timestamps as a DatetimeIndex (at least two); :class:`InputError` naming the row otherwise."""
    idx = to_datetime_index(timestamps, name="timestamps")  # as every door reads times
    if idx.hasnans:
        raise InputError(f"timestamps have a missing value at row {int(np.flatnonzero(idx.isna())[0])}")
    if len(idx) < 2:
        raise InputError(f"cannot infer the bar spacing from {len(idx)} timestamp(s); give at least two")
    if not idx.is_monotonic_increasing:
        row = int(np.flatnonzero(np.diff(idx.asi8) < 0)[0]) + 1
        raise InputError(f"timestamps are not sorted: row {row} ({idx[row]}) is before row {row - 1} ({idx[row - 1]})")
    return idx


def to_wall(idx: pd.DatetimeIndex, zone: str | None, utc: bool = False) -> pd.DatetimeIndex:
    """The wall clock of ``zone`` at each instant of ``idx`` (naive ``idx``: as given, or read as UTC when ``utc``)."""
    if zone is None:
        return idx.tz_localize(None) if idx.tz is not None else idx
    inst = idx.tz_localize("UTC") if idx.tz is None else idx
    if idx.tz is None and not utc:
        return idx
    return inst.tz_convert(zone).tz_localize(None)


def localize(wall: pd.DatetimeIndex, zone: str, *, intraday: bool) -> pd.DatetimeIndex:
    """Wall-clock times of ``zone`` as sorted unique instants, never raising on daylight saving.

    A time in a spring-forward gap does not exist: an intraday bar there is dropped, a daily bar moves
    to the first valid instant. A time in a fall-back overlap happens twice: intraday both are bars, a
    daily bar takes the first.
    """
    if len(wall) == 0:
        return pd.DatetimeIndex([], tz=zone)
    if not intraday:
        return wall.tz_localize(zone, ambiguous=np.ones(len(wall), dtype=bool), nonexistent="shift_forward")
    first = wall.tz_localize(zone, ambiguous=np.ones(len(wall), dtype=bool), nonexistent="NaT")
    second = wall.tz_localize(zone, ambiguous=np.zeros(len(wall), dtype=bool), nonexistent="NaT")
    both = first.append(second)
    return both[~both.isna()].unique().sort_values()


def from_wall(wall: pd.DatetimeIndex, sched: Schedule, like: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Wall-clock times of ``sched.zone`` in the frame of the history ``like`` (its zone, or naive)."""
    if sched.zone is None:
        return wall
    inst = localize(wall, sched.zone, intraday=sched.intraday)
    if like.tz is None:
        return inst.tz_convert("UTC").tz_localize(None) if sched.utc else inst.tz_localize(None)
    return inst.tz_convert(like.tz)


def _regularity(wall: pd.DatetimeIndex) -> float:
    """Share of dates whose first and last bar fall at their weekday's usual first and last time."""
    dates = wall.normalize()
    frame = pd.DataFrame({"date": dates, "tod": wall - dates})
    span = frame.groupby("date")["tod"].agg(["min", "max"])
    weekday = span.index.dayofweek
    usual = span.groupby(weekday).agg(lambda s: s.mode().iloc[0])
    hits = (span["min"].to_numpy() == usual["min"].reindex(weekday).to_numpy()) & (
        span["max"].to_numpy() == usual["max"].reindex(weekday).to_numpy()
    )
    return float(hits.mean()) if len(hits) else 0.0


def _market_clock(idx: pd.DatetimeIndex) -> tuple[str | None, bool]:
    """The zone (and whether naive times are read as UTC) in which the sessions are most regular."""
    own = str(idx.tz) if idx.tz is not None else None
    recent = idx[idx > idx[-1] - CLOCK_WEEKS * WEEK]
    best, best_score = (own, False), _regularity(to_wall(recent, own))
    if best_score >= 0.99 or recent[-1] - recent[0] < 2 * WEEK:
        return best
    for zone in DST_ZONES:
        if zone == own:
            continue
        score = _regularity(to_wall(recent, zone, utc=True))
        if score > best_score and score - best_score >= min(ZONE_GAIN, (1 - best_score) / 2):  # half the irregular days
            best, best_score = (zone, idx.tz is None), score
    return best


def _trading_weekdays(dates: pd.DatetimeIndex) -> set[int]:
    """Weekdays with bars on at least half their recent dates and on one of their last four (see module doc)."""
    last = dates[-1]
    start = max(dates[0], last - RECENT_WEEKS * WEEK + DAY)
    if last - dates[0] < WEEK - DAY:  # under a week seen: Monday..Friday unless a weekend traded
        seen = set(dates.dayofweek)
        return seen | set(range(7)) if seen & {5, 6} else seen | set(range(5))
    calendar = pd.date_range(start, last, freq="D")
    traded = calendar.isin(dates)
    out = set()
    for weekday in range(7):
        mine = traded[calendar.dayofweek == weekday]
        if len(mine) and mine.mean() >= WEEKDAY_SHARE and mine[-4:].any():
            out.add(weekday)
    return out


def _slots(wall: pd.DatetimeIndex, weekdays: set[int], intraday: bool) -> dict[int, list[pd.Timedelta]]:
    dates = wall.normalize()
    tod = wall - dates
    if not intraday:
        usual = pd.Timedelta(pd.Series(tod[-RECENT_DATES * 5 :]).mode().iloc[0])
        return {w: [usual] for w in sorted(weekdays)}
    frame = pd.DataFrame({"weekday": dates.dayofweek, "date": dates, "tod": tod})
    slots: dict[int, list[pd.Timedelta]] = {}
    for weekday, group in frame.groupby("weekday"):
        if int(weekday) not in weekdays:
            continue
        recent_dates = group["date"].drop_duplicates().iloc[-RECENT_DATES:]
        recent = group[group["date"].isin(recent_dates)]
        counts = recent.groupby("tod")["date"].nunique()
        keep = counts[counts >= max(1, SLOT_SHARE * len(recent_dates))].index
        latest = recent[recent["date"].isin(recent_dates.iloc[-REGIME_DATES:])]["tod"]  # the hours of the regime now
        slots[int(weekday)] = sorted(pd.Timedelta(t) for t in keep if latest.min() <= t <= latest.max())
    if slots:  # a trading weekday never seen (short history): the times of every weekday seen
        every = sorted({t for ts in slots.values() for t in ts})
        slots.update({w: every for w in weekdays if w not in slots})
    return slots


def _closures(dates: pd.DatetimeIndex, weekdays: set[int]) -> tuple[set[tuple[int, int]], set[tuple[int, int, int]]]:
    """Month-days and weekdays-of-month missed at least twice amid bars and never traded (see module doc)."""
    traded_days = dates.unique()
    span = pd.date_range(traded_days[0], traded_days[-1], freq="D")
    if len(span) < 365 + 2 * NEAR:
        return set(), set()
    traded = span.isin(traded_days)
    counts = np.concatenate([[0], np.cumsum(traded)])
    i = np.arange(len(span))
    before = counts[i] - counts[np.maximum(i - NEAR, 0)]
    after = counts[np.minimum(i + 1 + NEAR, len(span))] - counts[i + 1]
    frame = pd.DataFrame(
        {
            "month": span.month,
            "day": span.day,
            "weekday": span.dayofweek,
            "nth": (span.day - 1) // 7 + 1,
            "last": span.day + 7 > span.days_in_month,
            "traded": traded,
            "missed": (~traded) & (before > 0) & (after > 0) & span.dayofweek.isin(list(weekdays)),
        }
    )

    def never_traded(keys: list[str], rows: pd.DataFrame) -> set[tuple[int, ...]]:
        if rows.empty:
            return set()
        # NumPy group-by (pandas' named aggregation costs milliseconds per call, and the server calls this
        # for every request): per key, was it ever traded, and how often was it missed amid bars.
        groups, which = np.unique(rows[keys].to_numpy(dtype=np.int64), axis=0, return_inverse=True)
        which = which.reshape(-1)
        traded_any = np.bincount(which, weights=rows["traded"].to_numpy(), minlength=len(groups)) > 0
        missed = np.bincount(which, weights=rows["missed"].to_numpy(), minlength=len(groups))
        return {tuple(int(v) for v in groups[g]) for g in np.flatnonzero(~traded_any & (missed >= 2))}

    closed = never_traded(["month", "day"], frame)
    on_weekdays = frame[frame["weekday"].isin(list(weekdays))]
    nth = never_traded(["month", "weekday", "nth"], on_weekdays)
    last = {(m, w, -1) for m, w in never_traded(["month", "weekday"], on_weekdays[on_weekdays["last"]])}
    return closed, nth | last  # type: ignore[return-value]


def infer_schedule(timestamps: object, *, find_clock: bool = True, closures: bool = True) -> Schedule:
    """Read a series' trading schedule from its bar times (see :class:`Schedule` and the module doc).

    ``find_clock=False`` keeps the timestamps' own wall clock (an exchange calendar gives the zone);
    ``closures=False`` skips learning closed days (when an exchange calendar will say which days trade).
    """
    idx = to_index(timestamps)
    diffs = np.diff(idx[-5000:].asi8)
    diffs = diffs[diffs > 0]
    if len(diffs) == 0:
        raise InputError("cannot infer the bar spacing: all timestamps are equal")
    values, counts = np.unique(diffs, return_counts=True)
    step = pd.Timedelta(int(values[np.argmax(counts)]), unit="ns")
    if step >= WEEK:
        freq = pd.infer_freq(idx[-min(len(idx), 50) :]) if len(idx) >= 3 else None
        return Schedule(step=step, intraday=False, freq=freq)
    intraday = step < DAY
    zone, utc = _market_clock(idx) if intraday and find_clock else (str(idx.tz) if idx.tz is not None else None, False)
    wall = to_wall(idx, zone, utc)
    dates = wall.normalize()
    weekdays = _trading_weekdays(dates.unique())
    closed, closed_weekdays = _closures(dates, weekdays) if closures else (set(), set())
    slots = _slots(wall, weekdays, intraday)
    return Schedule(step, intraday, slots, closed, closed_weekdays, zone=zone, utc=utc)


def _days_from(day: pd.Timestamp) -> Iterator[pd.Timestamp]:
    while True:
        yield day
        day = day + DAY


def continue_schedule(sched: Schedule, idx: pd.DatetimeIndex, pred_len: int) -> pd.DatetimeIndex:
    """The ``pred_len`` bar times after ``idx[-1]`` on ``sched``, in ``idx``'s frame, strictly increasing."""
    last = idx[-1]
    if sched.step >= WEEK:
        if sched.freq is not None:
            return pd.date_range(last, periods=pred_len + 1, freq=sched.freq)[1:]
        return pd.DatetimeIndex([last + sched.step * (i + 1) for i in range(pred_len)])
    wall_last = to_wall(idx[-1:], sched.zone, sched.utc)[0]
    too_short = sched.intraday and wall_last.normalize() - to_wall(idx[:1], sched.zone, sched.utc)[0].normalize() < DAY
    if not sched.slots or too_short:  # too little history for a grid: the spacing in absolute time
        return pd.DatetimeIndex([last + sched.step * (i + 1) for i in range(pred_len)])
    out = pd.DatetimeIndex([], tz=idx.tz)
    chunk: list[pd.Timestamp] = []
    days = _days_from(wall_last.normalize())
    for _ in range(pred_len * 8 + 400):  # bounded: a grid with any slot fills pred_len within this many days
        chunk.extend(t for t in sched.bars_on(next(days)) if t > wall_last)
        if len(chunk) >= pred_len - len(out):
            times = from_wall(pd.DatetimeIndex(chunk), sched, idx)
            out = out.append(times[times > last]).unique().sort_values()
            chunk = []
            if len(out) >= pred_len:
                return out[:pred_len]
    raise InputError("the inferred trading schedule has no bar times; pass explicit future timestamps")
