"""``ScopedOAuthServer``: the stand-ins' ``OAuthServer`` (which keeps the scopes each token was
granted, so an endpoint can refuse a token that lacks its scope) plus what Business Central's
and Sage's stand-ins need to be as strict as their vendor: a closed set of scopes, and
JWT-shaped tokens carrying claims (Microsoft Entra's ``tid`` in the ID token and the access
token, as the real platform issues them).

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from autoinvoice.sandbox.oauth import OAuthServer, _Grant


@dataclass
class ScopedOAuthServer(OAuthServer):
    """``OAuthServer`` (which keeps each token's scopes) with a closed set of scopes and
    JWT-shaped tokens."""

    #: the scopes this authorization server knows; anything else is ``invalid_scope``
    supported_scopes: frozenset[str] = frozenset()
    #: claims put into every access token (and the ID token when ``openid`` is granted)
    claims: Mapping[str, Any] = field(default_factory=dict)

    def authorize(self, params: Mapping[str, str]) -> tuple[int, str]:
        asked = self._split(params.get("scope", ""))
        unknown = sorted(asked - self.supported_scopes) if self.supported_scopes else []
        if unknown:
            return 400, f"invalid_scope: {' '.join(unknown)}"
        if not asked:  # none asked for: what the app is granted by default
            params = {**params, "scope": " ".join(self.default_scopes)}
        return super().authorize(params)

    def issue(self, scopes: Iterable[str] | None = None) -> dict[str, Any]:
        """A token pair as if the user had consented to ``scopes`` (default: all offered)."""
        chosen = scopes if scopes is not None else (self.supported_scopes or self.default_scopes)
        return super().issue(tuple(chosen))

    def _issue(self, scopes: frozenset[str] = frozenset()) -> dict[str, Any]:
        now = self.clock()
        access = self._jwt({**self.claims, "scp": " ".join(sorted(scopes)),
                            "jti": secrets.token_urlsafe(12)})
        refresh = secrets.token_urlsafe(24)
        self._access[access] = (now + self.access_ttl, scopes)
        self._refresh[refresh] = _Grant(refresh, now, dict(self.values), scopes)
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
