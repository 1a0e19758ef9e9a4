"""Rolling-origin evaluation: many forecast origins per series, a fixed lookback, horizons 1..H.

At each origin ``t`` (a bar index) a forecaster sees exactly the ``lookback`` bars ending at ``t``
(a copy, so nothing it does can leak back) plus the timestamps of the next ``horizon`` bars, and
its forecast is scored against the closes of those bars. Nothing after ``t`` other than those
timestamps reaches the forecaster, and every origin gets a seed derived from (run seed, series,
origin time) alone, so re-running with the data after an origin scrambled gives identical
forecasts: the property the no-look-ahead test checks.

Origins are placed backwards from the end of the data every ``stride`` bars (default: the horizon,
so forecast windows do not overlap). With ``align="calendar"`` (panels), origins are chosen on the
union calendar of all series so that every series is forecast at the same dates, which the
cross-sectional IC and the portfolio backtest need. Work is spread over processes by (series,
chunk of origins), with a rich progress bar.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kronos.core.errors import InputError
from kronos.evaluation.forecasters import Forecaster, ForecasterSpec, seed_for
from kronos.evaluation.metrics import QUANTILES, score_paths

__all__ = ["RollingConfig", "RollingResult", "forecast_origins", "origin_plan", "rolling_evaluate", "skip_reasons"]

FORECAST_COLUMNS: tuple[str, ...] = (
    "forecaster",
    "series",
    "origin_time",
    "step",
    "target_time",
    "last_close",
    "y_true",
    "y_pred",
    "y_median",
)


@dataclass(frozen=True)
class RollingConfig:
    """How origins are laid out and how forecasts are sampled.

    ``origins``: at most this many origins per series (fewer when the series is short).
    ``stride``: bars between consecutive origins (default ``horizon``).
    ``num_samples``: sample paths asked of each forecaster per origin.
    ``align``: ``"end"`` (origins counted back from each series' own end), ``"calendar"`` (the same
    dates for all series) or ``"auto"`` (calendar when 90% of the series end on the same bar, as
    in a panel).
    """

    lookback: int
    horizon: int
    origins: int
    stride: int | None = None
    num_samples: int = 100
    seed: int = 0
    align: str = "auto"
    quantiles: tuple[float, ...] = QUANTILES

    def __post_init__(self) -> None:
        for name in ("lookback", "horizon", "origins", "num_samples"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.stride is not None and int(self.stride) < 1:
            raise InputError(f"stride must be >= 1, got {self.stride}")
        if self.align not in {"auto", "end", "calendar"}:
            raise InputError(f"align must be 'auto', 'end' or 'calendar', got {self.align!r}")

    @property
    def step(self) -> int:
        return int(self.stride) if self.stride is not None else int(self.horizon)


@dataclass
class RollingResult:
    """The forecasts table (one row per forecaster, series, origin and step) and any failures."""

    forecasts: pd.DataFrame
    errors: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["forecaster", "series", "origin_time", "error"])
    )
    align: str = "end"


def _valid_range(n: int, config: RollingConfig) -> tuple[int, int]:
    return config.lookback - 1, n - 1 - config.horizon


def _resolve_align(series: dict[str, pd.DataFrame], config: RollingConfig) -> str:
    if config.align != "auto":
        return config.align
    if len(series) < 2:
        return "end"
    ends = pd.Series([frame["timestamps"].iloc[-1] for frame in series.values()])
    return "calendar" if ends.value_counts().iloc[0] >= 0.9 * len(ends) else "end"


def origin_plan(series: dict[str, pd.DataFrame], config: RollingConfig) -> tuple[dict[str, np.ndarray], str]:
    """Origin bar positions per series (ascending), and the alignment actually used.

    A series too short for even one origin gets an empty array. Raises :class:`InputError` when no
    series has any origin, naming the lookback and horizon that need ``lookback + horizon`` bars.
    """
    align = _resolve_align(series, config)
    plan: dict[str, np.ndarray] = {}
    if align == "end":
        for name, frame in series.items():
            first, last = _valid_range(len(frame), config)
            pos = last - config.step * np.arange(config.origins)
            plan[name] = np.sort(pos[pos >= first])
    else:
        calendar = pd.DatetimeIndex(np.unique(np.concatenate([f["timestamps"].to_numpy() for f in series.values()])))
        valid_count = np.zeros(len(calendar), dtype=np.int64)
        for frame in series.values():
            first, last = _valid_range(len(frame), config)
            if last >= first:
                stamps = frame["timestamps"].to_numpy()[first : last + 1]
                valid_count[calendar.get_indexer(stamps)] += 1
        candidates = np.flatnonzero(valid_count * 2 >= len(series))
        if len(candidates) == 0:
            candidates = np.flatnonzero(valid_count > 0)
        if len(candidates) == 0:
            chosen = pd.DatetimeIndex([])
        else:
            idx = candidates[-1] - config.step * np.arange(config.origins)
            chosen = calendar[np.sort(idx[idx >= 0])]
        for name, frame in series.items():
            first, last = _valid_range(len(frame), config)
            pos = pd.DatetimeIndex(frame["timestamps"]).get_indexer(chosen)
            plan[name] = pos[(pos >= first) & (pos <= last) & (pos >= 0)]
    if not any(len(p) for p in plan.values()):
        longest = max(len(f) for f in series.values())
        raise InputError(
            f"no forecast origin fits: lookback {config.lookback} + horizon {config.horizon} needs at least "
            f"{config.lookback + config.horizon} bars, and the longest series has {longest}"
        )
    return plan, align


def forecast_origins(
    name: str,
    frame: pd.DataFrame,
    positions: Sequence[int],
    forecasters: Sequence[Forecaster],
    config: RollingConfig,
    *,
    on_origin: Callable[[], None] | None = None,
    raise_errors: bool = False,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Forecast one series at the given origin positions with every forecaster and score them.

    Returns the forecast rows (see :data:`FORECAST_COLUMNS` plus quantile and score columns) and a
    list of failures (forecaster, series, origin_time, error). ``on_origin`` is called after each
    origin (progress).
    """
    L, H = config.lookback, config.horizon
    seeded = [_accepts_seed(f) for f in forecasters]
    stamps = pd.DatetimeIndex(frame["timestamps"])
    close = frame["close"].to_numpy(dtype=np.float64)
    chunks: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    origins = []
    for pos in positions:
        pos = int(pos)
        if pos - L + 1 < 0 or pos + H >= len(frame):
            raise InputError(
                f"{name}: origin at row {pos} needs rows {pos - L + 1}..{pos + H}, the series has {len(frame)}"
            )
        origin_time = stamps[pos]
        history = frame.iloc[pos - L + 1 : pos + 1].reset_index(drop=True).copy()
        origins.append(
            (pos, origin_time, history, stamps[pos + 1 : pos + 1 + H], seed_for(config.seed, name, origin_time))
        )
    # Forecasters that batch (Kronos) forecast every origin of the series at once; each origin keeps
    # its own seed, so the result equals one call per origin. On failure they fall back to one call
    # per origin, so a single bad origin is reported alone.
    batched: dict[int, list[Any]] = {}
    for j, forecaster in enumerate(forecasters):
        many = getattr(forecaster, "forecast_many", None)
        if callable(many) and len(origins) > 1:
            try:
                batched[j] = many(
                    [o[2] for o in origins], [o[3] for o in origins], config.num_samples, seeds=[o[4] for o in origins]
                )
            except Exception:
                if raise_errors:
                    raise
    for k, (pos, origin_time, history, future_times, seed) in enumerate(origins):
        y_true = close[pos + 1 : pos + 1 + H]
        for j, (forecaster, takes_seed) in enumerate(zip(forecasters, seeded)):
            try:
                if j in batched:
                    fc = batched[j][k]
                elif takes_seed:
                    fc = forecaster.forecast(history, future_times, config.num_samples, seed=seed)
                else:  # a plain ``forecast(history, future_timestamps, num_samples)`` is fine too
                    fc = forecaster.forecast(history, future_times, config.num_samples)
                paths = fc.column("close")
                if paths.shape[1] != H:
                    raise ValueError(f"returned {paths.shape[1]} bars, {H} were asked for")
                if not np.isfinite(paths).all():
                    raise ValueError("returned non-finite close values")
                scores = score_paths(paths, y_true, float(close[pos]), config.quantiles)
            except Exception as exc:  # one bad fit must not sink a run over hundreds of series
                if raise_errors:
                    raise
                errors.append(
                    {
                        "forecaster": forecaster.name,
                        "series": name,
                        "origin_time": origin_time,
                        "error": f"{type(exc).__name__}: {exc}",
                    }
                )
                continue
            chunk = {
                "forecaster": np.full(H, forecaster.name, dtype=object),
                "series": np.full(H, name, dtype=object),
                "origin_time": np.full(H, origin_time.to_datetime64()),
                "step": np.arange(1, H + 1, dtype=np.int64),
                "target_time": future_times.to_numpy(),
                "last_close": np.full(H, float(close[pos])),
                "y_true": y_true,
                **scores,
                "n_paths": np.full(H, paths.shape[0], dtype=np.int64),
            }
            chunks.append(chunk)
        if on_origin is not None:
            on_origin()
    if not chunks:
        return pd.DataFrame(columns=list(FORECAST_COLUMNS)), errors
    rows = pd.DataFrame({k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]})
    return rows, errors


