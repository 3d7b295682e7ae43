"""QuickBooksConnector against the local QuickBooks stand-in (``sandbox.quickbooks``)."""

from __future__ import annotations

import base64
import dataclasses
import logging
from decimal import Decimal
from typing import Any

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
    NotFound,
    PermanentError,
    RateLimited,
    TransientError,
    ValidationRejected,
)
from autoinvoice.connectors.http import clear_limiters, limiter_for, slots_for
from autoinvoice.connectors.quickbooks import QuickBooksConnector, _map_error, request_id
from autoinvoice.connectors.registry import TAX_ROUNDING, build_connector
from autoinvoice.domain.invoice import DocumentKind, Invoice, LineKind, TaxRounding
from autoinvoice.sandbox.quickbooks import TOKEN_PATH, QuickBooksSandbox, mock_transport
from tests.connectors.test_stripe import make_invoice, make_line
from tests.helpers import VirtualTimer

REVERSE_CHARGE = "Reverse charge: VAT to be accounted for by the recipient"
LINES = (
    make_line("Onsite labor, senior technician", "3.75", "145.00", "0", LineKind.LABOR),
    make_line("Travel", "1.5", "108.75", "0", LineKind.TRAVEL),
    make_line("Thermostatic valve kit", "1", "212.40", "0.085"),
    make_line("Roto-Inject Fluid, 8000 h", "5", "31.17", "0.085"),
    make_line("Mileage", "38.5", "0.655", "0", LineKind.MILEAGE),
)


def qb_invoice(*lines: Any, **kwargs: Any) -> Invoice:
    invoice = make_invoice(*(lines or LINES), **kwargs)
    return dataclasses.replace(invoice, tax_rounding=TaxRounding.DOCUMENT)


def keys_for(invoice: Invoice) -> IdempotencyKeys:
    return IdempotencyKeys.derive(invoice.tenant, invoice.job_id, invoice.revision)


class StandinTokens:
    """A TokenSource refreshing against the stand-in's token endpoint (rotating tokens)."""

    def __init__(self, core: QuickBooksSandbox) -> None:
        self.core = core
        pair = core.oauth.issue()
        self.access, self.refresh = pair["access_token"], pair["refresh_token"]
        self.refreshes = 0
        self._http = httpx.Client(base_url="https://oauth.test", transport=mock_transport(core))

    def access_token(self) -> str:
        return self.access

    def refreshed(self, rejected: str) -> str:
        basic = base64.b64encode(b"demo-client:demo-secret").decode()
        answer = self._http.post(TOKEN_PATH, data={"grant_type": "refresh_token",
                                                   "refresh_token": self.refresh},
                                 headers={"Authorization": f"Basic {basic}"})
        if answer.status_code != 200:
            raise AuthError("refresh refused: connect again", platform="quickbooks")
        body = answer.json()
        self.access, self.refresh = body["access_token"], body["refresh_token"]
        self.refreshes += 1
        return self.access

    def value(self, name: str) -> str | None:
        return self.core.token_values().get(name)


@pytest.fixture(autouse=True)
def _fresh_limiters() -> None:
    clear_limiters()


@pytest.fixture
def core() -> QuickBooksSandbox:
    return QuickBooksSandbox()


@pytest.fixture
def tokens(core: QuickBooksSandbox) -> StandinTokens:
    return StandinTokens(core)


@pytest.fixture
def sleeps() -> VirtualTimer:
    return VirtualTimer()


@pytest.fixture
def recorded() -> list[RecordedRequest]:
    return []


def settings_for(core: QuickBooksSandbox, tokens: Any, recorded: list[RecordedRequest],
                 sleeps: VirtualTimer) -> ConnectorSettings:
    return ConnectorSettings(tenant="northwind", currency="USD",
                             base_url="https://quickbooks.test", transport=mock_transport(core),
                             recorder=recorded.append, timer=sleeps, tokens=tokens,
                             rate_limit_per_second=1000.0)


@pytest.fixture
def connector(core, tokens, recorded, sleeps) -> QuickBooksConnector:
    return QuickBooksConnector(settings_for(core, tokens, recorded, sleeps))


@pytest.fixture
def legacy() -> QuickBooksSandbox:
    """A US company from before 10 Nov 2017: the manual US sales tax model, no AST."""
    return QuickBooksSandbox(automated_sales_tax=False)


@pytest.fixture
def legacy_connector(legacy, recorded, sleeps) -> QuickBooksConnector:
    return QuickBooksConnector(settings_for(legacy, StandinTokens(legacy), recorded, sleeps))


def create(connector: QuickBooksConnector, invoice: Invoice) -> Any:
    keys = keys_for(invoice)
    customer = connector.ensure_customer(invoice.customer, keys)
    return connector.create_invoice(invoice, customer, keys)


