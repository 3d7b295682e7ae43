"""SandboxConnector against the generic sandbox, in-process through its httpx MockTransport."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal

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
from autoinvoice.connectors.registry import build_connector
from autoinvoice.connectors.sandbox import SandboxConnector
from autoinvoice.domain.invoice import Invoice, InvoiceLine, LineKind, Seller
from autoinvoice.domain.job import Address, Customer, Job
from autoinvoice.domain.money import Money
from autoinvoice.sandbox.generic import GenericSandbox, mock_transport
from tests.helpers import VirtualTimer

API_KEY = "sbx_live_7f3c9a1e5d2b4c6a"
BASE_URL = "http://sandbox.test"
CUSTOMER = Customer(
    id="CUST-ACME",
    name="Acme Plastics Inc.",
    email="ap@acme-plastics.example",
    billing_address=Address("12 Mill Rd", "Tulsa", "US", "74103", "OK"),
)
SELLER = Seller("Northwind Compressed Air Services LLC", Address("410 W 7th St", "Tulsa", "US"))


# -- builders (also used by tests/integration/test_sandbox_server.py) ----------------------
def line(description: str, quantity: str, unit_price: str, tax_rate: str,
         kind: LineKind = LineKind.PART, currency: str = "USD") -> InvoiceLine:
    amount = Money(Decimal(quantity) * Decimal(unit_price), currency)
    return InvoiceLine(kind, description, Decimal(quantity), "ea", Decimal(unit_price), amount,
                       Decimal(tax_rate), amount.times(Decimal(tax_rate)))


MULTI_RATE_LINES = (
    line("Onsite labor, senior technician", "3.25", "145.00", "0", LineKind.LABOR),
    line("Air/oil separator element 2901-0564", "1", "412.37", "0.0825"),
    line("Oil filter 1613-6105", "3", "38.15", "0.0825"),
    line("Roto-Inject fluid, 20 l", "2", "186.99", "0.0825"),
    line("Environmental disposal fee", "1", "10.10", "0.05", LineKind.FEE),  # tax 0.505: half-up
    line("Mileage", "46.5", "0.95", "0", LineKind.MILEAGE),
)


def make_invoice(job_id: str = "JOB-24017", revision: int = 1,
                 lines: tuple[InvoiceLine, ...] = MULTI_RATE_LINES) -> Invoice:
    job = Job(id=job_id, service_type="annual_service", customer=CUSTOMER,
              completed_at=datetime(2025, 3, 4, 15, 30, tzinfo=UTC), po_number="PO-88123")
    return Invoice(tenant="northwind", job_id=job_id, revision=revision, currency="USD",
                   seller=SELLER, customer=CUSTOMER, job=job, lines=lines,
                   issue_date=date(2025, 3, 5), due_date=date(2025, 4, 4),
                   payment_terms_days=30, number=f"NW-2025-{job_id[-5:]}")


def keys_for(invoice: Invoice) -> IdempotencyKeys:
    return IdempotencyKeys.derive(invoice.tenant, invoice.job_id, invoice.revision)


class PlainSecret:
    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "PlainSecret(****)"


@dataclass
class Wire:
    """Everything a connector sent and slept, for assertions."""

    bodies: list[tuple[str, str, bytes]] = field(default_factory=list)
    sleeps: VirtualTimer = field(default_factory=VirtualTimer)
    recorded: list[RecordedRequest] = field(default_factory=list)

    def spy(self, inner: httpx.BaseTransport) -> httpx.BaseTransport:
        wire = self

        class Spy(httpx.BaseTransport):
            def handle_request(self, request: httpx.Request) -> httpx.Response:
                wire.bodies.append((request.method, request.url.path, request.read()))
                return inner.handle_request(request)

        return Spy()


def settings_for(transport: httpx.BaseTransport | None, wire: Wire, *,
                 api_key: str | None = API_KEY, base_url: str = BASE_URL) -> ConnectorSettings:
    return ConnectorSettings(
        tenant="northwind", currency="USD", base_url=base_url,
        credentials={"api_key": PlainSecret(api_key)} if api_key else {},
        transport=wire.spy(transport) if transport is not None else None,
        recorder=wire.recorded.append, timer=wire.sleeps,
    )


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture
def sandbox() -> GenericSandbox:
    return GenericSandbox(api_key=API_KEY)


@pytest.fixture
def wire() -> Wire:
    return Wire()


@pytest.fixture
def connector(sandbox: GenericSandbox, wire: Wire) -> SandboxConnector:
    return SandboxConnector(settings_for(mock_transport(sandbox), wire))


def pay(sandbox: GenericSandbox, remote_id: str, amount: str, paid_at: str | None = None) -> None:
    """The demo's client paying, straight through the sandbox API."""
    body = json.dumps({"amount": amount, **({"paid_at": paid_at} if paid_at else {})}).encode()
    status, _, answer = sandbox.handle(
        "POST", f"/api/v1/invoices/{remote_id}/payments", {},
        {"Authorization": f"Bearer {API_KEY}"}, body)
    assert status == 201, answer


