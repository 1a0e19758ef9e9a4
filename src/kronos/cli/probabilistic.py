"""``kronos forecast-dist``: the forecast distribution of one series, optionally calibrated, with plots."""

from __future__ import annotations

from pathlib import Path

import torch
import typer
from rich.console import Console
from rich.table import Table

from kronos.calendars import future_timestamps
from kronos.calibration import CalibrationOptions
from kronos.cli import app
from kronos.cli.forecast import RANDOM_TINY_HELP, TIME_COLUMN_HELP, load_predictor
from kronos.forecast import Forecast
from kronos.io import TIME_COL, read_bars
from kronos.preprocessing import InputError
from kronos.registry import DEFAULT_MODEL
from kronos.samples import sample_data_path

console = Console()


def _levels(text: str) -> list[float]:
    try:
        levels = sorted({float(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise InputError(f"--levels must be comma-separated numbers in (0, 1), got {text!r}") from None
    if not levels or not all(0 < x < 1 for x in levels):
        raise InputError(f"--levels must be comma-separated numbers in (0, 1), got {text!r}")
    return levels


def _table(fc: Forecast, level: float, title: str) -> Table:
    lo, hi = fc.interval(level)
    raw = fc.uncalibrated().interval(level) if fc.is_calibrated else None
    pct = round(level * 100)
    table = Table(title=title)
    cols = (
        ["time", "mean close", f"{pct}% low", f"{pct}% high"]
        + ([f"raw {pct}% low", f"raw {pct}% high"] if raw else [])
        + ["P(up)"]
    )
    for col in cols:
        table.add_column(col, justify="right")
    daily = bool((fc.timestamps == fc.timestamps.normalize()).all())
    mean, prob = fc.mean()["close"], fc.prob_up()
    for i, t in enumerate(fc.timestamps):
        row = [
            t.strftime("%Y-%m-%d" if daily else "%Y-%m-%d %H:%M"),
            f"{mean.iloc[i]:.6g}",
            f"{lo['close'].iloc[i]:.6g}",
            f"{hi['close'].iloc[i]:.6g}",
        ]
        if raw:
            row += [f"{raw[0]['close'].iloc[i]:.6g}", f"{raw[1]['close'].iloc[i]:.6g}"]
        table.add_row(*row, f"{prob.iloc[i]:.2f}")
    return table


def _write_csv(fc: Forecast, levels: list[float], out: Path) -> None:
    from kronos.hub import atomic_write_text

    frame = fc.mean().add_prefix("mean_")
    for q in sorted({round((1 - lv) / 2, 6) for lv in levels} | {round((1 + lv) / 2, 6) for lv in levels} | {0.5}):
        frame[f"close_q{q:g}"] = fc.quantile(q)["close"]  # type: ignore[index]
    frame["prob_up"] = fc.prob_up()
    frame["realized_vol_mean"] = fc.volatility_forecast(levels=())["mean"]
    atomic_write_text(out, frame.to_csv(index_label="timestamp"))


@app.command("forecast-dist")
def forecast_dist_command(
    data: Path | None = typer.Option(None, "--data", help="CSV or Parquet file of bars (default: the bundled sample)."),
    sample: str = typer.Option("googl", help="Bundled sample series when --data is not given: googl or eurusd."),
    model: str = typer.Option(
        DEFAULT_MODEL, help="Checkpoint directory, hub id or registry name (default: the shipped kronos-open)."
    ),
    random_tiny: bool = typer.Option(False, "--random-tiny", help=RANDOM_TINY_HELP, hidden=True),
    lookback: int = typer.Option(600, min=2, help="History bars to use (the last ones)."),
    pred_len: int = typer.Option(20, "--pred-len", min=1, help="Bars to forecast."),
    samples: int = typer.Option(100, min=1, help="Sample paths."),
    calibrate: bool = typer.Option(
        True, "--calibrate/--no-calibrate", help="Split-conformal calibration on rolling origins of the history."
    ),
    origins: int = typer.Option(20, min=1, help="Calibration origins."),
    stride: int | None = typer.Option(None, min=1, help="Bars between calibration origins (default: pred-len)."),
    levels: str = typer.Option("0.5,0.8,0.95", help="Central interval levels to draw (comma-separated)."),
    png: Path | None = typer.Option(None, help="Write the plot as PNG here."),
    html: Path | None = typer.Option(None, help="Write the interactive plot as HTML here."),
    csv: Path | None = typer.Option(None, help="Write mean, quantiles, prob_up and volatility here."),
    time_column: str | None = typer.Option(None, help=TIME_COLUMN_HELP),
    seed: int = typer.Option(0, help="Random seed."),
    device: str | None = typer.Option(None, help="cuda, mps or cpu (default: best available)."),
) -> None:
    """Forecast distribution of one series: quantile bands, a calibrated interval, P(up), plots."""
    lv = _levels(levels)
    df = read_bars(data if data is not None else sample_data_path(sample), time_column=time_column)
    hist = df.tail(lookback).reset_index(drop=True)
    tcol = TIME_COL
    predictor = load_predictor(model, device=device, random_tiny=random_tiny)
    torch.manual_seed(seed)
    fc = predictor.forecast(
        hist,
        hist[tcol],
        future_timestamps(hist[tcol], pred_len).rename(None),
        pred_len,
        sample_count=samples,
        verbose=True,
        calibrate=CalibrationOptions(origins=origins, stride=stride) if calibrate else False,
    )
    name = data.name if data is not None else f"sample {sample}"
    main_level = 0.8 if 0.8 in lv else lv[len(lv) // 2]
    console.print(
        _table(
            fc,
            main_level,
            f"{name}: {pred_len} bars ahead, {samples} paths" + (" (calibrated)" if fc.is_calibrated else ""),
        )
    )
    if fc.is_calibrated:
        summary = fc.calibration.coverage_summary()  # type: ignore[union-attr]
        cov = Table(title=f"coverage measured on {fc.calibration.n_origins} origins inside the history")  # type: ignore[union-attr]
        cov.add_column("")
        for level in summary.columns:
            cov.add_column(f"{round(level * 100)}% interval", justify="right")
        labels = {"before": "raw model", "after": "calibrated (in-sample)", "after_cv": "calibrated (cross-fitted)"}
        for kind, row in summary.iterrows():
            cov.add_row(labels.get(str(kind), str(kind)), *[f"{v:.2f}" for v in row])
        console.print(cov)
    if png is not None:
        console.print(f"wrote {fc.plot_png(png, levels=lv)}")
    if html is not None:
        console.print(f"wrote {fc.plot_html(html, levels=lv)}")
    if csv is not None:
        _write_csv(fc, lv, csv)
        console.print(f"wrote {csv}")
