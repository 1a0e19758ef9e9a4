"""Share splits left in price data: found by their signature and undone, so a window the model reads is one scale.

Why: price files often hold an unadjusted split (a vendor applied it to the later bars only, or a user exported raw
prices). On the project's own held-out data the Select Sector SPDR ETFs' daily bars halve overnight on 2025-11-17
(XLK 288.15 -> open 142.51, volume 13.7 M -> 24.7 M). A window holding that jump is normalised over two price levels,
and the model forecasts a 5-day 80% interval of -20% to +20% for a fund that moves 1% a day: garbage, silently.

What counts as a split (all of it must hold at one bar ``t``; the conservative side of each test, since undoing a
real crash would hide risk):

- the gap from the last close to ``t``'s open and the close-to-close move both exceed ``max(MIN_SIGMAS`` robust
  standard deviations of the series' bar returns, ``MIN_JUMP)``, in the same direction;
- the gap matches a split ratio of :data:`SPLIT_RATIOS` (or a reverse split, its inverse) within a tolerance of two
  robust standard deviations, clipped to ``[RATIO_TOL_MIN, RATIO_TOL_MAX]`` in log terms;
- where the bars have volume, it moves against the price as a split's does: the median volume of the bars from
  ``t`` on is at least ``ratio ** VOLUME_SHARE`` times that of the bars before (a reverse split: at most); a
  futures roll or a crash that happens to land near half the price does not (natural gas's front month on
  2026-01-29: 7.46 -> 3.74, volume unchanged, is not a split).

Undoing one divides every price before ``t`` by the ratio and multiplies the volume by it (the amount traded is
unchanged), as a vendor's split adjustment does. :func:`find_splits` and :func:`undo_splits` work on arrays;
:func:`undo_frame_splits` on a bar frame, as the forecast doors hold it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from kronos.core.errors import Notice

__all__ = [
    "MIN_JUMP",
    "MIN_SIGMAS",
    "RATIO_TOL_MAX",
    "RATIO_TOL_MIN",
    "SPLIT_RATIOS",
    "Split",
    "SplitsUndoneNotice",
    "describe_split",
    "find_splits",
    "undo_frame_splits",
    "undo_splits",
]

#: Forward split ratios (new shares per old share) looked for; a reverse split is the inverse of one of them. Whole
#: ratios only: a 3-for-2 split moves the price as much as a one-day crash of a third does (Procter & Gamble on
#: 2000-03-07, Best Buy on 2014-01-16, volume up as after a split), so such splits are not told apart and left as
#: they are.
SPLIT_RATIOS: tuple[Fraction, ...] = tuple(
    Fraction(r) for r in ("2", "3", "4", "5", "6", "7", "8", "10", "15", "20", "25", "30", "40", "50", "100")
)
#: A split's jump is at least this many robust standard deviations of the series' bar-to-bar log returns ...
MIN_SIGMAS = 10.0
#: ... and at least this log move (a 2-for-1 split is a log move of 0.69).
MIN_JUMP = float(np.log(1.5))
#: The gap may differ from the split ratio by two robust standard deviations (the market moved overnight too),
#: never less than this log distance ...
RATIO_TOL_MIN = 0.015
#: ... and never more (Apple's fall of 2000-09-29 to 0.527 of its close, volume tripled, is 0.053 from 1/2).
RATIO_TOL_MAX = 0.035
#: Bars on each side of a split whose median volume is compared ...
VOLUME_BARS = 10
#: ... and the least share of the split's log ratio by which the volume must move against the price: a split of 2
#: multiplies the shares traded by about 2, but volume drifts by a third in ten bars on its own (GOOGL, April 2018).
VOLUME_SHARE = 0.25


@dataclass(frozen=True)
class Split:
    """A split found at bar ``index`` (the first bar at the new scale): ``ratio`` new shares per old share (below 1:
    a reverse split), and the price gap that was seen (``open[index] / close[index - 1]``)."""

    index: int
    ratio: Fraction
    gap: float

    @property
    def label(self) -> str:
        """The ratio as traders write it: ``2:1`` (two for one), ``10:1``, ``1:10`` (a reverse split)."""
        return f"{self.ratio.numerator}:{self.ratio.denominator}"


def _robust_sigma(log_returns: np.ndarray) -> float:
    deviations = np.abs(log_returns - np.median(log_returns))
    return float(1.4826 * np.median(deviations))


def find_splits(
    open_: np.ndarray, close: np.ndarray, volume: np.ndarray | None = None, *, start: int = 1
) -> list[Split]:
    """The splits left in a series of bars (see the module's tests), at bars ``start`` and later, oldest first.

    ``volume`` ``None`` or all zero: the price tests alone decide. Bars that are not finite and positive are left
    to validation (nothing is found in a series holding them).
    """
    o, c = np.asarray(open_, dtype=np.float64), np.asarray(close, dtype=np.float64)
    n = len(c)
    if n < 3 or len(o) != n or not (np.isfinite(o).all() and np.isfinite(c).all() and (o > 0).all() and (c > 0).all()):
        return []
    moves = np.diff(np.log(c))  # moves[t - 1]: close[t - 1] -> close[t]
    gaps = np.log(o[1:] / c[:-1])
    sigma = _robust_sigma(moves)
    threshold = max(MIN_SIGMAS * sigma, MIN_JUMP)
    tol = min(max(2.0 * sigma, RATIO_TOL_MIN), RATIO_TOL_MAX)
    vol = None if volume is None else np.asarray(volume, dtype=np.float64)
    if vol is not None and not (np.isfinite(vol).all() and (vol > 0).any()):
        vol = None
    log_ratios = np.log(np.array([float(r) for r in SPLIT_RATIOS]))
    found: list[Split] = []
    for t in np.flatnonzero((np.abs(gaps) >= threshold) & (np.abs(moves) >= threshold) & (gaps * moves > 0)) + 1:
        if t < start:
            continue
        seen = -gaps[t - 1]  # log of old price / new price: > 0 for a forward split
        k = int(np.argmin(np.abs(log_ratios - abs(seen))))
        if abs(log_ratios[k] - abs(seen)) > tol:
            continue
        ratio = SPLIT_RATIOS[k] if seen > 0 else 1 / SPLIT_RATIOS[k]
        if vol is not None:
            before, after = vol[max(t - VOLUME_BARS, 0) : t], vol[t : t + VOLUME_BARS]
            v_before, v_after = float(np.median(before)), float(np.median(after))
            # the volume moves against the price by at least the ratio's fourth root (where both sides traded)
            moved = np.log(v_after / v_before) * np.sign(seen) if v_before > 0 and v_after > 0 else np.inf
            if moved < VOLUME_SHARE * abs(log_ratios[k]):
                continue
        found.append(Split(index=int(t), ratio=ratio, gap=float(np.exp(gaps[t - 1]))))
    return found


def undo_splits(
    bars: np.ndarray, splits: Sequence[Split], price_cols: int = 4, volume_col: int | None = 4
) -> np.ndarray:
    """``bars`` ``(n, d)`` with every split undone: prices (the first ``price_cols`` columns) before each split divided
    by its ratio, the volume column multiplied by it; a copy, float64."""
    out = np.array(bars, dtype=np.float64, copy=True)
    for s in splits:
        r = float(s.ratio)
        out[: s.index, :price_cols] /= r
        if volume_col is not None:
            out[: s.index, volume_col] *= r
    return out


def describe_split(record: dict[str, Any]) -> str:
    """One split record of :func:`undo_frame_splits` in words (``2:1 at row 311 (2024-06-10T00:00:00), open 0.501 of
    the close before``): what the notice, the HTTP API's notes and the evaluation's summary say of it."""
    when = f" ({record['time']})" if record.get("time") else ""
    return f"{record['ratio']} at row {record['row']}{when}, open {record['gap']:.3f} of the close before"


class SplitsUndoneNotice(Notice):
    """A forecast undid a split in the bars it reads (:func:`undo_frame_splits`): once per run on the command line."""

    once = True


def undo_frame_splits(
    df: pd.DataFrame, x_timestamp: Any = None, *, reach: int | None = None, label: str | None = None
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """A bar frame with the splits in its last ``reach`` bars (``None``: all) undone, and what was undone.

    Returns the frame itself when nothing is found (a copy otherwise; the caller's frame is never changed) and one
    record per split, ``{"row", "time", "ratio", "gap"}`` (``time`` from ``x_timestamp`` when given), as a
    forecast's ``info["splits"]`` reports them; each is announced with a :class:`SplitsUndoneNotice`. A frame this
    cannot read (a missing or non-numeric price column) is returned as it is, for validation to refuse.
    """
    if not isinstance(df, pd.DataFrame) or not {"open", "close"} <= set(df.columns) or len(df) < 3:
        return df, []
    try:
        o = pd.to_numeric(df["open"]).to_numpy(dtype=np.float64)
        c = pd.to_numeric(df["close"]).to_numpy(dtype=np.float64)
        v = pd.to_numeric(df["volume"]).to_numpy(dtype=np.float64) if "volume" in df.columns else None
    except (TypeError, ValueError):
        return df, []
    start = 1 if reach is None else max(len(df) - int(reach) + 1, 1)
    with np.errstate(all="ignore"):
        found = find_splits(o, c, v, start=start)
    if not found:
        return df, []
    times: Any = None
    if x_timestamp is not None:
        try:
            times = pd.DatetimeIndex(pd.to_datetime(pd.Index(x_timestamp)))
        except (TypeError, ValueError):
            times = None
    out = df.copy()
    price_cols = [col for col in ("open", "high", "low", "close") if col in out.columns]
    out[price_cols] = out[price_cols].apply(pd.to_numeric).astype(np.float64)
    if "volume" in out.columns:
        out["volume"] = pd.to_numeric(out["volume"]).astype(np.float64)
    records = []
    at_prices = out.columns.get_indexer(price_cols)
    at_volume = out.columns.get_loc("volume") if "volume" in out.columns else None
    for s in found:
        r = float(s.ratio)
        out.iloc[: s.index, at_prices] = out.iloc[: s.index, at_prices].to_numpy() / r
        if at_volume is not None:
            out.iloc[: s.index, at_volume] = out.iloc[: s.index, at_volume].to_numpy() * r
        when = times[s.index].isoformat() if times is not None and len(times) == len(df) else None
        records.append({"row": s.index, "time": when, "ratio": s.label, "gap": s.gap})
    where = f"{label}: " if label else ""
    listed = "; ".join(describe_split(rec) for rec in records)
    warnings.warn(
        f"{where}the bars hold what looks like an unadjusted share split ({listed}); the forecast reads them with "
        "earlier prices divided by the ratio and volume multiplied by it, as a split-adjusted series has them "
        "(splits=False keeps the bars as given; fc.info['splits'] lists what was undone)",
        SplitsUndoneNotice,
        stacklevel=2,
    )
    return out, records
