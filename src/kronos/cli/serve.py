"""``kronos serve``: the HTTP API and web page (FastAPI + uvicorn, the ``server`` extra)."""

from __future__ import annotations

import dataclasses

import typer

from kronos.cli.app import app
from kronos.cli.flags import device_option, max_context_option, model_option


@app.command("serve")
def serve_command(
    model: str = model_option(),
    host: str = typer.Option(
        "127.0.0.1", help="Interface to bind (loopback by default; 0.0.0.0 exposes it to the network)."
    ),
    port: int = typer.Option(8000, min=0, max=65535, help="TCP port (0: any free port)."),
    device: str | None = device_option(),
    max_context: int | None = max_context_option(),
    batch_window_ms: float = typer.Option(5.0, min=0, help="How long concurrent requests are gathered into one batch."),
    max_batch: int = typer.Option(32, min=1, help="Most requests in one batch (1 turns micro-batching off)."),
    max_batch_paths: int = typer.Option(
        2048, min=1, help="Most sample paths (sum of sample_count) in one batched run: bounds its memory."
    ),
    threads: int | None = typer.Option(None, min=1, help="PyTorch intra-op threads (default: PyTorch's own)."),
    max_bars: int = typer.Option(4096, min=1, help="Most history bars per request."),
    max_pred_len: int = typer.Option(512, min=1, help="Largest pred_len."),
    max_sample_count: int = typer.Option(1000, min=1, help="Largest sample_count."),
    max_body_bytes: int = typer.Option(2_000_000, min=1, help="Largest request body."),
    max_request_seconds: float = typer.Option(
        60.0, min=0.001, help="Budget of one request in estimated seconds of model time (over it: 413 with how to fit)."
    ),
    max_path_seconds: float = typer.Option(
        1.0, min=0.001, help="Budget of one sample path (the smallest slice) in estimated seconds."
    ),
    slice_seconds: float = typer.Option(
        1.0, min=0.001, help="Large requests run in slices of about this much model time, taking turns with others."
    ),
    work_rate: str = typer.Option(
        "auto",
        help="Parameter-token evaluations per second this machine does (prices requests in seconds, and so decides "
        "how many share a batched run). auto (default): measured on the loaded model at start-up (about a second).",
    ),
    step_seconds: float = typer.Option(
        0.005, min=0.0, help="Fixed cost of one generated bar per model call, in seconds (prices requests)."
    ),
    timeout: float = typer.Option(300.0, min=0.001, help="A request still unanswered after this many seconds: 504."),
    limit_concurrency: int = typer.Option(
        64, min=1, help="Most open connections; more are answered 503 at once (uvicorn's limit_concurrency)."
    ),
    keep_alive: float = typer.Option(5.0, min=0.0, help="Seconds an idle keep-alive connection stays open."),
    body_timeout: float = typer.Option(
        30.0, min=0.001, help="A request body that sends nothing for this many seconds is answered 408."
    ),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve forecasts over HTTP: POST /v1/forecast, docs at /docs, a web page at /.

    Set KRONOS_API_KEY to require a key.
    """
    from concurrent.futures import ThreadPoolExecutor

    import torch

    from kronos.core.extras import require
    from kronos.forecasting.loading import load_predictor
    from kronos.server import Limits, ServerSettings, create_app  # a missing extra: one error naming it
    from kronos.server.pricing import measure_work_rate

    uvicorn = require("server", "uvicorn", purpose="kronos serve")

    if threads is not None:
        torch.set_num_threads(threads)
    rate = _work_rate(work_rate)
    limits = Limits(
        max_bars=max_bars,
        max_pred_len=max_pred_len,
        max_sample_count=max_sample_count,
        max_body_bytes=max_body_bytes,
        max_request_seconds=max_request_seconds,
        max_path_seconds=max_path_seconds,
        slice_seconds=slice_seconds,
        work_rate=1.0 if rate is None else rate,
        step_seconds=step_seconds,
        timeout_seconds=timeout,
        body_timeout_seconds=body_timeout,
    )
    settings = ServerSettings(
        limits=limits, batch_window_ms=batch_window_ms, max_batch=max_batch, max_batch_paths=max_batch_paths
    )

    typer.echo(f"loading model {model} ...", err=True)
    # Loaded once, before serving: a model that cannot load stops here with the reason. It is loaded on a
    # short-lived thread so that the main thread (the event loop) never starts an OpenMP team of its own
    # beside the inference thread's (see kronos.server.batching.MicroBatcher.run_in_worker).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kronos-load") as loading:
        predictor = loading.submit(load_predictor, model, device=device, max_context=max_context).result()
        if rate is None:
            measured = loading.submit(measure_work_rate, predictor, step_seconds).result()
            settings.limits = dataclasses.replace(limits, work_rate=measured)
            typer.echo(f"work rate measured: {measured:.2e} parameter-token evaluations/s", err=True)
    application = create_app(predictor, model_name=model, settings=settings)
    # Never debug mode and never auto-reload: one process that loads the model once. Connection hygiene is
    # uvicorn's own: idle keep-alive connections close, connections over the limit get 503 at once.
    uvicorn.run(
        application,
        host=host,
        port=port,
        log_level=log_level,
        reload=False,
        access_log=log_level == "debug",
        timeout_keep_alive=int(max(1, keep_alive)),
        limit_concurrency=limit_concurrency,
        h11_max_incomplete_event_size=64 * 1024,
        timeout_graceful_shutdown=10,
    )


def _work_rate(text: str) -> float | None:
    """``--work-rate``: ``auto`` (None: measured after loading) or a positive number."""
    if str(text).strip().lower() == "auto":
        return None
    try:
        rate = float(text)
    except ValueError:
        rate = 0.0
    if not rate > 0:
        raise typer.BadParameter(f"must be 'auto' or a positive number, got {text!r}", param_hint="--work-rate")
    return rate
