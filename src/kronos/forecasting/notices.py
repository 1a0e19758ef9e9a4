"""What a forecast tells its user about the forecast itself: paths that collapsed to the price floor, a history too
short to trust the spread of.

Why a module of their own: every forecast door (``forecast``, ``forecast_batch``, panels, the command line) warns with
the same :class:`~kronos.core.errors.Notice` classes and the HTTP API states the same words in its ``notes``, so the
wording lives once, beside the thresholds it cites.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from kronos.core.errors import Notice

__all__ = [
    "SHORT_HISTORY",
    "CollapsedPathsNotice",
    "ShortHistoryNotice",
    "announce_floored_paths",
    "announce_short_histories",
    "short_history_text",
]


class CollapsedPathsNotice(Notice):
    """Some forecast paths fell to the price floor (:data:`~kronos.forecasting.prepared.PRICE_FLOOR`): once per run
    on the command line."""

    once = True


def announce_floored_paths(forecasts: Sequence[Any], labels: Sequence[str | None]) -> None:
    """A :class:`CollapsedPathsNotice` for each forecast with collapsed paths (``info["floored_paths"]`` > 0), since
    a floored path is the model's, not the market's, limit; each series named by its label (none: not named)."""
    for fc, label in zip(forecasts, labels):
        share = fc.info.get("floored_paths", 0.0)
        if share > 0:
            where = f" of {label}" if label else ""
            warnings.warn(
                f"{round(share * fc.n_paths)} of {fc.n_paths} forecast paths{where} fell to the price floor (1e-6 of "
                "the last close): the window holds a fall so large that the model's lowest prices are at or below "
                'zero; fc.info["floored_paths"] says which forecasts',
                CollapsedPathsNotice,
                stacklevel=3,
            )


#: Histories shorter than this many bars get a :class:`ShortHistoryNotice`: measured with kronos-open on held-out
#: daily series (horizon 5), 80% intervals from 8 / 16 / 32 / 64 bars covered 0.43 / 0.52 / 0.60 / 0.64 of outcomes,
#: 0.71 from the default windows (``docs/probabilistic.md``, Short histories).
SHORT_HISTORY = 64


class ShortHistoryNotice(Notice):
    """A history shorter than :data:`SHORT_HISTORY` bars: its forecast is overconfident. Once per run on the command
    line."""

    once = True


def short_history_text(bars: int, label: str | None = None) -> str:
    """The one wording of the short-history notice (the library's warning, the HTTP API's note)."""
    who = f"{label} has" if label else "the history has"
    return (
        f"{who} only {bars} bars: a forecast from fewer than {SHORT_HISTORY} bars is overconfident (its intervals "
        "cover far fewer outcomes than their level says; give more history where there is some)"
    )


def announce_short_histories(forecasts: Sequence[Any], labels: Sequence[str | None]) -> None:
    """One :class:`ShortHistoryNotice` for the forecasts whose history had fewer than :data:`SHORT_HISTORY` bars
    (``info["bars_given"]``): the series by name when one is short, else how many and the first few."""
    short = [(label, int(fc.info.get("bars_given", SHORT_HISTORY))) for fc, label in zip(forecasts, labels)]
    short = [(label, bars) for label, bars in short if bars < SHORT_HISTORY]
    if len(short) == 1:
        warnings.warn(short_history_text(short[0][1], short[0][0]), ShortHistoryNotice, stacklevel=3)
    elif short:
        named = ", ".join(f"{label or 'one'} ({bars} bars)" for label, bars in short[:3])
        more = f" and {len(short) - 3} more" if len(short) > 3 else ""
        warnings.warn(
            f"{len(short)} histories are shorter than {SHORT_HISTORY} bars: {named}{more}; forecasts from so few bars "
            "are overconfident (their intervals cover far fewer outcomes than their level says)",
            ShortHistoryNotice,
            stacklevel=3,
        )
