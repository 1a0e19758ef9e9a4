"""Copy a trained kronos-open pair into the package and write its model card.

Run after the two training commands of ``configs/kronos-open.yaml`` (and, for the evaluation table,
``benchmarks/kronos_open_eval.py --model runs/kronos-open/predictor/predictor``):

    python scripts/package_kronos_open.py --eval runs/kronos-open-eval/tables.md

and, for each later predictor stage (a run whose ``model.init`` is the stage before), ``--stage RUN RECIPE``.
When only the evaluation changed (a new calibration default, say) and the training runs are not on this machine
(``runs/`` is not in the repository), ``--eval-only`` rewrites just the card's evaluation section of the shipped
package from ``--eval`` and ``--notes``:

    python scripts/package_kronos_open.py --eval-only --eval runs/kronos-open-eval/tables.md

A stage trained from the shipped package itself (``model.init: src/kronos/pretrained/kronos-open/model``) is added
with ``--append-stage RUN RECIPE`` (with ``--eval``): its ``best/`` replaces the shipped model, and the card gains the
stage's row, command, recipe and loss curves, its totals updated; the earlier stages' rows are kept as written.

Writes ``src/kronos/pretrained/kronos-open/``: ``model/`` and ``tokenizer/`` (the runs' ``best/`` checkpoints,
config.json + model.safetensors, the published layout), ``predictor.json``, ``loss_curves.png`` and
``MODEL_CARD.md`` (data: file list and MANIFEST hash; bars and tokens seen; parameter counts; wall time;
hardware; loss curves; the evaluation table). Every file is written atomically.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml

from kronos import Kronos, KronosTokenizer
from kronos.core.files import atomic_write, atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
DEST = ROOT / "src" / "kronos" / "pretrained" / "kronos-open"


def _hardware() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (PyTorch {torch.__version__})"
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores (PyTorch {torch.__version__})"


def _recipe(train: dict) -> str:
    """The optimiser, schedule and window sampling of a run's ``train`` section, in words."""
    if train.get("schedule", "onecycle") == "wsd":
        schedule = (
            f"warm-up / stable / decay schedule (warm-up {train.get('pct_start', 0.03):.0%}, linear decay over the "
            f"last {train.get('decay_fraction', 0.2):.0%})"
        )
    else:
        schedule = "one-cycle schedule"
    if train.get("sampling", "uniform") == "frequency":
        weights = train.get("group_weights") or {"daily": 1, "hourly": 1, "intraday": 1}
        sampling = (
            "windows drawn with a fixed share per frequency group ("
            + ", ".join(f"{k} {v}" for k, v in weights.items())
            + "), validation on an equal number of windows per group"
        )
    else:
        sampling = "windows drawn uniformly over all valid window starts (minute-bar series, most bars, weigh most)"
    if train.get("targets", "all") == "forecast":
        low = train.get("min_lookback")
        part = "its first bars" if low is None else f"its first L bars, L drawn per window from [{low}, lookback]"
        sampling += f"; scored only on the bars after each window's normalised part ({part})"
    threads = train.get("cpu_threads")
    return f"{schedule}; {sampling}" + (f"; {threads} CPU thread(s)" if threads else "")


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _png(fig: Any) -> bytes:
    """A matplotlib figure (imported lazily, hence ``Any``) as PNG bytes, laid out at 90 dpi, closed afterwards."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _loss_png(tok_metrics: pd.DataFrame, pred_metrics: pd.DataFrame, stages: Sequence[pd.DataFrame] = ()) -> bytes:
    """Loss curves of the tokenizer and the predictor, each later predictor stage drawn after the one before."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, frame, cols, title in (
        (axes[0], tok_metrics, ("recon",), "tokenizer: reconstruction MSE"),
        (axes[1], pred_metrics, ("loss",), "predictor: next-token cross-entropy (nats)"),
    ):
        for split, style in (("train", "-"), ("val", "o-")):
            rows = frame[frame["split"] == split]
            for col in cols:
                ax.plot(rows["step"], rows[col], style, ms=3, lw=1, label=f"{split} {col}")
        if ax is axes[1]:
            offset = int(frame["step"].max())
            for k, stage in enumerate(stages, start=2):
                ax.axvline(offset, color="grey", lw=0.8, ls=":")
                for split, style in (("train", "-"), ("val", "o-")):
                    rows = stage[(stage["split"] == split) & (stage["step"] > 0)]
                    ax.plot(rows["step"] + offset, rows["loss"], style, ms=3, lw=1, label=f"stage {k} {split} loss")
                offset += int(stage["step"].max())
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("optimiser step")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _png(fig)


