"""Forecasting a panel file, long-format in and out, sharded over ``torchrun`` ranks (``kronos forecast``).

Every process of a ``torchrun`` job (one or many machines) reads the panel, forecasts its share of
the series (series ``i`` goes to rank ``i % world_size``), and writes its part to
``.{out}.parts/`` beside the output; rank 0 waits for all parts and assembles the output atomically
in the order of the input. Each series samples from its own seed (:func:`kronos.panel.series_seed`),
so the output is identical to a single process. Across machines the output folder must be on a
shared file system (as for training's ``output_dir``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from kronos.errors import InputError, ParameterError
from kronos.fileio import atomic_write

__all__ = ["DistContext", "dist_context", "run_forecast", "write_table"]

PARQUET_SUFFIXES = {".parquet", ".pq"}


@dataclass
class DistContext:
    """This process's place in a ``torchrun`` job (rank 0 of 1 without one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised: bool = False

    def barrier(self) -> None:
        if self.initialised:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.initialised:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.initialised = False


def dist_context(device: str | None) -> DistContext:
    """Join the ``torchrun`` job described by the environment (gloo on CPU, NCCL on CUDA), if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    import torch
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))
    if cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local, initialised=True)


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` atomically as Parquet (``.parquet``/``.pq``) or CSV (anything else), without its index."""
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def run_forecast(
    *,
    data: Path,
    model: str,
    tokenizer: str | None,
    lookback: int | None,
    pred_len: int,
    samples: int,
    temperature: float,
    top_p: float,
    top_k: int = 0,
    max_context: int | None,
    time_column: str | None,
    id_column: str,
    out: Path | None,
    seed: int,
    device: str | None,
    calendar: str | None,
    future_timestamps: Path | None,
    quantiles: Sequence[float],
    batch_size: int | None,
    verbose: bool = True,
    random_tiny: bool = False,
) -> tuple[pd.DataFrame | None, DistContext]:
    """Forecast every series of the bar file ``data`` (read by :func:`kronos.io.read_bars`); returns the long
    frame of :func:`kronos.panel.output_columns` on rank 0 (None on other ranks), written to ``out`` when given.
    ``future_timestamps`` is a file of future times; ``lookback`` None gives each series all its bars (the
    model attends to its last ``max_context``). Errors name the parameter."""
    from kronos.io import SYMBOL_COL, TIME_COL, read_bars, read_table, series_name
    from kronos.loading import load_predictor
    from kronos.panel import forecast_df, split_panel

    df = read_bars(data, time_column=time_column, symbol_column=id_column)  # checked as evaluate/train check it
    time_column, id_column = TIME_COL, SYMBOL_COL  # read_bars' canonical names
    id_col: str | None = id_column
    if id_column not in df.columns:  # one series: named after the file
        df = df.assign(**{id_column: series_name(data)})
    future = None
    if future_timestamps is not None:
        future = read_table(future_timestamps, time_column=time_column, symbol_column=id_column)
    ctx = dist_context(device)
    try:
        if ctx.initialised:
            _parts_dir(out)  # every rank refuses a missing --out before any sampling
        keys = list(split_panel(df[[id_column, time_column]], id_col, time_column))
        mine = keys[ctx.rank :: ctx.world_size]
        dev = (
            f"cuda:{ctx.local_rank}"
            if ctx.initialised and (device is None or device == "cuda") and _has_cuda()
            else device
        )
        predictor = load_predictor(
            model, tokenizer=tokenizer, max_context=max_context, device=dev, random_tiny=random_tiny
        )
        part = None
        if mine:
            part = forecast_df(
                predictor,
                df[df[id_column].isin(mine)],
                pred_len,
                id_col=id_col,
                time_col=time_column,
                quantiles=quantiles,
                sample_count=samples,
                seed=seed,
                lookback=lookback,
                calendar=calendar,
                future_timestamps=future,
                T=temperature,
                top_k=top_k,
                top_p=top_p,
                batch_size=batch_size,
                verbose=verbose and ctx.rank == 0,
            )
        if not ctx.initialised:
            result = part
        else:
            result = _assemble(part, keys, id_column, out, ctx)
        if result is not None and out is not None and ctx.rank == 0:
            write_table(result, out)
        return result, ctx
    finally:
        ctx.close()


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _parts_dir(out: Path | None) -> Path:
    if out is None:
        raise ParameterError(
            "out", "a forecast under torchrun needs an output file (each rank writes its part beside it)"
        )
    return out.parent / f".{out.name}.parts"


def _assemble(
    part: pd.DataFrame | None, keys: list[Any], id_column: str, out: Path | None, ctx: DistContext
) -> pd.DataFrame | None:
    """Each rank writes its part; rank 0 reads them all back in input order (the parts are then removed)."""
    parts = _parts_dir(out)
    if part is not None:
        write_table(part, parts / f"rank{ctx.rank:05d}.parquet")
    ctx.barrier()
    result = None
    if ctx.rank == 0:
        frames = [pd.read_parquet(p) for p in sorted(parts.glob("rank*.parquet"))]
        merged = pd.concat(frames, ignore_index=True)
        order = {k: i for i, k in enumerate(keys)}
        merged = merged.iloc[merged[id_column].map(order).argsort(kind="stable")].reset_index(drop=True)
        if merged[id_column].nunique() != len(keys):
            missing = sorted(set(keys) - set(merged[id_column]), key=str)[:5]
            raise InputError(f"assembled forecast lacks series {missing}: a rank's part is missing in {parts}")
        result = merged
    ctx.barrier()
    if ctx.rank == 0:
        shutil.rmtree(parts, ignore_errors=True)
    return result
