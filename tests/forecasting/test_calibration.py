"""Split-conformal calibration: the maths on simulated draws, the predictor path on real bars, and
held-out coverage of the 80% interval on several real series."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from kronos import InputError
from kronos.bars.calendars import future_timestamps
from kronos.bars.samples import load_sample
from kronos.forecasting.calibration import (
    CalibrationOptions,
    break_before,
    forecast_scales,
    origin_forecasts,
    origin_layout,
    spanning_origins,
)
from kronos.forecasting.conformal import apply_offsets, conformal_offsets, fit_conformal
from kronos.forecasting.scores import interval_coverage, min_origins
from kronos.forecasting.tilt import DRIFT_SHAPE, drift_weights
from kronos.inference.options import SamplingOptions

DEFAULT_LEVELS_80 = (0.1, 0.5, 0.9)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def predictor(tiny_predictor):
    return tiny_predictor


# -- the maths -----------------------------------------------------------------------------------
def _overconfident(rng, n, paths=60, horizon=3, bias=0.5):
    """A model whose paths are 4x too narrow and biased, against standard-normal outcomes."""
    pred = bias + 0.25 * rng.standard_normal((n, paths, horizon))
    y = rng.standard_normal((n, horizon))
    return pred, y


def test_conformal_offsets_restore_coverage_on_fresh_draws():
    rng = np.random.default_rng(0)
    pred, y = _overconfident(rng, 200)
    cal = fit_conformal(pred, y, method="offsets")
    before = interval_coverage(pred, y, 0.8).mean()
    test_pred, test_y = _overconfident(rng, 2000)
    after = interval_coverage(apply_offsets(test_pred, cal.levels, cal.offsets), test_y, 0.8).mean()
    raw = interval_coverage(test_pred, test_y, 0.8).mean()
    assert before < 0.4 and raw < 0.4
    assert 0.76 <= after <= 0.86, after  # the guarantee is >= 0.8 in expectation, up to sampling noise
    # the median moved onto the outcomes' median: the bias is gone
    assert np.median(test_pred) > 0.4 and abs(np.median(apply_offsets(test_pred, cal.levels, cal.offsets))) < 0.2


def test_offsets_below_minus_100_percent_leave_prices_positive():
    """Offsets add returns: outcomes that fell by half on average (spread 60%) against a model that says +-1% push
    the low levels below -100%, which would be negative prices; they are floored as the forecast's own prices are."""
    from kronos.forecasting.forecast import Forecast
    from kronos.forecasting.prepared import PRICE_FLOOR

    rng = np.random.default_rng(0)
    pred = 0.01 * rng.standard_normal((40, 30, 3))
    cal = fit_conformal(pred, -0.5 + 0.6 * rng.standard_normal((40, 3)), method="offsets")
    assert cal.offsets.min() < -1.0
    close = 100.0 * (1.0 + 0.01 * rng.standard_normal((30, 3)))
    ones = np.ones_like(close)
    paths = np.stack([close, close * 1.01, close * 0.99, close, ones, ones], axis=-1)
    out = cal.apply(Forecast(paths=paths, timestamps=pd.date_range("2024-01-02", periods=3), last_close=100.0))
    o, h, lo, c = (out.paths[..., i] for i in range(4))
    assert (lo > 0).all() and (lo <= np.minimum(o, c)).all() and (np.maximum(o, c) <= h).all()
    assert (c == PRICE_FLOOR * 100.0).any()  # some closes did reach the floor


def test_scaled_scores_adapt_to_the_volatility_regime():
    rng = np.random.default_rng(1)
    n, paths, h = 300, 60, 2
    scale = np.exp(rng.uniform(-1, 1, n))  # known at forecast time, multiplies the outcome spread
    pred = 0.2 * rng.standard_normal((n, paths, h))
    y = scale[:, None] * rng.standard_normal((n, h))
    plain = fit_conformal(pred[:150], y[:150], method="offsets")
    scaled = fit_conformal(pred[:150], y[:150], scales=scale[:150], method="offsets")
    calm = scale[150:] < 0.6
    cov_plain = interval_coverage(apply_offsets(pred[150:], plain.levels, plain.offsets), y[150:], 0.8)
    cov_scaled = interval_coverage(apply_offsets(pred[150:], scaled.levels, scaled.offsets, scale[150:]), y[150:], 0.8)
    # plain offsets are too wide in calm stretches and too narrow in wild ones; scaled ones are not
    assert cov_plain[calm].mean() > 0.95
    assert abs(cov_scaled.mean() - 0.8) < 0.08 and abs(cov_scaled[calm].mean() - 0.8) < 0.15


