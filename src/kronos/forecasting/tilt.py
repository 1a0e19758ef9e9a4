"""Calibration that widens a forecast's horizon without roughening its bars: the ``"tilt"`` method.

Why: the model's sample paths revert toward their start more than prices do. Their bar-to-bar moves are about
the right size (their realised volatility is close to what follows), but their spread at the horizon is too
narrow (80% intervals cover about 0.68). Scaling every path around its centre (the ``"scale"`` method of
:mod:`kronos.forecasting.scores`) fixes the spread and coverage but scales each bar's move by the same factor, so
the calibrated paths are rougher than prices (realised volatility 1.2-1.4x the raw model's error). The tilt adds
the missing persistence instead: each path drifts further in the direction it already went, the drift's total
growing as the square root of the step, as a random walk's spread does.

How, in log returns from the last close, per series (fitted on the calibration origins):

* centre: ``a = l - c``, the paths around the per-step centre ``c`` of :func:`~kronos.forecasting.scores.path_centres`
  (the median moved so that the share of paths ending up is the calibrated P(up));
* tilt: ``L_t = b a_t + (s - b) w_t a_H`` with ``w_t = (t / H) ** DRIFT_SHAPE`` (``DRIFT_SHAPE = 0.5``). At the
  horizon ``L_H = s a_H``: the spread there is ``s`` times the model's; in between, each path moves by its own
  bar-to-bar moves scaled by ``b`` plus its own end deviation spread over the steps as ``w_t``, so the spread the
  tilt adds grows as ``sqrt(t)``, a random walk's. A steady drift (``w_t = t / H``, shape 1) adds spread in
  proportion to ``t`` instead: with one spread fitted over all steps it left the first steps under-covered and
  the horizon over-covered (80% coverage by step 0.73 -> 0.85 on the validation period, 55 series; 0.77 -> 0.81
  with shape 0.5, CRPS 0.8% lower: ``docs/probabilistic.md``). The drift moves the paths' quantiles at earlier steps, so
  each earlier step is then shifted (all paths alike) to put the calibrated P(up) of that step back: the share of
  paths above the last close is ``p'`` at every step, as the scale method gives. Paths keep their identity and their
  rank at the horizon; prices stay positive.
* ``b`` (roughness) makes the paths' realised volatility that of the origins: the geometric mean over the origins of
  realised over predicted volatility (``sqrt(sum of squared bar log returns)``, predicted as the root mean square
  over paths), refined once with the tilt in place because the drift adds a little volatility of its own;
* ``s`` (spread) is conformal: for every origin and step the score is the smallest ``s`` at which the realised log
  return lies inside the calibrated paths' central 80% interval (the first point of a geometric grid, refined by
  bisection below it; at the horizon the interval is ``s`` times the model's, so inclusion is monotone there and
  the score exact), and ``s`` is the
  ``ceil((N + 1) 0.8)``-th smallest of the ``N = origins x steps`` scores: the split-conformal guarantee, pooled
  over steps, for scores whose inclusion is monotone in ``s`` (the cross-fitted coverage of
  :class:`~kronos.forecasting.conformal.ConformalCalibration` measures what it does elsewhere).
"""

from __future__ import annotations

import numpy as np

from kronos.forecasting.scores import (
    MIN_SCALE,
    REFERENCE_LEVEL,
    calibrated_prob_up,
    order_index,
    path_centres,
    prob_up_shrink,
    quantile_per_step,
    untie,
)

__all__ = [
    "DRIFT_SHAPE",
    "MAX_TILT",
    "apply_tilt",
    "centred_paths",
    "drift_weights",
    "fit_tilt",
    "realised_volatility",
    "roughness_ratio",
    "tilt",
    "tilt_scores",
]

#: The tilt's drift reaches ``(t / H) ** DRIFT_SHAPE`` of its total by step ``t``: 0.5 adds spread as a random walk.
DRIFT_SHAPE = 0.5
#: The largest spread multiplier the tilt searches (a realised return outside even that scores it).
MAX_TILT = 50.0
#: Roughness factors are kept in this range: twenty origins are too few to trust a larger change.
ROUGHNESS_BOUNDS = (0.25, 4.0)
_GRID = np.geomspace(MIN_SCALE, MAX_TILT, 120)  # about 10% apart
_BISECTIONS = 8


def centred_paths(untied: np.ndarray, shrink: float) -> np.ndarray:
    """``a = l - c`` ``(..., n_paths, horizon)``: log-return paths (ties already broken, :func:`untie`) around the
    centre set by the P(up) shrink."""
    lp = np.asarray(untied, dtype=np.float64)
    return lp - path_centres(lp, shrink)[..., None, :]


def drift_weights(horizon: int, shape: float = DRIFT_SHAPE) -> np.ndarray:
    """``(t / H) ** shape`` for ``t = 1..H``: the share of its total drift a tilted path has made by each step."""
    return (np.arange(1, horizon + 1) / horizon) ** shape


