"""Reading bars: the one way CSV files, Parquet files, folders and DataFrames become OHLCV frames.

Every command reads through here (``forecast``, ``forecast-dist``, ``demo``, ``evaluate``,
``backtest``, ``train``, the HTTP server's CSV upload, the bundled samples), so a file one of them
accepts the others accept too, and a bad file fails with the same message everywhere.

The rules:

* **files**: ``.csv`` (also ``.csv.gz``, ``.csv.zip``), ``.parquet`` or ``.pq``; any other name is
  an error naming the file. Folders are searched recursively (hidden files skipped).
* **column names** are stripped and compared case-insensitively; ``vol`` is read as ``volume``,
  ``amt`` and ``turnover`` as ``amount`` (:data:`COLUMN_ALIASES`). Other columns are dropped.
* **the time column** is the configured ``time_column``, else the first of :data:`TIME_COLUMNS`
  (``timestamps, timestamp, datetime, date, time, ds``), else a ``DatetimeIndex`` (as pandas writes a
  time-indexed frame to Parquet). It comes back as ``timestamps``. Integer or float epochs get their
  unit (s, ms, us, ns) from their magnitude (:func:`kronos.bars.preprocessing.epoch_unit`); time zones
  are kept as given.
* **panels**: a ``symbol`` column (or the configured ``symbol_column``; without either, Nixtla's
  ``unique_id``) holds several series, whose rows may be interleaved; it comes back as ``symbol``. Without
  one, the file is one series named after the file (:func:`series_name`).
* **close-only series**: a ``close`` (or Nixtla's ``y``) without ``open``, ``high`` and ``low`` becomes bars
  (:func:`kronos.bars.closeonly.close_only_bars`: open = previous close, high/low = max/min of the two), with
  one :class:`~kronos.bars.closeonly.CloseOnlyNotice` warning; the cost is measured in docs/close-only.md.
* **validation**: ``open, high, low, close`` must be present (or a close alone, above); each series is read
  in time order (rows in any order are sorted, stably) and must not repeat a time,
  and the values must pass :func:`kronos.bars.preprocessing.prepare_features` (no NaN, positive prices,
  consistent bars). Errors are :class:`DataSourceError` (an :class:`InputError`) naming the file,
  the symbol for panels, the column, the row (0-based data row of the file, header excluded) and
  the value.

The canonical column names themselves are defined once, in :mod:`kronos.bars.preprocessing`
(:data:`~kronos.bars.preprocessing.FEATURE_COLS`) and here (:data:`TIME_COL`, :data:`SYMBOL_COL`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from kronos.bars.closeonly import from_closes, is_close_only
from kronos.bars.preprocessing import COLUMN_ALIASES, FEATURE_COLS, PRICE_COLS, prepare_features, to_datetime_index
from kronos.core.errors import InputError
from kronos.core.files import atomic_write

__all__ = [
    "COLUMN_ALIASES",
    "DataSourceError",
    "SUFFIXES",
    "SYMBOL_COL",
    "TIME_COL",
    "TIME_COLUMNS",
    "check_series",
    "discover_files",
    "iter_bars",
    "read_bars",
    "read_table",
    "resolve_columns",
    "series_name",
    "write_table",
]

#: The time column of every frame this module returns.
TIME_COL = "timestamps"
#: The series-id column of a panel, as returned.
SYMBOL_COL = "symbol"
#: Column names taken as the time column, in this order, when none is configured (case-insensitive).
TIME_COLUMNS: tuple[str, ...] = ("timestamps", "timestamp", "datetime", "date", "time", "ds")
#: The id column taken when there is no ``symbol`` column (Nixtla's convention).
ID_ALIAS = "unique_id"
#: File name endings read as tables (case-insensitive).
SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".csv.zip", ".parquet", ".pq")
_PARQUET = (".parquet", ".pq")


class DataSourceError(InputError):
    """A bar file, folder or frame that cannot be used; the message names the file and the problem."""


Source = str | os.PathLike | pd.DataFrame


def _suffix(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in sorted(SUFFIXES, key=len, reverse=True) if name.endswith(s)), None)


def _table_suffix(path: Path) -> str:
    """The table suffix of a file given explicitly; any other name is an error naming the file."""
    suffix = _suffix(path)
    if suffix is None:
        raise DataSourceError(
            f"{path}: not a CSV or Parquet file name (expected one of {', '.join(SUFFIXES)}); rename it or convert it"
        )
    return suffix


def series_name(path: str | os.PathLike) -> str:
    """A single-series file's name: the file name without its table suffix (``SPY_daily.csv.gz``: ``SPY_daily``)."""
    path = Path(path)
    suffix = _suffix(path)
    return path.name[: -len(suffix)] if suffix else path.stem


