"""Make the figures of docs/probabilistic.md and the README's probabilistic section.

    python docs/make_figures.py   # docs/images/forecast_googl_calibrated.png (+ .html beside it with --html)

Uses the bundled GOOGL daily sample and the shipped kronos-open model, so it runs offline
from a clean clone; the numbers it prints (coverage before/after calibration) are those quoted in the docs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from kronos import KronosPredictor
from kronos.bars.calendars import future_timestamps
from kronos.bars.reader import read_bars
from kronos.bars.samples import sample_data_path
from kronos.forecasting.calibration import CalibrationOptions

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE / "images" / "forecast_googl_calibrated.png")
    ap.add_argument("--html", action="store_true", help="also write the interactive plotly page next to the PNG")
    args = ap.parse_args()

    df = read_bars(sample_data_path("googl"))
    predictor = KronosPredictor.from_pretrained("kronos-open")
    future = future_timestamps(df["timestamps"], 20)
    torch.manual_seed(0)
    fc = predictor.forecast(
        df,
        df["timestamps"],
        future,
        pred_len=20,
        sample_count=100,
        calibrate=CalibrationOptions(origins=30, stride=10),
    )
    report = fc.coverage_report()
    print(f"lookback {fc.info['calibration']['lookback']} bars, {fc.calibration.n_origins} origins")
    print(report.loc["all"].round(3).to_string())
    fc.plot_png(
        args.out,
        levels=(0.5, 0.8, 0.95),
        history_bars=80,
        title="GOOGL daily (bundled sample), kronos-open: calibrated bands, raw 80% dashed",
    )
    print(f"wrote {args.out}")
    if args.html:
        html = fc.plot_html(args.out.with_suffix(".html"), include_plotlyjs="cdn")
        print(f"wrote {html}")


if __name__ == "__main__":
    main()
