"""The prepared series: one window per forecast, chosen once, normalised on exactly the bars the model sees.

A user passes a whole history first. Through every door (``forecast``, ``forecast_batch``, ``forecast_df``,
the CLI and the HTTP API) the default ``lookback="auto"`` must give the same forecast as the last
``max_context - pred_len`` bars alone; every returned bar must be a bar that can exist; and the forecast must
not depend on the units of the prices.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kronos.bars.calendars import future_timestamps
from kronos.bars.samples import load_sample
from kronos.cli import (
    app,
    commands,  # noqa: F401  (registers the commands)
)
from kronos.core.errors import InputError
from kronos.forecasting.calibration import CalibrationOptions
from kronos.forecasting.loading import random_tiny_predictor
from kronos.forecasting.notices import CollapsedPathsNotice, ShortHistoryNotice
from kronos.forecasting.predictor import KronosPredictor
from kronos.forecasting.prepared import (
    MIN_AUTO_LOOKBACK,
    PRICE_FLOOR,
    parse_lookback,
    repair_bars,
    resolve_lookback,
)
from kronos.inference.options import derive_seed

PRED_LEN = 6
PRICES = ["open", "high", "low", "close"]


@pytest.fixture(scope="module")
def random_tiny(model_dir) -> KronosPredictor:
    return KronosPredictor.from_pretrained(model_dir)  # max_context 256


@pytest.fixture(scope="module")
def googl() -> pd.DataFrame:
    return load_sample("googl")  # 600 daily bars: longer than the context


def _future(df: pd.DataFrame, n: int = PRED_LEN) -> pd.Series:
    return future_timestamps(df["timestamps"], n).rename(None)


def _tail(df: pd.DataFrame, n: int) -> pd.DataFrame:
    return df.tail(n).reset_index(drop=True)


def assert_consistent(paths: np.ndarray) -> None:
    o, h, lo, c = (paths[..., i] for i in range(4))
    assert (lo <= np.minimum(o, c)).all() and (np.maximum(o, c) <= h).all()
    assert (paths[..., :4] > 0).all() and (paths[..., 4:] >= 0).all()


def test_auto_lookback_fits_the_forecast_into_the_context():
    assert resolve_lookback("auto", 256, 20) == 236
    assert resolve_lookback("AUTO", 512, 120) == 392
    assert resolve_lookback("auto", 256, 250) == MIN_AUTO_LOOKBACK  # never below the documented minimum
    assert resolve_lookback(None, 256, 20) is None and resolve_lookback(100, 256, 20) == 100
    for bad in ("all", 0, -3, 2.5):
        with pytest.raises(InputError, match="lookback"):
            resolve_lookback(bad, 256, 20)


def test_one_lookback_grammar_for_the_cli_and_the_http_api():
    # what a user types (--lookback, a form field) and what a JSON body holds, read by the same function
    assert parse_lookback(" Ensemble ") == "ensemble" and parse_lookback("AUTO") == "auto"
    assert parse_lookback("100") == 100 and parse_lookback(100) == 100
    assert parse_lookback("64, auto") == [64, "auto"] and parse_lookback([64, "Auto"]) == [64, "auto"]
    assert parse_lookback([64]) == [64]  # a list stays an ensemble, even of one window
    for bad in (True, 0, "0", "-5", 2.5, "64,", "all", None, [], [True], [1] * 9, ["ensemble"]):
        with pytest.raises(InputError, match=r"lookback must be .* got "):
            parse_lookback(bad)


def test_full_history_and_its_tail_give_the_same_forecast_through_the_python_doors(random_tiny, googl):
    window = random_tiny.max_context - PRED_LEN
    tail = _tail(googl, window)
    fut = _future(googl)
    full = random_tiny.forecast(googl, googl["timestamps"], fut, PRED_LEN, sample_count=8, seed=4)
    alone = random_tiny.forecast(tail, tail["timestamps"], fut, PRED_LEN, sample_count=8, seed=4)
    np.testing.assert_array_equal(full.paths, alone.paths)
    assert full.info["bars_used"] == window and full.info["bars_given"] == len(googl)
    assert len(full.history) == window and full.history.index[-1] == googl["timestamps"].iloc[-1]

    batch = random_tiny.forecast_batch(
        [googl, tail], [googl["timestamps"], tail["timestamps"]], [fut, fut], PRED_LEN, sample_count=8, seeds=[4, 4]
    )
    np.testing.assert_array_equal(batch[0].paths, batch[1].paths)
    np.testing.assert_array_equal(batch[0].paths, full.paths)

    panel = pd.concat([googl.assign(symbol="A"), tail.assign(symbol="B")], ignore_index=True)
    long = random_tiny.forecast_df(panel, PRED_LEN, sample_count=8, seed=1)
    a, b = (long[long["symbol"] == s].drop(columns="symbol").reset_index(drop=True) for s in ("A", "B"))
    assert len(a) == PRED_LEN
    # the panel seeds each series from its id, so compare each series with its tail alone
    alone_b = random_tiny.forecast_df(tail.assign(symbol="B"), PRED_LEN, sample_count=8, seed=1)
    pd.testing.assert_frame_equal(b, alone_b.drop(columns="symbol").reset_index(drop=True))
    alone_a = random_tiny.forecast_df(_tail(googl, window).assign(symbol="A"), PRED_LEN, sample_count=8, seed=1)
    pd.testing.assert_frame_equal(a, alone_a.drop(columns="symbol").reset_index(drop=True))


def test_lookback_none_keeps_every_bar_and_an_int_takes_that_many(random_tiny, googl):
    fut = _future(googl)
    every = random_tiny.forecast(googl, googl["timestamps"], fut, PRED_LEN, sample_count=4, seed=2, lookback=None)
    assert every.info["bars_used"] == len(googl)
    some = random_tiny.forecast(googl, googl["timestamps"], fut, PRED_LEN, sample_count=4, seed=2, lookback=100)
    assert some.info["bars_used"] == 100 and len(some.history) == 100


def test_a_lookback_ensemble_pools_the_paths_of_each_window(random_tiny, googl):
    fut = _future(googl)

    def forecast(**kw):
        return random_tiny.forecast(googl, googl["timestamps"], fut, PRED_LEN, **kw)

    ens = forecast(sample_count=10, seed=3, lookback=[64, "auto"])
    window = random_tiny.max_context - PRED_LEN
    assert ens.n_paths == 10 and ens.info["lookbacks"] == [64, window] and ens.info["sample_count"] == 10
    assert ens.info["bars_used"] == window and len(ens.history) == window
    assert_consistent(ens.paths)
    # path p is window p mod 2's: each window forecasts from its own bars (own normaliser) with a seed derived from
    # the series' seed, all windows in one batch
    for j, window_j in enumerate([64, "auto"]):
        alone = forecast(sample_count=5, seed=derive_seed(3, f"lookback member {j}"), lookback=window_j)
        np.testing.assert_allclose(ens.paths[j::2], alone.paths, rtol=1e-5)
    np.testing.assert_array_equal(forecast(sample_count=10, seed=3, lookback=[64, "auto"]).paths, ens.paths)
    # a slice of the paths (the server runs large requests in slices) is that slice of the whole call
    part = forecast(sample_count=5, seed=3, lookback=[64, "auto"], first_path=3)
    np.testing.assert_allclose(part.paths, ens.paths[3:8], rtol=1e-5)
    tail = _tail(googl, 300)
    batch = random_tiny.forecast_batch(
        [tail, googl], [tail["timestamps"], googl["timestamps"]], [fut, fut], PRED_LEN,
        sample_count=10, seeds=[9, 3], lookback=[64, "auto"],
    )  # fmt: skip
    np.testing.assert_allclose(batch[1].paths, ens.paths, rtol=1e-5)  # alone or batched: the same paths
    # the default is the ensemble of windows auto, 128 and 64 bars; one path is the auto window's
    default = forecast(sample_count=6, seed=3)
    assert default.info["lookbacks"] == [window, 128, 64]
    one = forecast(sample_count=1, seed=3)
    assert one.info["lookbacks"] == [window]
    # calibrated as a whole: every origin is forecast by the same ensemble
    cal = forecast(sample_count=6, seed=3, calibrate=CalibrationOptions(origins=9, lookback=100))
    assert cal.is_calibrated and cal.info["lookbacks"] == [100, 100, 64]
    with pytest.raises(InputError, match="fewer than the 3 lookbacks"):
        forecast(sample_count=2, lookback=[32, 64, "auto"])
    with pytest.raises(InputError, match="lookback"):
        forecast(sample_count=4, lookback=[64, "all"])


def test_the_cli_forecast_of_a_long_file_equals_that_of_its_tail(model_dir, googl, tmp_path):
    runner = CliRunner()
    window = 256 - PRED_LEN
    (tmp_path / "full").mkdir()
    (tmp_path / "tail").mkdir()
    full, tail = tmp_path / "full" / "bars.csv", tmp_path / "tail" / "bars.csv"  # one name: the series' id and seed
    googl.to_csv(full, index=False)
    _tail(googl, window).to_csv(tail, index=False)
    outs = []
    for data in (full, tail):
        out = tmp_path / f"out-{data.parent.name}.csv"
        args = ["forecast", "--data", str(data), "--model", str(model_dir), "--pred-len", str(PRED_LEN)]
        result = runner.invoke(app, [*args, "--samples", "8", "--out", str(out)])
        assert result.exit_code == 0, result.output
        outs.append(pd.read_csv(out).drop(columns="symbol"))
    pd.testing.assert_frame_equal(outs[0], outs[1])


def test_the_http_api_forecast_of_a_long_history_equals_that_of_its_tail(random_tiny, googl):
    pytest.importorskip("fastapi", reason="the server extra is not installed")
    httpx = pytest.importorskip("httpx", reason="httpx (dev extra) is not installed")
    from kronos.server import Limits, ServerSettings, create_app
    from kronos.server.runner import serve_in_thread

    limits = Limits(min_bars=16, max_bars=700, max_pred_len=64, max_sample_count=300, max_body_bytes=200_000)
    app_ = create_app(random_tiny, model_name="t", settings=ServerSettings(limits=limits, api_key=None))

    def bars(df: pd.DataFrame) -> list[dict]:
        out = df[["timestamps", *PRICES, "volume"]].copy()
        out["timestamps"] = out["timestamps"].map(lambda t: t.isoformat())
        return out.to_dict("records")

    body = {"pred_len": PRED_LEN, "sample_count": 8, "seed": 5}
    with serve_in_thread(app_) as url, httpx.Client(base_url=url, timeout=120) as client:
        full = client.post("/v1/forecast", json={**body, "bars": bars(googl)}).json()
        tail = client.post("/v1/forecast", json={**body, "bars": bars(_tail(googl, 256 - PRED_LEN))}).json()
    assert full["bars_used"] == tail["bars_used"] == 256 - PRED_LEN
    assert full["quantiles"] == tail["quantiles"] and full["mean"] == tail["mean"]


@pytest.mark.parametrize("sample", ["googl", "eurusd"])
def test_shipped_model_bars_are_consistent_on_real_series(sample):
    predictor = KronosPredictor.from_pretrained("kronos-open")
    df = load_sample(sample)
    fc = predictor.forecast(df, df["timestamps"], _future(df, 12), 12, sample_count=40, seed=0)
    assert_consistent(fc.paths)
    assert 0.0 <= fc.info["repaired_bars"] < 1.0
    mean = fc.mean()
    assert (mean["low"] <= mean[["open", "close"]].min(axis=1)).all()
    assert (mean["high"] >= mean[["open", "close"]].max(axis=1)).all()


def test_bars_are_consistent_on_adversarial_series(random_tiny, googl):
    # a random model samples arbitrary bars; the history jumps by 50x and back, with zero volumes
    df = _tail(googl, 200).copy()
    df.loc[100:120, PRICES] *= 50.0
    df.loc[130:150, "volume"] = 0.0
    with pytest.warns(CollapsedPathsNotice):  # a 50x jump: mean - 5 std of the window is below zero
        fc = random_tiny.forecast(df, df["timestamps"], _future(df), PRED_LEN, sample_count=64, seed=3)
    assert_consistent(fc.paths)
    assert fc.info["repaired_bars"] > 0  # the random model's bars needed it, and the share says so
    calibrated = random_tiny.forecast(
        _tail(googl, 600), googl["timestamps"], _future(googl), PRED_LEN, sample_count=16, seed=3, calibrate=True
    )
    assert_consistent(calibrated.paths)


def test_forecast_prices_stay_positive_after_a_crash_in_the_window(random_tiny, googl):
    """A window that fell by 95% has a standard deviation over a fifth of its mean, so ``mean + z std`` is negative
    for z near the clip (-5): such prices are floored at PRICE_FLOOR of the last close, and counted as repaired."""
    df = _tail(googl, 200).reset_index(drop=True)
    fall = np.geomspace(1.0, 0.05, len(df))[:, None]
    df[PRICES] = df[PRICES].to_numpy() * fall
    with pytest.warns(CollapsedPathsNotice, match=r"of 64 forecast paths fell to the price floor"):
        fc = random_tiny.forecast(df, df["timestamps"], _future(df), PRED_LEN, sample_count=64, seed=3, lookback="auto")
    assert_consistent(fc.paths)
    lowest = fc.paths[..., :4].min()
    assert lowest == pytest.approx(PRICE_FLOOR * fc.last_close), lowest  # the floor was reached: raw prices <= 0
    floored = (fc.paths[..., :4] == lowest).any(axis=-1)
    assert 0 < floored.mean() <= fc.info["repaired_bars"]
    assert fc.info["floored_paths"] == floored.any(axis=-1).mean() > 0  # the collapsed paths are reported
    assert np.isfinite(np.log(fc.column("close"))).all()
    for lookback in ("ensemble", "auto"):  # an ordinary window: nothing collapses, nothing announced
        with warnings.catch_warnings():
            warnings.simplefilter("error", CollapsedPathsNotice)
            plain = random_tiny.forecast(
                googl, googl["timestamps"], _future(googl), PRED_LEN, sample_count=8, seed=3, lookback=lookback
            )
        assert plain.info["floored_paths"] == 0.0, lookback


def test_collapsed_paths_of_calibration_origins_are_told_as_the_calibrations(googl):
    """Calibration forecasts origins inside the history; their collapsed paths are not the user's forecast paths
    (nor their ``series k`` the user's series): one notice says the calibration met them."""
    df = _tail(googl, 400)
    df[PRICES] = df[PRICES].to_numpy() * np.geomspace(1.0, 0.001, len(df))[:, None]
    predictor = random_tiny_predictor(seed=0)  # its paths on such a fall reach the floor
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictor.forecast(
            df,
            df["timestamps"],
            _future(df),
            PRED_LEN,
            sample_count=16,
            seed=3,
            calibrate=CalibrationOptions(origins=9, lookback=100),
        )
    told = [str(w.message) for w in caught if issubclass(w.category, CollapsedPathsNotice)]
    assert any("of the calibration origins' forecasts had paths that fell" in t for t in told), told
    assert not any("series " in t for t in told), told


def test_shipped_model_prices_stay_positive_on_ge_2009(shared_data):
    """The real case: GE's daily bars up to 18 Aug 2009 (a 251-bar window holding the 2008-09 crash), where one
    path of the default lookback ensemble fell below zero before prices were floored."""
    frame = pd.read_parquet(next(shared_data.rglob("GE_daily.parquet")))
    end = int(np.flatnonzero(frame["timestamps"] == pd.Timestamp("2009-08-18"))[0])
    hist = frame.iloc[end - 511 : end + 1].reset_index(drop=True)
    future = frame["timestamps"].iloc[end + 1 : end + 6].reset_index(drop=True)
    predictor = KronosPredictor.from_pretrained("kronos-open")
    with pytest.warns(CollapsedPathsNotice, match="1 of 51 forecast paths"):
        fc = predictor.forecast(hist, hist["timestamps"], future, 5, sample_count=51, seed=7)
    assert_consistent(fc.paths)
    assert np.isfinite(np.log(fc.column("close"))).all() and fc.returns("close").min() > -1.0
    assert 0 < fc.info["floored_paths"] < 0.1  # the collapsed path is reported (one of 51)


def test_repair_bars_moves_only_high_low_and_negative_volumes():
    bars = np.array(
        [
            [10.0, 12.0, 9.0, 11.0, 5.0, 50.0],  # valid: untouched
            [10.0, 9.5, 10.5, 11.0, -1.0, 3.0],  # high below both, low above both, negative volume
            [10.0, 10.5, 8.0, 11.0, 2.0, -4.0],  # high below close, negative amount
        ]
    )
    fixed, share = repair_bars(bars)
    np.testing.assert_array_equal(fixed[0], bars[0])
    np.testing.assert_array_equal(fixed[1], [10.0, 11.0, 10.0, 11.0, 0.0, 3.0])
    np.testing.assert_array_equal(fixed[2], [10.0, 11.0, 8.0, 11.0, 2.0, 0.0])
    assert share == pytest.approx(2 / 3)
    np.testing.assert_array_equal(fixed[:, [0, 3]], bars[:, [0, 3]])


@pytest.mark.parametrize("k", [1e-30, 1e-24, 1e-12, 1e12, 1e24, 1e30])
def test_forecasts_are_the_same_up_to_the_scale_from_1e_minus_30_to_1e30(random_tiny, k):
    df = _tail(load_sample("eurusd"), 200)
    df["volume"] = df["volume"] / 1e6  # the derived amount (volume x price) stays within float32 at 1e30
    fut = _future(df)
    base = random_tiny.forecast(df, df["timestamps"], fut, PRED_LEN, sample_count=8, seed=6).paths
    scaled = df.assign(**{c: df[c] * k for c in PRICES})
    out = random_tiny.forecast(scaled, scaled["timestamps"], fut, PRED_LEN, sample_count=8, seed=6).paths
    np.testing.assert_allclose(out[..., :4], k * base[..., :4], rtol=1e-3)
    np.testing.assert_allclose(out[..., 4], base[..., 4], rtol=1e-3)


def test_prices_below_the_floor_are_refused_by_name(random_tiny):
    df = _tail(load_sample("eurusd"), 100)
    df[PRICES] = df[PRICES] * 1e-31
    with pytest.raises(InputError, match=r"column 'open' .* below the price floor 1e-30"):
        random_tiny.forecast(df, df["timestamps"], _future(df), PRED_LEN, sample_count=2, seed=0)


@pytest.mark.parametrize(
    "lookback,calibrate",
    [("ensemble", False), ("auto", False), (100, False), ("ensemble", True), ("auto", True)],
)
def test_a_bad_bar_is_named_by_its_row_in_the_users_frame_not_in_the_window(random_tiny, googl, lookback, calibrate):
    # the window is the history's last bars; an error that counted rows from the window's start named row 250 of a
    # 600-bar frame for a bad bar at row 590, sending the user to the wrong line
    df = googl.copy()
    df.loc[590, "high"] = df.loc[590, "low"] * 0.99
    with pytest.raises(InputError, match=r"invalid bar at row 590 \(index 590\): high .* is below low"):
        random_tiny.forecast(
            df, df["timestamps"], _future(df), PRED_LEN, sample_count=4, seed=0, lookback=lookback, calibrate=calibrate
        )


def test_a_short_history_is_forecast_with_a_notice_naming_the_series(random_tiny, googl):
    short = _tail(googl, 40)
    wording = r"^the history has only 40 bars: .* fewer than 64 bars is overconfident"
    with pytest.warns(ShortHistoryNotice, match=wording):
        fc = random_tiny.forecast(short, short["timestamps"], _future(short), PRED_LEN, sample_count=4, seed=0)
    assert fc.info["bars_given"] == 40
    enough = _tail(googl, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ShortHistoryNotice)
        random_tiny.forecast(enough, enough["timestamps"], _future(enough), PRED_LEN, sample_count=4, seed=0)
    panel = pd.concat([googl.tail(30).assign(symbol="NEW"), googl.tail(100).assign(symbol="OLD")])
    told = _short_notices(random_tiny, panel)
    assert len(told) == 1 and told[0].startswith("series 'NEW' has only 30 bars")
    # several short series: one notice that counts them and names the first few
    sizes = {"A": 30, "B": 40, "C": 100, "D": 20, "E": 50}
    panel = pd.concat([googl.tail(n).assign(symbol=s) for s, n in sizes.items()])
    (told,) = _short_notices(random_tiny, panel)
    assert told.startswith("4 histories are shorter than 64 bars: series 'A' (30 bars), series 'B' (40 bars), series")
    assert "and 1 more" in told


def _short_notices(predictor, panel: pd.DataFrame) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictor.forecast_df(panel, PRED_LEN, sample_count=4)
    return [str(w.message) for w in caught if issubclass(w.category, ShortHistoryNotice)]


def test_predict_keeps_the_original_numbers_but_warns_on_a_history_longer_than_the_context(random_tiny, googl):
    fut = _future(googl)
    with pytest.warns(UserWarning, match=r"normalises all 600 history bars.*last 256"):
        random_tiny.predict(googl, googl["timestamps"], fut, PRED_LEN, sample_count=1, seed=0, verbose=False)
    short = _tail(googl, 200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        random_tiny.predict(short, short["timestamps"], fut, PRED_LEN, sample_count=1, seed=0, verbose=False)
