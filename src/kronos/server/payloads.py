"""The body of ``POST /v1/forecast`` as a plain dict: a JSON document or a multipart CSV upload.

Both forms carry the same fields (``ForecastRequest``); an upload's CSV goes through the same reader as
``kronos forecast`` (:func:`kronos.bars.reader.read_bars`), so a bad file fails with the same words. The
OpenAPI description of the two forms is here too, beside the list of form fields it must match. No FastAPI
import: the request is anything with ``headers``, ``body()`` and ``form()`` (Starlette's ``Request``).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import pandas as pd
from pydantic import ValidationError

from kronos.bars.reader import SYMBOL_COL, TIME_COL, read_bars
from kronos.core.errors import InputError
from kronos.server.inference import RequestError

__all__ = ["MAX_JSON_DEPTH", "forecast_openapi", "json_depth", "read_payload", "validation_detail"]

#: The deepest nesting of arrays and objects a JSON body may have (a forecast request needs 3).
MAX_JSON_DEPTH = 16
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')

#: Form fields that carry one value each, and those that carry a comma-separated list.
_SCALAR_FIELDS = (
    "pred_len",
    "sample_count",
    "T",
    "top_p",
    "seed",
    "calibrate",
    "lookback",
    "splits",
    "anchor",
    "return_paths",
    "calendar",
)
_LIST_FIELDS = ("quantiles", "future_timestamps")


class _Request(Protocol):
    """What is read of an HTTP request (Starlette's ``Request`` has it)."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def body(self) -> bytes: ...

    async def form(self) -> Any: ...


async def read_payload(request: _Request) -> dict[str, Any]:
    """The request's fields as a dict, from a JSON body or a multipart upload (by Content-Type).

    Raises :class:`~kronos.server.inference.RequestError`: 422 for a body that is not JSON or an unreadable
    upload, 415 for any other content type.
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        return await _payload_from_form(request)
    if ctype in ("application/json", ""):
        body = await request.body()
        depth = json_depth(body)
        if depth > MAX_JSON_DEPTH:  # refused before parsing: the parser would recurse that deep
            raise RequestError(400, ["body"], f"the JSON body nests {depth} levels deep; the limit is {MAX_JSON_DEPTH}")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise RequestError(422, ["body"], f"the body is not valid JSON ({exc})") from None
    raise RequestError(415, ["header", "content-type"], f"send application/json or multipart/form-data, not {ctype!r}")


def json_depth(body: bytes) -> int:
    """The deepest nesting of ``[`` and ``{`` in a JSON text (brackets inside strings do not count).

    Linear and vectorised, so it can run on every body before :func:`json.loads`, whose recursion a
    body of 100,000 ``[`` would otherwise exhaust.
    """
    bare = np.frombuffer(_JSON_STRING.sub(b'""', body), dtype=np.uint8)
    if bare.size == 0:
        return 0
    step = np.isin(bare, (ord("["), ord("{"))).astype(np.int64) - np.isin(bare, (ord("]"), ord("}")))
    return int(max(0, np.cumsum(step).max()))


def validation_detail(exc: ValidationError) -> list[dict[str, Any]]:
    """A pydantic error as FastAPI's 422 ``detail``: one entry per field, located under ``body``."""
    return [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors(include_url=False)]


async def _payload_from_form(request: _Request) -> dict[str, Any]:
    """A multipart upload: ``file`` (CSV of bars) plus the same fields as the JSON body, as form fields."""
    form = await request.form()
    unknown = sorted(set(form.keys()) - {"file", *_SCALAR_FIELDS, *_LIST_FIELDS})
    if unknown:  # as strict as the JSON body (extra="forbid")
        raise RequestError(
            422,
            ["body", unknown[0]],
            f"unknown form field(s) {unknown}; the fields are {['file', *_SCALAR_FIELDS, *_LIST_FIELDS]}",
        )
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
    for name in _SCALAR_FIELDS:
        value = form.get(name)
        if isinstance(value, str) and value != "":
            payload[name] = value
    for name in _LIST_FIELDS:
        value = form.get(name)
        if isinstance(value, str) and value.strip():
            payload[name] = [v.strip() for v in value.split(",") if v.strip()]
    return payload


def forecast_openapi() -> dict[str, Any]:
    """The ``openapi_extra`` of the forecast route: its two body forms (JSON, multipart) and its refusals.

    The route reads its body itself (either form), so FastAPI cannot describe it; this does.
    """
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
        "lookback": {
            "type": "string",
            "description": "'ensemble' (default), 'auto', a number of bars, or a comma-separated list (64,auto)",
        },
        "splits": {"type": "boolean", "description": "undo share splits left in the bars (default true)"},
        "anchor": {"type": "boolean", "description": "start the paths from the last bar as sent (default true)"},
        "return_paths": {"type": "boolean"},
        "calendar": {"type": "string", "description": "'auto' (default), 'own' or an exchange name such as XNYS"},
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
