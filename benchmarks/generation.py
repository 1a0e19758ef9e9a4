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

Shared-prefix (cascade) attention, with the shipped kronos-open model, in this process
(``python benchmarks/generation.py --cases p``):
  p  16 series x 50 paths x 12 bars at lookback auto (244 of the 256-bar context) and at the default
     lookback ensemble (windows of 244, 128 and 64 bars), every series with its own seed: one batch vs one
     by one, each with the shared prefix and with per-path copies of it (the previous implementation); the
     time per decode step of one series at 50 and 200 paths; and the key/value bytes a decode step reads
     beside this machine's measured memory bandwidth.
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


def _shared_prefix_figures(threads: int, device: str) -> None:
    """Case p: batched sample paths with the history's keys/values shared by the paths, against per-path copies."""
    import torch

    from kronos.forecasting.loading import load_predictor
    from kronos.forecasting.prepared import series_uniforms
    from kronos.inference.generation import sample_paths
    from kronos.inference.options import SamplingOptions

    torch.set_num_threads(threads)
    predictor = load_predictor(device=device)
    model, tokenizer, context = predictor.model, predictor.tokenizer, predictor.max_context
    series, paths, horizon = 16, 50, 12
    frames = load_series(series, 300)
    xs = [f["timestamps"] for f in frames]
    ys = [pd.Series(pd.bdate_range(f["timestamps"].iloc[-1] + pd.offsets.BDay(1), periods=horizon)) for f in frames]

    def batch(share: bool, lookback: str) -> tuple[float, np.ndarray]:
        t0 = time.perf_counter()
        out = predictor.forecast_batch(
            frames,
            xs,
            ys,
            horizon,
            sample_count=paths,
            seeds=list(range(series)),
            share_prefix=share,
            lookback=lookback,
        )
        return time.perf_counter() - t0, np.stack([f.paths for f in out])

    def one_by_one(share: bool, lookback: str) -> tuple[float, np.ndarray]:
        t0 = time.perf_counter()
        out = [
            predictor.forecast(f, x, y, horizon, sample_count=paths, seed=i, share_prefix=share, lookback=lookback)
            for i, (f, x, y) in enumerate(zip(frames, xs, ys))
        ]
        return time.perf_counter() - t0, np.stack([f.paths for f in out])

    rows = {}
    for lookback in ("auto", "ensemble"):
        batch(True, lookback)  # warm-up
        for name, fn in [("batch", batch), ("one by one", one_by_one)]:
            for share in (True, False):
                rows[lookback, name, share] = min((fn(share, lookback) for _ in range(2)), key=lambda r: r[0])
        ref = rows[lookback, "batch", True][1]
        same = all(
            np.allclose(rows[key][1], ref, rtol=1e-5, atol=1e-6) for key in rows if key[0] == lookback
        )  # fmt: skip
        what = "auto: 244 bars" if lookback == "auto" else "ensemble (the default): windows of 244, 128 and 64 bars"
        print(f"\np: kronos-open, {series} series x {paths} paths x {horizon} bars, lookback {what}, seeded per series")
        print(f"{'':<14}{'shared prefix s':>16}{'per-path copies s':>19}{'shared speed-up':>17}")
        for name in ("batch", "one by one"):
            a, b = rows[lookback, name, True][0], rows[lookback, name, False][0]
            print(f"{name:<14}{a:>16.3f}{b:>19.3f}{b / a:>16.2f}x")
        fast = rows[lookback, "batch", True][0]
        print(
            f"batch with shared prefix: {rows[lookback, 'one by one', True][0] / fast:.2f}x faster than one by one "
            f"(shared), {rows[lookback, 'one by one', False][0] / fast:.2f}x than one by one (copies), "
            f"{rows[lookback, 'batch', False][0] / fast:.2f}x than the batch with copies; same paths: "
            f"{'yes' if same else 'NO'}"
        )

    # Time per decode step of one series: (horizon 12 - horizon 2) / 10 steps, at 50 and 200 paths.
    cfg = model.config
    lookback = context - horizon
    x = torch.randn(1, lookback, 6, device=device) * 0.5
    xst = torch.zeros(1, lookback, 5, device=device)

    def gen(h: int, n: int, share: bool, how: str) -> float:
        best = float("inf")
        opts = SamplingOptions(
            sample_count=n, share_prefix=share, draws="multinomial" if how == "original" else "uniform"
        )
        for _ in range(3):
            t0 = time.perf_counter()
            y_stamp = torch.zeros(1, h, 5, device=device)
            if how == "seeded":  # per-path uniforms, inverse CDF: what every seeded forecast and the server draw
                draws = dict(uniforms=series_uniforms(0, n, h).to(device))
            else:  # one generator: uniforms drawn at once (forecasts), or torch.multinomial (the original's stream)
                draws = dict(generator=torch.Generator(device=device).manual_seed(0))
            sample_paths(tokenizer, model, x, xst, y_stamp, h, context, opts, **draws)
            best = min(best, time.perf_counter() - t0)
        return best

    labels = {
        "seeded": "seeded (per-path uniforms)",
        "unseeded": "unseeded (uniforms from one generator: a forecast without seeds)",
        "original": "unseeded with torch.multinomial (the original's draws: predict, predict_batch)",
    }
    for how, label in labels.items():
        step_s = {}
        for n in (50, 200):
            for share in (True, False):
                step_s[n, share] = (gen(horizon, n, share, how) - gen(2, n, share, how)) / (horizon - 2)
        print(f"\ndecode step, one series, lookback {lookback}, {label}: ", end="")
        print(
            ", ".join(
                f"{n} paths {1e3 * step_s[n, True]:.1f} ms (copies {1e3 * step_s[n, False]:.1f} ms)" for n in (50, 200)
            )
            + f"; 200 paths cost {step_s[200, True] / step_s[50, True]:.2f}x 50 paths with the shared prefix"
            f" ({step_s[200, False] / step_s[50, False]:.2f}x with copies)"
        )

    # Key/value bytes read per decode step (mid-horizon), against the measured bandwidth.
    item = next(model.parameters()).element_size()
    per_position = 2 * cfg.d_model * item * (cfg.n_layers + 1)  # keys + values, every block + dependency layer
    own = horizon // 2
    rows_ = series * paths
    shared_bytes = per_position * (series * lookback + rows_ * own)
    copied_bytes = per_position * rows_ * (lookback + own)
    big = torch.empty(256 * 2**20 // 4, device=device).normal_()
    out_buf = torch.empty_like(big)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        out_buf.copy_(big)
        best = min(best, time.perf_counter() - t0)
    bandwidth = 2 * big.numel() * 4 / best  # read + write
    batch_step = (rows["auto", "batch", True][0]) / horizon
    print(
        f"key/value bytes read per decode step ({series} x {paths}): shared prefix {shared_bytes / 2**20:.1f} MiB, "
        f"per-path copies {copied_bytes / 2**20:.1f} MiB; measured copy bandwidth {bandwidth / 1e9:.1f} GB/s, so the "
        f"cache reads take at least {1e3 * shared_bytes / bandwidth:.1f} ms (shared) / "
        f"{1e3 * copied_bytes / bandwidth:.1f} ms (copies) of a step; the whole batch takes "
        f"{1e3 * batch_step:.1f} ms per bar ({batch_step / (shared_bytes / bandwidth):.0f}x the shared floor)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="pabc", help="which cases to run, e.g. 'ab'")
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
    print(f"device {device} ({where}), torch {torch.__version__}")
    if "p" in args.cases:
        _shared_prefix_figures(args.threads, device)
    cases = [c for c in args.cases if c in CASES]
    if cases:
        print("\ncases a-c: Kronos-small + Tokenizer-base (random weights), greedy")
        print(f"{'case':<34}{'uncached s':>11}{'cached s':>10}{'speed-up':>10}{'peak MB unc/cached':>21}  same output")
    for case in cases:
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
