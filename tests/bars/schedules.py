"""Generated trading schedules for the property tests (a hypothesis strategy, not a test module).

A :class:`Spec` is a market: its wall clock (zone), how its timestamps are written (naive wall clock,
naive UTC or aware), its bar times per weekday, yearly closures, one-off holidays and special sessions.
``history`` lays the bars of the last weeks up to an end date; ``contains`` says whether times lie in
the regular schedule (special sessions and holidays are not the rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from hypothesis import strategies as st

DAY = pd.Timedelta(days=1)

NY = "America/New_York"


def _grid(start: str, end: str, step: pd.Timedelta) -> list[pd.Timedelta]:
    return list(pd.timedelta_range(pd.Timedelta(start), pd.Timedelta(end), freq=step))


@dataclass
class Spec:
    kind: str
    zone: str | None  # the market's wall clock (None: naive wall clock)
    written: str  # "wall" (naive wall clock), "utc" (naive UTC) or "aware" (tz-aware in zone)
    step: pd.Timedelta
    grid: dict[int, list[pd.Timedelta]]
    weeks: int
    fixed: set[tuple[int, int]] = field(default_factory=set)  # yearly closures (month, day)
    holidays: list[int] = field(default_factory=list)  # days before the end without bars
    specials: list[int] = field(default_factory=list)  # Saturdays (weeks before the end) with a short session

    def wall_history(self, end: pd.Timestamp) -> pd.DatetimeIndex:
        end = end.normalize()
        days = pd.date_range(end - pd.Timedelta(weeks=self.weeks), end, freq="D")
        # a one-off holiday within four days of a yearly closure would hide that year's closure from the learner
        # (it needs bars within three days either side), leaving too few years to learn it from: not drawn there
        off = {end - pd.Timedelta(days=d) for d in self.holidays}
        off = {d for d in off if not any(((d + k * DAY).month, (d + k * DAY).day) in self.fixed for k in range(-4, 5))}
        special = {(end - pd.Timedelta(days=(end.dayofweek - 5) % 7 + 7 * w)).normalize() for w in self.specials}
        times = []
        for day in days:
            if day in special and (day.month, day.day) not in self.fixed:
                # a short session: three bars from 10:00 (one bar on its day for daily bars)
                times += [day] if self.step >= DAY else [day + pd.Timedelta(hours=10) + k * self.step for k in range(3)]
            if day in off or (day.month, day.day) in self.fixed:
                continue
            times += [day + t for t in self.grid.get(day.dayofweek, [])]
        return pd.DatetimeIndex(sorted(set(times)))

    def stamps(self, wall: pd.DatetimeIndex) -> pd.DatetimeIndex:
        """How the market writes its wall-clock times (DST gaps dropped, overlaps kept once)."""
        if self.written == "wall":
            return wall
        inst = wall.tz_localize(self.zone, ambiguous="NaT", nonexistent="NaT")
        inst = inst[~inst.isna()]
        return inst.tz_convert("UTC").tz_localize(None) if self.written == "utc" else inst

    def to_wall(self, times: pd.DatetimeIndex) -> pd.DatetimeIndex:
        if self.written == "wall":
            return times
        inst = times.tz_localize("UTC") if self.written == "utc" else times
        return inst.tz_convert(self.zone).tz_localize(None)

    def contains(self, times: pd.DatetimeIndex) -> np.ndarray:
        """Whether each time is a regular bar of the schedule (its weekday and time of day, no closure)."""
        wall = self.to_wall(times)
        day = wall.normalize()
        ok = [
            (t - d) in self.grid.get(d.dayofweek, []) and (d.month, d.day) not in self.fixed for t, d in zip(wall, day)
        ]
        return np.array(ok)


@st.composite
def specs(draw: st.DrawFn) -> tuple[Spec, pd.Timestamp]:
    """A market and the end of its history (near a daylight-saving change or a year end)."""
    kind = draw(st.sampled_from(["24/7", "weekdays", "lunch", "fx", "daily"]))
    weekdays = range(5)
    if kind == "24/7":
        step = pd.Timedelta(draw(st.sampled_from(["30min", "1h"])))
        written = draw(st.sampled_from(["wall", "aware"]))
        grid = {w: _grid("0h", "23h59min", step) for w in range(7)}
        spec = Spec(kind, NY if written != "wall" else None, written, step, grid, weeks=8)
    elif kind == "weekdays":
        step = pd.Timedelta(draw(st.sampled_from(["5min", "30min"])))
        written = draw(st.sampled_from(["wall", "utc", "aware"]))
        grid = {w: _grid("9h30min", "15h59min", step) for w in weekdays}
        spec = Spec(kind, NY if written != "wall" else None, written, step, grid, weeks=36 if written == "utc" else 10)
    elif kind == "lunch":
        step = pd.Timedelta("5min")
        written = draw(st.sampled_from(["wall", "aware"]))
        grid = {w: _grid("9h30min", "11h25min", step) + _grid("13h", "14h55min", step) for w in weekdays}
        spec = Spec(kind, "Asia/Shanghai" if written == "aware" else None, written, step, grid, weeks=10)
    elif kind == "fx":
        step = pd.Timedelta("1h")
        grid = {w: _grid("0h", "23h", step) for w in range(1, 4)}
        grid |= {6: _grid("17h", "23h", step), 0: _grid("0h", "23h", step), 4: _grid("0h", "16h", step)}
        spec = Spec(kind, NY, draw(st.sampled_from(["utc", "aware"])), step, grid, weeks=36)
    else:
        step = pd.Timedelta("1D")
        grid = {w: [pd.Timedelta(0)] for w in weekdays}
        spec = Spec(kind, None, "wall", step, grid, weeks=210, fixed={(12, 25), (1, 1), (7, 4)})
    spec.holidays = draw(st.lists(st.integers(10, spec.weeks * 7 - 10), max_size=3, unique=True))
    if kind != "24/7":
        spec.specials = draw(st.lists(st.integers(2, spec.weeks - 1), max_size=2, unique=True))
    year = draw(st.integers(2012, 2030))
    month = draw(st.sampled_from([12] if kind == "daily" else [3, 10, 11]))
    day = draw(st.integers(1, 28))
    hour = draw(st.integers(0, 23)) if kind != "daily" else 0
    return spec, pd.Timestamp(year=year, month=month, day=day, hour=hour)
