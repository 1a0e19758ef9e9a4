"""The small sample series bundled with the package, so that examples and tests run offline.

Excerpts of gym-anytrading's GOOGL daily and EURUSD hourly bars (MIT licence; see the README).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from kronos.bars.reader import read_bars
from kronos.core.errors import InputError

__all__ = ["SAMPLE_FILES", "load_sample", "sample_data_path"]

SAMPLE_FILES: dict[str, str] = {"googl": "GOOGL_daily.csv", "eurusd": "EURUSD_1h.csv"}


def sample_data_path(name: str = "googl") -> Path:
    """Path of a bundled sample series: ``googl`` (600 daily bars) or ``eurusd`` (1,000 hourly bars)."""
    try:
        return Path(str(resources.files("kronos") / "sample_data" / SAMPLE_FILES[name.lower()]))
    except KeyError:
        raise InputError(f"unknown sample {name!r}; choose from {sorted(SAMPLE_FILES)}") from None


def load_sample(name: str = "googl") -> pd.DataFrame:
    """A bundled sample as a frame, read by :func:`kronos.bars.reader.read_bars`: ``timestamps`` and ``open, high, low,
    close, volume`` (float64)."""
    return read_bars(sample_data_path(name))
