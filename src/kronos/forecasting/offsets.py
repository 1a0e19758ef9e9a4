"""Per-level conformal offsets on close returns: the ``"offsets"`` calibration method, maths on arrays.

This module holds the part that needs no model and no series: given the model's return paths at some origins
and what then happened, fit the offsets and apply them (why calibrate at all:
:mod:`kronos.forecasting.conformal`). Where the origins come from is :mod:`kronos.forecasting.calibration`.

How (conformalised quantiles, Romano et al. 2019, one-sided per level):

1. For every origin, horizon step ``h`` and level ``q`` on a grid, the score is
   ``e = y - qhat_q``: the realised close return ``y = close[t+h] / close[t] - 1`` minus the
   model's ``q``-quantile of that return over its paths.
2. The offset ``c[h, q]`` is an order statistic of the ``n`` scores: the ``ceil((n+1) q)``-th
   smallest for ``q >= 0.5`` (then ``P(y <= qhat_q + c) >= q``) and the ``floor((n+1) q)``-th for
   ``q < 0.5`` (then ``P(y < qhat_q + c) <= q``). A central interval built from the levels
   ``(1 - L) / 2`` and ``(1 + L) / 2`` therefore covers at least ``L`` of exchangeable outcomes.
   A level whose order statistic does not exist (too few origins) is clamped to the extreme score
   and listed as not guaranteed.
3. A new forecast is recalibrated path by path: each path's return at step ``h`` moves by the offset
   of its own level (its mid-rank among the paths), the results are re-sorted so the map stays
   monotone, and the bar's open/high/low/close shift by the same price amount. Quantiles of the
   calibrated paths are the conformal quantiles (up to the path resolution ``1 / n_paths``), and the
   mean, ``prob_up``, plots and path frames all read the same calibrated paths.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kronos.forecasting.scores import order_index

__all__ = ["DEFAULT_LEVELS", "apply_offsets", "conformal_offsets"]

#: Quantile levels the offsets are fitted at; every central interval of 50/60/70/80/90/95/96% has
#: both ends on the grid, other levels interpolate between neighbouring offsets.
DEFAULT_LEVELS: tuple[float, ...] = (
    0.02,
    0.025,
    0.05,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.35,
    0.4,
    0.45,
    0.5,
    0.55,
    0.6,
    0.65,
    0.7,
    0.75,
    0.8,
    0.85,
    0.9,
    0.95,
    0.975,
    0.98,
)


def conformal_offsets(
    pred_returns: np.ndarray,
    realized: np.ndarray,
    levels: Sequence[float] = DEFAULT_LEVELS,
    scales: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split-conformal offsets per horizon step and level.

    Args:
        pred_returns: model return paths ``(n_origins, n_paths, horizon)``.
        realized: realised returns ``(n_origins, horizon)``.
        levels: increasing quantile levels in (0, 1).
        scales: optional per-origin scale ``(n_origins,)``; scores are divided by it, so the offsets
            are in units of that scale (multiply by a new origin's scale to use them).

    Returns:
        ``(offsets, guaranteed)``: offsets ``(horizon, n_levels)`` to add to the model's quantiles,
        and a boolean ``(n_levels,)`` saying which levels had enough origins for the guarantee.
    """
    pred = np.asarray(pred_returns, dtype=np.float64)
    y = np.asarray(realized, dtype=np.float64)
    if pred.ndim != 3 or y.ndim != 2 or pred.shape[0] != y.shape[0] or pred.shape[2] != y.shape[1]:
        raise ValueError(
            f"pred_returns (origins, paths, horizon) {pred.shape} and realized (origins, horizon) {y.shape} do "
            "not match"
        )
    lv = np.asarray(levels, dtype=np.float64)
    qhat = np.quantile(pred, lv, axis=1)  # (L, n, H)
    div = np.ones(y.shape[0]) if scales is None else np.asarray(scales, dtype=np.float64)
    scores = np.sort((y[None] - qhat) / div[None, :, None], axis=1)  # sorted over origins
    n = y.shape[0]
    picks = [order_index(n, float(q)) for q in lv]
    offsets = np.stack([scores[j, k] for j, (k, _) in enumerate(picks)], axis=-1)  # (H, L)
    return offsets, np.array([ok for _, ok in picks], dtype=bool)


def apply_offsets(
    returns: np.ndarray, levels: Sequence[float], offsets: np.ndarray, scales: np.ndarray | float | None = None
) -> np.ndarray:
    """Recalibrate return paths ``(..., n_paths, horizon)`` with ``offsets`` ``(>= horizon, n_levels)``.

    Each path moves by the offset at its mid-rank level ``(rank - 0.5) / n_paths`` (linear between
    grid levels, constant beyond the ends), times the origin's scale when ``scales`` is given (one
    per leading index); the moved values are re-sorted so that the map from old to new returns is
    monotone and path ranks are kept (tied paths stay tied).
    """
    r = np.asarray(returns, dtype=np.float64)
    n_paths, horizon = r.shape[-2], r.shape[-1]
    if offsets.shape[0] < horizon:
        raise ValueError(f"offsets cover {offsets.shape[0]} horizon steps, the paths have {horizon}")
    lv = np.asarray(levels, dtype=np.float64)
    flat = r.reshape(-1, n_paths, horizon)
    mult = np.broadcast_to(
        np.ones(1) if scales is None else np.asarray(scales, dtype=np.float64).reshape(-1), (flat.shape[0],)
    )
    out = np.empty_like(flat)
    for b in range(flat.shape[0]):
        for h in range(horizon):
            col = flat[b, :, h]
            order = np.argsort(col, kind="stable")
            sorted_col = col[order]
            # mid-ranks with ties averaged, so tied paths get the same level and the same shift
            _, first, counts = np.unique(sorted_col, return_index=True, return_counts=True)
            mid = np.repeat(first + (counts + 1) / 2.0, counts)
            shift = np.interp((mid - 0.5) / n_paths, lv, offsets[h]) * mult[b]
            out[b, order, h] = np.sort(sorted_col + shift)
    return out.reshape(r.shape)
