"""Prepared series: where DataFrames become the arrays the model reads, and paths become DataFrames again.

Per series: choose the window (the last ``lookback`` bars), fill volume/amount, validate the timestamps,
normalise with the window's own mean and std, clip, and compute calendar features of the window and of
the future times. The normaliser is fitted on exactly the bars the model conditions on: a long history
normalised as a whole and then cut to the model's context gives z-scores the model never saw in training
(a level far from the window's mean), and with them impossible bars. The result keeps what is needed to
turn normalised paths back into prices (:class:`Prepared`), and records how many bars it used.
Module-level functions of a :class:`~kronos.forecasting.components.Components`, so every API of the
predictor prepares alike.

``lookback="auto"`` (every door's default except the original-compatible ``predict``) is
``max_context - pred_len`` bars, never fewer than :data:`MIN_AUTO_LOOKBACK`: the window plus the forecast
fit the model's context, so generation never slides the window (no re-prefill per bar) and the model sees
what it was trained on (windows of lookback + horizon bars).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from kronos.bars.normalizer import Normalizer
from kronos.bars.preprocessing import (
    FEATURE_COLS,
    calendar_features,
    check_same_zone,
    prepare_features,
    validate_timestamps,
)
from kronos.core.errors import InputError
from kronos.core.validation import positive_int
from kronos.forecasting.components import Components

__all__ = [
    "AUTO",
    "ENSEMBLE",
    "ENSEMBLE_LOOKBACKS",
    "ensemble_members",
    "MIN_AUTO_LOOKBACK",
    "check_series_lists",
    "Lookback",
    "Prepared",
    "left_padded",
    "MAX_ENSEMBLE_WINDOWS",
    "narrowed",
    "mean_frames",
    "parse_lookback",
    "prepare_many",
    "prepare_series",
    "floored_share",
    "path_info",
    "prices",
    "repair_bars",
    "PRICE_FLOOR",
    "resolve_lookback",
    "series_labels",
    "series_uniforms",
]

#: The ``lookback`` that fits the forecast into the model's context: ``max_context - pred_len`` bars.
AUTO = "auto"
#: ``lookback="auto"`` never conditions on fewer bars than this; a ``pred_len`` longer than
#: ``max_context - MIN_AUTO_LOOKBACK`` then slides the window during generation, as an explicit lookback would.
MIN_AUTO_LOOKBACK = 64
#: A lookback: ``"ensemble"``, ``"auto"``, a number of bars, ``None`` for every bar given, or a list (an ensemble).
Lookback = int | str | None | Sequence[int | str | None]
#: The default lookback of the forecast doors: a lookback ensemble of :data:`ENSEMBLE_LOOKBACKS`.
ENSEMBLE = "ensemble"
#: The windows of ``lookback="ensemble"``, longest first (a forecast of one path uses ``"auto"``). Measured on the
#: validation period of held-out series (``benchmarks/lookback_ensembles.py``): pooling them gives a lower CRPS,
#: better coverage and a smaller realised-volatility error than ``"auto"`` alone in every frequency group, and a
#: forecast that moves about a quarter as much when the windows do.
ENSEMBLE_LOOKBACKS: tuple[int | str, ...] = (AUTO, 128, 64)
#: The most windows :func:`parse_lookback` accepts in one ensemble (each costs a prefill of its own).
MAX_ENSEMBLE_WINDOWS = 8


def parse_lookback(value: Any) -> int | str | list[int | str]:
    """A lookback as a user writes it, checked and normalised: the one grammar of the CLI and the HTTP API.

    Accepts ``"ensemble"``, ``"auto"``, a number of bars >= 1 (an int or its digits), a comma-separated text such
    as ``"64,auto"``, or a list of 1 to :data:`MAX_ENSEMBLE_WINDOWS` numbers / ``"auto"`` (an ensemble); case and
    spaces do not matter. A text with one element is that single lookback; a list stays a list. Anything else
    raises :class:`InputError` naming the value (booleans are not numbers of bars).
    """

    def single(v: Any) -> int | str | None:
        if isinstance(v, str):
            text = v.strip().lower()
            if text == AUTO:
                return AUTO
            return int(text) if text.isdigit() and int(text) >= 1 else None
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            return None
        return int(v) if v >= 1 else None

    if isinstance(value, str) and value.strip().lower() == ENSEMBLE:
        return ENSEMBLE
    text = isinstance(value, str)
    parts = value.split(",") if text else value
    if isinstance(parts, (list, tuple)):
        members = [single(v) for v in parts]
        if 1 <= len(members) <= MAX_ENSEMBLE_WINDOWS and all(m is not None for m in members):
            return members[0] if text and len(members) == 1 else members  # type: ignore[return-value]
    else:
        one = single(parts)
        if one is not None:
            return one
    raise InputError(
        "lookback must be 'ensemble', 'auto', a number of bars >= 1, or a list of 1 to "
        f"{MAX_ENSEMBLE_WINDOWS} of those (an ensemble, e.g. '64,auto'), got {value!r}"
    )


def ensemble_members(lookback: Any, max_context: int, pred_len: int) -> list[int | None] | None:
    """The windows (bars, ``None``: every bar) of a lookback ensemble, or ``None`` for a single lookback.

    ``"ensemble"`` is :data:`ENSEMBLE_LOOKBACKS` with no window longer than ``"auto"`` (a model with a short context
    gets shorter windows, never a sliding one); a list is resolved member by member, as given.
    """
    if isinstance(lookback, str) and lookback.strip().lower() == ENSEMBLE:
        auto = max(int(max_context) - int(pred_len), MIN_AUTO_LOOKBACK)
        return [auto if m == AUTO else min(int(m), auto) for m in ENSEMBLE_LOOKBACKS]
    if isinstance(lookback, (list, tuple)):
        members = list(lookback)
        if not members:
            raise InputError("lookback is an empty list: give 'auto', a number of bars, or a list of them")
        for m in members:
            if isinstance(m, (list, tuple)) or (isinstance(m, str) and m.strip().lower() == ENSEMBLE):
                raise InputError(f"a lookback ensemble lists single lookbacks, got {m!r} inside one")
        return [resolve_lookback(m, max_context, pred_len) for m in members]
    return None


def resolve_lookback(lookback: Lookback, max_context: int, pred_len: int) -> int | None:
    """The number of history bars a forecast conditions on (``None``: every bar given).

    ``"auto"`` is ``max(max_context - pred_len, MIN_AUTO_LOOKBACK)``; an int is used as given. For an ensemble
    (``"ensemble"`` or a list) it is the longest window.
    """
    if lookback is None:
        return None
    windows = ensemble_members(lookback, max_context, pred_len)
    if windows is not None:
        return None if None in windows else max(w for w in windows if w is not None)
    if isinstance(lookback, str):
        if lookback.strip().lower() != AUTO:
            raise InputError(
                "lookback must be 'ensemble', 'auto', a positive number of bars, a list of them or None, "
                f"got {lookback!r}"
            )
        return max(int(max_context) - int(pred_len), MIN_AUTO_LOOKBACK)
    return positive_int("lookback", lookback)


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


def check_seed(seed: Any, name: str = "seed") -> int:
    """A seed as an ``int``, or an :class:`InputError` naming it: ``seed="abc"`` or ``True`` is refused, not cast."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise InputError(f"{name} must be an integer, got {seed!r}")
    return int(seed)