def test_min_origins_is_where_the_order_statistic_first_exists():
    for level in (0.5, 0.8, 0.9, 0.95):
        n = min_origins(level)
        upper = (1 + level) / 2
        assert np.ceil((n + 1) * upper - 1e-9) <= n and np.ceil(n * upper - 1e-9) > n - 1
    assert (min_origins(0.8), min_origins(0.9)) == (9, 19)


def test_too_few_origins_are_clamped_and_flagged():
    rng = np.random.default_rng(2)
    pred, y = _overconfident(rng, 5)
    offsets, ok = conformal_offsets(pred, y, DEFAULT_LEVELS_80)
    assert not ok[0] and ok[1] and not ok[2]
    scores = y[None] - np.quantile(pred, DEFAULT_LEVELS_80, axis=1)
    np.testing.assert_allclose(offsets[:, 2], scores[2].max(axis=0))  # clamped to the largest score
    np.testing.assert_allclose(offsets[:, 0], scores[0].min(axis=0))


def test_apply_offsets_keeps_ranks_and_ties():
    rng = np.random.default_rng(3)
    r = np.round(rng.standard_normal((50, 4)), 1)  # coarse values: many ties, as decoded tokens give
    levels = np.array([0.1, 0.5, 0.9])
    offsets = np.tile([[-1.0, 0.3, 0.2]], (4, 1))  # a non-monotone correction across levels
    out = apply_offsets(r, levels, offsets)
    for h in range(4):
        order = np.argsort(r[:, h], kind="stable")
        assert (np.diff(out[order, h]) >= 0).all()  # monotone map: ranks kept
        for value in np.unique(r[:, h]):
            assert np.ptp(out[r[:, h] == value, h]) == 0  # tied paths stay tied
    np.testing.assert_allclose(apply_offsets(r, levels, np.zeros((4, 3))), r)


def test_origin_layout_and_its_errors():
    origins, lookback, stride = origin_layout(300, 10, 20, None, None, max_context=64)
    assert origins[-1] == 300 - 1 - 10 and np.all(np.diff(origins) == 10) and len(origins) == 20
    assert lookback == 64 and origins[0] - lookback + 1 >= 0
    with pytest.raises(InputError, match=r"needs at least 232 bars of history .* got 200"):
        origin_layout(200, 10, 20, None, None, max_context=64)
    with pytest.raises(InputError, match="at least 9 origins"):
        origin_layout(500, 10, 5, None, None, max_context=64)


def test_origin_layout_passes_over_rows_to_skip_while_the_lookback_fits():
    skip = np.zeros(300, dtype=bool)
    skip[[289, 249]] = True  # the last origin and the fifth from last
    origins, lookback, _ = origin_layout(300, 10, 20, None, None, max_context=64, skip=skip)
    expected = [t for t in range(289, 0, -10) if not skip[t]][:20][::-1]
    assert origins == expected and lookback == 64 and not skip[origins].any()
    # without room for the earlier rows (a history just long enough), the rows are kept and the lookback with them
    short = np.zeros(264, dtype=bool)
    short[253] = True
    origins, lookback, _ = origin_layout(264, 10, 20, None, None, max_context=64, skip=short)
    assert origins == list(range(63, 254, 10)) and lookback == 64


# -- through the predictor -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def eurusd():
    """300 hourly EURUSD bars of the bundled sample (gym-anytrading, MIT)."""
    return load_sample("eurusd").iloc[600:900].reset_index(drop=True)


