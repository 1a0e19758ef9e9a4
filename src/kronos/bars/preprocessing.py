"""From user DataFrames to model arrays: column filling, validation and calendar features (the normaliser is
:mod:`kronos.bars.normalizer`).

Everything here is shared by the predictor, training data and evaluation so that a series is turned
into model input in exactly one way. Errors name the column, row and value at fault.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from kronos.bars.zones import in_their_zone, no_zone_fits, string_offsets
from kronos.core.errors import InputError

__all__ = [
    "AMOUNT_COL",
    "COLUMN_ALIASES",
    "feature_names",
    "FEATURE_COLS",
    "PRICE_COLS",
    "STAMP_COLS",
    "VOLUME_COL",
    "InputError",
    "calendar_features",
    "check_bars",
    "check_same_zone",
    "epoch_unit",
    "prepare_features",
    "to_datetime_index",
    "validate_timestamps",
]

PRICE_COLS: list[str] = ["open", "high", "low", "close"]
VOLUME_COL = "volume"
AMOUNT_COL = "amount"
FEATURE_COLS: list[str] = PRICE_COLS + [VOLUME_COL, AMOUNT_COL]
#: Other spellings of feature columns (the original Kronos scripts use ``vol``/``amt``; Chinese vendors ``turnover``).
COLUMN_ALIASES: dict[str, str] = {"vol": "volume", "amt": "amount", "turnover": "amount"}
STAMP_COLS: list[str] = ["minute", "hour", "weekday", "day", "month"]

F32_MAX = float(np.finfo(np.float32).max)
F32_TINY = float(np.finfo(np.float32).tiny)
#: The smallest price a series may hold: forecasts are scale-free from here to 1e30; below it float32, which the
#: model computes in, keeps too few digits (and below F32_TINY none).
MIN_PRICE = 1e-30


def _where(label: str | None) -> str:
    return f"{label}: " if label else ""


def _index_repr(value: object) -> str:
    """An index label as users wrote it: ``9``, not numpy 2's ``np.int64(9)``."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def feature_names(df: pd.DataFrame, skip: Sequence[object] = ()) -> pd.DataFrame:
    """``df`` with its feature columns under the canonical names, as the reader names a file's: any case, surrounding
    spaces, :data:`COLUMN_ALIASES` (``Open``, ``Vol``). A column already spelled canonically wins over another
    spelling of it; ``skip`` names columns never renamed (a frame's time and id columns)."""
    renames: dict[object, str] = {}
    for col in df.columns:
        lower = str(col).strip().lower()
        canonical = COLUMN_ALIASES.get(lower, lower)
        if col in skip or canonical not in FEATURE_COLS or canonical == col:
            continue
        if canonical in df.columns or canonical in renames.values():
            continue
        renames[col] = canonical
    return df.rename(columns=renames) if renames else df


