"""Short ablations for the shipped model's recipe: same small budget each, scored on the validation period.

Each variant is ``configs/kronos-open.yaml`` with a few ``--set`` overrides, trained for the same number of
steps of the same batch of bars (one CPU thread each, ``--jobs`` at a time), then scored by
``kronos_open_eval.py --period val`` (the validation period before each series' held-out test period,
so choosing the recipe never looks at the test period): CRPS of close returns, 80% coverage and
realised-volatility error per frequency group and pooled, against the random walk with drift.

    python benchmarks/kronos_open_ablations.py train --jobs 2          # ~35 min on 2 cores
    python benchmarks/kronos_open_ablations.py score                   # ~2.5 min a variant (one thread)
    python benchmarks/kronos_open_ablations.py table                   # the markdown table for docs/

Variants share the shipped tokenizer unless they change it (``bits10`` trains its own first). Results go
to ``runs/ablations/<variant>`` (outside version control); the table is printed and written beside them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from kronos_open_eval import paired_ratio, per_series_crps  # this folder: on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "kronos-open.yaml"
SHIPPED_TOKENIZER = "src/kronos/pretrained/kronos-open/tokenizer"
STEPS = 300
NO_DROPOUT = "ffn_dropout_p: 0.0, attn_dropout_p: 0.0, resid_dropout_p: 0.0, token_dropout_p: 0.0"


def _shape(d_model: int, n_layers: int, ff_dim: int) -> str:
    return (
        f"model.config={{s1_bits: 8, s2_bits: 8, n_layers: {n_layers}, d_model: {d_model}, n_heads: 4, "
        f"ff_dim: {ff_dim}, {NO_DROPOUT}, learn_te: true}}"
    )


# name -> (what it tests, overrides). The budget (STEPS x 32 windows x 256 bars) is the same for all; the
# 512-bar context halves the batch so that every step sees the same number of bars.
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "v1": ("the v1 recipe: uniform windows, one-cycle schedule", []),
    "freq": ("equal share of windows per frequency group", ["train.sampling=frequency"]),
    "freq-wsd": (
        "frequency + warm-up/stable/decay schedule",
        ["train.sampling=frequency", "train.schedule=wsd"],
    ),
    "freq-lr3e-3": ("frequency + twice the peak learning rate", ["train.sampling=frequency", "train.lr=3.0e-3"]),
    "freq-deep": (
        "frequency + deeper and narrower at the same compute (d 128, 6 layers)",
        ["train.sampling=frequency", _shape(128, 6, 384)],
    ),
    "freq-wide": (
        "frequency + wider and shallower at the same compute (d 224, 2 layers)",
        ["train.sampling=frequency", _shape(224, 2, 512)],
    ),
    "freq-ctx512": (
        "frequency + 512-bar context (windows of 496 + 16 bars, half the batch)",
        [
            "train.sampling=frequency",
            "data.lookback=496",
            "data.corpus_dir=runs/kronos-open/corpus-512",
            "model.max_context=512",
            "train.batch_size=16",
        ],
    ),
    "freq-bits10": (
        "frequency + a 10 + 10-bit tokenizer (trained for this run, 600 steps)",
        [
            "train.sampling=frequency",
            "model.tokenizer=runs/ablations/tokenizer-bits10/best",
            "model.config={s1_bits: 10, s2_bits: 10, n_layers: 4, d_model: 160, n_heads: 4, ff_dim: 384, "
            f"{NO_DROPOUT}, learn_te: true}}",
        ],
    ),
}
TOKENIZER_BITS10 = [
    "output_dir=runs/ablations/tokenizer-bits10",
    "model.config={d_in: 6, d_model: 64, n_heads: 4, ff_dim: 128, n_enc_layers: 3, n_dec_layers: 3, "
    "ffn_dropout_p: 0.0, attn_dropout_p: 0.0, resid_dropout_p: 0.0, "
    "s1_bits: 10, s2_bits: 10, beta: 0.05, gamma0: 1.0, gamma: 1.1, zeta: 0.05, group_size: 4}",
    "train.max_steps=600",
    "train.progress=false",
]


def _kronos(*args: str, log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        cmd = [sys.executable, "-m", "kronos", *args]
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=out, stderr=subprocess.STDOUT)


def train_variant(name: str, out: Path) -> float:
    """Train one variant's predictor (and its tokenizer first, where it has its own); wall seconds."""
    t0 = time.time()
    _, overrides = VARIANTS[name]
    if name == "freq-bits10":
        sets = [a for o in TOKENIZER_BITS10 for a in ("--set", o)]
        _kronos("train", "tokenizer", str(CONFIG), *sets, log=out / "tokenizer-bits10.log")
    base = [
        f"output_dir={out / name}",
        f"model.tokenizer={SHIPPED_TOKENIZER}",
        f"train.max_steps={STEPS}",
        "train.val_samples=512",
        "train.checkpoint_every=100",
        "train.progress=false",
        "train.tensorboard=false",
    ]
    sets = [a for o in [*base, *overrides] for a in ("--set", o)]
    _kronos("train", "predictor", str(CONFIG), *sets, log=out / f"{name}.log")
    return time.time() - t0


