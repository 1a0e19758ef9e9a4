"""Reading bars from a Qlib provider directory (the layout ``qlib.init(provider_uri=...)`` uses).

The layout is small and stable, so it is read here with numpy alone; when ``pyqlib`` is installed
(``pip install kronos-kline[qlib]``) it can be used instead (``use_pyqlib``), and the two readers are
checked against each other in the tests. A provider directory holds::

    calendars/<freq>.txt                  one time stamp per line (the trading calendar)
    instruments/<market>.txt              SYMBOL<TAB>start<TAB>end per line (membership spans)
    features/<symbol lower>/<field>.<freq>.bin
                                          little-endian float32: element 0 is the calendar index of
                                          the first value, the rest are the values, one per calendar
                                          entry from there on (NaN where the instrument did not trade)

Rows where any price is NaN (suspensions, days outside the listing) are dropped; the gap they
leave is then handled by the corpus builder's gap rule like any other gap. Only bars inside an
instrument's membership spans are kept, as Qlib does when filtering by market.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kronos.bars.sources import DataSourceError, SeriesData, series_from_frame
from kronos.core.extras import require

__all__ = ["QlibSource", "iter_qlib_series", "pyqlib_available", "read_calendar", "read_instruments"]

PRICE_FIELDS = ("open", "high", "low", "close")


@dataclass(frozen=True)
class QlibSource:
    """Where and what to read from a Qlib provider directory.

    ``instruments`` is a market name (a file under ``instruments/``, e.g. ``all`` or ``csi300``) or an
    explicit list of symbols. ``start_time``/``end_time`` bound the calendar (inclusive).
    ``use_pyqlib``: ``None`` uses pyqlib when it is importable, ``False`` always uses the numpy reader,
    ``True`` requires pyqlib.
    """

    provider_uri: str
    instruments: str | tuple[str, ...] = "all"
    freq: str = "day"
    start_time: str | None = None
    end_time: str | None = None
    region: str = "cn"
    use_pyqlib: bool | None = False


def pyqlib_available() -> bool:
    """Whether ``import qlib`` works in this environment."""
    try:
        import qlib  # noqa: F401
    except Exception:
        return False
    return True


def read_calendar(provider_uri: str | os.PathLike[str], freq: str = "day") -> pd.DatetimeIndex:
    """The trading calendar ``calendars/<freq>.txt`` as a DatetimeIndex (errors name the file and line)."""
    path = Path(provider_uri).expanduser() / "calendars" / f"{freq.lower()}.txt"
    if not path.is_file():
        raise DataSourceError(
            f"Qlib calendar {str(path)!r} not found (is data.qlib.provider_uri a Qlib provider directory, and "
            f"freq {freq!r} right?)"
        )
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    try:
        cal = pd.DatetimeIndex(pd.to_datetime(lines))
    except (TypeError, ValueError) as exc:
        raise DataSourceError(f"{path}: a line cannot be read as a time stamp ({exc})") from None
    if len(cal) > 1 and not (np.diff(cal.asi8) > 0).all():
        pos = int(np.flatnonzero(np.diff(cal.asi8) <= 0)[0]) + 1
        raise DataSourceError(f"{path}: calendar is not strictly increasing at line {pos + 1} ({lines[pos]!r})")
    return cal


def read_instruments(
    provider_uri: str | os.PathLike[str], market: str = "all"
) -> dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]]:
    """``instruments/<market>.txt`` as ``{symbol: [(start, end), ...]}``."""
    path = Path(provider_uri).expanduser() / "instruments" / f"{market.lower()}.txt"
    if not path.is_file():
        raise DataSourceError(f"Qlib instrument list {str(path)!r} not found (market {market!r})")
    spans: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().split("\t")
        if len(parts) < 3:
            raise DataSourceError(f"{path}: line {lineno} needs SYMBOL<TAB>start<TAB>end, got {line!r}")
        try:
            start, end = pd.Timestamp(parts[1]), pd.Timestamp(parts[2])
        except (TypeError, ValueError) as exc:
            raise DataSourceError(f"{path}: line {lineno} has a bad date ({exc})") from None
        spans.setdefault(parts[0], []).append((start, end))
    return spans


def _read_bin(path: Path, calendar_len: int) -> tuple[int, np.ndarray]:
    raw = np.fromfile(path, dtype="<f4")
    if raw.size == 0:
        return 0, np.empty(0, dtype=np.float32)
    start = raw[0]
    if not np.isfinite(start) or start < 0 or start != int(start):
        raise DataSourceError(f"{path}: first element must be the calendar start index, got {start!r}")
    start_i = int(start)
    values = raw[1:]
    if start_i + values.size > calendar_len:
        raise DataSourceError(
            f"{path}: {values.size} values from calendar index {start_i} run past the calendar's {calendar_len} entries"
        )
    return start_i, values


def _numpy_frames(src: QlibSource) -> Iterator[tuple[str, pd.DataFrame, str]]:
    root = Path(src.provider_uri).expanduser()
    calendar = read_calendar(root, src.freq)
    if isinstance(src.instruments, str):
        spans = read_instruments(root, src.instruments)
    else:
        all_spans = read_instruments(root, "all") if (root / "instruments" / "all.txt").is_file() else {}
        spans = {s: all_spans.get(s, [(calendar[0], calendar[-1])]) for s in src.instruments}
    lo = pd.Timestamp(src.start_time) if src.start_time else calendar[0]
    hi = pd.Timestamp(src.end_time) if src.end_time else calendar[-1]
    freq = src.freq.lower()
    for symbol in sorted(spans):
        folder = root / "features" / symbol.lower()
        if not folder.is_dir():
            raise DataSourceError(f"Qlib features for {symbol!r} not found: {str(folder)!r} is missing")
        columns: dict[str, np.ndarray] = {}
        for field in (*PRICE_FIELDS, "volume", "amount"):
            path = folder / f"{field}.{freq}.bin"
            if not path.is_file():
                if field in PRICE_FIELDS:
                    raise DataSourceError(f"Qlib field file {str(path)!r} is missing for {symbol!r}")
                continue
            start, values = _read_bin(path, len(calendar))
            full = np.full(len(calendar), np.nan, dtype=np.float64)
            full[start : start + values.size] = values
            columns[field] = full
        keep = np.zeros(len(calendar), dtype=bool)
        for s, e in spans[symbol]:
            keep |= (calendar >= max(s, lo)) & (calendar <= min(e, hi))
        prices = np.stack([columns[f] for f in PRICE_FIELDS], axis=1)
        keep &= np.isfinite(prices).all(axis=1)
        for f in ("volume", "amount"):
            if f in columns:
                columns[f] = np.nan_to_num(columns[f], nan=0.0)
        idx = np.flatnonzero(keep)
        frame = pd.DataFrame({"timestamps": calendar[idx], **{f: v[idx] for f, v in columns.items()}}, index=idx)
        yield symbol, frame, str(folder)


def _pyqlib_frames(src: QlibSource) -> Iterator[tuple[str, pd.DataFrame, str]]:
    qlib = require("qlib", "qlib", purpose="data.qlib.use_pyqlib: true")
    D = require("qlib", "qlib.data", purpose="data.qlib.use_pyqlib: true").D  # noqa: N806
    root = Path(src.provider_uri).expanduser()
    qlib.init(provider_uri=str(root), region=src.region, kernels=1)
    freq = src.freq.lower()
    probe = next((root / "features").glob(f"*/amount.{freq}.bin"), None)
    fields = ["$open", "$high", "$low", "$close", "$volume"] + (["$amount"] if probe is not None else [])
    insts = D.instruments(src.instruments) if isinstance(src.instruments, str) else list(src.instruments)
    df = D.features(insts, fields, start_time=src.start_time, end_time=src.end_time, freq=src.freq)
    df.columns = [c.lstrip("$") for c in df.columns]
    for symbol, frame in df.groupby(level="instrument", sort=True):
        frame = frame.droplevel("instrument").reset_index()
        frame = frame.rename(columns={frame.columns[0]: "timestamps"})
        frame = frame[np.isfinite(frame[list(PRICE_FIELDS)].to_numpy()).all(axis=1)]
        for f in ("volume", "amount"):
            if f in frame.columns:
                frame[f] = frame[f].fillna(0.0)
        yield str(symbol), frame, str(root / "features" / str(symbol).lower())


def iter_qlib_series(src: QlibSource, *, min_rows: int = 1) -> Iterator[SeriesData]:
    """Yield each instrument of a Qlib provider directory as :class:`SeriesData` (bars with prices only)."""
    use = src.use_pyqlib
    if use is None:
        use = pyqlib_available()
    frames = _pyqlib_frames(src) if use else _numpy_frames(src)
    for symbol, frame, where in frames:
        if len(frame) < min_rows:
            continue
        yield series_from_frame(frame, symbol=symbol, source=where, timestamp_column="timestamps")


def list_qlib_sources(src: QlibSource) -> Sequence[Path]:
    """The files a Qlib read depends on (for the corpus fingerprint)."""
    root = Path(src.provider_uri).expanduser()
    files = [root / "calendars" / f"{src.freq.lower()}.txt"]
    if isinstance(src.instruments, str):
        files.append(root / "instruments" / f"{src.instruments.lower()}.txt")
    files.extend(sorted((root / "features").glob(f"*/*.{src.freq.lower()}.bin")))
    return files