# -- the flow ------------------------------------------------------------------------------
def test_registry_builds_the_sandbox_connector(sandbox: GenericSandbox, wire: Wire) -> None:
    built = build_connector("sandbox", settings_for(mock_transport(sandbox), wire))
    assert isinstance(built, SandboxConnector)
    assert (built.platform, built.delivers_itself) == ("sandbox", False)


def test_full_flow_from_customer_to_paid(sandbox: GenericSandbox,
                                         connector: SandboxConnector) -> None:
    # given
    invoice = make_invoice()
    keys = keys_for(invoice)
    connector.check_auth()
    # when
    customer = connector.ensure_customer(invoice.customer, keys)
    created = connector.create_invoice(invoice, customer, keys)
    sent = connector.send_invoice(created, keys)
    pay(sandbox, sent.id, "500.00")
    partly = connector.fetch_status(sent.id)
    pay(sandbox, sent.id, str(invoice.total.amount - Decimal("500.00")), "2025-03-20T09:15:00Z")
    paid = connector.fetch_status(sent.id)
    # then
    assert (created.status, created.number, created.total) == ("draft", invoice.number,
                                                               invoice.total)
    assert (sent.id, sent.status) == (created.id, "issued")
    assert partly.status == "partially_paid"
    assert partly.balance == invoice.total - Money.of("500.00", "USD")
    assert (paid.status, paid.amount_paid, paid.balance) == ("paid", invoice.total,
                                                             Money.zero("USD"))
    assert paid.paid_at == datetime(2025, 3, 20, 9, 15, tzinfo=UTC)


def test_platform_total_equals_ours_for_a_multi_rate_invoice(connector: SandboxConnector) -> None:
    # given: three rates, a half-cent tax (0.505) and lines whose per-line rounded taxes
    # (74.31 at 8.25 %) differ from the tax of their sum (74.32)
    invoice = make_invoice()
    assert len({x.tax_rate for x in invoice.lines}) == 3
    keys = keys_for(invoice)
    # when
    remote = connector.create_invoice(invoice, connector.ensure_customer(CUSTOMER, keys), keys)
    # then
    assert remote.total == invoice.total == Money.of("1501.15", "USD")


def test_money_travels_as_decimal_strings(connector: SandboxConnector, wire: Wire) -> None:
    invoice = make_invoice()
    connector.create_invoice(invoice, connector.ensure_customer(CUSTOMER, keys_for(invoice)),
                             keys_for(invoice))
    sent = json.loads(next(body for m, p, body in wire.bodies if p.endswith("/invoices")))
    first = sent["lines"][0]
    assert first == {"description": "Onsite labor, senior technician", "quantity": "3.25",
                     "unit_price": "145.00", "amount": "471.25", "tax_rate": "0", "tax": "0.00"}
    assert all(isinstance(v, str) for ln in sent["lines"] for v in ln.values())


def test_ensure_customer_reuses_the_customer_it_finds(sandbox: GenericSandbox,
                                                      connector: SandboxConnector) -> None:
    first = connector.ensure_customer(CUSTOMER, IdempotencyKeys("ai-a"))
    second = connector.ensure_customer(CUSTOMER, IdempotencyKeys("ai-b"))
    assert first == second
    assert sum(c.method == "POST" and c.path.endswith("/customers") for c in sandbox.calls) == 1


