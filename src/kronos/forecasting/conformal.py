"""Split-conformal calibration of close returns: the ``"offsets"`` maths on arrays, and the fitted record.

The record (:class:`ConformalCalibration`) holds either method: ``"scale"`` (the default; one scale of the
paths around their median, paths stay trajectories: :mod:`kronos.forecasting.scores`) or ``"offsets"``
(below: per-level offsets, paths re-sorted at every step).

Why: sampled paths of a (mis-specified, under-trained or random) model give quantiles whose stated
level rarely holds; an "80% interval" may cover 30% of outcomes. Conformal prediction corrects that
from data the model did not see when it forecast, with a finite-sample guarantee under
exchangeability and no retraining. This module holds the part that needs no model and no series:
given the model's return paths at some origins and what then happened, fit the offsets, apply them,
and measure coverage. Where the origins come from is :mod:`kronos.forecasting.calibration`.

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

Coverage is reported before (the raw model), after (in-sample, on the calibration origins) and
after with blocked cross-fitting (offsets fitted without the block of origins they are scored on),
which is the honest estimate of what the calibrated intervals will do next.

:class:`ConformalCalibration` applies itself to any forecast that has the shape of
:class:`kronos.forecasting.forecast.Forecast` (:class:`PathForecast`); this module imports no forecast
type, so ``Forecast`` can name the record without an import circle.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
import pandas as pd

from kronos.bars.preprocessing import PRICE_COLS
from kronos.core.errors import InputError
from kronos.forecasting.scores import (
    apply_path_scales,
    fit_path_scales,
    history_scale,
    interval_coverage,
    order_index,
    to_log_returns,
)

__all__ = [
    "DEFAULT_LEVELS",
    "REPORT_LEVELS",
    "SCALES",
    "ConformalCalibration",
    "PathForecast",
    "apply_offsets",
    "conformal_offsets",
    "fit_conformal",
    "METHODS",
]

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
#: Central interval levels whose coverage is measured and reported.
REPORT_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9)
#: How scores are normalised: by the origin's recent return volatility, or not at all (``"offsets"`` method).
SCALES: tuple[str, ...] = ("history", "none")
#: How paths are corrected: one scale per step around the median (paths stay trajectories; see
#: :mod:`kronos.forecasting.scores`), or per-level offsets with the paths re-sorted at every step.
METHODS: tuple[str, ...] = ("scale", "offsets")


class PathForecast(Protocol):
    """What :class:`ConformalCalibration` reads from a forecast: a dataclass of sample paths.

    :class:`kronos.forecasting.forecast.Forecast` is one; naming the shape instead of the class keeps this
    module free of the forecast type (which itself refers to :class:`ConformalCalibration`).
    """

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def paths(self) -> np.ndarray: ...
    @property
    def columns(self) -> tuple[str, ...]: ...
    @property
    def last_close(self) -> float: ...
    @property
    def history(self) -> pd.DataFrame | None: ...
    @property
    def info(self) -> dict[str, Any]: ...
    @property
    def calibration(self) -> object: ...
    @property
    def horizon(self) -> int: ...
    def returns(self, column: str = "close") -> np.ndarray: ...


ForecastT = TypeVar("ForecastT", bound=PathForecast)


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


@dataclass
class ConformalCalibration:
    """Fitted per-horizon conformal offsets on close returns, with the coverage they were measured at.

    Attributes:
        levels: quantile levels of the grid ``(n_levels,)``.
        offsets: return offsets ``(horizon, n_levels)``.
        guaranteed: per level, whether enough origins existed for the finite-sample guarantee.
        n_origins: calibration origins used.
        origins: time stamps of the origin bars (the last bar each origin saw).
        coverage: DataFrame indexed by horizon step (1..H) with columns
            ``before_{p}``, ``after_{p}`` and ``after_cv_{p}`` (empirical coverage of the central
            ``p``% interval: raw model, calibrated in-sample, calibrated cross-fitted).
        settings: how the origins were made (lookback, stride, sample count, ...).
        scale: ``"history"`` (offsets are in units of the origin's recent return volatility, see
            :func:`history_scale`) or ``"none"`` (offsets are plain returns).
        method: ``"scale"`` (``path_scales`` around the median per step; ``offsets`` are zero) or
            ``"offsets"`` (per-level offsets, paths re-sorted per step).
        path_scales: ``(horizon,)`` spread multipliers of the ``"scale"`` method.
        prob_up_shrink: the ``"scale"`` method's shrinkage of the stated P(up) toward 1/2 (1: kept as stated).
    """

    levels: np.ndarray
    offsets: np.ndarray
    guaranteed: np.ndarray
    n_origins: int
    origins: pd.DatetimeIndex
    coverage: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)
    scale: str = "history"
    method: str = "offsets"
    path_scales: np.ndarray | None = None
    prob_up_shrink: float = 1.0

    def origin_scale(self, forecast: PathForecast) -> float:
        """The multiplier of the offsets for this forecast (1 when ``scale="none"``)."""
        if self.scale == "none":
            return 1.0
        if forecast.history is None or "close" not in forecast.history:
            raise InputError("this calibration scales by the history's volatility, but the forecast carries no history")
        return history_scale(forecast.history["close"].to_numpy())

    @property
    def horizon(self) -> int:
        return int(self.offsets.shape[0])

    def coverage_summary(self) -> pd.DataFrame:
        """Coverage averaged over horizon steps: rows ``before``, ``after``, ``after_cv``; columns the levels."""
        rows: dict[str, dict[float, float]] = {}
        for col in self.coverage.columns:
            kind, pct = col.rsplit("_", 1)
            rows.setdefault(kind, {})[int(pct) / 100.0] = float(self.coverage[col].mean())
        return pd.DataFrame(rows).T

    def apply(self, forecast: ForecastT) -> ForecastT:
        """A new forecast of the same type whose paths are recalibrated; the raw paths stay in ``raw_paths``.

        Open, high, low and close of a bar shift by the same price amount (so valid bars stay
        valid); volume and amount are unchanged. Every other field is the forecast's own.
        """
        if forecast.horizon > self.horizon:
            raise InputError(f"calibration covers {self.horizon} horizon steps, the forecast has {forecast.horizon}")
        if forecast.calibration is not None:
            raise InputError("this forecast is already calibrated; apply the calibration to its uncalibrated() form")
        raw = forecast.paths
        returns = forecast.returns("close")
        paths = raw.copy()
        prices = [forecast.columns.index(name) for name in PRICE_COLS if name in forecast.columns]
        if self.method == "scale" and self.path_scales is not None:
            # the whole bar moves by the close's factor: prices stay positive and bars stay valid
            log_r = to_log_returns(returns)
            factor = np.exp(apply_path_scales(log_r, self.path_scales, self.prob_up_shrink) - log_r)
            paths[:, :, prices] *= factor[:, :, None]
        else:
            new_returns = apply_offsets(
                returns, self.levels, self.offsets[: forecast.horizon], self.origin_scale(forecast)
            )
            paths[:, :, prices] += ((new_returns - returns) * forecast.last_close)[:, :, None]
        info = dict(forecast.info)
        info["calibration"] = {
            "method": (
                "split-conformal scale of each path's close log return around a centre set by the calibrated P(up)"
                if self.method == "scale"
                else "split-conformal offsets on close returns, per horizon step and level"
            ),
            "scale": self.scale,
            "n_origins": self.n_origins,
            **self.settings,
        }
        return dataclasses.replace(forecast, paths=paths, info=info, raw_paths=raw, calibration=self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (levels, offsets, coverage summary, settings)."""
        return {
            "levels": self.levels.tolist(),
            "offsets": self.offsets.tolist(),
            "guaranteed": self.guaranteed.tolist(),
            "n_origins": self.n_origins,
            "origins": [str(t) for t in self.origins],
            "coverage": {k: {str(q): v for q, v in row.items()} for k, row in self.coverage_summary().iterrows()},
            "settings": dict(self.settings),
            "scale": self.scale,
            "method": self.method,
            "path_scales": None if self.path_scales is None else self.path_scales.tolist(),
            "prob_up_shrink": self.prob_up_shrink,
        }


