"""Conformal order statistics, and calibration that keeps each path a trajectory.

Split-conformal prediction turns scores of past forecasts (what happened, measured against what the model
said) into a correction with a finite-sample coverage guarantee under exchangeability. The one-sided order
statistic and the coverage check are shared by both calibration methods of
:class:`kronos.forecasting.conformal.ConformalCalibration`; this module also holds the ``"scale"`` method:

**Centre and scale, in log returns** (``method="scale"``; the default, :mod:`kronos.forecasting.tilt`, shares its
centre). Two numbers per series, fitted on the
calibration origins, turn the model's log-return paths ``l`` (from the last close) into ``s (l - c)``:

* the centre ``c`` (per step) is the paths' own quantile at ``1 - p'``, where ``p' = 1/2 + k (p - 1/2)`` is the
  model's stated P(up) ``p`` shrunk toward a coin by ``k`` in [0, 1], the least-squares (Brier) fit of the
  outcomes on the origins, kept only when it beats a coin out of sample (blocked cross-fitting over the origins)
  by two standard errors (else ``k = 0``: P(up) 1/2, the median at the last close); so the calibrated paths end
  above the last close with probability ``p'``;
* the scale ``s`` widens or narrows the paths around that centre: the calibrated 80% interval is
  ``[s (q10 - c), s (q90 - c)]``, so at every origin and step the score of the realised log return ``y`` is
  ``y / (q90 - c)`` when ``y >= 0`` and ``-y / (c - q10)`` below, and ``s`` is the ``ceil((N + 1) 0.8)``-th
  smallest of the ``N = origins x steps`` scores. ``y`` lies in the calibrated 80% interval exactly when its score
  is at most ``s``: the conformal guarantee, pooled over the steps.

Every path keeps its identity, its rank and its own moves (scaled by ``s``) at every step: nothing is re-sorted,
so calibrated paths are trajectories with the model's dynamics, and log space keeps every price positive. One
scale for all steps, because a scale per step, fitted on ``origins`` scores each, jitters from step to step and
stretches a path's moves differently at each step.
"""

from __future__ import annotations

import math

import numpy as np

from kronos.core.errors import InputError

__all__ = [
    "REFERENCE_LEVEL",
    "apply_path_scales",
    "calibrated_prob_up",
    "fit_path_scales",
    "history_scale",
    "interval_coverage",
    "min_origins",
    "order_index",
    "path_centres",
    "prob_up_shrink",
    "quantile_per_step",
    "spread_ratios",
    "to_log_returns",
    "untie",
]

#: The central interval whose coverage the ``"scale"`` method guarantees.
REFERENCE_LEVEL = 0.8
#: Scales are floored here: a degenerate score set must not collapse every path onto the median.
MIN_SCALE = 1e-3
#: The calibrated P(up) is kept inside the 80% band (12%..88%), so the centre lies between the interval's ends.
PROB_UP_BOUNDS = (0.12, 0.88)


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


