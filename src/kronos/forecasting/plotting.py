"""Plots of a :class:`~kronos.forecasting.forecast.Forecast`: history candlesticks, the mean path and quantile bands.

Two renderers of the same picture: a static matplotlib figure (PNG for reports and the README) and an
interactive plotly page (HTML: zoom, hover values). When the forecast is calibrated, the shaded bands
are the calibrated ones and the model's raw interval is drawn as dashed lines, so the correction is
visible. A lower panel shows ``prob_up`` per future bar.

matplotlib and plotly are optional (the ``eval`` extra); they are imported only when a plot is made.
The plots take anything shaped like a forecast (:class:`PlotForecast`), so ``Forecast`` can offer them as
methods (``fc.plot()``, ``fc.plot_png()``, ``fc.plot_html()``) without an import circle.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from kronos.core.extras import require
from kronos.core.files import atomic_write_bytes

__all__ = ["PlotForecast", "plot_forecast", "plotly_figure", "save_html", "save_png"]

UP, DOWN = "#26a69a", "#ef5350"
BAND = "#1f77b4"
RAW = "#d62728"


class PlotForecast(Protocol):
    """What a plot reads from a forecast; :class:`kronos.forecasting.forecast.Forecast` is one.

    A structural type rather than the class itself, because ``Forecast`` imports this module for its plot
    methods.
    """

    @property
    def timestamps(self) -> pd.DatetimeIndex: ...
    @property
    def last_close(self) -> float: ...
    @property
    def history(self) -> pd.DataFrame | None: ...
    @property
    def n_paths(self) -> int: ...
    @property
    def horizon(self) -> int: ...
    @property
    def is_calibrated(self) -> bool: ...
    def uncalibrated(self) -> PlotForecast: ...
    def mean(self) -> pd.DataFrame: ...
    def interval(self, level: float = 0.8) -> tuple[pd.DataFrame, pd.DataFrame]: ...
    def prob_up(self) -> pd.Series: ...


def _need(module: str) -> Any:
    """Import an optional plotting dependency or say which extra provides it (:func:`kronos.core.extras.require`)."""
    return require("eval", module, purpose="plotting")


def _check_levels(levels: Sequence[float]) -> list[float]:
    out = sorted({float(x) for x in levels}, reverse=True)  # widest first, so narrower bands draw on top
    for level in out:
        if not 0.0 < level < 1.0:
            raise ValueError(f"band levels must be in (0, 1), got {level}")
    return out


def _bands(fc: PlotForecast, levels: list[float], column: str) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    bands = {}
    for level in levels:
        lo, hi = fc.interval(level)
        bands[level] = (lo[column].to_numpy(), hi[column].to_numpy())
    return bands


def _history(fc: PlotForecast, history_bars: int) -> pd.DataFrame | None:
    if fc.history is None or history_bars <= 0:
        return None
    return fc.history.tail(history_bars)


def _time_labels(index: pd.DatetimeIndex) -> list[str]:
    daily = bool((index == index.normalize()).all())
    return [t.strftime("%Y-%m-%d" if daily else "%m-%d %H:%M") for t in index]


def plot_forecast(
    fc: PlotForecast,
    *,
    levels: Sequence[float] = (0.5, 0.8, 0.95),
    column: str = "close",
    history_bars: int = 80,
    title: str | None = None,
    show_raw: bool = True,
    show_prob_up: bool = True,
    ax: Any = None,
    figsize: tuple[float, float] = (10.0, 5.5),
) -> Any:
    """A matplotlib ``Figure``: candlesticks of the last ``history_bars`` observed bars, the mean path of
    ``column`` and its central quantile bands at ``levels`` over the future bars.

    With ``ax`` the main panel is drawn into that axes (no ``prob_up`` panel) and its figure returned.
    A calibrated forecast also shows the model's raw interval at the widest level ``<= 0.8`` dashed.
    """
    Figure = _need("matplotlib.figure").Figure  # noqa: N806
    ticker = _need("matplotlib.ticker")
    FuncFormatter, MaxNLocator = ticker.FuncFormatter, ticker.MaxNLocator  # noqa: N806

    lv = _check_levels(levels)
    hist = _history(fc, history_bars)
    n_hist = 0 if hist is None else len(hist)
    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        if show_prob_up:
            ax, ax_p = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [4, 1]})
        else:
            ax, ax_p = fig.subplots(1, 1), None
    else:
        fig, ax_p = ax.figure, None
    x_fut = np.arange(fc.horizon)
    if hist is not None:
        x_hist = np.arange(-n_hist, 0)
        o, h, lo_, c = (hist[k].to_numpy() for k in ("open", "high", "low", "close"))
        colors = np.where(c >= o, UP, DOWN)
        ax.vlines(x_hist, lo_, h, colors=colors, linewidth=0.8)
        body = np.where(np.abs(c - o) > 0, np.abs(c - o), (h - lo_) * 0.002 + 1e-12)
        ax.bar(x_hist, body, bottom=np.minimum(o, c), width=0.7, color=colors, linewidth=0)
    # lines start at the last observed close so the forecast visibly continues the history
    x_line = np.concatenate([[-1], x_fut])
    anchor = [fc.last_close] if column == "close" else [np.nan]
    bands = _bands(fc, lv, column)
    for i, level in enumerate(lv):
        lo, hi = bands[level]
        alpha = 0.12 + 0.18 * i / max(1, len(lv) - 1)
        tag = "calibrated " if fc.is_calibrated else ""
        ax.fill_between(
            x_line,
            np.concatenate([anchor, lo]),
            np.concatenate([anchor, hi]),
            color=BAND,
            alpha=alpha,
            linewidth=0,
            label=f"{tag}{round(level * 100)}% interval",
        )
    if fc.is_calibrated and show_raw:
        raw_level = max([x for x in lv if x <= 0.8 + 1e-9], default=lv[-1])
        rlo, rhi = fc.uncalibrated().interval(raw_level)
        ax.plot(
            x_line,
            np.concatenate([anchor, rlo[column].to_numpy()]),
            "--",
            color=RAW,
            linewidth=1.1,
            label=f"raw model {round(raw_level * 100)}% interval",
        )
        ax.plot(x_line, np.concatenate([anchor, rhi[column].to_numpy()]), "--", color=RAW, linewidth=1.1)
    ax.plot(
        x_line, np.concatenate([anchor, fc.mean()[column].to_numpy()]), color="black", linewidth=1.6, label="mean path"
    )
    ax.axvline(-0.5, color="grey", linewidth=0.8, linestyle=":")
    ax.set_ylabel(column)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.grid(alpha=0.25)
    default = f"{fc.n_paths} sample paths, {fc.horizon} bars ahead" + (" (calibrated)" if fc.is_calibrated else "")
    ax.set_title(title or default, fontsize=11)
    times = pd.DatetimeIndex(([] if hist is None else list(hist.index)) + list(fc.timestamps))
    labels = _time_labels(times)

    def fmt(value: float, _pos: int) -> str:
        i = int(round(value)) + n_hist
        return labels[i] if 0 <= i < len(labels) and abs(value - round(value)) < 1e-6 else ""

    bottom = ax_p if ax_p is not None else ax
    bottom.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    bottom.xaxis.set_major_formatter(FuncFormatter(fmt))
    if ax_p is not None:
        prob = fc.prob_up().to_numpy()
        ax_p.bar(x_fut, prob, color=np.where(prob >= 0.5, UP, DOWN), width=0.7)
        ax_p.axhline(0.5, color="grey", linewidth=0.8)
        ax_p.set_ylim(0, 1)
        ax_p.set_ylabel("P(up)")
        ax_p.grid(alpha=0.25)
        ax_p.set_xlim(-n_hist - 1, fc.horizon)
    else:
        ax.set_xlim(-n_hist - 1, fc.horizon)
    for label in bottom.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")
    return fig


def save_png(fc: PlotForecast, path: str | os.PathLike, *, dpi: int = 110, **kwargs: Any) -> Path:
    """Render :func:`plot_forecast` to a PNG file, written atomically; returns the path."""
    fig = plot_forecast(fc, **kwargs)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write_bytes(Path(path), buf.getvalue())


def plotly_figure(
    fc: PlotForecast,
    *,
    levels: Sequence[float] = (0.5, 0.8, 0.95),
    column: str = "close",
    history_bars: int = 200,
    title: str | None = None,
    show_raw: bool = True,
) -> Any:
    """An interactive plotly ``Figure`` of the same picture as :func:`plot_forecast`, with a ``prob_up`` panel."""
    go = _need("plotly.graph_objects")
    subplots = _need("plotly.subplots")
    lv = _check_levels(levels)
    fig = subplots.make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.8, 0.2], vertical_spacing=0.04)
    hist = _history(fc, history_bars)
    if hist is not None:
        fig.add_trace(
            go.Candlestick(
                x=hist.index,
                open=hist["open"],
                high=hist["high"],
                low=hist["low"],
                close=hist["close"],
                name="history",
                increasing_line_color=UP,
                decreasing_line_color=DOWN,
            ),
            row=1,
            col=1,
        )
    start = [hist.index[-1]] if hist is not None else []
    anchor = [fc.last_close] if (hist is not None and column == "close") else ([np.nan] if hist is not None else [])
    x = list(start) + list(fc.timestamps)
    tag = "calibrated " if fc.is_calibrated else ""
    for i, (level, (lo, hi)) in enumerate(_bands(fc, lv, column).items()):
        opacity = 0.12 + 0.18 * i / max(1, len(lv) - 1)
        name = f"{tag}{round(level * 100)}% interval"
        fig.add_trace(
            go.Scatter(
                x=x,
                y=anchor + list(hi),
                mode="lines",
                line={"width": 0},
                showlegend=False,
                legendgroup=name,
                hoverinfo="skip",
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=anchor + list(lo),
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                name=name,
                legendgroup=name,
                fillcolor=f"rgba(31,119,180,{opacity:.2f})",
            ),
            row=1,
            col=1,
        )
    if fc.is_calibrated and show_raw:
        raw_level = max([v for v in lv if v <= 0.8 + 1e-9], default=lv[-1])
        rlo, rhi = fc.uncalibrated().interval(raw_level)
        for k, frame in enumerate((rlo, rhi)):
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=anchor + list(frame[column]),
                    mode="lines",
                    line={"dash": "dash", "color": RAW},
                    name=f"raw model {round(raw_level * 100)}% interval",
                    legendgroup="raw",
                    showlegend=k == 0,
                ),
                row=1,
                col=1,
            )
    fig.add_trace(
        go.Scatter(x=x, y=anchor + list(fc.mean()[column]), mode="lines", line={"color": "black"}, name="mean path"),
        row=1,
        col=1,
    )
    prob = fc.prob_up()
    fig.add_trace(
        go.Bar(x=prob.index, y=prob.values, name="P(up)", marker_color=[UP if p >= 0.5 else DOWN for p in prob.values]),
        row=2,
        col=1,
    )
    default = f"{fc.n_paths} sample paths, {fc.horizon} bars ahead" + (" (calibrated)" if fc.is_calibrated else "")
    fig.update_layout(title=title or default, xaxis_rangeslider_visible=False, template="plotly_white", height=600)
    fig.update_yaxes(title_text=column, row=1, col=1)
    fig.update_yaxes(title_text="P(up)", range=[0, 1], row=2, col=1)
    return fig


def save_html(fc: PlotForecast, path: str | os.PathLike, *, include_plotlyjs: bool | str = True, **kwargs: Any) -> Path:
    """Write :func:`plotly_figure` as a standalone HTML page, atomically; returns the path.

    ``include_plotlyjs=True`` embeds plotly.js (about 4.5 MB, works offline); ``"cdn"`` links it instead.
    """
    html = plotly_figure(fc, **kwargs).to_html(include_plotlyjs=include_plotlyjs, full_html=True)
    return atomic_write_bytes(Path(path), html.encode("utf-8"))
