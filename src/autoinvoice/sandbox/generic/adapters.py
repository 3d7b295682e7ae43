"""Putting a ``GenericSandbox`` on a wire: ``mock_transport`` (in-process) and ``asgi_app``
(raw ASGI, served by uvicorn through ``sandbox.server``)."""

from __future__ import annotations

from urllib.parse import parse_qsl

import httpx

from autoinvoice.sandbox.faults import ResponseLost
from autoinvoice.sandbox.generic.app import GenericSandbox
from autoinvoice.sandbox.server import (
    ASGIApp,
    Receive,
    Scope,
    Send,
    answer_lifespan,
    drop_connection,
    read_body,
)


def mock_transport(sandbox: GenericSandbox) -> httpx.MockTransport:
    """An httpx transport that answers from ``sandbox`` in-process (no sockets)."""

    def handler(request: httpx.Request) -> httpx.Response:
        try:
            status, headers, body = sandbox.handle(
                request.method, request.url.path, dict(request.url.params),
                dict(request.headers), request.read(),
            )
        except ResponseLost:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from None
        return httpx.Response(status, headers=headers, content=body)

    return httpx.MockTransport(handler)


def asgi_app(sandbox: GenericSandbox) -> ASGIApp:
    """A raw ASGI app serving ``sandbox``; a lost response drops the TCP connection."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"the sandbox speaks HTTP only, not {scope['type']}")
        body = await read_body(receive)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        try:
            status, out, payload = sandbox.handle(scope["method"], scope["path"], query, headers,
                                                  body)
        except ResponseLost:
            await drop_connection(receive, send)
            return
        raw = [(k.encode(), v.encode()) for k, v in out.items()]
        raw.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": payload})

    return app
