"""Reading OHLCV bars from CSV and Parquet files and folders.

Two table shapes are understood:

* one file per instrument (the symbol is the file name without its extension), and
* one long table holding many instruments with a ``symbol`` column (a *panel*).

Every instrument comes out as a :class:`SeriesData`: its time stamps (int64 nanoseconds, naive
wall-clock time) and the six model features built by :func:`kronos.preprocessing.prepare_features`,
so training sees exactly what inference sees. Problems are reported with the file, symbol, column
and row at fault (rows are 0-based data rows of the file, header excluded).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kronos.preprocessing import FEATURE_COLS, PRICE_COLS, InputError, prepare_features, to_datetime_index

__all__ = [
    "DataSourceError",
    "SUPPORTED_SUFFIXES",
    "SeriesData",
    "TIMESTAMP_CANDIDATES",
    "discover_files",
    "iter_series",
    "read_table",
    "series_from_frame",
]

#: File name endings read as tables (case-insensitive).
SUPPORTED_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".csv.zip", ".parquet", ".pq")
#: Column names tried, in order, when no timestamp column is configured.
TIMESTAMP_CANDIDATES: tuple[str, ...] = ("timestamps", "timestamp", "datetime", "date", "time")
#: Alternative spellings accepted for feature columns (the original Kronos scripts use ``vol``/``amt``).
COLUMN_ALIASES: dict[str, str] = {"vol": "volume", "amt": "amount"}


class DataSourceError(InputError):
    """A data file or folder cannot be used for training; the message names the file and the problem."""


@dataclass(frozen=True)
class SeriesData:
    """One instrument's bars, ready for the corpus builder.

    ``timestamps`` are int64 nanoseconds of naive wall-clock time (time-zone-aware input keeps its
    local wall time, which is what the calendar features describe); ``features`` is ``(n, 6)``
    float64 in the model's column order (open, high, low, close, volume, amount).
    """

    symbol: str
    source: str
    timestamps: np.ndarray
    features: np.ndarray

    def __len__(self) -> int:
        return int(self.timestamps.shape[0])


def _has_supported_suffix(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in SUPPORTED_SUFFIXES)


def _stem(path: Path) -> str:
    name = path.name
    lower = name.lower()
    for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def discover_files(
    paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str], *, pattern: str | None = None
) -> list[Path]:
    """Expand files and folders (recursively) into a sorted list of CSV/Parquet files.

    ``pattern`` (a glob such as ``"**/*_daily.parquet"``) selects files inside folders; by default
    every CSV/Parquet file below a folder is taken. A missing path, an unsupported file given
    explicitly, or a folder without any matching table is an error: silently training on nothing is
    worse than stopping.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise DataSourceError(f"data path {str(path)!r} does not exist")
        if path.is_dir():
            candidates = path.glob(pattern) if pattern else path.rglob("*")
            found = sorted(
                p for p in candidates if p.is_file() and _has_supported_suffix(p) and not p.name.startswith(".")
            )
            if not found:
                what = f"matching {pattern!r}" if pattern else f"({', '.join(SUPPORTED_SUFFIXES)})"
                raise DataSourceError(f"folder {str(path)!r} holds no CSV or Parquet file {what}")
            files.extend(found)
        else:
            if not _has_supported_suffix(path):
                raise DataSourceError(
                    f"{str(path)!r} is not a CSV or Parquet file (expected one of {', '.join(SUPPORTED_SUFFIXES)})"
                )
            files.append(path)
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read one CSV or Parquet file with lower-cased, stripped column names.

    A time index (as pandas writes to Parquet) becomes a ``timestamps`` column. Unreadable files
    raise :class:`DataSourceError` naming the file.
    """
    path = Path(path)
    lower = path.name.lower()
    try:
        if lower.endswith((".parquet", ".pq")):
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path)
    except Exception as exc:  # pandas/pyarrow raise many types; the file name is what the user needs
        raise DataSourceError(f"{path}: cannot be read as a table ({type(exc).__name__}: {exc})") from None
    if isinstance(df.index, pd.DatetimeIndex):
        df = df.reset_index(names="timestamps" if "timestamps" not in df.columns else "index_time")
    df.columns = [str(c).strip().lower() for c in df.columns]
    renames = {a: c for a, c in COLUMN_ALIASES.items() if a in df.columns and c not in df.columns}
    if renames:
        df = df.rename(columns=renames)
    dupes = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dupes:
        raise DataSourceError(f"{path}: duplicate column name(s) {dupes} (names are compared case-insensitively)")
    return df


def _find_timestamp_column(df: pd.DataFrame, configured: str | None, where: str) -> str:
    if configured is not None:
        name = configured.strip().lower()
        if name not in df.columns:
            raise DataSourceError(f"{where}: timestamp column {configured!r} not found; columns are {list(df.columns)}")
        return name
    for cand in TIMESTAMP_CANDIDATES:
        if cand in df.columns:
            return cand
    raise DataSourceError(
        f"{where}: no timestamp column; expected one of {list(TIMESTAMP_CANDIDATES)} (or set "
        f"data.timestamp_column), columns are {list(df.columns)}"
    )


def _parse_times(values: pd.Series, where: str, column: str) -> np.ndarray:
    try:
        idx = to_datetime_index(values, name=f"column {column!r}", label=where)  # integer epochs: unit from magnitude
    except InputError as exc:
        raise DataSourceError(str(exc)) from None
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    if idx.hasnans:
        row = int(np.flatnonzero(idx.isna())[0])
        raise DataSourceError(f"{where}: column {column!r} has a missing timestamp at row {values.index[row]}")
    return idx.as_unit("ns").asi8.copy()


def series_from_frame(df: pd.DataFrame, *, symbol: str, source: str, timestamp_column: str | None = None) -> SeriesData:
    """Validate one instrument's frame and build its :class:`SeriesData`.

    Rows must be in time order without duplicate time stamps (the error names the row, taken from
    the frame's index, which the readers set to the file's data row number). Features go through
    :func:`prepare_features` (volume/amount filling, NaN and non-positive price checks).
    """
    where = f"{source} (symbol {symbol!r})"
    ts_col = _find_timestamp_column(df, timestamp_column, where)
    times = _parse_times(df[ts_col], where, ts_col)
    if len(times) > 1:
        diffs = np.diff(times)
        if (diffs <= 0).any():
            pos = int(np.flatnonzero(diffs <= 0)[0]) + 1
            kind = "a duplicate of" if diffs[pos - 1] == 0 else "earlier than"
            raise DataSourceError(
                f"{where}: timestamps must increase; row {df.index[pos]} ({pd.Timestamp(times[pos])}) is {kind} "
                f"row {df.index[pos - 1]} ({pd.Timestamp(times[pos - 1])})"
            )
    try:
        features = prepare_features(df, label=where)
    except InputError as exc:
        raise DataSourceError(str(exc)) from None
    return SeriesData(symbol=symbol, source=source, timestamps=times, features=features)


def _needed_columns(df_columns: Iterable[str], symbol_column: str, ts_col: str) -> list[str]:
    wanted = {symbol_column, ts_col, *FEATURE_COLS}
    return [c for c in df_columns if c in wanted]


def iter_series(
    paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    symbol_column: str = "symbol",
    timestamp_column: str | None = None,
    symbols: Sequence[str] | None = None,
    min_rows: int = 1,
    pattern: str | None = None,
) -> Iterator[SeriesData]:
    """Yield every instrument found under ``paths``, one at a time (memory stays per-file).

    A file with a ``symbol_column`` is a panel and yields one series per symbol (rows of a symbol
    may be interleaved with other symbols' rows, but must be in time order); otherwise the file is
    one instrument named after the file. ``symbols`` keeps only those instruments (an error lists
    any that were never found). Instruments with fewer than ``min_rows`` bars are skipped.
    """
    wanted = None if symbols is None else {str(s) for s in symbols}
    found: set[str] = set()
    sym_col = symbol_column.strip().lower()
    emitted: dict[str, str] = {}
    for path in discover_files(paths, pattern=pattern):
        df = read_table(path)
        source = str(path)
        if len(df) == 0:
            continue
        df = df.reset_index(drop=True)
        ts_col = _find_timestamp_column(df, timestamp_column, source)
        missing = [c for c in PRICE_COLS if c not in df.columns]
        if missing:
            raise DataSourceError(f"{source}: missing price column(s) {missing}; columns are {list(df.columns)}")
        df = df[_needed_columns(df.columns, sym_col, ts_col)]
        if sym_col in df.columns:
            sym_values = df[sym_col]
            if sym_values.isna().any():
                row = int(np.flatnonzero(sym_values.isna().to_numpy())[0])
                raise DataSourceError(f"{source}: column {sym_col!r} is empty at row {row}")
            groups: Iterable[tuple[str, pd.DataFrame]] = (
                (str(name), group) for name, group in df.groupby(sym_values.astype(str), sort=True)
            )
        else:
            groups = [(_stem(path), df)]
        for symbol, frame in groups:
            if wanted is not None and symbol not in wanted:
                continue
            if symbol in emitted:
                raise DataSourceError(
                    f"symbol {symbol!r} appears in both {emitted[symbol]} and {source}; give each instrument one source"
                )
            emitted[symbol] = source
            found.add(symbol)
            if len(frame) < min_rows:
                continue
            yield series_from_frame(frame, symbol=symbol, source=source, timestamp_column=ts_col)
    if wanted is not None:
        absent = sorted(wanted - found)
        if absent:
            raise DataSourceError(f"symbol(s) {absent} listed in data.symbols were not found in the data paths")
