"""FreshBooks as a real app meets it: each call checked for its ``user:<object>:read|write``
scope (credit notes included), and the account found only through ``/users/me``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from autoinvoice.connectors.base import StaticTokens
from autoinvoice.connectors.errors import AuthError
from autoinvoice.connectors.freshbooks import FreshBooksConnector
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.domain.invoice import DocumentKind
from autoinvoice.sandbox.freshbooks import FreshBooksSandbox
from tests.connectors.consent import client_for, consent
from tests.connectors.test_freshbooks import API, settings_for
from tests.connectors.test_stripe import keys_for, make_invoice

ME = "/auth/api/v1/users/me"
#: what ``connect freshbooks`` asked for before credit notes were in its scopes
WITHOUT_CREDIT_NOTES = ("user:profile:read", "user:clients:read", "user:clients:write",
                        "user:invoices:read", "user:invoices:write", "user:payments:read")


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    clear_limiters()
    yield
    clear_limiters()


def invoice_then_credit(core: FreshBooksSandbox, tokens: StaticTokens) -> None:
    connector = FreshBooksConnector(settings_for(core, tokens, []))
    invoice = make_invoice()
    customer = connector.ensure_customer(invoice.customer, keys_for(invoice))
    remote = connector.create_invoice(invoice, customer, keys_for(invoice))
    credit = dataclasses.replace(invoice, kind=DocumentKind.CREDIT_NOTE, number="CN-2026-0001",
                                 corrects=invoice.number)
    connector.credit_invoice(remote.id, credit, keys_for(credit))


def test_connect_asks_for_credit_note_scopes_and_finds_the_account_through_users_me() -> None:
    # given
    core = FreshBooksSandbox()
    # when
    tokens, values = consent(client_for("freshbooks", core, api_origin=API))
    # then
    assert {"user:credit_notes:read", "user:credit_notes:write"} <= set(
        str(tokens.scope).split())
    assert "account_id" not in tokens.extra
    assert values == {"account_id": core.account_id}
    assert ("GET", ME) in core.requests
    invoice_then_credit(core, StaticTokens(tokens.access_token, values))
    assert len(core.credit_notes()) == 1


def test_a_credit_note_without_the_credit_note_scope_is_refused_with_403() -> None:
    core = FreshBooksSandbox()
    token = core.oauth.issue(WITHOUT_CREDIT_NOTES)["access_token"]
    with pytest.raises(AuthError) as refused:
        invoice_then_credit(core, StaticTokens(token, {"account_id": core.account_id}))
    assert refused.value.status == 403
    assert "user:credit_notes" in str(refused.value)
    assert core.credit_notes() == []


@pytest.mark.parametrize(("method", "path", "granted"), [
    ("GET", ME, ("user:clients:read",)),
    ("GET", "users/clients", ("user:clients:write",)),
    ("POST", "invoices/invoices", ("user:invoices:read",)),
    ("GET", "credit_notes/credit_notes", ("user:invoices:read",)),
    ("POST", "credit_notes/credit_notes", ("user:credit_notes:read",)),
])
def test_each_endpoint_refuses_a_token_without_its_scope(method: str, path: str,
                                                         granted: tuple[str, ...]) -> None:
    core = FreshBooksSandbox()
    token = core.oauth.issue(granted)["access_token"]
    full = path if path.startswith("/") else f"/accounting/account/{core.account_id}/{path}"
    status, _, body = core.handle(method, full, "", {"Authorization": f"Bearer {token}"}, b"{}")
    assert status == 403
    assert b"Required scopes" in body
