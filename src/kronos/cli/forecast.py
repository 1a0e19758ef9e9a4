"""``kronos forecast`` and ``kronos demo``: forecast a CSV/Parquet series from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich.table import Table

from kronos.bars.calendars import market_times
from kronos.bars.reader import SYMBOL_COL, TIME_COL
from kronos.bars.samples import SAMPLE_FILES, load_sample
from kronos.cli.app import app
from kronos.cli.flags import (
    anchor_option,
    calendar_option,
    calibrate_option,
    device_option,
    lookback_option,
    max_context_option,
    model_option,
    origins_option,
    pred_len_option,
    random_tiny_option,
    samples_option,
    seed_option,
    splits_option,
    stride_option,
    temperature_option,
    top_k_option,
    top_p_option,
)
from kronos.cli.output import console, err_console
from kronos.core.errors import ParameterError
from kronos.core.files import check_writable
from kronos.forecasting.calibration import CalibrationOptions
from kronos.forecasting.forecast import Forecast
from kronos.forecasting.loading import load_predictor
from kronos.inference.options import SamplingOptions

TIME_COLUMN_HELP = (
    "Name of the time column (default: timestamps, timestamp, datetime, date or time in any case, or the time index)."
)


def note_calibration_cost(origins: int, samples: int, *, each_series: bool, by_default: bool) -> None:
    """Say before the wait what calibration costs and how to make it cheaper (``by_default``: it was not asked for,
    so name the flag that turns it off)."""
    if by_default:
        cheaper = "--no-calibrate (or fewer --origins / --samples) makes it fast"
    else:
        cheaper = "fewer --origins / --samples make it faster"
    who = "each series on" if each_series else "on"
    typer.echo(
        f"note: calibrating {who} {origins} origins of {samples} paths each samples {origins + 1}x what the forecast "
        f"alone does; {cheaper}",
        err=True,
    )


def note_random_tiny() -> None:
    """Say loudly that the hidden ``--random-tiny`` model is in use: its numbers mean nothing."""
    err_console().print(
        "[yellow]NOTE: --random-tiny: a RANDOMLY INITIALISED tiny model; the numbers mean nothing.[/yellow]"
    )


def bar_table(title: str, stamps: pd.DatetimeIndex, columns: list[str]) -> tuple[Table, str]:
    """A table with a time column (dates only when every bar is at midnight) and right-aligned value
    columns; returns it with the time format its rows use."""
    daily = bool((stamps == stamps.normalize()).all())
    table = Table(title=title)
    table.add_column("time", no_wrap=True, min_width=10 if daily else 16)
    for col in columns:
        table.add_column(col, justify="right")
    return table, "%Y-%m-%d" if daily else "%Y-%m-%d %H:%M"


def show_forecast(fc: Forecast, title: str, rows: int = 10) -> None:
    """Print the mean path with an 80% interval of the close."""
    mean = fc.mean()
    lo, hi = fc.interval(0.8)
    columns = ["open", "high", "low", "close", "close 10%", "close 90%", "P(up)"]
    table, time_format = bar_table(title, pd.DatetimeIndex(mean.index), columns)
    prob = fc.prob_up()
    fmt = "{:.5g}".format
    for i, t in enumerate(mean.index[:rows]):
        r = mean.iloc[i]
        table.add_row(
            t.strftime(time_format),
            fmt(r.open),
            fmt(r.high),
            fmt(r.low),
            fmt(r.close),
            fmt(lo.close.iloc[i]),
            fmt(hi.close.iloc[i]),
            f"{prob.iloc[i]:.2f}",
        )
    console().print(table)


@app.command("forecast")
def forecast_command(
    data: Path = typer.Option(
        ...,
        "--data",
        help="CSV or Parquet file of bars (timestamps, open, high, low, close[, volume, amount]); "
        "a panel has a symbol column.",
    ),
    model: str = model_option(),
    tokenizer: str | None = typer.Option(None, help="Tokenizer directory or hub id, when --model is a bare model."),
    lookback: Any = lookback_option(),
    pred_len: int = pred_len_option(),
    samples: int = samples_option(),
    temperature: float = temperature_option(),
    top_k: int = top_k_option(),
    top_p: float = top_p_option(),
    max_context: int | None = max_context_option(),
    time_column: str | None = typer.Option(None, help=TIME_COLUMN_HELP),
    id_column: str = typer.Option(
        "symbol", "--id-column", help="Series id column of a panel (absent: one series, named after the file)."
    ),
    out: Path | None = typer.Option(
        None,
        help="Write the long forecast (symbol, timestamps, means, {column}_q{level}): Parquet for .parquet, else CSV.",
    ),
    seed: int = seed_option(),
    device: str | None = device_option(),
    calendar: str = calendar_option(),
    future_timestamps_file: Path | None = typer.Option(
        None,
        "--future-timestamps",
        help="CSV/Parquet of future times (time column, and symbol column for per-series times).",
    ),
    quantiles: str = typer.Option(
        "0.1,0.5,0.9", help="Comma-separated quantile levels written as {column}_q{level} (close_q0.1)."
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", min=1, help="Series per model batch (default: what fits ~2 GiB of cache)."
    ),
    random_tiny: bool = random_tiny_option(),
    splits: bool = splits_option(),
    anchor: bool = anchor_option(),
    calibrate: bool = calibrate_option(False),
    origins: int = origins_option(),
    stride: int | None = stride_option(),
) -> None:
    """Forecast the next bars of one series or of every series of a panel (shard it with torchrun).

    The quantiles and P(up) are the model's own unless --calibrate: calibration samples --origins more forecasts
    per series, which a panel of hundreds of series feels, so it is asked for here (forecast-dist, one series,
    calibrates by default)."""
    from kronos.forecasting.sharded import run_forecast

    if out is not None:
        check_writable(out)  # before minutes of sampling, not after
    try:
        levels = [float(q) for q in quantiles.split(",") if q.strip()]
    except ValueError:
        raise ParameterError("quantiles", f"must be comma-separated numbers, got {quantiles!r}") from None
    if random_tiny:
        note_random_tiny()
    if calibrate:
        note_calibration_cost(origins, samples, each_series=True, by_default=False)
    result, ctx = run_forecast(
        data=data,
        model=model,
        tokenizer=tokenizer,
        lookback=lookback,
        pred_len=pred_len,
        options=SamplingOptions(
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            sample_count=samples,
            batch_size=batch_size,
            anchor=anchor,
        ),
        max_context=max_context,
        time_column=time_column,
        id_column=id_column,
        out=out,
        seed=seed,
        device=device,
        calendar=calendar,
        future_timestamps=future_timestamps_file,
        quantiles=levels,
        random_tiny=random_tiny,
        splits=splits,
        calibrate=CalibrationOptions(origins=origins, stride=stride) if calibrate else False,
    )
    if result is None or ctx.rank != 0:
        return
    say_calendars(result.attrs.get("calendars", {}), calendar)
    n_series = result[SYMBOL_COL].nunique()
    first = result[result[SYMBOL_COL] == result[SYMBOL_COL].iloc[0]]
    name = first[SYMBOL_COL].iloc[0]
    title = f"{data.name}: {name}, {pred_len} bars ahead, {samples} paths" + (" (calibrated)" if calibrate else "")
    caption = None if calibrate else "quantiles and P(up): the model's own; --calibrate calibrates them per series"
    show_long_forecast(first, TIME_COL, title, caption=caption)
    if out is not None:
        console().print(f"wrote {len(result)} rows for {n_series} series to {out}")


def say_calendars(used: dict[Any, str | None], calendar: str) -> None:
    """One line on stderr: which exchange calendar (or the learnt schedule) gave the future times."""
    if not used:
        return
    counts = pd.Series([name or "the learnt schedule" for name in used.values()]).value_counts()
    parts = ", ".join(f"{name} ({n} series)" if len(used) > 1 else str(name) for name, n in counts.items())
    err_console().print(f"future times (--calendar {calendar}): {parts}")


def show_long_forecast(
    frame: pd.DataFrame, time_col: str, title: str, rows: int = 10, caption: str | None = None
) -> None:
    """Print one series of a long forecast frame: mean OHLC and the close quantiles (``caption`` below them)."""
    stamps = pd.DatetimeIndex(frame[time_col])
    qcols = [c for c in frame.columns if c.startswith("close_q")]
    headers = [c.replace("_q", " q") for c in ("open", "high", "low", "close", *qcols)]
    table, time_format = bar_table(title, stamps, headers)
    table.caption = caption
    fmt = "{:.5g}".format
    for i in range(min(rows, len(frame))):
        r = frame.iloc[i]
        table.add_row(
            stamps[i].strftime(time_format),
            *(fmt(r[c]) for c in ("open", "high", "low", "close", *qcols)),
        )
    console().print(table)


@app.command("demo")
def demo_command(
    sample: str = typer.Option("googl", help="Bundled sample series: googl (daily) or eurusd (hourly)."),
    lookback: Any = lookback_option(),
    pred_len: int = pred_len_option(),
    samples: int = samples_option(),
    seed: int = seed_option(),
    model: str = model_option(),
    calendar: str = calendar_option(),
    random_tiny: bool = random_tiny_option(),
) -> None:
    """Forecast the bundled sample data with the shipped model: proves the install works, offline."""
    hist = load_sample(sample)
    if random_tiny:
        note_random_tiny()
    predictor = load_predictor(model, random_tiny=random_tiny)
    if not random_tiny:
        console().print(f"model: {model} (context {predictor.max_context} bars)")
    future = market_times(hist["timestamps"], pred_len, calendar=calendar)
    err_console().print(f"future times: {future.note}")
    fc = predictor.forecast(
        hist,
        hist["timestamps"],
        future.times.rename(None),
        pred_len,
        sample_count=samples,
        seed=seed,
        lookback=lookback,
        verbose=True,
    )
    show_forecast(
        fc, f"{SAMPLE_FILES[sample.lower()]}: last close {fc.last_close:.4f}, {pred_len} bars ahead", rows=pred_len
    )
