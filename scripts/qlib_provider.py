"""Write a Qlib provider directory from a file or folder of bars, to try Qlib-based training offline.

Qlib users normally have a provider directory already (``python -m qlib.run.get_data qlib_data --target_dir
~/.qlib/qlib_data/cn_data --region cn``, or Qlib's own ``dump_bin.py`` over their CSVs). Without one, this
script writes the same layout (:mod:`kronos.bars.qlib` describes it) from any bars ``kronos`` reads, e.g. the
A-share panel of ``../shared/data``:

    python scripts/qlib_provider.py ../shared/data/cn_equity/ashare_daily_panel.parquet runs/qlib_cn \
        --start 2015-01-01 --max-series 50

Then ``data.qlib.provider_uri: runs/qlib_cn`` in a training config reads it (configs/finetune-open-qlib.yaml),
with numpy or with pyqlib (``use_pyqlib: true``). Daily bars only (the calendar is written as ``day``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

FIELDS = ("open", "high", "low", "close", "volume", "amount")


def write_provider(series: dict[str, pd.DataFrame], root: Path) -> int:
    """Write ``calendars/day.txt``, ``instruments/all.txt`` and ``features/<symbol>/<field>.day.bin``; returns the
    number of instruments written."""
    calendar = pd.DatetimeIndex(sorted(set().union(*(set(f["timestamps"]) for f in series.values()))))
    (root / "calendars").mkdir(parents=True, exist_ok=True)
    (root / "calendars" / "day.txt").write_text("\n".join(f"{d:%Y-%m-%d}" for d in calendar) + "\n")
    lines = []
    for symbol, frame in series.items():
        frame = frame.set_index("timestamps")
        first, last = calendar.get_loc(frame.index[0]), calendar.get_loc(frame.index[-1])
        aligned = frame.reindex(calendar[first : last + 1])  # NaN on days without a bar, as Qlib stores them
        folder = root / "features" / symbol.lower()
        folder.mkdir(parents=True, exist_ok=True)
        for field in FIELDS:
            if field in aligned:  # element 0: the calendar index of the first value; little-endian float32
                values = np.concatenate([[first], aligned[field].to_numpy()]).astype("<f4")
                values.tofile(folder / f"{field}.day.bin")
        lines.append(f"{symbol}\t{frame.index[0]:%Y-%m-%d}\t{frame.index[-1]:%Y-%m-%d}")
    (root / "instruments").mkdir(parents=True, exist_ok=True)
    (root / "instruments" / "all.txt").write_text("\n".join(lines) + "\n")
    return len(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="a bar file (a panel with a symbol column) or a folder of them")
    parser.add_argument("out", type=Path, help="the provider directory to write")
    parser.add_argument("--start", default=None, help="first date kept (YYYY-MM-DD)")
    parser.add_argument("--max-series", type=int, default=None, help="keep the first N series in name order")
    args = parser.parse_args()

    from kronos.evaluation.data import read_series

    series = read_series(args.data, max_series=args.max_series)
    if args.start:
        series = {k: f[f["timestamps"] >= args.start].reset_index(drop=True) for k, f in series.items()}
        series = {k: f for k, f in series.items() if len(f)}
    count = write_provider(series, args.out)
    print(f"wrote {count} instruments to {args.out}")


if __name__ == "__main__":
    main()
