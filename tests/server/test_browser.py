"""The web page in a real browser: Debian's chromium driven by Playwright (never ``playwright install``).

Serves a random tiny checkpoint on a free loopback port, runs a forecast on the bundled sample from
the page, checks that the candlestick chart with its quantile bands and the P(up) chart appear,
downloads the CSV and compares it with the API's answer, uploads a CSV, and checks that the page
asked for nothing outside the server (it must work offline). Under CI a missing browser fails.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")
httpx = pytest.importorskip("httpx", reason="httpx (dev extra) is not installed")

from kronos.bars.reader import read_bars  # noqa: E402
from kronos.bars.samples import sample_data_path  # noqa: E402
from kronos.forecasting.loading import random_tiny_predictor  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _need(condition: bool, reason: str) -> None:
    if not condition:
        if IN_CI:
            pytest.fail(f"{reason} (.ci/run installs it)")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = os.environ.get("KRONOS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    _need(path is not None, "no system chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _need(False, "the playwright package is not installed (dev extra)")
    return path  # type: ignore[return-value]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    from kronos.forecasting.predictor import KronosPredictor
    from kronos.server import ServerSettings, create_app
    from kronos.server.runner import serve_in_thread

    model_dir = tmp_path_factory.mktemp("tiny-model")
    random_tiny_predictor(seed=1).save_pretrained(model_dir)
    app = create_app(
        KronosPredictor.from_pretrained(model_dir), model_name="tiny-browser", settings=ServerSettings(api_key=None)
    )
    with serve_in_thread(app) as url:
        yield url


def test_page_forecasts_the_sample_draws_the_fan_and_downloads_csv(chromium, base_url, tmp_path):
    from playwright.sync_api import sync_playwright

    requested: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900}, accept_downloads=True)
            page.on("request", lambda req: requested.append(req.url))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(base_url + "/")
            page.wait_for_selector("#sample option[value=googl]", state="attached")
            assert "tiny-browser" in page.inner_text("#model-name")
            page.fill("#pred_len", "12")
            page.fill("#sample_count", "50")
            page.fill("#seed", "9")
            page.click("#run")
            page.wait_for_function("document.getElementById('status').textContent.startsWith('done')", timeout=60_000)

            names = page.evaluate("document.getElementById('chart').data.map(t => t.name)")
            assert {"history", "10–90% band", "25–75% band", "median close", "mean close"} <= set(names)
            kinds = page.evaluate("document.getElementById('chart').data.map(t => t.type || 'scatter')")
            assert kinds[names.index("history")] == "candlestick"
            assert page.locator("#chart g.trace.boxes path").count() > 0  # candles drawn
            assert page.locator("#chart path.js-fill").count() >= 2  # the two shaded bands drawn
            assert page.locator("#probup g.trace.bars path").count() > 0
            # lookback auto: the chart shows the window the forecast used, max_context 256 less the 12-bar horizon
            assert page.evaluate("document.getElementById('chart').data[0].x.length") == 244
            assert "244 of 600 bars used" in page.inner_text("#status")

            with page.expect_download() as info:
                page.click("#download")
            saved = tmp_path / "forecast.csv"
            info.value.save_as(saved)

            page.set_input_files("#file", str(sample_data_path("eurusd")))
            page.fill("#lookback", "100")
            page.click("#run")
            page.wait_for_function(
                "document.getElementById('status').textContent.startsWith('done')"
                " && document.getElementById('chart').data[0].x.length === 100",
                timeout=60_000,
            )
            first_shown = sample_data_path("eurusd").read_text().splitlines()[-100].split(",")[0]
            assert (
                page.evaluate("document.getElementById('chart').data[0].x[0]") == first_shown
            )  # the upload's last 100 bars
        finally:
            browser.close()

    assert not errors, errors
    outside = [u for u in requested if not (u.startswith(base_url) or u.startswith("blob:") or u.startswith("data:"))]
    assert not outside, f"the page fetched from outside the server: {outside}"

    csv = pd.read_csv(saved)
    assert len(csv) == 12
    assert {"timestamp", "mean_close", "close_q10", "close_q90", "prob_up"} <= set(csv.columns)
    assert csv["prob_up"].between(0, 1).all() and (csv["close_q10"] <= csv["close_q90"]).all()
    # The download holds exactly what the API answers for the same request.
    df = read_bars(sample_data_path("googl")).tail(256)
    bars = df.assign(timestamps=df["timestamps"].map(lambda t: t.isoformat())).to_dict("records")
    api = httpx.post(
        base_url + "/v1/forecast",
        timeout=60,
        json={"bars": bars, "pred_len": 12, "sample_count": 50, "seed": 9, "quantiles": [0.1, 0.25, 0.5, 0.75, 0.9]},
    ).json()
    np.testing.assert_allclose(csv["mean_close"], api["mean"]["close"], rtol=1e-12)
    np.testing.assert_allclose(csv["close_q90"], api["quantiles"]["0.9"]["close"], rtol=1e-12)
    assert list(pd.to_datetime(csv["timestamp"])) == list(pd.to_datetime(api["timestamps"]))
