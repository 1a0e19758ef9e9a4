"""``kronos forecast-dist``: the forecast distribution of one series, optionally calibrated, with plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich.table import Table

from kronos.bars.calendars import market_times
from kronos.bars.reader import SYMBOL_COL, TIME_COL, read_bars
from kronos.bars.samples import sample_data_path
from kronos.cli.app import app
from kronos.cli.flags import (
    anchor_option,
    calendar_option,
    calibrate_option,
    device_option,
    lookback_option,
    model_option,
    origins_option,
    pred_len_option,
    random_tiny_option,
    samples_option,
    seed_option,
    splits_option,
    stride_option,
)
from kronos.cli.forecast import TIME_COLUMN_HELP, bar_table, note_calibration_cost, note_random_tiny
from kronos.cli.output import console, err_console
from kronos.core.errors import ParameterError
from kronos.forecasting.calibration import CalibrationOptions
from kronos.forecasting.forecast import Forecast
from kronos.forecasting.loading import load_predictor
from kronos.forecasting.panel import level_name, output_columns
from kronos.forecasting.prepared import ensemble_members, resolve_lookback


def _levels(text: str) -> list[float]:
    try:
        levels = sorted({float(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise ParameterError("levels", f"must be comma-separated numbers in (0, 1), got {text!r}") from None
    if not levels or not all(0 < x < 1 for x in levels):
        raise ParameterError("levels", f"must be comma-separated numbers in (0, 1), got {text!r}")
    return levels


def _table(fc: Forecast, level: float, title: str) -> Table:
    lo, hi = fc.interval(level)
    raw = fc.uncalibrated().interval(level) if fc.is_calibrated else None
    pct = round(level * 100)
    cols = (
        ["mean close", f"{pct}% low", f"{pct}% high"]
        + ([f"raw {pct}% low", f"raw {pct}% high"] if raw else [])
        + ["P(up)"]
    )
    table, time_format = bar_table(title, fc.timestamps, cols)
    mean, prob = fc.mean()["close"], fc.prob_up()
    for i, t in enumerate(fc.timestamps):
        row = [
            t.strftime(time_format),
            f"{mean.iloc[i]:.6g}",
            f"{lo['close'].iloc[i]:.6g}",
            f"{hi['close'].iloc[i]:.6g}",
        ]
        if raw:
            row += [f"{raw[0]['close'].iloc[i]:.6g}", f"{raw[1]['close'].iloc[i]:.6g}"]
        table.add_row(*row, f"{prob.iloc[i]:.2f}")
    return table


def _write_csv(fc: Forecast, levels: list[float], out: Path) -> None:
    """The long schema of ``kronos forecast`` (:func:`kronos.forecasting.panel.output_columns`: the six
    means under their own names, ``{column}_q{level}`` for the close), then ``prob_up`` and
    ``realized_vol_mean``."""
    from kronos.core.files import atomic_write_text

    quantiles = sorted({round((1 - lv) / 2, 6) for lv in levels} | {round((1 + lv) / 2, 6) for lv in levels} | {0.5})
    frame = fc.mean()
    for q in quantiles:
        frame[f"close_q{level_name(q)}"] = fc.quantile(q)["close"]  # type: ignore[index]
    schema = [c for c in output_columns(None, "timestamps", quantiles)[1:] if c in frame.columns]
    frame = frame[schema]
    frame["prob_up"] = fc.prob_up()
    frame["realized_vol_mean"] = fc.volatility_forecast(levels=())["mean"]
    atomic_write_text(out, frame.to_csv(index_label="timestamps"))


def one_series(df: pd.DataFrame, symbol: str | None) -> pd.DataFrame:
    """The bars of the one series forecast-dist draws: a panel's ``symbol`` (required when it has several)."""
    if SYMBOL_COL not in df.columns:
        if symbol is not None:
            raise ParameterError("symbol", f"the file has no {SYMBOL_COL!r} column: it holds one series")
        return df
    names = [str(n) for n in pd.unique(df[SYMBOL_COL])]
    if symbol is None and len(names) > 1:
        shown = ", ".join(names[:5]) + (f" ... ({len(names)} in all)" if len(names) > 5 else "")
        raise ParameterError(
            "symbol", f"the file is a panel of {len(names)} series ({shown}): name one (kronos forecast takes them all)"
        )
    chosen = names[0] if symbol is None else symbol
    if chosen not in names:
        raise ParameterError("symbol", f"{symbol!r} is not in the file's {SYMBOL_COL!r} column")
    part = df[df[SYMBOL_COL].astype(str) == chosen]
    return part.drop(columns=SYMBOL_COL).reset_index(drop=True)


