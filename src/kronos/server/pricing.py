"""What a request costs and what it may cost: the limits, the model's pricing, the 413 that says how to fit.

Why a module of its own: the server prices every request before queueing it (seconds of model time from
:mod:`kronos.forecasting.cost`), and the same numbers decide how a large request is sliced, so the budget,
the estimate and the advice in a refusal live together.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kronos.core.errors import InputError
from kronos.forecasting.calibration import CalibrationOptions
from kronos.forecasting.cost import estimate_run, format_bytes
from kronos.forecasting.predictor import KronosPredictor
from kronos.forecasting.prepared import resolve_lookback
from kronos.server.schemas import ForecastRequest

__all__ = ["Limits", "Pricing", "RequestError", "measure_work_rate", "price_request"]


@dataclass(frozen=True)
class Limits:
    """What one request may ask for. Exceeding ``max_bars``, ``max_body_bytes`` or the cost budget gives 413,
    the rest 422.

    The cost budget is in seconds of model time, estimated before queueing as work / ``work_rate``
    (:mod:`kronos.forecasting.cost`; ``work_rate`` is parameter-token evaluations per second: 2.0e10 measured
    for kronos-open with shared-prefix attention on one idle core of the development machine, 1e10 by
    default for a margin) plus ``step_seconds`` per generated bar and model call (the fixed cost of a step:
    2.6 ms measured there, 5 ms by default): a request may need at most
    ``max_request_seconds``, and one of its sample paths at most ``max_path_seconds`` (a path is the
    smallest slice). Requests run in slices of about ``slice_seconds`` and at most ``max_run_memory``
    bytes, so a light request admitted after a heavy one waits for one slice, not for the whole of it.
    A request still unanswered after ``timeout_seconds`` is cancelled (504); a body that stalls for
    ``body_timeout_seconds`` is answered 408.
    """

    min_bars: int = 16
    max_bars: int = 4096
    max_pred_len: int = 512
    max_sample_count: int = 1000
    max_body_bytes: int = 2_000_000
    max_request_seconds: float = 60.0
    max_path_seconds: float = 1.0
    slice_seconds: float = 1.0
    step_seconds: float = 0.005
    max_run_memory: int = 1 << 30
    work_rate: float = 1e10
    timeout_seconds: float = 300.0
    body_timeout_seconds: float = 30.0  # a request body that sends nothing for this long: 408


@dataclass(frozen=True)
class Pricing:
    """What the cost of a request depends on: the served model's configuration, size and context."""

    config: Any  # kronos.model.config.KronosConfig
    parameters: int
    max_context: int
    itemsize: int = 4

    @classmethod
    def of(cls, predictor: KronosPredictor) -> Pricing:
        params = list(predictor.model.parameters())
        return cls(
            predictor.model.config, sum(p.numel() for p in params), predictor.max_context, params[0].element_size()
        )

    def per_path(self, history: int, pred_len: int) -> tuple[float, int]:
        """Work (parameter-token evaluations) and memory (bytes) of one more sample path."""
        ctx = self.max_context  # the server runs the library's defaults: one shared prefix per series
        one = estimate_run(self.config, self.parameters, ctx, history, pred_len, 1, self.itemsize, shared_prefix=True)
        two = estimate_run(self.config, self.parameters, ctx, history, pred_len, 2, self.itemsize, shared_prefix=True)
        return two.work - one.work, two.memory - one.memory


class RequestError(Exception):
    """A refused request: HTTP ``status``, the field (``loc``) and the reason."""

    def __init__(self, status: int, loc: Sequence[str | int], msg: str) -> None:
        super().__init__(msg)
        self.status, self.loc, self.msg = status, list(loc), msg

    def detail(self) -> list[dict[str, Any]]:
        return [{"loc": self.loc, "msg": self.msg, "type": "limit" if self.status == 413 else "value_error"}]


def _largest(ok: Callable[[int], bool], high: int) -> int:
    """The largest ``n`` in ``[1, high]`` with ``ok(n)`` (``ok`` falls as ``n`` grows); 0 if none."""
    low, best = 1, 0
    while low <= high:
        mid = (low + high) // 2
        if ok(mid):
            best, low = mid, mid + 1
        else:
            high = mid - 1
    return best


