"""From user DataFrames to model arrays: column filling, validation, calendar features, normalisation.

Everything here is shared by the predictor, training data and evaluation so that a series is turned
into model input in exactly one way. Errors name the column, row and value at fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "AMOUNT_COL",
    "FEATURE_COLS",
    "PRICE_COLS",
    "STAMP_COLS",
    "VOLUME_COL",
    "InputError",
    "Normalizer",
    "calendar_features",
    "prepare_features",
    "validate_timestamps",
]

PRICE_COLS: list[str] = ["open", "high", "low", "close"]
VOLUME_COL = "volume"
AMOUNT_COL = "amount"
FEATURE_COLS: list[str] = PRICE_COLS + [VOLUME_COL, AMOUNT_COL]
STAMP_COLS: list[str] = ["minute", "hour", "weekday", "day", "month"]

NORM_EPS = 1e-5


class InputError(ValueError):
    """User input that cannot be forecast from, with the offending column, row or value named."""


def _where(label: str | None) -> str:
    return f"{label}: " if label else ""


def prepare_features(df: pd.DataFrame, *, label: str | None = None, check_prices: bool = True) -> np.ndarray:
    """Return the six model features ``(n, 6)`` float64 of an OHLC[V[A]] frame.

    Missing ``volume`` means volume and amount are 0; volume without ``amount`` gives
    ``amount = volume * mean(open, high, low, close)`` (the original's convention). NaN or infinite
    values and non-positive prices are errors naming the first bad row.
    """
    where = _where(label)
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"{where}expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in PRICE_COLS if c not in df.columns]
    if missing:
        raise InputError(f"{where}missing price column(s) {missing}; the frame has columns {list(df.columns)}")
    if len(df) == 0:
        raise InputError(f"{where}the history is empty (0 rows)")
    cols = {}
    for c in PRICE_COLS + [VOLUME_COL, AMOUNT_COL]:
        if c in df.columns:
            try:
                cols[c] = pd.to_numeric(df[c]).to_numpy(dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise InputError(f"{where}column {c!r} is not numeric ({exc})") from None
    n = len(df)
    if VOLUME_COL not in cols:
        cols[VOLUME_COL] = np.zeros(n)
        cols[AMOUNT_COL] = np.zeros(n)
    elif AMOUNT_COL not in cols:
        cols[AMOUNT_COL] = cols[VOLUME_COL] * np.mean([cols[c] for c in PRICE_COLS], axis=0)
    x = np.stack([cols[c] for c in FEATURE_COLS], axis=1)
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InputError(
            f"{where}column {FEATURE_COLS[col]!r} has {'a NaN' if np.isnan(x[row, col]) else 'an infinite'} value "
            f"at row {row} (index {df.index[row]!r}); {int(bad.sum())} bad value(s) in all"
        )
    if check_prices:
        nonpos = x[:, :4] <= 0
        if nonpos.any():
            row, col = np.argwhere(nonpos)[0]
            raise InputError(
                f"{where}column {PRICE_COLS[col]!r} has a non-positive price {float(x[row, col])!r} at row {row} (index {df.index[row]!r})"
            )
    return x


def validate_timestamps(timestamps: Iterable, *, name: str, expected_len: int | None = None, label: str | None = None) -> pd.DatetimeIndex:
    """Coerce to a DatetimeIndex and check length, order and uniqueness."""
    where = _where(label)
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(pd.Series(timestamps) if not isinstance(timestamps, pd.DatetimeIndex) else timestamps))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}{name} cannot be read as timestamps ({exc})") from None
    if expected_len is not None and len(idx) != expected_len:
        raise InputError(f"{where}{name} has {len(idx)} timestamps but {expected_len} are needed")
    if idx.hasnans:
        row = int(np.flatnonzero(idx.isna())[0])
        raise InputError(f"{where}{name} has a missing timestamp at position {row}")
    if len(idx) > 1:
        diffs = np.diff(idx.asi8)
        if (diffs == 0).any():
            row = int(np.flatnonzero(diffs == 0)[0]) + 1
            raise InputError(f"{where}{name} has a duplicate timestamp {idx[row]} at position {row}")
        if (diffs < 0).any():
            row = int(np.flatnonzero(diffs < 0)[0]) + 1
            raise InputError(f"{where}{name} is not sorted: {idx[row]} at position {row} comes after {idx[row - 1]}")
    return idx


def calendar_features(timestamps: Sequence | pd.DatetimeIndex | pd.Series) -> np.ndarray:
    """Time features per bar ``(n, 5)``: minute, hour, weekday (Monday 0), day of month, month.

    The column order is the one the published checkpoints were trained with.
    """
    idx = pd.DatetimeIndex(timestamps)
    return np.stack([idx.minute, idx.hour, idx.weekday, idx.day, idx.month], axis=1).astype(np.float32)


@dataclass
class Normalizer:
    """Per-series z-score with clipping, fitted on the lookback only.

    ``transform`` gives ``clip((x - mean) / (std + 1e-5))``; ``inverse`` undoes the scaling (clipping
    is not invertible). Statistics are float32, as in the original pipeline, so numbers agree to the
    last bits. Training windows fit it on their lookback part, never on the targets.
    """

    mean: np.ndarray
    std: np.ndarray
    clip: float = 5.0

    @classmethod
    def fit(cls, x: np.ndarray, clip: float = 5.0) -> "Normalizer":
        x32 = np.asarray(x, dtype=np.float32)
        return cls(mean=np.mean(x32, axis=0), std=np.std(x32, axis=0), clip=clip)

    def transform(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float32) - self.mean) / (self.std + NORM_EPS)
        return np.clip(z, -self.clip, self.clip)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z) * (self.std + NORM_EPS) + self.mean
