"""Calibration variants refitted offline on the very forecasts ``kronos-cal`` calibrated.

A calibrated forecast is fitted on its history's origin forecasts; a variant of the fit (another centre, spread or
drift shape) can be judged on the same paths without sampling again. Two steps:

1. ``dump``: run ``kronos evaluate -f kronos-cal`` on one staged group folder (``kronos_open_eval.py`` writes them
   under ``OUT/data/GROUP``), recording for every forecast the raw paths' close returns and the origin returns and
   outcomes its calibration was fitted on (the library's own calls, observed, not re-implemented);
2. ``compare``: refit each variant per forecast and score it on what followed: CRPS of the close returns in basis
   points (as drawn and fair, ``docs/evaluation.md``), 80% coverage and realised-volatility error, per group and
   pooled, each against today's calibration with a paired bootstrap over series.

    python benchmarks/kronos_open_eval.py --period val --no-anomaly --out runs/val     # stages runs/val/data/*
    python benchmarks/calibration_variants.py dump runs/val/data/daily runs/dump/val-daily     # ~12 min per group
    python benchmarks/calibration_variants.py compare runs/dump/val-daily runs/dump/val-hourly runs/dump/val-intraday

Choose on the validation period; the test period is for measuring the choice once. Numbers from this script are in
``docs/probabilistic.md`` (*Checked again with anchored paths*).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import scoringrules
from kronos_open_eval import paired_ratio  # this folder: on sys.path when run as a script

from kronos.forecasting.scores import (
    MIN_SCALE,
    calibrated_prob_up,
    order_index,
    prob_up_shrink,
    quantile_per_step,
    untie,
)
from kronos.forecasting.tilt import (
    MAX_TILT,
    ROUGHNESS_BOUNDS,
    apply_tilt,
    centred_paths,
    fit_tilt,
    realised_volatility,
    roughness_ratio,
    tilt,
    tilt_scores,
)

HORIZON, SAMPLES, ORIGINS, LOOKBACK = 5, 50, 12, 512
GRID = np.geomspace(0.2, 20.0, 90)  # spreads searched by the variants that move the centre or the tails


def dump(data: Path, out: Path) -> None:
    """Run the evaluation of ``kronos-cal`` on ``data`` into ``out``, keeping what every calibration saw."""
    import kronos.forecasting.calibration as calibration
    import kronos.forecasting.conformal as conformal
    from kronos.cli import main

    records = []
    fit = calibration.fit_conformal
    apply = conformal.ConformalCalibration.apply

    def recording_fit(pred, realized, **kwargs):
        cal = fit(pred, realized, **kwargs)
        cal._seen = (np.asarray(pred, np.float32), np.asarray(realized, np.float32))
        return cal

    def recording_apply(self, forecast):
        pred, realized = self._seen
        records.append(
            {
                "first_time": pd.Timestamp(forecast.timestamps[0]),
                "last_close": float(forecast.last_close),
                "raw": np.asarray(forecast.returns("close"), np.float32),
                "origin_returns": pred,
                "origin_outcomes": realized,
            }
        )
        return apply(self, forecast)

    calibration.fit_conformal = recording_fit
    conformal.ConformalCalibration.apply = recording_apply
    out.mkdir(parents=True, exist_ok=True)
    sys.argv = ["kronos", "evaluate", "--data", str(data), "-f", "kronos-cal", "--out", str(out / "evaluation")]
    sys.argv += ["--lookback", str(LOOKBACK), "--horizon", str(HORIZON), "--origins", str(ORIGINS)]
    sys.argv += ["--samples", str(SAMPLES), "--jobs", "1", "--no-progress"]
    try:
        main()
    except SystemExit as stop:
        if stop.code not in (0, None):
            raise
    np.savez_compressed(
        out / "calibrations.npz",
        first_time=np.array([r["first_time"].tz_localize(None).value for r in records], dtype=np.int64),
        last_close=np.array([r["last_close"] for r in records]),
        raw=np.stack([r["raw"] for r in records]),
        origin_returns=np.stack([r["origin_returns"] for r in records]),
        origin_outcomes=np.stack([r["origin_outcomes"] for r in records]),
    )
    print(f"{len(records)} calibrated forecasts recorded in {out}")


def load(folder: Path) -> list[dict]:
    """The recorded forecasts of one dump, each with its series, its log-return paths and what followed."""
    with np.load(folder / "calibrations.npz") as saved:
        arrays = {name: saved[name] for name in saved.files}
    records = [
        {"first_time": pd.Timestamp(t), "last_close": float(c), "raw": r, "origin_returns": p, "origin_outcomes": y}
        for t, c, r, p, y in zip(
            *(arrays[k] for k in ("first_time", "last_close", "raw", "origin_returns", "origin_outcomes"))
        )
    ]
    rows = pd.read_parquet(folder / "evaluation" / "forecasts.parquet")
    rows = rows[rows["forecaster"] == "kronos-cal"]
    first = rows[rows["step"] == 1].set_index(["target_time", "last_close"])
    out = []
    for rec in records:
        key = (rec["first_time"], rec["last_close"])
        if key not in first.index:
            continue
        hit = first.loc[[key]].iloc[0]
        future = rows[(rows["series"] == hit["series"]) & (rows["origin_time"] == hit["origin_time"])]
        future = future.sort_values("step")
        out.append(
            {
                "group": folder.name.split("-")[-1],
                "series": hit["series"],
                "raw": np.log1p(rec["raw"].astype(np.float64)),
                "lp": np.log1p(rec["origin_returns"].astype(np.float64)),
                "ly": np.log1p(rec["origin_outcomes"].astype(np.float64)),
                "y": np.log(future["y_true"].to_numpy() / future["last_close"].to_numpy()),
            }
        )
    return out


# ---------------------------------------------------------------------------------------------- variants


def _roughness(paths: np.ndarray, realized: np.ndarray, times: float = 1.0) -> float:
    """``times`` the library's roughness ratio, within its bounds (as the tilt fits its roughness: once, then refined
    with the calibration in place)."""
    return float(np.clip(times * roughness_ratio(paths, realized), *ROUGHNESS_BOUNDS))


def _tilt_inputs(r: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The origins' centred paths, calibrated P(up) per step, outcomes and P(up) shrink, as the tilt fits them."""
    lp, y = untie(r["lp"]), r["ly"]
    shrink = prob_up_shrink((lp > 0).mean(axis=1), y > 0)
    return centred_paths(lp, shrink), calibrated_prob_up(lp, shrink), y, shrink


