"""The run behind ``kronos evaluate``: rolling forecasts of every forecaster, scored, then a report folder.

A thin layer over :func:`kronos.evaluation.cross_validation.cross_validate` and
:func:`~kronos.evaluation.cross_validation.evaluation_metrics`, so the command gives the numbers Python gives.
Files: ``cross_validation.parquet`` (the frame of ``kronos.cross_validation``), ``forecasts.parquet``,
``metrics.csv``, ``pit_histogram.csv``, ``reliability.csv``, ``summary.md``, the plots and ``report.html``; on
panels also the cross-sectional IC. Written through :func:`kronos.evaluation.common.staging`, so a failed run
leaves an earlier report intact.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kronos.bars.stocksplits import describe_split
from kronos.core.errors import ParameterError
from kronos.core.files import atomic_write
from kronos.evaluation import report
from kronos.evaluation.common import MIN_IC_NAMES, settings_table, split_names, staging
from kronos.evaluation.cross_validation import cross_validate, evaluation_metrics
from kronos.evaluation.crosssection import ic_summary, information_coefficient, make_signals, realised_returns
from kronos.evaluation.forecasters import parse_forecaster_spec
from kronos.evaluation.metrics import pit_histogram, reliability_table
from kronos.evaluation.origins import RollingConfig
from kronos.evaluation.rolling import RollingResult

__all__ = ["EvaluationOutput", "run_evaluation"]


@dataclass
class EvaluationOutput:
    """What an evaluation produced (also written to ``out_dir``)."""

    out_dir: Path
    result: RollingResult
    metrics: pd.DataFrame
    ic_daily: pd.DataFrame | None
    ic: pd.DataFrame | None
    files: list[Path] = field(default_factory=list)


def _pit_table(forecasts: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
    """PIT histogram densities per forecaster: one row per bin (1.0 everywhere when calibrated)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    table = pd.DataFrame({"bin_low": edges[:-1], "bin_high": edges[1:]})
    for name, part in forecasts.groupby("forecaster", sort=True):
        table[str(name)] = pit_histogram(part["pit"], bins=bins)
    return table


def _cross_section(forecasts: pd.DataFrame, align: str) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """IC of the predicted horizon return against the realised one, when the data is a panel."""
    if align != "calendar" or forecasts["series"].nunique() < MIN_IC_NAMES:
        return None, None
    signal = make_signals(forecasts, "last", relative=True)
    daily = information_coefficient(signal, realised_returns(forecasts), min_names=MIN_IC_NAMES)
    if daily.empty:
        return None, None
    return daily, ic_summary(daily)


