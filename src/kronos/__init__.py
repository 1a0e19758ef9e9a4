"""Kronos: a foundation model for financial candlesticks (K-lines).

Drop-in for the original research code: ``from kronos import Kronos, KronosTokenizer, KronosPredictor``.
"""

from kronos.calibration import CalibrationOptions
from kronos.config import ConfigError, KronosConfig, TokenizerConfig
from kronos.errors import InputError
from kronos.forecast import Forecast
from kronos.model import Kronos
from kronos.options import SamplingOptions
from kronos.predictor import KronosPredictor
from kronos.registry import PUBLISHED
from kronos.tokenizer import KronosTokenizer

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
