"""The FastAPI application: forecast API, health probes, bundled samples and the web page.

``create_app`` takes a ready predictor or a loader (run once, in a thread, at start-up: ``/healthz``
answers at once, ``/readyz`` once the model is loaded). Requests are checked before they reach the
model (:mod:`kronos.server.inference`) and gathered by a :class:`~kronos.server.batching.MicroBatcher`.
No route takes a server-side path from a client: samples are looked up by name in a fixed table and
uploads are read from the request body.

The routes are module-level functions on one :class:`~fastapi.APIRouter`; what differs between apps (the
model, the settings, the batcher) lives on ``app.state`` and reaches a route through a dependency, so
``create_app`` only assembles the pieces. FastAPI is imported here and in :mod:`kronos.server.docs`
(the offline /docs and /redoc).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from kronos.bars.reader import TIME_COL
from kronos.bars.samples import load_sample
from kronos.core.errors import InputError
from kronos.core.extras import MissingExtraError, require
from kronos.forecasting.predictor import KronosPredictor
from kronos.server.batching import MicroBatcher
from kronos.server.body_limit import BodyLimit
from kronos.server.docs import install_docs
from kronos.server.inference import (
    Limits,
    Pricing,
    RequestError,
    build_job,
    forecast_body,
    merge_slices,
    model_info,
    run_group,
    slices,
)
from kronos.server.payloads import forecast_openapi, read_payload, validation_detail
from kronos.server.schemas import ForecastRequest, ForecastResponse, ModelInfo, ModelsResponse

__all__ = ["ServerSettings", "create_app"]

log = logging.getLogger("kronos.server")
STATIC_DIR = Path(__file__).with_name("static")
SAMPLES = {"googl": ("GOOGL_daily.csv", "GOOGL daily bars"), "eurusd": ("EURUSD_1h.csv", "EUR/USD hourly bars")}


@dataclass
class ServerSettings:
    """Limits, batching and access. ``api_key`` defaults to the ``KRONOS_API_KEY`` environment variable.

    ``max_batch_paths`` caps the sample paths (sum of ``sample_count``) of one batched run; runs are
    also capped by the slice budget of :class:`~kronos.server.inference.Limits` (time and memory), and a
    request larger than a slice runs in slices, taking turns with the others.
    """

    limits: Limits = field(default_factory=Limits)
    batch_window_ms: float = 5.0
    max_batch: int = 32
    max_batch_paths: int = 2048
    api_key: str | None = field(default_factory=lambda: os.environ.get("KRONOS_API_KEY") or None)


@dataclass
class _State:
    """The served model: set at once for a ready predictor, or by :meth:`load` at start-up (``app.state.kronos``)."""

    model_name: str
    loader: Callable[[], KronosPredictor] | None = None
    predictor: KronosPredictor | None = None
    info: ModelInfo | None = None
    error: str | None = None

    pricing: Pricing | None = None

    def ready(self, predictor: KronosPredictor) -> None:
        """Serve ``predictor`` from now on."""
        self.predictor, self.info = predictor, model_info(predictor, self.model_name)
        self.pricing = Pricing.of(predictor)

    async def load(self, batcher: MicroBatcher) -> None:
        """Run the loader on the batcher's inference thread (see :meth:`MicroBatcher.run_in_worker`); a failure
        is kept for ``/readyz`` and the process stays up for the probes."""
        try:
            self.ready(await batcher.run_in_worker(self.loader))  # type: ignore[arg-type]
            log.info("model %s loaded (version %s)", self.model_name, self.info.version if self.info else "?")
        except Exception as exc:  # reported by /readyz; the process stays up for the probes
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("could not load model %s: %s", self.model_name, self.error)

    def require_ready(self) -> KronosPredictor:
        """The predictor, or 503 while it is loading (or after loading failed)."""
        if self.predictor is None:
            raise HTTPException(503, f"the model is not loaded{': ' + self.error if self.error else ' yet'}")
        return self.predictor


def _state(request: Request) -> _State:
    return request.app.state.kronos


def _settings(request: Request) -> ServerSettings:
    return request.app.state.settings


def _batcher(request: Request) -> MicroBatcher:
    return request.app.state.batcher


StateDep = Annotated[_State, Depends(_state)]
SettingsDep = Annotated[ServerSettings, Depends(_settings)]
BatcherDep = Annotated[MicroBatcher, Depends(_batcher)]


def require_key(request: Request, settings: SettingsDep) -> None:
    """401 unless the request carries the API key (``X-API-Key`` or a bearer token), when one is set."""
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


router = APIRouter()


@router.get("/healthz", tags=["probes"])
async def healthz() -> dict[str, str]:
    """The process is up (answers while the model works)."""
    return {"status": "ok"}


@router.get("/readyz", tags=["probes"])
async def readyz(state: StateDep) -> JSONResponse:
    """200 once the model is loaded, 503 before (or if loading failed)."""
    if state.predictor is None:
        body = {"status": "failed" if state.error else "loading", "error": state.error}
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ready", "model": state.info.name if state.info else None})


@router.get("/v1/models", response_model=ModelsResponse, dependencies=[Depends(require_key)], tags=["forecast"])
async def models(state: StateDep) -> ModelsResponse:
    """The model this process serves."""
    state.require_ready()
    return ModelsResponse(models=[state.info] if state.info else [])


@router.post(
    "/v1/forecast",
    response_model=ForecastResponse,
    dependencies=[Depends(require_key)],
    tags=["forecast"],
    openapi_extra=forecast_openapi(),
)
async def forecast(request: Request, state: StateDep, settings: SettingsDep, batcher: BatcherDep) -> JSONResponse:
    """Forecast the bars after the given history: a JSON body (``ForecastRequest``) or a CSV upload (multipart)."""
    try:
        payload = await read_payload(request)
    except ClientDisconnect:  # one line, not a traceback, per client that dropped its upload
        log.info("client %s went away while sending its request", _peer(request))
        return JSONResponse({"detail": "client disconnected"}, status_code=400)
    except RequestError as exc:
        return _unprocessable(exc.detail(), exc.status)
    try:
        req = ForecastRequest.model_validate(payload)
        state.require_ready()
        # in a thread: calendar 'auto' may build exchange calendars (seconds, once per process)
        job = await asyncio.to_thread(build_job, req, settings.limits, state.pricing)
    except ValidationError as exc:
        return _unprocessable(validation_detail(exc))
    except RequestError as exc:
        return _unprocessable(exc.detail(), exc.status)
    try:
        done = await _until_done_or_gone(request, batcher.submit(job.key, job), settings.limits.timeout_seconds)
    except InputError as exc:  # the library refused it (e.g. too short a history to calibrate)
        return _unprocessable([{"loc": ["body"], "msg": str(exc), "type": "value_error"}])
    except asyncio.TimeoutError:
        log.warning("forecast cancelled after the time limit of %g s", settings.limits.timeout_seconds)
        limit = settings.limits.timeout_seconds
        return _unprocessable(
            [{"loc": ["body"], "msg": f"the forecast took longer than timeout_seconds={limit:g}", "type": "timeout"}],
            504,
        )
    if done is None:  # the client went away: nothing to answer
        log.info("client %s went away; its forecast was cancelled", _peer(request))
        return JSONResponse({"detail": "client disconnected"}, status_code=499)
    fc, batch_size = done
    body = forecast_body(fc, req, job, state.info)  # type: ignore[arg-type]
    return JSONResponse(body, headers={"X-Batch-Size": str(batch_size)})


@router.get("/v1/samples", tags=["samples"])
async def samples() -> dict[str, Any]:
    """The bundled sample series the page offers."""
    return {"samples": [{"name": k, "description": d} for k, (_, d) in SAMPLES.items()]}


@router.get("/v1/samples/{name}", tags=["samples"])
async def sample(name: str) -> dict[str, Any]:
    """A bundled sample's bars, as the ``bars`` of a forecast request."""
    if name not in SAMPLES:
        raise HTTPException(404, f"no sample {name!r}; the samples are {sorted(SAMPLES)}")
    frame = load_sample(name)
    frame[TIME_COL] = frame[TIME_COL].map(lambda t: t.isoformat())
    return {"name": name, "bars": frame.to_dict("records")}


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


