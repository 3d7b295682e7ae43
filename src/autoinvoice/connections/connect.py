"""The authorization-code flow with a local callback: ``autoinvoice connect`` and the demo.

A one-shot HTTP server on 127.0.0.1 receives the consent redirect at ``/callback``; the
state is checked (and the PKCE verifier sent) by ``OAuthClient.exchange``; the connection's
values are learned; everything is stored encrypted by ``save_connection``. Nothing here
prints or logs a token.
"""

from __future__ import annotations

import threading
import webbrowser
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from autoinvoice.connections.crypto import TokenCipher
from autoinvoice.connections.tokens import client_settings, save_connection
from autoinvoice.connectors.errors import AuthError
from autoinvoice.connectors.oauth_client import Authorization, OAuthClient

if TYPE_CHECKING:
    from autoinvoice.bootstrap import App

CALLBACK_PATH = "/callback"
_PAGE = (b"<!doctype html><title>autoinvoice</title><p>autoinvoice received the answer. "
         b"You can close this window and go back to the terminal.</p>")


@dataclass(frozen=True, slots=True)
class Connected:
    tenant: str
    platform: str
    values: Mapping[str, str]
    access_expires_at: datetime | None
    refresh_expires_at: datetime | None

    def describe(self) -> str:
        values = ", ".join(f"{k}={v}" for k, v in self.values.items()) or "no values"
        refresh = self.refresh_expires_at.isoformat() if self.refresh_expires_at else "unknown"
        return (f"connected tenant {self.tenant} to {self.platform} ({values}); "
                f"refresh token good until {refresh}")


class CallbackServer:
    """Waits for one request at ``/callback`` on 127.0.0.1 and keeps its query."""

    def __init__(self, port: int = 0) -> None:
        received: dict[str, str] = {}
        arrived = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urlsplit(self.path)
                if url.path != CALLBACK_PATH or arrived.is_set():
                    self.send_error(404)
                    return
                received.update(parse_qsl(url.query))
                arrived.set()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(_PAGE)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return  # the query carries the code: never logged

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._received, self._arrived = received, arrived
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="oauth-callback")
        self._thread.start()

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{CALLBACK_PATH}"

    def wait(self, timeout: float) -> dict[str, str]:
        if not self._arrived.wait(timeout):
            raise AuthError(f"no answer from the consent page within {timeout:.0f} s")
        return dict(self._received)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> CallbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def oauth_client(app: App, tenant: str) -> OAuthClient:
    config = app.config.tenant(tenant).platform
    return OAuthClient(client_settings(config, app.transports.get(tenant)), app.clock)


def connect(app: App, tenant: str, *, port: int = 8765, open_browser: bool = True,
            timeout: float = 300.0, say: Callable[[str], None] = print) -> Connected:
    """``autoinvoice connect``: a person consents in a browser."""
    TokenCipher.from_env()  # a missing key fails now, not after the person has consented
    client = oauth_client(app, tenant)
    with CallbackServer(port) as callback:
        auth = client.authorization(callback.redirect_uri)
        say(f"Open this URL to connect tenant {tenant} to {client.platform.title}:\n"
            f"  {auth.url}\nwaiting for the answer on {callback.redirect_uri} …")
        if open_browser:
            webbrowser.open(auth.url)
        answer = callback.wait(timeout)
    return finish(app, tenant, client, auth, answer)


def connect_headless(app: App, tenant: str, *, timeout: float = 30.0,
                     choose: Mapping[str, str] | None = None) -> Connected:
    """The same code flow without a person (demo, tests): the authorize endpoint of a
    stand-in redirects at once, and following that redirect delivers the code to our local
    callback over real HTTP. ``choose`` overrides learned values, as a person would pick one
    of several organisations (a demo stand-in holding one per tenant)."""
    TokenCipher.from_env()
    client = oauth_client(app, tenant)
    with CallbackServer(0) as callback:
        auth = client.authorization(callback.redirect_uri)
        with httpx.Client(transport=client.settings.transport, timeout=timeout) as http:
            first = http.get(auth.url)
            if first.status_code not in (301, 302, 303, 307, 308):
                raise AuthError(f"the authorize endpoint answered {first.status_code}, "
                                "not a redirect", platform=client.platform.slug)
        with httpx.Client(timeout=timeout) as local:  # the browser's hop to our callback
            local.get(first.headers["location"])
        answer = callback.wait(timeout)
    return finish(app, tenant, client, auth, answer, choose)


def finish(app: App, tenant: str, client: OAuthClient, auth: Authorization,
           answer: Mapping[str, str], choose: Mapping[str, str] | None = None) -> Connected:
    from autoinvoice.ledger_setup import check_ledger_setup

    tokens = client.exchange(auth, answer)
    values = client.discover(tokens, answer, preset=choose)
    save_connection(app, tenant, tokens, values)
    app.forget_connector(tenant)  # built before this connection: it may lack its values
    check_ledger_setup(app, [tenant])  # the mapped tax codes exist on the ledger
    return Connected(tenant, client.platform.slug, values, tokens.access_expires_at,
                     tokens.refresh_expires_at)
