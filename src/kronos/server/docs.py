"""The API's own documentation, offline: ``/docs`` (Swagger UI), ``/redoc`` (ReDoc) and ``openapi.json``.

Why a module: FastAPI loads Swagger UI and ReDoc from a CDN, so ``/docs`` was a blank page offline, and it
lists only the models a route declares, so the forecast route's ``ForecastRequest`` (its body is read by hand,
JSON or multipart) was referred to but not defined. Here the pages load the assets shipped inside the
installed ``fastapi-offline`` package (a maintained PyPI package, MIT) and a Content-Security-Policy keeps the
browser from fetching anything else; the OpenAPI document defines every schema it refers to.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from kronos.core.extras import MissingExtraError, require
from kronos.server.schemas import ForecastRequest

__all__ = ["docs_router", "install_docs"]

log = logging.getLogger("kronos.server")
docs_router = APIRouter()


#: The docs pages may load nothing from outside this server (the browser enforces it).
_LOCAL_ONLY = (
    "default-src 'self' blob: data:; script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; worker-src 'self' blob:"
)


@docs_router.get("/docs", include_in_schema=False)
async def swagger_ui() -> HTMLResponse:
    """Swagger UI from the assets of the installed ``fastapi-offline`` package: no CDN, works offline."""
    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Kronos forecasting service - Swagger UI",
        swagger_js_url="/static/docs/swagger-ui-bundle.js",
        swagger_css_url="/static/docs/swagger-ui.css",
        swagger_favicon_url="/static/docs/favicon.png",
        swagger_ui_parameters={"validatorUrl": None},  # no badge from the online validator
    )
    page.headers["Content-Security-Policy"] = _LOCAL_ONLY
    return page


@docs_router.get("/redoc", include_in_schema=False)
async def redoc() -> HTMLResponse:
    """ReDoc from the installed ``fastapi-offline`` assets, without Google fonts (works offline)."""
    page = get_redoc_html(
        openapi_url="/openapi.json",
        title="Kronos forecasting service - ReDoc",
        redoc_js_url="/static/docs/redoc.standalone.js",
        redoc_favicon_url="/static/docs/favicon.png",
        with_google_fonts=False,
    )
    page.headers["Content-Security-Policy"] = _LOCAL_ONLY  # ReDoc's footer logo would come from its CDN
    return page


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with the request schema the forecast route reads itself (and its ``$defs``).

    FastAPI only lists the models a route declares; ``/v1/forecast`` parses its body itself (JSON or
    multipart), so its ``ForecastRequest`` is added here and every ``$ref`` of the document resolves.
    """
    if app.openapi_schema is None:
        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        request = ForecastRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, schema in request.pop("$defs", {}).items():
            schemas.setdefault(name, schema)
        schemas["ForecastRequest"] = request
        app.openapi_schema = doc
    return app.openapi_schema


def docs_assets() -> Path | None:
    """Swagger UI and ReDoc as shipped inside the installed ``fastapi-offline`` package (None without it)."""
    try:
        package = require("server", "fastapi_offline", purpose="the /docs and /redoc pages")
    except MissingExtraError:
        log.warning("fastapi-offline is not installed: /docs and /redoc have no assets")
        return None
    path = Path(package.__file__).parent / "static"
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs``, ``/redoc``, their assets under ``/static/docs`` and the complete OpenAPI document.

    Call before mounting ``/static``, so that ``/static/docs`` takes precedence.
    """
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    app.include_router(docs_router)
    assets = docs_assets()
    if assets is not None:
        app.mount("/static/docs", StaticFiles(directory=assets), name="docs-assets")
