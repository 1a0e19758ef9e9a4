"""Rolling-origin engine on real series: no look-ahead, origin placement, persistence arithmetic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kronos.bars.preprocessing import InputError
from kronos.evaluation import (
    RollingConfig,
    compute_metrics,
    load_forecaster,
    read_series,
    rolling_evaluate,
)
from kronos.evaluation.baselines import Persistence
from kronos.evaluation.forecasters import parse_forecaster_spec
from kronos.evaluation.origins import origin_plan


@pytest.fixture(scope="module")
def spy(bars_folder) -> pd.DataFrame:
    """The last 400 daily bars of the S&P 500 index (arch's sample; once the SPY ETF from ../shared)."""
    frame = read_series(bars_folder / "index" / "SP500_daily.parquet")["SP500_daily"]
    return frame.iloc[-400:].reset_index(drop=True)


def _scramble_after(frame: pd.DataFrame, position: int, seed: int) -> pd.DataFrame:
    """Shuffle every bar after ``position`` (prices and volumes move together; times stay)."""
    out = frame.copy()
    values = out.columns.drop("timestamps")
    tail = out.loc[position + 1 :, values].to_numpy()
    out.loc[position + 1 :, values] = tail[np.random.default_rng(seed).permutation(len(tail))]
    return out


PRED_COLS = ["y_pred", "y_median", "q05", "q25", "q75", "q95", "rv_pred"]


def _check_no_lookahead(frame: pd.DataFrame, name: str, forecasters, config: RollingConfig) -> None:
    base = rolling_evaluate({name: frame}, forecasters, config, raise_errors=True).forecasts
    plan, _ = origin_plan({name: frame}, config)
    origins = pd.DatetimeIndex(frame["timestamps"].iloc[plan[name]])
    assert len(origins) == config.origins
    for k in (0, len(origins) // 2):
        position = int(plan[name][k])
        scrambled = _scramble_after(frame, position, seed=k)
        assert not np.allclose(scrambled["close"].iloc[position + 1 :], frame["close"].iloc[position + 1 :])
        again = rolling_evaluate({name: scrambled}, forecasters, config, raise_errors=True).forecasts
        upto = base["origin_time"] <= origins[k]
        left = base[upto].reset_index(drop=True)
        right = again[again["origin_time"] <= origins[k]].reset_index(drop=True)
        # every forecast made at or before the origin is bit-for-bit the same ...
        pd.testing.assert_frame_equal(
            left[["forecaster", "origin_time", "step", *PRED_COLS]],
            right[["forecaster", "origin_time", "step", *PRED_COLS]],
        )
        # ... while what they are scored against did change
        assert not np.allclose(left["y_true"], right["y_true"])


def test_scrambling_data_after_an_origin_changes_no_baseline_forecast(spy):
    forecasters = [load_forecaster(n) for n in ("persistence", "drift", "drift-normal", "garch", "ets")]
    config = RollingConfig(lookback=120, horizon=5, origins=4, num_samples=40, seed=3)
    _check_no_lookahead(spy, "SPY_daily", forecasters, config)


def test_scrambling_data_after_an_origin_changes_no_kronos_forecast(bars_folder, tiny_reference, one_torch_thread):
    bars = read_series(bars_folder / "fx" / "EURUSD_1h.parquet")["EURUSD_1h"].iloc[:300]
    kronos = load_forecaster(str(tiny_reference), name="tiny", max_context=64)
    config = RollingConfig(lookback=64, horizon=4, origins=3, num_samples=4, seed=1)
    _check_no_lookahead(bars.reset_index(drop=True), "EURUSD_1h", [kronos], config)


class _Spy:
    """Persistence that records what it was shown."""

    name = "spy"

    def __init__(self) -> None:
        self.calls: list[tuple[pd.Timestamp, int, pd.DatetimeIndex]] = []
        self._inner = Persistence()

    def forecast(self, history, future_timestamps, num_samples, *, seed=None):
        self.calls.append((history["timestamps"].iloc[-1], len(history), pd.DatetimeIndex(future_timestamps)))
        return self._inner.forecast(history, future_timestamps, num_samples, seed=seed)


def test_forecaster_receives_exactly_the_lookback_up_to_the_origin(spy):
    probe = _Spy()
    config = RollingConfig(lookback=50, horizon=3, origins=6, stride=7)
    rows = rolling_evaluate({"SPY": spy}, [probe], config, raise_errors=True).forecasts
    origins = pd.DatetimeIndex(sorted(rows["origin_time"].unique()))
    assert [c[0] for c in probe.calls] == list(origins)
    assert all(c[1] == 50 for c in probe.calls)
    stamps = pd.DatetimeIndex(spy["timestamps"])
    for last, _, future in probe.calls:
        pos = stamps.get_loc(last)
        assert list(future) == list(stamps[pos + 1 : pos + 4])
    # origins are counted back from the end, `stride` bars apart, the last one leaving room for H bars
    assert origins[-1] == stamps[len(stamps) - 1 - 3]
    assert (np.diff(stamps.get_indexer(origins)) == 7).all()


def test_persistence_mae_is_the_mean_absolute_change_over_the_horizon(spy):
    config = RollingConfig(lookback=30, horizon=5, origins=25, stride=3)
    forecasts = rolling_evaluate({"SPY": spy}, [Persistence()], config, raise_errors=True).forecasts
    metrics = compute_metrics(forecasts)

    close = spy["close"].to_numpy()
    last = len(close) - 1 - 5
    positions = last - 3 * np.arange(25)
    changes = np.abs(np.stack([close[positions + h] - close[positions] for h in range(1, 6)], axis=1))  # (origin, step)
    overall = metrics[(metrics["series"] == "(all)") & (metrics["step"] == "all")].iloc[0]
    assert overall["mae"] == pytest.approx(changes.mean(), rel=1e-12)
    assert overall["crps"] == pytest.approx(changes.mean(), rel=1e-12)  # one path: CRPS is the absolute error
    by_step = metrics[(metrics["series"] == "(all)") & (metrics["step"] != "all")].set_index("step")["mae"]
    np.testing.assert_allclose(by_step.loc[[1, 2, 3, 4, 5]].to_numpy(dtype=float), changes.mean(axis=0), rtol=1e-12)
    rel = np.abs(np.stack([close[positions + h] / close[positions] - 1 for h in range(1, 6)], axis=1))
    assert overall["mae_ret"] == pytest.approx(rel.mean(), rel=1e-12)
    assert overall["dir_acc"] == pytest.approx(0.5)  # "no change" is half right on every moving bar


def test_calendar_alignment_forecasts_a_panel_at_common_dates(bars_folder):
    # GOOGL's 600 days lie inside the indices' 5,031: the common dates are GOOGL's
    panel = read_series(bars_folder / "us_equity" / "us_daily_panel.parquet", symbols=["GOOGL", "NASDAQ", "SP500"])
    assert len({len(frame) for frame in panel.values()}) == 2
    config = RollingConfig(lookback=40, horizon=5, origins=6, stride=5)
    plan, align = origin_plan(panel, config)
    assert align == "calendar"
    dates = {name: tuple(panel[name]["timestamps"].iloc[pos]) for name, pos in plan.items()}
    assert len(set(dates.values())) == 1 and len(next(iter(dates.values()))) == 6


@pytest.mark.slow
def test_process_pool_gives_the_same_forecasts_as_one_process(spy):
    series = {"SPY": spy, "SPY_older": spy.iloc[:300].reset_index(drop=True)}
    specs = [parse_forecaster_spec("drift"), parse_forecaster_spec("garch")]
    config = RollingConfig(lookback=100, horizon=3, origins=3, num_samples=30, seed=11, align="end")
    serial = rolling_evaluate(series, specs, config, n_jobs=1, raise_errors=True).forecasts
    pooled = rolling_evaluate(series, specs, config, n_jobs=2, raise_errors=True).forecasts
    pd.testing.assert_frame_equal(serial, pooled)


def test_too_short_series_are_reported_not_silently_dropped(spy):
    config = RollingConfig(lookback=100, horizon=5, origins=2)
    result = rolling_evaluate({"long": spy, "short": spy.iloc[:90]}, [Persistence()], config)
    assert set(result.forecasts["series"]) == {"long"}
    assert "short" in set(result.errors["series"]) and result.errors["error"].str.contains("skipped").any()
    with pytest.raises(InputError, match="needs at least 105 bars"):
        rolling_evaluate({"short": spy.iloc[:90]}, [Persistence()], config)


def test_bad_input_names_the_problem(spy, tmp_path, bars_folder):
    bad = spy.copy()
    bad.loc[17, "close"] = np.nan
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InputError, match=r"'close'.*row 17"):
        read_series(tmp_path / "bad.csv")
    spy.drop(columns="low").to_csv(tmp_path / "nolow.csv", index=False)
    with pytest.raises(InputError, match=r"missing price column\(s\) \['low'\]"):
        read_series(tmp_path / "nolow.csv")
    with pytest.raises(InputError, match="series not found"):
        read_series(bars_folder / "us_equity" / "us_daily_panel.parquet", symbols=["GOOGL", "NOPE"])
    with pytest.raises(InputError, match="unknown forecaster 'persistance'"):
        load_forecaster("persistance")
    with pytest.raises(InputError, match="lookback must be >= 1"):
        RollingConfig(lookback=0, horizon=1, origins=1)


class _RecordingPredictor:
    """Stands in for KronosPredictor: records what the adapter hands it, answers with persistence."""

    max_context = 32
    device = "cpu"

    def __init__(self) -> None:
        self.seen: list[tuple[int, pd.Timestamp, int, int]] = []

    def forecast(self, df, x_timestamp, y_timestamp, pred_len, **kwargs):
        self.seen.append((len(df), pd.Timestamp(x_timestamp.iloc[-1]), pred_len, kwargs["options"].sample_count))
        history = df.assign(timestamps=pd.DatetimeIndex(x_timestamp).to_numpy())
        return Persistence().forecast(history, pd.DatetimeIndex(y_timestamp), 1)


def test_kronos_adapter_gives_the_model_the_last_context_bars(spy):
    from kronos.evaluation.forecasters import KronosForecaster

    config = RollingConfig(lookback=100, horizon=4, origins=2, num_samples=7)
    trimmed, full = _RecordingPredictor(), _RecordingPredictor()
    forecasters = [KronosForecaster(trimmed, "ctx"), KronosForecaster(full, "all", max_history=0)]
    rows = rolling_evaluate({"SPY": spy}, forecasters, config, raise_errors=True).forecasts
    origins = sorted(rows["origin_time"].unique())
    assert [s[:2] for s in trimmed.seen] == [(32, pd.Timestamp(o)) for o in origins]
    assert [s[:2] for s in full.seen] == [(100, pd.Timestamp(o)) for o in origins]
    assert all(s[2:] == (4, 7) for s in trimmed.seen + full.seen)


def test_skip_reasons_tell_short_from_misaligned(shared_data):
    panel = read_series(shared_data / "us_equity" / "sp500_daily_panel.parquet", symbols=["AAPL", "MSFT", "XOM", "JPM"])
    panel["XOM"] = panel["XOM"].iloc[:-10].reset_index(drop=True)  # ends two weeks before the others, long enough
    panel["JPM"] = panel["JPM"].iloc[:50].reset_index(drop=True)
    config = RollingConfig(lookback=60, horizon=5, origins=2, stride=5, align="calendar")
    errors = rolling_evaluate(panel, [Persistence()], config).errors.set_index("series")["error"]
    assert errors["JPM"] == "skipped: too short: 50 bars, lookback 60 + horizon 5 needs 65"
    assert errors["XOM"].startswith("skipped: ends too early: its last usable origin")


def test_the_kronos_cal_label_calibrates_the_checkpoint_it_names(tiny_reference):
    raw = parse_forecaster_spec(f"mine={tiny_reference}").build()
    calibrated = parse_forecaster_spec(f"kronos-cal={tiny_reference}").build()
    assert raw.name == "mine" and raw.calibration is None
    assert calibrated.name == "kronos-cal" and calibrated.calibration is not None
    assert calibrated.predictor.max_context == raw.predictor.max_context


def test_calibration_origins_reach_the_calibrated_forecaster_only(tiny_reference):
    calibrated = parse_forecaster_spec(f"kronos-cal={tiny_reference}", calibration_origins=40).build()
    raw = parse_forecaster_spec(f"mine={tiny_reference}", calibration_origins=40).build()
    assert calibrated.calibration.origins == 40 and raw.calibration is None
    assert parse_forecaster_spec(f"kronos-cal={tiny_reference}").build().calibration.origins == 20  # the default


def test_errors_and_notices_of_kronos_name_the_series_and_origin(spy, tiny_reference):
    """Kronos's messages named an origin by its place in the batch ('series 0: calibrate=True needs ...', '1 of 50
    forecast paths of series 5 fell ...'), which told the user nothing; they now say which series and origin."""
    import warnings

    from kronos.forecasting.notices import ShortHistoryNotice

    calibrated = parse_forecaster_spec(f"kronos-cal={tiny_reference}", calibration_origins=30).build()
    config = RollingConfig(lookback=60, horizon=3, origins=2, num_samples=4)
    errors = rolling_evaluate({"SPY": spy}, [calibrated], config).errors
    assert len(errors) == 2 and (errors["series"] == "SPY").all()
    assert errors["error"].str.startswith("InputError: calibrate=True needs at least").all()  # the row says where
    raw = parse_forecaster_spec(f"mine={tiny_reference}").build()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = rolling_evaluate({"SPY": spy}, [raw], RollingConfig(lookback=40, horizon=3, origins=2, num_samples=4))
    (told,) = [str(w.message) for w in caught if issubclass(w.category, ShortHistoryNotice)]
    origins = sorted(pd.Timestamp(t) for t in rows.forecasts["origin_time"].unique())
    assert told.startswith(f"2 histories are shorter than 64 bars: 'SPY' at {origins[0]} (40 bars), 'SPY' at ")