def series_uniforms(seed: int, sample_count: int, pred_len: int, first_path: int = 0) -> torch.Tensor:
    """The draws ``(sample_count, pred_len, 2)`` in [0, 1) of one series' coarse and fine tokens, from its own seed.

    A CPU generator, so the same seed gives the same draws on every device and rank. ``first_path``: the
    draws of paths ``first_path ..`` of the same stream (the generator fills paths in order), so a forecast
    computed in slices of paths gets exactly the paths it gets in one call.
    """
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed) % (2**63))
    return torch.rand(first_path + sample_count, pred_len, 2, generator=gen)[first_path:]


def prepare_series(
    c: Components,
    df: pd.DataFrame,
    x_timestamp: Any,
    y_timestamp: Any,
    pred_len: int,
    label: str | None,
    lookback: int | None = None,
    first_row: int = 0,
) -> Prepared:
    """One series checked and normalised by ``c`` on its last ``lookback`` bars (``None``: all of them);
    errors start with ``label`` when given (``series 3:``) and name rows as the user's frame numbers them
    (``first_row``: the row of ``df``'s first bar there, when a caller has already cut it). Bars before the window
    are not read."""
    x_idx = validate_timestamps(x_timestamp, name="x_timestamp", expected_len=len(df), label=label)
    given, first = len(df), first_row
    if lookback is not None and given > lookback:
        first += given - lookback
        df, x_idx = df.iloc[given - lookback :], x_idx[given - lookback :]
    x = prepare_features(df, label=label, first_row=first)
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


