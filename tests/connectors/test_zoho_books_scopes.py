"""Zoho Books as a real login meets it: the data centre's API host from the token answer's
``api_domain``, the organisation from ``GET /organizations`` there, and each call checked for
its ``ZohoBooks.<module>.<operation>`` scope (tax creation and credit notes included)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import pytest

from autoinvoice.connectors.base import ConnectorSettings, StaticTokens
from autoinvoice.connectors.errors import AuthError
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.connectors.zoho_books import ZohoBooksConnector
from autoinvoice.domain.invoice import DocumentKind
from autoinvoice.sandbox.zoho_books import ZohoBooksSandbox, mock_transport
from tests.connectors.consent import client_for, consent
from tests.connectors.test_stripe import keys_for, make_invoice
from tests.helpers import VirtualTimer

EU = "https://www.zohoapis.eu"
EU_ACCOUNTS = "https://accounts.zoho.eu"
#: what ``connect zoho_books`` asked for before: no tax creation, no credit notes
OLD_SCOPES = ("ZohoBooks.invoices.ALL", "ZohoBooks.contacts.ALL", "ZohoBooks.settings.READ")


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    clear_limiters()
    yield
    clear_limiters()


def watched(core: ZohoBooksSandbox, urls: list[str]) -> httpx.MockTransport:
    inner = mock_transport(core)

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return inner.handle_request(request)

    return httpx.MockTransport(handler)


def connector(core: ZohoBooksSandbox, tokens: StaticTokens,
              transport: httpx.BaseTransport | None = None) -> ZohoBooksConnector:
    return ZohoBooksConnector(ConnectorSettings(
        tenant="t1", currency="USD", base_url="https://www.zohoapis.com",
        transport=transport or mock_transport(core), tokens=tokens, timer=VirtualTimer(),
        rate_limit_per_second=1000))


def invoice_then_credit(conn: ZohoBooksConnector) -> None:
    invoice = make_invoice()  # 8.5 % and 6.25 %: taxes the organisation must create
    customer = conn.ensure_customer(invoice.customer, keys_for(invoice))
    remote = conn.send_invoice(conn.create_invoice(invoice, customer, keys_for(invoice)),
                               keys_for(invoice))
    credit = dataclasses.replace(invoice, kind=DocumentKind.CREDIT_NOTE, number="CN-2026-0001",
                                 corrects=invoice.number)
    conn.credit_invoice(remote.id, credit, keys_for(credit))


def test_a_eu_login_is_served_by_its_own_data_centre() -> None:
    # given a login in Zoho's EU data centre
    core = ZohoBooksSandbox(api_domain=EU, accounts_server=EU_ACCOUNTS, location="eu")
    urls: list[str] = []
    transport = watched(core, urls)
    # when it connects (the consent starts on accounts.zoho.com, as configured by default)
    client = client_for("zoho_books", core, api_origin="https://www.zohoapis.com",
                        transport=transport)
    tokens, values = consent(client)
    # then the code was redeemed at the EU accounts server, the organisation asked of the EU
    # API host, and both are kept for later calls and refreshes
    assert f"{EU_ACCOUNTS}/oauth/v2/token" in urls
    assert values == {"api_domain": EU, "organization_id": core.organization_id,
                      "accounts_server": EU_ACCOUNTS}
    assert f"{EU}/books/v3/organizations" in urls
    client.refresh(str(tokens.refresh_token), values["accounts_server"])
    assert urls.count(f"{EU_ACCOUNTS}/oauth/v2/token") == 2
    # and every later call goes there too, with the scopes now asked for
    urls.clear()
    invoice_then_credit(connector(core, StaticTokens(tokens.access_token, values), transport))
    assert urls
    assert all(url.startswith(f"{EU}/books/v3/") for url in urls)
    assert core.count("creditnotes") == 1


def test_creating_a_tax_needs_zohobooks_settings_create() -> None:
    core = ZohoBooksSandbox()
    token = core.oauth.issue(OLD_SCOPES)["access_token"]
    conn = connector(core, StaticTokens(token, {"organization_id": core.organization_id}))
    invoice = make_invoice()
    customer = conn.ensure_customer(invoice.customer, keys_for(invoice))
    with pytest.raises(AuthError):  # 401 code 57; a refreshed token has the same scopes
        conn.create_invoice(invoice, customer, keys_for(invoice))
    assert ("POST", "/books/v3/settings/taxes") in core.requests
    assert core.count("invoices") == 0


def test_a_credit_note_needs_the_creditnotes_scopes() -> None:
    core = ZohoBooksSandbox()
    token = core.oauth.issue((*OLD_SCOPES, "ZohoBooks.settings.CREATE"))["access_token"]
    with pytest.raises(AuthError):
        invoice_then_credit(connector(core, StaticTokens(
            token, {"organization_id": core.organization_id})))
    assert core.count("creditnotes") == 0


def test_an_accounts_server_that_is_not_zohos_is_refused() -> None:
    core = ZohoBooksSandbox(accounts_server="https://accounts.zoho.eu.example.net")
    client = client_for("zoho_books", core, api_origin="https://www.zohoapis.com")
    with pytest.raises(AuthError, match="not Zoho Books's"):
        consent(client)
