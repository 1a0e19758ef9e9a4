"""Evaluate the shipped model on the held-out test period of ``../shared/data``, by frequency group and pooled.

The model card's table comes from here. Each series' last 10% of bars (``test_fraction`` of
``configs/kronos-open.yaml``) were never trained on; every forecast target scored here lies inside that
period (checked, and the count printed). Series are chosen deterministically from ``MANIFEST.csv``: an
even spread of the single-instrument files of each frequency group, plus a few symbols of each daily panel.
Each group is scored by the ``kronos evaluate`` command itself (one run per group, in its own folder),
then all groups' forecasts are pooled and scored again. Share splits left unadjusted in the data (five SPDR ETFs'
2-for-1 of 2025-11-17, XLK among the series) are undone for every forecaster first, so the baselines are not scored
on a history with a 50% overnight "fall" in it (``--keep-splits``: the data as it is).

    python benchmarks/kronos_open_eval.py --out runs/kronos-open-eval            # ~15 min on 2 cores
    python benchmarks/kronos_open_eval.py --per-group 4 --origins 4 --out /tmp/e  # a quick look

Prints markdown tables (also written to ``<out>/tables.md``): per group and pooled, CRPS of close
returns, MAE of returns, directional accuracy, 80% coverage, realised-volatility MAE and the PIT's KS
distance from uniform, for ``kronos`` (raw), ``kronos-cal`` (calibrated) and the baselines.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
GROUPS = {"daily": ("daily",), "hourly": ("1h", "4h"), "intraday": ("1min", "5min")}
PANEL_SYMBOLS = 4  # symbols taken from each daily panel
COLUMNS = ["forecaster", "n", "crps_ret", "crps_fair_ret", "mae_ret", "dir_acc", "cov80", "rv_mae", "pit_ks", "brier"]


def choose_series(manifest: pd.DataFrame, freqs: tuple[str, ...], per_group: int, min_rows: int) -> list[str]:
    """An even spread (by path order, so markets mix) of the group's single-instrument files."""
    rows = manifest[manifest["frequency"].isin(freqs) & (manifest["n_symbols"] == 1) & (manifest["rows"] >= min_rows)]
    paths = sorted(rows["path"])
    if len(paths) <= per_group:
        return paths
    picks = np.linspace(0, len(paths) - 1, per_group).round().astype(int)
    return [paths[i] for i in sorted(set(picks))]