def narrowed(c: Components, p: Prepared, lookback: int | None) -> Prepared:
    """The same series on its last ``lookback`` bars (``None`` or more than it has: unchanged), normalised on them:
    what :func:`prepare_series` gives for that window, without checking the bars again."""
    if lookback is None or lookback >= len(p.x):
        return p
    raw = p.history.to_numpy()[-lookback:]
    norm = c.normalizer(raw)
    return Prepared(
        x=norm.transform(raw),
        x_stamp=p.x_stamp[-lookback:],
        y_stamp=p.y_stamp,
        norm=norm,
        y_index=p.y_index,
        history=p.history.iloc[-lookback:],
        last_close=p.last_close,
    )


def prepare_many(
    c: Components,
    df_list: Sequence[pd.DataFrame],
    xs: Sequence[Any],
    ys: Sequence[Any],
    pred_len: int,
    labels: Sequence[str | None],
    lookback: int | None | Sequence[int | None] = None,
) -> list[Prepared]:
    """Every series prepared on its last ``lookback`` bars (one for all, or one per series); errors start with
    the series' label (:func:`series_labels`)."""
    check_series_lists(df_list, xs, ys)
    windows = list(lookback) if isinstance(lookback, Sequence) else [lookback] * len(df_list)
    return [
        prepare_series(c, df, x, y, pred_len, label=label, lookback=w)
        for df, x, y, w, label in zip(df_list, xs, ys, windows, labels)
    ]


def series_labels(count: int, labels: Sequence[Any] | None = None) -> list[str | None]:
    """What errors and notices call each of ``count`` series: ``labels`` when given (a panel's ids; ``[None]``: one
    series given alone, not named), else ``series i``, its place in the list."""
    if labels is None:
        return [f"series {i}" for i in range(count)]
    if isinstance(labels, str) or len(labels) != count:
        got = repr(labels) if isinstance(labels, str) else f"{len(labels)} labels"
        raise InputError(f"labels must name each of the {count} series, got {got}")
    return [None if label is None else str(label) for label in labels]


def check_series_lists(df_list: Sequence[pd.DataFrame], xs: Sequence[Any], ys: Sequence[Any]) -> None:
    """The list API's arguments: a non-empty list of frames with one history and one future time list each."""
    if isinstance(df_list, pd.DataFrame) or not isinstance(df_list, (list, tuple)):
        raise InputError("df_list must be a list of DataFrames")
    if not (len(df_list) == len(xs) == len(ys)):
        raise InputError(
            "df_list, x_timestamp_list and y_timestamp_list must have the same length, got "
            f"{len(df_list)}, {len(xs)}, {len(ys)}"
        )
    if len(df_list) == 0:
        raise InputError("df_list is empty")


