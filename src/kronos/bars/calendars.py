"""Future bar times that follow the market: trading days, sessions, lunch breaks and weekend closes.

Kronos feeds the timestamps of the bars to forecast into the model (minute, hour, weekday, day and
month embeddings), so a wrong future timestamp corrupts the forecast itself, not just its labels.
:func:`future_timestamps` continues a series on its own schedule:

* **inferred from the history** (default): the most common bar spacing; for intraday bars the
  time-of-day grid observed on each weekday (so an A-share 5-minute series ending at 11:30 continues
  at 13:05, and an FX hourly series stops at the Friday close and resumes on Sunday evening); for
  daily bars the weekdays the series trades on; and fixed-date closures (a month-day on which the
  series never traded in two or more past years, e.g. 25 December for US equities);
* **with an exchange calendar** (``calendar="XSHG"``, ``"XNYS"``, ...) from the maintained
  ``exchange_calendars`` library (``pip install "kronos-kline[calendars]"``): daily bars land on the
  exchange's sessions only (no weekends, no holidays) and intraday bars on the history's grid inside
  each session's open, break and close (early closes included). Times are the exchange's local wall
  clock, as in the bundled data; a time-zone-aware history is converted to the exchange's zone;
* or given explicitly by the caller (see :func:`kronos.forecasting.panel.forecast_df`).

Weekly and coarser bars continue their inferred pandas frequency. No pandas in the model code: this
module is only used on the DataFrame side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kronos.core.errors import InputError
from kronos.core.extras import require
from kronos.core.validation import positive_int

__all__ = ["Schedule", "future_timestamps", "get_calendar", "infer_schedule"]

DAY = pd.Timedelta(days=1)
# How far back the grid of an intraday series is read (recent sessions describe the market now).
GRID_WINDOW = pd.Timedelta(days=120)
# A (weekday, time) slot belongs to the grid when seen on at least this share of that weekday's dates.
SLOT_SHARE = 0.2


@dataclass
class Schedule:
    """What a series' history says about when it trades.

    ``step``: the most common spacing between bars. ``slots``: for intraday bars, weekday (0 = Monday)
    → sorted times of day (as ``Timedelta`` since midnight) seen on that weekday; for daily bars the
    weekdays traded map to the bars' usual time of day. ``closed``: (month, day) pairs never traded.
    """

    step: pd.Timedelta
    intraday: bool
    slots: dict[int, list[pd.Timedelta]] = field(default_factory=dict)
    closed: set[tuple[int, int]] = field(default_factory=set)
    freq: str | None = None  # for weekly and coarser bars: the inferred pandas frequency


def get_calendar(name: str, start: pd.Timestamp | None = None) -> Any:
    """The ``exchange_calendars`` calendar called ``name`` (an ISO MIC such as ``XSHG`` or an alias such as ``NYSE``).

    ``start`` is the first date it must cover (the library builds calendars from rules, offline).
    """
    xcals = require("calendars", "exchange_calendars", purpose=f"calendar {name!r}")
    kwargs: dict[str, Any] = {}
    if start is not None:
        kwargs["start"] = (
            pd.Timestamp(start).tz_localize(None).normalize()
            if pd.Timestamp(start).tzinfo
            else pd.Timestamp(start).normalize()
        )
    try:
        return xcals.get_calendar(name, **kwargs)
    except xcals.errors.InvalidCalendarName:
        names = ", ".join(n for n in xcals.get_calendar_names(include_aliases=False) if n.startswith("X"))
        raise InputError(f"unknown exchange calendar {name!r}; known ones include {names}") from None
    except ValueError as exc:  # e.g. a start before the calendar's first supported date
        raise InputError(f"calendar {name!r} cannot cover dates from {start}: {exc}") from None


def _to_index(timestamps: Any) -> pd.DatetimeIndex:
    try:
        idx = pd.DatetimeIndex(
            pd.to_datetime(
                pd.Series(np.asarray(timestamps))
                if not isinstance(timestamps, (pd.Series, pd.DatetimeIndex))
                else timestamps
            )
        )
    except (TypeError, ValueError) as exc:
        raise InputError(f"timestamps cannot be read as dates: {exc}") from None
    if idx.hasnans:
        raise InputError(f"timestamps have a missing value at row {int(np.flatnonzero(idx.isna())[0])}")
    if len(idx) < 2:
        raise InputError(f"cannot infer the bar spacing from {len(idx)} timestamp(s); give at least two")
    if not idx.is_monotonic_increasing:
        row = int(np.flatnonzero(np.diff(idx.asi8) < 0)[0]) + 1
        raise InputError(f"timestamps are not sorted: row {row} ({idx[row]}) is before row {row - 1} ({idx[row - 1]})")
    return idx


def infer_schedule(timestamps: Any) -> Schedule:
    """Read a series' trading schedule from its bar times (see :class:`Schedule`)."""
    idx = _to_index(timestamps)
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    diffs = pd.Series(idx[-5000:]).diff().dropna()
    diffs = diffs[diffs > pd.Timedelta(0)]
    if diffs.empty:
        raise InputError("cannot infer the bar spacing: all timestamps are equal")
    step = diffs.mode().iloc[0]
    if step >= pd.Timedelta(days=7):
        freq = pd.infer_freq(idx[-min(len(idx), 50) :]) if len(idx) >= 3 else None
        return Schedule(step=step, intraday=False, freq=freq)
    recent = idx[idx > idx[-1] - (GRID_WINDOW if step < DAY else pd.Timedelta(days=3 * 365))]
    dates = recent.normalize()
    tod = recent - dates
    slots: dict[int, list[pd.Timedelta]] = {}
    if step < DAY:
        frame = pd.DataFrame({"weekday": dates.dayofweek, "date": dates, "tod": tod})
        n_dates = frame.groupby("weekday")["date"].nunique()
        counts = frame.groupby(["weekday", "tod"])["date"].nunique()
        for (weekday, t), count in counts.items():
            if count >= max(1, SLOT_SHARE * n_dates[weekday]):
                slots.setdefault(int(weekday), []).append(pd.Timedelta(t))
        slots = {w: sorted(v) for w, v in slots.items()}
    else:
        usual = pd.Series(tod).mode().iloc[0]
        per_weekday = pd.Series(dates.dayofweek).value_counts()
        for weekday, count in per_weekday.items():
            if count >= max(1, SLOT_SHARE * per_weekday.max()):
                slots[int(weekday)] = [pd.Timedelta(usual)]
    return Schedule(step=step, intraday=step < DAY, slots=slots, closed=_fixed_closures(idx, set(slots)))


