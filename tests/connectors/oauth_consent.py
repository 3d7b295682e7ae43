"""The OAuth2 code flow of ``autoinvoice connect`` against an in-process stand-in: consent,
code exchange and the platform's discovery calls, without a browser or a database."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from autoinvoice.connectors.oauth import PLATFORMS, TokenSet
from autoinvoice.connectors.oauth_client import ClientSettings, OAuthClient

REDIRECT = "http://127.0.0.1:8765/callback"


def consent(core: Any, platform: str, origin: str, transport: httpx.BaseTransport, *,
            fill: Mapping[str, str] | None = None, scopes: tuple[str, ...] | None = None
            ) -> tuple[TokenSet, dict[str, str]]:
    """Consent at ``core``'s authorize path, exchange the code, learn the connection's values
    (the discovery calls go to ``origin`` through ``transport``)."""
    meta = PLATFORMS[platform]
    if scopes is not None:
        from dataclasses import replace

        meta = replace(meta, scopes=scopes)
    authorize, token = core.oauth_paths
    settings = ClientSettings(
        platform=meta, client_id=core.oauth.client_id, client_secret=core.oauth.client_secret,
        authorize_url=origin + authorize, token_url=origin + token, api_origin=origin,
        fill=dict(fill or {}), transport=transport)
    client = OAuthClient(settings, lambda: datetime(2026, 12, 1, tzinfo=UTC))
    auth = client.authorization(REDIRECT)
    with httpx.Client(transport=transport) as http:
        answer = http.get(auth.url)
    assert answer.status_code == 302, answer.text
    callback = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
    tokens = client.exchange(auth, callback)
    return tokens, client.discover(tokens, callback)
