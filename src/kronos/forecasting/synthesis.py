"""Synthetic K-lines: sample whole OHLCV series from the model, unconditionally or continuing a history.

Uses: stress scenarios, data augmentation, testing trading code on plausible series. Generation is
the forecasting sampler run for as many bars as asked (windows slide past ``max_context``; tokens are
decoded in overlapping windows of at most ``max_context`` bars), then mapped to prices and repaired
into valid bars.

* **Continuing a history**: the history goes through the forecasting preparation
  (:func:`~kronos.forecasting.prepared.prepare_series`): checked once, trimmed to ``lookback`` bars
  (``"auto"``: the model's context less ``n_bars``, at least 64), normalised on exactly those bars, tokenised,
  and the model continues it; prices come back through the same normalisation, the paths anchored on the last bar
  as forecasts' are (``SamplingOptions.anchor``; ``anchor=False``: from the tokenizer's reconstruction of it).
* **Unconditional**: there is no start-of-series token in Kronos, so generation starts from the
  token of a neutral bar (every feature at its mean), runs ``burn_in`` bars that are thrown away so
  the start is forgotten, and keeps the next ``n_bars``. The normalised series is mapped to prices
  with a scale you choose (``price_level``/``price_std``/``volume_level``/``volume_std``) or the
  mean and std of a reference frame (``like=``).

**Validity is enforced, not hoped for** (:func:`~kronos.forecasting.prepared.repair_bars`, the forecasts'
repair): ``high := max(high, open, close)``, ``low := min(low, open, close)``, ``volume, amount := max(., 0)``,
and prices are floored at a small positive ``price_floor``. The number of bars that needed a repair is in
``frame.attrs["repaired_bars"]``.

The first section is model code (tensors only); the pandas wrapper is :func:`synthesize`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from kronos.bars.calendars import future_timestamps, infer_schedule
from kronos.bars.normalizer import Normalizer
from kronos.bars.preprocessing import (
    FEATURE_COLS,
    calendar_features,
    check_same_zone,
    prepare_features,
    validate_timestamps,
)
from kronos.core.errors import InputError
from kronos.core.validation import integer, number, positive_int
from kronos.forecasting.components import Components
from kronos.forecasting.prepared import AUTO, Lookback, prepare_series, repair_bars, resolve_lookback
from kronos.forecasting.sampler import anchor_shifts
from kronos.inference.generation import sample_paths
from kronos.inference.options import SamplingOptions
from kronos.model.tokenizer import KronosTokenizer

__all__ = ["sample_series", "synthesize"]


# -- model code --------------------------------------------------------------------------------
@torch.no_grad()
def sample_series(
    tokenizer: KronosTokenizer,
    model: Any,
    x: torch.Tensor,
    stamps: torch.Tensor,
    n_bars: int,
    max_context: int,
    opts: SamplingOptions,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Normalised continuations ``(paths, n_bars, d_in)`` of one normalised history ``x`` ``(1, hist, d_in)``.

    ``stamps`` ``(1, hist + n_bars, 5)`` are the calendar features of history and new bars. This is
    forecasting by another name: :func:`kronos.inference.generation.sample_paths`, which also decodes runs
    longer than ``max_context``.
    """
    hist = x.shape[1]
    return sample_paths(
        tokenizer, model, x, stamps[:, :hist], stamps[:, hist:], n_bars, max_context, opts, generator=generator
    )[0]


