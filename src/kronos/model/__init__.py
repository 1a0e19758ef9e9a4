"""The published checkpoints as PyTorch modules: configs, transformer parts, BSQ tokenizer, the Kronos model.

Tensors only (no pandas). :mod:`~kronos.model.hub` reads and writes the published hub layout
(``config.json`` + ``model.safetensors``) and :mod:`~kronos.model.registry` knows which tokenizer and
context go with which model name. ``from kronos.model import Kronos, KronosTokenizer`` is the original's
spelling and keeps working.
"""

from kronos.model.config import ConfigError, KronosConfig, TokenizerConfig
from kronos.model.kronos import Kronos
from kronos.model.tokenizer import KronosTokenizer

__all__ = ["ConfigError", "Kronos", "KronosConfig", "KronosTokenizer", "TokenizerConfig"]
