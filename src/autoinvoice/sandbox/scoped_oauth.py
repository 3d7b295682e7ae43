"""``ScopedOAuthServer``: the stand-ins' ``OAuthServer`` plus what stricter stand-ins need to be
as strict as their vendor -- the scopes each token was granted (so an endpoint can refuse a
token that lacks its scope), and JWT-shaped tokens carrying claims (Microsoft Entra's ``tid``
in the ID token and the access token, as the real platform issues them).

- ``authorize``: the ``scope`` asked for (space separated) is remembered with the code; a
  scope the server does not offer is refused (``invalid_scope``), as Entra (AADSTS70011) and
  Sage do; none asked for grants ``default_scopes``.
- ``token``: the grant carries its scopes through every refresh; the answer's ``scope`` says
  what was granted; with ``openid`` granted and ``claims`` set, an ``id_token`` comes too.
- ``scopes_of(authorization)``: the scopes of a live bearer token (None when not live).

Tokens are unsigned JWTs (``alg: none``): the stand-in's clients read claims, never verify.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from autoinvoice.sandbox.oauth import OAuthServer, _Grant


@dataclass
class ScopedOAuthServer(OAuthServer):
    #: the scopes this authorization server knows; anything else is ``invalid_scope``
    supported_scopes: frozenset[str] = frozenset()
    default_scopes: frozenset[str] = frozenset()
    #: claims put into every access token (and the ID token when ``openid`` is granted)
    claims: Mapping[str, Any] = field(default_factory=dict)
    _code_scopes: dict[str, frozenset[str]] = field(default_factory=dict)
    _token_scopes: dict[str, frozenset[str]] = field(default_factory=dict)
    _pending: frozenset[str] = frozenset()

    def authorize(self, params: Mapping[str, str]) -> tuple[int, str]:
        asked = frozenset((params.get("scope") or "").replace(",", " ").split())
        unknown = sorted(asked - self.supported_scopes) if self.supported_scopes else []
        if unknown:
            return 400, f"invalid_scope: {' '.join(unknown)}"
        status, where = super().authorize(params)
        if status == 302:
            code = dict(parse_qsl(urlsplit(where).query)).get("code", "")
            with self._lock:
                self._code_scopes[code] = asked or self.default_scopes
        return status, where

    def token(self, form: Mapping[str, str], authorization: str | None = None
              ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if form.get("grant_type") == "authorization_code":
                scopes = self._code_scopes.pop(form.get("code", ""), self.default_scopes)
            else:
                scopes = self._token_scopes.get(form.get("refresh_token", ""),
                                                self.default_scopes)
            self._pending = scopes
        return super().token(form, authorization)

    def scopes_of(self, authorization: str | None) -> frozenset[str] | None:
        if not self.check(authorization):
            return None
        assert authorization is not None
        with self._lock:
            return self._token_scopes.get(authorization[7:], self.default_scopes)

    def issue(self, scopes: frozenset[str] | None = None) -> dict[str, Any]:
        """A token pair as if the user had consented to ``scopes`` (default: all offered)."""
        with self._lock:
            self._pending = scopes if scopes is not None else (
                self.supported_scopes or self.default_scopes)
            return self._issue()

    def _issue(self) -> dict[str, Any]:
        now, scopes = self.clock(), self._pending
        access = self._jwt({**self.claims, "scp": " ".join(sorted(scopes)),
                            "jti": secrets.token_urlsafe(12)})
        refresh = secrets.token_urlsafe(24)
        self._access[access] = now + self.access_ttl
        self._refresh[refresh] = _Grant(refresh, now, dict(self.values))
        self._token_scopes[access] = self._token_scopes[refresh] = scopes
        answer: dict[str, Any] = {"access_token": access, "token_type": "Bearer",
                                  "expires_in": int(self.access_ttl), "refresh_token": refresh,
                                  "scope": " ".join(sorted(scopes)), **self.values,
                                  **self.extra}
        if "openid" in scopes and self.claims:
            answer["id_token"] = self._jwt({**self.claims, "aud": self.client_id})
        return answer

    @staticmethod
    def _jwt(claims: Mapping[str, Any]) -> str:
        def part(data: Mapping[str, Any]) -> str:
            raw = json.dumps(dict(data), separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."
