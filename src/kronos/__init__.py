"""Kronos: a foundation model for financial candlesticks (K-lines).

Drop-in for the original research code: ``from kronos import Kronos, KronosTokenizer, KronosPredictor``.
Rolling evaluation as a DataFrame: ``kronos.cross_validation`` and ``kronos.evaluation_metrics`` (loaded on first
use: they need the ``eval`` extra).
"""

from typing import Any

from kronos.core.errors import InputError
from kronos.forecasting.calibration import CalibrationOptions
from kronos.forecasting.forecast import Forecast
from kronos.forecasting.predictor import KronosPredictor
from kronos.inference.options import SamplingOptions
from kronos.model.config import ConfigError, KronosConfig, TokenizerConfig
from kronos.model.kronos import Kronos
from kronos.model.registry import PUBLISHED
from kronos.model.tokenizer import KronosTokenizer

__all__ = [
    "PUBLISHED",
    "CalibrationOptions",
    "ConfigError",
    "Forecast",
    "InputError",
    "Kronos",
    "KronosConfig",
    "KronosPredictor",
    "KronosTokenizer",
    "SamplingOptions",
    "TokenizerConfig",
    "cross_validation",
    "evaluation_metrics",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``cross_validation`` and ``evaluation_metrics``, imported when first used (they need the eval extra)."""
    if name in ("cross_validation", "evaluation_metrics"):
        from kronos.evaluation import cross_validation as module

        return getattr(module, name)
    raise AttributeError(f"module 'kronos' has no attribute {name!r}")