@router.get("/static/vendor/plotly.min.js", include_in_schema=False)
async def plotly_js() -> FileResponse:
    return FileResponse(_plotly_js(), media_type="application/javascript")


async def _until_done_or_gone(request: Request, work: Any, timeout: float) -> Any:
    """The result of ``work``, or None once the client has disconnected (``work`` is then cancelled, so the
    batcher drops it before its next slice); ``asyncio.TimeoutError`` after ``timeout`` seconds."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise asyncio.TimeoutError
            done, _ = await asyncio.wait({task}, timeout=min(0.25, left))
            if done:
                return task.result()
            if await request.is_disconnected():
                return None
    finally:
        if not task.done():
            task.cancel()


def _peer(request: Request) -> str:
    client = request.client
    return f"{client.host}:{client.port}" if client else "?"


def _unprocessable(detail: list[dict[str, Any]], status: int = 422) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the batcher (and the model's loader, if any) with the server; stop them with it."""
    state: _State = app.state.kronos
    batcher: MicroBatcher = app.state.batcher
    await batcher.start()
    loading = asyncio.create_task(state.load(batcher)) if state.predictor is None else None
    yield
    if loading is not None:
        loading.cancel()
    await batcher.stop()


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
    state = _State(model_name=model_name, loader=loader)
    if predictor is not None:
        state.ready(predictor)
    batcher = MicroBatcher(
        lambda jobs: run_group(state.predictor, jobs),
        window_ms=settings.batch_window_ms,
        max_batch=settings.max_batch,  # type: ignore[arg-type]
        weight=lambda job: _run_share(job, settings),
        max_weight=1.0,
        parts=slices,
        merge=merge_slices,
    )
    app = FastAPI(
        title="Kronos forecasting service",
        version="1",
        debug=False,
        lifespan=_lifespan,
        description="Probabilistic forecasts of candlestick (OHLCV) series with a Kronos model.",
        docs_url=None,  # served below from installed assets, not from a CDN
        redoc_url=None,
    )
    app.state.kronos = state
    app.state.batcher = batcher
    app.state.settings = settings
    app.add_middleware(BodyLimit, limit=settings.limits.max_body_bytes, timeout=settings.limits.body_timeout_seconds)
    app.include_router(router)
    install_docs(app)  # /docs, /redoc and their assets (before /static), openapi.json
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _run_share(job: Any, settings: ServerSettings) -> float:
    """A job's share of the largest run: by sample paths (``max_batch_paths``), model time (a slice) and memory.

    Jobs that share a run share its steps (a run's key includes ``pred_len``), so the fixed cost of the
    steps is paid once per run: a job's time share is its paths' time against what a slice leaves after it.
    """
    limits = settings.limits
    by_paths = job.options.sample_count / settings.max_batch_paths
    room = limits.slice_seconds - job.pred_len * limits.step_seconds
    by_time = job.options.sample_count * job.path_seconds / room if room > 0 else 1.0
    by_memory = job.memory / settings.limits.max_run_memory
    return max(by_paths, by_time, by_memory)


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