def test_forecast_calibrate_end_to_end(predictor, eurusd):
    hist, fut = eurusd.iloc[:190], eurusd["timestamps"].iloc[190:196]
    torch.manual_seed(3)
    fc = predictor.forecast(
        hist, hist["timestamps"], fut, 6, sample_count=30, calibrate=CalibrationOptions(origins=12, stride=6)
    )
    assert fc.is_calibrated and fc.paths.shape == fc.raw_paths.shape == (30, 6, 6)
    lookback = fc.info["calibration"]["lookback"]
    assert lookback == 64 and fc.calibration.n_origins == 12
    assert fc.calibration.origins.max() < hist["timestamps"].iloc[-1]  # origins lie inside the history
    # the raw paths are exactly the uncalibrated forecast from the same window, drawn first
    torch.manual_seed(3)
    plain = predictor.forecast(hist.iloc[-lookback:], hist["timestamps"].iloc[-lookback:], fut, 6, sample_count=30)
    np.testing.assert_allclose(fc.raw_paths, plain.paths)
    np.testing.assert_allclose(fc.uncalibrated().paths, plain.paths)
    # open/high/low/close of a bar move together (by one factor: prices stay positive); volume and amount do not move
    factor = fc.paths[:, :, :4] / fc.raw_paths[:, :, :4]
    np.testing.assert_allclose(factor, np.repeat(factor[:, :, 3:4], 4, axis=2), rtol=1e-12)
    assert np.all(fc.paths[:, :, 4:] == fc.raw_paths[:, :, 4:]) and np.abs(factor - 1).max() > 0
    # still a distribution: monotone quantiles, nested intervals, probabilities
    qs = fc.quantile([0.1, 0.25, 0.5, 0.75, 0.9])
    stacked = np.stack([q.to_numpy() for q in qs.values()])
    assert np.all(np.diff(stacked, axis=0) >= 0)
    (lo8, hi8), (lo5, hi5) = fc.interval(0.8), fc.interval(0.5)
    assert (lo8 <= lo5).all().all() and (hi5 <= hi8).all().all()
    assert fc.prob_up().between(0, 1).all()
    report = fc.coverage_report()
    assert {"before_80", "after_80", "after_cv_80"} <= set(report.columns) and report.index[-1] == "all"
    assert report.loc["all"].between(0, 1).all()
    with pytest.raises(InputError, match="already calibrated"):
        fc.calibration.apply(fc)


def test_origins_spanning_a_weekend_are_passed_over_for_a_forecast_inside_the_week(predictor, eurusd):
    """EURUSD hourly bars stop for the weekend (a 49-hour gap): a forecast whose bars lie inside a week calibrates on
    origins whose bars do too; one that spans a weekend keeps every origin."""
    hist, fut = eurusd.iloc[:190], eurusd["timestamps"].iloc[190:196]
    times = pd.DatetimeIndex(hist["timestamps"])
    after_weekend = np.flatnonzero(np.diff(times.asi8) > 24 * 3600 * 10**9) + 1
    spans = spanning_origins(times, fut, 6)
    assert spans.tolist() == [any(t < w <= t + 6 for w in after_weekend) for t in range(len(times))]

    def calibration(hist, fut, **options):
        torch.manual_seed(0)
        opts = CalibrationOptions(origins=12, stride=6, **options)
        fc = predictor.forecast(hist, hist["timestamps"], fut, 6, sample_count=8, calibrate=opts)
        rows = pd.DatetimeIndex(hist["timestamps"]).get_indexer(fc.calibration.origins)
        return rows, fc.calibration.settings["origins_moved_back"]

    rows, moved = calibration(hist, fut)
    plain_rows, plain_moved = calibration(hist, fut, match_breaks=False)
    assert spans[plain_rows].any() and plain_moved == 0  # the plain layout holds an origin spanning the weekend
    assert not spans[rows].any() and moved == 6 * spans[plain_rows].sum() and rows[-1] == plain_rows[-1]
    # the forecast's own bars span the weekend after row 174: every origin is like it in that, none is passed over
    assert spanning_origins(times[:172], eurusd["timestamps"].iloc[172:178], 6) is None
    rows, moved = calibration(eurusd.iloc[:172], eurusd["timestamps"].iloc[172:178])
    assert moved == 0 and rows[-1] == 172 - 1 - 6
    # daily bars: weekends and long weekends (gaps of up to 4 days on the GOOGL sample) are not breaks
    googl = pd.DatetimeIndex(load_sample("googl")["timestamps"])
    assert np.diff(googl.asi8).max() == 4 * 86400 * 10**9 and not break_before(googl).any()