# ---------------------------------------------------------------------------------------------
# Create, deliver, pay


def test_registry_builds_it_and_rounds_tax_per_document(core, tokens, recorded, sleeps):
    built = build_connector("quickbooks", settings_for(core, tokens, recorded, sleeps))
    assert isinstance(built, QuickBooksConnector)
    assert TAX_ROUNDING["quickbooks"] is TaxRounding.DOCUMENT
    assert built.delivers_itself


def test_created_invoice_total_equals_ours_computed_per_document(connector, core):
    invoice = qb_invoice()
    remote = create(connector, invoice)
    assert remote.total == invoice.total
    assert remote.number == "NW-2026-0001"
    stored = core.get_invoice(remote.id)
    assert stored["TxnTaxDetail"]["TotalTax"] == invoice.tax_total.amount
    assert stored["PrivateNote"].startswith("autoinvoice job WO-T-1 revision 1")
    assert stored["CustomField"][0]["StringValue"] == "PO-77813"
    assert stored["DueDate"] == "2026-12-21"
    assert [line["SalesItemLineDetail"]["TaxCodeRef"]["value"] for line in stored["Line"][:5]] \
        == ["NON", "NON", "TAX", "TAX", "NON"]


def test_items_and_tax_code_are_created_once_then_reused(legacy_connector, legacy):
    core = legacy
    codes_before = core.count("TaxCode")
    create(legacy_connector, qb_invoice())
    items, codes = core.count("Item"), core.count("TaxCode")
    assert codes == codes_before + 1  # the manual US model: a tax code with our rate
    create(legacy_connector, qb_invoice(job_id="WO-T-2", number="NW-2026-0002"))
    assert (core.count("Item"), core.count("TaxCode")) == (items, codes)
    fresh = QuickBooksConnector(dataclasses.replace(connector_settings(core)))
    create(fresh, qb_invoice(job_id="WO-T-3", number="NW-2026-0003"))
    assert (core.count("Item"), core.count("TaxCode")) == (items, codes)


def test_a_company_without_ast_computes_our_total_from_our_tax_code(legacy_connector, legacy):
    invoice = qb_invoice()
    remote = create(legacy_connector, invoice)
    assert remote.total == invoice.total
    assert "UseAutomatedSalesTax" not in legacy.get_invoice(remote.id)["TxnTaxDetail"]


def connector_settings(core: QuickBooksSandbox) -> ConnectorSettings:
    return settings_for(core, StaticTokens(core.oauth.issue()["access_token"],
                                           core.token_values()), [], VirtualTimer())


def test_covered_line_notes_and_po_reach_quickbooks(connector, core):
    covered = dataclasses.replace(make_line("Oil filter", "1", "0", "0"),
                                  coverage="covered by service contract SC-12")
    invoice = dataclasses.replace(qb_invoice(*LINES, covered), notes=(REVERSE_CHARGE,))
    stored = core.get_invoice(create(connector, invoice).id)
    line = stored["Line"][5]
    assert line["Description"] == "Oil filter (covered by service contract SC-12)"
    assert line["Amount"] == 0
    assert REVERSE_CHARGE in stored["CustomerMemo"]["value"]


def test_send_emails_once_and_repeating_it_is_harmless(connector, core):
    invoice = qb_invoice()
    remote = create(connector, invoice)
    sent = connector.send_invoice(remote, keys_for(invoice))
    again = connector.send_invoice(remote, keys_for(invoice))
    assert (sent.status, again.status) == ("sent", "sent")
    assert core.emails_sent(remote.id) == 1


def test_payment_status_reads_paid_amount_balance_and_date(connector, core):
    invoice = qb_invoice()
    remote = create(connector, invoice)
    core.record_payment(remote.id, 50000)
    part = connector.fetch_status(remote.id)
    assert (part.status, part.amount_paid.amount, part.paid_at) == (
        "partially_paid", Decimal("500.00"), None)
    core.record_payment(remote.id, invoice.total.minor - 50000)
    full = connector.fetch_status(remote.id)
    assert full.status == "paid"
    assert full.balance.is_zero()
    assert full.paid_at is not None


def test_two_tax_rates_on_one_document_are_refused_before_creating(legacy_connector, legacy):
    invoice = qb_invoice(*LINES, make_line("Motor", "1", "689.99", "0.0625"))
    with pytest.raises(PermanentError, match="one sales tax rate per transaction"):
        create(legacy_connector, invoice)
    assert legacy.count("Invoice") == 0


# ---------------------------------------------------------------------------------------------
# Customers


def test_customer_is_found_again_by_our_id(connector, core):
    invoice = qb_invoice()
    first = connector.ensure_customer(invoice.customer, keys_for(invoice))
    again = connector.ensure_customer(invoice.customer, keys_for(invoice))
    assert first == again
    assert core.count("Customer") == 1