def test_authorization_is_sent_only_when_a_key_is_configured(wire: Wire) -> None:
    open_sandbox = GenericSandbox()
    SandboxConnector(settings_for(mock_transport(open_sandbox), wire, api_key=None)).check_auth()
    assert "authorization" not in open_sandbox.calls[-1].headers


# -- idempotency ---------------------------------------------------------------------------
def test_create_replayed_under_the_same_key_returns_the_same_invoice(
        sandbox: GenericSandbox, connector: SandboxConnector) -> None:
    invoice = make_invoice()
    keys = keys_for(invoice)
    customer = connector.ensure_customer(CUSTOMER, keys)
    first = connector.create_invoice(invoice, customer, keys)
    again = connector.create_invoice(invoice, customer, keys)
    assert again == first
    assert sandbox.invoice_count == 1
    assert sandbox.calls[-1].replayed


def test_lost_response_after_create_then_retry_makes_exactly_one_invoice(
        sandbox: GenericSandbox, connector: SandboxConnector) -> None:
    # given: the platform creates the invoice, then the response is lost on the way back
    invoice = make_invoice()
    keys = keys_for(invoice)
    customer = connector.ensure_customer(CUSTOMER, keys)
    sandbox.faults.lose_response("/api/v1/invoices", method="POST")
    # when: the HTTP layer retries with the same key
    remote = connector.create_invoice(invoice, customer, keys)
    # then
    assert sandbox.invoice_count == 1
    assert remote.total == invoice.total
    assert [c.replayed for c in sandbox.calls if c.method == "POST"][-2:] == [False, True]


def test_pipeline_retry_after_lost_responses_makes_exactly_one_invoice(
        sandbox: GenericSandbox, connector: SandboxConnector) -> None:
    # given: every response is lost until the HTTP layer gives up
    invoice = make_invoice()
    keys = keys_for(invoice)
    customer = connector.ensure_customer(CUSTOMER, keys)
    sandbox.faults.lose_response("/api/v1/invoices", method="POST", times=50)
    with pytest.raises(TransientError):
        connector.create_invoice(invoice, customer, keys)
    sandbox.faults.clear()
    # when: the pipeline claims the row again and repeats the step with the stored keys
    remote = connector.create_invoice(invoice, customer, keys)
    # then
    assert sandbox.invoice_count == 1
    assert connector.find_by_reference(invoice) == remote


def test_find_by_reference_finds_what_create_made(connector: SandboxConnector) -> None:
    invoice = make_invoice()
    keys = keys_for(invoice)
    created = connector.create_invoice(invoice, connector.ensure_customer(CUSTOMER, keys), keys)
    assert connector.find_by_reference(invoice) == created
    assert connector.find_by_reference(replace(invoice, revision=2)) is None
    assert connector.find_by_reference(make_invoice(job_id="JOB-99999")) is None


# -- errors --------------------------------------------------------------------------------
def test_wrong_api_key_is_an_auth_error(sandbox: GenericSandbox, wire: Wire) -> None:
    wrong = SandboxConnector(settings_for(mock_transport(sandbox), wire, api_key="sbx_wrong"))
    with pytest.raises(AuthError) as caught:
        wrong.check_auth()
    assert (caught.value.status, caught.value.code) == (401, "unauthorized")
    assert str(caught.value.request_id).startswith("req_")
    assert wire.sleeps == []


def test_same_key_with_another_body_is_a_permanent_409(connector: SandboxConnector) -> None:
    invoice = make_invoice()
    keys = keys_for(invoice)
    customer = connector.ensure_customer(CUSTOMER, keys)
    connector.create_invoice(invoice, customer, keys)
    changed = replace(invoice, lines=invoice.lines[:2])
    with pytest.raises(PermanentError) as caught:
        connector.create_invoice(changed, customer, keys)
    assert (caught.value.status, caught.value.code) == (409, "idempotency_key_reused")


def test_429_is_rate_limited_with_retry_after_honoured(sandbox: GenericSandbox,
                                                       connector: SandboxConnector,
                                                       wire: Wire) -> None:
    sandbox.faults.inject("/api/v1/account", 429, retry_after=7, times=50)
    with pytest.raises(RateLimited) as caught:
        connector.check_auth()
    assert (caught.value.status, caught.value.retry_after) == (429, 7.0)
    assert wire.sleeps
    assert set(wire.sleeps) == {7.0}


