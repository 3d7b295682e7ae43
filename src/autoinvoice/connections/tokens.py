"""``DbTokenSource``: a tenant's OAuth2 tokens, kept encrypted in ``oauth_connections`` and
refreshed one at a time, whatever the number of workers.

A refresh runs inside one write transaction on the connection's row: on SQLite
``sessions.begin()`` is ``BEGIN IMMEDIATE`` (one writer across processes, and the store's
writer lock across threads), on PostgreSQL the row is read ``FOR UPDATE``. Inside it the row
is read again: when another worker refreshed meanwhile (the token it holds is no longer the
one that was due or refused), that token is used and the platform is not asked twice -- which
matters, since most of these platforms rotate single-use refresh tokens and a second refresh
with the old one would kill the connection. Otherwise the token endpoint is called and the
new access token and the rotated refresh token are written and committed together right
after it answers.

``invalid_grant`` marks the connection ``needs_reconnect`` (committed) and raises
``ReconnectRequired`` naming ``autoinvoice connect PLATFORM --tenant T``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from autoinvoice.connections.crypto import TokenCipher
from autoinvoice.connectors.errors import AuthError, ConnectorError
from autoinvoice.connectors.oauth import REFRESH_MARGIN, OAuthPlatform, TokenSet, oauth_platform
from autoinvoice.connectors.oauth_client import ClientSettings, OAuthClient, ReconnectRequired
from autoinvoice.store.models import OAuthConnectionRow
from autoinvoice.validation import InputError

if TYPE_CHECKING:
    from autoinvoice.bootstrap import App
    from autoinvoice.config import PlatformConfig

log = logging.getLogger("autoinvoice.oauth")


def connect_hint(platform: str, tenant: str) -> str:
    return f"run `autoinvoice connect {platform} --tenant {tenant}`"


def platform_of(slug: str) -> OAuthPlatform:
    meta = oauth_platform(slug)
    if meta is None:
        raise InputError([f"platform {slug!r} does not connect with OAuth2"], source="connect")
    return meta


def client_settings(config: PlatformConfig, transport: Any = None) -> ClientSettings:
    """The flows' settings from the tenant's platform section (secrets resolved now)."""
    meta = platform_of(config.name)
    fill = {"entra_tenant": config.entra_tenant or "organizations",
            "environment": config.environment or "production",
            "company": config.company or "", "business": config.business or ""}
    creds = config.credentials
    missing = [n for n in ("client_id", "client_secret") if n not in creds]
    if missing:
        raise InputError([f"platform.credentials.{n} is not set (\"env:NAME\")" for n in missing],
                         source=f"{config.name} OAuth2")
    return ClientSettings(
        platform=meta, client_id=creds["client_id"].reveal(),
        client_secret=creds["client_secret"].reveal(),
        authorize_url=(config.authorize_url or meta.authorize_url).replace(
            "{tenant}", fill["entra_tenant"]),
        token_url=(config.token_url or meta.token_url).replace("{tenant}", fill["entra_tenant"]),
        api_origin=config.base_url or meta.api_origin, fill=fill, transport=transport,
        scopes=meta.scopes_for(config.scopes))


def save_connection(app: App, tenant: str, tokens: TokenSet, values: Mapping[str, str]) -> None:
    """Store a new consent (replacing any earlier connection of the tenant)."""
    platform = app.config.tenant(tenant).platform.name
    meta = platform_of(platform)
    cipher, now = TokenCipher.from_env(), app.clock()
    with app.sessions.begin() as session:
        row = _row(session, tenant, platform)
        if row is None:
            row = OAuthConnectionRow(tenant=tenant, platform=platform, version=0)
            session.add(row)
        row.secret = cipher.encrypt(tenant, platform, tokens.to_json())
        row.values = dict(values)
        row.access_expires_at, row.refresh_expires_at = (tokens.access_expires_at,
                                                          tokens.refresh_expires_at)
        row.consent_expires_at = now + meta.consent_ttl if meta.consent_ttl else None
        row.connected_at, row.last_refresh_at = now, None
        row.last_error, row.needs_reconnect = None, False
        row.version = (row.version or 0) + 1


def _row(session: Session, tenant: str, platform: str, *, lock: bool = False
         ) -> OAuthConnectionRow | None:
    query = select(OAuthConnectionRow).where(OAuthConnectionRow.tenant == tenant,
                                             OAuthConnectionRow.platform == platform)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


@dataclass(frozen=True)
class _Held:
    """What this process last saw of the connection."""

    version: int
    access: str
    expires_at: datetime | None
    values: Mapping[str, str]

    def __repr__(self) -> str:
        return f"_Held(version={self.version})"


class DbTokenSource:
    """``TokenSource`` of one tenant on its OAuth2 platform (see the module docstring)."""

    def __init__(self, app: App, tenant: str, platform: str | None = None) -> None:
        self._app, self.tenant = app, tenant
        self.platform = platform or app.config.tenant(tenant).platform.name
        self._meta = platform_of(self.platform)
        self._held: _Held | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DbTokenSource(tenant={self.tenant!r}, platform={self.platform!r})"

    # -- TokenSource -------------------------------------------------------------------------
    def access_token(self) -> str:
        now = self._app.clock()
        held = self._held
        if held is not None and not self._due(held, now):
            return held.access
        held = self._load()
        if not self._due(held, now):
            return held.access
        return self._refresh(lambda current: not self._due(current, self._app.clock()))

    def refreshed(self, rejected: str) -> str:
        return self._refresh(lambda current: current.access != rejected)

    def value(self, name: str) -> str | None:
        held = self._held or self._load()
        return held.values.get(name)

    # -- inside ------------------------------------------------------------------------------
    def _due(self, held: _Held, now: datetime) -> bool:
        return held.expires_at is not None and held.expires_at - REFRESH_MARGIN <= now

    def _load(self) -> _Held:
        with self._app.sessions() as session:
            row = self._existing(session)
            return self._hold(row, self._decrypt(row))

    def _hold(self, row: OAuthConnectionRow, secret: Mapping[str, Any]) -> _Held:
        if row.needs_reconnect:
            raise self._reconnect(row.last_error or "the connection was refused")
        held = _Held(row.version, str(secret["access_token"]), row.access_expires_at,
                     dict(row.values or {}))
        with self._lock:
            if self._held is None or held.version >= self._held.version:
                self._held = held
        return held

    def _refresh(self, still_good: Any) -> str:
        failure: ConnectorError | None = None
        with self._app.sessions.begin() as session:
            row = self._existing(session, lock=True)
            secret = self._decrypt(row)
            current = self._hold(row, secret)
            if still_good(current):  # another worker refreshed while we waited
                return current.access
            try:
                tokens = self._client().refresh(str(secret.get("refresh_token") or ""),
                                                current.values.get("accounts_server"))
            except ReconnectRequired as exc:
                row.needs_reconnect, row.last_error = True, exc.message
                failure = self._reconnect(exc.message)
            except ConnectorError as exc:
                row.last_error, failure = f"refresh failed: {exc.message}", exc
            else:
                self._store(row, tokens)
        if failure is not None:
            log.warning("%s token refresh for tenant %s failed: %s", self.platform,
                        self.tenant, failure.message)
            raise failure
        log.info("%s token refreshed for tenant %s (version %d)", self.platform, self.tenant,
                 row.version)
        return self._hold(row, {"access_token": tokens.access_token}).access

    def _store(self, row: OAuthConnectionRow, tokens: TokenSet) -> None:
        row.secret = self._cipher().encrypt(self.tenant, self.platform, tokens.to_json())
        row.access_expires_at = tokens.access_expires_at
        if tokens.refresh_expires_at is not None:
            row.refresh_expires_at = tokens.refresh_expires_at
        row.last_refresh_at, row.last_error = self._app.clock(), None
        row.version += 1

    def _existing(self, session: Session, *, lock: bool = False) -> OAuthConnectionRow:
        row = _row(session, self.tenant, self.platform, lock=lock)
        if row is None:
            raise AuthError(f"tenant {self.tenant} is not connected to {self._meta.title}: "
                            f"{connect_hint(self.platform, self.tenant)}",
                            platform=self.platform)
        return row

    def _reconnect(self, detail: str) -> ReconnectRequired:
        return ReconnectRequired(
            f"the {self._meta.title} connection of tenant {self.tenant} must be made again: "
            f"{connect_hint(self.platform, self.tenant)} ({detail})", platform=self.platform,
            code="invalid_grant")

    def _cipher(self) -> TokenCipher:
        try:
            return TokenCipher.from_env()
        except InputError as exc:
            raise AuthError(str(exc), platform=self.platform) from None

    def _decrypt(self, row: OAuthConnectionRow) -> dict[str, Any]:
        try:
            return self._cipher().decrypt(self.tenant, self.platform, row.secret)
        except InputError as exc:
            raise AuthError(str(exc), platform=self.platform) from None

    def _client(self) -> OAuthClient:
        config = self._app.config.tenant(self.tenant).platform
        try:
            settings = client_settings(config, self._app.transports.get(self.tenant))
        except InputError as exc:
            raise AuthError(str(exc), platform=self.platform) from None
        return OAuthClient(settings, self._app.clock)