# -- the pandas wrapper ------------------------------------------------------------------------
def synthesize(
    c: Components,
    n_bars: int,
    *,
    history: pd.DataFrame | None = None,
    x_timestamp: Any = None,
    lookback: Lookback = AUTO,
    timestamps: Sequence | pd.DatetimeIndex | None = None,
    n_paths: int = 1,
    T: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    start: str | pd.Timestamp = "2020-01-01",
    freq: str = "B",
    burn_in: int = 32,
    like: pd.DataFrame | None = None,
    price_level: float = 100.0,
    price_std: float = 5.0,
    volume_level: float = 1e6,
    volume_std: float = 3e5,
    price_floor: float = 1e-8,
    anchor: bool = True,
    generator: torch.Generator | None = None,
) -> list[pd.DataFrame]:
    """``n_paths`` synthetic series of ``n_bars`` valid OHLCV bars, each a DataFrame indexed by time.

    With ``history`` (and its ``x_timestamp``) the series continue its last ``lookback`` bars (``"auto"``: the
    model's context less ``n_bars``, at least 64; an int; ``None``: all of them, normalised together, as the
    original does); ``timestamps`` defaults to the history's own spacing; ``anchor`` (default ``True``) starts them
    from its last bar as given, as forecasts do (``SamplingOptions.anchor``). Without it, generation is
    unconditional: bars are stamped from ``start`` at ``freq`` (or ``timestamps``), and scaled like ``like`` or
    by the ``*_level``/``*_std`` arguments.
    ``c`` is the model's :class:`~kronos.forecasting.components.Components` (``predictor.components``).
    """
    n_bars = positive_int("n_bars", n_bars)
    opts = SamplingOptions(
        temperature=T, top_k=top_k, top_p=top_p, sample_count=positive_int("n_paths", n_paths), anchor=anchor
    )
    if history is not None:
        if x_timestamp is None:
            raise InputError("continuing a history needs its x_timestamp")
        x_idx = validate_timestamps(x_timestamp, name="x_timestamp", expected_len=len(history))
        y_idx = (
            future_timestamps(x_idx, n_bars).rename(None)
            if timestamps is None
            else validate_timestamps(timestamps, name="timestamps", expected_len=n_bars)
        )
        check_same_zone(x_idx, y_idx, names=("x_timestamp", "timestamps"))
        if y_idx[0] <= x_idx[-1]:
            raise InputError(f"timestamps start at {y_idx[0]}, not after the last history timestamp {x_idx[-1]}")
        prepared = prepare_series(
            c, history, x_idx, y_idx, n_bars, None, resolve_lookback(lookback, c.max_context, n_bars)
        )
        norm, x, context_idx = prepared.norm, prepared.x, prepared.history.index
    else:
        integer("burn_in", burn_in, minimum=0)
        if timestamps is None:
            try:
                y_idx = pd.date_range(pd.Timestamp(start), periods=n_bars, freq=freq)
            except (TypeError, ValueError) as exc:
                raise InputError(f"cannot make timestamps from start={start!r}, freq={freq!r} ({exc})") from None
        else:
            y_idx = validate_timestamps(timestamps, name="timestamps", expected_len=n_bars)
        step = freq if timestamps is None else infer_schedule(y_idx).step if len(y_idx) >= 2 else pd.Timedelta(days=1)
        if isinstance(step, pd.Timedelta):
            context_idx = pd.DatetimeIndex([y_idx[0] - step * (burn_in + 1 - i) for i in range(burn_in + 1)])
        else:
            context_idx = pd.date_range(end=y_idx[0], periods=burn_in + 2, freq=step)[:-1]
        if like is not None:
            norm = c.normalizer(prepare_features(like, label="like"))
        else:
            for name, value in (("price_level", price_level), ("price_std", price_std), ("volume_level", volume_level)):
                number(name, value, low=0.0)
            number("volume_std", volume_std, low=0.0, low_open=False)
            mean = np.array([price_level] * 4 + [volume_level, volume_level * price_level], dtype=np.float32)
            std = np.array([price_std] * 4 + [volume_std, volume_std * price_level], dtype=np.float32)
            norm = Normalizer(mean=mean, std=std, clip=c.clip)
        x = np.zeros((1, len(FEATURE_COLS)), dtype=np.float32)  # a neutral bar: every feature at its mean
    all_idx = context_idx.append(y_idx)
    stamps = calendar_features(all_idx)
    burn = 0 if history is not None else burn_in
    z = sample_series(
        c.tokenizer,
        c.model,
        c.tensor(np.asarray(x)[None]),
        c.tensor(stamps[None]),
        burn + n_bars,
        c.max_context,
        opts,
        generator=generator,
    )[:, burn:]
    if history is not None and opts.anchor:  # continue from the last bar as given, not from its reconstruction
        z = z + torch.from_numpy(anchor_shifts(c, [np.asarray(x)])).to(z.device)
    bars = norm.inverse(z.float().cpu().numpy().astype(np.float64))
    out = []
    for path in bars:
        fixed, share = repair_bars(path, price_floor)
        frame = pd.DataFrame(fixed, columns=FEATURE_COLS, index=pd.DatetimeIndex(y_idx, name="timestamps"))
        frame.attrs["repaired_bars"] = int(round(share * len(fixed)))
        out.append(frame)
    return out
