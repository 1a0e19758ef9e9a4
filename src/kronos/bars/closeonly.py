"""Bars from closes alone: what a close-only series (``y`` or just ``close``) becomes before the model sees it.

Most series people hold are one price per bar. Kronos reads candlesticks, so a close-only series is turned
into the simplest bars consistent with it: each bar opens at the previous close (the first at its own
close), its high and low are the larger and smaller of that open and its close, and there is no volume
(the model then sees volume and amount 0, as for any series without them). Whether the shipped model
keeps its skill on such bars was measured (``benchmarks/close_only.py``, docs/close-only.md); this module
only builds them and says when a frame is close-only.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from kronos.core.errors import InputError, Notice

__all__ = [
    "CLOSE_ALIASES",
    "CLOSE_ONLY_NOTICE",
    "CloseOnlyNotice",
    "close_only_bars",
    "from_closes",
    "is_close_only",
    "warn_close_only",
]

#: Column names read as the close of a close-only series (Nixtla's target column is ``y``).
CLOSE_ALIASES: tuple[str, ...] = ("close", "y")

#: The one line every door prints when it builds bars from closes.
CLOSE_ONLY_NOTICE = (
    "close-only series: bars built from the closes (open = previous close, high/low = max/min of the two); "
    "on the corpus this costs the shipped model about 6% in CRPS against full bars (docs/close-only.md)"
)


class CloseOnlyNotice(Notice):
    """Bars were built from closes alone (see :data:`CLOSE_ONLY_NOTICE`); the command line says so once a run."""

    once = True


def warn_close_only(where: str | None = None) -> None:
    """Issue the close-only notice once per call site (Python's default warning filter), naming ``where``."""
    prefix = f"{where}: " if where else ""
    warnings.warn(prefix + CLOSE_ONLY_NOTICE, CloseOnlyNotice, stacklevel=3)


def is_close_only(columns: object) -> bool:
    """True when ``columns`` hold a close (``close`` or ``y``, any case) and none of open, high and low."""
    names = {str(c).strip().lower() for c in columns}  # type: ignore[union-attr]
    return any(a in names for a in CLOSE_ALIASES) and not names & {"open", "high", "low"}


def close_only_bars(close: pd.Series | np.ndarray, *, label: str | None = None) -> pd.DataFrame:
    """``open, high, low, close`` built from a series of closes, in the given order.

    ``open[t] = close[t-1]`` (``open[0] = close[0]``), ``high = max(open, close)``,
    ``low = min(open, close)``. Closes must be finite and positive; the error names the row.
    """
    values = np.asarray(close, dtype=np.float64)
    where = f"{label}: " if label else ""
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(f"{where}close {values[row]!r} at row {row} is not a positive finite price")
    opens = np.concatenate([values[:1], values[:-1]])
    return pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(opens, values),
            "low": np.minimum(opens, values),
            "close": values,
        }
    )


def from_closes(df: pd.DataFrame, where: str | None = None, *, id_col: str | None = "symbol") -> pd.DataFrame:
    """``df`` with each series' ``close`` (or ``y``) turned into ``open, high, low, close``, rows already in time
    order within each series (``id_col`` separates the series of a panel); a frame with bars is returned as is.

    Issues :class:`CloseOnlyNotice` once. Other columns (time, id, volume) are kept; the index is kept.
    """
    if not is_close_only(df.columns):
        return df
    lower = {str(c).strip().lower(): c for c in df.columns}
    close = lower.get("close", lower.get("y"))
    warn_close_only(where)
    groups = [(None, df)] if id_col is None or id_col not in df.columns else list(df.groupby(id_col, sort=False))
    parts = []
    for key, part in groups:
        label = where if key is None else f"{where or 'the frame'} (symbol {key!r})"
        bars = close_only_bars(part[close], label=label)
        bars.index = part.index
        parts.append(part.drop(columns=[close]).join(bars))
    out = pd.concat(parts).loc[df.index]
    volumes = [c for c in df.columns if str(c).strip().lower() in ("volume", "amount")]
    first = [c for c in df.columns if c != close and c not in volumes]
    out = out[first + ["open", "high", "low", "close"] + volumes]
    out.attrs = dict(df.attrs)
    return out
