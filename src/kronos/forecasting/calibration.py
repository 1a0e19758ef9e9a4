"""Calibration of forecasts from rolling origins inside each series' own history.

Why: the conformal offsets of :mod:`kronos.forecasting.conformal` need forecasts the model made without
seeing what followed, and the realised returns that did follow. A series' own history provides both,
so a forecast can be calibrated with no extra data and no retraining.

How:

1. Rolling origins inside the given history only: the last ``n_origins`` bars ``t`` (``stride`` apart)
   whose next ``pred_len`` closes are still inside the history (:func:`origin_layout`). Each origin is
   forecast from the ``lookback`` bars ending at ``t``; nothing after ``t`` is seen. When the forecast's own
   bars lie inside one session, origins whose bars span a break (a night, a weekend, a lunch pause:
   :func:`break_before`) are passed over for earlier ones, as long as the history leaves room: a return across a
   break is of another kind than bar-to-bar moves, and such origins would widen intervals that never span one.
2. The origins' close-return paths and realised close returns ``close[t+h] / close[t] - 1`` go to
   :func:`kronos.forecasting.conformal.fit_conformal`, scaled by each origin's recent volatility
   (:func:`forecast_scales`) when ``scale="history"``. The fitted
   :class:`~kronos.forecasting.conformal.ConformalCalibration` then recalibrates the forecast itself.

This module is model-agnostic: :func:`calibrate_forecasts` drives a *forecast function*
``forecast_fn(frames, x_timestamps, y_timestamps, seeds) -> list[Forecast]`` (uncalibrated forecasts,
``seeds`` one per frame or None) that the caller composes, e.g. ``KronosPredictor.forecast_fn``; it
never imports a predictor. With a seed per series every origin gets its own seed derived from it, so
a series calibrates the same alone or in any batch.

The conformal names (``ConformalCalibration``, ``fit_conformal``, ``DEFAULT_LEVELS``, ...) live in
:mod:`kronos.forecasting.conformal` and stay importable from here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kronos.bars.preprocessing import prepare_features, validate_timestamps
from kronos.core.errors import InputError
from kronos.core.progress import progress_bar
from kronos.core.validation import integer, one_of, positive_int
from kronos.forecasting.conformal import DEFAULT_LEVELS, METHODS, SCALES, ConformalCalibration, fit_conformal
from kronos.forecasting.forecast import Forecast
from kronos.forecasting.scores import history_scale, min_origins
from kronos.inference.options import derive_seed
from kronos.model.config import DEFAULT_MAX_CONTEXT

#: ``forecast_fn(frames, x_timestamps, y_timestamps, seeds)``: uncalibrated forecasts of every frame
#: over its ``y_timestamps``; ``seeds`` is one int per frame (each frame its own random stream) or None.
ForecastFn = Callable[[Sequence[pd.DataFrame], Sequence[Any], Sequence[Any], "Sequence[int] | None"], "list[Forecast]"]

__all__ = [
    "BREAK_FACTOR",
    "CalibrationOptions",
    "break_before",
    "ForecastFn",
    "calibrate_forecasts",
    "forecast_scales",
    "origin_forecasts",
    "origin_seed",
    "origin_layout",
    "spanning_origins",
]

#: Fewest bars of history one calibration origin is forecast from.
MIN_LOOKBACK = 32
#: A gap between bars longer than this many times the history's usual spacing is a break (a night, a weekend, a
#: lunch pause; for daily bars a closure of more than five days): the return across it is not a bar-to-bar move.
BREAK_FACTOR = 5.0


def break_before(times: pd.DatetimeIndex, future: pd.DatetimeIndex | None = None) -> np.ndarray:
    """Per bar of ``times`` followed by ``future`` (if given, in the same time zone): whether a break lies between
    it and the bar before (a gap over :data:`BREAK_FACTOR` times the median spacing of ``times``); the first bar
    has none."""
    ns = times.asi8 if future is None else np.concatenate([times.asi8, pd.DatetimeIndex(future).asi8])
    usual = np.median(np.diff(times.asi8)) if len(times) > 1 else 0
    out = np.zeros(len(ns), dtype=bool)
    if usual > 0:
        out[1:] = np.diff(ns) > BREAK_FACTOR * usual
    return out


def spanning_origins(times: pd.DatetimeIndex, future: Any, pred_len: int) -> np.ndarray | None:
    """Per bar ``t`` of a history: whether the bars ``t+1 .. t+pred_len`` span a break (:func:`break_before`), the
    origins that ``match_breaks`` passes over; None when the forecast's own bars (``future``, after the history's
    last bar) span one too, or their time zone is not the history's."""
    future = pd.DatetimeIndex(future)[:pred_len]
    if (future.tz is None) != (times.tz is None):
        return None
    breaks = break_before(times, future)
    if breaks[len(times) :].any():
        return None
    n = len(times)
    after = np.concatenate([np.cumsum(breaks[:n][::-1])[::-1], [0]])  # after[i]: breaks before rows i .. n-1
    rows = np.arange(n)
    return after[np.minimum(rows + 1, n)] - after[np.minimum(rows + 1 + pred_len, n)] > 0


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
        method: ``"tilt"`` (default: the horizon's spread scaled conformally, reached by a drift per path growing
            as the square root of the step, so paths stay trajectories with realistic bar-to-bar volatility;
            :mod:`kronos.forecasting.tilt`), ``"scale"`` (each path's log return scaled around its centre, bar moves
            included) or ``"offsets"`` (per-level offsets, paths re-sorted per step).
        scale: for ``"offsets"``: ``"history"`` (scores normalised by the origin's recent volatility) or ``"none"``.
        max_rows: at most this many paths per forecast call when series share no seeds.
        match_breaks: pass over origins whose bars span a break when the forecast's bars do not (module docstring).
    """

    origins: int = 20
    stride: int | None = None
    lookback: int | None = None
    sample_count: int | None = None
    method: str = "tilt"
    scale: str = "history"
    max_rows: int = 2048
    match_breaks: bool = True

    def __post_init__(self) -> None:
        _check_layout(self.origins, self.stride, self.lookback)
        if self.sample_count is not None:
            positive_int("sample_count", self.sample_count)
        one_of("method", self.method, METHODS)
        one_of("scale", self.scale, SCALES)
        positive_int("max_rows", self.max_rows)
        if not isinstance(self.match_breaks, (bool, np.bool_)):
            raise InputError(f"match_breaks must be True or False, got {self.match_breaks!r}")

    def layout(
        self,
        n_bars: int,
        pred_len: int,
        max_context: int,
        window: int | None = None,
        skip: np.ndarray | None = None,
    ) -> tuple[list[int], int, int]:
        """:func:`origin_layout` of a history of ``n_bars``: origin rows, lookback, stride (``window``: the
        forecast's own lookback, the longest the default origin lookback may be; ``skip``: rows not to use)."""
        return origin_layout(n_bars, pred_len, self.origins, self.stride, self.lookback, max_context, window, skip)


def origin_layout(
    n_bars: int,
    pred_len: int,
    n_origins: int,
    stride: int | None = None,
    lookback: int | None = None,
    max_context: int = DEFAULT_MAX_CONTEXT,
    window: int | None = None,
    skip: np.ndarray | None = None,
) -> tuple[list[int], int, int]:
    """Origin bar indices (the last bar each origin sees), the lookback and the stride.

    The last origin is ``pred_len`` bars before the end of the history so that its targets are
    observed; earlier ones are ``stride`` apart (default ``pred_len``: non-overlapping targets).
    The default lookback is as long as the history allows, at most ``window`` (the forecast's own
    lookback, so the origins measure the forecaster that is corrected) or, without one, ``max_context``.
    ``skip`` (one flag per bar) names rows not to use: each is replaced by the next earlier row on the
    stride whose lookback still fits, and when too few fit the rows are used as they are (the lookback, and so
    the forecast's window, is the same either way).
    """
    pred_len = positive_int("pred_len", pred_len)
    _check_layout(n_origins, stride, lookback)
    stride = pred_len if stride is None else stride
    span = pred_len + (n_origins - 1) * stride  # bars after the first origin's lookback
    if lookback is None:
        lookback = min(max_context if window is None else window, n_bars - span)
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
    if skip is not None and any(skip[t] for t in origins):
        usable = [t for t in range(last, lookback - 2, -stride) if not skip[t]][:n_origins]
        if len(usable) == n_origins:
            origins = usable[::-1]
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
    on_chunk: Callable[[int], None] | None = None,
) -> tuple[list[Forecast], np.ndarray]:
    """Uncalibrated forecasts from rolling origins inside one series, and what then happened.

    Origin ``t`` (a row position) is forecast by ``forecast_fn`` from rows ``t - lookback + 1 .. t``
    only; its realised close returns are ``close[t + h] / close[t] - 1`` for ``h = 1 .. pred_len``,
    which must lie in ``df``. Origins run ``per_call`` at a time (default all at once); ``on_chunk(n)`` is called
    after each chunk of ``n`` origins (progress). With ``seed``
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
        if on_chunk is not None:
            on_chunk(len(chunk))
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
    window: int | None = None,
    progress: bool = False,
    futures: Sequence[Any] | None = None,
    labels: Sequence[str | None] | None = None,
) -> list[ConformalCalibration]:
    """Calibrate one :class:`ConformalCalibration` per series from rolling origins inside its history.

    Every origin is one uncalibrated forecast by ``forecast_fn`` (which fixes the sampling settings;
    ``sample_count`` says how many paths it draws, for chunking and the record) of the bars up to it.
    ``seeds`` (one per series): origin seeds derive from the series' seed (:func:`origin_seed`), so a
    series calibrates the same alone or in any batch. Cost: ``origins x sample_count`` paths of
    ``pred_len`` steps per series. ``settings`` are recorded in each calibration (e.g. ``T``). ``window``
    is the forecast's own lookback, the longest an origin's default lookback may be. ``progress`` shows a
    progress bar over the origins (plain lines off a terminal: :mod:`kronos.core.progress`). ``futures`` are the
    times of each forecast's own bars: with ``options.match_breaks``, when they lie inside one session the origins
    whose bars span a break are passed over (:func:`spanning_origins`). ``labels``: what errors call each series
    (default ``series i``, none for one series).
    """
    opts = CalibrationOptions() if options is None else options
    if seeds is not None and len(seeds) != len(df_list):
        raise InputError(f"seeds has {len(seeds)} entries for {len(df_list)} series")
    per_call = max(1, opts.max_rows // max(1, sample_count))
    if labels is None:
        labels = [None] if len(df_list) == 1 else [f"series {i}" for i in range(len(df_list))]
    layouts, times = [], []
    for i, (df, label) in enumerate(zip(df_list, labels)):
        times.append(validate_timestamps(x_timestamp_list[i], name="x_timestamp", expected_len=len(df), label=label))
        skip = spanning_origins(times[i], futures[i], pred_len) if opts.match_breaks and futures is not None else None
        layouts.append(opts.layout(len(df), pred_len, max_context, window, skip))
    with progress_bar(unit="origins", enabled=progress, transient=True) as bar:
        task = bar.add_task("calibrating", total=sum(len(lay[0]) for lay in layouts))
        return _calibrate(
            forecast_fn, df_list, times, pred_len, opts, layouts, per_call, sample_count, seeds, levels,
            settings, lambda n: bar.advance(task, n), labels,
        )  # fmt: skip


def _calibrate(
    forecast_fn: ForecastFn,
    df_list: Sequence[pd.DataFrame],
    times: Sequence[pd.DatetimeIndex],
    pred_len: int,
    opts: CalibrationOptions,
    layouts: list[Any],
    per_call: int,
    sample_count: int,
    seeds: Sequence[int] | None,
    levels: Sequence[float],
    settings: dict[str, Any] | None,
    on_chunk: Callable[[int], None],
    labels: Sequence[str | None],
) -> list[ConformalCalibration]:
    out = []
    for s, (df, xt, label) in enumerate(zip(df_list, times, labels)):
        origins, lb, st = layouts[s]
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
            on_chunk=on_chunk,
        )
        record: dict[str, Any] = {"lookback": lb, "stride": st, "sample_count": sample_count, "pred_len": pred_len}
        record["method"] = opts.method
        # how many bars before the plain layout's first origin the first one lies (origins spanning a break passed over)
        record["origins_moved_back"] = len(df) - 1 - pred_len - (len(origins) - 1) * st - origins[0]
        record.update(settings or {})
        out.append(
            fit_conformal(
                np.stack([fc.returns("close") for fc in forecasts]),
                realized,
                levels=levels,
                origins=xt[origins],
                settings=record,
                scales=forecast_scales(forecasts) if opts.scale == "history" and opts.method == "offsets" else None,
                method=opts.method,
            )
        )
    return out