def test_calibrate_with_too_short_history_says_how_many_bars(predictor, eurusd):
    hist, fut = eurusd.iloc[:120], eurusd["timestamps"].iloc[120:130]
    with pytest.raises(InputError, match=r"needs at least 232 bars of history .* got 120"):
        predictor.forecast(hist, hist["timestamps"], fut, 10, sample_count=5, calibrate=True)
    with pytest.raises(InputError, match=r"series 1: .*needs at least"):
        predictor.forecast_batch(
            [eurusd, hist],
            [eurusd["timestamps"], hist["timestamps"]],
            [pd.date_range("2030-01-01", periods=10, freq="h")] * 2,
            10,
            calibrate=True,
        )


# -- the claim: calibration moves held-out 80% coverage toward 80% on real series -------------------
HELD_OUT = {  # series, first row of the studied stretch
    "fx/EURUSD_1h.parquet": 20000,
    "us_equity/IBM_daily.parquet": 8000,
    "etf/GLD_daily.parquet": 2000,
    "crypto/BINANCE-BTCUSDT_1h.parquet": 10000,
}


@pytest.mark.slow
def test_calibration_moves_held_out_coverage_toward_80_percent(predictor, shared_data):
    """Calibrate on the first 24 rolling origins of each series, score the next 16 (never seen)."""
    n_cal, n_test, pred_len, lookback, stride = 24, 16, 8, 64, 8
    pooled_before, pooled_after, lines = [], [], []
    for rel, start in HELD_OUT.items():
        df = pd.read_parquet(shared_data / rel)
        frame = df.iloc[start : start + lookback + pred_len + (n_cal + n_test - 1) * stride].reset_index(drop=True)
        origins = [lookback - 1 + i * stride for i in range(n_cal + n_test)]
        torch.manual_seed(0)
        fcs, realized = origin_forecasts(
            predictor.forecast_fn(sample_count=30), frame, frame["timestamps"], pred_len, origins, lookback
        )
        cal = fit_conformal(
            np.stack([f.returns() for f in fcs[:n_cal]]),
            realized[:n_cal],
            scales=forecast_scales(fcs[:n_cal]),
            method="offsets",
        )
        before, after = [], []
        for f, y in zip(fcs[n_cal:], realized[n_cal:]):
            for g, out in ((f, before), (cal.apply(f), after)):
                lo, hi = g.interval(0.8)
                out.append(
                    (y >= lo["close"].to_numpy() / g.last_close - 1) & (y <= hi["close"].to_numpy() / g.last_close - 1)
                )
        b, a = float(np.mean(before)), float(np.mean(after))
        lines.append(f"{rel}: 80% coverage on {n_test} held-out origins {b:.3f} -> {a:.3f}")
        assert abs(a - 0.8) < abs(b - 0.8), lines[-1]
        pooled_before += before
        pooled_after += after
    b, a = float(np.mean(pooled_before)), float(np.mean(pooled_after))
    print("\n".join(lines + [f"all: {b:.3f} -> {a:.3f}"]))
    assert abs(a - 0.8) < 0.15 and abs(a - 0.8) < abs(b - 0.8) / 2, (b, a)


@pytest.fixture(scope="module")
def bars(shared_data) -> pd.DataFrame:
    return pd.read_parquet(shared_data / "fx" / "EURUSD_1h.parquet").iloc[10000:10200].reset_index(drop=True)


