"""StripeConnector against the local Stripe stand-in (``sandbox.stripe`` via MockTransport)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from autoinvoice.connectors.base import (
    ConnectorSettings,
    IdempotencyKeys,
    RecordedRequest,
    RemoteCustomer,
)
from autoinvoice.connectors.errors import (
    AuthError,
    NotFound,
    PermanentError,
    RateLimited,
    TransientError,
    ValidationRejected,
)
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.connectors.registry import build_connector
from autoinvoice.connectors.stripe import StripeConnector, _map_error, search_literal
from autoinvoice.domain.invoice import Invoice, InvoiceLine, LineKind, Seller
from autoinvoice.domain.job import Address, Asset, Customer, Job
from autoinvoice.domain.money import Money
from autoinvoice.sandbox.stripe import StripeSandbox, mock_transport
from tests.helpers import VirtualTimer

API_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"


# ---------------------------------------------------------------------------------------------
# Builders


class PlainSecret:
    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value


def make_line(description: str, quantity: str, unit_price: str, tax_rate: str = "0",
              kind: LineKind = LineKind.PART, currency: str = "USD") -> InvoiceLine:
    qty, price, rate = Decimal(quantity), Decimal(unit_price), Decimal(tax_rate)
    amount = Money(qty * price, currency)
    return InvoiceLine(kind=kind, description=description, quantity=qty, unit="ea",
                       unit_price=price, amount=amount, tax_rate=rate, tax=amount.times(rate))


DEFAULT_LINES = (
    make_line("Onsite labor, senior technician", "3.75", "145.00", "0", LineKind.LABOR),
    make_line("Thermostatic valve kit", "1", "212.40", "0.085"),
    make_line("Roto-Inject Fluid, 8000 h", "5", "31.17", "0.085"),
    make_line("Cooler fan motor 1.1 kW", "1", "689.99", "0.0625"),
)


def make_invoice(*lines: InvoiceLine, job_id: str = "WO-T-1", revision: int = 1,
                 number: str | None = "NW-2026-0001", po_number: str | None = "PO-77813",
                 customer_id: str = "CUST-0088", currency: str = "USD") -> Invoice:
    address = Address(line1="1200 Industrial Pkwy", city="Tulsa", country="US",
                      postal_code="74107", region="OK")
    customer = Customer(id=customer_id, name="Acme Plastics Inc.",
                        email="ap@acme-plastics.example", billing_address=address)
    job = Job(id=job_id, service_type="emergency_repair", customer=customer,
              completed_at=datetime(2026, 11, 21, 3, 35, tzinfo=UTC),
              summary="Tripped on high temp", po_number=po_number,
              asset=Asset(type="rotary_screw", make="Atlas Copco", model="GA37 VSD+",
                          serial="API726410"))
    seller = Seller(legal_name="Northwind Compressor Service LLC",
                    address=Address(line1="1 Main St", city="Tulsa", country="US"))
    return Invoice(tenant="northwind", job_id=job_id, revision=revision, currency=currency,
                   seller=seller, customer=customer, job=job, lines=lines or DEFAULT_LINES,
                   issue_date=date(2026, 11, 21), due_date=date(2026, 12, 21),
                   payment_terms_days=30, number=number)


def keys_for(invoice: Invoice) -> IdempotencyKeys:
    return IdempotencyKeys.derive(invoice.tenant, invoice.job_id, invoice.revision)


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    clear_limiters()
    yield
    clear_limiters()


@pytest.fixture
def sandbox() -> StripeSandbox:
    return StripeSandbox(api_key=API_KEY)


@pytest.fixture
def records() -> list[RecordedRequest]:
    return []


@pytest.fixture
def sleeps() -> VirtualTimer:
    return VirtualTimer()


def settings_for(sandbox: StripeSandbox, records: list[RecordedRequest] | None = None,
                 timer: Any = None, api_key: str = API_KEY) -> ConnectorSettings:
    return ConnectorSettings(
        tenant="northwind", currency="USD", base_url="https://api.stripe.test",
        credentials={"api_key": PlainSecret(api_key)}, transport=mock_transport(sandbox),
        recorder=records.append if records is not None else None,
        timer=timer if timer is not None else VirtualTimer())


@pytest.fixture
def stripe(sandbox: StripeSandbox, records: list[RecordedRequest],
           sleeps: VirtualTimer) -> Iterator[StripeConnector]:
    connector = StripeConnector(settings_for(sandbox, records, sleeps))
    yield connector
    connector.close()


def create(stripe: StripeConnector, invoice: Invoice) -> Any:
    keys = keys_for(invoice)
    customer = stripe.ensure_customer(invoice.customer, keys)
    return stripe.create_invoice(invoice, customer, keys)


# ---------------------------------------------------------------------------------------------
# The flow


def test_full_flow_create_send_pay_and_track(stripe, sandbox) -> None:
    # given
    invoice = make_invoice()
    keys = keys_for(invoice)
    # when
    customer = stripe.ensure_customer(invoice.customer, keys)
    created = stripe.create_invoice(invoice, customer, keys)
    sent = stripe.send_invoice(created, keys)
    sandbox.record_payment(sent.id, sent.total.minor)
    status = stripe.fetch_status(sent.id)
    # then
    assert created.status == "draft"
    assert created.total == invoice.total
    assert sent.status == "open"
    assert sent.number is not None
    assert sent.number.endswith("-0001")
    assert sent.url is not None
    assert sent.url.startswith("https://invoice.stripe.com/")
    assert sandbox.emails_sent(sent.id) == 1
    assert status.status == "paid"
    assert status.amount_paid == invoice.total
    assert status.balance == Money.zero("USD")
    assert status.paid_at is not None
    assert status.paid_at.tzinfo is UTC


def test_partial_payment_shows_the_balance(stripe, sandbox) -> None:
    remote = stripe.send_invoice(create(stripe, make_invoice()), keys_for(make_invoice()))
    sandbox.record_payment(remote.id, 10_000)
    status = stripe.fetch_status(remote.id)
    assert status.status == "open"
    assert status.amount_paid == Money.of("100.00", "USD")
    assert status.balance == remote.total - Money.of("100.00", "USD")
    assert status.paid_at is None


def test_the_invoice_carries_our_references(stripe, sandbox) -> None:
    remote = create(stripe, make_invoice())
    obj = sandbox.get_invoice(remote.id)
    assert obj["metadata"] == {"job_id": "WO-T-1", "revision": "1", "tenant": "northwind",
                               "invoice_number": "NW-2026-0001"}
    assert obj["custom_fields"] == [{"name": "Invoice no.", "value": "NW-2026-0001"},
                                    {"name": "PO", "value": "PO-77813"}]
    assert obj["collection_method"] == "send_invoice"
    assert obj["currency"] == "usd"
    descriptions = [line["description"] for line in obj["lines"]["data"]]
    assert descriptions[0] == "Onsite labor, senior technician (3.75 ea × 145.00)"
    assert descriptions[1] == "Thermostatic valve kit"
    assert [line["metadata"]["line_no"] for line in obj["lines"]["data"]] == ["1", "2", "3", "4"]


def test_total_matches_ours_for_multi_line_multi_rate_invoice(stripe) -> None:
    lines = (
        make_line("Labor", "2.5", "133.33", "0.0825"),
        make_line("Filter", "3", "19.99", "0.0825"),
        make_line("Oil", "7", "4.15", "0.2"),
        make_line("Exempt service", "1", "80.00", "0"),
        make_line("Odd cents", "1", "0.06", "0.0825"),  # 0.00495 -> 0.00 per line, half-up
        make_line("Half cent", "1", "0.10", "0.05"),  # 0.005 -> 0.01 per line, half-up
        make_line("Credit", "1", "-25.00", "0.0825"),
    )
    invoice = make_invoice(*lines)
    assert create(stripe, invoice).total == invoice.total


def test_zero_rate_lines_get_no_tax_rate_and_rates_are_reused(stripe, sandbox) -> None:
    create(stripe, make_invoice())
    rates_after_first = sandbox.count("tax_rate")
    create(stripe, make_invoice(job_id="WO-T-2"))
    assert rates_after_first == 2  # 8.5 % and 6.25 %; 0 % gets none
    assert sandbox.count("tax_rate") == 2
    fresh = StripeConnector(settings_for(sandbox))  # no cache: finds them by listing
    create(fresh, make_invoice(job_id="WO-T-3"))
    fresh.close()
    assert sandbox.count("tax_rate") == 2


# ---------------------------------------------------------------------------------------------
# Idempotency and lost responses


def test_create_twice_with_the_same_keys_makes_one_invoice(stripe, sandbox) -> None:
    invoice = make_invoice()
    first = create(stripe, invoice)
    second = create(stripe, invoice)
    assert first == second
    assert sandbox.count("invoice") == 1
    assert sandbox.count("invoiceitem") == len(invoice.lines)
    assert sandbox.count("customer") == 1


def test_lost_response_after_create_then_retry_makes_exactly_one_invoice(
        stripe, sandbox, records) -> None:
    sandbox.faults.lose_response("/v1/invoices", times=1)
    remote = create(stripe, make_invoice())
    assert sandbox.count("invoice") == 1
    assert remote.total == make_invoice().total
    posts = [r for r in records if r.method == "POST" and r.url.endswith("/v1/invoices")]
    assert len(posts) == 2  # the lost one and its replay


def test_lost_responses_beyond_retries_then_a_later_step_retry_makes_one_invoice(
        stripe, sandbox) -> None:
    invoice = make_invoice()
    customer = stripe.ensure_customer(invoice.customer, keys_for(invoice))
    sandbox.faults.lose_response("/v1/invoiceitems", times=3)
    with pytest.raises(TransientError):
        stripe.create_invoice(invoice, customer, keys_for(invoice))
    remote = stripe.create_invoice(invoice, customer, keys_for(invoice))  # the pipeline retries
    assert sandbox.count("invoice") == 1
    assert sandbox.count("invoiceitem") == len(invoice.lines)
    assert remote.total == invoice.total


def test_send_twice_sends_one_email(stripe, sandbox) -> None:
    invoice = make_invoice()
    remote = create(stripe, invoice)
    stale = type(remote)(remote.id, remote.total, "created")  # what the pipeline passes
    stripe.send_invoice(stale, keys_for(invoice))
    again = stripe.send_invoice(stale, keys_for(invoice))
    assert again.status == "open"
    assert sandbox.emails_sent(remote.id) == 1


def test_a_changed_invoice_under_the_same_keys_is_a_permanent_error(stripe) -> None:
    create(stripe, make_invoice())
    changed = make_invoice(po_number="PO-OTHER")
    with pytest.raises(PermanentError) as caught:
        create(stripe, changed)
    assert not isinstance(caught.value, ValidationRejected)
    assert caught.value.code == "idempotency_error"


def test_find_by_reference_finds_what_create_made(stripe) -> None:
    invoice = make_invoice(job_id="WO-'quoted'\\1")
    remote = create(stripe, invoice)
    found = stripe.find_by_reference(invoice)
    assert found == remote
    assert stripe.find_by_reference(make_invoice(job_id="WO-'quoted'\\1", revision=2)) is None


def test_ensure_customer_finds_the_existing_customer(stripe, sandbox) -> None:
    invoice = make_invoice()
    first = stripe.ensure_customer(invoice.customer, keys_for(invoice))
    other_job = make_invoice(job_id="WO-T-9")
    again = stripe.ensure_customer(other_job.customer, keys_for(other_job))
    assert again == first == RemoteCustomer(first.id)
    assert sandbox.count("customer") == 1


# ---------------------------------------------------------------------------------------------
# Errors and retries


def test_wrong_key_is_an_auth_error(sandbox) -> None:
    connector = StripeConnector(settings_for(sandbox, api_key="sk_test_wrong_key_0000"))
    with pytest.raises(AuthError) as caught:
        connector.check_auth()
    assert caught.value.status == 401
    assert caught.value.request_id is not None
    assert caught.value.request_id.startswith("req_")


def test_check_auth_passes_with_the_right_key(stripe) -> None:
    stripe.check_auth()


def test_missing_credential_is_an_auth_error(sandbox) -> None:
    with pytest.raises(AuthError):
        StripeConnector(ConnectorSettings(tenant="t", currency="USD"))


def test_409_is_retried(stripe, sandbox, sleeps) -> None:
    sandbox.faults.inject("/v1/invoices", status=409)
    create(stripe, make_invoice())
    assert sandbox.count("invoice") == 1
    assert len(sleeps) == 1


def test_429_retry_after_is_honoured(stripe, sandbox, sleeps) -> None:
    sandbox.faults.inject("/v1/invoiceitems", status=429, retry_after=7)
    create(stripe, make_invoice())
    assert sleeps == [7.0]


def test_5xx_is_retried_then_succeeds(stripe, sandbox, sleeps) -> None:
    sandbox.faults.inject("/v1/invoices", status=500, times=2)
    assert create(stripe, make_invoice()).total == make_invoice().total
    assert len(sleeps) == 2


def test_persistent_5xx_is_a_transient_error(stripe, sandbox) -> None:
    sandbox.faults.inject("/v1/invoices", status=503, times=3)
    with pytest.raises(TransientError) as caught:
        create(stripe, make_invoice())
    assert caught.value.status == 503
    assert sandbox.count("invoice") == 0


def test_persistent_429_is_rate_limited(stripe, sandbox) -> None:
    sandbox.faults.inject("/v1/customers", status=429, retry_after=2, times=3, method="GET")
    with pytest.raises(RateLimited) as caught:
        stripe.ensure_customer(make_invoice().customer, keys_for(make_invoice()))
    assert caught.value.retry_after == 2.0


def test_unknown_invoice_is_not_found(stripe) -> None:
    with pytest.raises(NotFound):
        stripe.fetch_status("in_missing")


def test_no_secret_in_any_log_line_or_record(sandbox, records, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    connector = StripeConnector(settings_for(sandbox, records))
    invoice = make_invoice()
    connector.send_invoice(create(connector, invoice), keys_for(invoice))
    with pytest.raises(AuthError):
        StripeConnector(settings_for(sandbox, records, api_key=API_KEY + "x")).check_auth()
    assert len(caplog.records) > 10
    assert all(API_KEY not in r.getMessage() for r in caplog.records)
    assert all(API_KEY not in f"{r.url}{r.headers}{r.body}" for r in records)


# ---------------------------------------------------------------------------------------------
# Edges


def _response(status: int, body: object, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


@pytest.mark.parametrize(("status", "error", "expected"), [
    (400, {"type": "invalid_request_error", "param": "amount"}, ValidationRejected),
    (400, {"type": "idempotency_error"}, PermanentError),
    (401, {"type": "invalid_request_error"}, AuthError),
    (403, {"type": "invalid_request_error"}, AuthError),
    (404, {"type": "invalid_request_error", "code": "resource_missing"}, NotFound),
    (409, {"type": "invalid_request_error", "code": "lock_timeout"}, TransientError),
    (402, {"type": "card_error"}, PermanentError),
    (500, {"type": "api_error"}, TransientError),
])
def test_map_error_by_status_and_type(status: int, error: dict[str, str],
                                      expected: type[Exception]) -> None:
    mapped = _map_error(_response(status, {"error": {"message": "m", **error}},
                                  **{"Request-Id": "req_9"}))
    assert type(mapped) is expected
    assert mapped.request_id == "req_9"
    assert mapped.code == error.get("code", error["type"])


def test_map_error_429_carries_retry_after_and_survives_a_non_json_body() -> None:
    mapped = _map_error(httpx.Response(429, text="<html>", headers={"Retry-After": "3"}))
    assert isinstance(mapped, RateLimited)
    assert mapped.retry_after == 3.0


def test_search_literal_escapes_quotes_and_backslashes() -> None:
    assert search_literal("a'b\\c") == "'a\\'b\\\\c'"


def test_registry_builds_the_stripe_connector(sandbox) -> None:
    connector = build_connector("stripe", settings_for(sandbox))
    assert isinstance(connector, StripeConnector)
    assert connector.platform == "stripe"
    assert connector.delivers_itself is True
