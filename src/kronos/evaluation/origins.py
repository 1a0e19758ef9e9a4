"""Where the forecast origins of a rolling evaluation go, and why a series got none.

An origin is a bar position ``t`` with ``lookback`` bars up to and including it and ``horizon`` bars after
it. Origins are placed backwards from the end of the data every ``stride`` bars (default: the horizon, so
forecast windows do not overlap). With ``align="calendar"`` (panels) they are chosen on the union calendar
of all series, so every series is forecast at the same dates, which the cross-sectional IC and the portfolio
backtest need. The layout is decided here, from the bars' timestamps alone, before any forecaster runs;
:mod:`kronos.evaluation.rolling` then forecasts and scores at these origins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kronos.core.errors import InputError
from kronos.evaluation.metrics import QUANTILES

__all__ = ["RollingConfig", "origin_plan", "skip_reasons"]


@dataclass(frozen=True)
class RollingConfig:
    """How origins are laid out and how forecasts are sampled.

    ``origins``: at most this many origins per series (fewer when the series is short).
    ``stride``: bars between consecutive origins (default ``horizon``).
    ``num_samples``: sample paths asked of each forecaster per origin.
    ``align``: ``"end"`` (origins counted back from each series' own end), ``"calendar"`` (the same
    dates for all series) or ``"auto"`` (calendar when 90% of the series end on the same bar, as
    in a panel).
    ``calendar``: ``None`` (default) gives forecasters the times of the bars that really came next; a
    value of :func:`kronos.bars.calendars.market_times` (``"auto"``, ``"own"``, ``"XNYS"`` ...) gives them the
    times a live forecast would use, made from the series' history up to the origin.
    """

    lookback: int
    horizon: int
    origins: int
    stride: int | None = None
    num_samples: int = 100
    seed: int = 0
    align: str = "auto"
    quantiles: tuple[float, ...] = QUANTILES
    calendar: str | None = None

    def __post_init__(self) -> None:
        for name in ("lookback", "horizon", "origins", "num_samples"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.stride is not None and int(self.stride) < 1:
            raise InputError(f"stride must be >= 1, got {self.stride}")
        if self.align not in {"auto", "end", "calendar"}:
            raise InputError(f"align must be 'auto', 'end' or 'calendar', got {self.align!r}")

    @property
    def step(self) -> int:
        return int(self.stride) if self.stride is not None else int(self.horizon)


def _valid_range(n: int, config: RollingConfig) -> tuple[int, int]:
    return config.lookback - 1, n - 1 - config.horizon


def _resolve_align(series: dict[str, pd.DataFrame], config: RollingConfig) -> str:
    if config.align != "auto":
        return config.align
    if len(series) < 2:
        return "end"
    ends = pd.Series([frame["timestamps"].iloc[-1] for frame in series.values()])
    return "calendar" if ends.value_counts().iloc[0] >= 0.9 * len(ends) else "end"


def origin_plan(series: dict[str, pd.DataFrame], config: RollingConfig) -> tuple[dict[str, np.ndarray], str]:
    """Origin bar positions per series (ascending), and the alignment actually used.

    A series too short for even one origin gets an empty array. Raises :class:`InputError` when no
    series has any origin, naming the lookback and horizon that need ``lookback + horizon`` bars.
    """
    align = _resolve_align(series, config)
    plan: dict[str, np.ndarray] = {}
    if align == "end":
        for name, frame in series.items():
            first, last = _valid_range(len(frame), config)
            pos = last - config.step * np.arange(config.origins)
            plan[name] = np.sort(pos[pos >= first])
    else:
        calendar = pd.DatetimeIndex(np.unique(np.concatenate([f["timestamps"].to_numpy() for f in series.values()])))
        valid_count = np.zeros(len(calendar), dtype=np.int64)
        for frame in series.values():
            first, last = _valid_range(len(frame), config)
            if last >= first:
                stamps = frame["timestamps"].to_numpy()[first : last + 1]
                valid_count[calendar.get_indexer(stamps)] += 1
        candidates = np.flatnonzero(valid_count * 2 >= len(series))
        if len(candidates) == 0:
            candidates = np.flatnonzero(valid_count > 0)
        if len(candidates) == 0:
            chosen = pd.DatetimeIndex([])
        else:
            idx = candidates[-1] - config.step * np.arange(config.origins)
            chosen = calendar[np.sort(idx[idx >= 0])]
        for name, frame in series.items():
            first, last = _valid_range(len(frame), config)
            pos = pd.DatetimeIndex(frame["timestamps"]).get_indexer(chosen)
            plan[name] = pos[(pos >= first) & (pos <= last) & (pos >= 0)]
    if not any(len(p) for p in plan.values()):
        longest = max(len(f) for f in series.values())
        raise InputError(
            f"no forecast origin fits: lookback {config.lookback} + horizon {config.horizon} needs at least "
            f"{config.lookback + config.horizon} bars, and the longest series has {longest}"
        )
    return plan, align


def skip_reasons(
    series: dict[str, pd.DataFrame], plan: dict[str, np.ndarray], config: RollingConfig, align: str
) -> dict[str, str]:
    """Why each series without an origin in ``plan`` was left out, in words.

    Too few bars for ``lookback + horizon`` is one reason; under calendar alignment a long series can
    also miss every common origin date (it ends before them, starts after them, or has no bar on them).
    """
    need = config.lookback + config.horizon
    chosen = pd.DatetimeIndex(
        np.unique(
            np.concatenate(
                [series[n]["timestamps"].to_numpy()[p] for n, p in plan.items() if len(p)] or [np.array([], "M8[ns]")]
            )
        )
    )
    reasons: dict[str, str] = {}
    for name, positions in plan.items():
        if len(positions):
            continue
        frame = series[name]
        n = len(frame)
        if n < need:
            reasons[name] = f"too short: {n} bars, lookback {config.lookback} + horizon {config.horizon} needs {need}"
            continue
        stamps = pd.DatetimeIndex(frame["timestamps"])
        first_ok, last_ok = stamps[config.lookback - 1], stamps[n - 1 - config.horizon]
        span = (
            f"the {len(chosen)} common origin dates {chosen[0]:%Y-%m-%d %H:%M} .. {chosen[-1]:%Y-%m-%d %H:%M}"
            if len(chosen)
            else "the common origin dates"
        )
        if len(chosen) and last_ok < chosen[0]:
            reasons[name] = f"ends too early: its last usable origin {last_ok} (data end {stamps[-1]}) is before {span}"
        elif len(chosen) and first_ok > chosen[-1]:
            reasons[name] = f"starts too late: its first usable origin {first_ok} is after {span}"
        else:
            reasons[name] = (
                f"no bar with {config.lookback} bars before and {config.horizon} after on {span} ({align} alignment)"
            )
    return reasons
