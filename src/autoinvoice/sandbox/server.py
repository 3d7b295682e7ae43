"""Serving stand-in ASGI apps over real HTTP: on a background thread (tests, demo) or forever (CLI).

``serve_in_thread`` binds the socket itself (port 0 picks a free one), so the port is known
before uvicorn starts and two servers never race for the same port. uvicorn stays quiet
(warnings only, no access log). For stand-ins written as raw ASGI: ``read_body``,
``answer_lifespan``, and ``drop_connection``, which simulates a response lost on the wire (the
request was processed, then the socket closes before a single byte of the answer is sent).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from types import TracebackType
from typing import Any

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_START_TIMEOUT = 10.0
_POLL = 0.005


class RunningServer:
    """A uvicorn server on a background daemon thread; a context manager that stops it."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, host: str, port: int):
        self._server = server
        self._thread = thread
        self.host = host
        self.port = port

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        """Ask uvicorn to exit, close open connections, and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _config(app: ASGIApp, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="auto",
        ws="none",  # stand-ins speak plain HTTP; skips importing a websockets implementation
        timeout_graceful_shutdown=1,
        # The main loop polls should_exit; keep-alive connections are closed on shutdown.
        timeout_keep_alive=5,
    )


def serve_in_thread(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Start ``app`` on ``host:port`` (0 = any free port) and return once it accepts connections."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port: int = sock.getsockname()[1]
    server = uvicorn.Server(_config(app, host, bound_port))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"stand-in:{bound_port}", daemon=True
    )
    thread.start()
    running = RunningServer(server, thread, host, bound_port)
    deadline = time.monotonic() + _START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            running.stop()
            sock.close()
            raise RuntimeError(f"stand-in server on {host}:{bound_port} did not start")
        time.sleep(_POLL)
    return running


def serve_forever(app: ASGIApp, host: str = "127.0.0.1", port: int = 8766) -> None:
    """Serve ``app`` in the foreground until interrupted (the ``sandbox serve`` command)."""
    uvicorn.Server(_config(app, host, port)).run()


async def drop_connection(receive: Receive, send: Send) -> None:
    """Close the client's connection without sending any response.

    ASGI has no message for this, so under uvicorn we close the transport of the request cycle
    that ``send`` is bound to, then wait for uvicorn to notice the disconnect (after which it
    neither logs nor sends anything). Any other server gets an exception, which makes it abort
    the exchange in its own way.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    close = getattr(transport, "close", None)
    if not callable(close):  # uvloop transports are not asyncio.BaseTransport subclasses
        raise ConnectionAbortedError("response deliberately lost")
    close()
    while (await receive())["type"] != "http.disconnect":
        pass


async def read_body(receive: Receive) -> bytes:
    """The whole request body (empty when the client went away first)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def answer_lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge ASGI lifespan startup and shutdown (a stand-in has nothing to set up)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
