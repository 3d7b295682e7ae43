"""XeroConnector against the local Xero stand-in (``sandbox.xero`` via MockTransport)."""

from __future__ import annotations

import base64
import dataclasses
import logging
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from autoinvoice.connectors.base import (
    ConnectorSettings,
    IdempotencyKeys,
    RecordedRequest,
    StaticTokens,
)
from autoinvoice.connectors.errors import (
    AuthError,
    PermanentError,
    RateLimited,
    TransientError,
    ValidationRejected,
)
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.connectors.registry import TAX_ROUNDING, build_connector
from autoinvoice.connectors.xero import XeroConnector, reference
from autoinvoice.domain.invoice import Invoice, TaxRounding
from autoinvoice.domain.job import Customer
from autoinvoice.sandbox.registry import make_standin
from autoinvoice.sandbox.xero import TOKEN_PATH, Limits, XeroSandbox, mock_transport
from tests.connectors.test_stripe import keys_for, make_invoice, make_line
from tests.helpers import VirtualTimer

REVERSE_CHARGE = "Reverse charge: VAT to be accounted for by the recipient"


# ---------------------------------------------------------------------------------------------
# Builders


class Clock:
    def __init__(self, now: float = 1_795_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class RefreshingTokens:
    """A small TokenSource that refreshes at the stand-in's token endpoint (rotating refresh
    tokens), as the shared OAuth layer does."""

    def __init__(self, core: XeroSandbox) -> None:
        issued = core.oauth.issue()
        self.core, self.access, self.refresh = core, issued["access_token"], issued["refresh_token"]
        self.refreshes = 0

    def access_token(self) -> str:
        return self.access

    def refreshed(self, rejected: str) -> str:
        if rejected != self.access:
            return self.access
        basic = base64.b64encode(
            f"{self.core.oauth.client_id}:{self.core.oauth.client_secret}".encode()).decode()
        with httpx.Client(transport=mock_transport(self.core),
                          base_url="https://identity.xero.com") as client:
            answer = client.post(TOKEN_PATH, data={"grant_type": "refresh_token",
                                                   "refresh_token": self.refresh},
                                 headers={"Authorization": f"Basic {basic}"})
        if answer.status_code != 200:
            raise AuthError(f"refresh refused: {answer.json().get('error')}")
        body = answer.json()
        self.access, self.refresh = body["access_token"], body["refresh_token"]
        self.refreshes += 1
        return self.access

    def value(self, name: str) -> str | None:
        return self.core.tenant_id if name == "tenant_id" else None


def settings_for(core: XeroSandbox, records: list[RecordedRequest] | None = None,
                 tokens: object | None = None, timer: VirtualTimer | None = None,
                 tenant: str = "northwind") -> ConnectorSettings:
    return ConnectorSettings(
        tenant=tenant, currency="USD", transport=mock_transport(core),
        recorder=records.append if records is not None else None,
        timer=timer if timer is not None else VirtualTimer(),
        tokens=tokens or RefreshingTokens(core),  # type: ignore[arg-type]
        rate_limit_per_second=1000)


def invoice_puts(records: list[RecordedRequest]) -> list[RecordedRequest]:
    return [r for r in records if r.method == "PUT" and "/Invoices" in r.url]


def rich_invoice(**kwargs: object) -> Invoice:
    covered = dataclasses.replace(make_line("Air filter element", "1", "0", "0.085"),
                                  coverage="service contract SC-9", list_unit_price=Decimal("84"))
    lines = (*make_invoice().lines, covered, make_line("Mileage", "38.5", "0.655", "0"))
    return dataclasses.replace(make_invoice(*lines), notes=(REVERSE_CHARGE,), **kwargs)


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    clear_limiters()
    yield
    clear_limiters()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def core(clock: Clock) -> XeroSandbox:
    return XeroSandbox(clock=clock, limits=Limits(per_minute=None, per_day=None))


@pytest.fixture
def sleeps() -> VirtualTimer:
    return VirtualTimer()


@pytest.fixture
def records() -> list[RecordedRequest]:
    return []


@pytest.fixture
def tokens(core: XeroSandbox) -> RefreshingTokens:
    return RefreshingTokens(core)


@pytest.fixture
def connector(core, records, tokens, sleeps) -> Iterator[XeroConnector]:
    built = XeroConnector(settings_for(core, records, tokens, sleeps))
    yield built
    built.close()


def created(connector: XeroConnector, invoice: Invoice | None = None):
    invoice = invoice or rich_invoice()
    keys = keys_for(invoice)
    customer = connector.ensure_customer(invoice.customer, keys)
    return invoice, keys, connector.create_invoice(invoice, customer, keys)


# ---------------------------------------------------------------------------------------------
# Registration and create


def test_registered_with_its_stand_in_and_per_line_tax_rounding(core) -> None:
    settings = settings_for(core)
    assert isinstance(build_connector("xero", settings), XeroConnector)
    assert isinstance(make_standin("xero"), XeroSandbox)
    assert TAX_ROUNDING["xero"] is TaxRounding.LINE


def test_created_invoice_is_a_draft_whose_xero_total_equals_ours(connector, core) -> None:
    invoice, _, remote = created(connector)
    assert remote.status == "DRAFT"
    assert remote.number == invoice.number
    assert remote.total == invoice.total
    stored = core.get_invoice(remote.id)
    assert stored["Reference"] == "NW-2026-0001 / job WO-T-1 / PO PO-77813"
    assert stored["DueDate"] == "/Date(1797811200000+0000)/"  # 2026-12-21
    assert stored["TotalTax"] == invoice.tax_total.amount


def test_covered_lines_and_legal_notes_are_on_the_document(connector, core) -> None:
    _, _, remote = created(connector)
    lines = core.get_invoice(remote.id)["LineItems"]
    covered = next(line for line in lines if line["Description"].startswith("Air filter"))
    assert covered["UnitAmount"] == 0
    assert "covered: service contract SC-9, list price 84" in covered["Description"]
    assert lines[-1] == {"LineItemID": lines[-1]["LineItemID"], "Description": REVERSE_CHARGE,
                         "LineAmount": 0, "TaxAmount": 0, "Tracking": []}


def test_a_unit_price_with_more_than_four_decimals_is_sent_as_one_rounded_unit(
        connector, core) -> None:
    line = make_line("Coolant", "3", "1.23456", "0")
    invoice, _, remote = created(connector, make_invoice(line))
    item = core.get_invoice(remote.id)["LineItems"][0]
    assert (item["Quantity"], item["UnitAmount"]) == (1, Decimal("3.70"))
    assert "3 ea @ 1.23456" in item["Description"]
    assert remote.total == invoice.total


def test_amounts_travel_as_exact_json_numbers(connector, records) -> None:
    created(connector)
    put = next(r for r in records if r.method == "PUT" and "/Invoices" in r.url)
    assert '"Quantity":3.75,"UnitAmount":145.00' in put.body
    assert "unitdp=4" in put.url


# ---------------------------------------------------------------------------------------------
# Contacts


def test_existing_contact_is_found_by_contact_number(connector, core) -> None:
    first, keys, _ = created(connector)
    again = connector.ensure_customer(first.customer, keys)
    assert len(core.contacts()) == 1
    assert again.id == core.contacts()[0]["ContactID"]


def test_a_hand_entered_contact_with_our_email_is_adopted(connector, core) -> None:
    core.ledger.create_contact({"Name": "ACME (old)", "EmailAddress": "ap@acme-plastics.example"})
    invoice = make_invoice()
    found = connector.ensure_customer(invoice.customer, keys_for(invoice))
    assert [c["ContactID"] for c in core.contacts()] == [found.id]


def test_a_name_taken_by_another_customer_gets_our_id_appended(connector, core) -> None:
    core.ledger.create_contact({"Name": "Acme Plastics Inc.", "ContactNumber": "OTHER-1"})
    invoice = make_invoice()
    connector.ensure_customer(invoice.customer, keys_for(invoice))
    assert sorted(c["Name"] for c in core.contacts()) == [
        "Acme Plastics Inc.", "Acme Plastics Inc. (CUST-0088)"]


# ---------------------------------------------------------------------------------------------
# Exactly once


def test_replayed_key_returns_the_same_invoice(connector, core) -> None:
    invoice, keys, first = created(connector)
    customer = connector.ensure_customer(invoice.customer, keys)
    second = connector.create_invoice(invoice, customer, keys)
    assert second.id == first.id
    assert len(core.find_invoices()) == 1


def test_lost_response_on_create_is_retried_into_one_invoice(connector, core, records) -> None:
    core.faults.lose_response("/api.xro/2.0/Invoices", method="PUT")
    _, _, remote = created(connector)
    assert len(core.find_invoices()) == 1
    assert remote.id == core.find_invoices()[0]["InvoiceID"]
    assert len(invoice_puts(records)) == 2  # the same key twice
    assert len({r.headers["idempotency-key"] for r in invoice_puts(records)}) == 1


def test_create_after_the_key_is_forgotten_returns_the_invoice_holding_our_number(
        connector, core, clock) -> None:
    invoice, keys, first = created(connector)
    clock.now += 25 * 3600
    customer = connector.ensure_customer(invoice.customer, keys)
    again = connector.create_invoice(invoice, customer, keys)
    assert again.id == first.id
    assert len(core.find_invoices()) == 1


def test_find_by_reference_finds_what_create_made(connector) -> None:
    invoice, _, remote = created(connector)
    found = connector.find_by_reference(invoice)
    assert found is not None
    assert (found.id, found.total) == (remote.id, remote.total)
    assert connector.find_by_reference(dataclasses.replace(invoice, job_id="WO-OTHER")) is None


def test_reference_carries_the_revision_after_the_first() -> None:
    assert reference(make_invoice(revision=2, po_number=None)) == \
        "NW-2026-0001 / job WO-T-1 rev 2"


# ---------------------------------------------------------------------------------------------
# Send, status, corrections


def test_send_authorises_then_emails_once(connector, core) -> None:
    _, keys, remote = created(connector)
    sent = connector.send_invoice(remote, keys)
    assert sent.status == "AUTHORISED"
    assert core.emails_sent(remote.id) == 1
    assert connector.send_invoice(remote, keys).status == "AUTHORISED"  # key replayed
    assert core.emails_sent(remote.id) == 1


def test_a_contact_without_email_is_refused_with_xeros_message(connector, core) -> None:
    invoice = make_invoice()
    no_mail = dataclasses.replace(invoice, customer=dataclasses.replace(invoice.customer,
                                                                        email=""))
    _, keys, remote = created(connector, no_mail)
    with pytest.raises(ValidationRejected, match="does not have a valid email address"):
        connector.send_invoice(remote, keys)


def test_status_reads_amount_paid_balance_and_paid_date(connector, core) -> None:
    invoice, keys, remote = created(connector)
    connector.send_invoice(remote, keys)
    core.record_payment(remote.id, 10000)
    part = connector.fetch_status(remote.id)
    assert (part.status, str(part.amount_paid.amount), part.paid_at) == (
        "AUTHORISED", "100.00", None)
    assert part.balance == invoice.total - part.amount_paid
    core.record_payment(remote.id, part.balance.minor)
    paid = connector.fetch_status(remote.id)
    assert (paid.status, paid.amount_paid, paid.balance.is_zero()) == (
        "PAID", invoice.total, True)
    assert paid.paid_at is not None


def test_void_deletes_a_draft_voids_an_authorised_one_and_refuses_a_paid_one(
        connector, core) -> None:
    _, keys, draft = created(connector)
    assert connector.void_invoice(draft.id, keys) == "deleted"
    assert connector.void_invoice(draft.id, keys) == "already_void"
    second = make_invoice(job_id="WO-T-2", number="NW-2026-0002")
    _, keys2, remote = created(connector, second)
    connector.send_invoice(remote, keys2)
    assert connector.void_invoice(remote.id, keys2) == "voided"
    third = make_invoice(job_id="WO-T-3", number="NW-2026-0003")
    _, keys3, paid = created(connector, third)
    connector.send_invoice(paid, keys3)
    core.record_payment(paid.id, 100)
    with pytest.raises(PermanentError, match="credit it instead"):
        connector.void_invoice(paid.id, keys3)


def test_credit_note_for_the_full_amount_is_allocated_and_issued_once(connector, core) -> None:
    invoice, keys, remote = created(connector)
    connector.send_invoice(remote, keys)
    credit = dataclasses.replace(invoice, number="CN-NW-2026-0001", corrects=invoice.number)
    credit_keys = IdempotencyKeys.derive(invoice.tenant, invoice.job_id, 1, "credit_note")
    note = connector.credit_invoice(remote.id, credit, credit_keys)
    assert (note.total, note.number) == (invoice.total, "CN-NW-2026-0001")
    again = connector.credit_invoice(remote.id, credit, credit_keys)
    assert again.id == note.id
    assert len(core.credit_notes()) == 1
    status = connector.fetch_status(remote.id)
    assert (status.status, status.balance.is_zero()) == ("PAID", True)


# ---------------------------------------------------------------------------------------------
# Errors, limits, auth


def test_validation_error_keeps_xeros_message_and_correlation_id(core, records) -> None:
    bad = XeroConnector(dataclasses.replace(
        settings_for(core, records), credentials={"account_code": _Plain("999")}))
    with pytest.raises(ValidationRejected) as caught:
        created(bad)
    assert "Account code '999' is not a valid code" in caught.value.message
    assert caught.value.code == "ValidationException"
    assert caught.value.status == 400
    assert caught.value.request_id


def test_429_with_retry_after_is_slept_exactly_then_succeeds(connector, core, sleeps) -> None:
    core.faults.inject("/api.xro/2.0/Invoices", status=429, retry_after=7, method="PUT")
    _, _, remote = created(connector)
    assert [s for s in sleeps if s >= 1] == [7.0]  # (the token bucket's short waits aside)
    assert remote.id


def test_the_minute_limit_answers_429_naming_the_problem(core, clock, sleeps) -> None:
    core.limits = Limits(per_minute=2, per_day=None)
    connector = XeroConnector(settings_for(core, timer=sleeps))
    connector.check_auth()
    connector.check_auth()
    with pytest.raises(RateLimited, match=r"limit: minute") as caught:
        connector.check_auth()
    assert caught.value.retry_after == 60
    assert [s for s in sleeps if s >= 1] == [60.0, 60.0]


def test_5xx_is_retried(connector, core, records) -> None:
    core.faults.inject("/api.xro/2.0/Invoices", status=503, times=2, method="PUT")
    _, _, remote = created(connector)
    assert remote.id
    assert len(invoice_puts(records)) == 3


def test_persistent_5xx_becomes_a_transient_error(connector, core) -> None:
    core.faults.inject("/api.xro/2.0/Organisation", status=500, times=5)
    with pytest.raises(TransientError):
        connector.check_auth()


def test_expired_token_is_refreshed_once_and_the_call_repeated(connector, core, tokens) -> None:
    core.oauth.expire_all()
    connector.check_auth()
    assert tokens.refreshes == 1


def test_a_refused_token_without_refresh_is_an_auth_error(core) -> None:
    connector = XeroConnector(settings_for(core, tokens=StaticTokens(
        "expired", values={"tenant_id": core.tenant_id})))
    with pytest.raises(AuthError, match="no refresh token"):
        connector.check_auth()


def test_a_token_refused_again_after_refresh_is_an_auth_error(core, tokens) -> None:
    core.oauth.revoke(tokens.refresh)
    core.oauth.expire_all()
    connector = XeroConnector(settings_for(core, tokens=tokens))
    with pytest.raises(AuthError, match="refresh refused"):
        connector.check_auth()


def test_a_wrong_tenant_is_refused_with_xeros_403(core) -> None:
    issued = core.oauth.issue()["access_token"]
    connector = XeroConnector(settings_for(core, tokens=StaticTokens(
        issued, values={"tenant_id": "someone-else"})))
    with pytest.raises(AuthError) as caught:
        connector.check_auth()
    assert caught.value.status == 403
    assert caught.value.code == "AuthorizationUnsuccessful"


def test_no_token_source_is_a_clear_auth_error(core) -> None:
    with pytest.raises(AuthError, match="autoinvoice connect xero"):
        XeroConnector(dataclasses.replace(settings_for(core), tokens=None))


def test_token_expiry_in_the_middle_of_a_batch_refreshes_and_continues(
        connector, core, tokens) -> None:
    totals = []
    for n in range(1, 5):
        invoice = make_invoice(job_id=f"WO-B-{n}", number=f"NW-2026-010{n}")
        _, keys, remote = created(connector, invoice)
        connector.send_invoice(remote, keys)
        totals.append(remote.total == invoice.total)
        if n == 2:
            core.oauth.expire_all()
    assert totals == [True] * 4
    assert tokens.refreshes == 1
    assert sum(core.emails_sent(i["InvoiceID"]) for i in core.find_invoices()) == 4


def test_no_secret_in_any_log_line_or_recorded_request(core, records, tokens, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    connector = XeroConnector(settings_for(core, records, tokens))
    core.oauth.expire_all()  # a refresh happens on the way
    invoice, keys, remote = created(connector)
    connector.send_invoice(remote, keys)
    secrets = [tokens.access, tokens.refresh, core.oauth.client_secret]
    seen = caplog.text + "".join(f"{r.url}{r.headers}{r.body}" for r in records)
    assert records
    assert not [s for s in secrets if s in seen]
    assert all(r.headers.get("authorization") == "***" for r in records)


class _Plain:
    def __init__(self, value: str) -> None:
        self.value = value

    def reveal(self) -> str:
        return self.value


def test_customer_without_email_and_vat_id_still_creates(connector, core) -> None:
    invoice = make_invoice()
    customer = Customer(id="C-2", name="Bare Co", email="",
                        billing_address=invoice.customer.billing_address, vat_id="GB123")
    connector.ensure_customer(customer, keys_for(invoice))
    contact = next(c for c in core.contacts() if c["ContactNumber"] == "C-2")
    assert (contact["EmailAddress"], contact["TaxNumber"]) == ("", "GB123")
