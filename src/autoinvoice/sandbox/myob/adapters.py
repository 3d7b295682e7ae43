"""Putting a ``MyobSandbox`` on a wire: ``mock_transport`` (in-process, for tests and
preview) and ``asgi_app`` (raw ASGI, served by uvicorn through ``sandbox.server``)."""

from __future__ import annotations

import httpx

from autoinvoice.sandbox.faults import ResponseLost
from autoinvoice.sandbox.myob.app import MyobSandbox
from autoinvoice.sandbox.server import (
    ASGIApp,
    Receive,
    Scope,
    Send,
    answer_lifespan,
    drop_connection,
    read_body,
)


def mock_transport(sandbox: MyobSandbox) -> httpx.MockTransport:
    """An httpx transport served by ``sandbox`` in-process; a lost response raises
    ``httpx.RemoteProtocolError``."""

    def handler(request: httpx.Request) -> httpx.Response:
        try:
            status, headers, body = sandbox.handle(
                request.method, request.url.path, request.url.query.decode(), request.headers,
                request.read())
        except ResponseLost as lost:
            raise httpx.RemoteProtocolError(str(lost), request=request) from lost
        return httpx.Response(status, headers=headers, content=body)

    return httpx.MockTransport(handler)


def asgi_app(sandbox: MyobSandbox) -> ASGIApp:
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
