"""Forecasting a panel file, long-format in and out, sharded over ``torchrun`` ranks (``kronos forecast``).

Every process of a ``torchrun`` job (one or many machines) reads the panel, forecasts its share of
the series (series ``i`` goes to rank ``i % world_size``), and writes its part to
``.{out}.parts/`` beside the output; rank 0 waits for all parts and assembles the output atomically
in the order of the input. Each series samples from its own seed (:func:`kronos.forecasting.panel.series_seed`),
so the output is identical to a single process. Across machines the output folder must be on a
shared file system (as for training's ``output_dir``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from kronos.bars.reader import SYMBOL_COL, TIME_COL, read_bars, read_table, series_name, write_table
from kronos.core.distributed import DistEnv, barrier, setup_distributed, teardown_distributed
from kronos.core.errors import InputError, ParameterError
from kronos.forecasting.prepared import Lookback
from kronos.inference.options import SamplingOptions

__all__ = ["run_forecast"]


def run_forecast(
    *,
    data: Path,
    model: str,
    tokenizer: str | None,
    lookback: Lookback,
    pred_len: int,
    options: SamplingOptions,
    max_context: int | None,
    time_column: str | None,
    id_column: str,
    out: Path | None,
    seed: int,
    device: str | None,
    calendar: str | None,
    future_timestamps: Path | None,
    quantiles: Sequence[float],
    verbose: bool = True,
    random_tiny: bool = False,
    splits: bool = True,
    calibrate: Any = False,
) -> tuple[pd.DataFrame | None, DistEnv]:
    """Forecast every series of the bar file ``data`` (read by :func:`kronos.bars.reader.read_bars`); returns
    the long frame of :func:`kronos.forecasting.panel.output_columns` on rank 0 (None on other ranks), written
    to ``out`` when given.
    ``future_timestamps`` is a file of future times; ``lookback`` (``"ensemble"``, ``"auto"``, bars, a list, or None for
    all) is the window(s) each series conditions on; ``splits``: undo share splits left in the bars; ``calibrate``
    (``False``, ``True`` or a ``CalibrationOptions``): calibrate each series on its own history. Errors name the
    parameter."""
    from kronos.forecasting.loading import load_predictor
    from kronos.forecasting.panel import forecast_df, split_panel

    df = read_bars(data, time_column=time_column, symbol_column=id_column)  # checked as evaluate/train check it
    # the output speaks Nixtla's names when the file did
    names = {k: v for k, v in df.attrs.get("source_names", {}).items() if v in ("ds", "unique_id")}
    if SYMBOL_COL not in df.columns:  # one series: named after the file
        df = df.assign(**{SYMBOL_COL: series_name(data)})
    future = None
    if future_timestamps is not None:
        future = read_table(future_timestamps, time_column=TIME_COL, symbol_column=SYMBOL_COL)
    # the training's process-group setup: NCCL on CUDA (each rank on its local GPU), gloo on CPU
    env = setup_distributed(device or "auto") if int(os.environ.get("WORLD_SIZE", "1")) > 1 else DistEnv()
    try:
        if env.distributed:
            _parts_dir(out)  # every rank refuses a missing --out before any sampling
        keys = list(split_panel(df[[SYMBOL_COL, TIME_COL]], SYMBOL_COL, TIME_COL))
        mine = keys[env.rank :: env.world_size]
        predictor = load_predictor(
            model,
            tokenizer=tokenizer,
            max_context=max_context,
            device=str(env.device) if env.distributed else device,
            random_tiny=random_tiny,
        )
        part = None
        if mine:
            part = forecast_df(
                predictor,
                df[df[SYMBOL_COL].isin(mine)],
                pred_len,
                options,
                id_col=SYMBOL_COL,
                time_col=TIME_COL,
                quantiles=quantiles,
                seed=seed,
                lookback=lookback,
                calendar=calendar,
                future_timestamps=future,
                verbose=verbose and env.is_main,
                splits=splits,
                calibrate=calibrate,
            )
        result = _assemble(part, keys, out, env) if env.distributed else part
        if result is not None and out is not None and env.is_main:
            write_table(result.rename(columns=names), out)
        return result, env
    finally:
        teardown_distributed(env)


def _parts_dir(out: Path | None) -> Path:
    if out is None:
        raise ParameterError(
            "out", "a forecast under torchrun needs an output file (each rank writes its part beside it)"
        )
    return out.parent / f".{out.name}.parts"


def _assemble(part: pd.DataFrame | None, keys: list[Any], out: Path | None, env: DistEnv) -> pd.DataFrame | None:
    """Each rank writes its part; rank 0 reads them all back in input order (the parts are then removed)."""
    parts = _parts_dir(out)
    if part is not None:
        write_table(part, parts / f"rank{env.rank:05d}.parquet")
    barrier(env)
    result = None
    if env.rank == 0:
        frames = [pd.read_parquet(p) for p in sorted(parts.glob("rank*.parquet"))]
        merged = pd.concat(frames, ignore_index=True)
        order = {k: i for i, k in enumerate(keys)}
        merged = merged.iloc[merged[SYMBOL_COL].map(order).argsort(kind="stable")].reset_index(drop=True)
        if merged[SYMBOL_COL].nunique() != len(keys):
            missing = sorted(set(keys) - set(merged[SYMBOL_COL]), key=str)[:5]
            raise InputError(f"assembled forecast lacks series {missing}: a rank's part is missing in {parts}")
        result = merged
    barrier(env)
    if env.rank == 0:
        shutil.rmtree(parts, ignore_errors=True)
    return result