@app.command("forecast-dist")
def forecast_dist_command(
    data: Path | None = typer.Option(None, "--data", help="CSV or Parquet file of bars (default: the bundled sample)."),
    sample: str = typer.Option("googl", help="Bundled sample series when --data is not given: googl or eurusd."),
    model: str = model_option(),
    random_tiny: bool = random_tiny_option(),
    lookback: Any = lookback_option(),
    pred_len: int = pred_len_option(),
    samples: int = samples_option(),
    calibrate: bool = calibrate_option(True),
    origins: int = origins_option(),
    stride: int | None = stride_option(),
    levels: str = typer.Option("0.5,0.8,0.95", help="Central interval levels to draw (comma-separated)."),
    png: Path | None = typer.Option(None, help="Write the plot as PNG here."),
    html: Path | None = typer.Option(None, help="Write the interactive plot as HTML here."),
    csv: Path | None = typer.Option(
        None, help="Write the means, close_q{level} quantiles, prob_up and volatility here (CSV)."
    ),
    time_column: str | None = typer.Option(None, help=TIME_COLUMN_HELP),
    symbol: str | None = typer.Option(
        None, "--symbol", help="The series to forecast when --data is a panel (a file with a symbol column)."
    ),
    calendar: str = calendar_option(),
    seed: int = seed_option(),
    device: str | None = device_option(),
    splits: bool = splits_option(),
    anchor: bool = anchor_option(),
) -> None:
    """Forecast distribution of one series: quantile bands, a calibrated interval, P(up), plots."""
    lv = _levels(levels)
    df = one_series(read_bars(data if data is not None else sample_data_path(sample), time_column=time_column), symbol)
    future = market_times(df[TIME_COL], pred_len, calendar=calendar)  # from the whole history, as every door
    err_console().print(f"future times: {future.note}")
    if random_tiny:
        note_random_tiny()
    predictor = load_predictor(model, device=device, random_tiny=random_tiny)
    # the forecast conditions on the last `window` bars; calibration forecasts from origins before them
    window = resolve_lookback(lookback, predictor.max_context, pred_len) or len(df)
    needed = window + (pred_len + (origins - 1) * (stride or pred_len) if calibrate else 0)
    hist = df.tail(needed).reset_index(drop=True)
    if calibrate:  # the default: say what it costs and how to skip it, before the wait
        note_calibration_cost(origins, samples, each_series=False, by_default=True)
    calibration_lookback = window if len(df) >= needed else None  # short file: as many bars as fit
    fc = predictor.forecast(
        hist,
        hist[TIME_COL],
        future.times.rename(None),
        pred_len,
        sample_count=samples,
        seed=seed,
        lookback=lookback if ensemble_members(lookback, predictor.max_context, pred_len) else window,
        verbose=True,
        splits=splits,
        anchor=anchor,
        calibrate=(
            CalibrationOptions(origins=origins, stride=stride, lookback=calibration_lookback) if calibrate else False
        ),
    )
    name = data.name if data is not None else f"sample {sample}"
    main_level = 0.8 if 0.8 in lv else lv[len(lv) // 2]
    console().print(
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
        console().print(cov)
    if png is not None:
        console().print(f"wrote {fc.plot_png(png, levels=lv)}")
    if html is not None:
        console().print(f"wrote {fc.plot_html(html, levels=lv)}")
    if csv is not None:
        _write_csv(fc, lv, csv)
        console().print(f"wrote {csv}")
