"""From an API request to a forecast and back: limits, the library's input checks, batched runs.

A request becomes a :class:`Job` (a validated frame of bars, the future times and the sampling
settings) before it is queued, so bad input is refused without touching the model. Jobs with equal
sampling settings share one ``forecast_batch`` call (a padded batch: histories may differ in length)
with one seed per job, and the predictor draws each series' paths from its own seed, so each answer
is exactly what the job would get alone. Calibrated jobs run on their own (they are many forecasts each).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import torch

from kronos.bars.calendars import market_times
from kronos.bars.closeonly import CLOSE_ONLY_NOTICE, close_only_bars
from kronos.bars.preprocessing import FEATURE_COLS, check_same_zone, prepare_features, validate_timestamps
from kronos.bars.stocksplits import describe_split
from kronos.bars.zones import local_zone, offset_zone_text
from kronos.core.errors import InputError
from kronos.forecasting.forecast import Forecast
from kronos.forecasting.notices import SHORT_HISTORY, short_history_text
from kronos.forecasting.panel import level_name
from kronos.forecasting.predictor import KronosPredictor
from kronos.inference.options import SamplingOptions
from kronos.server.pricing import Limits, Pricing, RequestError, price_request
from kronos.server.schemas import ForecastRequest, ModelInfo

__all__ = [
    "Job",
    "Limits",
    "Pricing",
    "RequestError",
    "build_job",
    "forecast_body",
    "model_info",
    "merge_slices",
    "run_group",
    "run_slice",
    "slices",
]


@dataclass
class Job:
    """A request that passed every check, ready for the model."""

    bars: pd.DataFrame  # timestamps + the six feature columns
    future: pd.DatetimeIndex
    pred_len: int
    options: SamplingOptions
    seed: int  # the forecast and its calibration origins sample from it (kronos.inference.options.derive_seed)
    calibrate: bool
    lookback: Any = "ensemble"  # the window(s) the forecast conditions on (kronos.forecasting.prepared)
    splits: bool = True  # undo share splits left in the bars (kronos.bars.stocksplits)
    slice_paths: int = 0  # sample paths per slice (0: the whole request at once)
    seconds: float = 0.0  # estimated model time of the whole request
    memory: int = 0  # estimated bytes of running all its paths at once
    calendar: str | None = None  # the exchange calendar that gave the future times (None: learnt or given)
    notes: list[str] = field(default_factory=list)  # what the response tells the user about their input
    path_seconds: float = 0.0  # estimated model time of one more sample path (the steps' fixed cost apart)
    key: Hashable = field(init=False)

    def __post_init__(self) -> None:
        # Equal keys may share a batch: the same sampling settings and window (history lengths may differ).
        window = tuple(self.lookback) if isinstance(self.lookback, list) else self.lookback
        self.key = ("calibrate", id(self)) if self.calibrate else (self.pred_len, self.options, window, self.splits)


def _instants(times: list[datetime]) -> list[datetime]:
    """Times with UTC offsets as UTC instants, for validating them: JSON carries offsets, not zones, so a history
    across a daylight-saving change has two offsets (the bars are then read in the zone they fit,
    :func:`kronos.bars.zones.local_zone`); naive times stay as written (mixing both is refused later)."""
    return [t.astimezone(timezone.utc) if t.tzinfo is not None else t for t in times]


def build_job(req: ForecastRequest, limits: Limits, pricing: Pricing | None = None) -> Job:
    """Check a request against the limits, its cost (with ``pricing``) and the library's input checks.

    Raises :class:`RequestError`. With ``pricing`` the job also says how many paths make one slice.
    """
    n = len(req.bars)
    if n > limits.max_bars:
        raise RequestError(413, ["body", "bars"], f"{n} bars sent; the limit is max_bars={limits.max_bars}")
    if n < limits.min_bars:
        raise RequestError(422, ["body", "bars"], f"{n} bars sent; at least min_bars={limits.min_bars} are needed")
    if req.pred_len > limits.max_pred_len:
        raise RequestError(
            422, ["body", "pred_len"], f"pred_len={req.pred_len} exceeds the limit max_pred_len={limits.max_pred_len}"
        )
    if req.sample_count > limits.max_sample_count:
        raise RequestError(
            422,
            ["body", "sample_count"],
            f"sample_count={req.sample_count} exceeds the limit max_sample_count={limits.max_sample_count}",
        )
    columns: dict[str, Any] = {"timestamps": _instants([b.timestamps for b in req.bars])}
    notes: list[str] = []
    price = {col: [getattr(b, col) for b in req.bars] for col in ("open", "high", "low")}
    if all(v is None for values in price.values() for v in values):  # a close-only series
        try:
            built = close_only_bars([b.close for b in req.bars], label="bars")
        except InputError as exc:
            raise RequestError(422, ["body", "bars"], str(exc)) from None
        columns.update({col: built[col].tolist() for col in ("open", "high", "low")})
        notes.append(CLOSE_ONLY_NOTICE)
    else:
        for col, values in price.items():
            if None in values:
                row = values.index(None)
                raise RequestError(
                    422,
                    ["body", "bars", row, col],
                    f"bar {row} has no {col}; send open, high and low in every bar, or in none (close-only)",
                )
            columns[col] = values
    for col in FEATURE_COLS[3:]:
        values = [getattr(b, col) for b in req.bars]
        if col in ("volume", "amount") and all(v is None for v in values):
            continue  # absent: the library's convention fills it
        columns[col] = [np.nan if v is None else v for v in values]
    frame = pd.DataFrame({k: v for k, v in columns.items() if k != "timestamps"})
    try:
        prepare_features(frame)
        stamps = validate_timestamps(columns["timestamps"], name="bars.timestamps")
        # read in the bars' own offset or the zone their offsets fit, as the Python API reads an aware index
        local = local_zone([b.timestamps for b in req.bars])
        if local is not None:
            stamps = stamps.tz_convert(local)
            if isinstance(local, str):
                notes.append(offset_zone_text(local, [b.timestamps.utcoffset().total_seconds() for b in req.bars]))
    except InputError as exc:
        raise RequestError(422, ["body", "bars"], str(exc)) from None
    frame.insert(0, "timestamps", stamps)
    if len(frame) < SHORT_HISTORY:
        notes.append(short_history_text(len(frame)))
    calendar = None
    if req.future_timestamps is not None:
        try:
            future = validate_timestamps(
                _instants(req.future_timestamps), name="future_timestamps", expected_len=req.pred_len
            )
            if future.tz is not None and stamps.tz is not None:
                future = future.tz_convert(stamps.tz)
            check_same_zone(stamps, future, names=("bars.timestamps", "future_timestamps"))
        except InputError as exc:
            raise RequestError(422, ["body", "future_timestamps"], str(exc)) from None
        if future[0] <= stamps[-1]:
            raise RequestError(
                422,
                ["body", "future_timestamps"],
                f"future_timestamps starts at {future[0]}, not after the last bar {stamps[-1]}",
            )
    else:
        try:
            times = market_times(frame["timestamps"], req.pred_len, calendar=req.calendar)
        except InputError as exc:
            loc = "calendar" if "calendar" in str(exc) else "bars"
            raise RequestError(422, ["body", loc], str(exc)) from None
        future, calendar = times.times, times.calendar
    priced = (0, 0.0, 0, 0.0) if pricing is None else price_request(req, limits, pricing, n)
    slice_paths, seconds, memory, path_seconds = priced
    seed = req.seed if req.seed is not None else secrets.randbelow(2**31)
    options = SamplingOptions(temperature=req.T, top_p=req.top_p, sample_count=req.sample_count, anchor=req.anchor)
    return Job(
        frame,
        pd.DatetimeIndex(future),
        req.pred_len,
        options,
        seed,
        req.calibrate,
        req.lookback,
        req.splits,
        slice_paths if not req.calibrate and slice_paths < req.sample_count else 0,
        seconds,
        memory,
        calendar,
        notes,
        path_seconds,
    )


@dataclass(frozen=True)
class Slice:
    """Paths ``first .. first + count - 1`` of a job (the server runs a large job slice by slice)."""

    job: Job
    first: int
    count: int


def slices(job: Job) -> list[Job | Slice]:
    """The parts a job runs in: itself, or slices of ``job.slice_paths`` paths."""
    if not job.slice_paths:
        return [job]
    n, k = job.options.sample_count, job.slice_paths
    return [Slice(job, first, min(k, n - first)) for first in range(0, n, k)]


def _forecast(predictor: KronosPredictor, job: Job, count: int | None = None, first: int = 0) -> Forecast | Exception:
    """``job``'s forecast (paths ``first .. first + count - 1`` of its seed's stream when ``count`` is given);
    an error is returned, to be handed to that request's caller only."""
    options = job.options if count is None else dataclasses.replace(job.options, sample_count=count)
    try:
        return predictor.forecast(
            job.bars,
            job.bars["timestamps"],
            pd.Series(job.future),
            job.pred_len,
            options,
            seed=job.seed,
            calibrate=job.calibrate,
            lookback=job.lookback,
            splits=job.splits,
            first_path=first,
        )
    except Exception as exc:
        return exc