def tilt(
    centred: np.ndarray,
    spread: np.ndarray | float,
    roughness: float,
    prob_up: np.ndarray | None = None,
    shape: float = DRIFT_SHAPE,
) -> np.ndarray:
    """``b a_t + (s - b) w_t a_H`` (``w_t``: :func:`drift_weights` of ``shape``) for centred paths
    ``(..., n_paths, H)``; ``spread`` broadcasts to ``(..., 1, H)`` (one value, or one per leading index and step
    while searching). With ``prob_up`` ``(..., H)`` (the calibrated P(up) of each step) every step is shifted so that
    exactly that share of the paths ends above the last close: the drift moves the paths' quantiles at earlier steps,
    not at the horizon (where the shift is 0)."""
    a = np.asarray(centred, dtype=np.float64)
    out = roughness * a + (np.asarray(spread) - roughness) * drift_weights(a.shape[-1], shape) * a[..., -1:]
    if prob_up is None:
        return out
    return out - quantile_per_step(out, 1.0 - np.asarray(prob_up))[..., None, :]


def realised_volatility(log_paths: np.ndarray) -> np.ndarray:
    """``sqrt(sum_t r_t^2)`` over the bar log returns of paths ``(..., H)`` that start at 0 (the last close)."""
    lp = np.asarray(log_paths, dtype=np.float64)
    steps = np.diff(lp, axis=-1, prepend=0.0)
    return np.sqrt(np.sum(steps * steps, axis=-1))


def roughness_ratio(paths: np.ndarray, realized: np.ndarray) -> float:
    """Geometric mean over origins of realised / predicted volatility (predicted: root mean square over paths)."""
    predicted = np.sqrt(np.mean(realised_volatility(paths) ** 2, axis=-1))
    true = realised_volatility(realized)
    ok = (predicted > 0) & (true > 0)
    return float(np.exp(np.mean(np.log(true[ok] / predicted[ok])))) if ok.any() else 1.0


def tilt_scores(
    centred: np.ndarray,
    realized: np.ndarray,
    roughness: float,
    level: float = REFERENCE_LEVEL,
    prob_up: np.ndarray | None = None,
    shape: float = DRIFT_SHAPE,
) -> np.ndarray:
    """Per origin and step ``(n_origins, H)``: the smallest spread ``s`` at which the realised log return lies in the
    central ``level`` interval of the tilted paths (``prob_up``: recentred as :func:`tilt` does; ``MAX_TILT`` bounds
    the search; a return outside even that scores ``inf``)."""
    a = np.asarray(centred, dtype=np.float64)
    y = np.asarray(realized, dtype=np.float64)
    alpha = (1.0 - level) / 2.0

    def inside(s: np.ndarray) -> np.ndarray:
        lo, hi = np.quantile(tilt(a, s[:, None, :], roughness, prob_up, shape), [alpha, 1.0 - alpha], axis=-2)
        return (y >= lo) & (y <= hi)

    # The first spread on a coarse geometric grid at which the return is inside (the envelope, so a step whose
    # interval is not monotone in s still gets its smallest including spread), then bisection below it.
    first = np.full(y.shape, np.inf)
    below = np.full(y.shape, MIN_SCALE)
    previous = MIN_SCALE
    for s in _GRID:
        todo = np.isinf(first)
        if not todo.any():
            break
        hit = todo & inside(np.full(y.shape, s))
        first = np.where(hit, s, first)
        below = np.where(hit, previous, below)
        previous = s
    found = np.isfinite(first) & (first > MIN_SCALE)
    lo, hi = below, np.where(found, first, MIN_SCALE)
    for _ in range(_BISECTIONS):
        mid = np.sqrt(lo * hi)
        ok = inside(mid)
        hi, lo = np.where(found & ok, mid, hi), np.where(found & ~ok, mid, lo)
    return np.where(found, hi, first)


def fit_tilt(
    log_paths: np.ndarray, realized: np.ndarray, level: float = REFERENCE_LEVEL, shape: float = DRIFT_SHAPE
) -> tuple[float, float, float, bool]:
    """Fit the tilt on origins: ``(spread, roughness, shrink, guaranteed)``.

    ``log_paths`` ``(n_origins, n_paths, H)`` and ``realized`` ``(n_origins, H)`` are log returns from each origin's
    close. ``guaranteed`` is False when too few origins exist for the order statistic of one step.
    """
    lp = untie(log_paths)
    y = np.asarray(realized, dtype=np.float64)
    shrink = prob_up_shrink((lp > 0).mean(axis=1), y > 0)
    a = centred_paths(lp, shrink)
    prob_up = calibrated_prob_up(lp, shrink)
    k, ok = order_index(y.size, level)
    _, ok_per_step = order_index(y.shape[0], level)

    def spread_for(b: float) -> float:
        pooled = np.sort(tilt_scores(a, y, b, level, prob_up, shape).ravel())
        return max(float(np.minimum(pooled[k], MAX_TILT)), MIN_SCALE)

    b = float(np.clip(roughness_ratio(a, y), *ROUGHNESS_BOUNDS))
    s = spread_for(b)
    # the drift adds volatility of its own: correct the roughness once with it in place, then refit the spread
    b = float(np.clip(b * roughness_ratio(tilt(a, s, b, prob_up, shape), y), *ROUGHNESS_BOUNDS))
    return spread_for(b), b, shrink, ok and ok_per_step


def apply_tilt(
    log_paths: np.ndarray, spread: float, roughness: float, shrink: float, shape: float = DRIFT_SHAPE
) -> np.ndarray:
    """Log-return paths ``(..., n_paths, H)`` calibrated by the tilt (the horizon is the paths' own last step), each
    step's share of paths above the last close the calibrated P(up)."""
    lp = untie(log_paths)
    return tilt(centred_paths(lp, shrink), spread, roughness, calibrated_prob_up(lp, shrink), shape)
