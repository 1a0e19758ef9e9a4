"""How well ``calendar="auto"`` picks exchange calendars on the real corpus in ``../shared/data``.

For every file of the MANIFEST (every series of the two panels, or ``--per-panel`` of each, seeded) it
runs :func:`kronos.bars.calendars.match_calendar` on the whole history and compares the pick with the
exchange the MANIFEST implies (US stocks, US ETFs and US indices: XNYS; London-listed ETFs and the FTSE:
XLON; DAX: XETR or XFRA; CAC: XPAR; EURO STOXX: any of the Eurex/Xetra/Euronext calendars; US futures:
CMES or us_futures; A-shares: XSHG; NSE stocks: XBOM, the Indian calendar exchange_calendars has;
crypto and FX: none, the learnt schedule is right). Prints per market and overall: the share of series
with a pick, the share of picks that are right, the share of series with a known exchange that get it,
and the time of the first call (it builds every calendar) and of the rest.

Then the check that decides the default: for each series (``--holdout-per-panel`` of each panel) the last
``--holdout`` bars are held out and :func:`kronos.bars.calendars.market_times` continues the rest with
``calendar="own"`` and with ``"auto"``; printed per market: the share of series whose future times equal
the bars that really came next, and the share of future times that are real bar times.

    python benchmarks/calendar_auto.py [--data ../shared/data] [--per-panel 0] [--holdout 20]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kronos.bars.calendars import market_times, match_calendar

EURO = {"XEUR", "XETR", "XFRA", "XPAR", "XAMS", "XBRU", "XMIL", "XMAD", "XLIS", "XDUB"}
BY_MARKET = {
    "us_equity": {"XNYS"},
    "etf": {"XNYS"},
    "futures": {"CMES", "us_futures"},
    "cn_equity": {"XSHG"},
    "in_equity": {"XBOM"},
    "crypto": set(),
    "fx": set(),
}
BY_FILE = {
    "IEAC": {"XLON"},
    "IHYG": {"XLON"},
    "FTSE": {"XLON"},
    "GDAXI": {"XETR", "XFRA"},
    "FCHI": {"XPAR"},
    "STOXX50E": EURO,
    "STOXX": EURO,
    "DJI": {"XNYS"},
    "RUT": {"XNYS"},
    "VIX": {"XNYS"},
}


def series_of(root: Path, row: pd.Series, per_panel: int, rng: np.random.Generator):
    """(market, name, expected set, timestamps) for each series of a MANIFEST row."""
    symbol = Path(row["path"]).name.split("_")[0]
    expected = BY_FILE.get(symbol, BY_MARKET.get(row["market"]))
    frame = pd.read_parquet(root / row["path"], columns=None if int(row["n_symbols"]) > 1 else ["timestamps"])
    if "symbol" not in frame.columns:
        yield row["market"], symbol, expected, frame["timestamps"]
        return
    names = frame["symbol"].unique()
    if per_panel:
        names = rng.choice(names, size=min(per_panel, len(names)), replace=False)
    for name in names:
        yield row["market"], str(name), expected, frame.loc[frame["symbol"] == name, "timestamps"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--per-panel", type=int, default=0, help="Series drawn from each panel (0: all).")
    parser.add_argument("--holdout", type=int, default=20, help="Bars held out per series.")
    parser.add_argument("--holdout-per-panel", type=int, default=60, help="Panel series in the hold-out check.")
    args = parser.parse_args()
    manifest = pd.read_csv(args.data / "MANIFEST.csv")
    rng = np.random.default_rng(0)
    rows, times = [], []
    for _, row in manifest.iterrows():
        for market, name, expected, stamps in series_of(args.data, row, args.per_panel, rng):
            t0 = time.perf_counter()
            pick, share, days = match_calendar(stamps)
            times.append(time.perf_counter() - t0)
            right = (pick in expected) if pick is not None else (expected == set())
            freq = row["frequency"]
            rows.append(
                dict(market=market, freq=freq, name=name, pick=pick, share=share, right=right, known=bool(expected))
            )
    res = pd.DataFrame(rows)
    res["picked"] = res["pick"].notna()

    def summary(g: pd.DataFrame) -> pd.Series:
        picked = g[g["picked"]]
        known = g[g["known"]]
        return pd.Series(
            {
                "series": len(g),
                "picked": f"{g['picked'].mean():.1%}",
                "picks right": f"{picked['right'].mean():.1%}" if len(picked) else "-",
                "known exchange found": f"{known['right'].mean():.1%}" if len(known) else "-",
                "right overall": f"{g['right'].mean():.1%}",
            }
        )

    pd.set_option("display.width", 200)
    print(res.groupby("market")[res.columns.tolist()].apply(summary).to_string())
    print(summary(res).to_string())
    wrong = res[~res["right"]]
    print(f"\nwrong or missed ({len(wrong)}):")
    print(wrong.groupby(["market", "freq", "pick"], dropna=False).size().to_string())
    first, rest = times[0], np.median(times[1:]) * 1000
    print(f"\nfirst call {first:.1f} s (builds the calendars it needs), then median {rest:.0f} ms per series")

    holdout(manifest, args)


def holdout(manifest: pd.DataFrame, args: argparse.Namespace) -> None:
    """Future times of own and auto against the bars that really came next."""
    rng = np.random.default_rng(1)
    h, rows = args.holdout, []
    for _, row in manifest.iterrows():
        for market, name, _, stamps in series_of(args.data, row, args.holdout_per_panel, rng):
            stamps = pd.DatetimeIndex(stamps)
            if len(stamps) < h + 50:
                continue
            hist, real = stamps[:-h], stamps[-h:]
            out = dict(market=market, freq=row["frequency"], name=name)
            for calendar in ("own", "auto"):
                try:
                    got = market_times(hist, h, calendar=calendar).times
                    out[f"{calendar} exact"] = bool((got == real).all())
                    out[f"{calendar} times"] = float(np.isin(got, real).mean())
                except Exception as exc:  # reported, not hidden
                    out[f"{calendar} exact"], out[f"{calendar} times"] = False, 0.0
                    print(f"{name}: {calendar}: {exc}")
            rows.append(out)
    res = pd.DataFrame(rows)
    cols = ["own exact", "auto exact", "own times", "auto times"]
    table = res.groupby("market")[cols].mean()
    table.loc["all"] = res[cols].mean()
    table.insert(0, "series", [*res.groupby("market").size(), len(res)])
    print(f"\nhold-out: the last {h} bars of each series")
    print(table.to_string(float_format=lambda v: f"{v:.1%}"))


if __name__ == "__main__":
    main()
