"""Reports of evaluations and backtests: ``summary.md``, PNG plots (matplotlib), ``report.html`` (plotly).

Every output file is written atomically (a temporary file in the same folder, then ``os.replace``),
and callers write only after all computing is done, so a failed run leaves earlier results intact.
"""

from __future__ import annotations

import html
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from kronos.core.extras import require
from kronos.core.files import atomic_write
from kronos.evaluation.metrics import (
    ALL,
    INTERVAL_LEVELS,
    interval_columns,
    pit_histogram,
)

__all__ = [
    "SUMMARY_COLUMNS",
    "backtest_figures",
    "evaluation_figures",
    "markdown_table",
    "plotly_js_file",
    "write_html",
]

SUMMARY_COLUMNS: tuple[str, ...] = (
    "forecaster",
    "n",
    "mae_ret",
    "rmse_ret",
    "mape",
    "dir_acc",
    "crps_ret",
    "crps_fair_ret",
    "cov50",
    "cov80",
    "cov90",
    "width80",
    "pit_ks",
    "rv_mae",
    "rel_mae_ret",
)


# ----------------------------------------------------------------------------------------------
# files


def _fmt(value: object, digits: int = 4) -> str:
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return ""
        if value != 0 and (abs(value) < 10 ** -(digits - 1) or abs(value) >= 1e6):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}f}".rstrip("0").rstrip(".") if abs(value) < 1e3 else f"{value:,.1f}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M") if (value.hour or value.minute) else value.strftime("%Y-%m-%d")
    return str(value)


def markdown_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub-flavoured markdown table of ``frame`` (no index), numbers to ``digits`` decimals."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v, digits) for v in row) + " |")
    return "\n".join(lines)


def overall_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """The headline rows: every forecaster over all series and steps, the summary columns."""
    rows = metrics[(metrics["series"] == ALL) & (metrics["step"].astype(str) == "all")]
    cols = [c for c in SUMMARY_COLUMNS if c in rows.columns]
    return rows[cols].sort_values("crps_ret" if "crps_ret" in cols else cols[0], kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# matplotlib figures (PNG)


def _plt():
    matplotlib = require("eval", "matplotlib", purpose="report figures")
    matplotlib.use("Agg", force=False)
    return require("eval", "matplotlib.pyplot", purpose="report figures")


def _save_png(fig, path: Path, dpi: int = 110) -> Path:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return atomic_write(path, buf.getvalue())


def evaluation_figures(
    forecasts: pd.DataFrame,
    metrics: pd.DataFrame,
    out_dir: str | os.PathLike,
    ic_daily: pd.DataFrame | None = None,
) -> list[Path]:
    """Write the evaluation PNGs and return their paths.

    ``horizon.png``: return MAE and CRPS per horizon step; ``calibration.png``: interval coverage
    against the nominal level and PIT histograms; ``example.png``: the last origin of the first
    series with each forecaster's mean and 80% band; ``ic.png``: cumulative IC (panels only).
    """
    plt = _plt()
    out = Path(out_dir)
    written: list[Path] = []
    by_step = metrics[(metrics["series"] == ALL) & (metrics["step"].astype(str) != "all")].copy()
    by_step["step"] = by_step["step"].astype(int)
    names = list(dict.fromkeys(overall_table(metrics)["forecaster"]))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name in names:
        part = by_step[by_step["forecaster"] == name].sort_values("step")
        axes[0].plot(part["step"], part["mae_ret"] * 100, marker="o", label=name)
        axes[1].plot(part["step"], part["crps_ret"] * 100, marker="o", label=name)
    axes[0].set(title="MAE of the return (%)", xlabel="horizon step", ylabel="% of last close")
    axes[1].set(title="CRPS / last close (%)", xlabel="horizon step")
    MaxNLocator = require("eval", "matplotlib.ticker").MaxNLocator  # noqa: N806

    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].legend(fontsize=8)
    written.append(_save_png(fig, out / "horizon.png"))

    overall = metrics[(metrics["series"] == ALL) & (metrics["step"].astype(str) == "all")].set_index("forecaster")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    nominal = np.array(INTERVAL_LEVELS)
    axes[0].plot([0, 1], [0, 1], color="grey", linestyle="--", label="calibrated")
    for name in names:
        cov = [overall.loc[name].get(f"cov{round(level * 100)}", np.nan) for level in nominal]
        axes[0].plot(nominal, cov, marker="o", label=name)
        hist = pit_histogram(forecasts.loc[forecasts["forecaster"] == name, "pit"])
        axes[1].step(np.linspace(0.05, 0.95, len(hist)), hist, where="mid", label=name)
    axes[0].set(
        title="interval coverage", xlabel="nominal level", ylabel="observed share inside", xlim=(0.4, 1), ylim=(0, 1)
    )
    axes[1].axhline(1.0, color="grey", linestyle="--")
    axes[1].set(title="PIT histogram (flat = calibrated)", xlabel="PIT", ylabel="density")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    written.append(_save_png(fig, out / "calibration.png"))

    first = min(forecasts["series"].unique())
    rows = forecasts[forecasts["series"] == first]
    origin = rows["origin_time"].max()
    rows = rows[rows["origin_time"] == origin]
    fig, ax = plt.subplots(figsize=(9, 4))
    truth = rows.drop_duplicates("step").sort_values("step")
    ax.plot(truth["target_time"], truth["y_true"], color="black", linewidth=2, label="realised")
    lo_col, hi_col = interval_columns(0.8)
    for name in names:
        part = rows[rows["forecaster"] == name].sort_values("step")
        line = ax.plot(part["target_time"], part["y_pred"], marker=".", label=name)[0]
        if lo_col in part and part[hi_col].gt(part[lo_col]).any():
            ax.fill_between(part["target_time"], part[lo_col], part[hi_col], color=line.get_color(), alpha=0.12)
    ax.axhline(float(truth["last_close"].iloc[0]), color="grey", linestyle=":", label="last close")
    ax.set(title=f"{first}: forecasts from {_fmt(pd.Timestamp(origin))} (mean and 80% band)", ylabel="close")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    written.append(_save_png(fig, out / "example.png"))

    if ic_daily is not None and len(ic_daily):
        fig, ax = plt.subplots(figsize=(9, 4))
        for name, part in ic_daily.groupby("forecaster", sort=True):
            part = part.sort_values("origin_time")
            ax.plot(part["origin_time"], part["rank_ic"].cumsum(), label=f"{name}")
        ax.set(title="cumulative RankIC", ylabel="sum of daily RankIC")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.autofmt_xdate()
        written.append(_save_png(fig, out / "ic.png"))
    return written


