"""The consent step of ``autoinvoice connect`` against an in-process stand-in: the authorize
URL is opened through the stand-in's transport, the redirect's query is what our callback
would receive, then the code is exchanged and the connection's values discovered with the
real ``OAuthClient``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from autoinvoice.connectors.oauth import PLATFORMS, TokenSet
from autoinvoice.connectors.oauth_client import ClientSettings, OAuthClient
from autoinvoice.sandbox.wire import mock_transport

REDIRECT = "http://127.0.0.1:8765/callback"
NOW = datetime(2026, 12, 8, tzinfo=UTC)


def client_for(slug: str, core: Any, *, api_origin: str, choice: str | None = None,
               client: tuple[str, str] = ("demo-client", "demo-secret"),
               transport: httpx.BaseTransport | None = None) -> OAuthClient:
    meta = PLATFORMS[slug]
    authorize, token = core.oauth_paths
    return OAuthClient(ClientSettings(
        platform=meta, client_id=client[0], client_secret=client[1],
        authorize_url=api_origin + authorize, token_url=api_origin + token,
        api_origin=api_origin, transport=transport or mock_transport(core),
        scopes=meta.scopes_for(choice)), lambda: NOW)


def consent(client: OAuthClient) -> tuple[TokenSet, dict[str, str]]:
    """The tokens and discovered values of one consent (which is granted at once)."""
    auth = client.authorization(REDIRECT)
    with httpx.Client(transport=client.settings.transport) as browser:
        answer = browser.get(auth.url)
    assert answer.status_code == 302, answer.text
    callback = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
    tokens = client.exchange(auth, callback)
    return tokens, client.discover(tokens, callback)
