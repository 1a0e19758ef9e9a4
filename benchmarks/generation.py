"""Generation speed: the original (uncached) algorithm against cached decoding, in one run.

Random-weight models with the published Kronos-small and Kronos-Tokenizer-base configurations
forecast real bars (greedy, so both paths must give the same numbers). Each case and mode runs in
its own process so that peak memory (max RSS on CPU, max allocated on CUDA) is its own.

    python benchmarks/generation.py                 # all cases on the best device
    python benchmarks/generation.py --cases b --device cpu

Cases (from the issue):
  a  lookback 400, pred_len 120, sample_count 5  (window slides for 8 steps)
  b  lookback 256, pred_len 120, sample_count 5  (fits the window)
  c  predict_batch of 32 series, lookback 256, pred_len 24, sample_count 1
The block-window approximation is also timed on case a, with how far its forecasts move.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kronos.model.registry import PUBLISHED_CONFIGS

CASES = {
    "a": dict(lookback=400, pred_len=120, sample_count=5, n_series=1),
    "b": dict(lookback=256, pred_len=120, sample_count=5, n_series=1),
    "c": dict(lookback=256, pred_len=24, sample_count=1, n_series=32),
}
SMALL = PUBLISHED_CONFIGS["Kronos-small"].to_dict()
TOKENIZER_BASE = PUBLISHED_CONFIGS["Kronos-Tokenizer-base"].to_dict()
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def load_series(n_series: int, length: int) -> list[pd.DataFrame]:
    """Real daily bars of large US stocks (or the bundled sample when ../shared is absent)."""
    files = sorted((DATA / "us_equity").glob("*_daily.parquet"))
    files = [f for f in files if "panel" not in f.name]
    frames = []
    if files:
        for i in range(n_series):
            df = pd.read_parquet(files[i % len(files)])
            start = len(df) - length - 50 * (i // len(files)) - 1
            frames.append(df.iloc[start : start + length].reset_index(drop=True))
    else:
        from kronos.bars.reader import read_bars
        from kronos.bars.samples import sample_data_path

        df = read_bars(sample_data_path("googl"))
        frames = [df.iloc[len(df) - length - 5 * i : len(df) - 5 * i].reset_index(drop=True) for i in range(n_series)]
    return frames


def _worker(case: str, mode: str, device: str, threads: int, queue: mp.Queue) -> None:
    import torch

    from kronos import Kronos, KronosPredictor, KronosTokenizer

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    predictor = KronosPredictor(Kronos(**SMALL), KronosTokenizer(**TOKENIZER_BASE), device=device, max_context=512)
    c = CASES[case]
    frames = load_series(c["n_series"], c["lookback"])
    xs = [f["timestamps"] for f in frames]
    ys = [
        pd.Series(pd.bdate_range(f["timestamps"].iloc[-1] + pd.offsets.BDay(1), periods=c["pred_len"])) for f in frames
    ]
    kwargs = dict(use_cache=mode != "uncached", window="block" if mode == "block" else "exact")
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    out = predictor.predict_batch(
        frames, xs, ys, c["pred_len"], top_k=1, sample_count=c["sample_count"], verbose=False, **kwargs
    )
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    if device.startswith("cuda"):
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(dict(seconds=seconds, peak_mb=peak_mb, close=np.stack([o["close"].to_numpy() for o in out])))


def run(case: str, mode: str, device: str, threads: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(case, mode, device, threads, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="abc", help="which cases to run, e.g. 'ab'")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-block", action="store_true", help="skip the block-window approximation on case a")
    args = parser.parse_args()
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    where = (
        torch.cuda.get_device_name(0)
        if device.startswith("cuda")
        else f"{platform.processor() or platform.machine()}, {args.threads} threads"
    )
    print(
        f"Kronos-small + Tokenizer-base (random weights), greedy, device {device} ({where}), torch {torch.__version__}"
    )
    print(f"{'case':<34}{'uncached s':>11}{'cached s':>10}{'speed-up':>10}{'peak MB unc/cached':>21}  same output")
    for case in args.cases:
        c = CASES[case]
        label = f"{case}: L{c['lookback']} P{c['pred_len']} S{c['sample_count']} x{c['n_series']}"
        base = run(case, "uncached", device, args.threads)
        fast = run(case, "cached", device, args.threads)
        same = np.allclose(fast["close"], base["close"], rtol=1e-4)
        print(
            f"{label:<34}{base['seconds']:>11.2f}{fast['seconds']:>10.2f}{base['seconds'] / fast['seconds']:>9.1f}x"
            f"{base['peak_mb']:>11.0f} / {fast['peak_mb']:<8.0f}  {'yes' if same else 'NO'}",
            flush=True,
        )
        if case == "a" and not args.no_block:
            block = run(case, "block", device, args.threads)
            moved = np.abs(block["close"] - fast["close"]) / np.abs(fast["close"])
            print(
                f"{'a (window=block, approximate)':<34}{base['seconds']:>11.2f}{block['seconds']:>10.2f}"
                f"{base['seconds'] / block['seconds']:>9.1f}x{'':>21}  close moves {100 * moved.mean():.2f}% mean, "
                f"{100 * moved.max():.2f}% max vs exact",
                flush=True,
            )


if __name__ == "__main__":
    main()
