"""The forecast distribution: every sampled future path in price space, and views on it.

Averaging paths (what the original ``predict`` returns) throws away what the model knows about
risk. A :class:`Forecast` keeps the paths and derives the mean, quantiles, intervals and
probabilities from them, so every consumer (evaluation, calibration, plots, the HTTP API) reads the
same object. Baseline forecasters return it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kronos.bars.preprocessing import FEATURE_COLS
from kronos.forecasting.conformal import ConformalCalibration
from kronos.forecasting.plotting import plot_forecast, save_html, save_png

__all__ = ["FEATURES", "Forecast", "level_name"]

FEATURES: tuple[str, ...] = tuple(FEATURE_COLS)  # the model's columns, named once in kronos.bars.preprocessing


def level_name(q: float) -> str:
    """How a quantile level is written in column names and JSON keys: ``0.1`` (``close_q0.1``)."""
    return f"{float(q):g}"


@dataclass
class Forecast:
    """Sample paths of a forecast of one series.

    Attributes:
        paths: float array ``(n_paths, n_bars, n_features)`` in price space.
        timestamps: the future bar times, length ``n_bars``.
        last_close: the last observed close (reference for returns and ``prob_up``).
        columns: feature names of the last axis (the six Kronos columns by default).
        history: the observed bars the forecast was made from (optional; used by plots).
        info: free-form metadata (model name, sampling settings, calibration report, ...).
        raw_paths: for a calibrated forecast, the model's paths before calibration (else None).
        calibration: for a calibrated forecast, the fitted
            :class:`kronos.forecasting.conformal.ConformalCalibration` with the coverage it measured.
    """

    paths: np.ndarray
    timestamps: pd.DatetimeIndex
    last_close: float
    columns: tuple[str, ...] = FEATURES
    history: pd.DataFrame | None = None
    info: dict[str, Any] = field(default_factory=dict)
    raw_paths: np.ndarray | None = None
    calibration: ConformalCalibration | None = None

    def __post_init__(self) -> None:
        self.paths = np.asarray(self.paths, dtype=np.float64)
        if self.paths.ndim != 3:
            raise ValueError(f"Forecast.paths must be (paths, bars, features), got shape {self.paths.shape}")
        self.timestamps = pd.DatetimeIndex(self.timestamps)
        self.columns = tuple(self.columns)
        if self.paths.shape[1] != len(self.timestamps):
            raise ValueError(f"Forecast: {self.paths.shape[1]} bars in paths but {len(self.timestamps)} timestamps")
        if self.paths.shape[2] != len(self.columns):
            raise ValueError(f"Forecast: {self.paths.shape[2]} features in paths but columns {self.columns}")
        if self.paths.shape[0] < 1:
            raise ValueError("Forecast needs at least one path")
        if self.raw_paths is not None:
            self.raw_paths = np.asarray(self.raw_paths, dtype=np.float64)
            if self.raw_paths.shape != self.paths.shape:
                raise ValueError(f"Forecast.raw_paths has shape {self.raw_paths.shape}, paths {self.paths.shape}")

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def n_paths(self) -> int:
        return self.paths.shape[0]

    @property
    def horizon(self) -> int:
        return self.paths.shape[1]

    def column(self, name: str) -> np.ndarray:
        """Paths of one feature, ``(n_paths, n_bars)``."""
        try:
            return self.paths[:, :, self.columns.index(name)]
        except ValueError:
            raise KeyError(f"Forecast has no column {name!r}; columns are {self.columns}") from None

    def _frame(self, values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=self.timestamps, columns=list(self.columns))

    # -- point forecasts -----------------------------------------------------------------------
    def mean(self) -> pd.DataFrame:
        """Average over paths: what the original ``predict`` returns."""
        return self._frame(self.paths.mean(axis=0))

    def median(self) -> pd.DataFrame:
        return self._frame(np.median(self.paths, axis=0))

    # -- distribution --------------------------------------------------------------------------
    def quantile(self, q: float | Sequence[float]) -> pd.DataFrame | dict[float, pd.DataFrame]:
        """Per-bar quantiles over paths.

        A float gives one DataFrame (six columns, indexed by the future timestamps); a list of
        levels gives ``{level: DataFrame}``. Quantiles are computed column by column and are
        monotone in ``q``.
        """
        if isinstance(q, (list, tuple, np.ndarray)):
            _check_repeats(q)
            return {float(level): self.quantile(float(level)) for level in q}  # type: ignore[misc]
        level = float(q)
        if not 0.0 <= level <= 1.0:
            raise ValueError(f"quantile level must be in [0, 1], got {q}")
        return self._frame(np.quantile(self.paths, level, axis=0))

    def interval(self, level: float = 0.8) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Central interval holding ``level`` of the paths: ``(lower, upper)`` frames."""
        if not 0.0 < level < 1.0:
            raise ValueError(f"interval level must be in (0, 1), got {level}")
        alpha = (1.0 - level) / 2.0
        return self.quantile(alpha), self.quantile(1.0 - alpha)  # type: ignore[return-value]

    def prob_up(self) -> pd.Series:
        """Per future bar, the share of paths whose close ends above the last observed close."""
        close = self.column("close")
        return pd.Series((close > self.last_close).mean(axis=0), index=self.timestamps, name="prob_up")

    def to_frame(self, quantiles: Sequence[float] = (0.1, 0.5, 0.9)) -> pd.DataFrame:
        """One row per future bar, indexed by its time: the six means, ``{column}_q{level}`` per column and level, and
        ``prob_up`` — the columns of ``forecast_df``, the command line's CSV and the HTTP API, from one forecast."""
        mean = self.paths.mean(axis=0)
        qs = np.quantile(self.paths, list(quantiles), axis=0) if len(quantiles) else np.empty((0,) + mean.shape)
        part: dict[str, Any] = {col: mean[:, j] for j, col in enumerate(self.columns)}
        for j, col in enumerate(self.columns):
            for k, q in enumerate(quantiles):
                part[f"{col}_q{level_name(q)}"] = qs[k, :, j]
        part["prob_up"] = self.prob_up().to_numpy()
        return pd.DataFrame(part, index=self.timestamps)

    def paths_frame(self) -> pd.DataFrame:
        """Tidy long frame: one row per (path, bar) with the feature columns."""
        n_paths, n_bars, _ = self.paths.shape
        frame = pd.DataFrame(self.paths.reshape(n_paths * n_bars, -1), columns=list(self.columns))
        frame.insert(0, "timestamp", np.tile(self.timestamps.values, n_paths))
        frame.insert(0, "step", np.tile(np.arange(1, n_bars + 1), n_paths))
        frame.insert(0, "path", np.repeat(np.arange(n_paths), n_bars))
        return frame

    # -- returns and calibration ---------------------------------------------------------------
    def returns(self, column: str = "close") -> np.ndarray:
        """Simple returns of a column relative to the last observed close, ``(n_paths, n_bars)``.

        ``close`` returns are what calibration conformalises; for ``open``/``high``/``low`` the same
        reference gives returns comparable across bars.
        """
        if self.last_close == 0:
            raise ValueError("returns need a non-zero last close")
        return self.column(column) / self.last_close - 1.0

    @property
    def is_calibrated(self) -> bool:
        """True when the paths were recalibrated (see :mod:`kronos.forecasting.calibration`)."""
        return self.calibration is not None

    def uncalibrated(self) -> Forecast:
        """The model's own forecast before calibration (``self`` when not calibrated)."""
        if self.raw_paths is None:
            return self
        info = {k: v for k, v in self.info.items() if k != "calibration"}
        return Forecast(self.raw_paths, self.timestamps, self.last_close, self.columns, self.history, info)

    def coverage_report(self) -> pd.DataFrame:
        """Empirical coverage measured during calibration, per horizon step.

        Columns ``before_{p}`` (raw model), ``after_{p}`` (calibrated, on the calibration origins)
        and ``after_cv_{p}`` (calibrated with offsets fitted without the scored block of origins),
        for the central ``p``% intervals; a final row ``all`` averages the steps.
        """
        if self.calibration is None:
            raise ValueError("this forecast is not calibrated; call forecast(..., calibrate=True)")
        report = self.calibration.coverage.copy()
        report.index = report.index.astype(object)
        report.loc["all"] = report.mean(axis=0)
        return report

    # -- volatility ----------------------------------------------------------------------------
    def log_returns(self, column: str = "close") -> np.ndarray:
        """Bar-to-bar log returns of each path, the first from the last observed close: ``(n_paths, n_bars)``.

        Non-positive prices (possible with a poorly trained model far outside its history) give NaN.
        """
        values = self.column(column)
        prev = np.concatenate([np.full((self.n_paths, 1), self.last_close), values[:, :-1]], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.log(values / prev)
        out[~((values > 0) & (prev > 0))] = np.nan
        return out

    def realized_volatility(self, column: str = "close", annualize: float | None = None) -> np.ndarray:
        """Realised volatility over the whole horizon per path: ``sqrt(sum of squared log returns)``, ``(n_paths,)``.

        ``annualize`` (bars per year, e.g. 252 for daily bars) scales it to an annual figure:
        ``rv * sqrt(annualize / n_bars)``.
        """
        rv = np.sqrt(np.sum(self.log_returns(column) ** 2, axis=1))
        if annualize is not None:
            if not annualize > 0:
                raise ValueError(f"annualize must be > 0 bars per year, got {annualize!r}")
            rv = rv * np.sqrt(annualize / self.horizon)
        return rv

    def volatility_forecast(
        self, levels: Sequence[float] = (0.1, 0.5, 0.9), column: str = "close", annualize: float | None = None
    ) -> pd.DataFrame:
        """Forecast of realised volatility from now to each future bar, from the paths.

        Row ``h`` describes ``sqrt(sum_{i<=h} r_i^2)`` over paths (``r_i`` the log returns of each path):
        its mean and the requested quantiles (columns ``mean``, ``q10``, ``q50``, ...). The last row is the
        realised volatility over the whole horizon. ``annualize`` (bars per year) scales row ``h`` by
        ``sqrt(annualize / h)``. Paths with non-positive prices are left out.
        """
        cum = np.sqrt(np.cumsum(self.log_returns(column) ** 2, axis=1))
        if annualize is not None:
            if not annualize > 0:
                raise ValueError(f"annualize must be > 0 bars per year, got {annualize!r}")
            cum = cum * np.sqrt(annualize / np.arange(1, self.horizon + 1))
        valid = np.isfinite(cum).all(axis=1)
        if not valid.any():
            raise ValueError("no path has positive prices throughout; realised volatility is undefined")
        cum = cum[valid]
        frame = pd.DataFrame({"mean": cum.mean(axis=0)}, index=self.timestamps)
        _check_repeats(levels)
        for level in levels:
            if not 0.0 <= float(level) <= 1.0:
                raise ValueError(f"quantile level must be in [0, 1], got {level}")
            frame[f"q{round(float(level) * 100)}"] = np.quantile(cum, float(level), axis=0)
        return frame

    # -- plots ---------------------------------------------------------------------------------
    def plot(self, **kwargs: Any) -> Any:
        """A matplotlib figure: candlesticks, mean path and quantile bands
        (:func:`kronos.forecasting.plotting.plot_forecast`)."""
        return plot_forecast(self, **kwargs)

    def plot_png(self, path: str | Path, **kwargs: Any) -> Path:
        """Write the plot as a PNG (atomically) and return its path."""
        return save_png(self, path, **kwargs)

    def plot_html(self, path: str | Path, **kwargs: Any) -> Path:
        """Write an interactive plotly HTML page of the forecast (atomically) and return its path."""
        return save_html(self, path, **kwargs)


def _check_repeats(levels: Sequence[float]) -> None:
    """Refuse a level given twice: its result would silently appear once (every API refuses it alike)."""
    seen = [float(level) for level in levels]
    repeated = sorted({level for level in seen if seen.count(level) > 1})
    if repeated:
        raise ValueError(f"quantile levels repeat: {repeated}; give each level once")
