"""Conformal order statistics, and calibration that keeps each path a trajectory.

Split-conformal prediction turns scores of past forecasts (what happened, measured against what the model
said) into a correction with a finite-sample coverage guarantee under exchangeability. The one-sided order
statistic and the coverage check are shared by both calibration methods of
:class:`kronos.forecasting.conformal.ConformalCalibration`; this module also holds the ``"scale"`` method:

**One scale of the paths around their median** (``method="scale"``, the default). At every origin and step
``h`` the model's paths give a median ``m`` and an 80% interval ``[lo, hi]`` of close returns; the score is how
far the realised return ``y`` went, in units of the interval's half on its side: ``(y - m) / (hi - m)`` above
the median, ``(m - y) / (m - lo)`` below. The scale ``s`` is the ``ceil((N + 1) 0.8)``-th smallest of the
``N = origins x steps`` scores, and a new forecast's paths become ``m[h] + s (r - m[h])``: every path keeps its
identity and its rank at every step (nothing is re-sorted), and its moves around the median path are scaled by
the same ``s`` at every step, so calibrated paths are trajectories with the model's own dynamics, widened or
narrowed. ``y`` lies in the calibrated 80% interval exactly when its score is at most ``s``: the conformal
guarantee, pooled over the steps (a scale per step, fitted on ``origins`` scores each, jitters from step to
step and breaks the trajectories; the pooled one is the stable choice, measured in docs/probabilistic.md).
"""

from __future__ import annotations

import math

import numpy as np

from kronos.core.errors import InputError

__all__ = [
    "REFERENCE_LEVEL",
    "apply_path_scales",
    "fit_path_scales",
    "history_scale",
    "interval_coverage",
    "min_origins",
    "order_index",
    "spread_ratios",
]

#: The central interval whose coverage the ``"scale"`` method guarantees.
REFERENCE_LEVEL = 0.8
#: Scales are floored here: a degenerate score set must not collapse every path onto the median.
MIN_SCALE = 1e-3


def min_origins(level: float) -> int:
    """Fewest calibration origins for which a central ``level`` interval is guaranteed.

    Each end is a one-sided conformal quantile at ``(1 + level) / 2``, which exists once
    ``ceil((n + 1) (1 + level) / 2) <= n``: 9 origins for 80%, 19 for 90%, 39 for 95%.
    """
    if not 0.0 < level < 1.0:
        raise InputError(f"interval level must be in (0, 1), got {level}")
    upper = (1.0 + level) / 2.0
    n = 1
    while math.ceil((n + 1) * upper - 1e-9) > n:
        n += 1
    return n


def order_index(n: int, q: float) -> tuple[int, bool]:
    """0-based order statistic of ``n`` scores for a one-sided level ``q``, and whether it exists."""
    k = math.ceil((n + 1) * q - 1e-9) if q >= 0.5 else math.floor((n + 1) * q + 1e-9)
    if k > n:
        return n - 1, False
    if k < 1:
        return 0, False
    return k - 1, True


def history_scale(close: np.ndarray) -> float:
    """Scale of an origin known at forecast time: the std (ddof 0) of its one-bar close returns.

    Scores divided by it are comparable between calm and volatile stretches, so offsets fitted in
    one regime widen or narrow with the next (normalised conformal prediction). Floored at 1e-8.
    """
    c = np.asarray(close, dtype=np.float64)
    if len(c) < 3:
        raise InputError(f"scale='history' needs at least 3 bars of history, got {len(c)}")
    with np.errstate(divide="ignore", invalid="ignore"):
        r = c[1:] / c[:-1] - 1.0
    r = r[np.isfinite(r)]
    return max(float(np.std(r)) if len(r) else 0.0, 1e-8)


def interval_coverage(returns: np.ndarray, realized: np.ndarray, level: float) -> np.ndarray:
    """Whether each realised return lies in the central ``level`` interval of its paths: ``(n, horizon)`` booleans."""
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(np.asarray(returns, dtype=np.float64), [alpha, 1.0 - alpha], axis=-2)
    y = np.asarray(realized, dtype=np.float64)
    return (y >= lo) & (y <= hi)


def spread_ratios(pred_returns: np.ndarray, realized: np.ndarray, level: float = REFERENCE_LEVEL) -> np.ndarray:
    """Scores ``(n_origins, horizon)``: the realised return's distance from the paths' median, in units of the
    central ``level`` interval's half on the same side (1 = on the interval's edge)."""
    pred = np.asarray(pred_returns, dtype=np.float64)
    y = np.asarray(realized, dtype=np.float64)
    alpha = (1.0 - level) / 2.0
    lo, med, hi = np.quantile(pred, [alpha, 0.5, 1.0 - alpha], axis=1)
    # a side of zero width (paths all equal) gets a width of 1e-12 of the level, so the score stays finite
    tiny = 1e-12 * np.maximum(np.abs(med), 1e-12)
    up, down = np.maximum(hi - med, tiny), np.maximum(med - lo, tiny)
    return np.where(y >= med, (y - med) / up, (med - y) / down)


def fit_path_scales(
    pred_returns: np.ndarray, realized: np.ndarray, level: float = REFERENCE_LEVEL
) -> tuple[np.ndarray, bool]:
    """The conformal scale of the paths' spread around their median, pooled over the horizon steps, as one
    value per step: ``(scales, guaranteed)``.

    ``pred_returns`` ``(n_origins, n_paths, horizon)``, ``realized`` ``(n_origins, horizon)``; ``guaranteed`` is
    False when too few origins exist for the order statistic (it is then the largest score).
    """
    scores = spread_ratios(pred_returns, realized, level)
    pooled = np.sort(scores.ravel())
    k, ok = order_index(len(pooled), level)
    _, ok_per_step = order_index(scores.shape[0], level)
    return np.full(scores.shape[1], max(float(pooled[k]), MIN_SCALE)), ok and ok_per_step


def apply_path_scales(returns: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Return paths ``(..., n_paths, horizon)`` scaled around their median per step: ``m + s[h] (r - m)``."""
    r = np.asarray(returns, dtype=np.float64)
    horizon = r.shape[-1]
    s = np.asarray(scales, dtype=np.float64)
    if s.shape[0] < horizon:
        raise ValueError(f"scales cover {s.shape[0]} horizon steps, the paths have {horizon}")
    med = np.median(r, axis=-2, keepdims=True)
    return med + s[:horizon] * (r - med)
