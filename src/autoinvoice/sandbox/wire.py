"""Putting a stand-in on a wire: ``mock_transport`` (in-process, for tests and preview) and
``asgi_app`` (raw ASGI, served by uvicorn through ``sandbox.server``). Every platform's
stand-in answers through one method, ``handle(method, path, query, headers, body)``, so this
is written once for all of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol
from urllib.parse import unquote

import httpx

from autoinvoice.sandbox.faults import ResponseLost
from autoinvoice.sandbox.server import (
    ASGIApp,
    Receive,
    Scope,
    Send,
    answer_lifespan,
    drop_connection,
    read_body,
)


class StandIn(Protocol):
    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str],
               body: bytes) -> tuple[int, dict[str, str], bytes]: ...


def _path(raw: str) -> str:
    """The decoded path without its query, as ASGI servers hand it over (OData paths such as
    ``companies(…)`` arrive percent-encoded from httpx)."""
    return unquote(raw.partition("?")[0])


def mock_transport(sandbox: StandIn) -> httpx.MockTransport:
    """An httpx transport served by ``sandbox`` in-process; a lost response raises
    ``httpx.RemoteProtocolError`` (the request was processed)."""

    def handler(request: httpx.Request) -> httpx.Response:
        try:
            status, headers, body = sandbox.handle(
                request.method, _path(request.url.raw_path.decode("ascii")),
                request.url.query.decode(), request.headers, request.read())
        except ResponseLost as lost:
            raise httpx.RemoteProtocolError(str(lost), request=request) from lost
        return httpx.Response(status, headers=headers, content=body)

    return httpx.MockTransport(handler)


def asgi_app(sandbox: StandIn) -> ASGIApp:
    """A raw ASGI application serving ``sandbox``; a lost response closes the connection
    before any byte is sent."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            status, out, payload = sandbox.handle(scope["method"], scope["path"],
                                                  scope["query_string"].decode("latin-1"),
                                                  headers, body)
        except ResponseLost:
            await drop_connection(receive, send)
            return
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in out.items()]
        raw.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": payload})

    return app
