"""The OAuth2 authorization-code and refresh-token flows of one tenant's platform, over
Authlib's httpx client, plus learning the connection's values after consent.

``OAuthClient`` knows no database: ``autoinvoice.connections`` stores what it returns.
Errors, mapped once here:

- the token endpoint says ``invalid_grant`` (refresh token expired, revoked or already
  used; code spent) -> ``ReconnectRequired`` (an ``AuthError``): only a new consent helps;
- ``invalid_client`` and other OAuth errors, 4xx -> ``AuthError`` (configuration);
- network failures and 5xx -> ``TransientError``.

No message carries a token: the token endpoint's ``error_description`` is kept, never its
request or the tokens it returned.
"""

from __future__ import annotations

import hmac
import re
import secrets
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from authlib.deprecate import AuthlibDeprecationWarning

with warnings.catch_warnings():  # Authlib 1.9.10+ nudges towards httpx2; we stay on httpx
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.base_client.errors import OAuthError
    from authlib.integrations.httpx_client import OAuth2Client

from autoinvoice.connectors.errors import AuthError, ConnectorError, TransientError
from autoinvoice.connectors.oauth import (
    MULTI_TENANT_ALIASES,
    Discovery,
    OAuthPlatform,
    TokenSet,
    dig,
    token_set,
)

TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class ReconnectRequired(AuthError):
    """The grant is gone (``invalid_grant``): the tenant must connect again."""


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Everything the flows need for one tenant on one platform (resolved from config)."""

    platform: OAuthPlatform
    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)
    authorize_url: str
    token_url: str
    api_origin: str
    #: placeholders in URLs and discovery paths: ``entra_tenant``, ``environment``
    fill: Mapping[str, str] = field(default_factory=dict)
    transport: httpx.BaseTransport | None = None
    #: the scopes to ask for (empty: the platform's default set)
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Authorization:
    """One consent request: the URL to open and what must come back with the code."""

    url: str
    state: str = field(repr=False)
    code_verifier: str | None = field(repr=False)
    redirect_uri: str


class OAuthClient:
    def __init__(self, settings: ClientSettings, clock: Callable[[], datetime]) -> None:
        self.settings, self._clock = settings, clock
        self.platform = settings.platform

    # -- consent ---------------------------------------------------------------------------
    def authorization(self, redirect_uri: str) -> Authorization:
        """A fresh ``state`` (and PKCE S256 verifier where the platform supports it)."""
        verifier = secrets.token_urlsafe(48) if self.platform.pkce else None
        with self._client(redirect_uri) as client:
            url, state = client.create_authorization_url(
                self.settings.authorize_url, state=secrets.token_urlsafe(24),
                code_verifier=verifier, **dict(self.platform.extra_authorize))
        return Authorization(url=str(url), state=str(state), code_verifier=verifier,
                             redirect_uri=redirect_uri)

    def exchange(self, auth: Authorization, callback: Mapping[str, str]) -> TokenSet:
        """The tokens for the code on the consent redirect ``callback`` (its query)."""
        if "error" in callback:
            raise AuthError(f"{self.platform.title} refused the consent: "
                            f"{callback.get('error')} {callback.get('error_description', '')}"
                            .strip(), platform=self.platform.slug)
        if not hmac.compare_digest(callback.get("state", ""), auth.state):
            raise AuthError("the consent redirect's state does not match the request: "
                            "ignored (start `autoinvoice connect` again)",
                            platform=self.platform.slug)
        if not callback.get("code"):
            raise AuthError("the consent redirect carries no code", platform=self.platform.slug)
        extra = {"code_verifier": auth.code_verifier} if auth.code_verifier else {}
        token_url = self._token_url(self.token_server(callback))
        with self._client(auth.redirect_uri) as client, self._mapped():
            response = client.fetch_token(token_url, grant_type="authorization_code",
                                          code=callback["code"], **extra)
        return token_set(response, self._clock(), self.platform)

    # -- refresh ---------------------------------------------------------------------------
    def refresh(self, refresh_token: str, token_server: str | None = None) -> TokenSet:
        """A new token set; the platform may rotate the refresh token (store the new one).
        ``token_server``: the connection's own accounts server (Zoho's other data centres)."""
        with self._client(None) as client, self._mapped():
            response = client.refresh_token(self._token_url(token_server),
                                            refresh_token=refresh_token)
        return token_set(response, self._clock(), self.platform, previous_refresh=refresh_token)

    def token_server(self, callback: Mapping[str, str]) -> str | None:
        """The accounts server the consent redirect names (Zoho: ``accounts-server``), checked
        against the platform's own hosts (or the configured token URL's): the client secret
        is never sent where a redirect alone says."""
        param = self.platform.token_server_param
        server = callback.get(param, "").rstrip("/") if param else ""
        if not server:
            return None
        parts, configured = urlsplit(server), urlsplit(self.settings.token_url)
        own = (parts.scheme, parts.netloc) == (configured.scheme, configured.netloc)
        vendor = parts.scheme == "https" and re.fullmatch(self.platform.token_servers or "",
                                                          parts.netloc) is not None
        if not (own or vendor) or parts.path:
            raise AuthError(f"the consent redirect names an accounts server that is not "
                            f"{self.platform.title}'s: {server}", platform=self.platform.slug)
        return server

    def _token_url(self, server: str | None) -> str:
        if not server:
            return self.settings.token_url
        return server + urlsplit(self.settings.token_url).path

    # -- what the connection is ------------------------------------------------------------
    def discover(self, tokens: TokenSet, callback: Mapping[str, str],
                 preset: Mapping[str, str] | None = None) -> dict[str, str]:
        """The connection's values (realm id, tenant id, …): ``preset`` ones (a choice made
        beforehand), from the consent redirect, from a token-answer field the platform documents
        for it (Zoho's ``api_domain``), from the token's claims or the config, else from the
        platform's discovery call -- never from an undocumented token-answer field."""
        values: dict[str, str] = dict(preset or {})
        origin = self.settings.api_origin.rstrip("/")
        for item in self.platform.discovery:
            if item.name in values:  # chosen beforehand
                continue
            if item.token_field is not None:
                if not tokens.extra.get(item.token_field):
                    raise AuthError(f"the token answer carries no {item.token_field}",
                                    platform=self.platform.slug)
                values[item.name] = str(tokens.extra[item.token_field])
                continue
            found = callback.get(item.redirect_param) if item.redirect_param else None
            if found:
                values[item.name] = item.template.format(value=found, origin=origin)
                continue
            known = self._known(item, tokens)
            if known:
                values[item.name] = known
                continue
            if item.path is None:
                raise AuthError(self._missing(item), platform=self.platform.slug)
            answer = self._get(tokens, item.path.format(**{**self.settings.fill, **values}),
                               item.headers, self._origin(values))
            found = self._pick(item, answer)
            if found in (None, ""):
                raise AuthError(f"{self.platform.title} lists no {item.name} for this login",
                                platform=self.platform.slug)
            values[item.name] = str(found)
        server = self.token_server(callback)
        if server:
            values["accounts_server"] = server
        return values

    def _origin(self, values: Mapping[str, str]) -> str:
        """The API origin: the connection's own (Zoho's ``api_domain``) once known."""
        field_ = self.platform.origin_field
        return (values.get(field_) if field_ else None) or self.settings.api_origin

    def _pick(self, item: Discovery, answer: Any) -> Any:
        """The value out of ``answer``: the first shape (``pick``, then ``fallback_picks``)
        that holds it; of a list, the element the config chooses (``choose_by``), else the
        only one -- or the first, unless the platform's elements must be chosen."""
        for pick in (item.pick, *item.fallback_picks):
            at = next((i for i, step in enumerate(pick) if isinstance(step, int)), None)
            listed = dig(answer, pick[:at]) if at is not None else None
            if not isinstance(listed, list):
                found = dig(answer, pick)
                if found not in (None, ""):
                    return found
                continue
            if not listed:
                continue
            rest = pick[at + 1:] if at is not None else ()
            return dig(self._choose(item, listed), rest)
        return None

    def _choose(self, item: Discovery, listed: list[Any]) -> Any:
        wanted = self.settings.fill.get(item.choose_by or "") if item.choose_by else None
        if wanted:
            for element in listed:
                if any(str(dig(element, (n,)) or "").casefold() == wanted.casefold()
                       for n in item.names):
                    return element
            raise AuthError(f"platform.{item.choose_by} = {wanted!r} is none of what "
                            f"{self.platform.title} lists: {_labels(item, listed)}",
                            platform=self.platform.slug)
        if len(listed) > 1 and item.must_choose:
            raise AuthError(f"{self.platform.title} lists {len(listed)} for this login: set "
                            f"platform.{item.choose_by} to one of {_labels(item, listed)}",
                            platform=self.platform.slug)
        return listed[0]

    def _known(self, item: Discovery, tokens: TokenSet) -> str | None:
        """A value the token's claims or the platform config already give."""
        if item.claim and tokens.claims.get(item.claim):
            return str(tokens.claims[item.claim])
        configured = self.settings.fill.get(item.from_fill) if item.from_fill else None
        if configured and configured.lower() not in MULTI_TENANT_ALIASES:
            return configured
        return None

    def _missing(self, item: Discovery) -> str:
        if item.redirect_param:
            return f"the consent redirect carries no {item.redirect_param}"
        said = f"the token has no {item.claim!r} claim" if item.claim else "nothing names it"
        return (f"{self.platform.title} connection: no {item.name} ({said}); set "
                f"platform.{item.from_fill or item.name} to it")

    def _get(self, tokens: TokenSet, path: str, headers: Mapping[str, str],
             origin: str | None = None) -> Any:
        extra = {"x-myobapi-key": self.settings.client_id} if self.platform.slug == "myob" else {}
        url = (origin or self.settings.api_origin).rstrip("/") + path
        try:
            with httpx.Client(transport=self.settings.transport, timeout=TIMEOUT) as http:
                response = http.get(url, headers={
                    "Authorization": f"{self.platform.auth_scheme} {tokens.access_token}",
                    "Accept": "application/json", **extra, **dict(headers)})
        except httpx.TransportError as exc:
            raise TransientError(f"network error while reading {path}: {type(exc).__name__}",
                                 platform=self.platform.slug) from None
        if response.status_code >= 400:
            kind = TransientError if response.status_code >= 500 else AuthError
            raise kind(f"GET {path} answered {response.status_code}",
                       platform=self.platform.slug, status=response.status_code)
        return response.json()

    # -- inside ----------------------------------------------------------------------------
    @contextmanager
    def _client(self, redirect_uri: str | None) -> Iterator[Any]:
        p = self.platform
        client = OAuth2Client(
            client_id=self.settings.client_id, client_secret=self.settings.client_secret,
            token_endpoint_auth_method=p.client_auth.value,
            scope=p.scope_separator.join(self.settings.scopes or p.scopes),
            redirect_uri=redirect_uri,
            code_challenge_method="S256" if p.pkce else None,
            transport=self.settings.transport, timeout=TIMEOUT)
        try:
            yield client
        finally:
            client.close()

    @contextmanager
    def _mapped(self) -> Iterator[None]:
        slug = self.platform.slug
        try:
            yield
        except OAuthError as exc:
            raise _oauth_error(slug, str(exc.error), exc.description) from None
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            kind: type[ConnectorError] = TransientError if status >= 500 else AuthError
            raise kind(f"token endpoint answered {status}", platform=slug,
                       status=status) from None
        except httpx.TransportError as exc:
            raise TransientError(f"token endpoint unreachable: {type(exc).__name__}",
                                 platform=slug) from None


def _labels(item: Discovery, listed: list[Any]) -> str:
    """How a person recognises each listed element: its name and id."""
    out = []
    for element in listed:
        said = [str(dig(element, (n,))) for n in item.names if dig(element, (n,))]
        out.append(f"{said[-1]!r} ({said[0]})" if len(said) > 1 else repr(said[0]) if said
                   else "?")
    return ", ".join(out)


def _oauth_error(slug: str, error: str, description: str | None) -> AuthError:
    detail = f"{error}: {description}" if description else error
    if error == "invalid_grant":
        return ReconnectRequired(f"the platform refused the grant ({detail})",
                                 platform=slug, code=error)
    return AuthError(f"the token endpoint refused us ({detail})", platform=slug, code=error)
