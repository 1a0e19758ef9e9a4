"""The web page in a real browser: Debian's chromium driven by Playwright (never ``playwright install``).

Serves a random tiny checkpoint on a free loopback port, runs a forecast on the bundled sample from
the page, checks that the candlestick chart with its quantile bands and the P(up) chart appear,
downloads the CSV and compares it with the API's answer, uploads a CSV, and checks that the page
asked for nothing outside the server (it must work offline). Under CI a missing browser fails.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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
            # the default ensemble: the chart shows its longest window, max_context 256 less the 12-bar horizon
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


def _screenshots(tmp_path: Path) -> Path:
    """Where the screenshots go: ``KRONOS_SCREENSHOT_DIR`` when set (``docs/images`` to refresh the docs),
    else the test's temporary folder, so that a test run leaves the working tree unchanged."""
    return Path(os.environ.get("KRONOS_SCREENSHOT_DIR") or tmp_path)


def test_page_hides_gaps_shows_a_past_forecast_against_what_happened_and_clears_errors(chromium, base_url, tmp_path):
    """Range breaks from the series' own bars, the past-date view, and an error that clears the stale chart
    and names the line of the user's file; screenshots of each are taken (see :func:`_screenshots`)."""
    from playwright.sync_api import sync_playwright

    shots = _screenshots(tmp_path)

    eurusd = read_bars(sample_data_path("eurusd"))
    errors: list[str] = []
    requested: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            # what the browser actually fetched (a request its Content-Security-Policy blocked never completes)
            page.on("requestfinished", lambda req: requested.append(req.url))
            # the API docs render offline: Swagger UI and ReDoc from the installed assets
            page.goto(base_url + "/docs")
            page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
            page.goto(base_url + "/redoc")
            page.wait_for_selector("h1:has-text('Kronos forecasting service')", timeout=30_000)
            page.goto(base_url + "/")
            page.wait_for_selector("#sample option[value=eurusd]", state="attached")
            done = "document.getElementById('status').textContent.startsWith('done')"

            # hourly FX: weekends are gaps in the series; the axis hides each one
            page.select_option("#sample", "eurusd")
            page.fill("#pred_len", "24")
            page.fill("#sample_count", "40")
            page.click("#run")
            page.wait_for_function(done, timeout=60_000)
            breaks = page.evaluate("document.getElementById('chart').layout.xaxis.rangebreaks")
            shown = eurusd.tail(256 - 24)["timestamps"]
            gaps = int((shown.diff() > pd.Timedelta(hours=1.5)).sum())
            assert gaps >= 1 and len(breaks) >= gaps, (gaps, breaks)
            assert "EUR/USD hourly bars" in page.evaluate("document.getElementById('chart').layout.title.text")
            page.screenshot(path=str(shots / "serve_page_rangebreaks.png"))

            # forecast from a past date: the next bars are drawn over the forecast made for their times
            as_of = str(eurusd["timestamps"].iloc[800])
            page.fill("#asof", as_of)
            page.click("#run")
            page.wait_for_function(done + " && document.getElementById('status').textContent.includes('what happened')")
            names = page.evaluate("document.getElementById('chart').data.map(t => t.name)")
            assert "what happened" in names
            actual_x = page.evaluate("document.getElementById('chart').data.find(t => t.name === 'what happened').x")
            expected = [str(t).replace(" ", "T") for t in eurusd["timestamps"].iloc[801:825]]
            assert [x.replace(" ", "T") for x in actual_x] == expected
            fc_x = page.evaluate("document.getElementById('chart').data.find(t => t.name === 'median close').x")
            assert [x.replace(" ", "T")[:19] for x in fc_x] == expected  # forecast for exactly those bars
            assert " closes inside the 10–90% band" in page.inner_text("#status")
            page.screenshot(path=str(shots / "serve_page_past_date.png"))

            # an upload with a bad bar: the chart goes, the picker names the upload, the error its line
            bad = eurusd.head(300).copy()
            bad.loc[120, "high"] = bad.loc[120, "low"] / 2
            path = tmp_path / "my_bars.csv"
            bad.to_csv(path, index=False)
            page.fill("#asof", "")
            page.set_input_files("#file", str(path))
            assert "my_bars.csv" in page.evaluate("document.getElementById('sample').selectedOptions[0].textContent")
            page.click("#run")
            page.wait_for_function("document.getElementById('status').className === 'error'", timeout=60_000)
            status = page.inner_text("#status")
            assert "line 122 of my_bars.csv" in status, status  # row 120 of the bars is line 122 of the file
            assert page.evaluate("(document.getElementById('chart').data || []).length") == 0
            assert page.is_disabled("#download")
            page.screenshot(path=str(shots / "serve_page_error.png"))
        finally:
            browser.close()
    assert not errors, errors
    outside = [u for u in requested if not u.startswith((base_url, "blob:", "data:"))]
    assert not outside, f"fetched from outside the server: {outside}"


def test_page_says_what_the_server_adapted(chromium, base_url, tmp_path):
    """An upload whose bars hold an unadjusted split: the forecast is made, the status line carries the server's note
    that it was undone (the API's ``notes``), and the candles before it are drawn at the scale the forecast read."""
    from playwright.sync_api import sync_playwright

    bars = read_bars(sample_data_path("googl")).tail(300).reset_index(drop=True)
    bars.loc[:249, ["open", "high", "low", "close"]] *= 2
    bars.loc[:249, "volume"] /= 2
    path = tmp_path / "unadjusted.csv"
    bars.to_csv(path, index=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(base_url + "/")
            page.wait_for_selector("#sample option[value=googl]", state="attached")
            page.set_input_files("#file", str(path))
            page.fill("#sample_count", "20")
            page.click("#run")
            page.wait_for_function("document.getElementById('status').textContent.startsWith('done')", timeout=60_000)
            status = page.inner_text("#status")
            assert "note: the bars hold what looks like an unadjusted share split (2:1 at row" in status, status
            # the candles are drawn as the forecast read them: one price scale with the bands
            first = page.evaluate("document.getElementById('chart').data[0].close[0]")
            shown = page.evaluate("document.getElementById('chart').data[0].x.length")
            assert first == pytest.approx(bars["close"].iloc[-shown] / 2, rel=1e-9)
        finally:
            browser.close()
