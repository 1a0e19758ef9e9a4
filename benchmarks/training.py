"""Training throughput and peak memory: a predictor step with Kronos-small, a tokenizer step with Tokenizer-base.

Both use the published configurations with random weights and run the trainer's own step code
(:mod:`kronos.training.objectives`): for the predictor, the frozen tokenizer's encoding of the window, the
forward with the sampled coarse token (the original fine-tuning), the next-token loss, backward,
gradient clipping and an AdamW step; for the tokenizer, reconstruction + BSQ loss, backward, clipping
and AdamW. Windows are real bars from ``../shared/data`` (lookback-normalised, as in training).
Each case runs in its own process so its peak memory is its own (max RSS on CPU, max allocated on CUDA).

    python benchmarks/training.py                       # both cases on the best device
    python benchmarks/training.py --device cpu --batch-size 8 --window 512 --steps 5

Units: a *bar* is one time step of one window; the predictor sees two tokens per bar (coarse s1 and
fine s2), so its tokens/s is twice its bars/s. The tokenizer turns each bar into one token pair.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from kronos.model.registry import PUBLISHED_CONFIGS

SMALL = PUBLISHED_CONFIGS["Kronos-small"].to_dict()
TOKENIZER_BASE = PUBLISHED_CONFIGS["Kronos-Tokenizer-base"].to_dict()
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SERIES = ["crypto/BINANCE-BTCUSDT_1h.parquet", "fx/EURUSD_1h.parquet", "crypto/BINANCE-ETHUSDT_1h.parquet"]


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _windows(batch: int, window: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``batch`` random lookback-normalised windows of real bars and their calendar stamps."""
    import pandas as pd

    from kronos.bars.preprocessing import calendar_features, prepare_features
    from kronos.training.windows import normalize_window

    rng = np.random.default_rng(seed)
    xs, stamps = [], []
    frames = [pd.read_parquet(DATA / s) for s in SERIES if (DATA / s).is_file()]
    if not frames:
        raise SystemExit(f"real bars are needed from {DATA} (the shared data folder beside the repository)")
    for i in range(batch):
        df = frames[i % len(frames)]
        start = int(rng.integers(0, len(df) - window))
        part = df.iloc[start : start + window]
        xs.append(normalize_window(prepare_features(part), lookback=window - 10))
        stamps.append(calendar_features(part["timestamps"]).astype(np.int64))
    return np.stack(xs), np.stack(stamps)


def run_case(
    case: str,
    device_name: str,
    batch: int,
    window: int,
    steps: int,
    warmup: int,
    threads: int | None,
    queue: mp.Queue,
) -> None:
    import torch

    from kronos.model.tokenizer import KronosTokenizer
    from kronos.training.objectives import PredictorTask, TokenizerTask
    from kronos.training.schema import DataConfig, ModelConfig, RunConfig, TrainConfig
    from kronos.training.trainer import _mixed_precision

    if threads:
        torch.set_num_threads(threads)
    device = torch.device(device_name)
    torch.manual_seed(0)
    x_np, stamp_np = _windows(batch, window)
    tmp = tempfile.mkdtemp(prefix="kronos-bench-")
    if case == "predictor":
        KronosTokenizer.from_config(TOKENIZER_BASE).save_pretrained(Path(tmp) / "tok")
        model_cfg = ModelConfig(config=SMALL, tokenizer=str(Path(tmp) / "tok"))
    else:
        model_cfg = ModelConfig(config=TOKENIZER_BASE)
    cfg = RunConfig(
        output_dir=tmp,
        data=DataConfig(paths=["-"], lookback=window - 10, horizon=10),
        model=model_cfg,
        train=TrainConfig(batch_size=batch, max_steps=steps),
    )
    task = PredictorTask(cfg, device) if case == "predictor" else TokenizerTask(cfg, device)
    model = task.build_model().to(device)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    opt = torch.optim.AdamW(model.parameters(), lr=4e-5, betas=(0.9, 0.95), weight_decay=0.1)
    dtype = _mixed_precision("auto", device)
    batch_t = {"x": torch.from_numpy(x_np).to(device), "stamp": torch.from_numpy(stamp_np).to(device)}

    def step() -> float:
        with torch.autocast(device_type=device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss, _ = task.train_loss(model, batch_t)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    if device.type == "cuda":
        torch.cuda.synchronize()
    rss_before = _rss_mb()
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0
    bars = batch * (window - 1 if case == "predictor" else window) * steps
    result = {
        "case": case,
        "params": n_params,
        "device": str(device),
        "precision": str(dtype or "fp32").replace("torch.", ""),
        "threads": torch.get_num_threads(),
        "batch": batch,
        "window": window,
        "step_s": elapsed / steps,
        "bars_per_s": bars / elapsed,
        "tokens_per_s": bars / elapsed * (2 if case == "predictor" else 1),
        "loss": loss,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mb": rss_before,
    }
    if device.type == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    queue.put(result)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="predictor,tokenizer", help="comma-separated: predictor, tokenizer")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=None, help="windows per step (default 8 on CPU, 32 on CUDA)")
    parser.add_argument("--window", type=int, default=512, help="bars per window (Kronos-small's context is 512)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 5 on CPU, 20 on CUDA)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    batch = args.batch_size or (32 if cuda else 8)
    steps = args.steps or (20 if cuda else 5)
    load = ", load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs{load}, torch "
        f"{torch.__version__}, device {args.device}"
    )
    ctx = mp.get_context("spawn")
    for case in [c.strip() for c in args.cases.split(",") if c.strip()]:
        if case not in ("predictor", "tokenizer"):
            raise SystemExit(f"unknown case {case!r}")
        queue = ctx.Queue()
        proc = ctx.Process(
            target=run_case, args=(case, args.device, batch, args.window, steps, args.warmup, args.threads, queue)
        )
        proc.start()
        proc.join()
        if proc.exitcode != 0:
            raise SystemExit(f"case {case} failed (exit {proc.exitcode})")
        r = queue.get()
        name = "Kronos-small predictor" if case == "predictor" else "Tokenizer-base tokenizer"
        mem = (
            f"peak CUDA memory {r['peak_cuda_mb']:.0f} MiB"
            if "peak_cuda_mb" in r
            else (
                f"peak RSS {r['peak_rss_mb']:.0f} MiB (+{r['peak_rss_mb'] - r['rss_before_mb']:.0f} MiB over "
                "the loaded model and data)"
            )
        )
        print(
            f"{name} ({r['params'] / 1e6:.1f}M trainable params), {r['device']} {r['precision']}, "
            f"{r['threads']} threads, "
            f"batch {r['batch']} x {r['window']} bars: {r['step_s'] * 1000:.0f} ms/step, "
            f"{r['bars_per_s']:,.0f} bars/s, "
            f"{r['tokens_per_s']:,.0f} tokens/s; {mem}; loss {r['loss']:.3f}"
        )


if __name__ == "__main__":
    main()