def prepare_features(
    df: pd.DataFrame,
    *,
    label: str | None = None,
    check_prices: bool = True,
    check_bar_rules: bool = True,
    first_row: int = 0,
) -> np.ndarray:
    """Return the six model features ``(n, 6)`` float64 of an OHLC[V[A]] frame.

    Missing ``volume`` means volume and amount are 0; volume without ``amount`` gives
    ``amount = volume * mean(open, high, low, close)`` (the original's convention). NaN or infinite
    values and non-positive prices are errors naming the first bad row, and so are impossible bars
    (:func:`check_bars`) unless ``check_bar_rules=False`` — what anomaly scoring passes, since finding
    such bars is its job. ``first_row``: the row number of ``df``'s first row in the user's frame, when ``df`` is
    its last bars (a forecast's window), so errors name the row the user sees.
    """
    where = _where(label)
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"{where}expected a pandas DataFrame, got {type(df).__name__}")
    df = feature_names(df)
    missing = [c for c in PRICE_COLS if c not in df.columns]
    if missing:
        raise InputError(f"{where}missing price column(s) {missing}; the frame has columns {list(df.columns)}")
    if len(df) == 0:
        raise InputError(f"{where}the history is empty (0 rows)")
    cols = {}
    for c in PRICE_COLS + [VOLUME_COL, AMOUNT_COL]:
        if c in df.columns:
            try:
                cols[c] = pd.to_numeric(df[c]).to_numpy(dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise InputError(f"{where}column {c!r} is not numeric ({exc})") from None
    n = len(df)
    if VOLUME_COL not in cols:
        cols[VOLUME_COL] = np.zeros(n)
        cols[AMOUNT_COL] = np.zeros(n)
    elif AMOUNT_COL not in cols:
        # pandas' row mean, exactly as the original computes it (numpy's may differ in the last bit)
        prices = pd.DataFrame({c: cols[c] for c in PRICE_COLS})
        with np.errstate(over="ignore", invalid="ignore"):
            cols[AMOUNT_COL] = cols[VOLUME_COL] * prices.mean(axis=1).to_numpy(dtype=np.float64)
    x = np.stack([cols[c] for c in FEATURE_COLS], axis=1)
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        if np.isnan(x[row, col]) and FEATURE_COLS[col] == AMOUNT_COL and AMOUNT_COL not in df.columns:
            raise InputError(
                f"{where}the derived 'amount' (volume x mean price) overflows at row {row + first_row} "
                f"(index {_index_repr(df.index[row])})"
            )
        raise InputError(
            f"{where}column {FEATURE_COLS[col]!r} has {'a NaN' if np.isnan(x[row, col]) else 'an infinite'} value "
            f"at row {row + first_row} (index {_index_repr(df.index[row])}); {int(bad.sum())} bad value(s) in all"
        )
    big = np.abs(x) > F32_MAX
    if big.any():
        row, col = np.argwhere(big)[0]
        derived = (
            " (derived as volume x mean price)"
            if FEATURE_COLS[col] == AMOUNT_COL and AMOUNT_COL not in df.columns
            else ""
        )
        raise InputError(
            f"{where}column {FEATURE_COLS[col]!r}{derived} has {float(x[row, col])!r} at row {row + first_row} (index "
            f"{_index_repr(df.index[row])}), "
            f"beyond float32 (max {F32_MAX:.4g}), which the model computes in; rescale the series"
        )
    if check_prices:
        nonpos = x[:, :4] <= 0
        if nonpos.any():
            row, col = np.argwhere(nonpos)[0]
            raise InputError(
                f"{where}column {PRICE_COLS[col]!r} has a non-positive price {float(x[row, col])!r} at row "
                f"{row + first_row} (index {_index_repr(df.index[row])})"
            )
        tiny = x[:, :4] < MIN_PRICE
        if tiny.any():
            row, col = np.argwhere(tiny)[0]
            raise InputError(
                f"{where}column {PRICE_COLS[col]!r} has {float(x[row, col])!r} at row {row + first_row} "
                f"(index {_index_repr(df.index[row])}), below the price floor {MIN_PRICE:g} (float32, which the "
                "model computes in, keeps too few digits there); rescale the series"
            )
        if check_bar_rules:
            check_bars(x, index=df.index, label=label, first_row=first_row)
    return x


def check_bars(x: np.ndarray, *, index: Sequence | None = None, label: str | None = None, first_row: int = 0) -> None:
    """Refuse bars that cannot be real: ``high`` below ``low``, ``open`` or ``close``; ``low`` above
    ``open`` or ``close``; negative ``volume`` or ``amount``. The error names the first bad row.

    ``x`` is ``(n, 6)`` in :data:`FEATURE_COLS` order. The model was trained on consistent bars only,
    so a broken one is more likely a column mix-up or a bad print than a forecastable state;
    nothing is repaired silently (clean the file, or drop the rows, and forecast again).
    """
    where = _where(label)
    o, h, low, c, v, a = (x[:, i] for i in range(6))
    rules = (
        (h < low, "high {h!r} is below low {low!r}"),
        (h < o, "high {h!r} is below open {o!r}"),
        (h < c, "high {h!r} is below close {c!r}"),
        (low > o, "low {low!r} is above open {o!r}"),
        (low > c, "low {low!r} is above close {c!r}"),
        (v < 0, "volume {v!r} is negative"),
        (a < 0, "amount {a!r} is negative"),
    )
    first = None
    for mask, text in rules:
        if mask.any():
            row = int(np.flatnonzero(mask)[0])
            if first is None or row < first[0]:
                first = (row, text)
    if first is not None:
        row, text = first
        vals = {
            "o": float(o[row]),
            "h": float(h[row]),
            "low": float(low[row]),
            "c": float(c[row]),
            "v": float(v[row]),
            "a": float(a[row]),
        }
        at = f" (index {_index_repr(index[row])})" if index is not None else ""
        raise InputError(f"{where}invalid bar at row {row + first_row}{at}: {text.format(**vals)}")


# Integer epoch timestamps: the unit is read from the largest magnitude. Each range holds the dates
# 1973-03-03 .. 5138-11-16 in its unit, so no plausible date is ambiguous between two units.
EPOCH_UNITS: tuple[tuple[float, float, str], ...] = (
    (1e8, 1e11, "s"),
    (1e11, 1e14, "ms"),
    (1e14, 1e17, "us"),
    (1e17, 9.3e18, "ns"),
)


def epoch_unit(values: np.ndarray, *, name: str = "timestamps", label: str | None = None) -> str:
    """The unit (``s``, ``ms``, ``us`` or ``ns``) of integer epoch timestamps, from their magnitude.

    Binance klines count milliseconds, Unix time seconds, pandas nanoseconds: reading them all as
    nanoseconds (pandas' default) dates every bar in 1970. Magnitudes outside every range (small
    integers such as a row number, negative values) are refused rather than guessed.
    """
    vals = np.asarray(values)
    if vals.size == 0:
        return "ns"
    top = float(np.max(np.abs(vals.astype(np.float64))))
    low = float(np.min(vals.astype(np.float64)))
    for lo, hi, unit in EPOCH_UNITS:
        if lo <= top < hi and low >= lo / 1e3:
            return unit
    raise InputError(
        f"{_where(label)}{name} are numbers from {low:.0f} to {top:.0f}, which are not epoch timestamps in seconds, "
        "milliseconds, microseconds or nanoseconds after 1973; pass datetimes (or convert with "
        "pd.to_datetime(..., unit=...))"
    )


def to_datetime_index(timestamps: Iterable, *, name: str = "timestamps", label: str | None = None) -> pd.DatetimeIndex:
    """Timestamps as a DatetimeIndex, time zone as given; integer epochs get their unit from :func:`epoch_unit`.

    Strings, datetimes and numpy/pandas datetime values are read by ``pd.to_datetime``. Anything that
    cannot be read raises :class:`InputError` naming ``name``.
    """
    where = _where(label)
    if isinstance(timestamps, pd.DatetimeIndex):
        return timestamps
    try:
        series = (
            timestamps
            if isinstance(timestamps, pd.Series)
            else pd.Series(list(timestamps) if not isinstance(timestamps, np.ndarray) else timestamps)
        )
    except TypeError as exc:
        raise InputError(f"{where}{name} cannot be read as timestamps ({exc})") from None
    try:
        if pd.api.types.is_bool_dtype(series.dtype):
            raise TypeError("booleans are not timestamps")
        if pd.api.types.is_integer_dtype(series.dtype) or (
            pd.api.types.is_float_dtype(series.dtype) and series.notna().any()
        ):
            vals = series.to_numpy(dtype=np.float64)
            if np.isnan(vals).any():
                row = int(np.flatnonzero(np.isnan(vals))[0])
                raise InputError(f"{where}{name} has a missing timestamp at position {row}")
            if not np.isfinite(vals).all():
                raise TypeError("infinite epoch timestamps")
            unit = epoch_unit(vals, name=name, label=label)
            if np.all(vals == np.round(vals)):
                return pd.DatetimeIndex(pd.to_datetime(series.to_numpy(dtype=np.int64), unit=unit))
            return pd.DatetimeIndex(pd.to_datetime(vals, unit=unit))  # fractional seconds (or ms, us)
        dayfirst = _dayfirst(series, name=name, where=where)
        written = string_offsets(series)
        if written is not None and written.nunique() > 1:  # strings with several offsets: no slow mixed parse
            utc = pd.DatetimeIndex(pd.to_datetime(series, utc=True, dayfirst=dayfirst))
            return in_their_zone(utc, written, name=name, where=where)
        objects_mixed = False
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                parsed = pd.to_datetime(series, dayfirst=dayfirst)
            except ValueError as exc:  # datetime objects with different offsets: pandas wants utc=True
                if "utc=True" not in str(exc):
                    raise
                parsed, objects_mixed = series, True
        # pandas warns (FutureWarning, "mixed time zones") when strings or objects mix UTC offsets; others pass on
        said = [(w, issubclass(w.category, FutureWarning) and "mixed time zones" in str(w.message)) for w in caught]
        mixed = objects_mixed or any(offsets for _, offsets in said)
        for w, offsets in said:
            if not offsets:
                warnings.warn(w.message, w.category, stacklevel=3)
        if not mixed:
            return pd.DatetimeIndex(parsed)
        present = [v for v in parsed if not pd.isna(v)]  # datetimes, each with its own offset (or none)
        if any(v.utcoffset() is None for v in present):
            raise InputError(no_zone_fits(where, name))
        offsets = pd.Series([v.utcoffset().total_seconds() for v in present])
        return in_their_zone(pd.DatetimeIndex(pd.to_datetime(series, utc=True)), offsets, name=name, where=where)
    except InputError:
        raise
    except pd.errors.OutOfBoundsDatetime as exc:
        raise InputError(
            f"{where}{name} hold a date outside 1677-09-21..2262-04-11, the range a pandas timestamp can hold ({exc})"
        ) from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(f"{where}{name} cannot be read as timestamps ({exc})") from None


_NUMERIC_DATE = re.compile(r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-]\d{2,4}\b")


def _dayfirst(series: pd.Series, *, name: str, where: str) -> bool:
    """Whether dates written ``a/b/yyyy`` (or with ``.``/``-``) are day-first, read from the values themselves.

    A first field above 12 means day-first, a second above 12 month-first; when every field is 12 or
    less the file could be either, and it is refused rather than silently read month-first.
    """
    if not (pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype)):
        return False
    fields = series.dropna().astype(str).str.extract(_NUMERIC_DATE)
    fields = fields.dropna().astype(int)
    if fields.empty:
        return False
    first, second = int(fields[0].max()), int(fields[1].max())
    if first > 12 and second <= 12:
        return True
    if first <= 12 and second <= 12 and fields.drop_duplicates().shape[0] > 1:
        example = series.dropna().astype(str).iloc[0].strip()
        raise InputError(
            f"{where}{name}: dates such as {example!r} read either day-first or month-first (no day above 12); "
            "write them as ISO 8601 (YYYY-MM-DD) or parse them first, e.g. pd.to_datetime(values, dayfirst=True)"
        )
    return False


