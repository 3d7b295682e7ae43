"""Each tenant's OAuth2 connection health, for ``autoinvoice connections``. Reads only the
row's dates and flags: no key is needed and no token is decrypted."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from autoinvoice.connections.tokens import connect_hint
from autoinvoice.connectors.oauth import EXPIRY_WARNING, REFRESH_MARGIN, oauth_platform
from autoinvoice.store.models import OAuthConnectionRow

if TYPE_CHECKING:
    from autoinvoice.bootstrap import App


class ConnectionState(StrEnum):
    OK = "ok"
    REFRESH_DUE = "refresh_due"  # the access token is (nearly) spent: the next call refreshes
    EXPIRING = "expiring"  # the refresh token or the consent runs out soon: reconnect
    EXPIRED = "expired"
    NEEDS_RECONNECT = "needs_reconnect"
    NOT_CONNECTED = "not_connected"


def state_of(row: OAuthConnectionRow | None, now: datetime,
             warn: timedelta = EXPIRY_WARNING) -> tuple[ConnectionState, str]:
    """The state and a note for a person (what to do, or when it runs out)."""
    if row is None:
        return ConnectionState.NOT_CONNECTED, "never connected"
    if row.needs_reconnect:
        return ConnectionState.NEEDS_RECONNECT, row.last_error or "the platform refused it"
    ends = [(when, what) for when, what in ((row.refresh_expires_at, "refresh token"),
                                            (row.consent_expires_at, "consent"))
            if when is not None]
    if ends:
        when, what = min(ends)
        if when <= now:
            return ConnectionState.EXPIRED, f"{what} expired {when:%Y-%m-%d}"
        if when - now <= warn:
            days = (when - now).days
            return ConnectionState.EXPIRING, f"{what} expires in {days} day(s), {when:%Y-%m-%d}"
    if row.access_expires_at is not None and row.access_expires_at - REFRESH_MARGIN <= now:
        return ConnectionState.REFRESH_DUE, "the access token is refreshed on next use"
    return ConnectionState.OK, ""


def connections(app: App, tenant: str | None = None) -> list[dict[str, Any]]:
    """One entry per tenant on an OAuth2 platform (every tenant, or ``tenant``)."""
    now = app.clock()
    with app.sessions() as session:
        rows = {(r.tenant, r.platform): r for r in session.scalars(select(OAuthConnectionRow))}
        out = []
        for name, t in sorted(app.config.tenants.items()):
            if (tenant and name != tenant) or oauth_platform(t.platform.name) is None:
                continue
            row = rows.get((name, t.platform.name))
            state, note = state_of(row, now)
            if state in (ConnectionState.NOT_CONNECTED, ConnectionState.NEEDS_RECONNECT,
                         ConnectionState.EXPIRED, ConnectionState.EXPIRING):
                note = f"{note}; {connect_hint(t.platform.name, name)}"
            out.append(_entry(name, t.platform.name, row, state, note))
    return out


def _entry(tenant: str, platform: str, row: OAuthConnectionRow | None,
           state: ConnectionState, note: str) -> dict[str, Any]:
    def when(value: datetime | None) -> str | None:
        return value.isoformat(timespec="seconds") if value else None

    return {
        "tenant": tenant, "platform": platform, "state": state.value, "note": note,
        "values": dict(row.values or {}) if row else {},
        "connected_at": when(row.connected_at) if row else None,
        "access_expires_at": when(row.access_expires_at) if row else None,
        "refresh_expires_at": when(row.refresh_expires_at) if row else None,
        "consent_expires_at": when(row.consent_expires_at) if row else None,
        "last_refresh_at": when(row.last_refresh_at) if row else None,
        "last_error": row.last_error if row else None,
    }
