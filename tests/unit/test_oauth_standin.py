"""The stand-ins' OAuth2 server: codes are single-use, refresh tokens rotate, tokens expire."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

from autoinvoice.sandbox.oauth import OAuthServer

REDIRECT = "http://127.0.0.1:8765/callback"


def _code(server: OAuthServer) -> str:
    status, url = server.authorize({"response_type": "code", "client_id": "demo-client",
                                    "redirect_uri": REDIRECT, "state": "s1"})
    assert status == 302
    query = parse_qs(urlsplit(url).query)
    assert query["state"] == ["s1"]
    return query["code"][0]


def test_code_exchange_then_rotation_and_expiry() -> None:
    now = [1000.0]
    server = OAuthServer(access_ttl=60, clock=lambda: now[0], values={"tenant_id": "T1"})
    basic = "Basic " + base64.b64encode(b"demo-client:demo-secret").decode()
    code = _code(server)
    status, first = server.token({"grant_type": "authorization_code", "code": code,
                                  "redirect_uri": REDIRECT}, basic)
    assert status == 200
    assert first["tenant_id"] == "T1"
    assert server.check(f"Bearer {first['access_token']}")
    status, _ = server.token({"grant_type": "authorization_code", "code": code,
                              "redirect_uri": REDIRECT}, basic)
    assert status == 400  # a code works once
    now[0] += 61
    assert not server.check(f"Bearer {first['access_token']}")
    status, second = server.token({"grant_type": "refresh_token",
                                   "refresh_token": first["refresh_token"]}, basic)
    assert status == 200
    assert second["refresh_token"] != first["refresh_token"]
    status, body = server.token({"grant_type": "refresh_token",
                                 "refresh_token": first["refresh_token"]}, basic)
    assert (status, body["error"]) == (400, "invalid_grant")  # rotated: the old one is dead
    status, _ = server.token({"grant_type": "refresh_token", "client_id": "demo-client",
                              "client_secret": "wrong", "refresh_token": "x"})
    assert status == 401
