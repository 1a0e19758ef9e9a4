"""What the ``kronos evaluate`` and ``kronos backtest`` runs share: name lists, the staging folder, the settings table.

Both runs compute everything first and write it into a staging folder beside the output folder
(:func:`kronos.core.files.new_temp_dir`); only when every file exists are they moved into place one by one
with ``os.replace``. A run that fails (bad input, a crash, Ctrl-C) therefore leaves the results of an earlier
run intact. Keeping that rule in one place is why this module exists.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from kronos.core.files import new_temp_dir

__all__ = ["MIN_IC_NAMES", "settings_table", "split_names", "staging"]

MIN_IC_NAMES = 10  # fewer instruments give too noisy a cross-sectional correlation to report


def split_names(values: Sequence[str] | None) -> list[str]:
    """Flatten repeated and comma-separated CLI values: ``["a,b", "c"]`` -> ``["a", "b", "c"]``."""
    out: list[str] = []
    for value in values or []:
        out.extend(v.strip() for v in str(value).split(",") if v.strip())
    return out


@contextmanager
def staging(out_dir: Path) -> Iterator[Path]:
    """A fresh folder beside ``out_dir`` (:func:`kronos.core.files.new_temp_dir`) whose files move into ``out_dir``
    only when the block succeeds; on failure ``out_dir`` keeps its earlier results."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = new_temp_dir(out_dir)
    try:
        yield stage
        for item in sorted(stage.iterdir()):
            os.replace(item, out_dir / item.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def settings_table(settings: dict[str, Any]) -> pd.DataFrame:
    """The run's settings as a two-column table (``setting``, ``value``), the first table of every report."""
    return pd.DataFrame({"setting": list(settings), "value": [str(v) for v in settings.values()]})
