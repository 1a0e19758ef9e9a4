"""Split-conformal calibration of forecast quantiles, per horizon step, on close returns.

Why: sampled paths of a (mis-specified, under-trained or random) model give quantiles whose stated
level rarely holds; an "80% interval" may cover 30% of outcomes. Conformal prediction corrects that
from data the model did not see when it forecast, with a finite-sample guarantee under
exchangeability and no retraining.

How (conformalised quantiles, Romano et al. 2019, one-sided per level):

1. Rolling origins inside the given history only: the last ``n_origins`` bars ``t`` (``stride`` apart)
   whose next ``pred_len`` closes are still inside the history. Each origin is forecast from the
   ``lookback`` bars ending at ``t``; nothing after ``t`` is seen.
2. For every origin, horizon step ``h`` and level ``q`` on a grid, the score is
   ``e = y - qhat_q``: the realised close return ``y = close[t+h] / close[t] - 1`` minus the
   model's ``q``-quantile of that return over its paths.
3. The offset ``c[h, q]`` is an order statistic of the ``n`` scores: the ``ceil((n+1) q)``-th
   smallest for ``q >= 0.5`` (then ``P(y <= qhat_q + c) >= q``) and the ``floor((n+1) q)``-th for
   ``q < 0.5`` (then ``P(y < qhat_q + c) <= q``). A central interval built from the levels
   ``(1 - L) / 2`` and ``(1 + L) / 2`` therefore covers at least ``L`` of exchangeable outcomes.
   A level whose order statistic does not exist (too few origins) is clamped to the extreme score
   and listed as not guaranteed.
4. A new forecast is recalibrated path by path: each path's return at step ``h`` moves by the offset
   of its own level (its mid-rank among the paths), the results are re-sorted so the map stays
   monotone, and the bar's open/high/low/close shift by the same price amount. Quantiles of the
   calibrated paths are the conformal quantiles (up to the path resolution ``1 / n_paths``), and the
   mean, ``prob_up``, plots and path frames all read the same calibrated paths.

Coverage is reported before (the raw model), after (in-sample, on the calibration origins) and
after with blocked cross-fitting (offsets fitted without the block of origins they are scored on),
which is the honest estimate of what the calibrated intervals will do next.

This module is model-agnostic: :func:`calibrate_forecasts` drives a *forecast function*
``forecast_fn(frames, x_timestamps, y_timestamps, seeds) -> list[Forecast]`` (uncalibrated forecasts,
``seeds`` one per frame or None) that the caller composes, e.g. ``KronosPredictor.forecast_fn``; it
never imports a predictor. With a seed per series every origin gets its own seed derived from it, so
a series calibrates the same alone or in any batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kronos.bars.preprocessing import PRICE_COLS, prepare_features, validate_timestamps
from kronos.core.errors import InputError
from kronos.core.validation import integer, one_of, positive_int
from kronos.forecasting.forecast import Forecast
from kronos.inference.options import derive_seed
from kronos.model.config import DEFAULT_MAX_CONTEXT

#: ``forecast_fn(frames, x_timestamps, y_timestamps, seeds)``: uncalibrated forecasts of every frame
#: over its ``y_timestamps``; ``seeds`` is one int per frame (each frame its own random stream) or None.
ForecastFn = Callable[[Sequence[pd.DataFrame], Sequence[Any], Sequence[Any], "Sequence[int] | None"], "list[Forecast]"]

__all__ = [
    "DEFAULT_LEVELS",
    "CalibrationOptions",
    "ForecastFn",
    "REPORT_LEVELS",
    "SCALES",
    "ConformalCalibration",
    "apply_offsets",
    "calibrate_forecasts",
    "conformal_offsets",
    "fit_conformal",
    "forecast_scales",
    "history_scale",
    "interval_coverage",
    "min_origins",
    "origin_forecasts",
    "origin_seed",
    "origin_layout",
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
#: How scores are normalised: by the origin's recent return volatility, or not at all.
SCALES: tuple[str, ...] = ("history", "none")
#: Fewest bars of history one calibration origin is forecast from.
MIN_LOOKBACK = 32


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


def _order_index(n: int, q: float) -> tuple[int, bool]:
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
    picks = [_order_index(n, float(q)) for q in lv]
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


def interval_coverage(returns: np.ndarray, realized: np.ndarray, level: float) -> np.ndarray:
    """Whether each realised return lies in the central ``level`` interval of its paths: ``(n, horizon)`` booleans."""
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(np.asarray(returns, dtype=np.float64), [alpha, 1.0 - alpha], axis=-2)
    y = np.asarray(realized, dtype=np.float64)
    return (y >= lo) & (y <= hi)


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
    """

    levels: np.ndarray
    offsets: np.ndarray
    guaranteed: np.ndarray
    n_origins: int
    origins: pd.DatetimeIndex
    coverage: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)
    scale: str = "history"

    def origin_scale(self, forecast: Forecast) -> float:
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

    def apply(self, forecast: Forecast) -> Forecast:
        """A new :class:`Forecast` whose paths are recalibrated; the raw paths stay in ``raw_paths``.

        Open, high, low and close of a bar shift by the same price amount (so valid bars stay
        valid); volume and amount are unchanged.
        """
        if forecast.horizon > self.horizon:
            raise InputError(f"calibration covers {self.horizon} horizon steps, the forecast has {forecast.horizon}")
        if forecast.calibration is not None:
            raise InputError("this forecast is already calibrated; apply the calibration to its uncalibrated() form")
        raw = forecast.paths
        returns = forecast.returns("close")
        new_returns = apply_offsets(returns, self.levels, self.offsets[: forecast.horizon], self.origin_scale(forecast))
        shift = (new_returns - returns) * forecast.last_close
        paths = raw.copy()
        for name in PRICE_COLS:
            if name in forecast.columns:
                paths[:, :, forecast.columns.index(name)] += shift
        info = dict(forecast.info)
        info["calibration"] = {
            "method": "split-conformal on close returns, per horizon step",
            "scale": self.scale,
            "n_origins": self.n_origins,
            **self.settings,
        }
        return Forecast(
            paths=paths,
            timestamps=forecast.timestamps,
            last_close=forecast.last_close,
            columns=forecast.columns,
            history=forecast.history,
            info=info,
            raw_paths=raw,
            calibration=self,
        )

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
    """
    lv = np.asarray(levels, dtype=np.float64)
    if lv.ndim != 1 or len(lv) < 2 or np.any(np.diff(lv) <= 0) or lv[0] <= 0 or lv[-1] >= 1:
        raise InputError(f"levels must be increasing and inside (0, 1), got {list(levels)}")
    pred = np.asarray(pred_returns, dtype=np.float64)
    y = np.asarray(realized, dtype=np.float64)
    n, _, horizon = pred.shape
    sc = np.ones(n) if scales is None else np.asarray(scales, dtype=np.float64).reshape(-1)
    if len(sc) != n or not np.all(sc > 0):
        raise InputError(f"scales must be {n} positive numbers, one per origin")
    offsets, guaranteed = conformal_offsets(pred, y, lv, sc)
    calibrated = apply_offsets(pred, lv, offsets, sc)
    cv = np.empty_like(pred)
    for block in _folds(n, max(2, min(folds, n))):
        rest = np.setdiff1d(np.arange(n), block)
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
        scale="none" if scales is None else "history",
    )


def _check_layout(origins: Any, stride: Any, lookback: Any) -> None:
    """The calibration counts are integers and give the 80% guarantee; errors name the field."""
    positive_int("origins", origins)
    if stride is not None:
        positive_int("stride", stride)
    if lookback is not None:
        integer("lookback", lookback, minimum=2)
    need_min = min_origins(0.8)
    if origins < need_min:
        raise InputError(
            f"origins={origins} is too few: split-conformal needs at least {need_min} origins for an 80% "
            f"interval ({min_origins(0.9)} for 90%, {min_origins(0.95)} for 95%)"
        )


@dataclass(frozen=True)
class CalibrationOptions:
    """How a forecast is calibrated (``forecast(..., calibrate=CalibrationOptions(...))``); validated once.

    Attributes:
        origins: rolling origins inside the history (at least 9, the fewest for a guaranteed 80% interval).
        stride: bars between origins (None: ``pred_len``, non-overlapping targets).
        lookback: bars each origin (and the forecast itself) is made from (None: as many as fit, at most
            ``max_context``).
        sample_count: paths per origin (None: the forecast's own ``sample_count``).
        scale: ``"history"`` (scores normalised by the origin's recent volatility) or ``"none"``.
        max_rows: at most this many paths per forecast call when series share no seeds.
    """

    origins: int = 20
    stride: int | None = None
    lookback: int | None = None
    sample_count: int | None = None
    scale: str = "history"
    max_rows: int = 2048

    def __post_init__(self) -> None:
        _check_layout(self.origins, self.stride, self.lookback)
        if self.sample_count is not None:
            positive_int("sample_count", self.sample_count)
        one_of("scale", self.scale, SCALES)
        positive_int("max_rows", self.max_rows)

    def layout(self, n_bars: int, pred_len: int, max_context: int) -> tuple[list[int], int, int]:
        """:func:`origin_layout` of a history of ``n_bars``: origin rows, lookback, stride."""
        return origin_layout(n_bars, pred_len, self.origins, self.stride, self.lookback, max_context)


def origin_layout(
    n_bars: int,
    pred_len: int,
    n_origins: int,
    stride: int | None = None,
    lookback: int | None = None,
    max_context: int = DEFAULT_MAX_CONTEXT,
) -> tuple[list[int], int, int]:
    """Origin bar indices (the last bar each origin sees), the lookback and the stride.

    The last origin is ``pred_len`` bars before the end of the history so that its targets are
    observed; earlier ones are ``stride`` apart (default ``pred_len``: non-overlapping targets).
    The default lookback is as long as the history allows, at most ``max_context``.
    """
    pred_len = positive_int("pred_len", pred_len)
    _check_layout(n_origins, stride, lookback)
    stride = pred_len if stride is None else stride
    span = pred_len + (n_origins - 1) * stride  # bars after the first origin's lookback
    if lookback is None:
        lookback = min(max_context, n_bars - span)
        if lookback < MIN_LOOKBACK:
            raise InputError(
                f"calibrate=True needs at least {MIN_LOOKBACK + span} bars of history for {n_origins} origins "
                f"(lookback >= {MIN_LOOKBACK}, pred_len {pred_len}, stride {stride}); got {n_bars}. "
                "Give more history or fewer origins / a smaller stride (CalibrationOptions)"
            )
    else:
        if n_bars < lookback + span:
            raise InputError(
                f"calibrate=True needs at least {lookback + span} bars of history (lookback {lookback} + "
                f"pred_len {pred_len} + {n_origins - 1} x stride {stride}); got {n_bars}"
            )
    last = n_bars - 1 - pred_len
    origins = [last - i * stride for i in range(n_origins)][::-1]
    return origins, int(lookback), int(stride)


def forecast_scales(forecasts: Sequence[Forecast]) -> np.ndarray:
    """:func:`history_scale` of each forecast's own history (what ``scale="history"`` divides scores by)."""
    scales = []
    for fc in forecasts:
        if fc.history is None:
            raise InputError("scale='history' needs forecasts that carry their history")
        scales.append(history_scale(fc.history["close"].to_numpy()))
    return np.asarray(scales)


def origin_seed(seed: int, origin: int) -> int:
    """The seed of the forecast at origin row ``origin`` of a series whose seed is ``seed``."""
    return derive_seed(seed, f"origin {int(origin)}")


def origin_forecasts(
    forecast_fn: ForecastFn,
    df: pd.DataFrame,
    x_timestamp: Any,
    pred_len: int,
    origins: Sequence[int],
    lookback: int,
    *,
    per_call: int | None = None,
    seed: int | None = None,
    label: str | None = None,
) -> tuple[list[Forecast], np.ndarray]:
    """Uncalibrated forecasts from rolling origins inside one series, and what then happened.

    Origin ``t`` (a row position) is forecast by ``forecast_fn`` from rows ``t - lookback + 1 .. t``
    only; its realised close returns are ``close[t + h] / close[t] - 1`` for ``h = 1 .. pred_len``,
    which must lie in ``df``. Origins run ``per_call`` at a time (default all at once). With ``seed``
    origin ``t`` samples from :func:`origin_seed` ``(seed, t)``, so its paths do not depend on the
    other origins or on the chunking; without, ``forecast_fn`` draws from its shared generator.

    Returns:
        ``(forecasts, realized)`` with ``realized`` ``(n_origins, pred_len)``.
    """
    feats = prepare_features(df, label=label)
    x_idx = validate_timestamps(x_timestamp, name="x_timestamp", expected_len=len(df), label=label)
    close = feats[:, 3]
    frame = df.reset_index(drop=True)
    for t in origins:
        if t + 1 - lookback < 0 or t + pred_len >= len(df):
            raise InputError(f"origin row {t} needs rows {t + 1 - lookback}..{t + pred_len}, the series has {len(df)}")
    step = len(origins) if per_call is None else positive_int("per_call", per_call)
    forecasts: list[Forecast] = []
    for start in range(0, len(origins), max(1, step)):
        chunk = list(origins[start : start + step])
        forecasts.extend(
            forecast_fn(
                [frame.iloc[t + 1 - lookback : t + 1] for t in chunk],
                [pd.Series(x_idx[t + 1 - lookback : t + 1]) for t in chunk],
                [pd.Series(x_idx[t + 1 : t + 1 + pred_len]) for t in chunk],
                None if seed is None else [origin_seed(seed, t) for t in chunk],
            )
        )
    realized = np.stack([close[t + 1 : t + 1 + pred_len] / close[t] - 1.0 for t in origins])
    return forecasts, realized


def calibrate_forecasts(
    forecast_fn: ForecastFn,
    df_list: Sequence[pd.DataFrame],
    x_timestamp_list: Sequence[Any],
    pred_len: int,
    options: CalibrationOptions | None = None,
    *,
    max_context: int,
    sample_count: int,
    seeds: Sequence[int] | None = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
    settings: dict[str, Any] | None = None,
) -> list[ConformalCalibration]:
    """Calibrate one :class:`ConformalCalibration` per series from rolling origins inside its history.

    Every origin is one uncalibrated forecast by ``forecast_fn`` (which fixes the sampling settings;
    ``sample_count`` says how many paths it draws, for chunking and the record) of the bars up to it.
    ``seeds`` (one per series): origin seeds derive from the series' seed (:func:`origin_seed`), so a
    series calibrates the same alone or in any batch. Cost: ``origins x sample_count`` paths of
    ``pred_len`` steps per series. ``settings`` are recorded in each calibration (e.g. ``T``).
    """
    opts = CalibrationOptions() if options is None else options
    if seeds is not None and len(seeds) != len(df_list):
        raise InputError(f"seeds has {len(seeds)} entries for {len(df_list)} series")
    per_call = max(1, opts.max_rows // max(1, sample_count))
    out = []
    for s, (df, xt) in enumerate(zip(df_list, x_timestamp_list)):
        label = None if len(df_list) == 1 else f"series {s}"
        origins, lb, st = opts.layout(len(df), pred_len, max_context)
        forecasts, realized = origin_forecasts(
            forecast_fn,
            df,
            xt,
            pred_len,
            origins,
            lb,
            per_call=per_call,
            seed=None if seeds is None else seeds[s],
            label=label,
        )
        record: dict[str, Any] = {"lookback": lb, "stride": st, "sample_count": sample_count, "pred_len": pred_len}
        record.update(settings or {})
        x_idx = validate_timestamps(xt, name="x_timestamp", expected_len=len(df), label=label)
        out.append(
            fit_conformal(
                np.stack([fc.returns("close") for fc in forecasts]),
                realized,
                levels=levels,
                origins=x_idx[origins],
                settings=record,
                scales=forecast_scales(forecasts) if opts.scale == "history" else None,
            )
        )
    return out
