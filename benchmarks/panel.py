"""Forecasting a universe: series per second on the S&P 500 daily panel, four ways.

Lookback 400, pred_len 10, 20 sample paths (T=1, top_p=0.9), every series of the panel with at
least 400 bars (its last 400). For each model:

  a  the original algorithm (``use_cache=False``), one series at a time (``predict``)
  b  the original's ``predict_batch`` over the timed series at once (their lengths are equal)
  c  ours, one process: ``kronos forecast --data PANEL`` (cached, padded batches, per-series seeds)
  d  ours under ``torchrun --nproc_per_node=2`` (series sharded across ranks; output checked equal to c)

(a) and (b) are slow: they time ``--n-original`` series, (c) and (d) ``--n-series``; the table reports
series/s and peak resident memory per process (max RSS; on CUDA also max allocated). (c) and (d) are
timed as whole commands (start-up, model loading and writing included), (a) and (b) as the
forecast call alone, which favours the original. Every process uses ``--threads`` threads.

Models: ``random`` (Kronos-small + Kronos-Tokenizer-base configurations, random weights) and any
predictor directory or name (``--model kronos-open``); one that cannot be loaded is skipped with the
reason. Offline unless ``--online``.

    python benchmarks/panel.py --n-original 3 --n-series 32
    python benchmarks/panel.py --model random --model kronos-open
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "us_equity" / "sp500_daily_panel.parquet"
LOOKBACK, PRED_LEN, PATHS, TOP_P = 400, 10, 20, 0.9


def load_panel(n_series: int) -> pd.DataFrame:
    """The last ``LOOKBACK`` bars of the first ``n_series`` symbols (alphabetical) with that many bars."""
    if not DATA.exists():
        raise SystemExit(f"{DATA} is missing: the benchmark reads the S&P 500 panel from ../shared/data")
    panel = pd.read_parquet(DATA)
    counts = panel.groupby("symbol").size()
    symbols = sorted(counts[counts >= LOOKBACK].index)[:n_series]
    panel = panel[panel["symbol"].isin(symbols)]
    return panel.groupby("symbol", sort=False).tail(LOOKBACK).reset_index(drop=True)


def load_predictor(spec: str, device: str):
    from kronos import Kronos, KronosPredictor, KronosTokenizer
    from kronos.model.registry import PUBLISHED_CONFIGS

    if spec == "random":
        import torch

        torch.manual_seed(0)
        model = Kronos(**PUBLISHED_CONFIGS["Kronos-small"].to_dict())
        tokenizer = KronosTokenizer(**PUBLISHED_CONFIGS["Kronos-Tokenizer-base"].to_dict())
        return KronosPredictor(model, tokenizer, device=device, max_context=512)
    return KronosPredictor.from_pretrained(spec, device=device)


def _peak_mb(device: str) -> float:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _original_worker(model_dir: str, mode: str, n: int, device: str, threads: int, queue: mp.Queue) -> None:
    import torch

    from kronos import KronosPredictor

    torch.set_num_threads(threads)
    predictor = KronosPredictor.from_pretrained(model_dir, device=device)
    from kronos.bars.calendars import future_timestamps

    panel = load_panel(n)
    frames = [g.drop(columns="symbol").reset_index(drop=True) for _, g in panel.groupby("symbol", sort=False)]
    xs = [f["timestamps"] for f in frames]
    ys = [pd.Series(future_timestamps(x, PRED_LEN)) for x in xs]
    opts = dict(T=1.0, top_p=TOP_P, sample_count=PATHS, verbose=False, use_cache=False)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    if mode == "a":
        for f, x, y in zip(frames, xs, ys):
            predictor.predict(f, x, y, PRED_LEN, **opts)
    else:
        predictor.predict_batch(frames, xs, ys, PRED_LEN, **opts)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    queue.put(dict(seconds=time.perf_counter() - t0, peak_mb=_peak_mb(device), series=len(frames)))


def run_original(model_dir: str, mode: str, n: int, device: str, threads: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_original_worker, args=(model_dir, mode, n, device, threads, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def run_cli(model_dir: str, panel_file: Path, out: Path, procs: int, device: str, threads: int) -> dict:
    """``kronos forecast`` on the panel (under torchrun when ``procs > 1``): wall time and the largest child RSS."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    args = [
        "-m",
        "kronos",
        "forecast",
        "--data",
        str(panel_file),
        "--model",
        model_dir,
        "--lookback",
        str(LOOKBACK),
        "--pred-len",
        str(PRED_LEN),
        "--samples",
        str(PATHS),
        "--top-p",
        str(TOP_P),
        "--out",
        str(out),
        "--device",
        device,
    ]
    if procs > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", *args]
    else:
        cmd = [sys.executable, *args]
    # Each command runs in a fresh helper so RUSAGE_CHILDREN's max RSS is this command's own.
    helper = (
        "import resource, subprocess, sys, time, json; t0 = time.perf_counter(); "
        f"rc = subprocess.run({cmd!r}, stdout=subprocess.DEVNULL).returncode; "
        "print(json.dumps(dict(rc=rc, seconds=time.perf_counter() - t0, "
        "peak_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)))"
    )
    proc = subprocess.run([sys.executable, "-c", helper], env=env, capture_output=True, text=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise SystemExit(f"kronos forecast failed ({result['rc']}): {proc.stderr[-3000:]}")
    return result


def bench_model(spec: str, args: argparse.Namespace, device: str, tmp: Path) -> list[tuple[str, dict]]:
    try:
        predictor = load_predictor(spec, "cpu")
    except Exception as exc:  # noqa: BLE001 - any loading failure means: skip this model, say why
        print(f"[{spec}] skipped: cannot load it ({type(exc).__name__}: {exc})", flush=True)
        return []
    model_dir = tmp / f"model-{abs(hash(spec))}"
    predictor.save_pretrained(model_dir)  # every case loads the same files
    del predictor
    rows = []
    for mode in ("a", "b"):
        r = run_original(str(model_dir), mode, args.n_original, device, args.threads)
        rows.append((mode, r))
        print(f"[{spec}] ({mode}) {r['series']} series in {r['seconds']:.1f} s", flush=True)
    panel_file = tmp / "panel.parquet"
    panel = load_panel(args.n_series)
    panel.to_parquet(panel_file, index=False)
    outs = {}
    for mode, procs in (("c", 1), ("d", 2)):
        out = tmp / f"forecast-{mode}.parquet"
        r = run_cli(str(model_dir), panel_file, out, procs, device, args.threads)
        r["series"] = panel["symbol"].nunique()
        rows.append((mode, r))
        outs[mode] = pd.read_parquet(out)
        print(f"[{spec}] ({mode}) {r['series']} series in {r['seconds']:.1f} s", flush=True)
    same = outs["c"].equals(outs["d"])
    rows[-1][1]["same_as_c"] = same
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model",
        action="append",
        help="'random' or a predictor directory/name; repeatable (default: random and kronos-open)",
    )
    parser.add_argument("--n-original", type=int, default=3, help="series timed for (a) and (b) (slow)")
    parser.add_argument("--n-series", type=int, default=32, help="series timed for (c) and (d)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--online", action="store_true", help="allow hub downloads when loading --model")
    args = parser.parse_args()
    if not args.online:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    models = args.model or ["random", "kronos-open"]
    where = platform.processor() or platform.machine()
    print(
        f"S&P 500 daily panel, lookback {LOOKBACK}, pred_len {PRED_LEN}, {PATHS} paths; {where}, "
        f"{os.cpu_count()} cores, "
        f"{args.threads} thread(s) per process, torch {torch.__version__}, device {args.device}"
    )
    labels = {
        "a": "(a) original, one series at a time",
        "b": "(b) original predict_batch",
        "c": "(c) ours, one process",
        "d": "(d) ours, torchrun 2 processes",
    }
    with tempfile.TemporaryDirectory(prefix="kronos-panel-bench-") as tmp:
        for spec in models:
            rows = bench_model(spec, args, args.device, Path(tmp))
            if not rows:
                continue
            base = rows[0][1]["series"] / rows[0][1]["seconds"]
            print(f"\n| model {spec} | series | seconds | series/s | vs (a) | peak RSS MB per process |")
            print("|---|---|---|---|---|---|")
            for mode, r in rows:
                rate = r["series"] / r["seconds"]
                note = (
                    ""
                    if "same_as_c" not in r
                    else (" (output equal to c)" if r["same_as_c"] else " (OUTPUT DIFFERS from c)")
                )
                print(
                    f"| {labels[mode]}{note} | {r['series']} | {r['seconds']:.1f} | {rate:.3f} | "
                    f"{rate / base:.1f}x | {r['peak_mb']:.0f} |"
                )
            print(flush=True)


if __name__ == "__main__":
    main()