def _folds(n: int, k: int) -> list[np.ndarray]:
    return [idx for idx in np.array_split(np.arange(n), k) if len(idx)]


def fit_conformal(
    pred_returns: np.ndarray,
    realized: np.ndarray,
    *,
    levels: Sequence[float] = DEFAULT_LEVELS,
    report_levels: Sequence[float] = REPORT_LEVELS,
    folds: int = 5,
    scales: np.ndarray | None = None,
    origins: pd.DatetimeIndex | None = None,
    settings: dict[str, Any] | None = None,
    method: str = "scale",
) -> ConformalCalibration:
    """Fit offsets on origin returns and measure coverage before, after (in-sample) and cross-fitted.

    Args:
        pred_returns: ``(n_origins, n_paths, horizon)`` model close returns per origin.
        realized: ``(n_origins, horizon)`` realised close returns.
        levels: the quantile grid (increasing, in (0, 1)).
        report_levels: central interval levels whose coverage is reported.
        folds: contiguous blocks of origins for the cross-fitted coverage (blocks, not shuffles,
            because neighbouring origins are correlated).
        scales: per-origin scales known at forecast time (:func:`history_scale`), or None for plain
            return offsets. The result's ``scale`` is ``"history"`` or ``"none"`` accordingly.
        method: ``"scale"`` (default, see :mod:`kronos.forecasting.scores`; ``scales`` is then unused) or
            ``"offsets"``.
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {list(METHODS)}, got {method!r}")
    lv = np.asarray(levels, dtype=np.float64)
    if lv.ndim != 1 or len(lv) < 2 or np.any(np.diff(lv) <= 0) or lv[0] <= 0 or lv[-1] >= 1:
        raise InputError(f"levels must be increasing and inside (0, 1), got {list(levels)}")
    pred = np.asarray(pred_returns, dtype=np.float64)
    y = np.asarray(realized, dtype=np.float64)
    n, _, horizon = pred.shape
    sc = np.ones(n) if scales is None else np.asarray(scales, dtype=np.float64).reshape(-1)
    if len(sc) != n or not np.all(sc > 0):
        raise InputError(f"scales must be {n} positive numbers, one per origin")
    path_scales, shrink = None, 1.0
    if method == "scale":
        log_pred, log_y = to_log_returns(pred), to_log_returns(y)
        path_scales, shrink, ok = fit_path_scales(log_pred, log_y)
        offsets, guaranteed = np.zeros((horizon, len(lv))), np.full(len(lv), ok)
        calibrated = np.expm1(apply_path_scales(log_pred, path_scales, shrink))
    else:
        offsets, guaranteed = conformal_offsets(pred, y, lv, sc)
        calibrated = apply_offsets(pred, lv, offsets, sc)
    cv = np.empty_like(pred)
    for block in _folds(n, max(2, min(folds, n))):
        rest = np.setdiff1d(np.arange(n), block)
        if method == "scale":
            cv_scales, cv_shrink, _ = fit_path_scales(log_pred[rest], log_y[rest])
            cv[block] = np.expm1(apply_path_scales(log_pred[block], cv_scales, cv_shrink))
        else:
            off_cv, _ = conformal_offsets(pred[rest], y[rest], lv, sc[rest])
            cv[block] = apply_offsets(pred[block], lv, off_cv, sc[block])
    cols: dict[str, np.ndarray] = {}
    for kind, paths in (("before", pred), ("after", calibrated), ("after_cv", cv)):
        for level in report_levels:
            cols[f"{kind}_{round(level * 100)}"] = interval_coverage(paths, y, level).mean(axis=0)
    coverage = pd.DataFrame(cols, index=pd.RangeIndex(1, horizon + 1, name="step"))
    return ConformalCalibration(
        levels=lv,
        offsets=offsets,
        guaranteed=guaranteed,
        n_origins=n,
        origins=pd.DatetimeIndex([] if origins is None else origins),
        coverage=coverage,
        settings=dict(settings or {}),
        scale="none" if scales is None or method == "scale" else "history",
        method=method,
        path_scales=path_scales,
        prob_up_shrink=shrink,
    )