def score_variant(name: str, out: Path, args: argparse.Namespace) -> None:
    """The validation-period evaluation of one variant (its predictor bundle as ``kronos``)."""
    forecasters = "kronos,drift,garch" if name == "v1" else "kronos"
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "kronos_open_eval.py"),
        "--period",
        "val",
        "--model",
        str(out / name / "predictor"),
        "--forecasters",
        forecasters,
        "--per-group",
        str(args.per_group),
        "--origins",
        str(args.origins),
        "--samples",
        "50",
        "--jobs",
        "1",
        "--no-anomaly",
        "--out",
        str(out / name / "eval-val"),
    ]
    with open(out / f"{name}.score.log", "w") as log:
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=log, stderr=subprocess.STDOUT)


def table(out: Path) -> str:
    """Per variant: final validation loss, and validation-period CRPS (× drift's) / 80% coverage / RV error by group."""
    from kronos.evaluation.metrics import compute_metrics
    from kronos.evaluation.report import overall_table

    groups = ["daily", "hourly", "intraday", "pooled"]
    rows, drift, garch = [], {}, {}
    for name, (what, _) in VARIANTS.items():
        folder = out / name / "eval-val"
        if not (folder / "pooled_forecasts.parquet").exists():
            continue
        pooled = pd.read_parquet(folder / "pooled_forecasts.parquet")
        pooled["series"] = pooled["group"] + "/" + pooled["series"].astype(str)
        metrics = pd.read_csv(out / name / "metrics.csv")
        row = {"name": name, "what": what, "loss": float(metrics[metrics["split"] == "val"]["loss"].iloc[-1])}
        row["per_series"] = per_series_crps(pooled, "kronos")
        for group in groups:
            part = pooled if group == "pooled" else pooled[pooled["group"] == group]
            t = overall_table(compute_metrics(part)).set_index("forecaster")
            if "drift" in t.index:
                drift[group], garch[group] = float(t.loc["drift", "crps_ret"]), float(t.loc["garch", "rv_mae"])
            row[group] = tuple(float(t.loc["kronos", c]) for c in ("crps_ret", "cov80", "rv_mae"))
        rows.append(row)
    head = "| variant | what | val loss | " + " | ".join(f"{g}: CRPS (× drift) / cov80 / RV" for g in groups)
    lines = [head + " | pooled CRPS × v1's (95% CI) |", "|" + "---|" * (4 + len(groups))]
    reference = next((r["per_series"] for r in rows if r["name"] == "v1"), None)
    for r in rows:
        cells = [f"`{r['name']}`", r["what"], f"{r['loss']:.3f}"]
        for g in groups:
            crps, cov, rv = r[g]
            ratio = f" ({crps / drift[g]:.3f}×)" if g in drift else ""
            cells.append(f"{crps * 1e4:.1f}{ratio} / {cov:.3f} / {rv * 1e4:.1f}")
        if reference is not None and r["name"] != "v1":
            mid, lo, hi = paired_ratio(r["per_series"], reference)
            cells.append(f"{mid:.3f} ({lo:.3f}–{hi:.3f})")
        else:
            cells.append("—")
        lines.append("| " + " | ".join(cells) + " |")
    if drift:
        lines += [
            "",
            "Baselines on the same forecasts: drift's CRPS "
            + ", ".join(f"{g} {v * 1e4:.1f}" for g, v in drift.items())
            + " bp; GARCH(1,1)'s RV error "
            + ", ".join(f"{g} {v * 1e4:.1f}" for g, v in garch.items())
            + " bp.",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("train", "score", "table"))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "ablations")
    parser.add_argument("--per-group", type=int, default=16)
    parser.add_argument("--origins", type=int, default=16)
    args = parser.parse_args()
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; known: {list(VARIANTS)}")
    if args.action == "table":
        text = table(args.out)
        (args.out / "table.md").write_text(text + "\n")
        print(text)
        return
    work = train_variant if args.action == "train" else lambda n, o: score_variant(n, o, args)
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = {name: pool.submit(work, name, args.out) for name in names}
        for name, future in futures.items():
            result = future.result()
            print(f"{args.action} {name}: done" + (f" in {result / 60:.1f} min" if result else ""), flush=True)


if __name__ == "__main__":
    main()
