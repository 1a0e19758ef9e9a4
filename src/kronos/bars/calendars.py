"""Future bar times that follow the market: the one function every door calls, and exchange calendars.

Kronos feeds the timestamps of the bars to forecast into the model (minute, hour, weekday, day and
month embeddings), so a wrong future timestamp corrupts the forecast itself, not just its labels.
:func:`market_times` (and :func:`future_timestamps`, its times alone) continues a series; every command,
``forecast_df``, the HTTP API and the upload call it, so one input gives the same times everywhere.
``calendar`` says how:

* ``None`` or ``"own"``: the schedule learnt from the whole history (:mod:`kronos.bars.schedule`:
  trading weekdays, per-weekday sessions and lunch breaks in the market's own clock so daylight saving
  moves with it, learnt holidays);
* ``"auto"`` (the default of every door, :data:`DEFAULT_CALENDAR`): the ``exchange_calendars`` calendar
  whose sessions explain at least 99% of the history's trading days and of its own sessions over the last
  year (for intraday bars also 99% of the recent bars inside its opening hours); otherwise, or without the
  ``calendars`` extra, the learnt schedule. :class:`MarketTimes` says which was used;
* an exchange name (``"XSHG"``, ``"XNYS"``, an alias such as ``"NYSE"``) or a calendar object: daily bars
  land on its sessions (no weekends, no holidays), intraday bars on the history's grid inside each
  session's open, break and close (early closes included). A naive history is the exchange's local wall
  clock, as in the bundled data; an aware one is converted to the exchange's zone.

Timestamp arithmetic never raises on daylight saving (:func:`kronos.bars.schedule.localize`), and a
forecast past 2262-04-11 (the last day a pandas timestamp holds) is one :class:`InputError`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kronos.bars.schedule import (
    DAY,
    Schedule,
    continue_schedule,
    infer_schedule,
    localize,
    to_index,
    to_wall,
)
from kronos.core.errors import InputError
from kronos.core.extras import MissingExtraError, require
from kronos.core.files import atomic_write_bytes
from kronos.core.validation import positive_int

__all__ = [
    "DEFAULT_CALENDAR",
    "MarketTimes",
    "Schedule",
    "future_timestamps",
    "get_calendar",
    "infer_schedule",
    "market_times",
    "match_calendar",
]

#: What every door uses when no calendar is named (see the module doc and docs/calendars.md).
DEFAULT_CALENDAR = "auto"
AUTO_SHARE = 0.99  # an exchange calendar is chosen when it explains this share of the trading days
AUTO_DAYS = 365  # the trading days matched: the history's last year
# Sessions-identical aliases of one market rank by this order when they tie; then by name.
PREFERRED = ("XNYS", "XSHG", "XBOM", "XLON", "XETR", "XPAR", "XTKS", "XHKG", "XTSE", "XASX", "CMES")
NOT_EXCHANGES = ("24/5", "24/7")  # round-the-clock markets are the learnt schedule's job


@dataclass(frozen=True)
class MarketTimes:
    """Future bar times and how they were made: ``calendar`` is the exchange used (``None``: the learnt
    schedule); ``note`` says so in one line, e.g. ``calendar auto: XNYS (100.0% of 252 days)``."""

    times: pd.DatetimeIndex
    calendar: str | None
    note: str


def get_calendar(name: str, start: pd.Timestamp | None = None) -> Any:
    """The ``exchange_calendars`` calendar called ``name`` (an ISO MIC such as ``XSHG`` or an alias such as ``NYSE``).

    ``start`` is the first date it must cover (the library builds calendars from rules, offline).
    """
    xcals = require("calendars", "exchange_calendars", purpose=f"calendar {name!r}")
    try:
        return _build(name, None if start is None else _naive_day(start))
    except xcals.errors.InvalidCalendarName:
        names = ", ".join(n for n in xcals.get_calendar_names(include_aliases=False) if n.startswith("X"))
        raise InputError(f"unknown exchange calendar {name!r}; known ones include {names}") from None
    except ValueError as exc:  # e.g. a start before the calendar's first supported date
        raise InputError(f"calendar {name!r} cannot cover dates from {start}: {exc}") from None


def _naive_day(ts: Any) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return (ts.tz_localize(None) if ts.tzinfo else ts).normalize()


@functools.lru_cache(maxsize=4096)
def _build(name: str, start: pd.Timestamp | None) -> Any:
    xcals = require("calendars", "exchange_calendars", purpose=f"calendar {name!r}")
    return xcals.get_calendar(name, **({} if start is None else {"start": start}))


def _cache_file(year: int) -> Path:
    """Where the session dates of every calendar from 1 January ``year`` are kept between processes:
    ``$KRONOS_CACHE_DIR`` or ``$XDG_CACHE_HOME/kronos`` (``~/.cache/kronos``), one file per library version,
    year and build year (so a year-old file is rebuilt with the library's newer holidays)."""
    root = (
        os.environ.get("KRONOS_CACHE_DIR")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kronos"
    )
    version = importlib.metadata.version("exchange_calendars")
    return Path(root) / f"calendar-sessions-{version}-from{year}-built{pd.Timestamp.today().year}.npz"


@functools.lru_cache(maxsize=64)
def _disk_sessions(year: int) -> dict[str, np.ndarray]:
    """The cached session dates of :func:`_cache_file` (empty when absent or unreadable: it is only a cache)."""
    try:
        with np.load(_cache_file(year)) as stored:
            return {name: stored[name] for name in stored.files}
    except (OSError, ValueError, importlib.metadata.PackageNotFoundError):
        return {}


def _save_sessions(year: int, names: list[str]) -> None:
    """Add the session dates of ``names`` to the cache file (an empty array: the calendar cannot cover the year)."""
    disk = _disk_sessions(year)
    if all(name in disk for name in names):
        return
    for name in names:
        sessions = _sessions(name, year)
        disk[name] = sessions if sessions is not None else np.zeros(0, dtype=np.int64)
    buffer = io.BytesIO()
    np.savez(buffer, **disk)
    with contextlib.suppress(OSError, importlib.metadata.PackageNotFoundError):  # a read-only home: only slower
        path = _cache_file(year)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue())


