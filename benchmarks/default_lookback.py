"""The default lookback never slides the model's window: its time and its window against lookback = context.

The shipped ``kronos-open`` (context 256 bars) forecasts the bundled GOOGL daily sample (600 bars), 50 paths,
12 bars, seeded, in one process: with the default ``lookback="ensemble"`` (windows of 244, 128 and 64 bars, none
longer than auto), with ``lookback="auto"`` (``max_context - pred_len`` = 244 bars: the whole forecast fits the
context) and with ``lookback=256`` (the old default: every new bar pushes the window and forces a re-prefill).
Prints the median time of each, the bars used (the longest window), whether any window slides, and the speed-ups
against 256. Ratios from one run on a noisy machine; compare on the same machine only.

    python benchmarks/default_lookback.py [--repeats 5] [--series 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from kronos.bars.calendars import future_timestamps
from kronos.bars.samples import load_sample
from kronos.forecasting.predictor import KronosPredictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--series", type=int, default=1, help="Series forecast in one batch.")
    parser.add_argument("--pred-len", type=int, default=12)
    parser.add_argument("--paths", type=int, default=50)
    args = parser.parse_args()
    predictor = KronosPredictor.from_pretrained("kronos-open")
    df = load_sample("googl")
    frames = [df.iloc[: len(df) - 3 * i].reset_index(drop=True) for i in range(args.series)]
    xs = [f["timestamps"] for f in frames]
    ys = [future_timestamps(f["timestamps"], args.pred_len).rename(None) for f in frames]
    ctx = predictor.max_context
    print(
        f"kronos-open, context {ctx}, {args.series} series x {args.paths} paths x {args.pred_len} bars, "
        f"{torch.get_num_threads()} threads, median of {args.repeats}"
    )
    print(f"{'lookback':<20}{'bars used':>10}{'slides':>8}{'seconds':>10}")
    times = {}
    for label, lookback in (("ensemble (default)", "ensemble"), ("auto", "auto"), (f"{ctx} (context)", ctx)):
        run = []
        for _ in range(args.repeats + 1):  # the first run warms up
            start = time.perf_counter()
            fcs = predictor.forecast_batch(
                frames,
                xs,
                ys,
                args.pred_len,
                sample_count=args.paths,
                seeds=list(range(args.series)),
                lookback=lookback,
            )
            run.append(time.perf_counter() - start)
        used = fcs[0].info["bars_used"]
        times[label] = statistics.median(run[1:])
        slides = "yes" if used + args.pred_len > ctx else "no"
        print(f"{label:<20}{used:>10}{slides:>8}{times[label]:>10.3f}")
    ensemble, auto, full = times.values()
    print(f"speed-up against lookback {ctx}: the default ensemble {full / ensemble:.2f}x, auto {full / auto:.2f}x")


if __name__ == "__main__":
    main()
