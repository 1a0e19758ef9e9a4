"""Rolling-origin evaluation: many forecast origins per series, a fixed lookback, horizons 1..H.

At each origin ``t`` (a bar index) a forecaster sees exactly the ``lookback`` bars ending at ``t``
(a copy, so nothing it does can leak back) plus the timestamps of the next ``horizon`` bars, and
its forecast is scored against the closes of those bars. Nothing after ``t`` other than those
timestamps reaches the forecaster, and every origin gets a seed derived from (run seed, series,
origin time) alone, so re-running with the data after an origin scrambled gives identical
forecasts: the property the no-look-ahead test checks.

Where the origins go (and why a series got none) is decided in :mod:`kronos.evaluation.origins`; this
module forecasts and scores at them. Work is spread over processes by (series, chunk of origins), with a
rich progress bar.
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

from kronos.bars.calendars import market_times
from kronos.core.errors import InputError
from kronos.evaluation.forecasters import Forecaster, ForecasterSpec
from kronos.evaluation.metrics import score_paths
from kronos.evaluation.origins import RollingConfig, origin_plan, skip_reasons
from kronos.inference.options import derive_origin_seed

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


@dataclass
class RollingResult:
    """The forecasts table (one row per forecaster, series, origin and step) and any failures."""

    forecasts: pd.DataFrame
    errors: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["forecaster", "series", "origin_time", "error"])
    )
    align: str = "end"


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
    lookback, horizon = config.lookback, config.horizon
    seeded = [_accepts_seed(f) for f in forecasters]
    labelled = [_takes(f.forecast, "label") for f in forecasters]  # a user's forecaster may take no label
    stamps = pd.DatetimeIndex(frame["timestamps"])
    close = frame["close"].to_numpy(dtype=np.float64)
    chunks: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    origins = []
    for pos in positions:
        pos = int(pos)
        if pos - lookback + 1 < 0 or pos + horizon >= len(frame):
            raise InputError(
                f"{name}: origin at row {pos} needs rows {pos - lookback + 1}..{pos + horizon}, "
                f"the series has {len(frame)}"
            )
        origin_time = stamps[pos]
        history = frame.iloc[pos - lookback + 1 : pos + 1].reset_index(drop=True).copy()
        seed = derive_origin_seed(config.seed, name, pd.Timestamp(origin_time).value)
        future = stamps[pos + 1 : pos + 1 + horizon]
        if config.calendar is not None:  # the times a live forecast would use, from the history up to the origin
            future = market_times(stamps[: pos + 1], horizon, calendar=config.calendar).times
        origins.append((pos, origin_time, history, future, seed))
    # Forecasters that batch (Kronos) forecast every origin of the series at once; each origin keeps
    # its own seed, so the result equals one call per origin. On failure they fall back to one call
    # per origin, so a single bad origin is reported alone.
    batched: dict[int, list[Any]] = {}
    for j, forecaster in enumerate(forecasters):
        many = getattr(forecaster, "forecast_many", None)
        if callable(many) and len(origins) > 1:
            named = {"labels": [_origin_label(name, o[1]) for o in origins]} if _takes(many, "labels") else {}
            try:
                batched[j] = many(
                    [o[2] for o in origins],
                    [o[3] for o in origins],
                    config.num_samples,
                    seeds=[o[4] for o in origins],
                    **named,
                )
            except Exception:
                if raise_errors:
                    raise
    for k, (pos, origin_time, history, future_times, seed) in enumerate(origins):
        y_true = close[pos + 1 : pos + 1 + horizon]
        for j, (forecaster, takes_seed, takes_label) in enumerate(zip(forecasters, seeded, labelled)):
            try:
                if j in batched:
                    fc = batched[j][k]
                elif takes_seed:
                    named = {"label": _origin_label(name, origin_time)} if takes_label else {}
                    fc = forecaster.forecast(history, future_times, config.num_samples, seed=seed, **named)
                else:  # a plain ``forecast(history, future_timestamps, num_samples)`` is fine too
                    fc = forecaster.forecast(history, future_times, config.num_samples)
                paths = fc.column("close")
                if paths.shape[1] != horizon:
                    raise ValueError(f"returned {paths.shape[1]} bars, {horizon} were asked for")
                if not np.isfinite(paths).all():
                    raise ValueError("returned non-finite close values")
                scores = score_paths(paths, y_true, float(close[pos]), config.quantiles)
            except Exception as exc:  # one bad fit must not sink a run over hundreds of series
                if raise_errors:
                    raise
                # the row names the series and origin; the message need not again (it leads with them)
                message = str(exc).removeprefix(_origin_label(name, origin_time) + ": ")
                errors.append(
                    {
                        "forecaster": forecaster.name,
                        "series": name,
                        "origin_time": origin_time,
                        "error": f"{type(exc).__name__}: {message}",
                    }
                )
                continue
            chunk = {
                "forecaster": np.full(horizon, forecaster.name, dtype=object),
                "series": np.full(horizon, name, dtype=object),
                "origin_time": np.full(horizon, origin_time.to_datetime64()),
                "step": np.arange(1, horizon + 1, dtype=np.int64),
                "target_time": future_times.to_numpy(),
                "last_close": np.full(horizon, float(close[pos])),
                "y_true": y_true,
                **scores,
                "n_paths": np.full(horizon, paths.shape[0], dtype=np.int64),
            }
            chunks.append(chunk)
        if on_origin is not None:
            on_origin()
    if not chunks:
        return pd.DataFrame(columns=list(FORECAST_COLUMNS)), errors
    rows = pd.DataFrame({k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]})
    return rows, errors


def _accepts_seed(forecaster: Forecaster) -> bool:
    return _takes(forecaster.forecast, "seed", unknown=True)


def _takes(method: Callable[..., Any], keyword: str, unknown: bool = False) -> bool:
    """Whether ``method`` takes ``keyword`` (a user's forecaster may not; ``unknown`` when it cannot be told)."""
    import inspect

    try:
        params = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return unknown
    return keyword in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _origin_label(series: str, origin_time: Any) -> str:
    """How errors and notices name one origin of a series: ``'SPY' at 2024-05-01 00:00:00``."""
    return f"{series!r} at {origin_time}"


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