def run_evaluation(
    data: str | os.PathLike,
    forecasters: Sequence[str],
    out_dir: str | os.PathLike,
    config: RollingConfig,
    *,
    symbols: Sequence[str] | None = None,
    max_series: int | None = None,
    n_jobs: int = 0,
    progress: bool = False,
    kronos_options: dict[str, Any] | None = None,
    splits: bool = True,
) -> EvaluationOutput:
    """Evaluate forecasters on the series under ``data`` and write the report folder.

    Files: ``cross_validation.parquet`` (:func:`kronos.evaluation.cross_validation.cross_validation`'s frame),
    ``forecasts.parquet`` (one row per forecaster, series, origin, step, with the stated ``prob_up``),
    ``metrics.csv`` (with the Brier score of ``prob_up``), ``pit_histogram.csv``, ``reliability.csv`` (stated
    ``prob_up`` in bins against how often the close rose), ``summary.md``, ``horizon.png``, ``calibration.png``,
    ``example.png``, ``report.html``; on panels also ``ic.csv``, ``ic_daily.csv`` and ``ic.png``; ``errors.csv``
    when forecasts failed. ``splits``: undo the share splits left in each series first, for every forecaster
    (the summary lists them).
    """
    names = split_names(forecasters)
    if not names:
        raise ParameterError(
            "forecasters", "no forecaster given (persistence, drift, ..., kronos or a checkpoint directory)"
        )
    specs = [parse_forecaster_spec(n, **(kronos_options or {})) for n in names]
    cv = cross_validate(
        data,
        config.horizon,
        config.origins,
        config.stride,
        specs,
        lookback=config.lookback,
        num_samples=config.num_samples,
        seed=config.seed,
        align=config.align,
        n_jobs=n_jobs,
        progress=progress,
        symbols=symbols,
        max_series=max_series,
        splits=splits,
    )
    result = cv.result
    metrics = evaluation_metrics(cv.frame)
    ic_daily, ic = _cross_section(result.forecasts, result.align)

    out = Path(out_dir)
    origins = result.forecasts["origin_time"]
    settings = {
        "data": str(data),
        "series": result.forecasts["series"].nunique(),
        "forecasters": ", ".join(s.label for s in specs),
        "lookback": config.lookback,
        "horizon": config.horizon,
        "origins per series (max)": config.origins,
        "stride": config.step,
        "sample paths": config.num_samples,
        "alignment": result.align,
        "seed": config.seed,
        "origin range": f"{report._fmt(origins.min())} .. {report._fmt(origins.max())}",
        "forecast rows": len(result.forecasts),
        "failed forecasts": int(result.errors["forecaster"].notna().sum()),
        "share splits undone": "; ".join(
            f"{name} {describe_split(rec)}" for name, found in cv.splits.items() for rec in found
        )
        or ("none found" if splits else "not looked for"),
    }
    overall = report.overall_table(metrics)
    per_series = metrics[(metrics["series"] != "(all)") & (metrics["step"].astype(str) == "all")]
    pivot = per_series.pivot_table(index="series", columns="forecaster", values="crps_ret").reset_index()
    pivot.columns.name = None

    files: list[Path] = []
    with staging(out) as stage:
        atomic_write(stage / "cross_validation.parquet", lambda p: cv.frame.to_parquet(p, index=False))
        forecasts_out = result.forecasts.copy()
        atomic_write(stage / "forecasts.parquet", lambda p: forecasts_out.to_parquet(p, index=False))
        atomic_write(stage / "metrics.csv", metrics.to_csv(index=False))
        atomic_write(stage / "pit_histogram.csv", _pit_table(result.forecasts).to_csv(index=False))
        reliability = reliability_table(result.forecasts)
        atomic_write(stage / "reliability.csv", reliability.to_csv(index=False))
        if len(result.errors):
            atomic_write(stage / "errors.csv", result.errors.to_csv(index=False))
        if ic is not None and ic_daily is not None:
            atomic_write(stage / "ic.csv", ic.to_csv(index=False))
            atomic_write(stage / "ic_daily.csv", ic_daily.to_csv(index=False))
        report.evaluation_figures(result.forecasts, metrics, stage, ic_daily)

        md = [
            "# Kronos evaluation",
            "",
            report.markdown_table(settings_table(settings)),
            "",
            "## All series, all horizon steps",
            "",
            (
                "Return-scale metrics (`mae_ret`, `rmse_ret`, `crps_ret`, `crps_fair_ret`, `width80`, `rv_mae`) are "
                "fractions of the last close; `mape` is in %; `rel_mae_ret` < 1 beats persistence; `crps_fair_ret` is "
                "the CRPS the paths' distribution has whatever their number (`crps_ret` scores the paths as drawn and "
                "favours narrower forecasts when there are few). Definitions: docs/evaluation.md."
            ),
            "",
            report.markdown_table(overall),
            "",
        ]
        if ic is not None:
            md += [
                "## Cross-sectional skill (predicted vs realised horizon return)",
                "",
                report.markdown_table(ic),
                "",
                "![cumulative RankIC](ic.png)",
                "",
            ]
        md += [
            "## Is P(up) reliable?",
            "",
            "Stated probability that the close ends above the last close, in bins, against how often it did "
            "(`brier` in the table above: 0.25 is a coin).",
            "",
            report.markdown_table(reliability),
            "",
            "## CRPS / last close per series",
            "",
            report.markdown_table(pivot),
            "",
            "![error by horizon](horizon.png)",
            "",
            "![calibration](calibration.png)",
            "",
            "![example](example.png)",
            "",
        ]
        if len(result.errors):
            md += [
                "## Failures",
                "",
                f"{len(result.errors)} forecast(s) or series failed or were skipped; see errors.csv.",
                "",
                report.markdown_table(result.errors.head(10)),
                "",
            ]
        atomic_write(stage / "summary.md", "\n".join(md))

        sections: list[tuple[str, list]] = [
            ("settings", [settings_table(settings)]),
            ("all series, all horizon steps", [overall]),
        ]
        if ic is not None:
            sections.append(("cross-sectional IC / RankIC", [ic]))
        sections.append(("plots", report.evaluation_plotly(result.forecasts, metrics, ic_daily)))
        sections.append(("CRPS / last close per series", [pivot]))
        report.write_html(stage / "report.html", "Kronos evaluation", sections)
        files = sorted(out / p.name for p in stage.iterdir())
    return EvaluationOutput(out_dir=out, result=result, metrics=metrics, ic_daily=ic_daily, ic=ic, files=files)