def measure_work_rate(
    predictor: KronosPredictor, step_seconds: float = 0.005, *, series: int = 8, paths: int = 32, pred_len: int = 8
) -> float:
    """This machine's work rate for the pricing (parameter-token evaluations per second), measured on ``predictor``.

    Why: requests are priced in seconds as work / ``work_rate``, and the same estimate decides how many requests
    share a run (each run stays within a slice). A rate guessed for another machine or another model makes every
    estimate wrong by that factor: too low, and concurrent requests run in needlessly small batches. Measured as
    a batched run of ``series x paths`` sample paths of ``pred_len`` bars (as the server runs them) on synthetic
    bars, after one warm-up run: the paths' work over the run's time less its steps' fixed cost.
    """
    import numpy as np
    import pandas as pd

    history = 128
    rng = np.random.default_rng(0)
    times = pd.date_range("2024-01-01", periods=history + pred_len, freq="h")
    frames, xs, ys = [], [], []
    for _ in range(series):
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, history)))
        frames.append(
            pd.DataFrame({"open": close, "high": close * 1.002, "low": close * 0.998, "close": close, "volume": 1e3})
        )
        xs.append(pd.Series(times[:history]))
        ys.append(pd.Series(times[history:]))
    elapsed = []
    for _ in range(2):
        start = time.perf_counter()
        predictor.forecast_batch(frames, xs, ys, pred_len, sample_count=paths, seeds=list(range(series)))
        elapsed.append(time.perf_counter() - start)
    work = Pricing.of(predictor).per_path(history, pred_len)[0] * series * paths
    return work / max(elapsed[-1] - pred_len * step_seconds, 0.1 * elapsed[-1])


def price_request(req: ForecastRequest, limits: Limits, pricing: Pricing, n_bars: int) -> tuple[int, float, int, float]:
    """``(sample paths per slice, estimated seconds, estimated bytes of one run of all its paths, seconds of
    one more path)`` of a request, or 413 naming the budget and how to fit.

    A slice of ``k`` paths costs ``pred_len * step_seconds + k * (one path's work / work_rate)``: the per-step
    overhead of a model call plus the paths' work. The smallest slice (one path) must fit ``max_path_seconds``
    and the whole request ``max_request_seconds``.
    """

    def per_path(pred_len: int) -> tuple[float, int]:
        try:
            window = resolve_lookback(req.lookback, pricing.max_context, pred_len)
        except InputError as exc:
            raise RequestError(422, ["body", "lookback"], str(exc)) from None
        work, memory = pricing.per_path(n_bars if window is None else min(n_bars, window), pred_len)
        return work / limits.work_rate, memory

    def smallest_slice(pred_len: int) -> float:
        return pred_len * limits.step_seconds + per_path(pred_len)[0]

    path_s, memory = per_path(req.pred_len)
    one = smallest_slice(req.pred_len)
    if one > limits.max_path_seconds or memory > limits.max_run_memory:
        fit = _largest(
            lambda pl: smallest_slice(pl) <= limits.max_path_seconds and per_path(pl)[1] <= limits.max_run_memory,
            req.pred_len,
        )
        raise RequestError(
            413,
            ["body", "pred_len"],
            f"one sample path of pred_len={req.pred_len} needs an estimated {one:.1f} s of model time and "
            f"{format_bytes(memory)}; the server's budget is max_path_seconds={limits.max_path_seconds:g} and "
            f"max_run_memory={format_bytes(limits.max_run_memory)} per path: send pred_len <= {max(fit, 1)} (the "
            f"model's context is {pricing.max_context} bars) and forecast further ahead in steps",
        )
    overhead = req.pred_len * limits.step_seconds
    by_time = (limits.slice_seconds - overhead) / max(path_s, 1e-12)
    per_slice = max(1, int(min(by_time, limits.max_run_memory / max(memory, 1))))
    origins = 1 + (CalibrationOptions().origins if req.calibrate else 0)

    def seconds(n: int) -> float:
        if req.calibrate:  # one batched call per origin, not sliced
            return origins * (overhead + n * path_s)
        return -(-n // per_slice) * overhead + n * path_s

    total = seconds(req.sample_count)
    if total > limits.max_request_seconds:
        fits = _largest(lambda n: seconds(n) <= limits.max_request_seconds, req.sample_count)
        raise RequestError(
            413,
            ["body", "sample_count"],
            f"sample_count={req.sample_count} x pred_len={req.pred_len}{' with calibration' if req.calibrate else ''} "
            f"needs an estimated {total:.0f} s of model time, over the per-request budget "
            f"max_request_seconds={limits.max_request_seconds:g}: send sample_count <= {max(fits, 1)}, or a shorter "
            "pred_len",
        )
    return per_slice, total, memory * req.sample_count, path_s