def _accepts_seed(forecaster: Forecaster) -> bool:
    import inspect

    try:
        params = inspect.signature(forecaster.forecast).parameters
    except (TypeError, ValueError):
        return True
    return "seed" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


# ----------------------------------------------------------------------------------------------
# process pool plumbing: workers build each forecaster once from its picklable spec

_WORKER_CACHE: dict[ForecasterSpec, Forecaster] = {}


def _worker_init() -> None:
    # one process per core: keep torch / BLAS to one thread each (read when they are first imported)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    torch = sys.modules.get("torch")  # importing kronos may already have loaded it
    if torch is not None:
        torch.set_num_threads(1)


def _worker_task(
    name: str,
    frame: pd.DataFrame,
    positions: np.ndarray,
    specs: tuple[ForecasterSpec, ...],
    config: RollingConfig,
    raise_errors: bool,
) -> tuple[pd.DataFrame, list[dict[str, Any]], int]:
    forecasters = []
    for spec in specs:
        if spec not in _WORKER_CACHE:
            _WORKER_CACHE[spec] = spec.build()
        forecasters.append(_WORKER_CACHE[spec])
    rows, errors = forecast_origins(name, frame, positions, forecasters, config, raise_errors=raise_errors)
    return rows, errors, len(positions)


def _tasks(series: dict[str, pd.DataFrame], plan: dict[str, np.ndarray], config: RollingConfig, n_jobs: int):
    total = sum(len(p) for p in plan.values())
    chunk = max(1, math.ceil(total / (4 * n_jobs)))
    for name, positions in plan.items():
        for start in range(0, len(positions), chunk):
            part = positions[start : start + chunk]
            lo, hi = int(part[0]) - config.lookback + 1, int(part[-1]) + config.horizon + 1
            # only the rows this chunk needs travel to the worker; positions are shifted to match
            yield name, series[name].iloc[lo:hi].reset_index(drop=True), part - lo


