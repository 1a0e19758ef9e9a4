"""DataFrame front-ends of the other tasks the model gives almost for free: anomaly scores and embeddings.

Each turns user frames into normalised, tokenised windows exactly as forecasting does (the same
:mod:`kronos.bars.preprocessing`), calls the model code in :mod:`kronos.forecasting.anomaly` or
:mod:`kronos.forecasting.embeddings`, and returns pandas. Synthetic generation lives in
:mod:`kronos.forecasting.synthesis`;
the realised-volatility forecast is a view on a :class:`~kronos.forecasting.forecast.Forecast`. Every function
takes the :class:`~kronos.forecasting.components.Components` it needs (``predictor.components``), not a predictor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from kronos.bars.preprocessing import calendar_features, prepare_features, validate_timestamps
from kronos.core.errors import InputError
from kronos.core.validation import integer, one_of, positive_int
from kronos.forecasting.anomaly import last_bar_nll, token_nll
from kronos.forecasting.components import Components
from kronos.forecasting.embeddings import POOLING, pooled_hidden_states

__all__ = ["anomaly_scores", "embed", "embed_frames", "embed_rolling"]


def _normalised(
    c: Components,
    df: pd.DataFrame,
    x_timestamp: Any,
    label: str | None,
    *,
    check_bar_rules: bool = True,
    keep: int | None = None,
) -> tuple[np.ndarray, np.ndarray, pd.DatetimeIndex]:
    """The last ``keep`` bars (all: ``None``) checked, normalised on exactly themselves, with their stamps."""
    idx = validate_timestamps(x_timestamp, name="x_timestamp", expected_len=len(df), label=label)
    if keep is not None and len(df) > keep:
        df, idx = df.iloc[len(df) - keep :], idx[len(idx) - keep :]
    x = prepare_features(df, label=label, check_bar_rules=check_bar_rules)
    return c.normalizer(x).transform(x), calendar_features(idx), idx


@torch.no_grad()
def _tokens(c: Components, x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    s1, s2 = c.tokenizer.encode(c.tensor(x), half=True)
    return s1, s2


def anomaly_scores(
    c: Components,
    df: pd.DataFrame,
    x_timestamp: Any,
    *,
    causal: bool = True,
    min_context: int = 8,
    stride: int | None = None,
    batch_size: int = 128,
) -> pd.DataFrame:
    """Per-bar surprise of the model, indexed by ``x_timestamp``.

    Columns: ``nll_s1`` and ``nll_s2`` (negative log-likelihood, nats, of the bar's coarse token and of
    its fine token given the coarse one, conditioned on the bars before it) and ``score`` (their sum).

    * ``causal=True`` (default): bar ``t`` is normalised and tokenised with the mean and std of the
      (up to ``max_context``) bars before it, exactly as a one-step forecast made at ``t - 1`` sees it;
      nothing after ``t`` is used, so a score never changes when later bars arrive. The first
      ``min_context`` bars are NaN. Cost: one batched window per bar.
    * ``causal=False``: the whole frame is normalised at once and scored in one pass (sliding windows
      ``stride`` bars apart past ``max_context``); much faster, but the normalisation sees every bar,
      so an extreme bar shifts the scores of the others a little. Only the first bar is NaN.

    Impossible bars (high below low, open or close; negative volume) are scored, not refused: they are
    among the things this score exists to find. See :mod:`kronos.forecasting.anomaly`.
    """
    if stride is not None:
        positive_int("stride", stride)
    integer("min_context", min_context, minimum=2)
    positive_int("batch_size", batch_size)
    if not causal:
        x, stamp, idx = _normalised(c, df, x_timestamp, None, check_bar_rules=False)
        s1, s2 = _tokens(c, x[None])
        nll1, nll2 = token_nll(c.model, s1, s2, c.tensor(stamp[None]), c.max_context, stride=stride)
        a, b = nll1[0].cpu().numpy().astype(np.float64), nll2[0].cpu().numpy().astype(np.float64)
        return pd.DataFrame({"nll_s1": a, "nll_s2": b, "score": a + b}, index=idx)
    raw = prepare_features(df, check_bar_rules=False)  # impossible bars (high < low ...) are what it should flag
    idx = validate_timestamps(x_timestamp, name="x_timestamp", expected_len=len(df))
    stamps = calendar_features(idx)
    a = np.full(len(df), np.nan)
    b = np.full(len(df), np.nan)
    targets = list(range(min_context, len(df)))
    for start in range(0, len(targets), batch_size):
        chunk = targets[start : start + batch_size]
        width = min(c.max_context, chunk[-1]) + 1
        xs = np.zeros((len(chunk), width, raw.shape[1]), dtype=np.float32)
        st = np.zeros((len(chunk), width, stamps.shape[1]), dtype=np.float32)
        lengths = []
        for row, t in enumerate(chunk):
            n = min(c.max_context, t)
            xs[row, : n + 1] = c.normalizer(raw[t - n : t]).transform(raw[t - n : t + 1])  # fitted on the past only
            st[row, : n + 1] = stamps[t - n : t + 1]
            lengths.append(n + 1)
        n1, n2 = last_bar_nll(c.tokenizer, c.model, c.tensor(xs), c.tensor(st), torch.tensor(lengths, device=c.device))
        a[chunk], b[chunk] = n1.cpu().numpy(), n2.cpu().numpy()
    return pd.DataFrame({"nll_s1": a, "nll_s2": b, "score": a + b}, index=idx)


def _embed_batch(c: Components, xs: np.ndarray, stamps: np.ndarray, pool: str) -> np.ndarray:
    s1, s2 = _tokens(c, xs)
    keep = c.max_context
    st = c.tensor(stamps[:, -keep:])
    return pooled_hidden_states(c.model, s1[:, -keep:], s2[:, -keep:], st, pool=pool).cpu().numpy()


def embed(
    c: Components, df: pd.DataFrame | Sequence[pd.DataFrame], x_timestamp: Any, *, pool: str = "mean"
) -> np.ndarray:
    """Pooled final hidden states: ``(d_model,)`` for one frame, ``(n, d_model)`` for a list of frames
    (then ``x_timestamp`` is the list of their timestamps); see :func:`embed_frames`."""
    if isinstance(df, pd.DataFrame):
        return embed_frames(c, [df], [x_timestamp], pool=pool)[0]
    return embed_frames(c, df, x_timestamp, pool=pool)


def embed_frames(
    c: Components,
    df_list: Sequence[pd.DataFrame],
    x_timestamp_list: Sequence[Any],
    *,
    pool: str = "mean",
) -> np.ndarray:
    """``(n_frames, d_model)`` embeddings, one per frame: its last ``max_context`` bars (the model's context),
    normalised on exactly those, so a longer history embeds like its tail. Frames of equal length run as one
    batch."""
    one_of("pool", pool, POOLING)
    if isinstance(df_list, pd.DataFrame) or len(df_list) != len(x_timestamp_list) or len(df_list) == 0:
        raise InputError("embed needs a non-empty list of DataFrames and a list of their timestamps of the same length")
    prepared = [
        _normalised(c, df, xt, f"frame {i}" if len(df_list) > 1 else None, keep=c.max_context)
        for i, (df, xt) in enumerate(zip(df_list, x_timestamp_list))
    ]
    out = np.zeros((len(prepared), c.model.d_model))
    groups: dict[int, list[int]] = {}
    for i, (x, _, _) in enumerate(prepared):
        groups.setdefault(len(x), []).append(i)
    for members in groups.values():
        out[members] = _embed_batch(
            c, np.stack([prepared[i][0] for i in members]), np.stack([prepared[i][1] for i in members]), pool
        )
    return out


def embed_rolling(
    c: Components,
    df: pd.DataFrame,
    x_timestamp: Any,
    window: int,
    *,
    stride: int = 1,
    pool: str = "mean",
    batch_size: int = 256,
) -> pd.DataFrame:
    """Embeddings of rolling windows of ``window`` bars, ``stride`` bars apart, for regime work.

    Returns a DataFrame indexed by each window's last timestamp with columns ``e0 .. e{d-1}``; each window
    is normalised on its own, so only information up to its last bar is used.
    """
    for name, value in (("window", window), ("stride", stride), ("batch_size", batch_size)):
        positive_int(name, value)
    one_of("pool", pool, POOLING)
    if window < 2:
        raise InputError("window must hold at least 2 bars")
    x = prepare_features(df)
    idx = validate_timestamps(x_timestamp, name="x_timestamp", expected_len=len(df))
    if len(df) < window:
        raise InputError(f"the series has {len(df)} bars, fewer than one window of {window}")
    stamps = calendar_features(idx)
    ends = list(range(window - 1, len(df), stride))
    rows = []
    for b in range(0, len(ends), batch_size):
        chunk = ends[b : b + batch_size]
        xs = []
        for e in chunk:
            w = x[e + 1 - window : e + 1].astype(np.float32)
            xs.append(c.normalizer(w).transform(w))
        rows.append(_embed_batch(c, np.stack(xs), np.stack([stamps[e + 1 - window : e + 1] for e in chunk]), pool))
    values = np.concatenate(rows)
    return pd.DataFrame(values, index=idx[ends], columns=[f"e{i}" for i in range(values.shape[1])])