def _grid_spread(make: Callable[[np.ndarray], np.ndarray], y: np.ndarray, level: float = 0.8) -> float:
    """The conformal spread of a family of calibrated paths ``make(spreads)`` ``(G, origins, paths, H)``: each
    origin and step scores the first grid spread whose central interval holds its outcome."""
    lo, hi = np.quantile(make(GRID[:, None, None, None]), [(1 - level) / 2, (1 + level) / 2], axis=-2)
    inside = (y[None] >= lo) & (y[None] <= hi)
    first = np.where(inside.any(0), GRID[np.argmax(inside, axis=0)], np.inf)
    k, _ = order_index(y.size, level)
    return float(np.minimum(np.sort(first.ravel())[k], GRID[-1]))


def today(r: dict, shape: float = 0.5, spread_times: float = 1.0) -> np.ndarray:
    """The library's tilt (``spread_times`` scales its conformal spread after the fit)."""
    s, b, k, _ = fit_tilt(r["lp"], r["ly"], shape=shape)
    return apply_tilt(r["raw"], s * spread_times, b, k, shape=shape)


def median_kept(share: float) -> Callable[[dict], np.ndarray]:
    """Tilted around the paths' median, which keeps ``share`` of its distance from the last close (0: centred on
    the last close, 1: the model's own centre), no P(up) recentring."""

    def fn(r: dict) -> np.ndarray:
        def calibrated(lp: np.ndarray, s, b: float) -> np.ndarray:
            untied = untie(lp)
            med = np.median(untied, axis=-2, keepdims=True)
            return tilt(untied - med, s, b, None) + share * med

        med = np.median(untie(r["lp"]), axis=-2, keepdims=True)
        b = _roughness(untie(r["lp"]) - med, r["ly"])
        s = _grid_spread(lambda g: calibrated(r["lp"][None], g, b), r["ly"])
        b = _roughness(calibrated(r["lp"], s, b) - share * med, r["ly"] - share * med[..., 0, :], times=b)
        s = _grid_spread(lambda g: calibrated(r["lp"][None], g, b), r["ly"])
        return calibrated(r["raw"], s, b)

    return fn


