"""How much a forecast's direction depends on the lookback it is given: the complaint "the slope follows the lookback".

For each bundled sample (GOOGL daily, EURUSD hourly) and each of several cut points near its end, forecasts
``--pred-len`` bars with 100 seeded paths from lookbacks of 64, 128, 160, 200 bars, ``auto`` (the model's context
less the horizon) and the default ``ensemble`` (windows of auto, 128 and 64 bars, paths pooled), and prints per
lookback the mean path's return at the horizon and P(up) there. The spread across the single lookbacks of the same
cut point is the sensitivity: a model that reads volatility and drift, not the window's mean, gives similar answers
from every window long enough to estimate them.

    python benchmarks/lookback_sensitivity.py [--model DIR] [--pred-len 20]
"""

from __future__ import annotations

import argparse

import numpy as np

from kronos.bars.calendars import future_timestamps
from kronos.bars.samples import load_sample
from kronos.forecasting.predictor import KronosPredictor

LOOKBACKS: tuple[int | str, ...] = (64, 128, 160, 200, "auto", "ensemble")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="kronos-open", help="A model name or package folder (model/, tokenizer/).")
    parser.add_argument("--pred-len", type=int, default=20)
    parser.add_argument("--paths", type=int, default=100)
    parser.add_argument("--cuts", type=int, default=4, help="Cut points per sample (every 25 bars back from the end).")
    args = parser.parse_args()
    predictor = KronosPredictor.from_pretrained(args.model)
    print(f"{args.model}: context {predictor.max_context}, {args.paths} paths, horizon {args.pred_len} bars")
    header = "".join(f"{str(lb):>16}" for lb in LOOKBACKS)
    print(f"{'sample / cut':<18}{header}{'spread':>10}")
    spreads = []
    for name in ("googl", "eurusd"):
        df = load_sample(name)
        for k in range(args.cuts):
            part = df.iloc[: len(df) - 25 * k].reset_index(drop=True)
            future = future_timestamps(part["timestamps"], args.pred_len).rename(None)
            cells, moves = [], []
            for lookback in LOOKBACKS:
                fc = predictor.forecast(
                    part, part["timestamps"], future, args.pred_len, sample_count=args.paths, seed=0, lookback=lookback
                )
                move = float(fc.mean()["close"].iloc[-1] / part["close"].iloc[-1] - 1.0)
                moves.append(move)
                cells.append(f"{move * 100:+6.2f}% p{float(fc.prob_up().iloc[-1]):.2f}")
            spread = float(np.ptp(moves[:-1]))  # across the single windows
            spreads.append(spread)
            print(f"{name + ' -' + str(25 * k):<18}" + "".join(f"{c:>16}" for c in cells) + f"{spread * 100:>9.2f}%")
    print(
        f"median spread of the mean {args.pred_len}-bar return across the single lookbacks: "
        f"{np.median(spreads) * 100:.2f}% (cells: mean path's return at the horizon, P(up) there; the ensemble "
        "column is not in the spread)"
    )


if __name__ == "__main__":
    main()
