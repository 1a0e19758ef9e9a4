"""``kronos evaluate`` and ``kronos backtest``: honest comparisons of forecasters on real series.

Thin wrappers over :mod:`kronos.evaluation.evaluation_run` and :mod:`kronos.evaluation.backtest_run`; heavy
imports happen inside the commands so ``kronos --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kronos.cli.app import app
from kronos.cli.flags import (
    device_option,
    evaluation_splits_option,
    evaluation_window,
    full_history_option,
    jobs_option,
    max_context_option,
    max_series_option,
    progress_option,
    samples_option,
    seed_option,
    symbols_option,
    temperature_option,
    top_k_option,
    top_p_option,
    window_option,
)
from kronos.cli.output import console, err_console

if TYPE_CHECKING:
    import pandas as pd

_FORECASTER_HELP = (
    "Forecaster(s), repeatable or comma-separated: kronos (the shipped model), kronos-cal (the same, calibrated), "
    "persistence, drift, drift-normal, garch, garch-t, ets, arima, a Kronos checkpoint directory (model/ + tokenizer/) "
    "or published name; LABEL=SPEC sets the report name (kronos-cal=DIR: that checkpoint, calibrated)."
)


_CONSOLE_COLUMNS = ("forecaster", "n", "mae_ret", "mape", "dir_acc", "crps_ret", "cov80", "pit_ks", "rel_mae_ret")


def _kronos_options(
    max_context: int | None,
    device: str | None,
    temperature: float,
    top_k: int,
    top_p: float,
    full_history: bool = False,
    calibration_origins: int | None = None,
) -> dict:
    return {
        "calibration_origins": calibration_origins,
        "max_context": max_context,
        "device": device,
        "temperature": temperature,
        "top_k": top_k,
        "top_p": top_p,
        "max_history": 0 if full_history else None,
    }


@app.command("evaluate")
def evaluate_command(
    data: Path = typer.Option(
        ..., "--data", help="A parquet/CSV file, a panel with a 'symbol' column, or a folder of them."
    ),
    forecasters: list[str] = typer.Option(..., "--forecaster", "-f", help=_FORECASTER_HELP),
    out: Path = typer.Option(
        ..., "--out", help="Output folder (created; earlier results are replaced only on success)."
    ),
    lookback: Any = window_option(),
    horizon: int = typer.Option(5, "--horizon", help="Bars forecast from each origin (steps 1..H are scored)."),
    origins: int = typer.Option(20, "--origins", help="Forecast origins per series, counted back from the end."),
    stride: int | None = typer.Option(None, "--stride", help="Bars between origins (default: the horizon)."),
    samples: int = samples_option(),
    seed: int = seed_option(),
    align: str = typer.Option("auto", "--align", help="end | calendar | auto (calendar for panels)."),
    calendar: str | None = typer.Option(
        None,
        "--calendar",
        help="Future times given to the forecasters: the bars that came next (default), or those a live forecast "
        "makes from the history up to each origin: auto, own or an exchange_calendars name (XNYS ...).",
    ),
    jobs: int = jobs_option(),
    symbols: list[str] | None = symbols_option(),
    max_series: int | None = max_series_option(),
    max_context: int | None = max_context_option(),
    device: str | None = device_option(),
    temperature: float = temperature_option(),
    top_k: int = top_k_option(),
    top_p: float = top_p_option(),
    full_history: bool = full_history_option(),
    calibration_origins: int | None = typer.Option(
        None,
        "--calibration-origins",
        min=9,
        help="Origins inside each history that kronos-cal calibrates on (default: the library's 20; more where the "
        "history allows, e.g. 40 with a --lookback of the window + 200 bars).",
    ),
    progress: bool = progress_option(),
    splits: bool = evaluation_splits_option(),
) -> None:
    """Rolling-origin evaluation of forecasters: forecasts.parquet, metrics.csv, summary.md, plots, report.html."""
    from kronos.evaluation.common import split_names
    from kronos.evaluation.evaluation_run import run_evaluation
    from kronos.evaluation.origins import RollingConfig
    from kronos.evaluation.report import overall_table

    config = RollingConfig(
        lookback=evaluation_window(lookback, split_names(forecasters), horizon, calibration_origins, max_context),
        horizon=horizon,
        origins=origins,
        stride=stride,
        num_samples=samples,
        seed=seed,
        align=align,
        calendar=calendar,
    )
    output = run_evaluation(
        data,
        forecasters,
        out,
        config,
        symbols=split_names(symbols) or None,
        max_series=max_series,
        n_jobs=jobs,
        progress=progress,
        kronos_options=_kronos_options(
            max_context, device, temperature, top_k, top_p, full_history, calibration_origins
        ),
        splits=splits,
    )
    table = overall_table(output.metrics)
    _print_table(
        table[[c for c in _CONSOLE_COLUMNS if c in table.columns]], "all series, all steps (full table: summary.md)"
    )
    if output.ic is not None:
        ic_cols = ["forecaster", "dates", "ic_mean", "ic_ir", "rank_ic_mean", "rank_ic_ir", "rank_ic_t"]
        _print_table(output.ic[ic_cols], "cross-sectional IC / RankIC")
    report_problems(output.result.errors, out)
    err_console().print(f"wrote {len(output.files)} files to {out}")


def report_problems(errors: pd.DataFrame | None, out: Path, shown: int = 10) -> None:
    """Print how many series were skipped and forecasts failed, with the reasons (errors.csv has them all)."""
    if errors is None or len(errors) == 0:
        return
    console = err_console()
    skipped = errors[errors["forecaster"].isna()]
    failed = errors[errors["forecaster"].notna()]
    if len(skipped):
        console.print(f"[yellow]{len(skipped)} series skipped (see {out / 'errors.csv'}):[/yellow]")
        for row in skipped.head(shown).itertuples(index=False):
            console.print(f"  {row.series}: {str(row.error).removeprefix('skipped: ')}", markup=False, highlight=False)
        if len(skipped) > shown:
            console.print(f"  ... and {len(skipped) - shown} more")
    if len(failed):
        console.print(
            f"[yellow]{len(failed)} forecast(s) failed (see {out / 'errors.csv'}); most common reasons:[/yellow]"
        )
        for reason, count in failed["error"].astype(str).value_counts().head(5).items():
            console.print(f"  {count} x {reason}", markup=False, highlight=False)


@app.command("backtest")
def backtest_command(
    out: Path = typer.Option(..., "--out", help="Output folder."),
    forecasts_path: Path | None = typer.Option(
        None, "--forecasts", help="A forecasts.parquet from `kronos evaluate --stride 1`."
    ),
    data: Path | None = typer.Option(
        None, "--data", help="Panel (or series) to forecast when --forecasts is not given."
    ),
    forecasters: list[str] | None = typer.Option(None, "--forecaster", "-f", help=_FORECASTER_HELP),
    lookback: Any = window_option(),
    horizon: int = typer.Option(5, "--horizon", help="Bars forecast at each decision."),
    origins: int = typer.Option(250, "--origins", help="Decision dates (one per bar, counted back from the end)."),
    samples: int = samples_option(),
    seed: int = seed_option(),
    strategy: str = typer.Option(
        "topk", "--strategy", help="topk (cross-sectional portfolio) or single (per-asset rule)."
    ),
    signal: str = typer.Option(
        "last", "--signal", help="last | mean | max | min of the predicted close, minus the last close."
    ),
    relative: bool = typer.Option(False, "--relative/--absolute", help="Divide the signal by the last close."),
    topk: int = typer.Option(50, "--top", help="Names held by the top-k portfolio (fewer than the universe)."),
    n_drop: int = typer.Option(5, "--n-drop", help="Names the portfolio may replace per bar."),
    min_hold: int = typer.Option(1, "--min-hold", help="Bars a name is held before it may be sold."),
    cost_bps: float = typer.Option(10.0, "--cost-bps", help="Transaction cost per side, basis points of traded value."),
    slippage_bps: float = typer.Option(5.0, "--slippage-bps", help="Slippage per side, basis points of traded value."),
    benchmark: str = typer.Option("equal", "--benchmark", help="equal (universe), a series name, or a file of bars."),
    long_short: bool = typer.Option(
        False, "--long-short/--long-flat", help="Single-asset rule: short on negative signals."
    ),
    threshold: float = typer.Option(0.0, "--threshold", help="Single-asset rule: |signal| needed to take a position."),
    periods_per_year: float | None = typer.Option(
        None, "--periods-per-year", help="Annualisation (default: inferred)."
    ),
    calendar: str | None = typer.Option(
        None,
        "--calendar",
        help="Future times given to the forecasters: the bars that came next (default), or those a live forecast "
        "makes from the history up to each origin: auto, own or an exchange_calendars name (XNYS ...).",
    ),
    jobs: int = jobs_option(),
    symbols: list[str] | None = symbols_option(),
    max_series: int | None = max_series_option(),
    max_context: int | None = max_context_option(),
    device: str | None = device_option(),
    temperature: float = temperature_option(),
    top_k: int = top_k_option(),
    top_p: float = top_p_option(),
    full_history: bool = full_history_option(),
    progress: bool = progress_option(),
    splits: bool = evaluation_splits_option(),
) -> None:
    """Backtest forecast signals: a top-k/n-drop portfolio or a single-asset rule, with costs and a benchmark."""
    from kronos.evaluation.backtest import TopkConfig
    from kronos.evaluation.backtest_run import run_backtest
    from kronos.evaluation.common import split_names
    from kronos.evaluation.origins import RollingConfig

    config = None
    if forecasts_path is None:
        config = RollingConfig(
            lookback=evaluation_window(lookback, split_names(forecasters or []), horizon, None, max_context),
            horizon=horizon,
            origins=origins,
            stride=1,
            num_samples=samples,
            seed=seed,
            align="calendar" if strategy == "topk" else "end",
            calendar=calendar,
        )
    output = run_backtest(
        out,
        forecasts_path=forecasts_path,
        data=data,
        forecasters=forecasters or [],
        config=config,
        strategy=strategy,
        signal=signal,
        relative=relative,
        topk=TopkConfig(top_k=topk, n_drop=n_drop, min_hold=min_hold, cost_bps=cost_bps, slippage_bps=slippage_bps),
        long_short=long_short,
        threshold=threshold,
        benchmark=benchmark,
        periods_per_year=periods_per_year,
        symbols=split_names(symbols) or None,
        max_series=max_series,
        n_jobs=jobs,
        progress=progress,
        kronos_options=_kronos_options(max_context, device, temperature, top_k, top_p, full_history),
        splits=splits,
    )
    cols = ["forecaster", "series", "row", "annual_return", "sharpe", "max_drawdown", "turnover", "excess_return"]
    shown = output.stats[output.stats["row"] != "strategy (gross)"]
    _print_table(shown[[c for c in cols if c in shown.columns]].head(40), "backtest")
    report_problems(output.errors, out)
    err_console().print(f"wrote {len(output.files)} files to {out}")


def _print_table(frame, title: str) -> None:
    from rich.table import Table

    from kronos.evaluation.report import _fmt

    table = Table(title=title)
    for col in frame.columns:
        table.add_column(str(col))
    for row in frame.itertuples(index=False):
        table.add_row(*[_fmt(v) for v in row])
    console().print(table)
