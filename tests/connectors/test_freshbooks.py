"""FreshBooksConnector against the local FreshBooks stand-in (``sandbox.freshbooks`` via
MockTransport): payloads, exactly-once create, delivery, payment status, corrections, errors,
OAuth2 refresh and secrets."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from autoinvoice.connectors.base import (
    ConnectorSettings,
    RecordedRequest,
    RemoteCustomer,
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
from autoinvoice.connectors.freshbooks import FreshBooksConnector, _map_error
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.connectors.registry import TAX_ROUNDING, build_connector
from autoinvoice.domain.invoice import DocumentKind, LineKind, TaxRounding
from autoinvoice.domain.money import Money
from autoinvoice.sandbox.freshbooks import TOKEN_PATH, FreshBooksSandbox, mock_transport
from tests.connectors.test_stripe import keys_for, make_invoice, make_line
from tests.helpers import VirtualTimer

API = "https://api.freshbooks.test"
CLIENT_ID, CLIENT_SECRET = "fb-client-4711", "fb-secret-s3cr3t-value"
REVERSE_CHARGE = "Reverse charge: VAT to be accounted for by the recipient"


class Clock:
    def __init__(self) -> None:
        self.now = 1_795_000_000.0

    def __call__(self) -> float:
        return self.now


class StandInTokens:
    """A small TokenSource that refreshes at the stand-in's token endpoint (refresh_token
    grant, client_secret_post, rotating refresh tokens), as ``connectors.oauth`` will."""

    def __init__(self, core: FreshBooksSandbox, *, account_id: str | None = None) -> None:
        issued = core.oauth.issue()
        self.access, self.refresh = issued["access_token"], issued["refresh_token"]
        self.account_id = account_id if account_id is not None else core.account_id
        self._http = httpx.Client(base_url=API, transport=mock_transport(core))
        self.refreshes = 0

    def access_token(self) -> str:
        return self.access

    def refreshed(self, rejected: str) -> str:
        if rejected != self.access:
            return self.access
        answer = self._http.post(TOKEN_PATH, json={
            "grant_type": "refresh_token", "refresh_token": self.refresh,
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "redirect_uri": "https://localhost/callback"})
        if answer.status_code != 200:
            raise AuthError("refresh refused: reconnect FreshBooks")
        body = answer.json()
        self.access, self.refresh = body["access_token"], body["refresh_token"]
        self.refreshes += 1
        return self.access

    def value(self, name: str) -> str | None:
        return self.account_id if name == "account_id" and self.account_id else None


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
def core(clock: Clock) -> FreshBooksSandbox:
    return FreshBooksSandbox(clock=clock, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


@pytest.fixture
def tokens(core: FreshBooksSandbox) -> StandInTokens:
    return StandInTokens(core)


@pytest.fixture
def records() -> list[RecordedRequest]:
    return []


@pytest.fixture
def sleeps() -> VirtualTimer:
    return VirtualTimer()


def settings_for(core: FreshBooksSandbox, tokens: Any, records: list[RecordedRequest],
                 sleeps: VirtualTimer | None = None, **extra: Any) -> ConnectorSettings:
    return ConnectorSettings(tenant="northwind", currency="USD", base_url=API,
                             transport=mock_transport(core), recorder=records.append,
                             timer=sleeps if sleeps is not None else VirtualTimer(), tokens=tokens,
                             **extra)


@pytest.fixture
def connector(core: FreshBooksSandbox, tokens: StandInTokens, records: list[RecordedRequest],
              sleeps: VirtualTimer) -> FreshBooksConnector:
    return FreshBooksConnector(settings_for(core, tokens, records, sleeps))


def create(connector: FreshBooksConnector, invoice: Any = None) -> Any:
    invoice = invoice or make_invoice()
    keys = keys_for(invoice)
    customer = connector.ensure_customer(invoice.customer, keys)
    return connector.create_invoice(invoice, customer, keys)


def bodies(records: list[RecordedRequest], method: str, suffix: str) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in records
            if r.method == method and r.url.split("?")[0].endswith(suffix)]


# ---------------------------------------------------------------------------------------------
# Create: payload and total


def test_registry_builds_it_and_tax_is_rounded_per_line() -> None:
    settings = ConnectorSettings(tenant="t", currency="USD", tokens=StaticTokens("x"))
    assert isinstance(build_connector("freshbooks", settings), FreshBooksConnector)
    assert TAX_ROUNDING["freshbooks"] is TaxRounding.LINE


def test_invoice_carries_lines_taxes_po_due_date_number_and_reference(connector, records, core):
    invoice = make_invoice()
    remote = create(connector, invoice)
    [sent] = bodies(records, "POST", "/invoices/invoices")
    body = sent["invoice"]
    assert body["customerid"] == int(core.find_invoices(job_id="WO-T-1")[0]["customerid"])
    assert (body["create_date"], body["due_offset_days"]) == ("2026-11-21", 30)
    assert (body["invoice_number"], body["po_number"], body["currency_code"]) == (
        "NW-2026-0001", "PO-77813", "USD")
    assert body["notes"].splitlines()[0] == ("autoinvoice-ref: job=WO-T-1 rev=1 "
                                             "number=NW-2026-0001")
    first, valve = body["lines"][0], body["lines"][1]
    assert first == {"type": 0, "name": "Onsite labor, senior technician",
                     "description": "Onsite labor, senior technician", "qty": "3.75",
                     "unit_cost": {"amount": "145.00", "code": "USD"}}
    assert (valve["taxName1"], valve["taxAmount1"]) == ("Tax 8.5%", "8.5")
    assert body["lines"][3]["taxAmount1"] == "6.25"
    # the platform's own total, read back, equals ours
    assert remote.total == invoice.total == Money(Decimal("1676.41"), "USD")
    assert (remote.status, remote.number) == ("draft", "NW-2026-0001")


def test_covered_line_is_listed_at_zero_with_its_coverage(connector, records):
    covered = dataclasses.replace(
        make_line("Cooler fan motor 1.1 kW", "1", "0", "0.085"), list_unit_price=Decimal(
            "689.50"), coverage="Covered by service contract SC-2291")
    remote = create(connector, make_invoice(*make_invoice().lines, covered))
    line = bodies(records, "POST", "/invoices/invoices")[0]["invoice"]["lines"][-1]
    assert line["unit_cost"] == {"amount": "0.00", "code": "USD"}
    assert line["description"].endswith("Covered by service contract SC-2291 "
                                        "(list price 689.50)")
    assert remote.total == Money(Decimal("1676.41"), "USD")


def test_legal_notes_are_printed_in_the_invoice_notes(connector, records):
    invoice = dataclasses.replace(make_invoice(), notes=(REVERSE_CHARGE,))
    create(connector, invoice)
    notes = bodies(records, "POST", "/invoices/invoices")[0]["invoice"]["notes"]
    assert notes.splitlines()[-1] == REVERSE_CHARGE


def test_a_price_finer_than_a_cent_goes_as_one_unit_of_our_amount_so_totals_match(
        connector, records):
    mileage = make_line("Mileage", "38.5", "0.655", "0.085", LineKind.MILEAGE)
    invoice = make_invoice(mileage)
    remote = create(connector, invoice)
    line = bodies(records, "POST", "/invoices/invoices")[0]["invoice"]["lines"][0]
    assert (line["qty"], line["unit_cost"]["amount"]) == ("1", "25.22")
    assert "38.5 ea x 0.655 USD" in line["description"]
    assert remote.total == invoice.total


# ---------------------------------------------------------------------------------------------
# Customers


def test_customer_is_created_once_then_found_by_our_id(connector, core):
    invoice = make_invoice()
    first = connector.ensure_customer(invoice.customer, keys_for(invoice))
    again = connector.ensure_customer(invoice.customer, keys_for(invoice))
    assert first == again
    assert core.count("client") == 1


def test_an_existing_client_with_the_same_email_is_used(connector, core, records):
    body = {"client": {"organization": "Acme (entered by hand)",
                       "email": "ap@acme-plastics.example"}}
    bearer = {"Authorization": f"Bearer {core.oauth.issue()['access_token']}"}
    status, _, raw = core.handle("POST", f"/accounting/account/{core.account_id}/users/clients",
                                 "", bearer, json.dumps(body).encode())
    assert status == 200
    found = connector.ensure_customer(make_invoice().customer, keys_for(make_invoice()))
    assert found.id == str(json.loads(raw)["response"]["result"]["client"]["id"])
    assert core.count("client") == 1


def test_a_rejected_client_is_a_validation_error_with_freshbooks_message(connector):
    invoice = make_invoice()
    bad = dataclasses.replace(invoice.customer, email="not-an-email")
    with pytest.raises(ValidationRejected) as caught:
        connector.ensure_customer(bad, keys_for(invoice))
    error = caught.value
    assert (error.status, error.code) == (422, "2001")
    assert "Invalid email address. (field email)" in str(error)
    assert error.request_id


# ---------------------------------------------------------------------------------------------
# Exactly once


def test_a_lost_create_response_is_found_by_the_retry_not_created_twice(connector, core):
    invoice = make_invoice()
    keys = keys_for(invoice)
    customer = connector.ensure_customer(invoice.customer, keys)
    core.faults.lose_response(f"/accounting/account/{core.account_id}/invoices/invoices",
                              method="POST")
    with pytest.raises(TransientError):
        connector.create_invoice(invoice, customer, keys)
    assert core.count("invoice") == 1  # it went through; the POST was not repeated blindly
    found = connector.find_by_reference(invoice)  # what the pipeline asks before a retry
    again = connector.create_invoice(invoice, customer, keys)  # and create itself searches
    assert found is not None
    assert found.id == again.id
    assert core.count("invoice") == 1


def test_find_by_reference_finds_what_create_made_and_nothing_for_another_revision(connector):
    invoice = make_invoice()
    remote = create(connector, invoice)
    assert connector.find_by_reference(invoice) == remote
    other = dataclasses.replace(invoice, revision=2)
    assert connector.find_by_reference(other) is None


def test_a_deleted_invoice_is_not_found_and_a_new_one_is_created(connector, core):
    invoice = make_invoice()
    remote = create(connector, invoice)
    assert connector.void_invoice(remote.id, keys_for(invoice)) == "deleted"
    assert connector.find_by_reference(invoice) is None
    assert create(connector, invoice).id != remote.id


# ---------------------------------------------------------------------------------------------
# Delivery and payment


def test_send_emails_the_client_once_even_when_repeated(connector, core):
    invoice = make_invoice()
    remote = create(connector, invoice)
    sent = connector.send_invoice(remote, keys_for(invoice))
    connector.send_invoice(remote, keys_for(invoice))
    assert sent.status == "sent"
    assert core.emails_sent(remote.id) == 1
    assert core.email_recipients(remote.id) == [["ap@acme-plastics.example"]]
    assert connector.delivers_itself is True


def test_fetch_status_reads_paid_outstanding_and_the_paid_date(connector, core, clock):
    invoice = make_invoice()
    remote = create(connector, invoice)
    connector.send_invoice(remote, keys_for(invoice))
    core.record_payment(remote.id, 100000)
    partial = connector.fetch_status(remote.id)
    assert (partial.status, partial.amount_paid.amount, partial.balance.amount) == (
        "partial", Decimal("1000.00"), Decimal("676.41"))
    assert partial.paid_at is None
    core.record_payment(remote.id, 67641)
    paid = connector.fetch_status(remote.id)
    assert (paid.status, paid.balance.amount, paid.total) == ("paid", Decimal("0.00"),
                                                               invoice.total)
    assert paid.paid_at is not None
    assert paid.paid_at.date().isoformat() == "2026-11-18"


# ---------------------------------------------------------------------------------------------
# Corrections


def test_void_deletes_a_draft_then_says_already_void(connector):
    invoice = make_invoice()
    remote = create(connector, invoice)
    assert connector.void_invoice(remote.id, keys_for(invoice)) == "deleted"
    assert connector.void_invoice(remote.id, keys_for(invoice)) == "already_void"
    assert connector.void_invoice("999999", keys_for(invoice)) == "already_void"


def test_a_sent_unpaid_invoice_is_voided_and_a_paid_one_refused(connector, core):
    invoice = make_invoice()
    remote = create(connector, invoice)
    connector.send_invoice(remote, keys_for(invoice))
    other = make_invoice(job_id="WO-T-2", number="NW-2026-0002")
    paid = create(connector, other)
    core.record_payment(paid.id, 100)
    assert connector.void_invoice(remote.id, keys_for(invoice)) == "voided"
    with pytest.raises(PermanentError, match="credit it instead"):
        connector.void_invoice(paid.id, keys_for(other))


def test_credit_note_is_issued_once_for_the_full_amount(connector, core):
    invoice = make_invoice()
    remote = create(connector, invoice)
    connector.send_invoice(remote, keys_for(invoice))
    credit = dataclasses.replace(invoice, kind=DocumentKind.CREDIT_NOTE, number="CN-2026-0001",
                                 corrects=invoice.number)
    keys = keys_for(credit)
    note = connector.credit_invoice(remote.id, credit, keys)
    again = connector.credit_invoice(remote.id, credit, keys)
    assert note == again
    assert (note.total, note.number) == (invoice.total, "CN-2026-0001")
    [stored] = core.credit_notes()
    assert "Credits invoice NW-2026-0001 in full" in stored["notes"]


# ---------------------------------------------------------------------------------------------
# Errors, limits, auth


def test_429_with_retry_after_is_honoured(connector, core, sleeps):
    core.faults.inject("/accounting/", status=429, retry_after=7, method="GET")
    create(connector)
    assert sleeps == [7.0]


def test_the_stand_in_rate_limit_answers_429_and_it_becomes_rate_limited(core, tokens,
                                                                          records, sleeps):
    core.rate_limit, core.rate_window = 2, 60.0
    connector = FreshBooksConnector(settings_for(core, tokens, records, sleeps))
    with pytest.raises(RateLimited) as caught:
        create(connector)
    assert caught.value.retry_after == 60.0
    assert sleeps == [60.0, 60.0]  # the clock stands still: every retry is refused again


def test_5xx_is_retried(connector, core, sleeps):
    core.faults.inject("/accounting/", status=503, times=2, method="GET")
    remote = create(connector)
    assert remote.total.amount == Decimal("1676.41")
    assert len(sleeps) == 2


def test_a_401_refreshes_once_and_continues(connector, core, tokens):
    core.oauth.expire_all()
    create(connector)
    assert (tokens.refreshes, core.oauth.refresh_count) == (1, 1)


def test_a_second_401_after_refresh_is_an_auth_error(core, records):
    connector = FreshBooksConnector(settings_for(core, StaticTokens("revoked-token", values={
        "account_id": core.account_id}), records))
    with pytest.raises(AuthError) as caught:
        create(connector)
    assert "no refresh token" in str(caught.value)


def test_token_expiry_in_the_middle_of_a_batch_refreshes_and_continues(connector, core,
                                                                       tokens):
    for n in range(4):
        if n == 2:
            core.oauth.expire_all()
        invoice = make_invoice(job_id=f"WO-B-{n}", number=f"NW-2026-01{n:02d}")
        remote = create(connector, invoice)
        connector.send_invoice(remote, keys_for(invoice))
    assert tokens.refreshes == 1
    assert core.count("invoice") == 4
    assert all(core.emails_sent(i["id"]) == 1 for i in core.find_invoices())


def test_no_secret_in_any_log_line_or_recorded_request(connector, core, tokens, records,
                                                       caplog):
    caplog.set_level(logging.DEBUG)
    first_token = tokens.access
    create(connector)
    core.oauth.expire_all()
    create(connector, make_invoice(job_id="WO-S-2", number="NW-2026-0099"))
    secrets = [first_token, tokens.access, tokens.refresh, CLIENT_SECRET]
    text = "\n".join(r.getMessage() for r in caplog.records)
    recorded = "\n".join(f"{r.url} {json.dumps(dict(r.headers))} {r.body}" for r in records)
    assert caplog.records
    assert all(s not in text and s not in recorded for s in secrets)
    assert all(r.headers["authorization"] == "***" for r in records)


def test_the_account_id_is_learned_from_the_identity_endpoint(core, records):
    tokens = StandInTokens(core, account_id="")
    connector = FreshBooksConnector(settings_for(core, tokens, records))
    create(connector)
    assert records[0].url == f"{API}/auth/api/v1/users/me"
    assert f"/accounting/account/{core.account_id}/" in records[1].url


def test_check_auth_passes_and_without_tokens_it_is_an_auth_error(connector, core):
    connector.check_auth()
    bare = FreshBooksConnector(ConnectorSettings(tenant="t", currency="USD", base_url=API,
                                                 transport=mock_transport(core)))
    with pytest.raises(AuthError, match="not connected"):
        bare.check_auth()


def test_a_pre_issued_access_token_credential_works(core, records):
    class Plain:
        def __init__(self, value: str) -> None:
            self.value = value

        def reveal(self) -> str:
            return self.value

    core.api_key = "pre-issued-token-123"
    settings = ConnectorSettings(tenant="t", currency="USD", base_url=API,
                                 transport=mock_transport(core),
                                 credentials={"api_key": Plain("pre-issued-token-123")})
    assert create(FreshBooksConnector(settings)).total.amount == Decimal("1676.41")


def test_a_missing_client_is_not_found(connector):
    with pytest.raises(NotFound):
        connector.create_invoice(make_invoice(), RemoteCustomer("424242"),
                                 keys_for(make_invoice()))


def test_a_bad_answer_is_a_clear_error_not_a_stack_trace(tokens):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>maintenance</html>")

    connector = FreshBooksConnector(ConnectorSettings(
        tenant="t", currency="USD", base_url=API, transport=httpx.MockTransport(handler),
        tokens=StaticTokens("t", values={"account_id": "A"})))
    with pytest.raises(PermanentError, match="not JSON"):
        connector.fetch_status("1")

    def wrong_shape(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"response": {"result": {}}})

    connector = FreshBooksConnector(ConnectorSettings(
        tenant="u", currency="USD", base_url=API, transport=httpx.MockTransport(wrong_shape),
        tokens=StaticTokens("t", values={"account_id": "A"})))
    with pytest.raises(PermanentError, match=r"no response\.result\.invoice"):
        connector.fetch_status("1")


@pytest.mark.parametrize(("status", "body", "kind", "code", "message"), [
    (422, {"response": {"errors": [{"errno": 2001, "field": "qty", "message": "Bad qty",
                                    "object": "invoice"}]}}, ValidationRejected, "2001",
     "Bad qty (field qty)"),
    (404, {"code": 5, "message": "Request failed with status_code: 404", "details": [
        {"reason": "1012", "metadata": {"object": "client", "message": "Client not found.",
                                        "field": "userid"}}]}, NotFound, "1012",
     "Client not found. (field userid)"),
    (401, {"error": "unauthenticated", "error_description": "This action requires "
           "authentication to continue."}, AuthError, "unauthenticated", "This action"),
    (503, {"errno": 503, "message": "Service unavailable"}, TransientError, "503",
     "Service unavailable"),
])
def test_every_freshbooks_error_shape_is_mapped_with_its_message(status, body, kind, code,
                                                                   message):
    error = _map_error(httpx.Response(status, json=body, headers={"X-Request-Id": "rq-1"}))
    assert isinstance(error, kind)
    assert (error.code, error.request_id) == (code, "rq-1")
    assert error.message.startswith(message)

