"""The HTTP API through the real stack: uvicorn on a loopback port, httpx as the client.

The model is a random tiny checkpoint saved to a temporary directory and loaded back as ``kronos
serve --model DIR`` would load it; answers are compared with the library's own forecast.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")
httpx = pytest.importorskip("httpx", reason="httpx (dev extra) is not installed")

from kronos.bars.closeonly import close_only_bars  # noqa: E402
from kronos.bars.reader import read_bars  # noqa: E402
from kronos.bars.samples import sample_data_path  # noqa: E402
from kronos.forecasting.notices import short_history_text  # noqa: E402
from kronos.forecasting.predictor import KronosPredictor  # noqa: E402
from kronos.server import Limits, ServerSettings, create_app  # noqa: E402
from kronos.server.runner import serve_in_thread  # noqa: E402
from tests.helpers import bars_of  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LIMITS = Limits(min_bars=16, max_bars=700, max_pred_len=64, max_sample_count=300, max_body_bytes=150_000)


@pytest.fixture(scope="module")
def predictor(model_dir) -> KronosPredictor:
    return KronosPredictor.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def server(predictor):
    settings = ServerSettings(limits=LIMITS, batch_window_ms=150, max_batch=16, api_key=None)
    app = create_app(predictor, model_name="tiny-test", settings=settings)
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=120) as client:
        yield client


def test_probes_models_and_docs(server):
    assert server.get("/healthz").json() == {"status": "ok"}
    ready = server.get("/readyz")
    assert ready.status_code == 200 and ready.json()["model"] == "tiny-test"
    (info,) = server.get("/v1/models").json()["models"]
    assert info["name"] == "tiny-test" and len(info["version"]) == 12 and info["parameters"] > 0
    assert server.get("/docs").status_code == 200
    spec = server.get("/openapi.json").json()
    content = spec["paths"]["/v1/forecast"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data"}


def test_forecast_matches_the_library_and_has_the_documented_shape(server, predictor, googl):
    hist = googl.tail(120).reset_index(drop=True)
    body = {
        "bars": bars_of(hist),
        "pred_len": 7,
        "sample_count": 40,
        "seed": 11,
        "T": 0.9,
        "top_p": 0.95,
        "return_paths": True,
    }
    r = server.post("/v1/forecast", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert len(out["timestamps"]) == 7 and pd.Timestamp(out["timestamps"][0]) > hist["timestamps"].iloc[-1]
    assert set(out["mean"]) == {"open", "high", "low", "close", "volume", "amount"}
    assert set(out["quantiles"]) == {"0.1", "0.5", "0.9"}
    lo, mid, hi = (np.array(out["quantiles"][q]["close"]) for q in ("0.1", "0.5", "0.9"))
    assert (lo <= mid).all() and (mid <= hi).all() and (lo < hi).any()
    assert len(out["prob_up"]) == 7 and all(0 <= p <= 1 for p in out["prob_up"])
    assert out["seed"] == 11 and out["sample_count"] == 40 and out["calibrated"] is False
    assert out["model"]["name"] == "tiny-test"
    assert np.array(out["paths"]["close"]).shape == (40, 7)
    # The same forecast from the library, with the same seed: identical numbers.
    future = pd.Series(pd.to_datetime(out["timestamps"]))
    fc = predictor.forecast(hist, hist["timestamps"], future, 7, T=0.9, top_p=0.95, sample_count=40, seed=11)
    np.testing.assert_array_equal(np.array(out["mean"]["close"]), fc.mean()["close"].to_numpy())
    np.testing.assert_array_equal(np.array(out["paths"]["high"]), fc.column("high"))
    np.testing.assert_array_equal(np.array(out["prob_up"]), fc.prob_up().to_numpy())
    np.testing.assert_array_equal(np.array(out["quantiles"]["0.9"]["low"]), fc.quantile(0.9)["low"].to_numpy())
    assert out["bars_used"] == 120 - 0 and out["lookbacks"] == fc.info["lookbacks"]  # the default ensemble's windows
    # paths only when asked for
    assert server.post("/v1/forecast", json=body | {"return_paths": False}).json()["paths"] is None
    # a list is an ensemble of those windows; "auto" one window
    listed = server.post("/v1/forecast", json=body | {"lookback": [32, "auto"]}).json()
    alone = predictor.forecast(
        hist, hist["timestamps"], future, 7, T=0.9, top_p=0.95, sample_count=40, seed=11, lookback=[32, "auto"]
    )
    assert listed["lookbacks"] == alone.info["lookbacks"] and listed["lookbacks"][0] == 32
    np.testing.assert_array_equal(np.array(listed["paths"]["close"]), alone.column("close"))
    single = server.post("/v1/forecast", json=body | {"lookback": "auto"}).json()
    assert single["lookbacks"] is None


def test_calibrated_forecast_and_a_history_too_short_to_calibrate(server, googl):
    body = {"bars": bars_of(googl), "pred_len": 4, "sample_count": 20, "seed": 2, "calibrate": True}
    r = server.post("/v1/forecast", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["calibrated"] is True
    short = server.post("/v1/forecast", json=body | {"bars": bars_of(googl.tail(60))})
    assert short.status_code == 422 and "bars" in short.json()["detail"][0]["msg"]


def test_csv_upload_gives_the_same_answer_as_json(server, googl):
    hist = googl.tail(80)
    common = {"pred_len": 5, "sample_count": 30, "seed": 5}
    as_json = server.post("/v1/forecast", json={"bars": bars_of(hist)} | common | {"quantiles": [0.2, 0.8]})
    csv = hist.to_csv(index=False).encode()
    form = {k: str(v) for k, v in common.items()} | {"quantiles": "0.2,0.8"}
    as_csv = server.post("/v1/forecast", files={"file": ("bars.csv", csv, "text/csv")}, data=form)
    assert as_json.status_code == as_csv.status_code == 200, as_csv.text
    assert as_csv.json() == as_json.json()
    # a form field holds one string: a lookback ensemble is comma-separated there
    listed = server.post("/v1/forecast", json={"bars": bars_of(hist)} | common | {"lookback": [32, "auto"]})
    as_form = server.post(
        "/v1/forecast", files={"file": ("bars.csv", csv, "text/csv")}, data=form | {"lookback": "32,auto"}
    )
    assert as_form.status_code == 200, as_form.text
    assert as_form.json()["mean"] == listed.json()["mean"] and as_form.json()["lookbacks"][0] == 32


def test_concurrent_requests_are_batched_and_each_answer_is_the_one_it_gets_alone(server, googl):
    def request(start: int, seed: int, n: int = 100) -> dict:
        return {"bars": bars_of(googl.iloc[start : start + n]), "pred_len": 6, "sample_count": 25, "seed": seed}

    mine, short = request(200, 42), request(0, 7, n=70)  # the second has a shorter history
    alone = [server.post("/v1/forecast", json=body) for body in (mine, short)]
    assert [r.headers["x-batch-size"] for r in alone] == ["1", "1"]
    # Six others (different histories and seeds) arrive with them.
    others = [request(10 * i, 1000 + i) for i in range(6)]
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(server.post, "/v1/forecast", json=body) for body in [mine, short] + others]
        replies = [f.result() for f in futures]
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies if r.status_code != 200]
    for batched, single in zip(replies[:2], alone):
        assert int(batched.headers["x-batch-size"]) > 1, "the concurrent requests were not batched"
        assert batched.json() == single.json()
    assert len({json.dumps(r.json()["mean"]) for r in replies}) == len(replies)  # different inputs, different answers


def _post_raw(server, text: str):
    return server.post("/v1/forecast", content=text.encode(), headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    "edit, status, field, words",
    [
        (lambda b: b["bars"][5].update(close=float("nan")), 422, "bars", ["close", "NaN", "row 5"]),
        (lambda b: b["bars"][7].update(open=-1.0), 422, "bars", ["open", "non-positive", "row 7"]),
        (lambda b: b["bars"].insert(9, dict(b["bars"][3])), 422, "bars", ["not sorted"]),
        (lambda b: b["bars"].insert(9, dict(b["bars"][8])), 422, "bars", ["duplicate"]),
        (lambda b: b.update(bars=b["bars"][:10]), 422, "bars", ["min_bars=16"]),
        (lambda b: b.update(pred_len=65), 422, "pred_len", ["max_pred_len=64"]),
        (lambda b: b.update(sample_count=301), 422, "sample_count", ["max_sample_count=300"]),
        (lambda b: b.update(pred_len=0), 422, "pred_len", ["greater than or equal to 1"]),
        (lambda b: b.update(quantiles=[0.5, 1.5]), 422, "quantiles", ["1.5"]),
        (lambda b: b.update(top_p=0), 422, "top_p", ["greater than 0"]),
        (lambda b: b["bars"][2].pop("close"), 422, "close", ["required"]),
        (lambda b: b.update(future_timestamps=["2030-01-01"]), 422, "future_timestamps", ["3 are needed"]),
        (
            lambda b: b.update(future_timestamps=[f"2030-01-0{d}T00:00:00Z" for d in (1, 2, 3)]),
            422,
            "future_timestamps",
            ["time zone"],
        ),
        (lambda b: b["bars"][4].update(high=b["bars"][4]["low"] / 2), 422, "bars", ["row 4", "high"]),
        (lambda b: b.update(path="/etc/passwd"), 422, "path", ["not permitted"]),
        (lambda b: b.update(lookback=[64, 0]), 422, "lookback", ["a list of 1 to 8", "[64, 0]"]),
        (lambda b: b.update(lookback="all"), 422, "lookback", ["ensemble"]),
    ],
)
def test_bad_input_is_refused_with_the_field_and_the_reason(server, googl, edit, status, field, words):
    body = {"bars": bars_of(googl.tail(40)), "pred_len": 3, "sample_count": 5}
    edit(body)
    r = _post_raw(server, json.dumps(body))  # json.dumps writes NaN as the literal NaN
    assert r.status_code == status, r.text
    (detail,) = r.json()["detail"][:1]
    assert field in [str(x) for x in detail["loc"]], detail
    for word in words:
        assert word in detail["msg"], detail


def test_size_limits_give_413_naming_the_limit(server, googl):
    eurusd = read_bars(sample_data_path("eurusd"))
    too_many = server.post("/v1/forecast", json={"bars": bars_of(eurusd.head(701)), "pred_len": 3})
    assert too_many.status_code == 413 and "max_bars=700" in too_many.json()["detail"][0]["msg"]
    huge = _post_raw(server, json.dumps({"bars": bars_of(googl.head(600)) * 3, "pred_len": 3}))
    assert huge.status_code == 413 and "max_body_bytes=150000" in huge.json()["detail"][0]["msg"]

    def chunks():  # no Content-Length: the limit is enforced while reading
        yield b'{"bars": ['
        for _ in range(200):
            yield b'{"timestamps": "2020-01-01", "open": 1, "high": 1, "low": 1, "close": 1}, ' * 20

    chunked = server.post("/v1/forecast", content=chunks(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    assert _post_raw(server, "{not json").status_code == 422
    assert server.post("/v1/forecast", content=b"x", headers={"content-type": "text/plain"}).status_code == 415


def test_samples_are_looked_up_by_name_only(server):
    names = [s["name"] for s in server.get("/v1/samples").json()["samples"]]
    assert names == ["googl", "eurusd"]
    assert len(server.get("/v1/samples/eurusd").json()["bars"]) == 1000
    for name in ("..%2F..%2Fpyproject.toml", "GOOGL_daily.csv", "x"):
        assert server.get(f"/v1/samples/{name}").status_code == 404


def test_healthz_answers_while_the_model_works(server, googl):
    body = {"bars": bars_of(googl.tail(200)), "pred_len": 64, "sample_count": 300, "seed": 1}
    done = threading.Event()
    worker = threading.Thread(target=lambda: (server.post("/v1/forecast", json=body), done.set()))
    worker.start()
    time.sleep(0.3)
    started = time.perf_counter()
    assert server.get("/healthz").status_code == 200
    took = time.perf_counter() - started
    busy = not done.is_set()
    worker.join()
    assert busy, "the forecast finished before /healthz was asked; make it longer"
    assert took < 0.5, f"/healthz took {took:.2f} s while the model worked"


def test_api_key_is_required_when_set(predictor, googl):
    app = create_app(predictor, model_name="locked", settings=ServerSettings(limits=LIMITS, api_key="s3cret"))
    body = {"bars": bars_of(googl.tail(30)), "pred_len": 2, "sample_count": 3, "seed": 0}
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/healthz").status_code == 200
        assert client.post("/v1/forecast", json=body).status_code == 401
        assert client.get("/v1/models", headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.post("/v1/forecast", json=body, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert client.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_readyz_waits_for_the_loader(model_dir):
    release = threading.Event()

    threads: list[str] = []

    def loader() -> KronosPredictor:
        release.wait(30)
        threads.append(threading.current_thread().name)
        return KronosPredictor.from_pretrained(model_dir)

    app = create_app(loader=loader, model_name="slow")
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").json()["status"] == "loading" and client.get("/readyz").status_code == 503
        assert client.get("/v1/models").status_code == 503
        release.set()
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/readyz").json() == {"status": "ready", "model": "slow"}
    # loaded on the thread that runs the forecasts: one OpenMP team for the model (MicroBatcher.run_in_worker)
    assert threads and threads[0].startswith("kronos-inference")


def test_close_only_bars_are_built_from_the_closes_with_a_note(server, googl):
    """A JSON body of closes alone is forecast from the bars built from them, as every other door does."""
    hist = googl.iloc[-120:]
    closes = [{"timestamps": t.isoformat(), "close": c} for t, c in zip(hist["timestamps"], hist["close"])]
    built = close_only_bars(hist["close"].to_numpy())
    explicit = [
        {"timestamps": t.isoformat(), "open": o, "high": h, "low": lo, "close": c}
        for t, o, h, lo, c in zip(hist["timestamps"], built["open"], built["high"], built["low"], built["close"])
    ]
    body = {"pred_len": 5, "sample_count": 16, "seed": 3}
    a = server.post("/v1/forecast", json={**body, "bars": closes})
    b = server.post("/v1/forecast", json={**body, "bars": explicit})
    assert a.status_code == 200, a.text
    assert a.json()["mean"] == b.json()["mean"] and a.json()["timestamps"] == b.json()["timestamps"]
    assert any("close-only" in note for note in a.json()["notes"]) and b.json()["notes"] == []

    partial = [dict(bar) for bar in explicit]
    del partial[7]["low"]
    r = server.post("/v1/forecast", json={**body, "bars": partial})
    assert r.status_code == 422 and "bar 7 has no low" in r.text


def test_a_short_history_is_forecast_with_a_note_that_its_intervals_are_too_narrow(server, googl):
    body = {"pred_len": 3, "sample_count": 8, "seed": 1}
    short = server.post("/v1/forecast", json={**body, "bars": bars_of(googl.tail(40))})
    enough = server.post("/v1/forecast", json={**body, "bars": bars_of(googl.tail(64))})
    assert short.status_code == enough.status_code == 200, short.text
    assert short.json()["notes"] == [short_history_text(40)] and "only 40 bars" in short.json()["notes"][0]
    assert enough.json()["notes"] == []


def test_bars_with_utc_offsets_are_read_in_local_time_as_the_python_api_reads_a_zone(server, predictor, googl):
    """Bars sent at +05:30 (an NSE feed) get the forecast of the same local times sent naive, and the answer's times
    carry +05:30; bars across a daylight-saving change are read in the zone their offsets fit. The model's calendar
    features are local times in every door: read as UTC instants they were 03:45 instead of 09:15."""
    hist = googl.tail(120).reset_index(drop=True)
    local = hist.assign(timestamps=hist["timestamps"] + pd.Timedelta(hours=9, minutes=15))
    aware = local.assign(timestamps=local["timestamps"].dt.tz_localize("Asia/Kolkata"))
    body = {"pred_len": 4, "sample_count": 8, "seed": 5, "calendar": "own"}
    naive = server.post("/v1/forecast", json={**body, "bars": bars_of(local)}).json()
    offset = server.post("/v1/forecast", json={**body, "bars": bars_of(aware)})
    assert offset.status_code == 200, offset.text
    got = offset.json()
    assert all(t.endswith("+05:30") for t in got["timestamps"])
    assert [t[:19] for t in got["timestamps"]] == [t[:19] for t in naive["timestamps"]]
    assert got["mean"] == naive["mean"]
    future = pd.DatetimeIndex(pd.to_datetime(got["timestamps"])).tz_convert("Asia/Kolkata")
    fc = predictor.forecast(aware, aware["timestamps"], future, 4, sample_count=8, seed=5)
    np.testing.assert_allclose(fc.mean()["close"], got["mean"]["close"], rtol=1e-9)
    # offsets that differ (a daylight-saving change) are read in the zone they fit, as a CSV of them is
    longer = googl.tail(200).reset_index(drop=True)  # November to August: EST and EDT
    wall = longer.assign(timestamps=longer["timestamps"] + pd.Timedelta(hours=16))
    mixed = wall.assign(timestamps=wall["timestamps"].dt.tz_localize("America/New_York"))
    sent = bars_of(mixed)
    assert sent[0]["timestamps"][19:] == "-05:00" and sent[-1]["timestamps"][19:] == "-04:00"
    zoned = server.post("/v1/forecast", json={**body, "bars": sent}).json()
    assert any("read in America/New_York" in note for note in zoned["notes"])
    assert {t[19:] for t in zoned["timestamps"]} == {"-04:00"}
    plain = server.post("/v1/forecast", json={**body, "bars": bars_of(wall)}).json()
    assert zoned["mean"] == plain["mean"] and [t[:19] for t in zoned["timestamps"]] == plain["timestamps"]


def test_an_unadjusted_split_is_undone_and_reported(server, googl):
    """Bars sent with a 2-for-1 split left in them get the adjusted series' forecast, the split listed and a note;
    ``splits: false`` (JSON or form) reads them as sent."""
    hist = googl.tail(120).reset_index(drop=True)
    raw = hist.copy()
    raw.loc[:99, ["open", "high", "low", "close"]] *= 2
    raw.loc[:99, "volume"] /= 2
    body = {"pred_len": 5, "sample_count": 16, "seed": 4}
    got = server.post("/v1/forecast", json={**body, "bars": bars_of(raw)})
    clean = server.post("/v1/forecast", json={**body, "bars": bars_of(hist)})
    assert got.status_code == clean.status_code == 200, got.text
    out = got.json()
    assert [(s["row"], s["ratio"], s["time"][:10]) for s in out["splits"]] == [
        (100, "2:1", str(hist["timestamps"][100].date()))
    ]
    assert any("unadjusted share split (2:1 at row 100 (" in note for note in out["notes"])
    assert clean.json()["notes"] == []
    np.testing.assert_allclose(out["mean"]["close"], clean.json()["mean"]["close"], rtol=1e-9)
    kept = server.post("/v1/forecast", json={**body, "bars": bars_of(raw), "splits": False}).json()
    assert kept["splits"] == [] and kept["mean"]["close"] != out["mean"]["close"]
    csv = raw.to_csv(index=False).encode()
    form = {k: str(v) for k, v in body.items()} | {"splits": "false"}
    as_form = server.post("/v1/forecast", files={"file": ("bars.csv", csv, "text/csv")}, data=form)
    assert as_form.status_code == 200, as_form.text
    assert as_form.json()["splits"] == [] and as_form.json()["mean"] == kept["mean"]


def test_anchor_false_gives_the_original_paths_json_and_form(server, googl):
    """The paths start from the last bar sent; ``anchor: false`` continues them from its reconstruction, shifting every
    quantile and the mean of the close by one amount, as the library's ``anchor=False`` does."""
    hist = googl.tail(120).reset_index(drop=True)
    body = {"pred_len": 4, "sample_count": 8, "seed": 5, "bars": bars_of(hist)}
    anchored = server.post("/v1/forecast", json=body).json()
    original = server.post("/v1/forecast", json={**body, "anchor": False}).json()
    shift = np.subtract(anchored["mean"]["close"], original["mean"]["close"])
    assert abs(shift[0]) > 1e-6 * hist["close"].iloc[-1] and np.ptp(shift) < 1e-6 * hist["close"].iloc[-1]
    form = {k: str(v) for k, v in body.items() if k != "bars"} | {"anchor": "false"}
    csv = hist.to_csv(index=False).encode()
    as_form = server.post("/v1/forecast", files={"file": ("bars.csv", csv, "text/csv")}, data=form)
    assert as_form.status_code == 200, as_form.text
    np.testing.assert_allclose(as_form.json()["mean"]["close"], original["mean"]["close"], rtol=1e-9)
