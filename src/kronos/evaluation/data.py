"""Reading the series to evaluate: one parquet/CSV file, a panel, or a folder of them.

Kept to one public function on purpose: the training data loaders (``kronos.data``) are written
separately, and evaluation only needs "give me named OHLCV frames". Swapping this reader for the
shared loader later touches nothing else in the evaluation package.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kronos.preprocessing import InputError, prepare_features, to_datetime_index, validate_timestamps

__all__ = ["read_series"]

_SUFFIXES = (".parquet", ".pq", ".csv")
_REQUIRED = ("timestamps", "open", "high", "low", "close")
_OPTIONAL = ("volume", "amount")


def _read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow/pandas raise many types; report the file whatever it was
        raise InputError(f"{path}: cannot be read as {path.suffix.lstrip('.')} ({exc})") from None


def _clean(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """Check the schema of one series and return it with the canonical columns, in time order."""
    if "timestamps" not in frame.columns:
        for alias in ("timestamp", "date", "datetime", "time"):
            if alias in frame.columns:
                frame = frame.rename(columns={alias: "timestamps"})
                break
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise InputError(f"{label}: missing column(s) {missing}; the file has columns {list(frame.columns)}")
    cols = [c for c in (*_REQUIRED, *_OPTIONAL) if c in frame.columns]
    out = frame[cols].reset_index(drop=True).copy()
    out["timestamps"] = to_datetime_index(out["timestamps"], name="column 'timestamps'", label=label)
    if getattr(out["timestamps"].dt, "tz", None) is not None:
        out["timestamps"] = out["timestamps"].dt.tz_localize(None)
    validate_timestamps(out["timestamps"], name="column 'timestamps'", label=label)
    prepare_features(out.drop(columns="timestamps"), label=label)  # NaN / non-positive price checks
    for c in cols[1:]:
        out[c] = out[c].astype(np.float64)
    return out


def read_series(
    path: str | Path,
    *,
    symbols: list[str] | None = None,
    max_series: int | None = None,
    min_rows: int = 1,
) -> dict[str, pd.DataFrame]:
    """Read every series under ``path`` into ``{name: frame}``.

    ``path`` is a ``.parquet``/``.csv`` file or a folder of them (not recursive). Files follow the
    shared data schema: ``timestamps, open, high, low, close[, volume[, amount]]``; a file with a
    ``symbol`` column is a panel and yields one series per symbol. A single-series file is named by
    its stem (``SPY_daily``). ``symbols`` keeps only the named series (an unknown name is an error);
    ``max_series`` keeps the first N in name order; series shorter than ``min_rows`` are dropped.
    Frames come back sorted by time with a fresh index and float64 values.
    """
    root = Path(path)
    if not root.exists():
        raise InputError(f"--data {root}: no such file or folder")
    if root.is_dir():
        files = sorted(p for p in root.iterdir() if p.suffix.lower() in _SUFFIXES and p.is_file())
        if not files:
            raise InputError(f"{root}: the folder holds no .parquet or .csv file")
    else:
        if root.suffix.lower() not in _SUFFIXES:
            raise InputError(f"{root}: expected a .parquet or .csv file (or a folder of them)")
        files = [root]

    series: dict[str, pd.DataFrame] = {}
    for file in files:
        table = _read_table(file)
        if "symbol" in table.columns:
            wanted = table["symbol"].astype(str)
            if symbols is not None:
                table = table[wanted.isin(symbols)]
                wanted = wanted[table.index]
            for sym, part in table.groupby(wanted, sort=True):
                name = str(sym)
                if name in series:
                    raise InputError(f"{file}: series {name!r} appears in more than one file")
                part = part.sort_values("timestamps", kind="stable") if "timestamps" in part else part
                series[name] = _clean(part, f"{file.name}[{name}]")
        else:
            name = file.stem
            if symbols is not None and name not in symbols:
                continue
            if name in series:
                raise InputError(f"{file}: series {name!r} appears in more than one file")
            series[name] = _clean(table, file.name)

    if symbols is not None:
        unknown = sorted(set(symbols) - set(series))
        if unknown:
            raise InputError(f"{root}: series not found: {unknown[:10]}{' ...' if len(unknown) > 10 else ''}")
    series = {k: v for k, v in sorted(series.items()) if len(v) >= min_rows}
    if max_series is not None:
        series = dict(list(series.items())[: max(0, int(max_series))])
    if not series:
        raise InputError(f"{root}: no series with at least {min_rows} rows")
    return series
