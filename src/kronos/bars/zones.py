"""The time zone of times that carry UTC offsets but no zone name.

Why: a CSV written from a zone-aware pandas index (a broker's or yfinance's intraday bars in America/New_York) stores
each time with its offset, ``-05:00`` in winter and ``-04:00`` in summer; JSON does the same. The model's calendar
features are local times (as every door reads an aware index), and the future bars need the market's local schedule,
so such times are read in a zone, not as bare UTC instants. Any zone whose offset at every given instant is the one
written gives the same local times, so the zone is found from the offsets themselves: among the zones that match,
the main market zones first (:data:`PREFERRED`), then the first by name. Times that all carry one offset are read in
that fixed offset (no daylight-saving rule is implied by one offset).
"""

from __future__ import annotations

import warnings
import zoneinfo
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from functools import cache, lru_cache

import numpy as np
import pandas as pd

from kronos.core.errors import InputError, Notice

__all__ = [
    "PREFERRED",
    "OffsetZoneNotice",
    "in_their_zone",
    "infer_zone",
    "local_zone",
    "no_zone_fits",
    "offset_zone_text",
    "string_offsets",
    "zone_of_offsets",
]

#: Zones tried first (the exchanges' own zones): when several zones fit the offsets, a user's market is likelier one
#: of these than a namesake such as America/Fort_Wayne.
PREFERRED = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Toronto",
    "America/Sao_Paulo",
    "America/Mexico_City",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Zurich",
    "Europe/Madrid",
    "Europe/Amsterdam",
    "Europe/Stockholm",
    "Europe/Helsinki",
    "Europe/Athens",
    "Asia/Jerusalem",
    "Australia/Sydney",
    "Australia/Melbourne",
    "Australia/Adelaide",
    "Pacific/Auckland",
    "America/Santiago",
)


class OffsetZoneNotice(Notice):
    """Times with several UTC offsets were read in the zone they fit. Once per run on the command line."""

    once = True


#: Old names kept as links to the canonical ones (``US/Eastern``, ``Australia/LHI``): tried after every other.
_LEGACY = ("US/", "Canada/", "Brazil/", "Mexico/", "Chile/", "Etc/", "SystemV/")


@lru_cache(maxsize=1)
def _candidates() -> tuple[str, ...]:
    def legacy(zone: str) -> bool:
        return zone.startswith(_LEGACY) or zone.rsplit("/", 1)[-1].isupper()

    rest = sorted(z for z in zoneinfo.available_timezones() if z not in PREFERRED and "/" in z)
    return PREFERRED + tuple(z for z in rest if not legacy(z)) + tuple(z for z in rest if legacy(z))


@cache
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def infer_zone(instants: pd.DatetimeIndex, offsets: np.ndarray) -> str | None:
    """The first zone (:data:`PREFERRED`, then by name, legacy links last) whose UTC offset at every instant is the one
    given for it (``offsets``: seconds east of UTC, one per instant); None when no zone fits."""
    utc = pd.DatetimeIndex(instants).tz_convert("UTC")
    want = np.asarray(offsets, dtype=np.float64)
    # one instant per offset change suffices, plus both ends: zones differ where their rules change
    keep = np.ones(len(want), dtype=bool)
    keep[1:-1] = (want[1:-1] != want[:-2]) | (want[1:-1] != want[2:])
    utc, want = utc[keep], want[keep]
    naive = utc.tz_localize(None)
    # most zones fail on the first few instants: try those first (plain datetimes, cheap), all of them only for a
    # zone that passes
    first = [(t.to_pydatetime(), w) for t, w in zip(utc[:8], want[:8])]
    for zone in _candidates():
        try:
            tz = _zone(zone)
            if not all(t.astimezone(tz).utcoffset().total_seconds() == w for t, w in first):
                continue
            got = (utc.tz_convert(zone).tz_localize(None) - naive).total_seconds().to_numpy()
        except (KeyError, ValueError, zoneinfo.ZoneInfoNotFoundError):
            continue
        if np.array_equal(got, want):
            return zone
    return None


