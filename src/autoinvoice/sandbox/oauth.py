"""An OAuth2 authorization server for the stand-ins: the authorization-code grant and the
refresh-token grant of RFC 6749, the way the ledger platforms run them.

Every OAuth2 stand-in (QuickBooks, Xero, FreshBooks, Zoho Books, Business Central, Sage, MYOB)
owns one ``OAuthServer`` and routes its authorize and token paths to it:

- ``authorize(params)``: checks ``client_id``, ``redirect_uri``, ``response_type=code`` and
  returns the redirect URL carrying ``code`` and ``state`` (the user "consents" at once);
- ``token(form, authorization)``: ``grant_type=authorization_code`` (with ``code`` and
  ``redirect_uri``) or ``grant_type=refresh_token``; the client authenticates with HTTP Basic
  (``client_secret_basic``) or ``client_id``/``client_secret`` in the form
  (``client_secret_post``). Returns ``(status, body)``: 200 with ``access_token``,
  ``token_type``, ``expires_in``, ``refresh_token`` (plus ``extra`` fields, e.g. Xero's
  ``id_token`` or QuickBooks' ``x_refresh_token_expires_in``), or 400/401 with
  ``{"error": "invalid_grant" | "invalid_client" | ...}``;
- ``check(authorization_header)``: True when it carries a live bearer token.

Scopes (RFC 6749 §3.3): the ``scope`` asked for at ``authorize`` is what the token carries
(``scopes_of(authorization)``; kept across refreshes, echoed as ``scope`` in every token
answer). ``allowed_scopes`` is what the app may be granted: a request for any other scope is
answered on the redirect with ``error=invalid_scope`` (§4.1.2.1), as Xero does for
``accounting.transactions`` on apps made since 2 March 2026. Each stand-in checks the scopes a
request needs against ``sandbox.scopes``. ``issue(scopes)`` grants ``default_scopes`` unless told.

Refresh tokens rotate on every use (Xero, QuickBooks and Sage all do; the old one dies, after
``grace_seconds``), access tokens expire after ``access_ttl`` seconds of the injectable clock.
Test helpers: ``expire_all()``, ``revoke(token)``, ``refresh_count``.

**The stand-in convention** (what ``autoinvoice demo`` and the tests rely on): every OAuth2
stand-in core exposes

- ``oauth``: its ``OAuthServer`` (client ``demo-client`` / ``demo-secret`` unless told
  otherwise), and
- ``oauth_paths = (authorize_path, token_path)``: where its ASGI app serves them, e.g.
  ``("/oauth2/authorize", "/oauth2/token")``; ``serve_oauth`` answers both in one line.

The demo then sets the tenant's ``authorize_url``/``token_url`` to the served stand-in's base
URL plus those paths and the client credentials to the server's, and connects each demo
tenant with ``autoinvoice.connections.connect.connect_headless`` -- the real code flow over
HTTP (the authorize path redirects at once to the local callback). After consent the
connection's values (``realm_id``, ``tenant_id``…) are learned the way the platform tells
them: the consent redirect (``redirect_values``) or the stand-in's own discovery endpoint at
the platform's path (``/connections``, ``/books/v3/organizations``, ``/users/me``,
``/businesses``, ``companies``…); never a field of the token response (``connect`` no longer
reads one there, so a stand-in handing ids out in ``values`` would not be believed).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

Clock = Callable[[], float]


@dataclass
class _Grant:
    refresh_token: str
    issued_at: float
    values: dict[str, str]
    scopes: frozenset[str] = frozenset()
    replaced_at: float | None = None  # when a newer refresh token took its place


@dataclass
class OAuthServer:
    client_id: str = "demo-client"
    client_secret: str = "demo-secret"
    access_ttl: float = 3600.0
    refresh_ttl: float = 100 * 24 * 3600.0
    grace_seconds: float = 0.0
    #: values returned with every token and kept per connection, e.g. {"realm_id": "9130"}
    values: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: added to the redirect after consent (QuickBooks sends ``realmId`` there)
    redirect_values: Mapping[str, str] = field(default_factory=dict)
    clock: Clock = time.time
    #: scopes the app may be granted (None: whatever it asks for)
    allowed_scopes: frozenset[str] | None = None
    #: what ``issue()`` grants when a test skips the consent
    default_scopes: tuple[str, ...] = ()
    #: how ``scope`` is joined in token answers (Zoho: ``,``)
    scope_separator: str = " "
    #: the consent redirect's ``error`` for a scope the app may not have (Xero:
    #: ``unauthorized_client`` "Invalid scope for client")
    scope_error: tuple[str, str] = ("invalid_scope", "scope not allowed for this client")
    refresh_count: int = 0
    _codes: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict)
    _access: dict[str, tuple[float, frozenset[str]]] = field(default_factory=dict)
    _refresh: dict[str, _Grant] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the user's browser -------------------------------------------------------------------
    def authorize(self, params: Mapping[str, str]) -> tuple[int, str]:
        """(302, redirect URL with code and state) or (400, error text)."""
        if params.get("response_type") != "code":
            return 400, "unsupported_response_type"
        if params.get("client_id") != self.client_id:
            return 400, "invalid client_id"
        redirect = params.get("redirect_uri", "")
        if not redirect.startswith(("http://127.0.0.1", "http://localhost", "https://")):
            return 400, "invalid redirect_uri"
        state = {"state": params["state"]} if "state" in params else {}
        scopes = self._split(params.get("scope", ""))
        refused = sorted(scopes - self.allowed_scopes) if self.allowed_scopes is not None else []
        if refused:
            query = {"error": self.scope_error[0],
                     "error_description": f"{self.scope_error[1]}: {' '.join(refused)}", **state}
            return 302, f"{redirect}{'&' if '?' in redirect else '?'}{urlencode(query)}"
        code = secrets.token_urlsafe(16)
        with self._lock:
            self._codes[code] = (redirect, scopes)
        query = {"code": code, **state}
        query.update(self.redirect_values)
        return 302, f"{redirect}{'&' if '?' in redirect else '?'}{urlencode(query)}"

    # -- the client's back channel ------------------------------------------------------------
    def token(self, form: Mapping[str, str], authorization: str | None = None
              ) -> tuple[int, dict[str, Any]]:
        if not self._client_ok(form, authorization):
            return 401, {"error": "invalid_client"}
        grant = form.get("grant_type")
        with self._lock:
            if grant == "authorization_code":
                redirect, scopes = self._codes.pop(form.get("code", ""), (None, frozenset()))
                if redirect is None or redirect != form.get("redirect_uri"):
                    return 400, {"error": "invalid_grant", "error_description": "bad code"}
                return 200, self._issue(scopes)
            if grant == "refresh_token":
                old = self._refresh.get(form.get("refresh_token", ""))
                now = self.clock()
                used = old is not None and old.replaced_at is not None and (
                    now - old.replaced_at >= self.grace_seconds)
                if old is None or now - old.issued_at > self.refresh_ttl or used:
                    return 400, {"error": "invalid_grant",
                                 "error_description": "refresh token expired or already used"}
                old.replaced_at = old.replaced_at or now
                self.refresh_count += 1
                return 200, self._issue(old.scopes)
        return 400, {"error": "unsupported_grant_type"}

    def check(self, authorization: str | None) -> bool:
        return self.scopes_of(authorization) is not None

    def scopes_of(self, authorization: str | None) -> frozenset[str] | None:
        """The scopes of a live bearer token (``Bearer`` or Zoho's ``Zoho-oauthtoken``), or
        None when the header carries no live token."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme not in ("Bearer", "Zoho-oauthtoken") or not token:
            return None
        with self._lock:
            held = self._access.get(token)
        return held[1] if held is not None and self.clock() < held[0] else None

    # -- test helpers ---------------------------------------------------------------------------
    def issue(self, scopes: tuple[str, ...] | None = None) -> dict[str, Any]:
        """A token pair as if the user had just connected (tests that skip the browser),
        granting ``scopes`` (default: ``default_scopes``)."""
        with self._lock:
            return self._issue(frozenset(self.default_scopes if scopes is None else scopes))

    def expire_all(self) -> None:
        with self._lock:
            self._access.clear()

    def revoke(self, refresh_token: str) -> None:
        with self._lock:
            self._refresh.pop(refresh_token, None)

    # -- inside ---------------------------------------------------------------------------------
    def _issue(self, scopes: frozenset[str] = frozenset()) -> dict[str, Any]:
        now = self.clock()
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self._access[access] = (now + self.access_ttl, scopes)
        self._refresh[refresh] = _Grant(refresh, now, dict(self.values), scopes)
        granted = {"scope": self.scope_separator.join(sorted(scopes))} if scopes else {}
        return {"access_token": access, "token_type": "Bearer",
                "expires_in": int(self.access_ttl), "refresh_token": refresh,
                **self.values, **self.extra, **granted}

    def _split(self, scope: str) -> frozenset[str]:
        return frozenset(s.strip() for s in scope.replace(",", " ").split() if s.strip())

    def _client_ok(self, form: Mapping[str, str], authorization: str | None) -> bool:
        if authorization and authorization.startswith("Basic "):
            try:
                pair = base64.b64decode(authorization[6:]).decode()
            except ValueError:
                return False
            return pair == f"{self.client_id}:{self.client_secret}"
        return (form.get("client_id") == self.client_id
                and form.get("client_secret") == self.client_secret)


# -- serving it -------------------------------------------------------------------------------
async def serve_oauth(server: OAuthServer, paths: tuple[str, str], scope: Any, receive: Any,
                      send: Any) -> bool:
    """Answer ``scope`` when it is ``GET authorize_path`` or ``POST token_path`` (then True);
    False for any other request, which the stand-in's own app handles."""
    from autoinvoice.sandbox.server import read_body

    method, path = scope.get("method"), scope.get("path")
    if method == "GET" and path == paths[0]:
        query = dict(parse_qsl(scope.get("query_string", b"").decode()))
        status, where = server.authorize(query)
        if status == 302:
            await _answer(send, 302, b"", [(b"location", where.encode())])
        else:
            await _answer(send, status, where.encode(), [(b"content-type", b"text/plain")])
        return True
    if method == "POST" and path == paths[1]:
        form = dict(parse_qsl((await read_body(receive)).decode()))
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        status, body = server.token(form, headers.get("authorization"))
        await _answer(send, status, json.dumps(body).encode(),
                      [(b"content-type", b"application/json"), (b"cache-control", b"no-store")])
        return True
    return False


def oauth_app(server: OAuthServer, paths: tuple[str, str] = ("/oauth/authorize", "/oauth/token"),
              routes: Mapping[str, Callable[[], Any]] | None = None) -> Any:
    """A bare ASGI app serving ``server`` (tests), plus ``GET`` JSON ``routes`` that need a
    live bearer token (a platform's discovery endpoint, e.g. ``/connections``)."""
    from autoinvoice.sandbox.server import answer_lifespan

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if await serve_oauth(server, paths, scope, receive, send):
            return
        route = (routes or {}).get(scope["path"])
        if route is None:
            await _answer(send, 404, b'{"error":"not found"}', [])
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        if not server.check(headers.get("authorization")):
            await _answer(send, 401, b'{"error":"invalid_token"}', [])
            return
        await _answer(send, 200, json.dumps(route()).encode(),
                      [(b"content-type", b"application/json")])

    return app


async def _answer(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
                  ) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
