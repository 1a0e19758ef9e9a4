"""Kronos: a foundation model for financial candlesticks (K-lines).

Drop-in for the original research code: ``from kronos import Kronos, KronosTokenizer, KronosPredictor``.
"""

from kronos.config import ConfigError, KronosConfig, TokenizerConfig
from kronos.forecast import Forecast
from kronos.model import Kronos
from kronos.predictor import KronosPredictor
from kronos.preprocessing import InputError
from kronos.registry import PUBLISHED
from kronos.tokenizer import KronosTokenizer

__all__ = [
    "PUBLISHED",
    "ConfigError",
    "Forecast",
    "InputError",
    "Kronos",
    "KronosConfig",
    "KronosPredictor",
    "KronosTokenizer",
    "TokenizerConfig",
]
__version__ = "0.1.0"