def _run_summary(run: Path, select: str) -> dict:
    """A run's configuration, metrics and headline figures; ``select`` is the validation metric that chose best/."""
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    metrics = pd.read_csv(run / "metrics.csv")
    train = metrics[metrics["split"] == "train"]
    val = metrics[metrics["split"] == "val"]
    steps = int(train["step"].max())
    window = cfg["data"]["lookback"] + cfg["data"]["horizon"]
    batch = cfg["train"]["batch_size"] * cfg["train"]["accumulation_steps"]
    return {
        "config": cfg,
        "metrics": metrics,
        "steps": steps,
        "bars": steps * batch * window,
        "window": window,
        "batch": batch,
        "wall_s": float(metrics["elapsed_s"].max()),
        "val_first": val.iloc[0],
        "val_best": val.loc[val[select].idxmin()],
        "val_last": val.iloc[-1],
        "bars_per_s": float(train["bars_per_s"].median()),
    }


EVAL_HEADING = "## Evaluation on the held-out test period"
EVAL_INTRO = """`python benchmarks/kronos_open_eval.py` (which runs `kronos evaluate` per frequency group, then pools). `kronos` is
the raw model, `kronos-cal` the same model with split-conformal calibration on rolling origins of each history."""


def _eval_text(tables: Path | None, notes: Path | None) -> str:
    """The evaluation's tables, then its reading (``notes``)."""
    text = tables.read_text() if tables and tables.is_file() else "(not evaluated yet)"
    if tables and tables.is_file() and notes and notes.is_file():
        text += "\n" + notes.read_text()
    return text


def replace_evaluation(card: str, eval_text: str) -> str:
    """``card`` with the body of its evaluation section (up to ``## Limits``) replaced by ``eval_text``."""
    start, end = card.find(EVAL_HEADING), card.find("\n\n## Limits")
    if start < 0 or end < start:
        raise SystemExit(f"the card has no '{EVAL_HEADING}' section followed by '## Limits'")
    return f"{card[:start]}{EVAL_HEADING}\n\n{EVAL_INTRO}\n\n{eval_text}{card[end:]}"