def test_one_429_is_retried_after_the_time_the_platform_asked(sandbox: GenericSandbox,
                                                              connector: SandboxConnector,
                                                              wire: Wire) -> None:
    sandbox.faults.inject("/api/v1/account", 429, retry_after=2)
    connector.check_auth()
    assert wire.sleeps == [2.0]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_transient(sandbox: GenericSandbox, connector: SandboxConnector,
                          status: int) -> None:
    sandbox.faults.inject("/api/v1/invoices", status, times=50)
    with pytest.raises(TransientError) as caught:
        connector.fetch_status("inv_000001")
    assert caught.value.status == status
    assert not isinstance(caught.value, RateLimited)


def test_a_single_5xx_is_retried_transparently(sandbox: GenericSandbox,
                                               connector: SandboxConnector) -> None:
    invoice = make_invoice()
    keys = keys_for(invoice)
    customer = connector.ensure_customer(CUSTOMER, keys)
    sandbox.faults.inject("/api/v1/invoices", 503, method="POST")
    assert connector.create_invoice(invoice, customer, keys).total == invoice.total
    assert sandbox.invoice_count == 1


def test_unknown_invoice_is_not_found(connector: SandboxConnector) -> None:
    with pytest.raises(NotFound) as caught:
        connector.fetch_status("inv_404404")
    assert caught.value.status == 404


def test_rejected_payload_is_a_validation_error_naming_the_field(
        connector: SandboxConnector) -> None:
    invoice = make_invoice(lines=(line("", "1", "10.00", "0"),))
    with pytest.raises(ValidationRejected) as caught:
        connector.create_invoice(invoice, RemoteCustomer("cus_000001"), keys_for(invoice))
    assert caught.value.status == 400


# -- secrets -------------------------------------------------------------------------------
@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG):
        yield caplog


def test_no_secret_in_any_log_line_or_recorded_request(
        sandbox: GenericSandbox, connector: SandboxConnector, wire: Wire,
        all_logs: pytest.LogCaptureFixture) -> None:
    # given: a whole flow plus failures
    invoice = make_invoice()
    keys = keys_for(invoice)
    remote = connector.create_invoice(invoice, connector.ensure_customer(CUSTOMER, keys), keys)
    connector.send_invoice(remote, keys)
    sandbox.faults.inject("/api/v1/invoices", 429, retry_after=1, times=50)
    with pytest.raises(RateLimited) as rate_limited:
        connector.fetch_status(remote.id)
    with pytest.raises(AuthError) as auth:
        SandboxConnector(settings_for(mock_transport(sandbox), wire,
                                      api_key="sbx_wrong_key_123")).check_auth()
    # then
    texts = [record.getMessage() for record in all_logs.records]
    texts += [str(rate_limited.value), str(auth.value)]
    texts += [repr(r) for r in wire.recorded]
    assert all_logs.records, "expected the HTTP layer to log"
    assert wire.recorded, "expected the HTTP layer to record requests"
    assert {r.headers.get("authorization", r.headers.get("Authorization"))
            for r in wire.recorded} == {"***"}
    for secret in (API_KEY, "sbx_wrong_key_123"):
        assert not [t for t in texts if secret in t]


def test_a_proxy_error_page_without_json_is_still_transient(wire: Wire) -> None:
    html = httpx.MockTransport(lambda request: httpx.Response(502, text="<html>Bad gateway</html>"))
    with pytest.raises(TransientError) as caught:
        SandboxConnector(settings_for(html, wire)).fetch_status("inv_000001")
    assert (caught.value.status, caught.value.code) == (502, None)


def test_a_success_with_an_unexpected_body_is_permanent(wire: Wire) -> None:
    odd = httpx.MockTransport(lambda request: httpx.Response(200, json={"id": "inv_1"}))
    with pytest.raises(PermanentError, match="status"):
        SandboxConnector(settings_for(odd, wire)).fetch_status("inv_1")


# -- the sandbox API itself (what the connector and the demo rely on) ----------------------
def call(sandbox: GenericSandbox, method: str, path: str, body: object = None,
         key: str | None = None) -> tuple[int, dict[str, str], dict[str, object]]:
    headers = {"Authorization": f"Bearer {API_KEY}", **({"Idempotency-Key": key} if key else {})}
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    status, out, answer = sandbox.handle(method, f"/api/v1{path}", {}, headers, raw)
    return status, out, json.loads(answer)