#: A forecast price never falls below this share of the window's last close (a fall of 99.9999%). The model
#: de-normalises its z-scores (clipped at +-5) as ``mean + z std`` of the window, which is at or below zero when the
#: window's standard deviation is a fifth of its mean or more (a crash inside the window: GE's daily bars of 2008-09
#: gave one such path in 28,800 on the validation period), and a price at or below zero cannot exist.
PRICE_FLOOR = 1e-6


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


def prices(p: Prepared, z: np.ndarray) -> tuple[np.ndarray, float]:
    """Normalised paths of a prepared series back in prices, every bar repaired (prices floored at
    :data:`PRICE_FLOOR` of the last close): ``(paths, share repaired)``."""
    return repair_bars(p.norm.inverse(z.astype(np.float64)), PRICE_FLOOR * p.last_close)


def path_info(paths: np.ndarray, last_close: float, repaired: float) -> dict[str, float]:
    """What a forecast's ``info`` says of its paths: the share of bars repaired (``repaired_bars``) and of paths that
    collapsed to the price floor (``floored_paths``)."""
    return {"repaired_bars": repaired, "floored_paths": floored_share(paths, last_close)}


def floored_share(paths: np.ndarray, last_close: float) -> float:
    """Share of the forecast paths ``(n_paths, horizon, 6)`` with a price at the :data:`PRICE_FLOOR` (paths that
    collapsed: the model's price went to zero or below), as ``fc.info["floored_paths"]`` reports."""
    if paths.shape[0] == 0:
        return 0.0
    return float((paths[..., :4] <= PRICE_FLOOR * last_close).any(axis=(-2, -1)).mean())


def repair_bars(paths: np.ndarray, price_floor: float | None = None) -> tuple[np.ndarray, float]:
    """Bars that can exist, and the share of bars that needed a change: ``(paths, share)``.

    ``paths`` is ``(..., 6)`` in the model's column order (open, high, low, close, volume, amount). The
    model samples the six values of a bar from one token pair, so a sampled bar can have its low above
    its close or a negative volume. Each bar's high is raised to ``max(open, close)`` if below it, its low
    lowered to ``min(open, close)`` if above it, and negative volume and amount become 0; open and close
    are never moved, except that with ``price_floor`` every price is first raised to at least the floor
    (forecasts: :data:`PRICE_FLOOR` of the last close; synthetic series: an absolute floor). Afterwards
    ``low <= min(open, close) <= max(open, close) <= high`` for every bar, and so for the mean bar too.
    """
    out = np.array(paths, dtype=np.float64, copy=True)
    if out.shape[-1] != len(FEATURE_COLS):
        raise ValueError(f"bars must have {len(FEATURE_COLS)} features {FEATURE_COLS} last, got shape {out.shape}")
    before = out.copy() if price_floor is not None else None
    if price_floor is not None:
        np.maximum(out[..., :4], price_floor, out=out[..., :4])
    o, h, lo, c = out[..., 0], out[..., 1], out[..., 2], out[..., 3]
    top, bottom = np.maximum(o, c), np.minimum(o, c)
    bad = (h < top) | (lo > bottom) | (out[..., 4] < 0) | (out[..., 5] < 0)
    out[..., 1] = np.maximum(h, top)
    out[..., 2] = np.minimum(lo, bottom)
    np.maximum(out[..., 4:6], 0.0, out=out[..., 4:6])
    if before is not None:
        bad = np.any(out != before, axis=-1)
    return out, float(bad.mean()) if bad.size else 0.0


def left_padded(arrays: list[np.ndarray]) -> np.ndarray:
    """Rows ``(n, t_i, d)`` stacked into ``(n, max t_i, d)`` float32, zero-padded on the left (masked later)."""
    width = max(len(a) for a in arrays)
    batch = np.zeros((len(arrays), width, arrays[0].shape[1]), dtype=np.float32)
    for row, a in enumerate(arrays):
        batch[row, width - len(a) :] = a
    return batch
