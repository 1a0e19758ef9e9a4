"""Lookback ensembles against one lookback: skill on the validation period, and sensitivity to the lookback.

A lookback ensemble (``forecast(..., lookback=["auto", 128, 64])``, or ``"ensemble"``) shares a forecast's
paths among several windows of the same history and pools them. Users complain that a forecast's slope follows
the lookback they pick; an ensemble should move less when the lookbacks move. This measures both questions the
default depends on:

* skill: CRPS of close returns (basis points of the last close), 80% coverage and realised-volatility error of
  ``auto`` (one lookback) and of the ensemble ``auto, 128, 64`` (``"ensemble"``, now the default), on the
  **validation** period of held-out series (the 5% of bars before each series' test period: choosing a default
  must not look at the test period), horizon 5, 50 paths, seeded;
* sensitivity: the median over origins of ``|mean 5-bar return(lookbacks) - mean 5-bar return(lookbacks x 0.75)|``
  for one lookback (``auto`` against 0.75 x ``auto``) and for the ensemble (each member x 0.75).

    python benchmarks/lookback_ensembles.py [--per-group 16] [--origins 12] [--also auto,128,64,32 ...]

Reads ``../shared/data`` through the same series choice as ``kronos_open_eval.py``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import properscoring
from kronos_open_eval import GROUPS, choose_series  # this folder: on sys.path when run as a script

from kronos.forecasting.predictor import KronosPredictor

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
HORIZON, PATHS = 5, 50


def scores(returns: np.ndarray, realised: np.ndarray) -> tuple[float, float, float]:
    """CRPS (bp, mean over steps), 80% coverage, realised-volatility absolute error (bp) of one forecast."""
    crps = float(properscoring.crps_ensemble(realised, returns.T).mean() * 1e4)
    lo, hi = np.quantile(returns, [0.1, 0.9], axis=0)
    cov = float(((realised >= lo) & (realised <= hi)).mean())
    steps = np.diff(np.log1p(np.maximum(returns, -1 + 1e-9)), axis=1, prepend=0.0)
    true = np.diff(np.log1p(realised), prepend=0.0)
    rv = abs(np.sqrt((steps**2).sum(1).mean()) - np.sqrt((true**2).sum())) * 1e4
    return crps, cov, float(rv)


def series_of(data: Path, group: str, per_group: int) -> list[tuple[str, pd.DataFrame]]:
    """The group's single-instrument files, an even spread by path order, each without its test period."""
    manifest = pd.read_csv(data / "MANIFEST.csv")
    out = []
    for rel in choose_series(manifest, GROUPS[group], per_group, min_rows=1300):
        frame = pd.read_parquet(data / rel)
        out.append((Path(rel).stem, frame.iloc[: len(frame) - int(round(len(frame) * 0.10))]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--model", default="kronos-open")
    parser.add_argument("--per-group", type=int, default=16)
    parser.add_argument("--origins", type=int, default=6)
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="LOOKBACKS",
        help="another ensemble to score beside the default, e.g. auto,128,64,32 (repeatable)",
    )
    args = parser.parse_args()
    predictor = KronosPredictor.from_pretrained(args.model)
    auto = predictor.max_context - HORIZON
    variants: dict[str, object] = {
        "auto": "auto",
        "auto x0.75": int(auto * 0.75),
        "ensemble (default)": "ensemble",  # auto, 128, 64 bars
        "ensemble x0.75": [int(auto * 0.75), 96, 48],
    }
    for spec in args.also:
        variants[spec] = [part if part == "auto" else int(part) for part in spec.split(",")]
    rows, moves = [], {name: [] for name in variants}
    started = time.time()
    for group in GROUPS:
        for name, frame in series_of(args.data, group, args.per_group):
            n_val = int(round(len(frame) / 0.9 * 0.05))
            first = len(frame) - n_val - 1
            origins = [first + HORIZON * k for k in range(args.origins) if first + HORIZON * (k + 1) < len(frame)]
            hist = [frame.iloc[t - 511 : t + 1].reset_index(drop=True) for t in origins]
            xs = [h["timestamps"] for h in hist]
            ys = [frame["timestamps"].iloc[t + 1 : t + 1 + HORIZON].reset_index(drop=True) for t in origins]
            close = frame["close"].to_numpy(float)
            realised = [close[t + 1 : t + 1 + HORIZON] / close[t] - 1.0 for t in origins]
            seeds = list(range(len(origins)))
            for variant, lookback in variants.items():
                fcs = predictor.forecast_batch(
                    hist, xs, ys, HORIZON, sample_count=PATHS, seeds=seeds, lookback=lookback
                )
                for fc, y in zip(fcs, realised):
                    r = fc.returns("close")
                    rows.append(
                        {"group": group, "variant": variant, **dict(zip(("crps", "cov80", "rv"), scores(r, y)))}
                    )
                    moves[variant].append(float(r[:, -1].mean()))
            print(f"[{group}] {name}: {len(origins)} origins ({time.time() - started:.0f} s)", flush=True)
    table = pd.DataFrame(rows)
    pooled = table.assign(group="pooled")
    summary = pd.concat([table, pooled]).groupby(["group", "variant"])[["crps", "cov80", "rv"]].mean()
    print("\nvalidation period, horizon 5, 50 paths (CRPS and RV error in bp of the last close)\n")
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    single = np.median(np.abs(np.subtract(moves["auto"], moves["auto x0.75"]))) * 1e4
    ensemble = np.median(np.abs(np.subtract(moves["ensemble (default)"], moves["ensemble x0.75"]))) * 1e4
    print(
        f"\nsensitivity: median |change of the mean 5-bar return| when the lookbacks shrink by a quarter: "
        f"one lookback {single:.1f} bp, ensemble {ensemble:.1f} bp ({len(moves['auto'])} forecasts)"
    )


if __name__ == "__main__":
    main()
