"""Baseline forecasters with the same interface as Kronos checkpoints.

A foundation model is only worth its cost if it beats these. Every baseline models the **close**
only, in log space (so prices stay positive), and returns a :class:`~kronos.forecasting.forecast.Forecast`
whose other columns are filled the same way for all of them:

* ``close``: the model's sample path;
* ``open``: the previous close of the same path (the origin's close for the first bar);
* ``high`` / ``low``: ``max`` / ``min`` of that open and close (no intrabar range is modelled);
* ``volume`` / ``amount``: the last observed values, held flat.

So only the close-based metrics and signals are meaningful for baselines.

* :class:`Persistence`: tomorrow's close is today's close (one deterministic path).
* :class:`DriftRandomWalk`: random walk with drift on log prices; the paths resample the history's
  log returns (``bootstrap``) or draw normal returns with the historical mean and volatility
  (``normal``).
* :class:`Garch`: constant mean + GARCH(1,1) volatility on log returns, fitted with ``arch`` and
  simulated forward, so volatility clusters carry into the forecast.
* :class:`StatsForecastModel`: ``statsforecast`` AutoETS or AutoARIMA on the log close. Its
  predictive distribution is Gaussian per step; paths are built from independent Gaussian
  increments whose variances add up to each step's predictive variance, so every step's marginal
  is exactly the model's while paths stay continuous.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from kronos.bars.preprocessing import PRICE_COLS
from kronos.core.errors import InputError
from kronos.core.extras import require
from kronos.forecasting.forecast import FEATURES, Forecast

__all__ = ["DriftRandomWalk", "Garch", "Persistence", "StatsForecastModel", "paths_to_forecast"]


def _log_close(history: pd.DataFrame, name: str, min_rows: int = 2) -> np.ndarray:
    if "close" not in history.columns:
        raise InputError(f"{name}: history has no 'close' column (columns {list(history.columns)})")
    close = history["close"].to_numpy(dtype=np.float64)
    if len(close) < min_rows:
        raise InputError(f"{name}: needs at least {min_rows} bars of history, got {len(close)}")
    if not np.isfinite(close).all() or (close <= 0).any():
        row = int(np.flatnonzero(~np.isfinite(close) | (close <= 0))[0])
        raise InputError(f"{name}: close at row {row} is {close[row]!r}; prices must be finite and > 0")
    return np.log(close)


def paths_to_forecast(
    close_paths: np.ndarray,
    history: pd.DataFrame,
    future_timestamps: pd.DatetimeIndex,
    name: str,
    **info: object,
) -> Forecast:
    """Wrap close paths ``(n_paths, horizon)`` into a six-column :class:`Forecast` (see module doc)."""
    close = np.asarray(close_paths, dtype=np.float64)
    n_paths, horizon = close.shape
    last_close = float(history["close"].iloc[-1])
    opens = np.concatenate([np.full((n_paths, 1), last_close), close[:, :-1]], axis=1)
    last_volume = float(history["volume"].iloc[-1]) if "volume" in history else 0.0
    if "amount" in history:
        last_amount = float(history["amount"].iloc[-1])
    else:  # the same convention as preprocessing: amount = volume * mean price
        last_amount = last_volume * float(history[PRICE_COLS].iloc[-1].mean())
    paths = np.empty((n_paths, horizon, len(FEATURES)))
    paths[:, :, 0] = opens
    paths[:, :, 1] = np.maximum(opens, close)
    paths[:, :, 2] = np.minimum(opens, close)
    paths[:, :, 3] = close
    paths[:, :, 4] = last_volume
    paths[:, :, 5] = last_amount
    return Forecast(
        paths=paths,
        timestamps=pd.DatetimeIndex(future_timestamps),
        last_close=last_close,
        info={"forecaster": name, **info},
    )


class Persistence:
    """Last close carried forward: the no-change forecast every model must beat on price error."""

    def __init__(self, name: str = "persistence") -> None:
        self.name = name

    def forecast(
        self,
        history: pd.DataFrame,
        future_timestamps: pd.DatetimeIndex,
        num_samples: int,
        *,
        seed: int | None = None,
    ) -> Forecast:
        _log_close(history, self.name, min_rows=1)  # validates the close column
        paths = np.full((1, len(future_timestamps)), float(history["close"].iloc[-1]))
        return paths_to_forecast(paths, history, future_timestamps, self.name, deterministic=True)


class DriftRandomWalk:
    """Random walk with drift on log prices, with bootstrapped or normal historical returns.

    ``method="bootstrap"`` resamples the history's one-bar log returns with replacement (keeps fat
    tails, no distributional assumption); ``method="normal"`` draws ``N(mean, std)`` of those returns
    (the historical-volatility random walk). The drift is the mean log return in both cases.
    """

    def __init__(self, method: str = "bootstrap", name: str = "drift") -> None:
        if method not in {"bootstrap", "normal"}:
            raise ValueError(f"DriftRandomWalk: method must be 'bootstrap' or 'normal', got {method!r}")
        self.method = method
        self.name = name

    def forecast(
        self,
        history: pd.DataFrame,
        future_timestamps: pd.DatetimeIndex,
        num_samples: int,
        *,
        seed: int | None = None,
    ) -> Forecast:
        log_close = _log_close(history, self.name, min_rows=3)
        returns = np.diff(log_close)
        horizon = len(future_timestamps)
        n = max(1, int(num_samples))
        rng = np.random.default_rng(seed)
        if self.method == "bootstrap":
            draws = rng.choice(returns, size=(n, horizon), replace=True)
        else:
            draws = rng.normal(returns.mean(), returns.std(ddof=1), size=(n, horizon))
        paths = np.exp(log_close[-1] + np.cumsum(draws, axis=1))
        return paths_to_forecast(paths, history, future_timestamps, self.name, method=self.method)


class Garch:
    """GARCH(1,1) on percentage log returns with a constant mean, simulated forward with ``arch``.

    The fit uses only the history given; ``dist`` is ``"normal"`` or ``"t"`` (Student-t innovations).
    Price paths are ``last_close * exp(cumsum(simulated returns))``.
    """

    def __init__(self, dist: str = "normal", name: str = "garch") -> None:
        if dist not in {"normal", "t"}:
            raise ValueError(f"Garch: dist must be 'normal' or 't', got {dist!r}")
        self.dist = dist
        self.name = name

    def forecast(
        self,
        history: pd.DataFrame,
        future_timestamps: pd.DatetimeIndex,
        num_samples: int,
        *,
        seed: int | None = None,
    ) -> Forecast:
        univariate = require("eval", "arch.univariate", purpose="the garch baselines")
        GARCH, ConstantMean, Normal, StudentsT = (  # noqa: N806
            univariate.GARCH,
            univariate.ConstantMean,
            univariate.Normal,
            univariate.StudentsT,
        )

        log_close = _log_close(history, self.name, min_rows=20)
        returns = 100.0 * np.diff(log_close)
        if np.std(returns) == 0.0:  # a flat history: GARCH is undefined, the only honest forecast is flat
            paths = np.full((1, len(future_timestamps)), float(history["close"].iloc[-1]))
            return paths_to_forecast(paths, history, future_timestamps, self.name, degenerate=True)
        # the innovations' generator is seeded through the distribution: arch's simulation draws from it
        generator = np.random.default_rng(seed)
        dist = Normal(seed=generator) if self.dist == "normal" else StudentsT(seed=generator)
        model = ConstantMean(returns, volatility=GARCH(p=1, q=1), distribution=dist, rescale=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning / DataScaleWarning on short windows
            fit = model.fit(disp="off", show_warning=False)
            sims = fit.forecast(
                horizon=len(future_timestamps),
                method="simulation",
                simulations=max(1, int(num_samples)),
                reindex=False,
            )
        sim_returns = sims.simulations.values[-1] / 100.0  # (n_paths, horizon)
        paths = np.exp(log_close[-1] + np.cumsum(sim_returns, axis=1))
        return paths_to_forecast(
            paths,
            history,
            future_timestamps,
            self.name,
            params={k: float(v) for k, v in fit.params.items()},
            convergence=int(fit.convergence_flag),
        )


class StatsForecastModel:
    """``statsforecast`` AutoETS or AutoARIMA on the log close (non-seasonal).

    The model gives a Gaussian predictive mean ``m_h`` and standard deviation ``s_h`` per step (read
    from its 80% interval). Paths are ``m_h + cumsum(z_i * sqrt(s_i^2 - s_{i-1}^2))``: their marginal
    at each step is exactly ``N(m_h, s_h^2)``.
    """

    def __init__(self, kind: str = "ets", name: str | None = None, season_length: int = 1) -> None:
        if kind not in {"ets", "arima"}:
            raise ValueError(f"StatsForecastModel: kind must be 'ets' or 'arima', got {kind!r}")
        self.kind = kind
        self.name = name or kind
        self.season_length = int(season_length)

    def _model(self):  # imported lazily: statsforecast is heavy to import
        models = require("eval", "statsforecast.models", purpose=f"the {self.kind} baseline")
        if self.kind == "ets":
            return models.AutoETS(season_length=self.season_length)
        return models.AutoARIMA(season_length=self.season_length)

    def forecast(
        self,
        history: pd.DataFrame,
        future_timestamps: pd.DatetimeIndex,
        num_samples: int,
        *,
        seed: int | None = None,
    ) -> Forecast:
        log_close = _log_close(history, self.name, min_rows=10)
        horizon = len(future_timestamps)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = self._model().forecast(y=log_close, h=horizon, level=[80])
        mean = np.asarray(out["mean"], dtype=np.float64)
        sigma = (np.asarray(out["hi-80"], dtype=np.float64) - mean) / require("eval", "scipy.stats").norm.ppf(0.9)
        sigma = np.maximum.accumulate(np.nan_to_num(np.maximum(sigma, 0.0)))
        increments = np.sqrt(np.diff(np.concatenate([[0.0], sigma**2])))
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((max(1, int(num_samples)), horizon))
        paths = np.exp(mean + np.cumsum(z * increments, axis=1))
        return paths_to_forecast(paths, history, future_timestamps, self.name, model=self.kind)
