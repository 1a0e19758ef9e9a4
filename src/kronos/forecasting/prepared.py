"""Prepared series: where DataFrames become the arrays the model reads, and paths become DataFrames again.

Per series: fill volume/amount, validate the timestamps, normalise with the history's own mean and std,
clip, and compute calendar features of the history and of the future times. The result keeps what is
needed to turn normalised paths back into prices (:class:`Prepared`). Module-level functions of a
:class:`~kronos.forecasting.components.Components`, so every API of the predictor prepares alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from kronos.bars.preprocessing import (
    FEATURE_COLS,
    Normalizer,
    calendar_features,
    check_same_zone,
    prepare_features,
    validate_timestamps,
)
from kronos.core.errors import InputError
from kronos.forecasting.components import Components

__all__ = ["Prepared", "left_padded", "mean_frames", "prepare_many", "prepare_series", "series_uniforms"]


@dataclass
class Prepared:
    """One series ready for the model."""

    x: np.ndarray  # (hist, 6) normalised and clipped, float32
    x_stamp: np.ndarray  # (hist, 5)
    y_stamp: np.ndarray  # (pred_len, 5)
    norm: Normalizer
    y_index: pd.DatetimeIndex
    history: pd.DataFrame
    last_close: float


def series_uniforms(seed: int, sample_count: int, pred_len: int) -> torch.Tensor:
    """The draws ``(sample_count, pred_len, 2)`` in [0, 1) of one series' coarse and fine tokens, from its own seed.

    A CPU generator, so the same seed gives the same draws on every device and rank.
    """
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed) % (2**63))
    return torch.rand(sample_count, pred_len, 2, generator=gen)


def prepare_series(
    c: Components, df: pd.DataFrame, x_timestamp: Any, y_timestamp: Any, pred_len: int, label: str | None
) -> Prepared:
    """One series checked and normalised by ``c``; errors start with ``label`` when given (``series 3:``)."""
    x = prepare_features(df, label=label)
    x_idx = validate_timestamps(x_timestamp, name="x_timestamp", expected_len=len(df), label=label)
    y_idx = validate_timestamps(y_timestamp, name="y_timestamp", expected_len=pred_len, label=label)
    where = f"{label}: " if label else ""
    check_same_zone(x_idx, y_idx, label=label)
    if y_idx[0] <= x_idx[-1]:
        raise InputError(f"{where}y_timestamp starts at {y_idx[0]}, not after the last history timestamp {x_idx[-1]}")
    if isinstance(y_timestamp, pd.Series) and y_timestamp.name is not None:
        y_idx = y_idx.rename(y_timestamp.name)
    norm = c.normalizer(x)
    return Prepared(
        x=norm.transform(x),
        x_stamp=calendar_features(x_idx),
        y_stamp=calendar_features(y_idx),
        norm=norm,
        y_index=y_idx,
        history=pd.DataFrame(x, columns=FEATURE_COLS, index=x_idx),
        last_close=float(x[-1, 3]),
    )


def prepare_many(
    c: Components,
    df_list: Sequence[pd.DataFrame],
    xs: Sequence[Any],
    ys: Sequence[Any],
    pred_len: int,
    labelled: bool,
) -> list[Prepared]:
    """Every series prepared; errors start ``series i:`` when ``labelled`` (the list API)."""
    if isinstance(df_list, pd.DataFrame) or not isinstance(df_list, (list, tuple)):
        raise InputError("df_list must be a list of DataFrames")
    if not (len(df_list) == len(xs) == len(ys)):
        raise InputError(
            "df_list, x_timestamp_list and y_timestamp_list must have the same length, got "
            f"{len(df_list)}, {len(xs)}, {len(ys)}"
        )
    if len(df_list) == 0:
        raise InputError("df_list is empty")
    return [
        prepare_series(c, df, x, y, pred_len, label=f"series {i}" if labelled else None)
        for i, (df, x, y) in enumerate(zip(df_list, xs, ys))
    ]


def mean_frames(prepared: Sequence[Prepared], paths: Sequence[np.ndarray]) -> list[pd.DataFrame]:
    """The original's output: the mean path of each series in price space, indexed by its future times."""
    frames = []
    for p, z in zip(prepared, paths):
        mean = z.mean(axis=0)  # float32, as the original averages before de-normalising
        values = p.norm.inverse(mean)
        if not np.isfinite(values).all():  # levels near the float32 limit: de-normalise in float64 instead
            values = p.norm.inverse(mean.astype(np.float64))
        frames.append(pd.DataFrame(values, columns=FEATURE_COLS, index=p.y_index))
    return frames


def left_padded(arrays: list[np.ndarray]) -> np.ndarray:
    """Rows ``(n, t_i, d)`` stacked into ``(n, max t_i, d)`` float32, zero-padded on the left (masked later)."""
    width = max(len(a) for a in arrays)
    batch = np.zeros((len(arrays), width, arrays[0].shape[1]), dtype=np.float32)
    for row, a in enumerate(arrays):
        batch[row, width - len(a) :] = a
    return batch
