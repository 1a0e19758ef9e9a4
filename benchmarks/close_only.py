"""Close-only series: does the shipped model keep its skill when it sees only closes?

Most series people hold are one price per bar. This script measures what ``kronos-open`` loses when its
bars are rebuilt from the closes alone (:func:`kronos.bars.closeonly.close_only_bars`: open = previous
close, high/low = max/min of the two, no volume) against the same series' full OHLCV bars, on a bounded,
deterministic sample of ``../shared/data``: an even spread of single-instrument files over the daily,
hourly and intraday groups, a few origins each inside the held-out last 10% of every series, horizon 5,
the model's defaults (lookback auto, plain sampling). Persistence and drift, which read the close only, are
scored on the same rows as references. One thread, one process: about 5 minutes on one core.

    python benchmarks/close_only.py                      # the table in docs/close-only.md
    python benchmarks/close_only.py --series 6 --origins 2   # a quick look

Prints a markdown table (CRPS, MAE and RV error in basis points of the last close; 80% coverage;
direction) and the decision rule's inputs: close-only CRPS over full-bar CRPS, and each one's CRPS skill
against persistence (1 - CRPS / CRPS of persistence).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
GROUPS = {"daily": ("daily",), "hourly": ("1h", "4h"), "intraday": ("1min", "5min")}
SHARE = {"daily": 0.4, "hourly": 0.3, "intraday": 0.3}  # of --series


def choose(manifest: pd.DataFrame, n: int, min_rows: int) -> list[str]:
    """An even spread (by path order, so markets mix) of single-instrument files per frequency group."""
    out: list[str] = []
    for group, freqs in GROUPS.items():
        rows = manifest[
            manifest["frequency"].isin(freqs) & (manifest["n_symbols"] == 1) & (manifest["rows"] >= min_rows)
        ]
        paths = sorted(rows["path"])
        k = max(1, round(n * SHARE[group]))
        picks = np.linspace(0, len(paths) - 1, min(k, len(paths))).round().astype(int)
        out += [paths[i] for i in sorted(set(picks))]
    return out


def close_only(frame: pd.DataFrame) -> pd.DataFrame:
    from kronos.bars.closeonly import close_only_bars

    bars = close_only_bars(frame["close"])
    bars.insert(0, "timestamps", frame["timestamps"].to_numpy())
    return bars


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--origins", type=int, default=5)
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--out", type=Path, default=None, help="also write the forecasts table here (parquet)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from kronos.evaluation.data import read_series
    from kronos.evaluation.forecasters import load_forecaster
    from kronos.evaluation.metrics import compute_metrics
    from kronos.evaluation.origins import RollingConfig
    from kronos.evaluation.rolling import rolling_evaluate
    from kronos.model.registry import DEFAULT_LOOKBACK

    manifest = pd.read_csv(args.data / "MANIFEST.csv")
    min_rows = 10 * (DEFAULT_LOOKBACK + args.horizon * args.origins)  # the origins lie in the last 10%
    files = choose(manifest, args.series, min_rows)
    config = RollingConfig(
        lookback=DEFAULT_LOOKBACK,
        horizon=args.horizon,
        origins=args.origins,
        num_samples=args.samples,
        align="end",
    )
    full: dict[str, pd.DataFrame] = {}
    group_of: dict[str, str] = {}
    for rel in files:
        ((name, frame),) = read_series(args.data / rel).items()
        full[name] = frame
        freq = manifest.set_index("path").loc[rel, "frequency"]
        group_of[name] = next(g for g, fs in GROUPS.items() if freq in fs)
    closes = {name: close_only(frame) for name, frame in full.items()}

    kronos = load_forecaster("kronos")
    refs = [load_forecaster("persistence"), load_forecaster("drift")]
    start = time.perf_counter()
    kronos.name = "kronos (full bars)"
    a = rolling_evaluate(full, [kronos, *refs], config, n_jobs=1, raise_errors=True).forecasts
    kronos.name = "kronos (close only)"
    b = rolling_evaluate(closes, [kronos], config, n_jobs=1, raise_errors=True).forecasts
    seconds = time.perf_counter() - start
    forecasts = pd.concat([a, b], ignore_index=True)
    if args.out:
        forecasts.to_parquet(args.out, index=False)

    rows = []
    for group in [*GROUPS, "pooled"]:
        part = forecasts if group == "pooled" else forecasts[forecasts["series"].map(group_of) == group]
        if part.empty:
            continue
        m = compute_metrics(part)
        m = m[(m["series"] == "(all)") & (m["step"].astype(str) == "all")].set_index("forecaster")
        for name, r in m.iterrows():
            rows.append(
                {
                    "group": f"{group} ({part['series'].nunique()} series, {int(r['n'])} rows)",
                    "forecaster": name,
                    "CRPS bp": 1e4 * r["crps_ret"],
                    "MAE bp": 1e4 * r["mae_ret"],
                    "cov80": r["cov80"],
                    "direction": r["dir_acc"],
                    "RV MAE bp": 1e4 * r["rv_mae"],
                    "skill vs persistence": 1 - r["crps_ret"] / m.loc["persistence", "crps_ret"],
                }
            )
    table = pd.DataFrame(rows)
    print(
        f"{len(full)} series, {args.origins} origins each, horizon {args.horizon}, {args.samples} paths; "
        f"{seconds:.0f} s of forecasting on one thread"
    )
    from kronos.evaluation.report import markdown_table

    print(markdown_table(table.round(3)))
    pooled = table[table["group"].str.startswith("pooled")].set_index("forecaster")
    ratio = pooled.loc["kronos (close only)", "CRPS bp"] / pooled.loc["kronos (full bars)", "CRPS bp"]
    print(f"pooled CRPS close-only / full bars: {ratio:.3f}")


if __name__ == "__main__":
    main()
