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

import zoneinfo
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from functools import cache, lru_cache

import numpy as np
import pandas as pd

from kronos.core.errors import Notice

__all__ = ["PREFERRED", "OffsetZoneNotice", "infer_zone", "local_zone", "offset_zone_text", "zone_of_offsets"]

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


def infer_zone(instants: pd.DatetimeIndex, offsets: Sequence[timedelta]) -> str | None:
    """The first zone (:data:`PREFERRED`, then by name, legacy links last) whose UTC offset at every instant is the one
    given for it; None when no zone fits."""
    utc = pd.DatetimeIndex(instants).tz_convert("UTC")
    want = np.array([o.total_seconds() for o in offsets], dtype=np.float64)
    # one instant per offset change suffices, plus both ends: zones differ where their rules change
    keep = np.ones(len(want), dtype=bool)
    keep[1:-1] = (want[1:-1] != want[:-2]) | (want[1:-1] != want[2:])
    utc, want = utc[keep], want[keep]
    naive = utc.tz_localize(None)

    def fits(zone: str, rows: slice) -> bool:
        try:
            got = (utc[rows].tz_convert(zone).tz_localize(None) - naive[rows]).total_seconds().to_numpy()
        except (KeyError, ValueError, zoneinfo.ZoneInfoNotFoundError):
            return False
        return bool(np.array_equal(got, want[rows]))

    # most zones fail on the first few instants: try those first (plain datetimes, cheap), the rest only for a zone
    # that passes them
    first = [(t.to_pydatetime(), w) for t, w in zip(utc[:8], want[:8])]
    for zone in _candidates():
        try:
            tz = _zone(zone)
        except (KeyError, ValueError, zoneinfo.ZoneInfoNotFoundError):
            continue
        if all(t.astimezone(tz).utcoffset().total_seconds() == w for t, w in first) and fits(zone, slice(None)):
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
    return infer_zone(instants, [timedelta(seconds=float(o)) for o in offsets])


def offset_zone_text(zone: str, offsets: Iterable[float]) -> str:
    """The one wording of "read in the zone the offsets fit" (the library's notice, the HTTP API's note); ``offsets``
    in seconds east of UTC."""
    shown = sorted({_offset(timedelta(seconds=float(o))) for o in offsets})
    return (
        f"the times carry the UTC offsets {', '.join(shown)} (a daylight-saving change): read in {zone}, whose offsets "
        "they match, so the model's calendar features and the future bars are its local times"
    )


def _offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta()).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
