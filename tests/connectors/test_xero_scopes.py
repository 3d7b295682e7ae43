"""Xero as apps made since 2 March 2026 meet it: granular scopes only, each endpoint checked
for its scope, and the organisation learned from ``GET /connections`` alone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from autoinvoice.connectors.base import StaticTokens
from autoinvoice.connectors.errors import AuthError
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.connectors.oauth import PLATFORMS, XERO_LEGACY, TokenSet
from autoinvoice.connectors.oauth_client import ClientSettings, OAuthClient
from autoinvoice.connectors.xero import XeroConnector
from autoinvoice.sandbox.xero import AUTHORIZE_PATH, TOKEN_PATH, XeroSandbox, mock_transport
from tests.connectors.test_stripe import keys_for, make_invoice
from tests.connectors.test_xero import settings_for

REDIRECT = "http://127.0.0.1:8765/callback"


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    clear_limiters()
    yield
    clear_limiters()


def client_for(core: XeroSandbox, choice: str | None = None) -> OAuthClient:
    meta = PLATFORMS["xero"]
    return OAuthClient(ClientSettings(
        platform=meta, client_id="demo-client", client_secret="demo-secret",
        authorize_url="https://login.xero.com" + AUTHORIZE_PATH,
        token_url="https://identity.xero.com" + TOKEN_PATH, api_origin="https://api.xero.com",
        transport=mock_transport(core), scopes=meta.scopes_for(choice)),
        lambda: datetime(2026, 12, 8, tzinfo=UTC))


def consent(client: OAuthClient, core: XeroSandbox) -> tuple[TokenSet, dict[str, str]]:
    """The person consents at once; the redirect's query is what our callback receives."""
    auth = client.authorization(REDIRECT)
    with httpx.Client(transport=mock_transport(core)) as browser:
        answer = browser.get(auth.url)
    callback = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
    tokens = client.exchange(auth, callback)
    return tokens, client.discover(tokens, callback)


def create_with(core: XeroSandbox, tokens: StaticTokens) -> None:
    connector = XeroConnector(settings_for(core, tokens=tokens))
    invoice = make_invoice()  # 8.5 % and 6.25 % are not in the stand-in: PUT /TaxRates
    remote = connector.ensure_customer(invoice.customer, keys_for(invoice))
    connector.create_invoice(invoice, remote, keys_for(invoice))


def test_connect_asks_for_granular_scopes_and_learns_the_tenant_from_connections() -> None:
    # given a Xero app made after 2 March 2026
    core = XeroSandbox()
    # when a person connects it
    tokens, values = consent(client_for(core), core)
    # then the token carries the granular scopes, not the tenant; /connections told it
    assert set(str(tokens.scope).split()) == {"offline_access", "accounting.invoices",
                                             "accounting.payments", "accounting.contacts",
                                             "accounting.settings"}
    assert "tenant_id" not in tokens.extra
    assert values == {"tenant_id": core.tenant_id}
    assert ("GET", "/connections") in core.requests
    create_with(core, StaticTokens(tokens.access_token, values))


def test_a_granular_app_asking_for_accounting_transactions_is_refused_at_consent() -> None:
    with pytest.raises(AuthError, match="unauthorized_client.*accounting.transactions"):
        consent(client_for(XeroSandbox(), "legacy"), XeroSandbox())


def test_an_older_app_keeps_the_broad_scopes_with_platform_scopes_legacy() -> None:
    core = XeroSandbox(app="legacy")
    tokens, values = consent(client_for(core, "legacy"), core)
    assert set(str(tokens.scope).split()) == set(XERO_LEGACY)
    create_with(core, StaticTokens(tokens.access_token, values))


