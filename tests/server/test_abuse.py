"""The server under abuse: cost budgets, slices that take turns, cancellation, time limits, strict bodies.

A random tiny checkpoint over real HTTP (uvicorn on a loopback port). The budgets are priced with a tiny
``work_rate`` so that the tiny model's requests cost seconds on paper; what is checked is the server's
behaviour, not the machine's speed.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")
httpx = pytest.importorskip("httpx", reason="httpx (dev extra) is not installed")

from kronos.forecasting.predictor import KronosPredictor  # noqa: E402
from kronos.server import Limits, ServerSettings, create_app  # noqa: E402
from kronos.server.runner import serve_in_thread  # noqa: E402
from tests.helpers import bars_of  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def predictor(model_dir) -> KronosPredictor:
    return KronosPredictor.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def limits(predictor) -> Limits:
    """The tiny model priced so that one path of 64 bars costs 1.8 s on paper (its work / work_rate)."""
    params = sum(p.numel() for p in predictor.model.parameters())
    return Limits(
        max_bars=700,
        max_pred_len=128,
        max_sample_count=400,
        max_body_bytes=400_000,
        work_rate=64 * params / 1.8,
        max_path_seconds=2.5,
        max_request_seconds=600.0,
        slice_seconds=20.0,
    )


@pytest.fixture(scope="module")
def app(predictor, limits):
    return create_app(predictor, model_name="tiny-abuse", settings=ServerSettings(limits=limits, api_key=None))


@pytest.fixture(scope="module")
def server(app):
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=120) as client:
        yield client


def test_a_request_over_the_budget_is_413_naming_it_and_how_to_fit(predictor, limits, googl):
    limits = Limits(**{**limits.__dict__, "max_request_seconds": 60.0})
    app = create_app(predictor, model_name="tiny-budget", settings=ServerSettings(limits=limits, api_key=None))
    body = {"bars": bars_of(googl.tail(100)), "pred_len": 64, "sample_count": 400, "seed": 1}
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        r = client.post("/v1/forecast", json=body)
        assert r.status_code == 413, r.text[:300]
        msg = r.json()["detail"][0]["msg"]
        assert "max_request_seconds=60" in msg and "sample_count <=" in msg
        fits = int(msg.split("sample_count <= ")[1].split(",")[0])
        assert 0 < fits < 400
        assert client.post("/v1/forecast", json={**body, "sample_count": fits}).status_code == 200
        assert client.post("/v1/forecast", json={**body, "sample_count": fits + 1}).status_code == 413
        # one path over the per-path budget: the horizon is what has to shrink
        long = client.post("/v1/forecast", json={**body, "pred_len": 100, "sample_count": 1})
    assert long.status_code == 413 and "pred_len <=" in long.json()["detail"][0]["msg"], long.text


def test_a_sliced_request_gets_exactly_the_paths_of_one_call(server, predictor, googl):
    # 1.8 s per path on paper, 20 s slices: 40 paths run in 4 slices of 11, 11, 11 and 7 paths
    body = {"bars": bars_of(googl.tail(120)), "pred_len": 64, "sample_count": 40, "seed": 9, "return_paths": True}
    r = server.post("/v1/forecast", json=body)
    assert r.status_code == 200, r.text[:300]
    hist = googl.tail(120).reset_index(drop=True)
    future = pd.Series(pd.to_datetime(r.json()["timestamps"]))
    fc = predictor.forecast(hist, hist["timestamps"], future, 64, sample_count=40, seed=9)
    np.testing.assert_allclose(np.array(r.json()["paths"]["close"]), fc.column("close"), rtol=1e-12)


def test_merged_slices_report_the_shares_of_the_whole_forecast(predictor, googl):
    from kronos.server.inference import merge_slices

    hist = googl.tail(120).reset_index(drop=True)
    future = pd.Series(pd.date_range(hist["timestamps"].iloc[-1], periods=4, freq="D")[1:])
    parts = [predictor.forecast(hist, hist["timestamps"], future, 3, sample_count=n, seed=1) for n in (2, 6)]
    parts[0].info.update(repaired_bars=0.5, floored_paths=0.5)  # one path of two collapsed; none of six
    parts[1].info.update(repaired_bars=0.1, floored_paths=0.0)
    whole = merge_slices(parts)
    assert whole.n_paths == 8 and whole.info["sample_count"] == 8
    assert whole.info["floored_paths"] == pytest.approx(1 / 8) and whole.info["repaired_bars"] == pytest.approx(0.2)


@pytest.mark.slow
def test_a_light_request_admitted_after_a_heavy_one_is_answered_first(server, googl):
    heavy = {"bars": bars_of(googl.tail(200)), "pred_len": 64, "sample_count": 300, "seed": 1}
    light = {"bars": bars_of(googl.tail(50)), "pred_len": 2, "sample_count": 2, "seed": 2}
    finished: dict[str, float] = {}

    def send(name: str, body: dict) -> None:
        assert server.post("/v1/forecast", json=body).status_code == 200
        finished[name] = time.perf_counter()

    worker = threading.Thread(target=send, args=("heavy", heavy))
    worker.start()
    time.sleep(0.3)
    send("light", light)
    worker.join()
    assert finished["light"] < finished["heavy"], "the light request waited for the whole heavy one"


def _send_and_drop(url: str, body: bytes, after: float) -> None:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = f"POST /v1/forecast HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
        sock.sendall(head.encode() + b"\r\n\r\n" + body)
        time.sleep(after)


def test_a_dropped_request_is_cancelled_and_frees_the_worker(predictor, limits, googl):
    app = create_app(predictor, model_name="tiny-drop", settings=ServerSettings(limits=limits, api_key=None))
    heavy = {"bars": bars_of(googl.tail(200)), "pred_len": 64, "sample_count": 300, "seed": 1}
    batcher = app.state.batcher
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        before = batcher.cancelled
        _send_and_drop(url, json.dumps(heavy).encode(), after=0.5)
        deadline = time.monotonic() + 10
        while batcher.cancelled == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert batcher.cancelled == before + 1, "the dropped request was still computed"
        started = time.perf_counter()
        light = {"bars": bars_of(googl.tail(50)), "pred_len": 2, "sample_count": 2, "seed": 2}
        assert client.post("/v1/forecast", json=light).status_code == 200
        assert time.perf_counter() - started < 5


def test_a_request_over_its_time_limit_is_cancelled_with_504(predictor, limits, googl):
    limits = Limits(**{**limits.__dict__, "timeout_seconds": 0.3})
    app = create_app(predictor, model_name="tiny-timeout", settings=ServerSettings(limits=limits, api_key=None))
    heavy = {"bars": bars_of(googl.tail(200)), "pred_len": 64, "sample_count": 300, "seed": 1}
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        r = client.post("/v1/forecast", json=heavy)
    assert r.status_code == 504 and "timeout_seconds=0.3" in r.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ("[" * 100_000 + "]" * 100_000, 400, ["nests 100000 levels", "limit is 16"]),
        ('{"bars": [], "pred_len": ' + "[" * 40 + "]" * 40 + "}", 400, ["nests 41 levels"]),
    ],
)
def test_deep_json_is_refused_before_parsing(server, body, status, words):
    r = server.post("/v1/forecast", content=body.encode(), headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    for word in words:
        assert word in r.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        ({"pred_len": True}, "pred_len", "boolean"),
        ({"sample_count": False}, "sample_count", "boolean"),
        ({"seed": True}, "seed", "boolean"),
        ({"quantiles": [0.1, 0.5, 0.5]}, "quantiles", "repeat"),
    ],
)
def test_booleans_for_numbers_and_repeated_quantiles_are_refused(server, googl, edit, field, words):
    body = {"bars": bars_of(googl.tail(40)), "pred_len": 3, "sample_count": 5, **edit}
    r = server.post("/v1/forecast", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert field in [str(x) for x in detail["loc"]] and words in detail["msg"], detail


def test_multipart_is_as_strict_as_json(server, googl):
    csv = googl.tail(40).to_csv(index=False).encode()
    r = server.post("/v1/forecast", files={"file": ("bars.csv", csv)}, data={"pred_len": "2", "colour": "red"})
    assert r.status_code == 422 and "colour" in r.json()["detail"][0]["msg"], r.text
    dup = server.post("/v1/forecast", files={"file": ("bars.csv", csv)}, data={"pred_len": "2", "quantiles": "0.5,0.5"})
    assert dup.status_code == 422 and "repeat" in dup.json()["detail"][0]["msg"], dup.text
    ok = server.post("/v1/forecast", files={"file": ("bars.csv", csv)}, data={"pred_len": "2", "sample_count": "3"})
    assert ok.status_code == 200, ok.text


def _refs(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_the_openapi_document_is_valid_and_every_ref_resolves(server):
    validator = pytest.importorskip("openapi_spec_validator", reason="openapi-spec-validator (dev extra)")
    doc = server.get("/openapi.json").json()
    validator.validate(doc)
    refs = _refs(doc)
    assert "#/components/schemas/ForecastRequest" in refs
    for ref in refs:
        node = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]  # a KeyError is an unresolvable $ref
    assert "pred_len" in doc["components"]["schemas"]["ForecastRequest"]["properties"]


@pytest.mark.parametrize("route", ["/docs", "/redoc"])
def test_the_docs_pages_load_nothing_from_outside(server, route):
    import re

    html = server.get(route).text
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", html)
    assert urls, html
    assert not [u for u in urls if u.startswith(("http:", "https:", "//"))], urls
    for url in urls:  # every asset is served by this process
        assert server.get(url).status_code == 200, url


def test_micro_batches_are_capped_by_the_memory_budget(predictor, limits, googl):
    """Two requests that each need 60% of max_run_memory never share a run (they would at 40% each)."""
    from kronos.server.pricing import Pricing

    per_path = Pricing.of(predictor).per_path(60, 4)[1]
    paths = 20
    for share, expected in ((0.6, {1}), (0.4, {2})):
        capped = Limits(**{**limits.__dict__, "max_run_memory": int(per_path * paths / share)})
        settings = ServerSettings(limits=capped, api_key=None, batch_window_ms=300)
        app = create_app(predictor, model_name="tiny-memory", settings=settings)
        bodies = [{"bars": bars_of(googl.tail(60)), "pred_len": 4, "sample_count": paths, "seed": s} for s in (1, 2)]
        with (
            serve_in_thread(app) as url,
            httpx.Client(base_url=url, timeout=60) as client,
            ThreadPoolExecutor(2) as pool,
        ):
            answers = list(pool.map(lambda b, c=client: c.post("/v1/forecast", json=b), bodies))
        assert all(a.status_code == 200 for a in answers)
        assert {int(a.headers["X-Batch-Size"]) for a in answers} == expected, share


@pytest.mark.slow
def test_a_stalled_body_gets_408_and_a_dropped_upload_one_log_line(predictor, limits, googl, caplog):
    import logging

    quick = Limits(**{**limits.__dict__, "body_timeout_seconds": 0.5})
    app = create_app(predictor, model_name="tiny-stall", settings=ServerSettings(limits=quick, api_key=None))
    head = "POST /v1/forecast HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    caplog.set_level(logging.INFO, logger="kronos.server")
    with serve_in_thread(app) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:  # half a body, then nothing
            sock.sendall(head.encode() + b'{"bars": [')
            answer = sock.recv(4096).decode()
        assert answer.startswith("HTTP/1.1 408") and "stalled" in answer, answer
        for _ in range(3):  # uploads dropped mid-body: one line each, no traceback
            with socket.create_connection((host, int(port))) as sock:
                sock.sendall(head.encode() + b'{"bars": [')
            time.sleep(0.2)
        time.sleep(1.0)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("kronos") or r.levelno >= logging.ERROR]
    assert sum("sent no body data" in m for m in lines) == 1, lines
    assert sum("went away while sending" in m for m in lines) == 3, lines
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], lines


def test_requests_sharing_a_run_pay_the_steps_fixed_cost_once(limits):
    """A job's time share is its paths' time against what a slice leaves after the run's steps: sixteen
    requests whose steps alone would fill a slice if each paid them still share one run."""
    from types import SimpleNamespace

    from kronos.server.app import _run_share

    settings = ServerSettings(limits=Limits(**{**limits.__dict__, "slice_seconds": 1.0, "step_seconds": 0.005}))
    job = SimpleNamespace(
        options=SimpleNamespace(sample_count=50),
        pred_len=12,
        path_seconds=0.001,
        seconds=12 * 0.005 + 50 * 0.001,  # alone: steps + paths = 0.11 s
        memory=0,
    )
    share = _run_share(job, settings)
    assert share == pytest.approx(50 * 0.001 / (1.0 - 12 * 0.005))
    assert 16 * share <= 1.0 < 16 * job.seconds / settings.limits.slice_seconds


def test_the_measured_work_rate_prices_a_batched_run_near_its_real_time(predictor):
    """``kronos serve --work-rate auto`` (the default): the rate comes from a run on the loaded model, so a batched
    run's estimated time (steps' fixed cost + paths' work / rate) is that run's real time, give or take noise."""
    import pandas as pd

    from kronos.server.pricing import Pricing, measure_work_rate

    rate = measure_work_rate(predictor, 0.005)
    assert np.isfinite(rate) and rate > 0
    rng = np.random.default_rng(1)
    times = pd.date_range("2024-03-01", periods=140, freq="h")
    frames = []
    for _ in range(8):
        close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, 128)))
        frames.append(pd.DataFrame({"open": close, "high": close * 1.001, "low": close * 0.999, "close": close}))
    xs, ys = [pd.Series(times[:128])] * 8, [pd.Series(times[128:])] * 8
    predictor.forecast_batch(frames, xs, ys, 12, sample_count=32, seeds=list(range(8)))  # warm-up
    start = time.perf_counter()
    predictor.forecast_batch(frames, xs, ys, 12, sample_count=32, seeds=list(range(8)))
    real = time.perf_counter() - start
    estimate = 12 * 0.005 + Pricing.of(predictor).per_path(128, 12)[0] * 8 * 32 / rate
    assert 0.25 < estimate / real < 4.0, (estimate, real)  # a fixed guess for another machine is off by 10-100x