def rolling_evaluate(
    series: dict[str, pd.DataFrame],
    forecasters: Sequence[Forecaster | ForecasterSpec],
    config: RollingConfig,
    *,
    n_jobs: int = 1,
    progress: bool = False,
    raise_errors: bool = False,
) -> RollingResult:
    """Run every forecaster over every series at rolling origins and return the scored forecasts.

    ``forecasters`` are built forecasters or :class:`ForecasterSpec` recipes; with ``n_jobs > 1``
    they must all be specs (each worker process builds its own copy). ``n_jobs <= 0`` means every
    core. Failures of single forecasts are collected in ``errors`` unless ``raise_errors``.
    """
    if not series:
        raise InputError("no series to evaluate")
    if not forecasters:
        raise InputError("no forecaster to evaluate")
    labels = [f.label if isinstance(f, ForecasterSpec) else f.name for f in forecasters]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise InputError(f"forecaster names must be unique, {dupes} appear more than once (use LABEL=SPEC)")
    plan, align = origin_plan(series, config)
    jobs = (os.cpu_count() or 1) if n_jobs <= 0 else int(n_jobs)
    total = int(sum(len(p) for p in plan.values()))
    parallel = jobs > 1 and total > 1 and all(isinstance(f, ForecasterSpec) for f in forecasters)

    from kronos.core.progress import progress_bar

    frames: list[pd.DataFrame] = []
    errors: list[dict[str, Any]] = []
    with progress_bar(unit="origins", enabled=progress) as bar:
        task = bar.add_task("evaluate", total=total)
        if parallel:
            specs = tuple(forecasters)  # type: ignore[arg-type]
            ctx = mp.get_context("spawn")  # fork after torch/BLAS threads start is unsafe
            with ProcessPoolExecutor(max_workers=min(jobs, total), mp_context=ctx, initializer=_worker_init) as pool:
                futures = [
                    pool.submit(_worker_task, name, part, pos, specs, config, raise_errors)
                    for name, part, pos in _tasks(series, plan, config, jobs)
                ]
                for fut in as_completed(futures):
                    rows, errs, count = fut.result()
                    frames.append(rows)
                    errors.extend(errs)
                    bar.advance(task, count)
        else:
            built = [f.build() if isinstance(f, ForecasterSpec) else f for f in forecasters]
            for name, positions in plan.items():
                rows, errs = forecast_origins(
                    name,
                    series[name],
                    positions,
                    built,
                    config,
                    on_origin=lambda: bar.advance(task, 1),
                    raise_errors=raise_errors,
                )
                frames.append(rows)
                errors.extend(errs)
    frames = [f for f in frames if len(f)]
    if frames:
        forecasts = pd.concat(frames, ignore_index=True)
        forecasts = forecasts.sort_values(
            ["forecaster", "series", "origin_time", "step"], kind="stable", ignore_index=True
        )
    else:
        forecasts = pd.DataFrame(columns=list(FORECAST_COLUMNS))
    err_frame = pd.DataFrame(errors, columns=["forecaster", "series", "origin_time", "error"])
    for name, reason in skip_reasons(series, plan, config, align).items():
        err_frame.loc[len(err_frame)] = [None, name, pd.NaT, f"skipped: {reason}"]
    return RollingResult(forecasts=forecasts, errors=err_frame, align=align)


