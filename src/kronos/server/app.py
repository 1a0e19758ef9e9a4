"""The FastAPI application: forecast API, health probes, bundled samples and the web page.

``create_app`` takes a ready predictor or a loader (run once, in a thread, at start-up: ``/healthz``
answers at once, ``/readyz`` once the model is loaded). Requests are checked before they reach the
model (:mod:`kronos.server.inference`) and gathered by a :class:`~kronos.server.batching.MicroBatcher`.
No route takes a server-side path from a client: samples are looked up by name in a fixed table and
uploads are read from the request body.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kronos.bars.reader import SYMBOL_COL, TIME_COL, read_bars
from kronos.bars.samples import load_sample
from kronos.core.errors import InputError
from kronos.core.extras import MissingExtraError, require
from kronos.forecasting.predictor import KronosPredictor
from kronos.server.batching import MicroBatcher
from kronos.server.inference import Limits, RequestError, build_job, forecast_body, model_info, run_group
from kronos.server.schemas import ForecastRequest, ForecastResponse, ModelInfo, ModelsResponse

__all__ = ["ServerSettings", "create_app"]

log = logging.getLogger("kronos.server")
STATIC_DIR = Path(__file__).with_name("static")
SAMPLES = {"googl": ("GOOGL_daily.csv", "GOOGL daily bars"), "eurusd": ("EURUSD_1h.csv", "EUR/USD hourly bars")}


@dataclass
class ServerSettings:
    """Limits, batching and access. ``api_key`` defaults to the ``KRONOS_API_KEY`` environment variable.

    ``max_batch_paths`` caps the sample paths (sum of ``sample_count``) of one batched run, which
    bounds its memory; a larger single request still runs, alone.
    """

    limits: Limits = field(default_factory=Limits)
    batch_window_ms: float = 5.0
    max_batch: int = 32
    max_batch_paths: int = 2048
    api_key: str | None = field(default_factory=lambda: os.environ.get("KRONOS_API_KEY") or None)


class _BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413 (by Content-Length, or while reading a chunked body)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def _refuse(self, send: Send, size: str) -> None:
        body = json.dumps(
            {
                "detail": [
                    {
                        "loc": ["body"],
                        "msg": f"request body of {size} bytes exceeds the limit max_body_bytes={self.limit}",
                        "type": "limit",
                    }
                ]
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._refuse(send, length.decode())
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(send, f"more than {size}")
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


@dataclass
class _State:
    predictor: KronosPredictor | None = None
    info: ModelInfo | None = None
    error: str | None = None


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors(include_url=False)]


def _unprocessable(detail: list[dict[str, Any]], status: int = 422) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


async def _payload_from_form(request: Request) -> dict[str, Any]:
    """A multipart upload: ``file`` (CSV of bars) plus the same fields as the JSON body, as form fields."""
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise RequestError(422, ["body", "file"], "a multipart request needs a CSV file in the field 'file'")
    raw = await upload.read()
    name = f"the upload {upload.filename!r}" if upload.filename else "the upload"
    try:
        frame = pd.read_csv(io.BytesIO(raw))
    except Exception as exc:
        raise RequestError(422, ["body", "file"], f"{name}: cannot be read as CSV ({exc})") from None
    try:  # the same reading rules and messages as kronos forecast (kronos.bars.reader)
        frame = read_bars(frame, label=name).drop(columns=SYMBOL_COL, errors="ignore")
    except InputError as exc:
        raise RequestError(422, ["body", "file"], str(exc)) from None
    frame[TIME_COL] = frame[TIME_COL].map(lambda t: t.isoformat())
    payload: dict[str, Any] = {"bars": frame.to_dict("records")}
    for name in ("pred_len", "sample_count", "T", "top_p", "seed", "calibrate", "return_paths"):
        value = form.get(name)
        if isinstance(value, str) and value != "":
            payload[name] = value
    for name in ("quantiles", "future_timestamps"):
        value = form.get(name)
        if isinstance(value, str) and value.strip():
            payload[name] = [v.strip() for v in value.split(",") if v.strip()]
    return payload


def _forecast_openapi() -> dict[str, Any]:
    form_fields = {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "CSV with timestamps, open, high, low, close[, volume, amount]",
        },
        "pred_len": {"type": "integer"},
        "sample_count": {"type": "integer"},
        "T": {"type": "number"},
        "top_p": {"type": "number"},
        "seed": {"type": "integer"},
        "calibrate": {"type": "boolean"},
        "return_paths": {"type": "boolean"},
        "quantiles": {"type": "string", "description": "comma-separated levels, e.g. 0.1,0.5,0.9"},
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ForecastRequest"}},
                "multipart/form-data": {
                    "schema": {"type": "object", "required": ["file", "pred_len"], "properties": form_fields}
                },
            },
        },
        "responses": {
            "401": {"description": "missing or wrong API key"},
            "413": {"description": "body or bars over the limit"},
        },
    }


def create_app(
    predictor: KronosPredictor | None = None,
    *,
    loader: Callable[[], KronosPredictor] | None = None,
    model_name: str = "custom",
    settings: ServerSettings | None = None,
) -> FastAPI:
    """The Kronos HTTP service for ``predictor`` (or for what ``loader()`` returns, loaded at start-up)."""
    if (predictor is None) == (loader is None):
        raise ValueError("give exactly one of predictor or loader")
    settings = settings or ServerSettings()
    state = _State()

    def ready(p: KronosPredictor) -> None:
        state.predictor, state.info = p, model_info(p, model_name)

    if predictor is not None:
        ready(predictor)
    batcher = MicroBatcher(
        lambda jobs: run_group(state.predictor, jobs),
        window_ms=settings.batch_window_ms,
        max_batch=settings.max_batch,  # type: ignore[arg-type]
        weight=lambda job: job.options.sample_count,
        max_weight=settings.max_batch_paths,
    )

    async def load() -> None:
        try:
            ready(await asyncio.to_thread(loader))  # type: ignore[arg-type]
            log.info("model %s loaded (version %s)", model_name, state.info.version if state.info else "?")
        except Exception as exc:  # reported by /readyz; the process stays up for the probes
            state.error = f"{type(exc).__name__}: {exc}"
            log.error("could not load model %s: %s", model_name, state.error)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        loading = asyncio.create_task(load()) if state.predictor is None else None
        yield
        if loading is not None:
            loading.cancel()
        await batcher.stop()

    app = FastAPI(
        title="Kronos forecasting service",
        version="1",
        debug=False,
        lifespan=lifespan,
        description="Probabilistic forecasts of candlestick (OHLCV) series with a Kronos model.",
    )
    app.state.kronos = state
    app.state.batcher = batcher
    app.add_middleware(_BodyLimit, limit=settings.limits.max_body_bytes)

    def require_key(request: Request) -> None:
        if settings.api_key is None:
            return
        given = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if given is None and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if given is None or not secrets.compare_digest(given.encode(), settings.api_key.encode()):
            raise HTTPException(
                401,
                "a valid API key is needed: header X-API-Key or Authorization: Bearer",
                {"WWW-Authenticate": "Bearer"},
            )

    def require_ready() -> KronosPredictor:
        if state.predictor is None:
            raise HTTPException(503, f"the model is not loaded{': ' + state.error if state.error else ' yet'}")
        return state.predictor

    @app.get("/healthz", tags=["probes"])
    async def healthz() -> dict[str, str]:
        """The process is up (answers while the model works)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"])
    async def readyz() -> JSONResponse:
        """200 once the model is loaded, 503 before (or if loading failed)."""
        if state.predictor is None:
            body = {"status": "failed" if state.error else "loading", "error": state.error}
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ready", "model": state.info.name if state.info else None})

    @app.get("/v1/models", response_model=ModelsResponse, dependencies=[Depends(require_key)], tags=["forecast"])
    async def models() -> ModelsResponse:
        """The model this process serves."""
        require_ready()
        return ModelsResponse(models=[state.info] if state.info else [])

    @app.post(
        "/v1/forecast",
        response_model=ForecastResponse,
        dependencies=[Depends(require_key)],
        tags=["forecast"],
        openapi_extra=_forecast_openapi(),
    )
    async def forecast(request: Request) -> JSONResponse:
        """Forecast the bars after the given history: a JSON body (``ForecastRequest``) or a CSV upload (multipart)."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if ctype == "multipart/form-data":
                payload = await _payload_from_form(request)
            elif ctype in ("application/json", ""):
                try:
                    payload = json.loads(await request.body())
                except ValueError as exc:
                    raise RequestError(422, ["body"], f"the body is not valid JSON ({exc})") from None
            else:
                raise RequestError(
                    415, ["header", "content-type"], f"send application/json or multipart/form-data, not {ctype!r}"
                )
            req = ForecastRequest.model_validate(payload)
            job = build_job(req, settings.limits)
        except ValidationError as exc:
            return _unprocessable(_errors(exc))
        except RequestError as exc:
            return _unprocessable(exc.detail(), exc.status)
        require_ready()
        try:
            fc, batch_size = await batcher.submit(job.key, job)
        except InputError as exc:  # the library refused it (e.g. too short a history to calibrate)
            return _unprocessable([{"loc": ["body"], "msg": str(exc), "type": "value_error"}])
        body = forecast_body(fc, req, job, state.info)  # type: ignore[arg-type]
        return JSONResponse(body, headers={"X-Batch-Size": str(batch_size)})

    @app.get("/v1/samples", tags=["samples"])
    async def samples() -> dict[str, Any]:
        """The bundled sample series the page offers."""
        return {"samples": [{"name": k, "description": d} for k, (_, d) in SAMPLES.items()]}

    @app.get("/v1/samples/{name}", tags=["samples"])
    async def sample(name: str) -> dict[str, Any]:
        """A bundled sample's bars, as the ``bars`` of a forecast request."""
        if name not in SAMPLES:
            raise HTTPException(404, f"no sample {name!r}; the samples are {sorted(SAMPLES)}")
        frame = load_sample(name)
        frame[TIME_COL] = frame[TIME_COL].map(lambda t: t.isoformat())
        return {"name": name, "bars": frame.to_dict("records")}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    async def plotly_js() -> FileResponse:
        return FileResponse(_plotly_js(), media_type="application/javascript")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _plotly_js() -> Path:
    """plotly.js as shipped inside the installed ``plotly`` Python package (the page works offline)."""
    try:
        plotly = require("server", "plotly", purpose="the web page's chart")
    except MissingExtraError as exc:
        raise HTTPException(404, str(exc)) from None
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise HTTPException(404, f"this plotly package has no bundled plotly.min.js at {path}")
    return path