def backtest_figures(results: dict[str, object], out_dir: str | os.PathLike, title: str = "backtest") -> list[Path]:
    """``equity.png``: equity curves (net, gross, benchmark) and drawdown of each named result."""
    plt = _plt()
    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    bench_drawn = False
    for name, result in results.items():
        equity = result.equity()  # type: ignore[attr-defined]
        line = axes[0].plot(equity.index, equity["net"], label=f"{name} (net)")[0]
        axes[0].plot(
            equity.index, equity["gross"], color=line.get_color(), linestyle=":", alpha=0.7, label=f"{name} (gross)"
        )
        drawdown = equity["net"] / equity["net"].cummax() - 1.0
        axes[1].fill_between(equity.index, drawdown * 100, 0, color=line.get_color(), alpha=0.3)
        if not bench_drawn and "benchmark" in equity:
            axes[0].plot(equity.index, equity["benchmark"], color="black", linewidth=1.5, label="benchmark")
            bench_drawn = True
    axes[0].set(title=title, ylabel="value of 1 invested")
    axes[1].set(ylabel="drawdown (%)")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.autofmt_xdate()
    return [_save_png(fig, Path(out_dir) / "equity.png")]


# ----------------------------------------------------------------------------------------------
# HTML (plotly)


def _table_html(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def evaluation_plotly(forecasts: pd.DataFrame, metrics: pd.DataFrame, ic_daily: pd.DataFrame | None = None) -> list:
    """Interactive versions of the evaluation plots (plotly figures)."""
    go = require("eval", "plotly.graph_objects", purpose="report.html")

    figs = []
    by_step = metrics[(metrics["series"] == ALL) & (metrics["step"].astype(str) != "all")].copy()
    by_step["step"] = by_step["step"].astype(int)
    for col, title in (
        ("mae_ret", "MAE of the return (%) by horizon step"),
        ("crps_ret", "CRPS / last close (%) by horizon step"),
    ):
        fig = go.Figure()
        for name, part in by_step.groupby("forecaster", sort=True):
            part = part.sort_values("step")
            fig.add_trace(go.Scatter(x=part["step"], y=part[col] * 100, mode="lines+markers", name=str(name)))
        fig.update_layout(title=title, xaxis_title="horizon step", height=380)
        figs.append(fig)
    fig = go.Figure()
    bins = 10
    centres = (np.arange(bins) + 0.5) / bins
    for name, part in forecasts.groupby("forecaster", sort=True):
        # densities from pit_histogram (closed last bin): plotly's own binning is half-open and drops PIT = 1
        # exactly, which is where a too-narrow forecast puts every outcome above all its samples
        fig.add_trace(
            go.Bar(x=centres, y=pit_histogram(part["pit"], bins=bins), width=1 / bins, name=str(name), opacity=0.6)
        )
    fig.update_layout(
        title="PIT histogram (flat at 1 = calibrated)",
        barmode="overlay",
        height=380,
        xaxis={"range": [0, 1], "title": "PIT"},
    )
    figs.append(fig)
    if ic_daily is not None and len(ic_daily):
        fig = go.Figure()
        for name, part in ic_daily.groupby("forecaster", sort=True):
            part = part.sort_values("origin_time")
            fig.add_trace(go.Scatter(x=part["origin_time"], y=part["rank_ic"].cumsum(), mode="lines", name=str(name)))
        fig.update_layout(title="cumulative RankIC", height=380)
        figs.append(fig)
    return figs


def backtest_plotly(results: dict[str, object]) -> list:
    """Interactive equity curves of backtest results."""
    go = require("eval", "plotly.graph_objects", purpose="report.html")

    fig = go.Figure()
    bench = None
    for name, result in results.items():
        equity = result.equity()  # type: ignore[attr-defined]
        fig.add_trace(go.Scatter(x=equity.index, y=equity["net"], mode="lines", name=f"{name} (net)"))
        fig.add_trace(
            go.Scatter(x=equity.index, y=equity["gross"], mode="lines", name=f"{name} (gross)", line={"dash": "dot"})
        )
        bench = equity["benchmark"] if bench is None and "benchmark" in equity else bench
    if bench is not None:
        fig.add_trace(go.Scatter(x=bench.index, y=bench, mode="lines", name="benchmark", line={"color": "black"}))
    fig.update_layout(title="equity (value of 1 invested)", height=450)
    return [fig]


def plotly_js_file(folder: str | os.PathLike) -> str:
    """Write plotly.js once into ``folder`` (``plotly-VERSION.min.js``, kept if present); return its file name.

    Reports in the same folder share it, so each HTML file stays small and still opens offline.
    """
    offline = require("eval", "plotly.offline", purpose="report.html")
    get_plotlyjs, get_plotlyjs_version = offline.get_plotlyjs, offline.get_plotlyjs_version

    name = f"plotly-{get_plotlyjs_version()}.min.js"
    target = Path(folder) / name
    if not target.is_file():
        atomic_write(target, get_plotlyjs())
    return name


def write_html(path: str | os.PathLike, title: str, sections: Sequence[tuple[str, Iterable]]) -> Path:
    """An HTML report: each section is (heading, items), items being plotly figures, DataFrames
    (rendered as tables) or strings (paragraphs). plotly.js is not inlined: it is written once beside
    the report (:func:`plotly_js_file`) and linked, so the folder opens offline and each report is small.
    Keep the ``.js`` file with the report when moving it."""
    sections = [(heading, list(items)) for heading, items in sections]
    has_figures = any(not isinstance(item, (pd.DataFrame, str)) for _, items in sections for item in items)
    script = f"<script src='{plotly_js_file(Path(path).parent)}'></script>" if has_figures else ""
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        script,
        (
            "<style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
            "table{border-collapse:collapse;font-size:13px;margin:0.5em 0}"
            "td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f3f3f3}</style>"
        ),
        f"</head><body><h1>{html.escape(title)}</h1>",
    ]
    for heading, items in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for item in items:
            if isinstance(item, pd.DataFrame):
                parts.append(_table_html(item))
            elif isinstance(item, str):
                parts.append(f"<p>{html.escape(item)}</p>")
            else:
                parts.append(item.to_html(full_html=False, include_plotlyjs=False))
    parts.append("</body></html>")
    return atomic_write(path, "\n".join(parts))