def local_zone(times: Sequence[datetime]) -> timezone | str | None:
    """The zone to read offset-carrying ``times`` in: their one fixed offset, the zone their several offsets fit
    (:func:`infer_zone`), or None (naive times, a mix of naive and aware, or offsets no zone fits)."""
    offsets = [t.utcoffset() for t in times]
    if not offsets or any(o is None for o in offsets):
        return None
    instants = pd.DatetimeIndex([t.astimezone(timezone.utc) for t in times])
    return zone_of_offsets(instants, np.array([o.total_seconds() for o in offsets]))  # type: ignore[union-attr]


def zone_of_offsets(instants: pd.DatetimeIndex, offsets: np.ndarray) -> timezone | str | None:
    """:func:`local_zone` from arrays: tz-aware ``instants`` and each one's UTC offset in seconds."""
    distinct = np.unique(offsets)
    if len(distinct) == 0:
        return None
    if len(distinct) == 1:
        return timezone(timedelta(seconds=float(distinct[0])))
    return infer_zone(instants, offsets)


def offset_zone_text(zone: str, offsets: Iterable[float]) -> str:
    """The one wording of "read in the zone the offsets fit" (the library's notice, the HTTP API's note); ``offsets``
    in seconds east of UTC."""
    shown = sorted({_offset(float(o)) for o in offsets})
    return (
        f"the times carry the UTC offsets {', '.join(shown)} (a daylight-saving change): read in {zone}, whose offsets "
        "they match, so the model's calendar features and the future bars are its local times"
    )


def _offset(seconds: float) -> str:
    minutes = int(seconds // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


#: A UTC offset at the end of a time string: ``Z``, ``+05:30``, ``-0400``.
_TRAILING_OFFSET = r"(Z|[+-]\d{2}:?\d{2})\s*$"


def string_offsets(series: pd.Series) -> pd.Series | None:
    """Seconds east of UTC written at the end of each time string (missing times left out), when every present
    value is a string that ends with an offset; None otherwise."""
    present = series.dropna()
    if present.empty or not isinstance(present.iloc[0], str):
        return None
    text = present.astype(str)
    found = text.str.extract(_TRAILING_OFFSET, expand=False)
    if found.isna().any():
        return None
    digits = found.str.replace(":", "", regex=False).str.replace("Z", "+0000", regex=False)
    sign = np.where(digits.str[0] == "-", -1.0, 1.0)
    seconds = sign * (digits.str[1:3].astype(int) * 3600 + digits.str[3:5].astype(int) * 60)
    return pd.Series(seconds, index=present.index)


def no_zone_fits(where: str, name: str) -> str:
    """The refusal of times whose offsets no zone fits (``where``: the frame or file, ``name``: the column)."""
    return (
        f"{where}{name} mix UTC offsets (or times with and without one) that no time zone fits; convert them first, "
        "e.g. pd.to_datetime(values, utc=True).tz_convert('America/New_York')"
    )


def in_their_zone(utc: pd.DatetimeIndex, offsets: pd.Series, *, name: str, where: str) -> pd.DatetimeIndex:
    """Times written with several UTC offsets (a zone-aware index saved across a daylight-saving change), as UTC
    instants ``utc`` with each present time's offset in seconds (``offsets``, in order), read in the zone the
    offsets fit (:func:`zone_of_offsets`), with a notice; refused when none fits."""
    present = utc[~utc.isna()]  # in the order of the offsets, one each
    zone = zone_of_offsets(present, offsets.to_numpy(dtype=np.float64)) if len(present) == len(offsets) else None
    if not isinstance(zone, str):
        raise InputError(no_zone_fits(where, name))
    warnings.warn(f"{where}{name}: {offset_zone_text(zone, offsets.to_numpy())}", OffsetZoneNotice, stacklevel=4)
    return utc.tz_convert(zone)