def run_slice(predictor: KronosPredictor, part: Slice) -> Forecast | Exception:
    """One slice of a job: the same paths it has in the whole forecast (``first_path``)."""
    return _forecast(predictor, part.job, part.count, part.first)


def merge_slices(parts: Sequence[Forecast]) -> Forecast:
    """The forecast of a whole job from its slices' forecasts (paths in order)."""
    first = parts[0]
    counts = [p.n_paths for p in parts]
    share = {
        key: sum(p.info.get(key, 0.0) * c for p, c in zip(parts, counts)) / sum(counts)
        for key in ("repaired_bars", "floored_paths")
    }
    info = {**first.info, "sample_count": sum(counts), **share}
    return Forecast(
        paths=np.concatenate([p.paths for p in parts]),
        timestamps=first.timestamps,
        last_close=first.last_close,
        columns=first.columns,
        history=first.history,
        info=info,
    )


def run_group(predictor: KronosPredictor, jobs: Sequence[Job | Slice]) -> list[Forecast | Exception]:
    """Forecasts of jobs with one key: one padded batch with a seed per job, or one call each.

    A slice of a large job runs alone (:func:`run_slice`). If the batched call fails, each job runs
    alone so that one failure reaches only its own request.
    """
    if isinstance(jobs[0], Slice):
        return [run_slice(predictor, part) for part in jobs]  # type: ignore[arg-type]
    if len(jobs) == 1 or jobs[0].calibrate:
        return [_forecast(predictor, job) for job in jobs]
    first = jobs[0]
    try:
        return list(
            predictor.forecast_batch(
                [j.bars for j in jobs],
                [j.bars["timestamps"] for j in jobs],
                [pd.Series(j.future) for j in jobs],
                first.pred_len,
                first.options,
                seeds=[j.seed for j in jobs],
                lookback=first.lookback,
                splits=first.splits,
                batch_size=len(jobs),
            )
        )
    except Exception:
        return [_forecast(predictor, job) for job in jobs]


