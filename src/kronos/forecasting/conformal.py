"""Split-conformal calibration of close returns: the fitted record, whichever method made it.

Why: sampled paths of a (mis-specified, under-trained or random) model give quantiles whose stated level rarely
holds; an "80% interval" may cover 30% of outcomes. Conformal prediction corrects that from forecasts the model made
without seeing what followed, with a finite-sample guarantee under exchangeability and no retraining.

The record (:class:`ConformalCalibration`) holds one of three methods, each its own module:

* ``"tilt"`` (the default, :mod:`kronos.forecasting.tilt`): the horizon's spread is scaled conformally and each
  path drifts toward its own end (the drift growing as the square root of the step), so calibrated paths keep the
  model's bar-to-bar roughness (scaled to the origins' realised volatility) and stay trajectories;
* ``"scale"`` (:mod:`kronos.forecasting.scores`): every path scaled around its centre, bar moves included;
* ``"offsets"`` (:mod:`kronos.forecasting.offsets`): per-level offsets, paths re-sorted at every step.

Coverage is reported before (the raw model), after (in-sample, on the calibration origins) and after with blocked
cross-fitting (fitted without the block of origins it is scored on), which is the honest estimate of what the
calibrated intervals will do next.

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
from kronos.forecasting.offsets import DEFAULT_LEVELS, apply_offsets, conformal_offsets
from kronos.forecasting.prepared import PRICE_FLOOR
from kronos.forecasting.scores import (
    apply_path_scales,
    fit_path_scales,
    history_scale,
    interval_coverage,
    to_log_returns,
)
from kronos.forecasting.tilt import DRIFT_SHAPE, apply_tilt, fit_tilt

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

#: Central interval levels whose coverage is measured and reported.
REPORT_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9)
#: How scores are normalised: by the origin's recent return volatility, or not at all (``"offsets"`` method).
SCALES: tuple[str, ...] = ("history", "none")
#: How paths are corrected: the horizon's spread with a drift per path (:mod:`kronos.forecasting.tilt`), one scale
#: around the centre (:mod:`kronos.forecasting.scores`), or per-level offsets with the paths re-sorted per step.
METHODS: tuple[str, ...] = ("tilt", "scale", "offsets")


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


@dataclass
class ConformalCalibration:
    """A fitted conformal calibration of close returns (any method), with the coverage it was measured at.

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
        method: ``"tilt"`` (``spread`` and ``roughness``), ``"scale"`` (``path_scales`` around the centre) or
            ``"offsets"`` (per-level ``offsets``, paths re-sorted per step); the other methods' ``offsets`` are zero.
        path_scales: ``(horizon,)`` spread multipliers of the ``"scale"`` method.
        prob_up_shrink: the ``"tilt"`` and ``"scale"`` methods' shrinkage of the stated P(up) toward 1/2 (1: kept as
            stated, 0: a coin).
        spread: the ``"tilt"`` method's conformal spread multiplier at the horizon.
        roughness: the ``"tilt"`` method's scale of each bar's own move (1: the model's).
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
    spread: float | None = None
    roughness: float = 1.0

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
        if self.method in ("tilt", "scale"):
            # the whole bar moves by the close's factor: prices stay positive and bars stay valid
            log_r = to_log_returns(returns)
            if self.method == "tilt":
                calibrated = apply_tilt(log_r, float(self.spread or 1.0), self.roughness, self.prob_up_shrink)
            else:
                calibrated = apply_path_scales(log_r, np.asarray(self.path_scales), self.prob_up_shrink)
            paths[:, :, prices] *= np.exp(calibrated - log_r)[:, :, None]
        else:
            new_returns = apply_offsets(
                returns, self.levels, self.offsets[: forecast.horizon], self.origin_scale(forecast)
            )
            paths[:, :, prices] += ((new_returns - returns) * forecast.last_close)[:, :, None]
            # an offset below -100% would make a price negative: floored as the forecast's own prices are
            paths[:, :, prices] = np.maximum(paths[:, :, prices], PRICE_FLOOR * forecast.last_close)
        info = dict(forecast.info)
        info["calibration"] = {
            "method": _DESCRIPTIONS[self.method],
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
            "spread": self.spread,
            "roughness": self.roughness,
            "drift_shape": DRIFT_SHAPE if self.method == "tilt" else None,
        }


_DESCRIPTIONS = {
    "tilt": "split-conformal spread of each path's close log return at the horizon, reached by a drift per path "
    "growing as the square root of the step, bar moves scaled to the realised volatility of the origins, centre set "
    "by the calibrated P(up)",
    "scale": "split-conformal scale of each path's close log return around a centre set by the calibrated P(up)",
    "offsets": "split-conformal offsets on close returns, per horizon step and level",
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
    method: str = "tilt",
) -> ConformalCalibration:
    """Fit a calibration on origin returns and measure coverage before, after (in-sample) and cross-fitted.

    Args:
        pred_returns: ``(n_origins, n_paths, horizon)`` model close returns per origin.
        realized: ``(n_origins, horizon)`` realised close returns.
        levels: the quantile grid (increasing, in (0, 1)).
        report_levels: central interval levels whose coverage is reported.
        folds: contiguous blocks of origins for the cross-fitted coverage (blocks, not shuffles,
            because neighbouring origins are correlated).
        scales: per-origin scales known at forecast time (:func:`history_scale`), or None for plain
            return offsets. The result's ``scale`` is ``"history"`` or ``"none"`` accordingly.
        method: ``"tilt"`` (default, :mod:`kronos.forecasting.tilt`), ``"scale"``
            (:mod:`kronos.forecasting.scores`) or ``"offsets"`` (:mod:`kronos.forecasting.offsets`); ``scales`` is
            used by ``"offsets"`` only.
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
    log_pred, log_y = to_log_returns(pred), to_log_returns(y)

    def fit_apply(rows: np.ndarray, target: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
        """Fit on the origins ``rows``; calibrated returns of the origins ``target``."""
        if method == "tilt":
            spread, roughness, shrink, ok = fit_tilt(log_pred[rows], log_y[rows])
            out = np.expm1(apply_tilt(log_pred[target], spread, roughness, shrink))
            return {"spread": spread, "roughness": roughness, "prob_up_shrink": shrink, "ok": ok}, out
        if method == "scale":
            scales_, shrink, ok = fit_path_scales(log_pred[rows], log_y[rows])
            out = np.expm1(apply_path_scales(log_pred[target], scales_, shrink))
            return {"path_scales": scales_, "prob_up_shrink": shrink, "ok": ok}, out
        off, guaranteed_ = conformal_offsets(pred[rows], y[rows], lv, sc[rows])
        return {"offsets": off, "guaranteed": guaranteed_}, apply_offsets(pred[target], lv, off, sc[target])

    everything = np.arange(n)
    params, calibrated = fit_apply(everything, everything)
    if method == "offsets":
        offsets, guaranteed = params.pop("offsets"), params.pop("guaranteed")
    else:
        offsets, guaranteed = np.zeros((horizon, len(lv))), np.full(len(lv), params.pop("ok"))
    cv = np.empty_like(pred)
    for block in _folds(n, max(2, min(folds, n))):
        cv[block] = fit_apply(np.setdiff1d(everything, block), block)[1]
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
        scale="history" if scales is not None and method == "offsets" else "none",
        method=method,
        **params,
    )
