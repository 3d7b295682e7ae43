"""The seven ledgers' OAuth2 facts, token sets, and the connection states ``connections``
shows (pure: no network, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from autoinvoice.config import PlatformConfig, SecretRef
from autoinvoice.connections.status import ConnectionState, state_of
from autoinvoice.connections.tokens import client_settings
from autoinvoice.connectors.oauth import PLATFORMS, ClientAuth, TokenSet, token_set
from autoinvoice.store.models import OAuthConnectionRow

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_all_seven_ledgers_are_described() -> None:
    assert set(PLATFORMS) == {"quickbooks", "xero", "freshbooks", "zoho_books",
                              "business_central", "sage", "myob"}
    for meta in PLATFORMS.values():
        assert meta.authorize_url.startswith("https://")
        assert meta.token_url.startswith("https://")
        assert meta.discovery


def test_platform_quirks() -> None:
    assert PLATFORMS["zoho_books"].extra_authorize == {"access_type": "offline",
                                                       "prompt": "consent"}
    assert PLATFORMS["myob"].extra_authorize == {"prompt": "consent"}
    assert PLATFORMS["zoho_books"].auth_scheme == "Zoho-oauthtoken"  # not Bearer
    assert "offline_access" in PLATFORMS["xero"].scopes
    bc = PLATFORMS["business_central"]
    assert bc.scopes == ("https://api.businesscentral.dynamics.com/.default", "openid",
                         "offline_access")  # openid: the ID token names the Entra tenant
    assert "{tenant}" in bc.authorize_url
    assert PLATFORMS["quickbooks"].discovery[0].redirect_param == "realmId"
    assert PLATFORMS["quickbooks"].client_auth is ClientAuth.BASIC
    assert PLATFORMS["myob"].discovery[0].redirect_param == "businessId"


def test_urls_come_from_explicit_config_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_ID", "id")
    monkeypatch.setenv("T_SECRET", "s3cr3t-value")
    creds = {"client_id": SecretRef("env:T_ID"), "client_secret": SecretRef("env:T_SECRET")}
    plain = client_settings(PlatformConfig(name="business_central", credentials=creds,
                                           entra_tenant="contoso.onmicrosoft.com"))
    assert plain.token_url == ("https://login.microsoftonline.com/contoso.onmicrosoft.com"
                               "/oauth2/v2.0/token")
    local = client_settings(PlatformConfig(name="xero", credentials=creds,
                                           base_url="http://127.0.0.1:9",
                                           token_url="http://127.0.0.1:9/t"))
    assert local.token_url == "http://127.0.0.1:9/t"
    assert local.authorize_url == PLATFORMS["xero"].authorize_url  # not derived from base_url
    assert "s3cr3t-value" not in repr(local)


def test_token_set_makes_expiry_absolute_and_hides_tokens() -> None:
    tokens = token_set({"access_token": "AT-1", "refresh_token": "RT-1", "expires_in": 3600,
                        "x_refresh_token_expires_in": 8_726_400, "realm_id": "9130",
                        "id_token": "ID"}, NOW, PLATFORMS["quickbooks"])
    assert tokens.access_expires_at == NOW + timedelta(hours=1)
    assert tokens.refresh_expires_at == NOW + timedelta(days=101)
    assert dict(tokens.extra) == {"realm_id": "9130"}
    assert "AT-1" not in repr(tokens)
    assert "RT-1" not in repr(tokens)


def test_a_refresh_without_a_new_refresh_token_keeps_the_old_one() -> None:
    tokens = token_set({"access_token": "AT-2", "expires_in": 3600}, NOW,
                       PLATFORMS["zoho_books"], previous_refresh="RT-1")
    assert tokens.refresh_token == "RT-1"
    assert tokens.refresh_expires_at is None  # Zoho: until revoked


def _row(**kw: object) -> OAuthConnectionRow:
    base: dict[str, object] = {"tenant": "t", "platform": "xero", "secret": "x",
                               "values": {}, "connected_at": NOW - timedelta(days=1),
                               "access_expires_at": NOW + timedelta(minutes=30),
                               "refresh_expires_at": NOW + timedelta(days=59),
                               "needs_reconnect": False, "version": 1}
    return OAuthConnectionRow(**{**base, **kw})


@pytest.mark.parametrize(("row", "state"), [
    (None, ConnectionState.NOT_CONNECTED),
    (_row(), ConnectionState.OK),
    (_row(access_expires_at=NOW + timedelta(minutes=3)), ConnectionState.REFRESH_DUE),
    (_row(refresh_expires_at=NOW + timedelta(days=10)), ConnectionState.EXPIRING),
    (_row(consent_expires_at=NOW + timedelta(days=13)), ConnectionState.EXPIRING),
    (_row(refresh_expires_at=NOW - timedelta(seconds=1)), ConnectionState.EXPIRED),
    (_row(needs_reconnect=True, last_error="invalid_grant"), ConnectionState.NEEDS_RECONNECT),
], ids=["not_connected", "ok", "refresh_due", "expiring", "consent_expiring", "expired",
        "needs_reconnect"])
def test_connection_states(row: OAuthConnectionRow | None, state: ConnectionState) -> None:
    assert state_of(row, NOW)[0] is state


def test_the_expiry_warning_says_when() -> None:
    state, note = state_of(_row(refresh_expires_at=NOW + timedelta(days=10, hours=1)), NOW)
    assert state is ConnectionState.EXPIRING
    assert note == "refresh token expires in 10 day(s), 2026-12-11"


def test_token_set_json_is_the_only_secret_part() -> None:
    tokens = TokenSet("AT", "RT", NOW)
    assert tokens.to_json() == {"access_token": "AT", "refresh_token": "RT"}


def test_platform_scopes_chooses_the_xero_scope_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_ID", "id")
    monkeypatch.setenv("T_SECRET", "secret")
    creds = {"client_id": SecretRef("env:T_ID"), "client_secret": SecretRef("env:T_SECRET")}
    default = client_settings(PlatformConfig(name="xero", credentials=creds))
    legacy = client_settings(PlatformConfig(name="xero", credentials=creds, scopes="legacy"))
    assert "accounting.invoices" in default.scopes
    assert "accounting.transactions" not in default.scopes  # refused to apps since 2 Mar 2026
    assert "accounting.transactions" in legacy.scopes
    assert "accounting.settings" in legacy.scopes  # PUT /TaxRates: not the .read scope


@pytest.mark.parametrize(("platform", "value", "problem"), [
    ("xero", "broad", "platform.scopes: 'broad' is not one of 'granular', 'legacy'"),
    ("myob", "legacy", "platform.scopes: 'legacy' is not used by platform 'myob'"),
])
def test_a_bad_platform_scopes_names_the_key(platform: str, value: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        PlatformConfig(name=platform, scopes=value)


def test_token_set_reads_the_id_tokens_claims_never_keeping_the_token() -> None:
    import base64
    import json

    payload = base64.urlsafe_b64encode(json.dumps({"tid": "72f988bf"}).encode()).rstrip(b"=")
    id_token = f"eyJhbGciOiJub25lIn0.{payload.decode()}."
    tokens = token_set({"access_token": "opaque", "id_token": id_token, "expires_in": 3600},
                       NOW, PLATFORMS["business_central"])
    assert tokens.claims["tid"] == "72f988bf"
    assert "id_token" not in tokens.extra
    assert id_token not in repr(tokens)
    assert token_set({"access_token": "opaque"}, NOW).claims == {}
