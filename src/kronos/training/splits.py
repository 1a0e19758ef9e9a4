"""How one instrument's bars are cut before training windows are drawn: at gaps, and in time.

Gap rule (:class:`GapRule`): consecutive bars more than ``max_gap`` apart split an instrument into
segments, and no window crosses a segment boundary. ``max_gap="auto"`` (the default) uses, per
instrument, the larger of 10 times its median bar spacing and 14 days: nights, weekends and holidays
(even the week-long exchange closures around Chinese New Year) stay inside a series, as in the published
models' training data, while missing months, suspensions of more than two weeks and other holes in the
record split it. ``max_gap=None`` never splits; a duration string (``"3D"``, ``"2h"``) sets one
threshold for every instrument.

Time split (:class:`SplitSpec`): each instrument's bars are cut in time order into train, validation
and test parts (by fractions of its bars, or at given dates), and a window belongs to a split only if
*all* its bars do, so no validation or test bar is ever seen in training.

These are the options a corpus is built with (:mod:`kronos.training.corpus`), checked when they are
made, so a bad option fails before any data is read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kronos.bars.sources import DataSourceError
from kronos.core.validation import number

__all__ = ["CorpusError", "GapRule", "SplitSpec", "gap_free_segments", "window_starts"]


class CorpusError(DataSourceError):
    """A corpus cannot be built or opened (too little data, bad options, damaged folder).

    Defined with the options, which raise it first; :mod:`kronos.training.corpus` re-exports it.
    """


@dataclass(frozen=True)
class GapRule:
    """Which time differences between consecutive bars split a series (see the module docstring)."""

    max_gap: str | None = "auto"
    factor: float = 10.0
    floor: str = "14D"

    def __post_init__(self) -> None:
        if self.max_gap not in (None, "auto"):
            try:
                td = pd.Timedelta(self.max_gap)
            except (TypeError, ValueError):
                raise CorpusError(
                    f"max_gap must be 'auto', null or a duration such as '3D' or '2h', got {self.max_gap!r}"
                ) from None
            if td <= pd.Timedelta(0):
                raise CorpusError(f"max_gap must be positive, got {self.max_gap!r}")
        if not self.factor > 0:
            raise CorpusError(f"gap factor must be positive, got {self.factor!r}")

    def threshold_ns(self, timestamps: np.ndarray) -> int | None:
        """The largest allowed spacing for this series in nanoseconds (``None``: never split)."""
        if self.max_gap is None:
            return None
        if self.max_gap != "auto":
            return int(pd.Timedelta(self.max_gap).value)
        if len(timestamps) < 2:
            return int(pd.Timedelta(self.floor).value)
        median = float(np.median(np.diff(timestamps)))
        return int(max(self.factor * median, pd.Timedelta(self.floor).value))


@dataclass(frozen=True)
class SplitSpec:
    """How each instrument is cut in time into train / validation / test.

    Either fractions of each instrument's bars (``val_fraction``, ``test_fraction``; the test part
    is the most recent) or dates (``val_start``, ``test_start``: bars at or after them), not both.
    """

    val_fraction: float = 0.1
    test_fraction: float = 0.0
    val_start: str | None = None
    test_start: str | None = None

    def __post_init__(self) -> None:
        for name in ("val_fraction", "test_fraction"):
            v = getattr(self, name)
            number(name, v, low=0.0, high=1.0, low_open=False, error=CorpusError)
        if self.val_fraction + self.test_fraction >= 1.0:
            raise CorpusError(
                f"val_fraction + test_fraction must be below 1 (got {self.val_fraction} + {self.test_fraction})"
            )
        for name in ("val_start", "test_start"):
            v = getattr(self, name)
            if v is not None:
                try:
                    pd.Timestamp(v)
                except (TypeError, ValueError):
                    raise CorpusError(f"{name} must be a date such as '2021-01-01', got {v!r}") from None
        if (
            self.val_start is not None
            and self.test_start is not None
            and pd.Timestamp(self.test_start) < pd.Timestamp(self.val_start)
        ):
            raise CorpusError(f"test_start ({self.test_start}) must not be before val_start ({self.val_start})")

    @property
    def by_date(self) -> bool:
        return self.val_start is not None or self.test_start is not None

    def boundaries(self, timestamps: np.ndarray) -> tuple[int, int]:
        """Row positions ``(train_end, val_end)``: train ``[0, train_end)``, val up to ``val_end``, test the rest."""
        n = len(timestamps)
        if self.by_date:
            val_end = (
                n
                if self.test_start is None
                else int(np.searchsorted(timestamps, pd.Timestamp(self.test_start).value, "left"))
            )
            train_end = (
                val_end
                if self.val_start is None
                else int(np.searchsorted(timestamps, pd.Timestamp(self.val_start).value, "left"))
            )
            return min(train_end, val_end), val_end
        n_test = int(round(n * self.test_fraction))
        n_val = int(round(n * self.val_fraction))
        val_end = n - n_test
        return max(val_end - n_val, 0), val_end


def gap_free_segments(timestamps: np.ndarray, threshold: int | None) -> list[tuple[int, int]]:
    """``[first, end)`` row ranges of one series cut wherever consecutive bars lie more than ``threshold`` ns apart."""
    n = len(timestamps)
    if threshold is None or n < 2:
        return [(0, n)]
    cuts = np.flatnonzero(np.diff(timestamps) > threshold) + 1
    bounds = [0, *cuts.tolist(), n]
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def window_starts(segments: list[tuple[int, int]], lo: int, hi: int, window: int) -> np.ndarray:
    """First rows of every ``window``-bar window that lies inside one segment and inside rows ``[lo, hi)``."""
    parts = []
    for a, b in segments:
        a, b = max(a, lo), min(b, hi)
        if b - a >= window:
            parts.append(np.arange(a, b - window + 1, dtype=np.int64))
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
