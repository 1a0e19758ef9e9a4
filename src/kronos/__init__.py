"""Kronos: a foundation model for financial candlesticks (K-lines).

Drop-in for the original research code: ``from kronos import Kronos, KronosTokenizer, KronosPredictor``.
"""

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
]
__version__ = "0.1.0"