def draft_body(sandbox: GenericSandbox, **changes: object) -> dict[str, object]:
    _, _, customer = call(sandbox, "POST", "/customers", {"external_id": "C1", "name": "Acme"})
    return {"customer_id": customer["id"], "reference": "JOB-1", "revision": 1,
            "currency": "USD", "issue_date": "2025-03-05", "due_date": "2025-04-04",
            "lines": [{"description": "Labor", "quantity": "1", "unit_price": "100.00",
                       "amount": "100.00", "tax_rate": "0.05"}], **changes}


@pytest.mark.parametrize(("change", "code", "field"), [
    ({"lines": [{"description": "x", "quantity": "1", "unit_price": "1", "amount": 1.5,
                 "tax_rate": "0"}]}, "invalid_request", "lines[0].amount"),
    ({"lines": [{"description": "x", "quantity": "1", "unit_price": "1", "amount": "1.005",
                 "tax_rate": "0"}]}, "invalid_amount", "lines[0].amount"),
    ({"currency": "XXX"}, "invalid_currency", "currency"),
    ({"customer_id": "cus_nobody"}, "no_such_customer", "customer_id"),
    ({"discount": "5"}, "unknown_field", "discount"),
    ({"lines": []}, "missing_field", "lines"),
])
def test_sandbox_rejects_bad_invoices_naming_the_field(change: dict[str, object], code: str,
                                                       field: str) -> None:
    sandbox = GenericSandbox(api_key=API_KEY)
    status, headers, answer = call(sandbox, "POST", "/invoices", draft_body(sandbox, **change))
    error = answer["error"]
    assert isinstance(error, dict)
    assert (status, error["code"], error["field"]) == (400, code, field)
    assert headers["x-request-id"].startswith("req_")


def test_sandbox_does_not_store_a_rejected_request_under_its_key() -> None:
    sandbox = GenericSandbox(api_key=API_KEY)
    bad = draft_body(sandbox, currency="XXX")
    assert call(sandbox, "POST", "/invoices", bad, key="k1")[0] == 400
    assert call(sandbox, "POST", "/invoices", {**bad, "currency": "USD"}, key="k1")[0] == 201


def test_sandbox_payment_lifecycle_and_state_rules() -> None:
    sandbox = GenericSandbox(api_key=API_KEY)
    _, _, invoice = call(sandbox, "POST", "/invoices", draft_body(sandbox))
    path = f"/invoices/{invoice['id']}"
    assert invoice["total"] == "105.00"
    assert call(sandbox, "POST", f"{path}/payments", {"amount": "5.00"})[0] == 409  # draft
    assert call(sandbox, "POST", f"{path}/issue")[2]["status"] == "issued"
    assert call(sandbox, "POST", f"{path}/payments", {"amount": "105.01"})[0] == 400
    assert call(sandbox, "POST", f"{path}/payments", {"amount": "5.00"})[2]["status"] == (
        "partially_paid")
    assert call(sandbox, "POST", f"{path}/void")[0] == 409  # money received
    paid = call(sandbox, "POST", f"{path}/payments",
                {"amount": "100.00", "paid_at": "2025-03-09T10:00:00+01:00"})[2]
    assert (paid["status"], paid["balance"], paid["paid_at"]) == (
        "paid", "0.00", "2025-03-09T10:00:00+01:00")


def test_sandbox_answers_unknown_routes_and_methods_in_its_error_format() -> None:
    sandbox = GenericSandbox(api_key=API_KEY)
    missing, wrong_method, garbage = (call(sandbox, "GET", "/nothing"),
                                      call(sandbox, "DELETE", "/invoices"),
                                      call(sandbox, "POST", "/customers", b"{not json"))
    assert missing[0::2] == (404, {"error": {"code": "not_found", "field": None,
                                             "message": "no route GET /api/v1/nothing"}})
    assert (wrong_method[0], garbage[0]) == (405, 400)
    error = garbage[2]["error"]
    assert isinstance(error, dict)
    assert (error["code"], error["field"]) == ("invalid_json", None)