def test_put_tax_rates_needs_accounting_settings_not_its_read_scope() -> None:
    # given the scopes connect used to ask for (settings read-only)
    core = XeroSandbox(app="legacy")
    old = core.oauth.issue(("offline_access", "accounting.transactions", "accounting.contacts",
                            "accounting.settings.read"))["access_token"]
    # when an invoice needs a tax rate the organisation does not have yet
    with pytest.raises(AuthError):
        create_with(core, StaticTokens(old, {"tenant_id": core.tenant_id}))
    # then Xero refused the PUT /TaxRates, and nothing else was created
    assert ("PUT", "/api.xro/2.0/TaxRates") in core.requests
    assert ("PUT", "/api.xro/2.0/Invoices") not in core.requests


@pytest.mark.parametrize(("method", "path", "granted"), [
    ("GET", "/Invoices", ("accounting.contacts", "accounting.settings")),
    ("PUT", "/Invoices", ("accounting.invoices.read",)),
    ("PUT", "/CreditNotes", ("accounting.transactions.read",)),
    ("PUT", "/Contacts", ("accounting.contacts.read",)),
    ("GET", "/TaxRates", ("accounting.invoices",)),
    ("PUT", "/TaxRates", ("accounting.settings.read",)),
])
def test_each_endpoint_refuses_a_token_without_its_scope(method: str, path: str,
                                                         granted: tuple[str, ...]) -> None:
    core = XeroSandbox(app="legacy")
    token = core.oauth.issue(granted)["access_token"]
    with httpx.Client(transport=mock_transport(core), base_url="https://api.xero.com") as http:
        answer = http.request(method, "/api.xro/2.0" + path, json={}, headers={
            "Authorization": f"Bearer {token}", "xero-tenant-id": core.tenant_id})
    assert answer.status_code == 401
    assert answer.json()["Detail"] == "AuthorizationUnsuccessful"


def test_a_quoted_amount_is_refused_where_the_spec_types_a_number() -> None:
    core = XeroSandbox()
    token = core.oauth.issue()["access_token"]
    line = {"Description": "Valve kit", "Quantity": 1, "UnitAmount": "212.40",
            "AccountCode": "200", "TaxType": "NONE"}
    with httpx.Client(transport=mock_transport(core), base_url="https://api.xero.com") as http:
        contact = http.put("/api.xro/2.0/Contacts", json={"Contacts": [{"Name": "Acme"}]},
                           headers={"Authorization": f"Bearer {token}",
                                    "xero-tenant-id": core.tenant_id}).json()
        answer = http.put("/api.xro/2.0/Invoices", json={"Invoices": [{
            "Type": "ACCREC", "Contact": {"ContactID": contact["Contacts"][0]["ContactID"]},
            "LineItems": [line]}]}, headers={"Authorization": f"Bearer {token}",
                                             "xero-tenant-id": core.tenant_id})
    assert answer.status_code == 400
    assert "UnitAmount must be a number" in answer.text


class SameScopes:
    """A token source whose refresh gives a new token with the same scopes, as Xero's does."""

    def __init__(self, core: XeroSandbox, scopes: tuple[str, ...]) -> None:
        self.core, self.scopes = core, scopes
        self.token = core.oauth.issue(scopes)["access_token"]

    def access_token(self) -> str:
        return self.token

    def refreshed(self, rejected: str) -> str:
        self.token = self.core.oauth.issue(self.scopes)["access_token"]
        return self.token

    def value(self, name: str) -> str | None:
        return self.core.tenant_id if name == "tenant_id" else None


def test_a_missing_scope_says_to_check_platform_scopes_and_connect_again() -> None:
    core = XeroSandbox(app="legacy")
    tokens = SameScopes(core, ("accounting.transactions", "accounting.contacts",
                               "accounting.settings.read"))
    connector = XeroConnector(settings_for(core, tokens=tokens))
    invoice = make_invoice()
    remote = connector.ensure_customer(invoice.customer, keys_for(invoice))
    with pytest.raises(AuthError, match="lacks a scope.*platform.scopes.*connect xero"):
        connector.create_invoice(invoice, remote, keys_for(invoice))