def test_seeded_calibration_is_the_same_alone_and_in_a_batch(tiny, bars):
    a, b = bars.iloc[:150], bars.iloc[20:190].reset_index(drop=True)
    fut_a, fut_b = future_timestamps(a["timestamps"], 4), future_timestamps(b["timestamps"], 4)
    cal = CalibrationOptions(origins=9, stride=4, lookback=32)
    opts = SamplingOptions(sample_count=8)
    batch = tiny.forecast_batch(
        [a, b], [a["timestamps"], b["timestamps"]], [fut_a, fut_b], 4, opts, seeds=[1, 2], calibrate=cal
    )
    alone = tiny.forecast(b, b["timestamps"], fut_b, 4, opts, seed=2, calibrate=cal)
    assert batch[1].is_calibrated and alone.is_calibrated and alone.calibration.method == "tilt"
    fitted = lambda fc: (fc.calibration.spread, fc.calibration.roughness)  # noqa: E731
    assert fitted(batch[1]) == fitted(alone)
    np.testing.assert_array_equal(batch[1].paths, alone.paths)
    again = tiny.forecast(b, b["timestamps"], fut_b, 4, opts, seed=2, calibrate=cal)
    np.testing.assert_array_equal(again.paths, alone.paths)
    other = tiny.forecast(b, b["timestamps"], fut_b, 4, opts, seed=3, calibrate=cal)
    assert fitted(other) != fitted(alone)


def test_calibration_options_are_validated_once_with_names():
    with pytest.raises(InputError, match="at least 9 origins"):
        CalibrationOptions(origins=5)
    with pytest.raises(InputError, match="stride must be an integer >= 1, got 0"):
        CalibrationOptions(stride=0)
    with pytest.raises(InputError, match="lookback must be an integer >= 2, got 1"):
        CalibrationOptions(lookback=1)
    with pytest.raises(InputError, match="scale must be one of"):
        CalibrationOptions(scale="log")
    with pytest.raises(InputError, match="match_breaks must be True or False, got 'no'"):
        CalibrationOptions(match_breaks="no")


def test_path_scales_calibrate_the_80_percent_interval_and_keep_trajectories():
    from kronos.forecasting.scores import apply_path_scales, fit_path_scales, path_centres, spread_ratios, untie

    rng = np.random.default_rng(4)
    n, paths, horizon = 400, 200, 5
    # the model's log-return paths are random walks twice too calm, and they lean up while the truth has no drift
    pred = np.cumsum(rng.normal(0.002, 0.01, (n, paths, horizon)), axis=-1)
    y = np.cumsum(rng.normal(0.0, 0.02, (n, horizon)), axis=-1)
    scales, shrink, ok = fit_path_scales(pred[:200], y[:200])
    assert ok and np.all((scales > 1.5) & (scales < 2.6))  # about 2, one scale pooled over the steps
    assert shrink < 0.5  # the stated P(up) carried little information: shrunk toward a coin
    before = interval_coverage(pred[200:], y[200:], 0.8).mean()
    after = interval_coverage(apply_path_scales(pred[200:], scales, shrink), y[200:], 0.8).mean()
    assert before < 0.55 and 0.75 <= after <= 0.85
    brier = lambda p, o: float(np.mean((p - o) ** 2))  # noqa: E731
    rose = (y[200:] > 0).astype(float)
    assert brier((apply_path_scales(pred[200:], scales, shrink) > 0).mean(axis=1), rose) < brier(
        (pred[200:] > 0).mean(axis=1), rose
    )
    # the guarantee's mechanism: covered by the calibrated 80% interval exactly when the score is at most the scale
    inside = interval_coverage(apply_path_scales(pred[:200], scales, shrink), y[:200], 0.8)
    score = spread_ratios(untie(pred[:200]), y[:200], path_centres(untie(pred[:200]), shrink))
    clear = np.abs(score - scales) > 1e-9  # the order statistic itself sits on the edge, up to rounding
    np.testing.assert_array_equal(inside[clear], (score <= scales)[clear])
    # paths stay trajectories: same rank at every step, and their moves around the centre scale with them
    calibrated = apply_path_scales(pred[:3], np.full(horizon, 2.0), shrink)
    np.testing.assert_array_equal(np.argsort(calibrated, axis=1), np.argsort(pred[:3], axis=1))
    centres = path_centres(untie(pred[:3]), shrink)[:, None, :]
    np.testing.assert_allclose(calibrated, 2.0 * (untie(pred[:3]) - centres))