def resolve_columns(
    columns: Sequence[object], *, id_col: str | None = None, time_col: str | None = None
) -> tuple[str | None, str | None]:
    """The id and time columns of a table, as its columns spell them: ``(id or None, time or None)``.

    Given names are matched case-insensitively; otherwise the id is ``symbol``, else ``unique_id``, and the time
    the first of :data:`TIME_COLUMNS` present (None: let the reader use the time index or say what is missing).
    """
    lower = {str(c).strip().lower(): str(c) for c in columns}
    ident = lower.get(id_col.strip().lower(), id_col) if id_col else lower.get(SYMBOL_COL, lower.get(ID_ALIAS))
    if time_col:
        return ident, lower.get(time_col.strip().lower(), time_col)
    return ident, next((lower[c] for c in TIME_COLUMNS if c in lower), None)


def _read_file(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataSourceError(f"{path} does not exist")
    if path.is_dir():
        raise DataSourceError(f"{path} is a folder, not a CSV or Parquet file")
    suffix = _table_suffix(path)
    kind = "Parquet" if suffix in _PARQUET else "CSV"
    try:
        return pd.read_parquet(path) if kind == "Parquet" else pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataSourceError(f"{path}: the file is empty") from None
    except Exception as exc:  # pandas/pyarrow raise many types; the file name is what the user needs
        raise DataSourceError(f"{path}: cannot be read as {kind} ({type(exc).__name__}: {exc})") from None


def read_table(
    source: Source,
    *,
    time_column: str | None = None,
    symbol_column: str = SYMBOL_COL,
    label: str | None = None,
) -> pd.DataFrame:
    """Read a file (or take a frame) and return its canonical columns, without checking the values.

    The result has ``timestamps`` (parsed, see the module rules), the feature columns present
    (``open, high, low, close, volume, amount``, canonical names) and ``symbol`` when the source has
    a ``symbol_column``; other columns are dropped; ``attrs["source_names"]`` maps ``timestamps`` and ``symbol``
    to the source's (lower-cased) names, so output can speak them (``ds``, ``unique_id``). The index is the
    0-based data row of the file.
    Prices are not required: a table of future times (``--future-timestamps``) is read this way.
    ``label`` names a frame in messages (files are named by their path).
    """
    if isinstance(source, pd.DataFrame):
        where = label or "the frame"
        df = source.copy()
    else:
        path = Path(source).expanduser()
        where = label or str(path)
        df = _read_file(path)
    if isinstance(df.index, pd.DatetimeIndex):
        name = str(df.index.name).strip().lower() if df.index.name is not None else TIME_COL
        df = df.reset_index(names="__index_time__" if name in {str(c).strip().lower() for c in df.columns} else name)
    df = df.reset_index(drop=True)
    df.columns = [str(c).strip().lower() for c in df.columns]
    dupes = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dupes:
        raise DataSourceError(f"{where}: duplicate column name(s) {dupes} (names are compared case-insensitively)")

    if time_column is not None:
        tcol = time_column.strip().lower()
        if tcol not in df.columns:
            raise DataSourceError(f"{where}: no time column {time_column!r}; the columns are {list(df.columns)}")
    else:
        tcol = next((c for c in TIME_COLUMNS if c in df.columns), None)
        if tcol is None and "__index_time__" in df.columns:
            tcol = "__index_time__"
        if tcol is None:
            raise DataSourceError(
                f"{where}: no timestamp column; expected one of {list(TIME_COLUMNS)} (any case) or a time index "
                f"(or name the column), the columns are {list(df.columns)}"
            )
    scol = symbol_column.strip().lower()
    if scol == SYMBOL_COL and scol not in df.columns and ID_ALIAS in df.columns:
        scol = ID_ALIAS
    renames = {tcol: TIME_COL}
    if scol in df.columns:
        renames[scol] = SYMBOL_COL
    for alias, canonical in COLUMN_ALIASES.items():
        if alias in df.columns and canonical not in df.columns and canonical not in renames.values():
            renames[alias] = canonical
    if "y" in df.columns and "y" not in renames and is_close_only(df.columns) and "close" not in df.columns:
        renames["y"] = "close"  # Nixtla's target column of a close-only series
    keep = [c for c in df.columns if renames.get(c, c) in {TIME_COL, SYMBOL_COL, *FEATURE_COLS}]
    # a feature-named column that is also being renamed away (e.g. a time column called "open") is not kept twice
    keep = [c for c in keep if c in renames or c not in renames.values()]
    df = df[keep].rename(columns=renames)
    try:  # integer epochs get their unit from the magnitude
        df[TIME_COL] = to_datetime_index(df[TIME_COL], name=f"column {tcol!r}", label=where)
    except InputError as exc:
        raise DataSourceError(str(exc)) from None
    if df[TIME_COL].isna().any():
        row = int(np.flatnonzero(df[TIME_COL].isna().to_numpy())[0])
        raise DataSourceError(f"{where}: column {tcol!r} has a missing timestamp at row {row}")
    if SYMBOL_COL in df.columns and df[SYMBOL_COL].isna().any():
        row = int(np.flatnonzero(df[SYMBOL_COL].isna().to_numpy())[0])
        raise DataSourceError(f"{where}: column {scol!r} is empty at row {row}")
    order = [c for c in (SYMBOL_COL, TIME_COL, *FEATURE_COLS) if c in df.columns]
    out = df[order]
    out.attrs["source_names"] = {TIME_COL: tcol, SYMBOL_COL: scol}  # users' names, for output in their terms
    return out


def check_series(frame: pd.DataFrame, *, label: str) -> np.ndarray:
    """Check one series' canonical frame and return its six model features ``(n, 6)`` float64.

    Rows must be in time order (the readers sort each series) without duplicate times (the error
    names both rows, taken from the frame's index, i.e. the file's data rows); the values go through
    :func:`kronos.bars.preprocessing.prepare_features` (NaN, infinite, non-positive prices, impossible bars).
    Raises :class:`DataSourceError` prefixed with ``label``.
    """
    missing = [c for c in PRICE_COLS if c not in frame.columns]
    if missing:
        raise DataSourceError(f"{label}: missing price column(s) {missing}; the columns are {list(frame.columns)}")
    times = pd.DatetimeIndex(frame[TIME_COL])
    if not times.is_monotonic_increasing:
        raise DataSourceError(f"{label}: rows are not in time order (read the frame with read_bars or sort it)")
    if len(times) > 1 and times.has_duplicates:
        pos = int(np.flatnonzero(np.diff(times.asi8) == 0)[0]) + 1
        raise DataSourceError(
            f"{label}: duplicate timestamps; row {frame.index[pos]} ({times[pos]}) is a duplicate of "
            f"row {frame.index[pos - 1]} ({times[pos - 1]})"
        )
    try:
        return prepare_features(frame, label=label)
    except InputError as exc:
        raise DataSourceError(str(exc)) from None


def _require_bars(df: pd.DataFrame, where: str) -> None:
    """A table of bars has the four price columns (or a close alone) and at least one row."""
    missing = [] if is_close_only(df.columns) else [c for c in PRICE_COLS if c not in df.columns]
    if missing:
        raise DataSourceError(f"{where}: missing price column(s) {missing}; the columns are {list(df.columns)}")
    if len(df) == 0:
        raise DataSourceError(f"{where}: no bars (the table has a header but no rows)")


def _as_float(df: pd.DataFrame) -> pd.DataFrame:
    """The feature columns as float64 (integer volumes and prices included)."""
    return df.astype({c: np.float64 for c in FEATURE_COLS if c in df.columns})


def _label(where: str, symbol: str | None) -> str:
    return where if symbol is None else f"{where} (symbol {symbol!r})"


def _in_time_order(df: pd.DataFrame) -> pd.DataFrame:
    """Each series' rows sorted by time (stable), in the slots its rows had: a panel's interleaving and
    the order in which series first appear are kept, and rows keep their file row numbers as index."""
    if SYMBOL_COL not in df.columns:
        return df if df[TIME_COL].is_monotonic_increasing else df.sort_values(TIME_COL, kind="stable")
    perm = np.arange(len(df))
    times = df[TIME_COL].to_numpy()
    for slots in df.groupby(df[SYMBOL_COL].astype(str), sort=False).indices.values():
        perm[slots] = slots[np.argsort(times[slots], kind="stable")]
    return df.iloc[perm]


def _groups(df: pd.DataFrame) -> Iterator[tuple[str | None, pd.DataFrame]]:
    if SYMBOL_COL not in df.columns:
        yield None, df
        return
    for name, part in df.groupby(df[SYMBOL_COL].astype(str), sort=True):
        yield str(name), part


def read_bars(
    source: Source,
    *,
    time_column: str | None = None,
    symbol_column: str = SYMBOL_COL,
    label: str | None = None,
) -> pd.DataFrame:
    """Read a CSV/Parquet file or a DataFrame of bars and return the canonical, checked frame.

    Columns: ``symbol`` (panels only), ``timestamps``, then ``open, high, low, close`` and whichever
    of ``volume, amount`` the source has, as float64; each series' rows in time order (a panel keeps
    its interleaving), with a fresh index.
    See the module docstring for the accepted names, time columns and epochs. Every series (each
    symbol of a panel) is sorted by time and checked with :func:`check_series`; the first problem raises
    :class:`DataSourceError` naming the file, symbol, column, row and value.
    """
    df = read_table(source, time_column=time_column, symbol_column=symbol_column, label=label)
    where = label or ("the frame" if isinstance(source, pd.DataFrame) else str(Path(source).expanduser()))
    _require_bars(df, where)
    df = from_closes(_in_time_order(df), where)
    for symbol, part in _groups(df):
        check_series(part, label=_label(where, symbol))
    return _as_float(df).reset_index(drop=True)


def discover_files(paths: Sequence[str | os.PathLike] | str | os.PathLike, *, pattern: str | None = None) -> list[Path]:
    """Expand files and folders (recursively) into a sorted list of CSV/Parquet files, without duplicates.

    ``pattern`` (a glob such as ``"**/*_daily.parquet"``) selects files inside folders; by default
    every CSV/Parquet file below a folder is taken (hidden ones skipped). A missing path, a file given
    explicitly with another suffix, or a folder without any table is an error: silently reading
    nothing is worse than stopping.
    """
    files: list[Path] = []
    for raw in _as_list(paths):
        path = Path(raw).expanduser()
        if not path.exists():
            raise DataSourceError(f"data path {str(path)!r} does not exist")
        if path.is_dir():
            candidates = path.glob(pattern) if pattern else path.rglob("*")
            found = sorted(
                p for p in candidates if p.is_file() and _suffix(p) is not None and not p.name.startswith(".")
            )
            if not found:
                what = f"matching {pattern!r}" if pattern else f"({', '.join(SUFFIXES)})"
                raise DataSourceError(f"folder {str(path)!r} holds no CSV or Parquet file {what}")
            files.extend(found)
        else:
            _table_suffix(path)
            files.append(path)
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def iter_bars(
    paths: Sequence[str | os.PathLike] | str | os.PathLike,
    *,
    time_column: str | None = None,
    symbol_column: str = SYMBOL_COL,
    symbols: Sequence[str] | None = None,
    min_rows: int = 1,
    pattern: str | None = None,
) -> Iterator[tuple[str, Path, pd.DataFrame]]:
    """Yield ``(name, file, frame)`` for every series under ``paths``, one file in memory at a time.

    A file with a symbol column is a panel and yields one series per symbol (in name order; a
    symbol's rows may be interleaved with others' and in any order); otherwise the file is
    one series named by :func:`series_name`. Frames are :func:`read_bars`' canonical columns without
    ``symbol``, checked, with the file's data rows as index. ``symbols`` keeps only those series (an
    error lists any never found); series with fewer than ``min_rows`` bars are skipped. A name found
    in two files is an error.
    """
    wanted = None if symbols is None else {str(s) for s in symbols}
    seen: dict[str, Path] = {}
    for path in discover_files(paths, pattern=pattern):
        df = read_table(path, time_column=time_column, symbol_column=symbol_column)
        _require_bars(df, str(path))
        for symbol, part in _groups(from_closes(_in_time_order(df), str(path))):
            name = series_name(path) if symbol is None else symbol
            if wanted is not None and name not in wanted:
                continue
            if name in seen:
                raise DataSourceError(
                    f"series {name!r} appears in both {seen[name]} and {path}; give each series one source"
                )
            seen[name] = path
            if len(part) < min_rows:
                continue
            check_series(part, label=_label(str(path), symbol))
            yield name, path, _as_float(part.drop(columns=SYMBOL_COL, errors="ignore"))
    if wanted is not None:
        absent = sorted(wanted - set(seen))
        if absent:
            shown = f"{absent[:10]}{' ...' if len(absent) > 10 else ''}"
            raise DataSourceError(f"{shown}: series not found in {', '.join(map(str, _as_list(paths)))}")


def _as_list(paths: Sequence[str | os.PathLike] | str | os.PathLike) -> list[str | os.PathLike]:
    return [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)


def write_table(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``frame`` atomically, without its index: Parquet for ``.parquet``/``.pq``, CSV otherwise."""
    path = Path(path)
    if _suffix(path) in _PARQUET:
        return atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))