def _quantile_at(log_paths: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per leading index and step, the paths' quantile at its own level ``q`` (linear, as ``np.quantile``):
    ``log_paths`` ``(..., n_paths, horizon)``, ``q`` ``(..., horizon)``."""
    ordered = np.sort(log_paths, axis=-2)
    pos = np.clip(q, 0.0, 1.0) * (ordered.shape[-2] - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, ordered.shape[-2] - 1)
    take = lambda idx: np.take_along_axis(ordered, idx[..., None, :], axis=-2)[..., 0, :]  # noqa: E731
    return take(lo) + (pos - lo) * (take(hi) - take(lo))


def _brier_k(d: np.ndarray, o: np.ndarray) -> float:
    """The least-squares ``k`` in [0, 1] of ``o`` on ``d`` (both centred at 1/2)."""
    denom = float(np.sum(d * d))
    return 0.0 if denom == 0.0 else float(np.clip(np.sum(d * o) / denom, 0.0, 1.0))


def prob_up_shrink(stated: np.ndarray, rose: np.ndarray, folds: int = 5) -> float:
    """``k`` in [0, 1]: the stated P(up) ``(n_origins, horizon)`` becomes ``1/2 + k (stated - 1/2)``.

    ``k`` minimises the Brier score against the outcomes ``rose``, and is kept only when it also beats a coin
    out of sample: fitted on all but a contiguous block of origins and scored on that block, in turn, the Brier
    gain over a coin must exceed two standard errors (origins counted, not steps). Otherwise 0: no stated
    direction, P(up) 1/2.
    """
    d = np.asarray(stated, dtype=np.float64).reshape(len(stated), -1) - 0.5
    o = np.asarray(rose, dtype=np.float64).reshape(len(rose), -1) - 0.5
    n = d.shape[0]
    if n < 2 * folds:
        return 0.0
    gains = []
    for block in np.array_split(np.arange(n), folds):
        rest = np.setdiff1d(np.arange(n), block)
        k = _brier_k(d[rest], o[rest])
        gains.append((o[block] ** 2 - (k * d[block] - o[block]) ** 2).mean(axis=1))  # per origin
    gain = np.concatenate(gains)
    return _brier_k(d, o) if gain.mean() > 2.0 * gain.std() / np.sqrt(n) else 0.0


def untie(log_paths: np.ndarray) -> np.ndarray:
    """Log-return paths ``(..., n_paths, horizon)`` with ties broken by ``1e-9`` per rank (order kept): paths are
    decoded from discrete tokens, so many are equal, and a centre between equal paths could not split them."""
    lp = np.asarray(log_paths, dtype=np.float64)
    ranks = np.argsort(np.argsort(lp, axis=-2, kind="stable"), axis=-2, kind="stable")
    return lp + 1e-9 * ranks


def calibrated_prob_up(log_paths: np.ndarray, shrink: float) -> np.ndarray:
    """``p'`` ``(..., horizon)``: the paths' stated P(up) shrunk toward 1/2 by ``shrink``, kept inside the 80% band."""
    stated = (np.asarray(log_paths) > 0).mean(axis=-2)
    return np.clip(0.5 + shrink * (stated - 0.5), *PROB_UP_BOUNDS)


def quantile_per_step(log_paths: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per leading index and step, the paths' quantile at its own level ``q`` ``(..., horizon)`` (linear)."""
    return _quantile_at(np.asarray(log_paths, dtype=np.float64), q)


def path_centres(log_paths: np.ndarray, shrink: float) -> np.ndarray:
    """The centre ``c`` ``(..., horizon)`` of each step: the paths' quantile at ``1 - p'`` (``p'`` the shrunk
    P(up), kept inside the 80% band so both sides of the interval exist)."""
    return quantile_per_step(log_paths, 1.0 - calibrated_prob_up(log_paths, shrink))


def spread_ratios(
    log_paths: np.ndarray, realized: np.ndarray, centres: np.ndarray, level: float = REFERENCE_LEVEL
) -> np.ndarray:
    """Scores ``(n_origins, horizon)``: the realised log return ``y`` against the calibrated paths ``s (l - c)``,
    whose 80% interval is ``[s (q10 - c), s (q90 - c)]``: ``y / (q90 - c)`` when ``y >= 0``, ``-y / (c - q10)``
    below; ``y`` is inside exactly when its score is at most ``s``."""
    pred = np.asarray(log_paths, dtype=np.float64)
    y = np.asarray(realized, dtype=np.float64)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(pred, [alpha, 1.0 - alpha], axis=1)
    tiny = 1e-12  # a side of zero width (paths all equal) keeps the score finite
    up, down = np.maximum(hi - centres, tiny), np.maximum(centres - lo, tiny)
    return np.where(y >= 0, y / up, -y / down)


def fit_path_scales(
    log_paths: np.ndarray, realized: np.ndarray, level: float = REFERENCE_LEVEL
) -> tuple[np.ndarray, float, bool]:
    """Fit the ``"scale"`` method on origins: ``(scales, shrink, guaranteed)``.

    ``log_paths`` ``(n_origins, n_paths, horizon)`` and ``realized`` ``(n_origins, horizon)`` are log returns from
    each origin's close. ``scales`` is the pooled conformal scale, one value per step; ``shrink`` the P(up)
    shrinkage ``k``; ``guaranteed`` is False when too few origins exist for the order statistic.
    """
    pred = untie(log_paths)
    y = np.asarray(realized, dtype=np.float64)
    shrink = prob_up_shrink((pred > 0).mean(axis=1), y > 0)
    scores = spread_ratios(pred, y, path_centres(pred, shrink), level)
    pooled = np.sort(scores.ravel())
    k, ok = order_index(len(pooled), level)
    _, ok_per_step = order_index(scores.shape[0], level)
    return np.full(scores.shape[1], max(float(pooled[k]), MIN_SCALE)), shrink, ok and ok_per_step


def apply_path_scales(log_paths: np.ndarray, scales: np.ndarray, shrink: float) -> np.ndarray:
    """Log-return paths ``(..., n_paths, horizon)`` calibrated: ``s (l - c)`` with ``c`` the :func:`path_centres`."""
    lp = untie(log_paths)
    horizon = lp.shape[-1]
    s = np.asarray(scales, dtype=np.float64)
    if s.shape[0] < horizon:
        raise ValueError(f"scales cover {s.shape[0]} horizon steps, the paths have {horizon}")
    centres = path_centres(lp, shrink)
    return s[:horizon] * (lp - centres[..., None, :])


def to_log_returns(returns: np.ndarray) -> np.ndarray:
    """Simple returns as log returns; a return at or below -100% (a non-positive price) is floored just above."""
    return np.log1p(np.maximum(np.asarray(returns, dtype=np.float64), -1.0 + 1e-9))
