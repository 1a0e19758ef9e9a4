"""Cross-sectional skill on a multi-instrument panel: information coefficient (IC) and RankIC.

On each origin date, the forecasts of all instruments are ranked against what happened next.
IC is the Pearson correlation across instruments between a signal and the realised return,
RankIC the Spearman (rank) correlation; both are computed per date and then summarised by their
mean, standard deviation, ICIR (mean / std) and t-statistic (one-sample t-test of the daily values
against zero). The t-test treats dates as independent: with horizons longer than the stride between
origins the realised returns overlap and the t-stat is optimistic. This is what matters for stock
selection, where the level of the forecast error does not.

Signals follow the original Kronos backtest: the predicted close minus the last close, where the
predicted close is the ``last``, ``mean``, ``max`` or ``min`` of the forecast's mean close path
over the horizon. ``relative=True`` divides by the last close (a predicted return), which makes
signals comparable across price levels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kronos.core.errors import InputError
from kronos.core.extras import require

stats = require("eval", "scipy.stats", purpose="cross-sectional IC")

__all__ = ["SIGNAL_KINDS", "ic_summary", "information_coefficient", "make_signals", "realised_returns"]

SIGNAL_KINDS: tuple[str, ...] = ("last", "mean", "max", "min")


def make_signals(forecasts: pd.DataFrame, kind: str = "last", *, relative: bool = False) -> pd.DataFrame:
    """One signal per (forecaster, series, origin): aggregate of ``y_pred`` over steps minus last close.

    Returns columns ``forecaster, series, origin_time, signal``.
    """
    if kind not in SIGNAL_KINDS:
        raise InputError(f"signal must be one of {SIGNAL_KINDS}, got {kind!r}")
    keys = ["forecaster", "series", "origin_time"]
    ordered = forecasts.sort_values(keys + ["step"], kind="stable")
    grouped = ordered.groupby(keys, sort=True)
    pred = grouped["y_pred"].agg(kind)
    last_close = grouped["last_close"].first()
    signal = pred - last_close
    if relative:
        signal = signal / last_close
    return signal.rename("signal").reset_index()


def realised_returns(forecasts: pd.DataFrame, step: int | None = None) -> pd.DataFrame:
    """Realised simple return from the origin's close to the close ``step`` bars later.

    ``step=None`` uses the last step of the horizon. Returns ``forecaster, series, origin_time,
    realised``.
    """
    keys = ["forecaster", "series", "origin_time"]
    rows = forecasts
    if step is None:
        rows = rows[rows["step"] == rows.groupby(keys)["step"].transform("max")]
    else:
        rows = rows[rows["step"] == int(step)]
    out = rows[keys].copy()
    out["realised"] = rows["y_true"].to_numpy() / rows["last_close"].to_numpy() - 1.0
    return out.reset_index(drop=True)


def information_coefficient(
    signal: pd.DataFrame,
    realised: pd.DataFrame,
    *,
    min_names: int = 5,
    by: tuple[str, ...] = ("forecaster",),
) -> pd.DataFrame:
    """IC and RankIC per date (and per ``by`` group): ``[*by], origin_time, ic, rank_ic, n``.

    ``signal`` needs ``series, origin_time, signal``; ``realised`` needs ``series, origin_time,
    realised`` (plus the ``by`` columns where both have them). Dates with fewer than ``min_names``
    instruments, or a constant signal or outcome, are dropped (a correlation is undefined there).
    """
    keys = [k for k in by if k in signal.columns and k in realised.columns]
    merged = signal.merge(realised, on=[*keys, "series", "origin_time"], how="inner")
    merged = merged.replace([np.inf, -np.inf], np.nan).dropna(subset=["signal", "realised"])
    rows = []
    for group, part in merged.groupby([*keys, "origin_time"], sort=True):
        if len(part) < min_names:
            continue
        if part["signal"].nunique() < 2 or part["realised"].nunique() < 2:
            continue
        ic = part["signal"].corr(part["realised"], method="pearson")
        rank_ic = part["signal"].corr(part["realised"], method="spearman")
        group = group if isinstance(group, tuple) else (group,)
        rows.append((*group, ic, rank_ic, len(part)))
    return pd.DataFrame(rows, columns=[*keys, "origin_time", "ic", "rank_ic", "n"])


def ic_summary(ic_frame: pd.DataFrame, by: tuple[str, ...] = ("forecaster",)) -> pd.DataFrame:
    """Mean, std, ICIR and t-stat of IC and RankIC over dates, per ``by`` group."""
    keys = [k for k in by if k in ic_frame.columns]

    def summarise(part: pd.DataFrame) -> pd.Series:
        out: dict[str, float] = {"dates": float(len(part))}
        for col in ("ic", "rank_ic"):
            values = part[col].to_numpy(dtype=np.float64)
            mean = float(np.mean(values)) if len(values) else np.nan
            std = float(np.std(values, ddof=1)) if len(values) > 1 else np.nan
            out[f"{col}_mean"] = mean
            out[f"{col}_std"] = std
            out[f"{col}_ir"] = mean / std if np.isfinite(std) and std > 1e-12 else np.nan
            varies = len(values) > 1 and np.isfinite(std) and std > 1e-12  # constant ICs have no t-stat
            out[f"{col}_t"] = float(stats.ttest_1samp(values, 0.0).statistic) if varies else np.nan
        return pd.Series(out)

    if not keys:
        return summarise(ic_frame).to_frame().T
    rows = {name: summarise(part) for name, part in ic_frame.groupby(keys, sort=True)}
    if not rows:
        return pd.DataFrame(columns=[*keys, "dates"])
    table = pd.DataFrame(rows).T
    table.index.names = keys
    return table.reset_index()
