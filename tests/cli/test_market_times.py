"""The same future times through every door: ``kronos forecast``, ``forecast_df`` and the HTTP API (JSON and upload)
all call :func:`kronos.bars.calendars.market_times`, checked on generated markets and on real series."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import kronos.cli.commands  # noqa: F401  (registers the commands)
from kronos.bars.calendars import future_timestamps
from kronos.cli import app
from kronos.core.errors import InputError
from kronos.forecasting.panel import forecast_df
from kronos.server import Limits, ServerSettings, create_app
from tests.bars.schedules import specs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

runner = CliRunner()
LIMITS = Limits(min_bars=16, max_bars=6000, max_pred_len=64, max_sample_count=10, max_body_bytes=5_000_000)


def _bars(stamps: pd.DatetimeIndex) -> pd.DataFrame:
    """Real GOOGL prices (cycled) on the generated times: the doors need valid bars, the times are the test."""
    from kronos.bars.samples import load_sample

    prices = load_sample("googl")[["open", "high", "low", "close", "volume"]]
    reps = -(-len(stamps) // len(prices))
    frame = pd.concat([prices] * reps, ignore_index=True).iloc[: len(stamps)].reset_index(drop=True)
    return frame.assign(timestamps=stamps).loc[:, ["timestamps", "open", "high", "low", "close", "volume"]]


@pytest.fixture(scope="module")
def client(tiny_predictor):
    with TestClient(create_app(tiny_predictor, settings=ServerSettings(limits=LIMITS, api_key=None))) as c:
        yield c


def _doors(bars: pd.DataFrame, pred_len: int, calendar: str, client, predictor, tiny_reference, tmp_path) -> dict:
    """The future times each door gives for ``bars``."""
    got = {"library": list(future_timestamps(bars["timestamps"], pred_len, calendar=calendar))}
    frame = forecast_df(predictor, bars, pred_len, sample_count=1, calendar=calendar)
    got["forecast_df"] = list(frame["timestamps"])
    body = bars.assign(timestamps=bars["timestamps"].map(lambda t: t.isoformat())).to_dict("records")
    answer = client.post(
        "/v1/forecast", json={"bars": body, "pred_len": pred_len, "sample_count": 1, "calendar": calendar}
    )
    assert answer.status_code == 200, answer.text
    tz = bars["timestamps"].dt.tz
    got["api"] = list(
        pd.DatetimeIndex(pd.to_datetime(answer.json()["timestamps"])).tz_convert(tz)
        if tz
        else pd.to_datetime(answer.json()["timestamps"])
    )
    if tz is None:  # a CSV carries naive times as written
        csv = bars.to_csv(index=False).encode()
        form = {"pred_len": str(pred_len), "sample_count": "1", "calendar": calendar}
        upload = client.post("/v1/forecast", files={"file": ("bars.csv", io.BytesIO(csv), "text/csv")}, data=form)
        assert upload.status_code == 200, upload.text
        got["upload"] = list(pd.to_datetime(upload.json()["timestamps"]))
        path, out = tmp_path / "bars.parquet", tmp_path / "f.parquet"
        bars.to_parquet(path, index=False)
        args = ["forecast", "--data", str(path), "--model", str(tiny_reference), "--max-context", "32"]
        result = runner.invoke(
            app, [*args, "--pred-len", str(pred_len), "--samples", "1", "--calendar", calendar, "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
        got["cli"] = list(pd.read_parquet(out)["timestamps"])
    return got


@pytest.mark.slow
@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(market=specs(), pred_len=st.integers(1, 12))
def test_every_door_gives_the_same_future_times_on_generated_markets(
    market, pred_len, client, tiny_predictor, tiny_reference, tmp_path
):
    spec, end = market
    bars = _bars(spec.stamps(spec.wall_history(end))[-5000:])
    got = _doors(bars, pred_len, "own", client, tiny_predictor, tiny_reference, tmp_path)
    reference = got.pop("library")
    assert spec.contains(pd.DatetimeIndex(reference)).all()
    for door, times in got.items():
        assert times == reference, door


@pytest.mark.slow
def test_every_door_picks_the_same_exchange_for_auto_on_a_real_series(
    sp500_bars, client, tiny_predictor, tiny_reference, tmp_path
):
    bars = sp500_bars[sp500_bars["timestamps"] <= "2017-12-22"].tail(600).reset_index(drop=True)
    got = _doors(bars, 6, "auto", client, tiny_predictor, tiny_reference, tmp_path)
    reference = got.pop("library")
    # Friday 22 Dec 2017 -> Christmas (Mon) and New Year's Day are skipped: the NYSE calendar was chosen
    assert [t.strftime("%m-%d") for t in reference] == ["12-26", "12-27", "12-28", "12-29", "01-02", "01-03"]
    for door, times in got.items():
        assert times == reference, door


def test_the_demo_skips_us_holidays_without_flags():
    result = runner.invoke(app, ["demo", "--random-tiny", "--samples", "2", "--pred-len", "20"])
    assert result.exit_code == 0, result.output
    # GOOGL daily ends Wednesday 2018-08-29; Monday 3 September 2018 was Labor Day
    assert "2018-08-31" in result.output and "2018-09-04" in result.output
    assert "2018-09-03" not in result.output and "2018-09-01" not in result.output


def test_a_history_near_2262_is_one_error_line_in_the_cli_and_a_422_in_the_api(googl_bars, client, tmp_path):
    weeks = (pd.Timestamp("2262-03-20") - googl_bars["timestamps"].iloc[-1]).days // 7
    bars = googl_bars.assign(timestamps=googl_bars["timestamps"] + pd.Timedelta(weeks=weeks)).tail(300)
    bars.to_csv(tmp_path / "late.csv", index=False)
    result = runner.invoke(app, ["forecast", "--data", str(tmp_path / "late.csv"), "--random-tiny", "--pred-len", "40"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "2262-04-11" in errors[0]
    body = bars.assign(timestamps=bars["timestamps"].map(lambda t: t.isoformat())).to_dict("records")
    answer = client.post("/v1/forecast", json={"bars": body, "pred_len": 40, "sample_count": 1})
    assert answer.status_code == 422 and "2262-04-11" in answer.json()["detail"][0]["msg"]


def test_aware_history_and_naive_future_times_are_refused_by_name(googl_bars, tiny_predictor):
    aware = googl_bars.assign(timestamps=googl_bars["timestamps"].dt.tz_localize("America/New_York"))
    future = pd.bdate_range("2018-08-30", periods=3)
    with pytest.raises(InputError, match=r"the history has a time zone \(America/New_York\) but the future timestamps"):
        forecast_df(tiny_predictor, aware, 3, sample_count=1, future_timestamps=future)


@pytest.mark.parametrize(
    ("dates", "ok"),
    [(["05/01/2024", "06/01/2024", "07/01/2024"], False), (["12/01/2024", "13/01/2024", "14/01/2024"], True)],
)
def test_day_first_dates_are_read_when_unambiguous_and_refused_by_name_when_not(googl_bars, tmp_path, dates, ok):
    n = len(dates)
    frame = googl_bars.head(n).assign(timestamps=dates)
    frame.to_csv(tmp_path / "d.csv", index=False)
    from kronos.bars.reader import read_bars

    if ok:
        assert list(read_bars(tmp_path / "d.csv")["timestamps"].dt.day) == [12, 13, 14]
    else:
        result = runner.invoke(app, ["forecast", "--data", str(tmp_path / "d.csv"), "--random-tiny", "--pred-len", "2"])
        assert result.exit_code == 2 and "'05/01/2024' read either day-first or month-first" in result.output
        assert "ISO 8601" in result.output


@pytest.mark.slow
def test_forecast_dist_and_the_api_use_the_whole_history_of_an_nse_series(shared_data, client, tmp_path):
    # the case: the tail (3.4 days) gave Tuesday 12:55 after a Friday 15:25 close; the whole history: Monday
    frame = pd.read_parquet(shared_data / "in_equity" / "TATASTEEL_5min.parquet")
    frame = frame[frame["timestamps"] <= "2024-06-28 15:25"].tail(4000).reset_index(drop=True)
    frame.to_parquet(tmp_path / "nse.parquet", index=False)
    expected = future_timestamps(frame["timestamps"], 12)
    assert expected[0] == pd.Timestamp("2024-07-01 09:15")
    args = [
        "forecast-dist",
        "--data",
        str(tmp_path / "nse.parquet"),
        "--random-tiny",
        "--no-calibrate",
        "--samples",
        "2",
    ]
    result = runner.invoke(app, [*args, "--pred-len", "12", "--csv", str(tmp_path / "q.csv")])
    assert result.exit_code == 0, result.output
    assert list(pd.read_csv(tmp_path / "q.csv", parse_dates=["timestamps"])["timestamps"]) == list(expected)
    body = frame.assign(timestamps=frame["timestamps"].map(lambda t: t.isoformat())).to_dict("records")
    answer = client.post("/v1/forecast", json={"bars": body, "pred_len": 12, "sample_count": 1})
    assert list(pd.to_datetime(answer.json()["timestamps"])) == list(expected)


def test_the_api_names_the_calendar_it_used_and_refuses_an_unknown_one(googl_bars, client):
    body = googl_bars.tail(200).assign(timestamps=lambda f: f["timestamps"].map(lambda t: t.isoformat()))
    request = {"bars": body.to_dict("records"), "pred_len": 3, "sample_count": 1}
    assert client.post("/v1/forecast", json={**request, "calendar": "own"}).json()["calendar"] is None
    named = client.post("/v1/forecast", json={**request, "calendar": "XNYS"}).json()
    assert named["calendar"] == "XNYS" and named["timestamps"][0].startswith("2018-08-30")
    refused = client.post("/v1/forecast", json={**request, "calendar": "NOPE"})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "calendar"]
    assert "unknown exchange calendar 'NOPE'" in refused.json()["detail"][0]["msg"]