def test_a_name_used_by_a_vendor_gets_a_disambiguated_customer(connector, core):
    invoice = qb_invoice()
    core.add_vendor("Acme Plastics Inc.")
    remote = connector.ensure_customer(invoice.customer, keys_for(invoice))
    [customer] = core.find("Customer")
    assert customer["Id"] == remote.id
    assert customer["DisplayName"] == "Acme Plastics Inc. [CUST-0088]"
    assert connector.ensure_customer(invoice.customer, keys_for(invoice)) == remote


def test_a_customer_another_worker_just_created_is_used_not_duplicated(connector, core,
                                                                       monkeypatch):
    # Two workers bill the same new customer at once: both look it up (none yet), one creates
    # it, the other's create is refused as a duplicate name (6240): it must use that one.
    invoice = qb_invoice()
    first = connector.ensure_customer(invoice.customer, keys_for(invoice))
    real_find = connector._find_customer
    misses = iter([None])
    monkeypatch.setattr(connector, "_find_customer",
                        lambda c: next(misses, None) or real_find(c))
    other = dataclasses.replace(invoice, job_id="WO-OTHER")
    assert connector.ensure_customer(other.customer, keys_for(other)) == first
    assert core.count("Customer") == 1


def test_a_customer_entered_by_hand_is_matched_by_email(connector, core):
    invoice = qb_invoice()
    made = core.company.create_customer({"DisplayName": "ACME Plastics (Tulsa)",
                                         "PrimaryEmailAddr": {"Address": invoice.customer.email}})
    assert connector.ensure_customer(invoice.customer, keys_for(invoice)).id == made["Id"]


# ---------------------------------------------------------------------------------------------
# Exactly once


def test_a_lost_create_response_is_replayed_by_requestid(connector, core):
    core.faults.lose_response(f"/v3/company/{core.realm_id}/invoice", times=1)
    invoice = qb_invoice()
    remote = create(connector, invoice)
    assert core.count("Invoice") == 1
    assert remote.total == invoice.total


def test_create_repeated_with_the_same_keys_returns_the_same_invoice(connector, core):
    invoice = qb_invoice()
    assert create(connector, invoice).id == create(connector, invoice).id
    assert core.count("Invoice") == 1


def test_find_by_reference_finds_what_create_made(connector):
    invoice = qb_invoice()
    remote = create(connector, invoice)
    found = connector.find_by_reference(invoice)
    assert found is not None
    assert (found.id, found.total) == (remote.id, remote.total)
    assert connector.find_by_reference(qb_invoice(number="NW-2026-0999")) is None


def test_request_ids_fit_quickbooks_limit_of_50_characters():
    keys = IdempotencyKeys.derive("northwind", "WO-1", 1)
    assert request_id(keys.for_step("create")) == keys.for_step("create")
    long_key = keys.for_step("taxcode-8.5-and-a-very-long-step-name")
    assert len(request_id(long_key)) == 50
    assert request_id(long_key) == request_id(long_key)


# ---------------------------------------------------------------------------------------------
# Errors


def test_an_expired_token_is_refreshed_once_and_the_call_goes_through(connector, core, tokens):
    core.oauth.expire_all()
    create(connector, qb_invoice())
    assert tokens.refreshes == 1
    assert core.count("Invoice") == 1


def test_a_token_refused_twice_is_an_auth_error(connector, core, tokens):
    core.faults.inject(f"/v3/company/{core.realm_id}/query", status=401, times=2, method=None)
    with pytest.raises(AuthError) as caught:
        connector.find_by_reference(qb_invoice())
    assert tokens.refreshes == 1
    assert caught.value.code == "3200"


def test_a_validation_fault_keeps_quickbooks_message_code_and_request_id(connector, core):
    create(connector, qb_invoice())
    with pytest.raises(ValidationRejected) as caught:
        create(connector, qb_invoice(job_id="WO-T-9"))  # the same DocNumber again
    error = caught.value
    assert error.code == "6140"
    assert "Duplicate Document Number Error" in error.message
    assert error.request_id
    assert error.status == 400


def test_429_waits_retry_after_then_succeeds(connector, core, sleeps):
    core.faults.inject(f"/v3/company/{core.realm_id}/invoice", status=429, retry_after=7)
    create(connector, qb_invoice())
    # the Retry-After wait happened once, with its value; any other wait is the token bucket
    # spacing requests at the test's 1000/s (its clock is the timer's: no busy-machine noise)
    assert [s for s in sleeps if s != pytest.approx(0.001)] == [7.0]
    assert sleeps[-1] == 7.0
    assert core.count("Invoice") == 1