def validate_timestamps(
    timestamps: Iterable, *, name: str, expected_len: int | None = None, label: str | None = None
) -> pd.DatetimeIndex:
    """Coerce to a DatetimeIndex (see :func:`to_datetime_index`) and check length, order and uniqueness."""
    where = _where(label)
    idx = to_datetime_index(timestamps, name=name, label=label)
    if expected_len is not None and len(idx) != expected_len:
        raise InputError(f"{where}{name} has {len(idx)} timestamps but {expected_len} are needed")
    if idx.hasnans:
        row = int(np.flatnonzero(idx.isna())[0])
        raise InputError(f"{where}{name} has a missing timestamp at position {row}")
    if len(idx) > 1:
        diffs = np.diff(idx.asi8)
        if (diffs == 0).any():
            row = int(np.flatnonzero(diffs == 0)[0]) + 1
            raise InputError(f"{where}{name} has a duplicate timestamp {idx[row]} at position {row}")
        if (diffs < 0).any():
            row = int(np.flatnonzero(diffs < 0)[0]) + 1
            raise InputError(f"{where}{name} is not sorted: {idx[row]} at position {row} comes after {idx[row - 1]}")
    return idx


def check_same_zone(
    past: pd.DatetimeIndex,
    future: pd.DatetimeIndex,
    *,
    names: tuple[str, str] = ("x_timestamp", "y_timestamp"),
    label: str | None = None,
) -> None:
    """Refuse a time-zone-aware index paired with a naive one (either way round), naming both.

    Two aware indexes in different zones are fine (they compare as instants); aware against naive is
    ambiguous, and pandas would raise a bare ``TypeError`` when ordering them.
    """
    if (past.tz is None) != (future.tz is None):
        aware, naive = names if past.tz is not None else names[::-1]
        raise InputError(
            f"{_where(label)}{aware} has a time zone ({past.tz or future.tz}) but {naive} has none; give both "
            "in the same "
            "zone (tz_localize / tz_convert) so the calendar features and the order are unambiguous"
        )


def calendar_features(timestamps: Sequence | pd.DatetimeIndex | pd.Series) -> np.ndarray:
    """Time features per bar ``(n, 5)``: minute, hour, weekday (Monday 0), day of month, month.

    The column order is the one the published checkpoints were trained with.
    """
    idx = pd.DatetimeIndex(timestamps)
    return np.stack([idx.minute, idx.hour, idx.weekday, idx.day, idx.month], axis=1).astype(np.float32)
