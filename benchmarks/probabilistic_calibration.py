"""Does split-conformal calibration fix the coverage of the 80% interval on held-out origins?

For each real series (read in place from ``../shared/data``): the first ``--cal`` rolling origins
calibrate (exactly what ``forecast(calibrate=True)`` does inside a history), the next ``--test``
origins, strictly later and never seen by the calibration, measure the empirical coverage of the
central 80% close interval of the raw model and of the calibrated forecast.

    python benchmarks/probabilistic_calibration.py                  # kronos_tiny fixture model, method "scale"
    python benchmarks/probabilistic_calibration.py --method offsets # the per-level offsets
    python benchmarks/probabilistic_calibration.py --model NeoQuasar/Kronos-small --lookback 256

The default model has random weights, which is exactly where calibration must earn its keep.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kronos import KronosPredictor
from kronos.forecasting.calibration import forecast_scales, origin_forecasts
from kronos.forecasting.conformal import fit_conformal

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SERIES = {
    "EURUSD 1h": ("fx/EURUSD_1h.parquet", 20000),
    "IBM daily": ("us_equity/IBM_daily.parquet", 8000),
    "BTCUSDT 1h": ("crypto/BINANCE-BTCUSDT_1h.parquet", 10000),
    "GLD daily": ("etf/GLD_daily.parquet", 2000),
    "SH600977 5min": ("cn_equity/SH600977_5min.parquet", 200),
    "CL daily": ("futures/CL_daily.parquet", 3000),
}


def study(
    predictor: KronosPredictor,
    path: Path,
    start: int,
    *,
    n_cal: int,
    n_test: int,
    pred_len: int,
    lookback: int,
    stride: int,
    samples: int,
    scale: str,
    method: str = "scale",
    level: float = 0.8,
    seed: int = 0,
) -> dict[str, float]:
    """Coverage of the central ``level`` interval on held-out origins, raw and calibrated."""
    df = pd.read_parquet(path)
    n_origins = n_cal + n_test
    frame = df.iloc[start : start + lookback + pred_len + (n_origins - 1) * stride].reset_index(drop=True)
    origins = [lookback - 1 + i * stride for i in range(n_origins)]
    torch.manual_seed(seed)
    fcs, realized = origin_forecasts(
        predictor.forecast_fn(sample_count=samples),
        frame.drop(columns="timestamps"),
        frame["timestamps"],
        pred_len,
        origins,
        lookback,
        per_call=max(1, 2048 // samples),
    )
    scales = forecast_scales(fcs[:n_cal]) if scale == "history" and method == "offsets" else None
    cal = fit_conformal(np.stack([fc.returns() for fc in fcs[:n_cal]]), realized[:n_cal], scales=scales, method=method)
    before, after = [], []
    for fc, y in zip(fcs[n_cal:], realized[n_cal:]):
        for f, out in ((fc, before), (cal.apply(fc), after)):
            lo, hi = f.interval(level)
            r_lo, r_hi = lo["close"].to_numpy() / f.last_close - 1, hi["close"].to_numpy() / f.last_close - 1
            out.append((y >= r_lo) & (y <= r_hi))
    return {
        "before": float(np.mean(before)),
        "after": float(np.mean(after)),
        "cal_cv": float(cal.coverage[f"after_cv_{round(level * 100)}"].mean()),
        "n_test": n_test * pred_len,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(SHARED / "reference" / "kronos_tiny"))
    ap.add_argument("--max-context", type=int, default=64)
    ap.add_argument("--lookback", type=int, default=64)
    ap.add_argument("--pred-len", type=int, default=10)
    ap.add_argument("--stride", type=int, default=10)
    ap.add_argument("--cal", type=int, default=30)
    ap.add_argument("--test", type=int, default=30)
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--method", default="scale", choices=["scale", "offsets"], help="calibration method")
    ap.add_argument("--scale", default="history", choices=["history", "none"], help="offsets: score normalisation")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    predictor = KronosPredictor.from_pretrained(args.model, device="cpu", max_context=args.max_context)
    rows = {}
    t0 = time.time()
    for name, (rel, start) in SERIES.items():
        rows[name] = study(
            predictor,
            SHARED / "data" / rel,
            start,
            n_cal=args.cal,
            n_test=args.test,
            pred_len=args.pred_len,
            lookback=args.lookback,
            stride=args.stride,
            samples=args.samples,
            scale=args.scale,
            method=args.method,
        )
        print(
            f"{name:15s} 80% coverage on {args.test} held-out origins: raw {rows[name]['before']:.3f} -> "
            f"calibrated {rows[name]['after']:.3f}",
            flush=True,
        )
    table = pd.DataFrame(rows).T
    table.loc["all (mean)"] = table.mean()
    print(table[["before", "after", "cal_cv"]].round(3).to_string())
    print(f"{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