def stage_group(
    data: Path,
    folder: Path,
    files: list[str],
    panels: list[str],
    n_test: dict[str, int],
    test_fraction: float,
    val_fraction: float | None = None,
    undo: bool = False,
) -> None:
    """Links to the chosen files (panels: a parquet of a few symbols) in ``folder``, outside the repository.

    With ``val_fraction`` (the validation period instead of the test period) each series is written without
    its last ``test_fraction`` of bars, so its last bars are the training split's validation period, and
    ``n_test`` counts those validation bars. With ``undo`` every series is written with the share splits left in it
    undone (:mod:`kronos.bars.stocksplits`), so every forecaster, baselines too, reads split-adjusted bars.
    """
    from kronos.bars.stocksplits import undo_frame_splits

    folder.mkdir(parents=True, exist_ok=True)

    def cut(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
        n = len(frame)
        if undo:
            frame, found = undo_frame_splits(frame, frame["timestamps"])
            for split in found:
                print(f"  split undone for every forecaster: {split['ratio']} at {split['time']}", flush=True)
        if val_fraction is None:
            return frame, int(round(n * test_fraction))
        return frame.iloc[: n - int(round(n * test_fraction))], int(round(n * val_fraction))

    for rel in files:
        target = folder / Path(rel).name
        if val_fraction is None and not undo:
            if not target.exists():
                target.symlink_to(data / rel)
            n = int(pd.read_parquet(data / rel, columns=["close"]).shape[0])
            n_test[Path(rel).stem] = int(round(n * test_fraction))
        else:
            frame, n_test[Path(rel).stem] = cut(pd.read_parquet(data / rel))
            frame.to_parquet(target, index=False)
    for rel in panels:
        panel = pd.read_parquet(data / rel)
        symbols = sorted(panel["symbol"].unique())
        keep = [symbols[i] for i in np.linspace(0, len(symbols) - 1, PANEL_SYMBOLS).round().astype(int)]
        parts = []
        for sym, frame in panel[panel["symbol"].isin(keep)].groupby("symbol"):
            frame, n_test[str(sym)] = cut(frame)
            parts.append(frame)
        pd.concat(parts).to_parquet(folder / f"{Path(rel).stem}_subset.parquet", index=False)


def check_test_period(forecasts: pd.DataFrame, data_dir: Path, n_test: dict[str, int]) -> tuple[int, int]:
    """(rows whose target lies in the held-out test period, rows in all) — they should be equal."""
    from kronos.evaluation.data import read_series

    series = read_series(data_dir)
    inside = 0
    for name, frame in series.items():
        first_test = frame["timestamps"].iloc[len(frame) - n_test[name]]
        rows = forecasts[forecasts["series"] == name]
        inside += int((pd.to_datetime(rows["target_time"]) >= first_test).sum())
    return inside, len(forecasts)


def inject(frame: pd.DataFrame, positions: np.ndarray, kind: str) -> pd.DataFrame:
    """A copy of ``frame`` with a bad bar of ``kind`` at each of ``positions``.

    * ``spike``: the close (and high) jump by 10 standard deviations of the one-bar return, then the
      series carries on as before (a fat-finger print);
    * ``swap``: high and low exchanged (an impossible bar, the typical column mix-up);
    * ``stale``: open = high = low = close = the previous close and the previous volume (a feed that froze).
    """
    out = frame.copy()
    sigma = float(np.log(frame["close"]).diff().std())
    for t in positions:
        prev = out.iloc[t - 1]
        if kind == "spike":
            out.loc[out.index[t], "close"] = out["close"].iloc[t] * float(np.exp(10 * sigma))
            out.loc[out.index[t], "high"] = max(out["high"].iloc[t], out["close"].iloc[t])
        elif kind == "swap":
            hi, lo = out["high"].iloc[t], out["low"].iloc[t]
            out.loc[out.index[t], ["high", "low"]] = [lo, hi]
        elif kind == "stale":
            out.loc[out.index[t], ["open", "high", "low", "close"]] = [prev["close"]] * 4
            for col in ("volume", "amount"):
                if col in out:
                    out.loc[out.index[t], col] = prev[col]
    return out


def anomaly_study(
    model: str | None,
    groups: dict[str, Path],
    n_test: dict[str, int],
    *,
    scored: int = 64,
    every: int = 8,
    seed: int = 0,
) -> pd.DataFrame:
    """ROC AUC of causal anomaly scores: injected bad bars against the same positions left clean.

    For each series a window ending inside its test period is scored twice per kind: clean, and with a
    bad bar every ``every`` bars among the last ``scored`` (positions jittered per series). Positives are
    the injected bars' scores, negatives the clean copy's scores at every scored position.
    """
    from scipy.stats import mannwhitneyu

    from kronos import KronosPredictor
    from kronos.evaluation.data import read_series
    from kronos.model.registry import DEFAULT_MODEL

    predictor = KronosPredictor.from_pretrained(model or DEFAULT_MODEL, device="cpu")
    rng = np.random.default_rng(seed)
    pos_scores: dict[str, list[float]] = {"spike": [], "swap": [], "stale": []}
    neg_scores: list[float] = []
    rows = []
    for group, folder in groups.items():
        for name, frame in read_series(folder).items():
            n = len(frame)
            window = predictor.max_context + scored
            end = n - int(rng.integers(0, max(1, n_test[name] - window // 4)))  # the window ends inside the test period
            part = frame.iloc[max(0, end - window) : end].reset_index(drop=True)
            if len(part) < scored + 16:
                continue
            first = len(part) - scored
            positions = first + np.arange(int(rng.integers(0, every)), scored, every)
            cols = [c for c in ("open", "high", "low", "close", "volume", "amount") if c in part]
            clean = predictor.anomaly_scores(part[cols], part["timestamps"], min_context=first)["score"].to_numpy()
            neg_scores.extend(clean[first:])
            for kind in pos_scores:
                bad = inject(part, positions, kind)
                score = predictor.anomaly_scores(bad[cols], bad["timestamps"], min_context=first)["score"].to_numpy()
                pos_scores[kind].extend(score[positions])
            rows.append({"group": group, "series": name})
    neg = np.asarray(neg_scores)
    result = []
    for kind, values in [*pos_scores.items(), ("all", sum(pos_scores.values(), []))]:
        pos = np.asarray(values)
        u = mannwhitneyu(pos, neg, alternative="two-sided").statistic
        result.append(
            {"kind": kind, "injected": len(pos), "clean": len(neg), "roc_auc": float(u) / (len(pos) * len(neg))}
        )
    print(f"anomaly study on {len(rows)} series")
    return pd.DataFrame(result)


def reversion(pooled: pd.DataFrame, staging: Path, window: int = 244) -> str:
    """How much each forecaster's median last-step return leans against where the last close sits in its window.

    Per group: the slope of the median forecast log return (and of what followed) on the z-score of the last close
    among the last ``window`` closes (the auto lookback), in units of the realised returns' standard deviation.
    A model trained where its normaliser saw the bars ahead learns to pull prices back toward the window's mean: a
    slope below the realised one.
    """
    frames: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # series -> (bar times, closes)
    for path in staging.glob("*/*.parquet"):
        frame = pd.read_parquet(path)
        parts = frame.groupby("symbol") if "symbol" in frame else [(path.stem, frame)]
        for name, part in parts:
            times = pd.to_datetime(part["timestamps"]).to_numpy()
            frames[f"{path.parent.name}/{name}"] = (times, part["close"].to_numpy(float))
    last = pooled[pooled["step"] == pooled["step"].max()]
    rows = []
    for (name, series, origin), r in last.groupby(["forecaster", "series", "origin_time"]):
        if series not in frames:
            continue
        times, close = frames[series]
        pos = int(np.searchsorted(times, pd.Timestamp(origin).to_datetime64(), side="right")) - 1
        if pos + 1 < window:
            continue
        c = close[pos + 1 - window : pos + 1]
        r = r.iloc[0]
        rows.append(
            (name, series.split("/")[0], (c[-1] - c.mean()) / c.std(), np.log(r.y_median / r.last_close),
             np.log(r.y_true / r.last_close))
        )  # fmt: skip
    t = pd.DataFrame(rows, columns=["forecaster", "group", "z", "median", "true"])
    out = ["| forecaster | " + " | ".join(sorted(t["group"].unique())) + " |", "|---|" + "---|" * t["group"].nunique()]
    realised = {}
    for group, part in t[t["forecaster"] == t["forecaster"].iloc[0]].groupby("group"):
        realised[group] = np.polyfit(part["z"], part["true"] / part["true"].std(), 1)[0]
    out.append("| what followed | " + " | ".join(f"{realised[g]:+.3f}" for g in sorted(realised)) + " |")
    for name, rows_ in t.groupby("forecaster"):
        cells = []
        for _group, part in rows_.groupby("group"):
            cells.append(f"{np.polyfit(part['z'], part['median'] / part['true'].std(), 1)[0]:+.3f}")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def wilson(hits: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (95% by default)."""
    if n == 0:
        return float("nan"), float("nan")
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def direction(rows: pd.DataFrame) -> tuple[float, int, float, float]:
    """Directional accuracy at the last step of each forecast (origins are ``horizon`` bars apart, so these
    outcomes do not overlap): ``(accuracy, n, low, high)`` with the 95% Wilson interval; no-change outcomes are
    left out and a predicted no-change counts as half right."""
    last = rows[rows["step"] == rows["step"].max()]
    moved = last[last["y_true"] != last["last_close"]]
    up_true = moved["y_true"] > moved["last_close"]
    pred = np.sign(moved["y_pred"] - moved["last_close"])
    hits = float(((pred > 0) == up_true).where(pred != 0, 0.5).astype(float).sum())
    n = len(moved)
    lo, hi = wilson(hits, n)
    return hits / n if n else float("nan"), n, lo, hi


def targets(pooled: pd.DataFrame) -> str:
    """Issue 18's targets per frequency group and pooled: CRPS against drift, RV error against GARCH(1,1),
    80% coverage, and directional accuracy with its 95% interval."""
    from kronos.evaluation.metrics import compute_metrics
    from kronos.evaluation.report import overall_table

    lines = [
        "| group | CRPS kronos-cal / drift (≤ 0.97) | CRPS kronos / drift (≤ 1) | best RV / GARCH (≤ 0.95) | "
        "cov80 kronos-cal (0.75–0.85) / kronos (≥ 0.75) | direction kronos-cal [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    parts = [*((g, pooled[pooled["group"] == g]) for g in pooled["group"].unique()), ("pooled", pooled)]
    for group, part in parts:
        t = overall_table(compute_metrics(part)).set_index("forecaster")
        if not {"kronos", "kronos-cal", "drift", "garch"} <= set(t.index):
            continue
        cal = float(t.loc["kronos-cal", "crps_ret"] / t.loc["drift", "crps_ret"])
        raw = float(t.loc["kronos", "crps_ret"] / t.loc["drift", "crps_ret"])
        rv = float(min(t.loc["kronos", "rv_mae"], t.loc["kronos-cal", "rv_mae"]) / t.loc["garch", "rv_mae"])
        cov_cal, cov_raw = float(t.loc["kronos-cal", "cov80"]), float(t.loc["kronos", "cov80"])
        acc, n, lo, hi = direction(part[part["forecaster"] == "kronos-cal"])

        def mark(ok: bool) -> str:
            return "met" if ok else "**missed**"

        lines.append(
            f"| {group} | {cal:.3f} {mark(cal <= 0.97)} | {raw:.3f} {mark(raw <= 1.0)} | {rv:.3f} {mark(rv <= 0.95)} | "
            f"{cov_cal:.3f} / {cov_raw:.3f} {mark(0.75 <= cov_cal <= 0.85 and cov_raw >= 0.75)} | "
            f"{acc:.3f} of {n} [{lo:.3f}, {hi:.3f}] |"
        )
    return "\n".join(lines)


def per_series_crps(pooled: pd.DataFrame, forecaster: str, column: str = "crps") -> pd.Series:
    """Each series' summed CRPS (``column``: ``crps`` or ``crps_fair``) of one forecaster, in units of the last close
    (what :func:`paired_ratio` compares)."""
    rows = pooled[pooled["forecaster"] == forecaster]
    return (rows[column] / rows["last_close"]).groupby(rows["series"]).sum()


def paired_ratio(a: pd.Series, b: pd.Series, draws: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Pooled CRPS ratio ``sum(a) / sum(b)`` over the series both scored, with a 95% bootstrap interval that
    resamples whole series (the two variants forecast the same origins, so the comparison is paired)."""
    common = a.index.intersection(b.index)
    x, y = a[common].to_numpy(), b[common].to_numpy()
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(common), size=(draws, len(common)))
    ratios = x[picks].sum(axis=1) / y[picks].sum(axis=1)
    return float(x.sum() / y.sum()), float(np.quantile(ratios, 0.025)), float(np.quantile(ratios, 0.975))


def _cov80_by_step(rows: pd.DataFrame) -> pd.Series:
    """Share of realised closes inside the 10-90% quantiles, per horizon step."""
    inside = (rows["y_true"] >= rows["q10"]) & (rows["y_true"] <= rows["q90"])
    return inside.groupby(rows["step"]).mean()


def calibration_checks(pooled: pd.DataFrame, draws: int = 2000, seed: int = 0) -> str:
    """Issue 17's targets per frequency group: kronos-cal's CRPS against the raw model's (a paired bootstrap over
    series: both forecast the same origins), as drawn and fair (the calibrated forecast is wider, and the CRPS of
    paths as drawn charges a spread-proportional penalty for their finite number), its realised-volatility error
    against the raw model's, and the 80% coverage of both at every horizon step."""
    steps = sorted(pooled["step"].unique())
    fair = "crps_fair" in pooled.columns
    lines = [
        "| group | CRPS kronos-cal / kronos (≤ 1) [95% CI] | "
        + ("fair CRPS kronos-cal / kronos [95% CI] | " if fair else "")
        + "RV error kronos-cal / kronos (≤ 1.1) | cov80 by step, "
        + " / ".join(f"{h}" for h in steps)
        + " (kronos → kronos-cal) |",
        "|---|---|---|---|" + ("---|" if fair else ""),
    ]
    parts = [*((g, pooled[pooled["group"] == g]) for g in pooled["group"].unique()), ("pooled", pooled)]
    for group, part in parts:
        raw, cal = (part[part["forecaster"] == name] for name in ("kronos", "kronos-cal"))
        if raw.empty or cal.empty:
            continue
        ratio, lo, hi = paired_ratio(per_series_crps(cal, "kronos-cal"), per_series_crps(raw, "kronos"), draws, seed)
        fair_cell = ""
        if fair:
            f_ratio, f_lo, f_hi = paired_ratio(
                per_series_crps(cal, "kronos-cal", "crps_fair"),
                per_series_crps(raw, "kronos", "crps_fair"),
                draws,
                seed,
            )
            fair_cell = f"{f_ratio:.3f} [{f_lo:.3f}, {f_hi:.3f}] | "
        last_raw, last_cal = (rows[rows["step"] == steps[-1]] for rows in (raw, cal))
        rv = float(
            (last_cal["rv_pred"] - last_cal["rv_true"]).abs().mean()
            / (last_raw["rv_pred"] - last_raw["rv_true"]).abs().mean()
        )
        by_step = " / ".join(f"{r:.2f}→{c:.2f}" for r, c in zip(_cov80_by_step(raw), _cov80_by_step(cal)))
        lines.append(f"| {group} | {ratio:.3f} [{lo:.3f}, {hi:.3f}] | {fair_cell}{rv:.3f} | {by_step} |")
    return "\n".join(lines)


def table_md(frame: pd.DataFrame) -> str:
    cols = [c for c in COLUMNS if c in frame.columns]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame[cols].itertuples(index=False):
        cells = []
        for c, v in zip(cols, row):
            if c in ("forecaster",):
                cells.append(str(v))
            elif c == "n":
                cells.append(f"{int(v):,}")
            elif c in ("crps_ret", "crps_fair_ret", "mae_ret", "rv_mae"):
                cells.append(f"{v * 1e4:.1f}")
            else:
                cells.append(f"{v:.3f}")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "kronos-open-eval")
    parser.add_argument("--forecasters", default="kronos,kronos-cal,persistence,drift,garch,ets")
    parser.add_argument(
        "--model",
        default=None,
        help="Evaluate this checkpoint directory as 'kronos' and 'kronos-cal' (default: the shipped model).",
    )
    parser.add_argument("--per-group", type=int, default=16)
    parser.add_argument(
        "--lookback",
        type=int,
        default=512,
        help="History per origin (kronos itself uses its context; kronos-cal calibrates on the rest).",
    )
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--origins", type=int, default=12)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="Sampling temperature of kronos and kronos-cal (default: 1, what a user gets).",
    )
    parser.add_argument(
        "--calibration-origins",
        type=int,
        default=None,
        help="Origins kronos-cal calibrates on inside each history (default: the library's 20).",
    )
    parser.add_argument("--test-fraction", type=float, default=0.10)
    parser.add_argument(
        "--period",
        choices=("test", "val"),
        default="test",
        help="Score the held-out test period (the model card) or the validation period before it (for choosing a "
        "recipe without looking at the test period).",
    )
    parser.add_argument("--val-fraction", type=float, default=0.05)
    parser.add_argument("--jobs", type=int, default=0)
    parser.add_argument("--groups", default=",".join(GROUPS))
    parser.add_argument("--no-anomaly", action="store_true", help="Skip the injected-anomaly ROC AUC study.")
    parser.add_argument(
        "--keep-splits",
        action="store_true",
        help="Give every forecaster the data as it is. By default the share splits left in it (XLK and four other "
        "SPDR ETFs on 2025-11-17) are undone for every forecaster, baselines too, before evaluating; kronos would "
        "undo them in the bars it reads anyway (its default), the baselines would not.",
    )
    args = parser.parse_args()

    manifest = pd.read_csv(args.data / "MANIFEST.csv")
    # the test period must hold every scored target: origins x stride + horizon bars, plus the lookback
    period_fraction = args.test_fraction if args.period == "test" else args.val_fraction
    need = int(np.ceil((args.origins * args.horizon + args.horizon + 1) / period_fraction))
    min_rows = max(need, args.lookback + args.origins * args.horizon + args.horizon + 1)
    forecasters = args.forecasters
    if args.model:
        forecasters = ",".join(
            f"{f}={args.model}" if f in ("kronos", "kronos-cal") else f for f in forecasters.split(",")
        )
    staging = args.out / "data"
    all_forecasts, sections = [], []
    all_n_test: dict[str, int] = {}
    started = time.time()
    for group in args.groups.split(","):
        freqs = GROUPS[group]
        files = choose_series(manifest, freqs, args.per_group, min_rows)
        panels = sorted(manifest[(manifest["n_symbols"] > 1) & manifest["frequency"].isin(freqs)]["path"])
        n_test: dict[str, int] = {}
        stage_group(
            args.data,
            staging / group,
            files,
            panels,
            n_test,
            args.test_fraction,
            args.val_fraction if args.period == "val" else None,
            not args.keep_splits,
        )
        cmd = [
            sys.executable,
            "-m",
            "kronos",
            "evaluate",
            "--data",
            str(staging / group),
            "-f",
            forecasters,
            "--out",
            str(args.out / group),
            "--lookback",
            str(args.lookback),
            "--horizon",
            str(args.horizon),
            "--origins",
            str(args.origins),
            "--samples",
            str(args.samples),
            "--jobs",
            str(args.jobs),
            "--no-progress",
        ]
        if args.temperature is not None:
            cmd += ["--temperature", str(args.temperature)]
        if args.calibration_origins is not None:
            cmd += ["--calibration-origins", str(args.calibration_origins)]
        t0 = time.time()
        print(f"[{group}] {len(n_test)} series: {' '.join(cmd[2:])}", flush=True)
        subprocess.run(cmd, check=True)
        forecasts = pd.read_parquet(args.out / group / "forecasts.parquet")
        inside, total = check_test_period(forecasts, staging / group, n_test)
        print(
            f"[{group}] {time.time() - t0:.0f} s; {inside}/{total} forecast rows target the {args.period} period",
            flush=True,
        )
        all_forecasts.append(forecasts.assign(group=group))
        all_n_test.update(n_test)
        sections.append((group, len(n_test), pd.read_csv(args.out / group / "metrics.csv")))

    from kronos.evaluation.metrics import compute_metrics, pit_histogram
    from kronos.evaluation.report import overall_table

    pooled = pd.concat(all_forecasts, ignore_index=True)
    pooled["series"] = pooled["group"] + "/" + pooled["series"].astype(str)
    period = (
        f"Held-out test period (last {args.test_fraction:.0%} of each series)"
        if args.period == "test"
        else f"Validation period ({args.val_fraction:.0%} of each series before its last {args.test_fraction:.0%})"
    )
    lines = [
        f"{period}, horizon {args.horizon}, "
        f"{args.origins} origins per series (stride {args.horizon}), {args.samples} paths, {args.lookback} bars of "
        "history per origin; kronos at its default lookback (the ensemble of windows auto, 128 and 64 bars), "
        f"kronos-cal the same calibrated on {args.calibration_origins or 20} origins of the history (the default tilt "
        "method)"
        + ("" if args.temperature is None else f", both sampled at temperature {args.temperature:g}")
        + (
            "; every forecaster reads the bars as they are in the data (unadjusted splits included)"
            if args.keep_splits
            else "; every forecaster reads the bars with the share splits left in the data undone"
        )
        + ". CRPS (of the paths as drawn, and fair: the estimate for any number of paths), MAE and RV MAE in basis "
        "points of the last close.",
        "",
    ]
    for group, n_series, metrics in sections:
        lines += [f"**{group}** ({n_series} series)", "", table_md(overall_table(metrics)), ""]
    pooled_table = overall_table(compute_metrics(pooled))
    lines += [f"**pooled** ({pooled['series'].nunique()} series)", "", table_md(pooled_table), ""]
    pit = ["| forecaster | " + " | ".join(f"{i / 10:.1f}" for i in range(10)) + " |", "|---|" + "---|" * 10]
    for name, rows in pooled.groupby("forecaster"):
        hist = pit_histogram(rows["pit"].to_numpy())
        pit.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in hist) + " |")
    lines += ["PIT histogram (pooled; density per decile of the PIT, 1.00 everywhere when calibrated)", "", *pit, ""]
    lines += [
        "Reversion: slope of the median last-step log return on the z-score of the last close among its last 244 "
        "closes, in standard deviations of the realised returns per unit of z (what followed: the same for the "
        "realised return)",
        "",
        reversion(pooled, staging),
        "",
    ]
    checks = targets(pooled)
    if checks.count("\n") > 1:
        lines += ["Targets (issue 18), per group and pooled:", "", checks, ""]
    checks = calibration_checks(pooled)
    if checks.count("\n") > 1:
        lines += ["Calibration against the raw model (issue 17), per group and pooled:", "", checks, ""]
    if not args.no_anomaly:
        t0 = time.time()
        auc = anomaly_study(args.model, {g: staging / g for g in args.groups.split(",")}, all_n_test)
        lines += [
            "Anomaly scores (causal), injected bad bars vs the same positions left clean, test period:",
            "",
            "| injected | bars | clean bars | ROC AUC |",
            "|---|---|---|---|",
        ]
        lines += [f"| {r.kind} | {r.injected} | {r.clean} | {r.roc_auc:.3f} |" for r in auc.itertuples()]
        lines.append("")
        print(f"anomaly study {time.time() - t0:.0f} s", flush=True)
    text = "\n".join(lines)
    (args.out / "tables.md").write_text(text + "\n")
    pooled.to_parquet(args.out / "pooled_forecasts.parquet", index=False)
    print(text)
    print(f"total {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