def _median_share(lp: np.ndarray, y: np.ndarray, z: float = 2.0) -> float:
    """The share of the median a regression of the outcomes on it keeps (clipped to 0..1), 0 unless the slope is
    ``z`` standard errors above 0 (origins counted, steps correlated)."""
    med = np.median(untie(lp), axis=-2)
    m = float((med * med).sum())
    slope = float((med * y).sum()) / max(m, 1e-30)
    se = float((med * y).sum(axis=1).std()) * np.sqrt(len(med)) / max(m, 1e-30)
    return float(np.clip(slope, 0.0, 1.0)) if slope > z * se else 0.0


def median_gated(r: dict) -> np.ndarray:
    """:func:`median_kept` with the share a gated regression of the origins' outcomes on their median finds."""
    return median_kept(_median_share(r["lp"], r["ly"]))(r)


def median_cross_fitted(r: dict, shares: tuple[float, ...] = (0.0, 0.5, 1.0), folds: int = 5) -> np.ndarray:
    """:func:`median_kept` with the share of lowest CRPS on the origins, each block of origins scored by a fit on
    the others (slow: a fit per share and fold)."""
    n = len(r["ly"])
    totals = []
    for share in shares:
        total = 0.0
        for block in np.array_split(np.arange(n), folds):
            rest = np.setdiff1d(np.arange(n), block)
            fitted = {"lp": r["lp"][rest], "ly": r["ly"][rest], "raw": r["lp"][block]}
            paths = median_kept(share)(fitted)
            total += float(np.sum(scoringrules.crps_ensemble(r["ly"][block], paths, m_axis=-2, estimator="nrg")))
        totals.append(total)
    return median_kept(shares[int(np.argmin(totals))])(r)


def longer_tails(power: float) -> Callable[[dict], np.ndarray]:
    """The tilt with each path's end deviation reshaped around the fixed 10% and 90% quantiles, ``sign(u) |u|^power``
    (``u`` the deviation over that side's quantile): a sharper centre and longer tails, the 80% interval kept."""

    def shaped(a: np.ndarray) -> np.ndarray:
        end = a[..., -1]
        hi = np.maximum(np.quantile(end, 0.9, axis=-1, keepdims=True), 1e-12)
        lo = np.minimum(np.quantile(end, 0.1, axis=-1, keepdims=True), -1e-12)
        side = np.where(end >= 0, hi, -lo)
        u = end / side
        return (np.sign(u) * np.abs(u) ** power * side)[..., None]

    def calibrated(a: np.ndarray, s, b: float, p: np.ndarray) -> np.ndarray:
        w = (np.arange(1, a.shape[-1] + 1) / a.shape[-1]) ** 0.5
        out = b * a + (np.asarray(s) * shaped(a) - b * a[..., -1:]) * w
        return out - quantile_per_step(out, 1.0 - p)[..., None, :]

    def fn(r: dict) -> np.ndarray:
        a, p, y, shrink = _tilt_inputs(r)
        b = _roughness(a, y)
        s = _grid_spread(lambda g: np.stack([calibrated(a, x, b, p) for x in g[:, 0, 0, 0]]), y)
        b = _roughness(calibrated(a, s, b, p), y, times=b)
        s = _grid_spread(lambda g: np.stack([calibrated(a, x, b, p) for x in g[:, 0, 0, 0]]), y)
        raw = untie(r["raw"])
        return calibrated(centred_paths(raw, shrink), s, b, calibrated_prob_up(raw, shrink))

    return fn


def recency_weighted(halflife: float) -> Callable[[dict], np.ndarray]:
    """The tilt with a weighted conformal quantile: an origin's weight halves every ``halflife`` origins back, and
    the forecast's own point weighs as the newest origin (the non-exchangeable split-conformal quantile)."""

    def fn(r: dict) -> np.ndarray:
        a, p, y, shrink = _tilt_inputs(r)
        n, h = y.shape
        w = np.repeat(0.5 ** ((n - 1 - np.arange(n)) / halflife), h)

        def spread(b: float) -> float:
            scores = tilt_scores(a, y, b, 0.8, p).ravel()
            order = np.argsort(scores)
            i = np.searchsorted(np.cumsum(w[order]) / (w.sum() + 1.0), 0.8)
            return MAX_TILT if i >= len(scores) else max(float(min(scores[order][i], MAX_TILT)), MIN_SCALE)

        b = _roughness(a, y)
        b = _roughness(tilt(a, spread(b), b, p), y, times=b)
        return apply_tilt(r["raw"], spread(b), b, shrink)

    return fn


