"""HTTP service for Kronos forecasts: ``kronos serve`` (FastAPI + uvicorn, the ``server`` extra).

``create_app(predictor)`` builds the application: ``POST /v1/forecast`` (JSON or CSV upload),
``GET /v1/models``, ``/healthz``, ``/readyz``, OpenAPI docs at ``/docs`` and a web page at ``/``.
Concurrent requests are micro-batched (:mod:`kronos.server.batching`).
"""

from __future__ import annotations

from kronos.core.extras import require

for _module in ("fastapi", "starlette", "uvicorn"):  # checked first: one error naming the extra
    require("server", _module, purpose="the HTTP server (kronos serve)")

from kronos.server.app import ServerSettings, create_app  # noqa: E402
from kronos.server.inference import Limits  # noqa: E402

__all__ = ["Limits", "ServerSettings", "create_app"]