def _mean_reverting_paths(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Log-return paths whose bar moves have the size of a 1% random walk's but revert: moves ``e_t - 0.6 e_(t-1)``,
    so their spread at the horizon is much narrower than the walk's (what the model's paths do)."""
    e = rng.normal(0.0, 0.01 / np.sqrt(1.36), (*shape[:-1], shape[-1] + 1))
    return np.cumsum(e[..., 1:] - 0.6 * e[..., :-1], axis=-1)


def test_tilt_widens_the_horizon_and_keeps_the_bars_volatility():
    from kronos.forecasting.scores import apply_path_scales, calibrated_prob_up, fit_path_scales, untie
    from kronos.forecasting.tilt import (
        apply_tilt,
        centred_paths,
        fit_tilt,
        realised_volatility,
        tilt_scores,
    )

    rng = np.random.default_rng(7)
    n, paths, horizon = 400, 200, 5
    pred = _mean_reverting_paths(rng, (n, paths, horizon))
    y = np.cumsum(rng.normal(0.0, 0.01, (n, horizon)), axis=-1)  # the truth: a 1% random walk
    spread, roughness, shrink, ok = fit_tilt(pred[:200], y[:200])
    assert ok and 1.5 < spread < 3.0 and 0.8 < roughness < 1.2, (spread, roughness)
    tilted = apply_tilt(pred[200:], spread, roughness, shrink)
    before = interval_coverage(pred[200:], y[200:], 0.8).mean()
    after = interval_coverage(tilted, y[200:], 0.8).mean()
    assert before < 0.65 and 0.75 <= after <= 0.85, (before, after)

    def rv_error(log_paths: np.ndarray) -> float:
        predicted = np.sqrt(np.mean(realised_volatility(log_paths) ** 2, axis=-1))
        return float(np.mean(np.abs(predicted - realised_volatility(y[200:]))))

    scales, scale_shrink, _ = fit_path_scales(pred[:200], y[:200])
    scaled = apply_path_scales(pred[200:], scales, scale_shrink)
    assert 0.75 <= interval_coverage(scaled, y[200:], 0.8).mean() <= 0.85
    # both calibrate the interval; only the tilt keeps the bars as rough as the prices they forecast
    assert rv_error(tilted) < 1.1 * rv_error(pred[200:]) < rv_error(scaled)
    # at the horizon the spread is exactly s times the centred paths', so the score decides inclusion there
    a = centred_paths(untie(pred[:200]), shrink)
    np.testing.assert_allclose(apply_tilt(pred[:200], spread, roughness, shrink)[..., -1], spread * a[..., -1])
    score = tilt_scores(a, y[:200], roughness, prob_up=calibrated_prob_up(untie(pred[:200]), shrink))[:, -1]
    inside = interval_coverage(apply_tilt(pred[:200], spread, roughness, shrink), y[:200], 0.8)[:, -1]
    clear = np.abs(score - spread) > 1e-3 * spread  # bisection resolution
    np.testing.assert_array_equal(inside[clear], (score <= spread)[clear])
    # paths keep their rank at the horizon and their own bar moves (scaled) plus a drift each, its total growing as
    # sqrt(t) (and a shift per step common to all paths, which puts the calibrated P(up) back at every step)
    tilted = apply_tilt(pred[:3], spread, roughness, shrink)
    moves = np.diff(tilted, axis=-1, prepend=0.0) - roughness * np.diff(a[:3], axis=-1, prepend=0.0)
    own = moves - moves.mean(axis=1, keepdims=True)
    per_weight = own / np.diff(drift_weights(horizon), prepend=0.0)  # the path's own total drift, at every step
    np.testing.assert_allclose(per_weight, np.broadcast_to(per_weight[..., :1], own.shape), atol=1e-12)
    np.testing.assert_allclose(drift_weights(horizon) ** 2, np.arange(1, horizon + 1) / horizon)
    target = calibrated_prob_up(untie(pred[:3]), shrink)
    np.testing.assert_allclose((tilted > 0).mean(axis=1), target, atol=1.0 / paths + 1e-12)
    np.testing.assert_array_equal(
        np.argsort(apply_tilt(pred[:3], spread, roughness, shrink)[..., -1], axis=1), np.argsort(a[:3, :, -1], axis=1)
    )


def test_tilt_spreads_its_drift_as_a_random_walk():
    """One spread is fitted over all steps. The truth is a 1% random walk; the model's paths revert and it knows each
    origin's volatility only roughly (off by a factor exp(N(0, 0.5))), so its intervals are too narrow at every step
    and more so later. A steady drift (shape 1) adds spread in proportion to the step: it under-covers the first steps
    and over-covers the horizon; the default shape (0.5) adds it as the walk does: every step covered alike, near the
    level, and a lower CRPS."""
    from properscoring import crps_ensemble

    from kronos.forecasting.tilt import apply_tilt, fit_tilt

    rng = np.random.default_rng(11)
    n, paths, horizon = 800, 200, 5
    e = rng.normal(0.0, 1.0 / np.sqrt(1.09), (n, paths, horizon + 1))
    pred = np.cumsum((e[..., 1:] - 0.3 * e[..., :-1]) * 0.01 * np.exp(rng.normal(0.0, 0.5, (n, 1, 1))), axis=-1)
    y = np.cumsum(rng.normal(0.0, 0.01, (n, horizon)), axis=-1)
    by_step, crps = {}, {}
    for shape in (1.0, DRIFT_SHAPE):
        spread, roughness, shrink, _ = fit_tilt(pred[:400], y[:400], shape=shape)
        tilted = apply_tilt(pred[400:], spread, roughness, shrink, shape=shape)
        by_step[shape] = interval_coverage(tilted, y[400:], 0.8).mean(axis=0)
        crps[shape] = float(np.mean(crps_ensemble(y[400:].ravel(), tilted.transpose(0, 2, 1).reshape(-1, paths))))
    steady, default = by_step[1.0], by_step[DRIFT_SHAPE]
    rise = steady[-1] - steady[0]
    assert rise > 0.06, steady  # the steady drift: step 1 under-covered, the horizon over-covered
    assert np.all((default >= 0.75) & (default <= 0.85)) and abs(default[-1] - default[0]) < rise / 2, default
    assert crps[DRIFT_SHAPE] < crps[1.0], crps


def test_calibrated_forecasts_keep_each_path_a_trajectory(tiny, bars):
    """The scale method multiplies every path's moves (log returns, around the centre path) by one factor at every
    step, so each path keeps its own moves; the tilt scales them by its roughness and adds a drift per path (its
    total growing as sqrt(t)); offsets re-sort every step by level, so a path's moves change."""
    fut = future_timestamps(bars["timestamps"], 4)
    opts = SamplingOptions(sample_count=32)
    spread = {}
    for method in ("tilt", "scale", "offsets"):
        cal = CalibrationOptions(origins=9, stride=4, lookback=32, method=method)
        fc = tiny.forecast(bars, bars["timestamps"], fut, 4, opts, seed=5, calibrate=cal)
        assert fc.calibration.method == method
        record = json.loads(json.dumps(fc.calibration.to_dict()))  # JSON-friendly, and says how paths were moved
        assert record["method"] == method and record["drift_shape"] == (DRIFT_SHAPE if method == "tilt" else None)
        raw, calibrated = np.log(fc.uncalibrated().column("close")), np.log(fc.column("close"))
        moves_raw, moves_cal = np.diff(raw, axis=1), np.diff(calibrated, axis=1)  # each path's bar-to-bar moves
        dev_raw = moves_raw - np.median(moves_raw, axis=0)
        dev_cal = moves_cal - np.median(moves_cal, axis=0)
        if method == "tilt":  # beyond the scaled own moves: a drift per path in proportion to w_t, a shift per step
            rest = moves_cal - fc.calibration.roughness * moves_raw
            own = (rest - np.median(rest, axis=0)) / np.diff(drift_weights(4))
            np.testing.assert_allclose(own, np.broadcast_to(own[:, :1], own.shape), atol=1e-5)
            continue
        big = np.abs(dev_raw) > 1e-5
        ratio = dev_cal[big] / dev_raw[big]
        spread[method] = float(np.std(ratio) / np.mean(np.abs(ratio)))
        if method == "scale":  # one factor for every path and step
            np.testing.assert_allclose(dev_cal, fc.calibration.path_scales[0] * dev_raw, atol=1e-6)
    assert spread["scale"] < 1e-3 < 0.1 < spread["offsets"]  # 1e-3: the 1e-9 tie-breaking of equal paths
