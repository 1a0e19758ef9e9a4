"""An ASGI middleware that refuses request bodies over a byte limit with 413, before any route reads them.

By ``Content-Length`` when the client sends one, else while reading a chunked body, so a client cannot make
the server buffer more than the limit either way. A body that stalls (no data for ``timeout`` seconds: a
half-sent upload) is answered 408 and its connection freed, with one log line. Plain ASGI (the
``Scope``/``Receive``/``Send`` callables of the ASGI spec), so it needs no web framework import.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["BodyLimit"]

log = logging.getLogger("kronos.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413 (by Content-Length, or while reading a chunked body)."""

    def __init__(self, app: ASGIApp, limit: int, timeout: float = 30.0) -> None:
        self.app, self.limit, self.timeout = app, limit, timeout

    async def _refuse(self, send: Send, size: str) -> None:
        msg = f"request body of {size} bytes exceeds the limit max_body_bytes={self.limit}"
        await self._answer(send, 413, msg, "limit")

    async def _answer(self, send: Send, status: int, msg: str, kind: str) -> None:
        body = json.dumps({"detail": [{"loc": ["body"], "msg": msg, "type": kind}]}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
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
            try:
                message = await asyncio.wait_for(receive(), self.timeout)
            except asyncio.TimeoutError:
                client = scope.get("client") or ("?", "?")
                log.info("client %s:%s sent no body data for %g s; answered 408", *client, self.timeout)
                msg = f"the request body stalled: no data for {self.timeout:g} s (received {size} bytes)"
                await self._answer(send, 408, msg, "timeout")
                return
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
