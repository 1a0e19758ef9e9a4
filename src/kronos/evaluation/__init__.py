"""Honest, reproducible evaluation of forecasters: rolling origins, baselines, metrics, backtests.

Modules: :mod:`~kronos.evaluation.data` (reading series), :mod:`~kronos.evaluation.forecasters`
(the interface, the Kronos adapter, names to forecasters), :mod:`~kronos.evaluation.baselines`,
:mod:`~kronos.evaluation.origins` (where forecast origins go), :mod:`~kronos.evaluation.rolling` (forecasting
and scoring at them), :mod:`~kronos.evaluation.metrics`,
:mod:`~kronos.evaluation.crosssection` (IC / RankIC), :mod:`~kronos.evaluation.backtest`,
:mod:`~kronos.evaluation.report` (summary.md, PNG and HTML), and the runs behind the commands:
:mod:`~kronos.evaluation.evaluation_run`, :mod:`~kronos.evaluation.backtest_run` and what they share,
:mod:`~kronos.evaluation.common`.
"""

from kronos.evaluation.data import read_series
from kronos.evaluation.forecasters import (
    Forecaster,
    ForecasterSpec,
    KronosForecaster,
    load_forecaster,
    parse_forecaster_spec,
)
from kronos.evaluation.metrics import compute_metrics
from kronos.evaluation.origins import RollingConfig
from kronos.evaluation.rolling import RollingResult, rolling_evaluate

__all__ = [
    "Forecaster",
    "ForecasterSpec",
    "KronosForecaster",
    "RollingConfig",
    "RollingResult",
    "compute_metrics",
    "load_forecaster",
    "parse_forecaster_spec",
    "read_series",
    "rolling_evaluate",
]
