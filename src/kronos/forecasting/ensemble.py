"""Lookback ensembles: one forecast from several windows of the same history, their paths pooled.

Why: a forecast's slope depends on how much history it conditions on, and users see it move when they change the
lookback. Pooling the paths of windows of ``max_context - pred_len``, 128 and 64 bars (the default
``lookback="ensemble"``, :data:`~kronos.forecasting.prepared.ENSEMBLE_LOOKBACKS`) gave a lower CRPS, better
coverage and a forecast that moves about a quarter as much when the windows do, on the validation period of
held-out series (``benchmarks/lookback_ensembles.py``).

How: the series is checked and prepared once at the widest window and narrowed to each other one
(:func:`~kronos.forecasting.prepared.narrowed`, each window normalised on its own bars); path ``p`` belongs to window
``p mod k``, so any slice of paths (the server's ``first_path``) is exactly that slice of the whole call; the
(series, window) pairs run as one padded batch for a few series or as one batch per window for many.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from kronos.forecasting.forecast import Forecast
from kronos.forecasting.prepared import check_series_lists, narrowed, path_info, prepare_series, prices
from kronos.forecasting.sampler import Draw, SeriesSampler
from kronos.inference.options import derive_seed

__all__ = ["SPLIT_SERIES", "ensemble_forecasts"]

#: From this many series on, a lookback ensemble runs one batch per window instead of one padded batch of all
#: windows: measured with kronos-open (50 paths, 12 bars, 2 cores), one padded batch is 0.14 s against 0.27 s for one
#: series, per-window batches 0.96 s against 1.20 s for 16 series (the short windows' padding costs prefill and
#: prefix attention; each extra batch costs its decode loop's overhead once).
SPLIT_SERIES = 6


def ensemble_forecasts(
    sampler: SeriesSampler,
    df_list: Sequence[pd.DataFrame],
    xs: Sequence[Any],
    ys: Sequence[Any],
    pred_len: int,
    draw: Draw,
    labels: Sequence[str | None],
    windows: Sequence[int | None],
    bars_given: Sequence[int] | None = None,
) -> list[Forecast]:
    """The forecasts of a lookback ensemble of ``windows`` (bars; ``None``: every bar) by ``sampler``.

    Path ``p`` belongs to window ``p mod k`` (as its path ``p // k``); every (series, window) pair is one row group
    (of one padded batch, or of its window's batch for many series), its seeds derived from the series' seeds.
    Round-robin, so the paths ``first_path ..`` of a slice are exactly those of one whole call (up to rounding), and
    one path is the first window's. ``bars_given``: the histories' lengths before any cut by the caller (default:
    the frames' own), as ``info["bars_given"]`` says.
    """
    check_series_lists(df_list, xs, ys)
    opts, seeds, first_path = draw.opts, draw.seeds, draw.first_path
    if not isinstance(first_path, int):
        raise TypeError("an ensemble's paths start at one first_path for every series")
    k, total = len(windows), opts.sample_count
    start, stop = first_path, first_path + total
    spans = [(max(-(-(start - j) // k), 0), -(-(stop - j) // k)) for j in range(k)]  # window j's local paths
    active = [j for j, (lo, hi) in enumerate(spans) if hi > lo]
    widest = max(windows, key=lambda w: float("inf") if w is None else w)
    entries, entry_seeds, entry_first = [], [], []
    for i, (df, x, y) in enumerate(zip(df_list, xs, ys)):
        cut = 0 if bars_given is None else int(bars_given[i]) - len(df)  # rows the caller cut before the frame
        full = prepare_series(sampler.components, df, x, y, pred_len, labels[i], widest, first_row=cut)
        for j in active:
            entries.append(narrowed(sampler.components, full, windows[j]))
            entry_first.append(spans[j][0])
            if seeds is not None:
                entry_seeds.append(derive_seed(seeds[i], f"lookback member {j}"))
    if len(df_list) < SPLIT_SERIES:  # one padded run: per-step overhead paid once
        runs = [(list(range(len(entries))), max(spans[j][1] - spans[j][0] for j in active))]
    else:  # one run per window: no prefill or prefix attention spent on padding
        runs = [(list(range(jj, len(entries), len(active))), spans[j][1] - spans[j][0]) for jj, j in enumerate(active)]
    paths_z: list[np.ndarray] = [np.empty(0)] * len(entries)
    for idx, count in runs:
        run = dataclasses.replace(
            draw,
            opts=dataclasses.replace(opts, sample_count=count),
            seeds=None if seeds is None else [entry_seeds[e] for e in idx],
            first_path=[entry_first[e] for e in idx],
        )
        out = sampler._paths([entries[e] for e in idx], pred_len, run)
        for e, z in zip(idx, out):
            paths_z[e] = z
    info = {**opts.info(), "max_context": sampler.max_context}
    pooled = []
    for i, df in enumerate(df_list):
        group = range(i * len(active), (i + 1) * len(active))
        member: dict[int, tuple[np.ndarray, float]] = {}
        for e, j in zip(group, active):
            member[j] = prices(entries[e], paths_z[e][: spans[j][1] - spans[j][0]])
        paths = np.stack([member[p % k][0][p // k - spans[p % k][0]] for p in range(start, stop)])
        repaired = sum(member[j][1] * len(member[j][0]) for j in active) / total
        longest = max(group, key=lambda e: len(entries[e].x))
        used = [len(entries[e].x) for e in group]
        pooled.append(
            Forecast(
                paths=paths,
                timestamps=entries[longest].y_index,
                last_close=entries[longest].last_close,
                history=entries[longest].history,
                info={
                    **info,
                    "bars_given": len(df) if bars_given is None else int(bars_given[i]),
                    "bars_used": max(used),
                    "lookbacks": used,
                    **path_info(paths, entries[longest].last_close, repaired),
                },
            )
        )
    return pooled
