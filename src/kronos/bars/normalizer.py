"""The per-series normaliser: z-scores fitted on the bars a forecast conditions on, and their inverse.

Float32 statistics reduced in the original's order, so ordinary series give the original's numbers to the
bit; columns of extreme magnitude are scaled by an exact power of two first, so the forecast does not
depend on the units (prices from 1e-30 to 1e30).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kronos.bars.preprocessing import FEATURE_COLS
from kronos.core.errors import InputError
from kronos.model.config import DEFAULT_CLIP

__all__ = ["NORM_EPS", "NORM_EPS_MIN_LEVEL", "SCALE_FREE_RANGE", "Normalizer"]

NORM_EPS = 1e-5
# The original's fixed +1e-5 is kept on columns whose mean is at least this level (every FX pair, stock,
# index and future, ordinary volumes): bit parity with the original. On smaller levels the floor
# becomes NORM_EPS * std, so the z-scores, and the forecast, do not depend on units.
NORM_EPS_MIN_LEVEL = 0.5

#: Columns whose largest magnitude lies outside [2**-40, 2**60] are scaled by a power of two before their
#: float32 statistics: squared deviations would underflow (1e-24 prices) or overflow (1e30) float32.
#: Scaling by a power of two is exact, and ordinary columns are not scaled, so their numbers keep bit parity.
SCALE_FREE_RANGE = (2.0**-40, 2.0**60)


def _power_of_two_scale(x32: np.ndarray) -> np.ndarray | None:
    """Per column, the power of two that brings its largest magnitude to [1, 2) when it lies outside
    :data:`SCALE_FREE_RANGE` (1 elsewhere); ``None`` when no column needs one."""
    with np.errstate(invalid="ignore"):
        m = np.max(np.abs(x32), axis=0).astype(np.float64) if len(x32) else np.zeros(x32.shape[1])
    low, high = SCALE_FREE_RANGE
    need = np.isfinite(m) & (m > 0) & ((m < low) | (m > high))
    if not need.any():
        return None
    scale = np.ones(m.shape, dtype=np.float64)
    scale[need] = 2.0 ** -np.floor(np.log2(m[need]))
    return scale.astype(np.float32)


@dataclass
class Normalizer:
    """Per-series z-score with clipping, fitted on the lookback only.

    ``transform`` gives ``clip((x - mean) / (std + eps))`` (``eps`` as the original's ``1e-5`` on
    ordinary scales, see :attr:`denominator`); ``inverse`` undoes the scaling (clipping is not
    invertible). Statistics are float32, as in the original pipeline, so numbers agree to the last bits.
    A column of extreme magnitude (below ``2**-40`` or above ``2**60``) is first multiplied by a power of
    two (``scale``), exactly, so prices from 1e-30 to 1e30 give the same z-scores and the same forecast
    up to the scale. Training windows fit it on their lookback part, never on the targets.
    """

    mean: np.ndarray
    std: np.ndarray
    clip: float = DEFAULT_CLIP
    scale: np.ndarray | None = None  # per column, a power of two applied before the statistics

    @classmethod
    def fit(cls, x: np.ndarray, clip: float = DEFAULT_CLIP) -> Normalizer:
        """Float32 mean and std per column, reduced in the original's order.

        The original reduces ``df[cols].values.astype(np.float32)``, which is column-major (pandas
        keeps a frame's values as one block per dtype, transposed); numpy sums a column-major axis
        pairwise but a row-major one row by row, and the two differ in the last bit often enough to
        flip a token on series whose level is hundreds of stds (FX). So the reduction runs on a
        column-major copy.
        """
        x32 = np.asfortranarray(np.asarray(x, dtype=np.float32))
        scale = _power_of_two_scale(x32)
        if scale is not None:
            x32 = np.asfortranarray(x32 * scale)
        with np.errstate(over="ignore", invalid="ignore"):
            mean, std = np.mean(x32, axis=0), np.std(x32, axis=0)
        bad = ~(np.isfinite(mean) & np.isfinite(std))
        if bad.any():
            col = int(np.flatnonzero(bad)[0])
            name = FEATURE_COLS[col] if x32.shape[1] == len(FEATURE_COLS) else f"#{col}"
            raise InputError(
                f"column {name!r}: its mean or spread overflows float32 (values up to "
                f"{float(np.max(np.abs(x32[:, col]))):.4g}); rescale the series"
            )
        return cls(mean=mean, std=std, clip=clip, scale=scale)

    @property
    def denominator(self) -> np.ndarray:
        """``std + eps`` per column, float32.

        ``eps`` is the original's fixed ``1e-5`` on columns whose mean is at least
        ``NORM_EPS_MIN_LEVEL`` (0.5; every FX pair, stock, index and future, ordinary volumes), so the
        numbers are the original's to the bit. On smaller levels (sub-cent coins, prices quoted
        in thousands of a unit, tiny volumes) and on scaled columns a fixed ``1e-5`` would depend on the
        units, so ``eps`` is ``1e-5 * std`` there and the z-scores do not depend on units: forecasting
        ``k * prices`` gives ``k *`` the forecast. A constant column (std 0) keeps ``1e-5``.
        """
        std = np.asarray(self.std, dtype=np.float32)
        fixed = (np.abs(np.asarray(self.mean, dtype=np.float32)) >= np.float32(NORM_EPS_MIN_LEVEL)) | (std == 0)
        if self.scale is not None:
            fixed &= (self.scale == 1) | (std == 0)
        return np.where(fixed, std + np.float32(NORM_EPS), std * np.float32(1 + NORM_EPS)).astype(np.float32)

    def transform(self, x: np.ndarray) -> np.ndarray:
        x32 = np.asarray(x, dtype=np.float32)
        if self.scale is not None:
            x32 = x32 * self.scale
        z = (x32 - self.mean) / self.denominator
        return np.clip(z, -self.clip, self.clip)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        values = np.asarray(z) * self.denominator + self.mean
        return values if self.scale is None else values / self.scale