@functools.lru_cache(maxsize=4096)
def _sessions(name: str, year: int) -> np.ndarray | None:
    """Session dates (int64 ns) of calendar ``name`` from 1 January ``year``; ``None`` if it cannot cover them."""
    cached = _disk_sessions(year).get(name)
    if cached is not None:
        return cached if cached.size else None
    try:
        cal = _build(name, pd.Timestamp(year=year, month=1, day=1))
    except Exception:  # the calendar does not reach back that far, or forward enough
        return None
    return cal.sessions.tz_localize(None).asi8 if cal.sessions.tz is not None else cal.sessions.asi8


def match_calendar(timestamps: Any) -> tuple[str | None, float, int]:
    """The exchange calendar that best explains the history's last year of trading days.

    Returns (name or ``None``, share, days; share is NaN when not searched): share = days both traded and in
    session / the larger of the
    traded days and the calendar's sessions over that year, so a calendar must both hold every traded day
    and have no session the series skipped. Calendars are tried in the order of :data:`PREFERRED`, then by
    name; a perfect match ends the search. ``name`` is ``None`` below :data:`AUTO_SHARE`, for a history that
    trades on six or seven weekdays (FX, crypto: no exchange does), or without the ``calendars`` extra.
    """
    try:
        xcals = require("calendars", "exchange_calendars", purpose="calendar 'auto'")
    except MissingExtraError:
        return None, 0.0, 0
    days = _recent_days(to_index(timestamps))
    if len(days) < 20:
        return None, 0.0, len(days)
    weekdays = np.bincount(days.dayofweek, minlength=7) >= 0.05 * len(days)  # special sessions aside
    if weekdays.sum() >= 6:  # FX (Sunday to Friday) and crypto: no exchange week has six or seven days
        return None, float("nan"), len(days)
    lo, hi = days[0].value, days[-1].value
    names = [n for n in xcals.get_calendar_names(include_aliases=False) if n not in NOT_EXCHANGES]
    best: tuple[float, int, str] = (0.0, 0, "")
    tried = []
    for rank, name in enumerate([*PREFERRED, *sorted(set(names) - set(PREFERRED))]):
        tried.append(name)
        sessions = _sessions(name, days[0].year)
        if sessions is None or sessions[-1] < hi or sessions[0] > lo:
            continue
        sessions = sessions[(sessions >= lo) & (sessions <= hi)]
        share = np.isin(days.asi8, sessions).sum() / max(len(days), len(sessions))
        if share > best[0]:  # ties keep the earlier: the preferred order, then by name
            best = (float(share), rank, name)
        if share == 1.0:  # nothing later can beat a perfect match
            break
    _save_sessions(days[0].year, tried)
    share, _, name = best
    return (name if share >= AUTO_SHARE else None), float(share), len(days)