def _fixed_closures(idx: pd.DatetimeIndex, weekdays: set[int]) -> set[tuple[int, int]]:
    """Month-days that fell on a trading weekday in at least two years of the history and never had a bar."""
    traded_days = idx.normalize().unique()
    span = pd.date_range(traded_days[0], traded_days[-1], freq="D")
    if len(span) < 2 * 365:
        return set()
    frame = pd.DataFrame({"month": span.month, "day": span.day, "open_weekday": span.dayofweek.isin(list(weekdays))})
    frame["traded"] = span.isin(traded_days)
    # missed counts weekday occurrences; with traded False every one of them was missed
    grouped = frame.groupby(["month", "day"]).agg(traded=("traded", "any"), missed=("open_weekday", "sum"))
    closed = grouped[(~grouped["traded"]) & (grouped["missed"] >= 2)]
    return {(int(m), int(d)) for m, d in closed.index}


def future_timestamps(timestamps: Any, pred_len: int, *, calendar: str | Any | None = None) -> pd.DatetimeIndex:
    """The times of the ``pred_len`` bars after the last of ``timestamps``, on the series' own schedule.

    ``calendar`` is an exchange name for ``exchange_calendars`` (``"XSHG"``, ``"XNYS"``, ...) or a
    calendar object from it; without one the schedule is inferred from the history alone (see the
    module docstring). Raises :class:`InputError` when the spacing cannot be inferred.
    """
    pred_len = positive_int("pred_len", pred_len)
    idx = _to_index(timestamps)
    tz = idx.tz
    local = idx.tz_localize(None) if tz is not None else idx
    cal = None
    if calendar is not None:
        cal = get_calendar(calendar, start=local[-1] - pd.Timedelta(days=30)) if isinstance(calendar, str) else calendar
        if tz is not None:
            local = idx.tz_convert(cal.tz).tz_localize(None)
    sched = infer_schedule(local)
    last = local[-1]
    if sched.step >= pd.Timedelta(days=7):
        if sched.freq is not None:
            out = pd.date_range(last, periods=pred_len + 1, freq=sched.freq)[1:]
        else:
            out = pd.DatetimeIndex([last + sched.step * (i + 1) for i in range(pred_len)])
    elif not sched.slots or (sched.intraday and local[-1].normalize() - local[0].normalize() < DAY):
        out = pd.DatetimeIndex([last + sched.step * (i + 1) for i in range(pred_len)])  # too little history for a grid
    elif cal is not None:
        out = _on_calendar(sched, last, pred_len, cal)
    else:
        out = _on_own_schedule(sched, last, pred_len)
    if tz is not None:
        out = out.tz_localize(cal.tz if cal is not None else tz).tz_convert(tz)
    return out.rename(idx.name)


