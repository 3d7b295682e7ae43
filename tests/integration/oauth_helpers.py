"""A tenant on Xero whose OAuth2 server is an ``OAuthServer`` served on loopback."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoinvoice.bootstrap import App
from autoinvoice.config import parse_config
from autoinvoice.connections.crypto import TokenCipher
from autoinvoice.sandbox.oauth import OAuthServer, oauth_app
from autoinvoice.sandbox.server import serve_in_thread
from autoinvoice.store.db import make_engine, migrate, session_factory
from autoinvoice.store.models import OAuthConnectionRow
from tests.integration.conftest import FakeClock, tenant_toml

PATHS = ("/oauth/authorize", "/oauth/token")
CLIENT_ENV = {"TEST_OAUTH_CLIENT_ID": "demo-client", "TEST_OAUTH_CLIENT_SECRET": "demo-secret"}
XERO_TENANT = "7cb59f93-2964-421d-bb5e-a0f7a4572a44"


def config_text(db: Path, base_url: str, platform: str = "xero") -> str:
    return f"""
documents_dir = "{db.parent / 'docs'}"
[database]
url = "sqlite:///{db}"
""" + tenant_toml("acme", platform, f"""base_url = "{base_url}"
authorize_url = "{base_url}{PATHS[0]}"
token_url = "{base_url}{PATHS[1]}"
credentials = {{ client_id = "env:TEST_OAUTH_CLIENT_ID", \
client_secret = "env:TEST_OAUTH_CLIENT_SECRET" }}""")


def make_app(config_path: Path, clock: Any = None) -> App:
    config = parse_config(config_path.read_text(), str(config_path))
    engine = make_engine(config.database.url)
    migrate(engine)
    extra = {"clock": clock} if clock is not None else {}
    return App(config=config, engine=engine, sessions=session_factory(engine), **extra)


def slow_token_endpoint(app: Any, seconds: float) -> Any:
    """The token endpoint takes its time: two refreshes would overlap."""
    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == PATHS[1]:
            await asyncio.sleep(seconds)
        await app(scope, receive, send)
    return wrapped


@dataclass
class OAuthWorld:
    server: OAuthServer
    app: App
    clock: FakeClock
    base_url: str
    config_path: Path

    def secrets(self) -> dict[str, Any]:
        with self.app.sessions() as session:
            row = session.query(OAuthConnectionRow).one()
            return TokenCipher.from_env().decrypt(row.tenant, row.platform, row.secret)

    def issued(self) -> list[str]:
        return [*self.server._access, *self.server._refresh]

    def basic(self) -> str:
        return "Basic " + base64.b64encode(b"demo-client:demo-secret").decode()


@contextmanager
def oauth_world(tmp_path: Path, *, delay: float = 0.0, platform: str = "xero",
                **server_kwargs: Any) -> Iterator[OAuthWorld]:
    clock = FakeClock()
    server = OAuthServer(clock=lambda: clock.now.timestamp(), **server_kwargs)
    asgi = oauth_app(server, PATHS, routes={
        "/connections": lambda: [{"id": "c1", "tenantId": XERO_TENANT,
                                  "tenantName": "Demo Company (US)"}]})
    if delay:
        asgi = slow_token_endpoint(asgi, delay)
    with serve_in_thread(asgi) as served:
        path = tmp_path / "autoinvoice.toml"
        path.write_text(config_text(tmp_path / "oauth.db", served.base_url, platform))
        yield OAuthWorld(server, make_app(path, clock), clock, served.base_url, path)