def _recent_days(idx: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The history's trading days (its own wall clock) in its last :data:`AUTO_DAYS` days."""
    wall = to_wall(idx, None)
    return wall[wall > wall[-1] - pd.Timedelta(days=AUTO_DAYS)].normalize().unique()


def _local(values: Any, cal: Any) -> np.ndarray:
    times = pd.DatetimeIndex(values)
    times = times.tz_localize("UTC") if times.tz is None else times
    return times.tz_convert(cal.tz).tz_localize(None).to_numpy()


def _hours_fit(idx: pd.DatetimeIndex, cal: Any) -> bool:
    """Whether 99% of the recent intraday bars fall inside the calendar's sessions, in its wall clock."""
    wall = to_wall(idx[-500:], str(cal.tz)) if idx.tz is not None else idx[-500:]
    sessions = pd.DatetimeIndex(cal.sessions)
    sessions = sessions.tz_localize(None) if sessions.tz is not None else sessions
    day = wall.normalize()
    opens = pd.Series(_local(cal.opens, cal), index=sessions).reindex(day).to_numpy()
    closes = pd.Series(_local(cal.closes, cal), index=sessions).reindex(day).to_numpy()
    inside = (wall.to_numpy() >= opens) & (wall.to_numpy() <= closes)
    return bool(inside.mean() >= AUTO_SHARE)


def market_times(timestamps: Any, pred_len: int, *, calendar: str | Any | None = DEFAULT_CALENDAR) -> MarketTimes:
    """The times of the ``pred_len`` bars after the last of ``timestamps``, and how they were made.

    ``calendar``: ``"auto"`` (default), ``None``/``"own"``, an exchange name or calendar object (see the
    module doc). The times are strictly increasing, strictly after the history, in the history's zone (or
    naive like it). Raises :class:`InputError` when the spacing cannot be inferred, a named calendar is
    unknown or ends too soon, or the times would pass 2262-04-11.
    """
    pred_len = positive_int("pred_len", pred_len)
    idx = to_index(timestamps)
    try:
        return _market_times(idx, pred_len, calendar)
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        raise InputError(
            f"the {pred_len} bars after {idx[-1]} would pass {pd.Timestamp.max.date()}, the last day a pandas "
            "timestamp can hold; forecast fewer bars or give future timestamps"
        ) from None


def _market_times(idx: pd.DatetimeIndex, pred_len: int, calendar: Any) -> MarketTimes:
    # Closed days are learnt only when the learnt schedule is used: an exchange calendar knows its own.
    sched = infer_schedule(idx, closures=False)

    def learnt() -> pd.DatetimeIndex:
        return continue_schedule(infer_schedule(idx), idx, pred_len).rename(idx.name)

    note = "calendar own: the schedule learnt from the history"
    if isinstance(calendar, str) and calendar.lower() == "auto":
        name, share, days = match_calendar(idx) if sched.step < pd.Timedelta(days=7) else (None, 0.0, 0)
        cal = _build(name, pd.Timestamp(year=_recent_days(idx)[0].year, month=1, day=1)) if name else None
        if cal is not None and sched.intraday and not _hours_fit(idx, cal):
            note = f"calendar auto: {name} holds the trading days but not the bar times; the learnt schedule"
            cal = None
        elif cal is not None:
            note = f"calendar auto: {name} ({share:.1%} of {days} days)"
        elif share != share:  # NaN: six or seven trading weekdays
            note = "calendar auto: trades six or seven days a week, as no exchange does; the learnt schedule"
        elif importlib.util.find_spec("exchange_calendars") is None:
            note = "calendar auto: the calendars extra (exchange_calendars) is not installed; the learnt schedule"
        else:
            note = f"calendar auto: no exchange explains 99% of the days (best {share:.1%}); the learnt schedule"
    elif calendar is None or (isinstance(calendar, str) and calendar.lower() == "own"):
        cal = None
    else:
        # from the first of January before the last month of history: one build per calendar and year (a build
        # is about 0.26 s of pandas holiday rules, under the GIL; a server would pay it on every request)
        first = (idx[-1] - pd.Timedelta(days=30)).year
        cal = (
            get_calendar(calendar, start=pd.Timestamp(year=first, month=1, day=1))
            if isinstance(calendar, str)
            else calendar
        )
        note = f"calendar {cal.name}"
    if cal is None or sched.step >= pd.Timedelta(days=7) or not sched.slots:
        return MarketTimes(learnt(), None, note)
    wall = to_wall(idx, str(cal.tz)) if idx.tz is not None else idx
    grid = infer_schedule(wall, find_clock=False, closures=False)  # the grid in the exchange's wall clock
    if grid.intraday and wall[-1].normalize() - wall[0].normalize() < DAY:
        return MarketTimes(continue_schedule(grid, idx, pred_len).rename(idx.name), str(cal.name), note)
    try:
        out = _on_calendar(grid, wall, pred_len, cal, idx)
    except InputError as exc:  # the calendar ends too soon (exchange_calendars covers about a year ahead)
        if not (isinstance(calendar, str) and calendar.lower() == "auto"):
            raise
        note = f"calendar auto: {exc}; the learnt schedule"
        return MarketTimes(learnt(), None, note)
    return MarketTimes(out.rename(idx.name), str(cal.name), note)


def future_timestamps(
    timestamps: Any, pred_len: int, *, calendar: str | Any | None = DEFAULT_CALENDAR
) -> pd.DatetimeIndex:
    """The times of :func:`market_times` alone (a DatetimeIndex named like ``timestamps``)."""
    return market_times(timestamps, pred_len, calendar=calendar).times


def _slots_for(sched: Schedule, weekday: int) -> list[pd.Timedelta]:
    if weekday in sched.slots:
        return sched.slots[weekday]
    return sorted({t for ts in sched.slots.values() for t in ts})  # a weekday never seen: any slot of the grid


def _on_calendar(
    sched: Schedule, wall: pd.DatetimeIndex, pred_len: int, cal: Any, idx: pd.DatetimeIndex
) -> pd.DatetimeIndex:
    last = wall[-1]
    out = pd.DatetimeIndex([], tz=idx.tz)
    start = last.normalize() - DAY  # an overnight session labelled by the next date may hold the next bar
    span = pred_len if not sched.intraday else pred_len // max(1, len(_slots_for(sched, 0))) + 2
    while len(out) < pred_len:
        end = start + pd.Timedelta(days=2 * span + 14)
        if start > _naive_day(cal.last_session):
            raise InputError(f"calendar {cal.name} ends at {cal.last_session.date()}, before {pred_len} future bars")
        sessions = cal.sessions_in_range(start, min(end, _naive_day(cal.last_session)))
        bars = [t for s in sessions for t in _session_bars(sched, s, cal) if t > last]
        if bars:
            times = pd.DatetimeIndex(bars)
            if idx.tz is not None:
                times = localize(times, str(cal.tz), intraday=sched.intraday).tz_convert(idx.tz)
            out = out.append(times[times > idx[-1]]).unique().sort_values()
        start = end + DAY
        span *= 2
    return out[:pred_len]


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
