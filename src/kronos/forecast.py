"""The forecast distribution: every sampled future path in price space, and views on it.

Averaging paths (what the original ``predict`` returns) throws away what the model knows about
risk. A :class:`Forecast` keeps the paths and derives the mean, quantiles, intervals and
probabilities from them, so every consumer (evaluation, calibration, plots, the HTTP API) reads the
same object. Baseline forecasters return it too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = ["FEATURES", "Forecast"]

FEATURES: tuple[str, ...] = ("open", "high", "low", "close", "volume", "amount")


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
    """

    paths: np.ndarray
    timestamps: pd.DatetimeIndex
    last_close: float
    columns: tuple[str, ...] = FEATURES
    history: pd.DataFrame | None = None
    info: dict[str, Any] = field(default_factory=dict)

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

    def paths_frame(self) -> pd.DataFrame:
        """Tidy long frame: one row per (path, bar) with the feature columns."""
        n_paths, n_bars, _ = self.paths.shape
        frame = pd.DataFrame(self.paths.reshape(n_paths * n_bars, -1), columns=list(self.columns))
        frame.insert(0, "timestamp", np.tile(self.timestamps.values, n_paths))
        frame.insert(0, "step", np.tile(np.arange(1, n_bars + 1), n_paths))
        frame.insert(0, "path", np.repeat(np.arange(n_paths), n_bars))
        return frame
