"""Fixtures shared by the server tests."""

from __future__ import annotations

import pandas as pd
import pytest

from kronos.bars.reader import read_bars
from kronos.bars.samples import sample_data_path


@pytest.fixture(scope="module")
def googl() -> pd.DataFrame:
    """The bundled GOOGL daily sample, as the reader gives it."""
    return read_bars(sample_data_path("googl"))