def test_the_documented_limits_are_applied_before_sending(core, tokens, sleeps):
    settings = dataclasses.replace(settings_for(core, tokens, [], sleeps),
                                   rate_limit_per_second=None)
    QuickBooksConnector(settings)
    key = f"northwind:quickbooks:{core.realm_id}"
    limiter = limiter_for(key, 1.0, 1, timer=sleeps)  # the one the connector registered
    assert (limiter.rate, limiter.burst) == (500 / 60, 10)
    assert slots_for(key, 1)._value == 10  # noqa: SLF001


def test_the_standin_throttles_past_its_per_minute_quota(core, tokens, sleeps):
    core.requests_per_minute = 2
    settings = dataclasses.replace(settings_for(core, tokens, [], sleeps),
                                   rate_limit_per_second=1000.0)
    with pytest.raises(RateLimited) as caught:
        create(QuickBooksConnector(settings), qb_invoice())
    assert caught.value.code == "003001"
    assert caught.value.retry_after is not None


def test_5xx_is_retried_and_creates_one_invoice(connector, core):
    core.faults.inject(f"/v3/company/{core.realm_id}/invoice", status=503, times=2)
    create(connector, qb_invoice())
    assert core.count("Invoice") == 1


def test_persistent_5xx_is_transient(connector, core):
    core.faults.inject(f"/v3/company/{core.realm_id}/query", status=500, times=10, method=None)
    with pytest.raises(TransientError):
        connector.find_by_reference(qb_invoice())


def test_object_not_found_fault_is_not_found(connector):
    with pytest.raises(NotFound):
        connector.fetch_status("4040")


def test_an_html_error_page_is_mapped_without_a_traceback():
    response = httpx.Response(502, text="<html>Bad gateway</html>",
                              headers={"intuit_tid": "1-abc"})
    error = _map_error(response)
    assert isinstance(error, TransientError)
    assert "Bad gateway" in error.message


def test_no_token_or_client_secret_in_logs_or_recorded_requests(core, tokens, recorded, sleeps,
                                                                caplog):
    caplog.set_level(logging.DEBUG)
    connector = QuickBooksConnector(settings_for(core, tokens, recorded, sleeps))
    core.oauth.expire_all()
    invoice = qb_invoice()
    remote = create(connector, invoice)
    connector.send_invoice(remote, keys_for(invoice))
    secrets = [tokens.access, tokens.refresh, "demo-secret"]
    text = caplog.text + "".join(f"{r.url}{r.headers}{r.body}" for r in recorded)
    assert recorded
    assert all(secret not in text for secret in secrets)
    assert all(r.headers.get("authorization") in (None, "***") for r in recorded)


def test_without_a_connection_the_connector_says_how_to_connect():
    with pytest.raises(AuthError, match="autoinvoice connect quickbooks"):
        QuickBooksConnector(ConnectorSettings(tenant="t", currency="USD"))


# ---------------------------------------------------------------------------------------------
# Token expiry in the middle of a batch


def test_token_expiry_between_invoices_refreshes_and_the_batch_continues(connector, core,
                                                                         tokens):
    for n in range(1, 4):
        create(connector, qb_invoice(job_id=f"WO-B-{n}", number=f"NW-2026-010{n}"))
        core.oauth.expire_all()
    assert core.count("Invoice") == 3
    assert tokens.refreshes == 2


# ---------------------------------------------------------------------------------------------
# Corrections


def test_void_an_unpaid_invoice_then_again_is_already_void(connector, core):
    invoice = qb_invoice()
    remote = create(connector, invoice)
    assert connector.void_invoice(remote.id, keys_for(invoice)) == "voided"
    assert connector.void_invoice(remote.id, keys_for(invoice)) == "already_void"
    assert core.get_invoice(remote.id)["TotalAmt"] == 0
    assert connector.fetch_status(remote.id).status == "void"


def test_a_paid_invoice_cannot_be_voided(connector, core):
    invoice = qb_invoice()
    remote = create(connector, invoice)
    core.record_payment(remote.id, 100)
    with pytest.raises(PermanentError, match="credit it instead"):
        connector.void_invoice(remote.id, keys_for(invoice))


def test_credit_memo_credits_in_full_is_applied_sent_and_found_again(connector, core):
    invoice = qb_invoice()
    remote = create(connector, invoice)
    connector.send_invoice(remote, keys_for(invoice))
    credit = dataclasses.replace(invoice, kind=DocumentKind.CREDIT_NOTE, number="CN-2026-0001",
                                 corrects=invoice.number)
    keys = IdempotencyKeys.derive(invoice.tenant, invoice.job_id, 1, "credit_note")
    note = connector.credit_invoice(remote.id, credit, keys)
    assert note.total == invoice.total
    assert note.number == "CN-2026-0001"
    assert connector.fetch_status(remote.id).balance.is_zero()
    assert core.emails_sent(note.id) == 1
    assert connector.credit_invoice(remote.id, credit, keys) == note
    assert core.count("CreditMemo") == 1