def skip_reasons(
    series: dict[str, pd.DataFrame], plan: dict[str, np.ndarray], config: RollingConfig, align: str
) -> dict[str, str]:
    """Why each series without an origin in ``plan`` was left out, in words.

    Too few bars for ``lookback + horizon`` is one reason; under calendar alignment a long series can
    also miss every common origin date (it ends before them, starts after them, or has no bar on them).
    """
    need = config.lookback + config.horizon
    chosen = pd.DatetimeIndex(
        np.unique(
            np.concatenate(
                [series[n]["timestamps"].to_numpy()[p] for n, p in plan.items() if len(p)] or [np.array([], "M8[ns]")]
            )
        )
    )
    reasons: dict[str, str] = {}
    for name, positions in plan.items():
        if len(positions):
            continue
        frame = series[name]
        n = len(frame)
        if n < need:
            reasons[name] = f"too short: {n} bars, lookback {config.lookback} + horizon {config.horizon} needs {need}"
            continue
        stamps = pd.DatetimeIndex(frame["timestamps"])
        first_ok, last_ok = stamps[config.lookback - 1], stamps[n - 1 - config.horizon]
        span = (
            f"the {len(chosen)} common origin dates {chosen[0]:%Y-%m-%d %H:%M} .. {chosen[-1]:%Y-%m-%d %H:%M}"
            if len(chosen)
            else "the common origin dates"
        )
        if len(chosen) and last_ok < chosen[0]:
            reasons[name] = f"ends too early: its last usable origin {last_ok} (data end {stamps[-1]}) is before {span}"
        elif len(chosen) and first_ok > chosen[-1]:
            reasons[name] = f"starts too late: its first usable origin {first_ok} is after {span}"
        else:
            reasons[name] = (
                f"no bar with {config.lookback} bars before and {config.horizon} after on {span} ({align} alignment)"
            )
    return reasons