VARIANTS: dict[str, Callable[[dict], np.ndarray]] = {
    "today": today,
    "median kept": median_kept(1.0),
    "half the median": median_kept(0.5),
    "median gated": median_gated,
    "median cross-fitted": median_cross_fitted,
    "tails ^1.3": longer_tails(1.3),
    "spread x0.9": lambda r: today(r, spread_times=0.9),
    "spread x1.1": lambda r: today(r, spread_times=1.1),
    "drift t^0.35": lambda r: today(r, shape=0.35),
    "drift t^0.25": lambda r: today(r, shape=0.25),
    "recency 10": recency_weighted(10.0),
    "recency 5": recency_weighted(5.0),
}


# ---------------------------------------------------------------------------------------------- scoring


def score(log_paths: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """CRPS as drawn and fair (bp), 80% coverage and realised-volatility error (bp) of one forecast."""
    paths, truth = np.expm1(log_paths), np.expm1(y)
    lo, hi = np.quantile(paths, [0.1, 0.9], axis=0)
    rv_pred = np.sqrt(np.mean(realised_volatility(log_paths) ** 2))
    return {
        "crps": float(scoringrules.crps_ensemble(truth, paths, m_axis=0, estimator="nrg").mean() * 1e4),
        "fair": float(scoringrules.crps_ensemble(truth, paths, m_axis=0, estimator="fair").mean() * 1e4),
        "cov80": float(((truth >= lo) & (truth <= hi)).mean()),
        "rv": float(abs(rv_pred - realised_volatility(y)) * 1e4),
    }


def compare(folders: list[Path], names: list[str]) -> None:
    forecasts = [r for folder in folders for r in load(folder)]
    rows = []
    for r in forecasts:
        rows.append({"group": r["group"], "series": r["series"], "variant": "raw", **score(r["raw"], r["y"])})
        for name in names:
            rows.append(
                {"group": r["group"], "series": r["series"], "variant": name, **score(VARIANTS[name](r), r["y"])}
            )
    table = pd.DataFrame(rows)
    print(f"{len(forecasts)} forecasts; CRPS ratios against today's calibration, paired bootstrap over series")
    print("| group | variant | CRPS bp | ratio [95%] | fair CRPS ratio | cov80 | RV error bp |")
    print("|---|---|---|---|---|---|---|")
    for group in [*sorted(table["group"].unique()), "pooled"]:
        part = table if group == "pooled" else table[table["group"] == group]
        per_series = part.groupby(["variant", "series"])[["crps", "fair"]].mean()
        base = per_series.loc["today"]
        for name in ["raw", *names]:
            mine = per_series.loc[name]
            ratio, lo, hi = paired_ratio(mine["crps"], base["crps"])
            fair = mine["fair"].mean() / base["fair"].mean()
            rows_v = part[part["variant"] == name]
            print(
                f"| {group} | {name} | {rows_v['crps'].mean():.1f} | {ratio:.3f} [{lo:.3f}, {hi:.3f}] | {fair:.3f} | "
                f"{rows_v['cov80'].mean():.3f} | {rows_v['rv'].mean():.1f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("dump", help="evaluate kronos-cal on a staged group folder, recording its calibrations")
    one.add_argument("data", type=Path)
    one.add_argument("out", type=Path, help="a folder named PERIOD-GROUP (compare reads the group from its name)")
    two = sub.add_parser("compare", help="refit the variants on recorded calibrations and score them")
    two.add_argument("folders", type=Path, nargs="+")
    two.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.data, args.out)
    else:
        names = [v.strip() for v in args.variants.split(",")]
        unknown = [v for v in names if v not in VARIANTS]
        if unknown:
            parser.error(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
        compare(args.folders, names if "today" in names else ["today", *names])


if __name__ == "__main__":
    main()