def _columns(values: np.ndarray, columns: Sequence[str]) -> dict[str, list[float]]:
    return {c: values[:, i].tolist() for i, c in enumerate(columns)}


def _split_note(split: dict[str, Any]) -> str:
    return (
        f"the bars hold what looks like an unadjusted share split ({describe_split(split)}); the forecast read "
        "earlier prices divided by the ratio (splits=false keeps the bars as sent)"
    )


def forecast_body(fc: Forecast, req: ForecastRequest, job: Job, info: ModelInfo) -> dict[str, Any]:
    """The JSON response of one forecast (see :class:`kronos.server.schemas.ForecastResponse`).

    The numbers are the :class:`Forecast`'s own definitions (mean and quantiles over paths,
    ``prob_up``), computed on its array directly: this runs on the event loop for every request.
    """
    levels = [float(q) for q in req.quantiles]
    quantiles = np.quantile(fc.paths, levels, axis=0)  # (levels, bars, columns), as Forecast.quantile
    close = fc.column("close")
    body: dict[str, Any] = {
        "timestamps": [t.isoformat() for t in fc.timestamps],
        "mean": _columns(fc.paths.mean(axis=0), fc.columns),
        "quantiles": {level_name(q): _columns(quantiles[i], fc.columns) for i, q in enumerate(levels)},
        "prob_up": (close > fc.last_close).mean(axis=0).tolist(),
        "model": info.model_dump(),
        "seed": job.seed,
        "sample_count": fc.n_paths,
        "calibrated": fc.is_calibrated,
        "bars_used": int(fc.info.get("bars_used", 0)),
        "lookbacks": fc.info.get("lookbacks"),
        "paths": None,
        "calendar": job.calendar,
        "splits": fc.info.get("splits", []),
        "notes": job.notes + [_split_note(s) for s in fc.info.get("splits", [])],
    }
    if req.return_paths:
        body["paths"] = {c: fc.column(c).tolist() for c in fc.columns}
    return body


def model_info(predictor: KronosPredictor, name: str | os.PathLike) -> ModelInfo:
    """Name, content version (hash of every weight of the model and tokenizer), context and size."""
    digest = hashlib.sha256()
    count = 0
    for module in (predictor.model, predictor.tokenizer):
        for key, tensor in sorted(module.state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
        count += sum(p.numel() for p in module.parameters())
    return ModelInfo(
        name=str(name), version=digest.hexdigest()[:12], max_context=predictor.max_context, parameters=count
    )
