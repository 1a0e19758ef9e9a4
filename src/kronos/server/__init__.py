"""HTTP service for Kronos forecasts: ``kronos serve`` (FastAPI + uvicorn, the ``server`` extra).

``create_app(predictor)`` builds the application: ``POST /v1/forecast`` (JSON or CSV upload),
``GET /v1/models``, ``/healthz``, ``/readyz``, OpenAPI docs at ``/docs`` and a web page at ``/``.
Concurrent requests are micro-batched (:mod:`kronos.server.batching`).
"""

from __future__ import annotations

try:
    from kronos.server.app import ServerSettings, create_app
except ImportError as exc:  # pragma: no cover - only without the extra
    raise ImportError(
        f"the Kronos server needs the 'server' extra: pip install 'kronos-kline[server]' ({exc})"
    ) from exc
from kronos.server.inference import Limits

__all__ = ["Limits", "ServerSettings", "create_app"]