def _stage_png(metrics: pd.DataFrame, k: int) -> bytes:
    """Train and validation loss of one appended stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4))
    for split, style in (("train", "-"), ("val", "o-")):
        rows = metrics[metrics["split"] == split]
        ax.plot(rows["step"], rows["loss"], style, ms=3, lw=1, label=f"stage {k} {split} loss")
    ax.set_title(f"predictor, stage {k}: next-token cross-entropy (nats)", fontsize=10)
    ax.set_xlabel("optimiser step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def append_stage(dest: Path, run: Path, recipe: str, tables: Path, notes: Path | None) -> None:
    """Ship ``run``'s best predictor (a stage trained from the shipped one) and add the stage to the card in place."""
    card_path = dest / "MODEL_CARD.md"
    card = card_path.read_text()
    st = _run_summary(run, "loss")
    model = Kronos.from_pretrained(run / "best")
    n_model = _params(model)
    rows = re.findall(r"^\| predictor, stage (\d+) .*\(stages 1-\d+ ([\d,]+)\) \| .*$", card, flags=re.M)
    if not rows:
        raise SystemExit(f"{card_path}: no '| predictor, stage K ...' row to continue")
    k = int(rows[-1][0]) + 1
    seen = int(rows[-1][1].replace(",", "")) + st["bars"]
    last_row = [line for line in card.splitlines() if line.startswith(f"| predictor, stage {k - 1} ")][-1]
    on_targets = (
        f" on the {st['config']['data']['horizon']} bars after each window's lookback"
        if st["config"]["train"].get("targets") == "forecast"
        else ""
    )
    row = (
        f"| predictor, stage {k} (from the shipped stage {k - 1}) | {st['steps']:,} | {st['batch']} × {st['window']} | "
        f"{st['bars']:,} (stages 1-{k} {seen:,}) | {2 * st['bars']:,} (stages 1-{k} {2 * seen:,}) | "
        f"{seen / n_model:.1f} bars, {2 * seen / n_model:.1f} tokens (stages 1-{k}) | {st['wall_s'] / 60:.1f} min | "
        f"{st['bars_per_s']:,.0f} bars/s | loss {st['val_first']['loss']:.3f} → {st['val_best']['loss']:.3f} "
        f"(best; ce_s1 {st['val_best']['ce_s1']:.3f}, ce_s2 {st['val_best']['ce_s2']:.3f}){on_targets} |"
    )
    card = card.replace(last_row, f"{last_row}\n{row}")
    commands = re.findall(r"^kronos train predictor \S+$", card, flags=re.M)
    card = card.replace(commands[-1], f"{commands[-1]}\nkronos train predictor {recipe}", 1)
    package = re.findall(r"^python scripts/package_kronos_open.py .*$", card, flags=re.M)[-1]
    card = card.replace(
        package,
        f"{package}\npython scripts/package_kronos_open.py --eval runs/kronos-open-eval/tables.md --append-stage {run} {recipe}",
    )
    total = re.search(r"total wall time (\d+) min", card)
    minutes = int(total.group(1)) + st["wall_s"] / 60 if total else st["wall_s"] / 60
    if total:
        card = card.replace(total.group(0), f"total wall time {minutes:.0f} min")
    sentence = (
        f" Stage {k} (`{recipe}`): the shipped predictor trained further, peak lr {st['config']['train']['lr']}, "
        f"{_recipe(st['config']['train'])}."
    )
    recipes = [line for line in card.splitlines() if line.startswith("Tokenizer: ")][-1]
    card = card.replace(recipes, recipes + sentence)
    picture = f"loss_curves_stage{k}.png"
    card = card.replace(
        "![loss curves](loss_curves.png)", f"![loss curves](loss_curves.png)\n\n![stage {k}]({picture})"
    )
    card = re.sub(
        r"A small model \([\d.]+ M parameters, [\d.]+ hours of training",
        f"A small model ({n_model / 1e6:.1f} M parameters, {minutes / 60:.1f} hours of training",
        card,
    )
    card = replace_evaluation(card, _eval_text(tables, notes))
    for name in ("config.json", "model.safetensors"):
        atomic_write(dest / "model" / name, (run / "best" / name).read_bytes())
    atomic_write(dest / picture, _stage_png(st["metrics"], k))
    atomic_write_text(card_path, card)
    print(f"shipped {run / 'best'} as stage {k} in {dest}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "kronos-open")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--eval", type=Path, default=None, help="tables.md written by benchmarks/kronos_open_eval.py")
    parser.add_argument(
        "--notes",
        type=Path,
        default=ROOT / "docs" / "kronos-open-results.md",
        help="Reading of the evaluation (markdown), placed under the table",
    )
    parser.add_argument("--hardware", default=_hardware(), help="Where the pair was trained (default: this machine).")
    parser.add_argument(
        "--dest", type=Path, default=DEST, help="Package folder to write (default: the shipped model's, in the source)"
    )
    parser.add_argument("--recipe", default="configs/kronos-open.yaml", help="The config file named in the card.")
    parser.add_argument(
        "--stage",
        nargs=2,
        action="append",
        default=[],
        metavar=("RUN", "RECIPE"),
        help="A predictor run that continued the one before it (model.init), e.g. "
        "runs/kronos-open-forecast/predictor configs/kronos-open-forecast.yaml; repeat for each later stage, in order. "
        "The last stage's best/ is shipped and the card counts every stage.",
    )
    parser.add_argument(
        "--append-stage",
        nargs=2,
        default=None,
        metavar=("RUN", "RECIPE"),
        help="A predictor run that continued the shipped model (model.init: the package's model/): ship its best/ "
        "and add it to the card; no earlier runs needed.",
    )
    parser.add_argument(
        "--eval-only",
        action="store_true",
        help="Rewrite only the evaluation section of the card in --dest (from --eval and --notes); no runs needed.",
    )
    args = parser.parse_args()
    dest = args.dest
    if args.eval_only:
        if args.eval is None or not args.eval.is_file():
            parser.error("--eval-only needs --eval TABLES.md")
        card = dest / "MODEL_CARD.md"
        atomic_write_text(card, replace_evaluation(card.read_text(), _eval_text(args.eval, args.notes)))
        print(f"rewrote the evaluation section of {card}")
        return

    if args.append_stage:
        if args.eval is None or not args.eval.is_file():
            parser.error("--append-stage needs --eval TABLES.md (the evaluation of the new stage)")
        append_stage(dest, Path(args.append_stage[0]), args.append_stage[1], args.eval, args.notes)
        return

    tok_run, pred_run = args.runs / "tokenizer", args.runs / "predictor"
    tok, pred = _run_summary(tok_run, "recon"), _run_summary(pred_run, "loss")
    stages = [(_run_summary(Path(run), "loss"), Path(run), recipe) for run, recipe in args.stage]
    shipped = (stages[-1][1] if stages else pred_run) / "best"
    tokenizer = KronosTokenizer.from_pretrained(tok_run / "best")
    model = Kronos.from_pretrained(shipped)
    max_context = int(pred["config"]["model"]["max_context"])

    dest.mkdir(parents=True, exist_ok=True)
    for part, src in (("model", shipped), ("tokenizer", tok_run / "best")):
        for name in ("config.json", "model.safetensors"):
            (dest / part).mkdir(exist_ok=True)
            atomic_write(dest / part / name, (src / name).read_bytes())
    atomic_write_text(
        dest / "predictor.json",
        json.dumps({"max_context": max_context, "clip": float(pred["config"]["data"]["clip"])}, indent=2) + "\n",
    )
    atomic_write(
        dest / "loss_curves.png", _loss_png(tok["metrics"], pred["metrics"], [st["metrics"] for st, _, _ in stages])
    )

    manifest = args.data / "MANIFEST.csv"
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    files = pd.read_csv(manifest)
    corpus_meta = (
        json.loads((Path(pred["config"]["data"]["corpus_dir"]) / "meta.json").read_text())
        if (Path(pred["config"]["data"]["corpus_dir"]) / "meta.json").is_file()
        else {}
    )
    file_lines = "\n".join(
        f"| `{r.path}` | {r.frequency} | {int(r.n_symbols)} | {int(r.rows):,} |" for r in files.itertuples()
    )
    eval_text = _eval_text(args.eval, args.notes)
    n_model, n_tok = _params(model), _params(tokenizer)
    wall_s = tok["wall_s"] + pred["wall_s"] + sum(st["wall_s"] for st, _, _ in stages)
    stage_rows, stage_cmds, stage_recipes = "", "", ""
    seen = pred["bars"]
    for k, (st, _, recipe) in enumerate(stages, start=2):
        seen += st["bars"]
        on_targets = (
            f" on the {st['config']['data']['horizon']} bars after each window's lookback"
            if st["config"]["train"].get("targets") == "forecast"
            else ""
        )
        stage_rows += (
            f"\n| predictor, stage {k} (from stage {k - 1}'s best) | {st['steps']:,} | {st['batch']} × {st['window']} | "
            f"{st['bars']:,} (stages 1-{k} {seen:,}) | {2 * st['bars']:,} (stages 1-{k} {2 * seen:,}) | "
            f"{seen / n_model:.1f} bars, {2 * seen / n_model:.1f} tokens (stages 1-{k}) | {st['wall_s'] / 60:.1f} min | "
            f"{st['bars_per_s']:,.0f} bars/s | loss {st['val_first']['loss']:.3f} → {st['val_best']['loss']:.3f} "
            f"(best; ce_s1 {st['val_best']['ce_s1']:.3f}, ce_s2 {st['val_best']['ce_s2']:.3f}){on_targets} |"
        )
        stage_cmds += f"\nkronos train predictor {recipe}"
        stage_recipes += (
            f" Stage {k} (`{recipe}`): the predictor trained further from stage {k - 1}'s weights, peak lr "
            f"{st['config']['train']['lr']}, {_recipe(st['config']['train'])}."
        )
    package_args = "".join(f" --stage {run} {recipe}" for _, run, recipe in stages)
    card = f"""# kronos-open

A Kronos tokenizer + predictor pair trained from scratch on real market bars, shipped inside the
`kronos-kline` package so that every command works offline. Load it with
`KronosPredictor.from_pretrained("kronos-open")`; it is the default model of `kronos demo`, `forecast`,
`forecast-dist`, `serve` and of `-f kronos` / `-f kronos-cal` in `kronos evaluate` and `kronos backtest`.
The files are in the published layout (`config.json` + `model.safetensors`, the original's key names),
so the original Kronos code loads them too.

## Model

| part | parameters | configuration |
|---|---|---|
| predictor (`model/`) | {n_model:,} | {json.dumps(model.config.to_dict(), sort_keys=True)} |
| tokenizer (`tokenizer/`) | {n_tok:,} | {json.dumps(tokenizer.config.to_dict(), sort_keys=True)} |

Context: {max_context} bars (`predictor.json`); windows of {pred["window"]} bars in training
({pred["config"]["data"]["lookback"]} lookback + {pred["config"]["data"]["horizon"]} horizon), normalised with the
lookback's mean and standard deviation and clipped to ±{pred["config"]["data"]["clip"]}.

## Training

Recipe: `{args.recipe}`, reproduced by

```bash
kronos train tokenizer {args.recipe}
kronos train predictor {args.recipe}{stage_cmds}
python scripts/package_kronos_open.py --eval runs/kronos-open-eval/tables.md{package_args}
```

| stage | steps | batch × window | bars seen | tokens seen | per parameter | wall time | throughput | validation |
|---|---|---|---|---|---|---|---|---|
| tokenizer | {tok["steps"]:,} | {tok["batch"]} × {tok["window"]} | {tok["bars"]:,} | — | {tok["bars"] / n_tok:.0f} bars | {tok["wall_s"] / 60:.1f} min | {tok["bars_per_s"]:,.0f} bars/s | recon {tok["val_first"]["recon"]:.4f} → {tok["val_best"]["recon"]:.4f} (best) |
| predictor | {pred["steps"]:,} | {pred["batch"]} × {pred["window"]} | {pred["bars"]:,} | {2 * pred["bars"]:,} (coarse + fine) | {pred["bars"] / n_model:.1f} bars, {2 * pred["bars"] / n_model:.1f} tokens | {pred["wall_s"] / 60:.1f} min | {pred["bars_per_s"]:,.0f} bars/s | loss {pred["val_first"]["loss"]:.3f} → {pred["val_best"]["loss"]:.3f} (best; ce_s1 {pred["val_best"]["ce_s1"]:.3f}, ce_s2 {pred["val_best"]["ce_s2"]:.3f}) |{stage_rows}

Hardware: {args.hardware}; total wall time {wall_s / 60:.0f} min. Optimiser: AdamW (betas 0.9/0.95,
weight decay 0.1), peak lr {tok["config"]["train"]["lr"]} (tokenizer) and {pred["config"]["train"]["lr"]} (predictor).
Tokenizer: {_recipe(tok["config"]["train"])}. Predictor: {_recipe(pred["config"]["train"])}.{stage_recipes}

![loss curves](loss_curves.png)

## Data

Every file of the shared market-data folder ({len(files)} files, {int(files["n_symbols"].sum()):,} instruments,
{int(files["rows"].sum()):,} bars; MANIFEST.csv SHA-256 `{digest}`): daily equities (S&P 500 panel, long-history
US large caps, A-share panel, NSE), ETFs, indices, futures, FX (hourly, 4-hour, daily, minute), crypto (Binance and
Gemini, minute to monthly) and intraday A-share/India 5-minute bars. Each series is split by time: the last
{pred["config"]["data"]["test_fraction"]:.0%} of its bars are a held-out **test period** (never trained on; the
evaluation below uses only it), the {pred["config"]["data"]["val_fraction"]:.0%} before it validation, the rest
training. Series are cut at gaps longer than max(10 × the median bar spacing, 14 days); windows never cross a cut.
{("Corpus: " + json.dumps({k: corpus_meta[k] for k in corpus_meta if k in ("n_instruments", "n_bars", "n_segments")})) if corpus_meta else ""}

<details><summary>File list (from MANIFEST.csv)</summary>

| file | frequency | instruments | bars |
|---|---|---|---|
{file_lines}

</details>

{EVAL_HEADING}

{EVAL_INTRO}

{eval_text}

## Limits

A small model ({n_model / 1e6:.1f} M parameters, {wall_s / 3600:.1f} hours of training on {args.hardware.split(" (")[0]}): it knows the
shapes of bars and volatility regimes, not news; returns are close to unpredictable at these horizons and the tables above say how it compares with simple
baselines. The training data's licences are listed per file in the shared MANIFEST; the weights are released
under the project's MIT licence.
"""
    atomic_write_text(dest / "MODEL_CARD.md", card)
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    print(f"wrote {dest} ({size / 2**20:.1f} MB)")


if __name__ == "__main__":
    main()