def _slots_for(sched: Schedule, weekday: int) -> list[pd.Timedelta]:
    if weekday in sched.slots:
        return sched.slots[weekday]
    return sorted({t for ts in sched.slots.values() for t in ts})  # a weekday never seen: any slot of the grid


def _on_own_schedule(sched: Schedule, last: pd.Timestamp, pred_len: int) -> pd.DatetimeIndex:
    out: list[pd.Timestamp] = []
    day = last.normalize()
    for _ in range(pred_len * 8 + 400):  # bounded: a grid with any slot fills pred_len within this many days
        if day.dayofweek in sched.slots and (day.month, day.day) not in sched.closed:
            out.extend(t for t in (day + s for s in sched.slots[day.dayofweek]) if t > last)
            if len(out) >= pred_len:
                return pd.DatetimeIndex(out[:pred_len])
        day += DAY
    raise InputError("the inferred trading schedule has no bar times; pass explicit future timestamps")


def _on_calendar(sched: Schedule, last: pd.Timestamp, pred_len: int, cal: Any) -> pd.DatetimeIndex:
    out: list[pd.Timestamp] = []
    start = last.normalize() - DAY  # an overnight session labelled by the next date may hold the next bar
    span = pred_len if not sched.intraday else pred_len // max(1, len(_slots_for(sched, 0))) + 2
    while len(out) < pred_len:
        end = start + pd.Timedelta(days=2 * span + 14)
        try:
            sessions = cal.sessions_in_range(start, end)
        except Exception as exc:  # the calendar's bounds (exchange_calendars covers about a year ahead)
            raise InputError(f"calendar {cal.name}: no sessions from {start.date()} to {end.date()} ({exc})") from None
        for session in sessions:
            out.extend(t for t in _session_bars(sched, session, cal) if t > last and (not out or t > out[-1]))
        if len(sessions) == 0 and end > cal.last_session:
            raise InputError(f"calendar {cal.name} ends at {cal.last_session.date()}, before {pred_len} future bars")
        start = end + DAY
        span *= 2
    return pd.DatetimeIndex(out[:pred_len])


def _session_bars(sched: Schedule, session: pd.Timestamp, cal: Any) -> list[pd.Timestamp]:
    if not sched.intraday:
        day = session.tz_localize(None) if session.tzinfo is not None else session
        return [day.normalize() + next(iter(sched.slots.values()))[0]]
    tz = cal.tz

    def local(ts: Any) -> pd.Timestamp | None:
        return None if pd.isna(ts) else pd.Timestamp(ts).tz_convert(tz).tz_localize(None)

    open_, close = local(cal.session_open(session)), local(cal.session_close(session))
    brk_start, brk_end = local(cal.session_break_start(session)), local(cal.session_break_end(session))
    bars = []
    day = open_.normalize()
    while day <= close:
        for t in (day + s for s in _slots_for(sched, day.dayofweek)):
            in_session = open_ <= t <= close
            in_break = brk_start is not None and brk_end is not None and brk_start < t < brk_end
            if in_session and not in_break:
                bars.append(t)
        day += DAY
    return bars
