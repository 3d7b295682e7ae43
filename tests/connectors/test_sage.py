"""SageConnector against the local Sage stand-in (``sandbox.sage`` via MockTransport)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from autoinvoice.connectors.base import (
    ConnectorSettings,
    IdempotencyKeys,
    RecordedRequest,
    RemoteCustomer,
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
from autoinvoice.connectors.sage import SageConnector, _map_error, dumps
from autoinvoice.connectors.sage.payloads import idempotency_id
from autoinvoice.domain.invoice import DocumentKind, Invoice, LineKind, TaxCategory, TaxRounding
from autoinvoice.domain.money import Money
from autoinvoice.sandbox.sage import TOKEN_PATH, SageSandbox, mock_transport
from tests.connectors.test_stripe import keys_for, make_invoice, make_line
from tests.helpers import VirtualTimer

BASE = "https://api.accounting.sage.test/v3.1"


class StandInTokens:
    """A TokenSource that refreshes through the stand-in's own token endpoint, the way
    ``connectors.oauth`` does (rotating refresh token kept)."""

    def __init__(self, core: SageSandbox) -> None:
        self._core = core
        pair = core.oauth.issue()
        self.token, self.refresh_token = pair["access_token"], pair["refresh_token"]
        self.business_id = core.business_id  # what ``GET /businesses`` names
        self.refreshes = 0

    def access_token(self) -> str:
        return self.token

    def refreshed(self, rejected: str) -> str:
        with httpx.Client(transport=mock_transport(self._core),
                          base_url="https://oauth.accounting.sage.test") as client:
            answer = client.post(TOKEN_PATH, data={
                "grant_type": "refresh_token", "refresh_token": self.refresh_token,
                "client_id": self._core.oauth.client_id,
                "client_secret": self._core.oauth.client_secret})
        if answer.status_code != 200:
            raise AuthError(f"refresh refused: {answer.json().get('error')}")
        body = answer.json()
        self.token, self.refresh_token = body["access_token"], body["refresh_token"]
        self.refreshes += 1
        return self.token

    def value(self, name: str) -> str | None:
        return self.business_id if name == "business_id" else None


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    clear_limiters()
    yield
    clear_limiters()


@pytest.fixture
def core() -> SageSandbox:
    # these tests bill the shared US invoice (8.5 % / 6.25 % sales tax): a US business
    return SageSandbox(country="US")


@pytest.fixture
def tokens(core: SageSandbox) -> StandInTokens:
    return StandInTokens(core)


@pytest.fixture
def records() -> list[RecordedRequest]:
    return []


@pytest.fixture
def sleeps() -> VirtualTimer:
    return VirtualTimer()


def settings_for(core: SageSandbox, tokens: Any, records: list[RecordedRequest] | None = None,
                 timer: Any = None) -> ConnectorSettings:
    return ConnectorSettings(
        tenant="northwind", currency="USD", base_url=BASE, transport=mock_transport(core),
        recorder=records.append if records is not None else None,
        timer=timer if timer is not None else VirtualTimer(), tokens=tokens)


@pytest.fixture
def sage(core: SageSandbox, tokens: StandInTokens, records: list[RecordedRequest],
         sleeps: VirtualTimer) -> Iterator[SageConnector]:
    connector = SageConnector(settings_for(core, tokens, records, sleeps))
    yield connector
    connector.close()


def create(sage: SageConnector, invoice: Invoice) -> Any:
    keys = keys_for(invoice)
    customer = sage.ensure_customer(invoice.customer, keys)
    return sage.create_invoice(invoice, customer, keys)


def posted(records: list[RecordedRequest], path: str) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in records
            if r.method == "POST" and r.url.endswith(path)]


# ---------------------------------------------------------------------------------------------
# Create, look up, deliver, payment


def test_invoice_is_created_with_our_lines_tax_po_and_reference(sage, core, records):
    invoice = make_invoice()
    remote = create(sage, invoice)
    assert remote.total == invoice.total
    assert remote.number == "SI-1"
    body = posted(records, "/sales_invoices")[0]["sales_invoice"]
    assert body["reference"] == "NW-2026-0001"
    assert body["due_date"] == "2026-12-21"
    assert body["notes"].startswith("Job WO-T-1 revision 1 · PO PO-77813")
    assert len(body["idempotency_id"]) == 32
    lines = body["invoice_lines"]
    assert [line["description"] for line in lines][:2] == [
        "Onsite labor, senior technician", "Thermostatic valve kit"]
    assert lines[0]["tax_rate_id"] == "US_NO_TAX"
    assert lines[1]["tax_rate_id"] == "US_OK_SALES"
    assert lines[1]["tax_amount"] == 18.05  # exact JSON number, written from a Decimal
    stored = core.get_invoice(remote.id)
    assert stored["contact"]["id"] == core.contacts()[0]["id"]
    assert Decimal(stored["tax_amount"]) == invoice.tax_total.amount


def test_amounts_travel_as_exact_json_numbers():
    text = dumps({"a": Decimal("0.655"), "b": [Decimal("145.00")], "c": "x"})
    assert text == '{"a":0.655,"b":[145.00],"c":"x"}'


def test_covered_lines_and_reverse_charge_notes_are_kept(sage, records):
    covered = make_line("Air filter element", "1", "0", "0")
    covered = type(covered)(**{**{f: getattr(covered, f) for f in covered.__slots__},
                               "coverage": "covered by service contract SC-12",
                               "tax_category": TaxCategory.REVERSE_CHARGE})
    invoice = make_invoice(covered, *make_invoice().lines)
    invoice = type(invoice)(**{**{f: getattr(invoice, f) for f in invoice.__slots__},
                               "notes": ("Reverse charge: VAT to be accounted for by the "
                                         "recipient",)})
    remote = create(sage, invoice)
    assert remote.total == invoice.total
    body = posted(records, "/sales_invoices")[0]["sales_invoice"]
    first = body["invoice_lines"][0]
    assert first["description"] == "Air filter element (covered by service contract SC-12)"
    assert first["unit_price"] == 0
    assert "Reverse charge" in body["notes"]


def test_customer_is_found_by_reference_then_by_email(sage, core, records):
    invoice = make_invoice()
    keys = keys_for(invoice)
    first = sage.ensure_customer(invoice.customer, keys)
    again = sage.ensure_customer(invoice.customer, keys)
    assert first == again
    assert len(posted(records, "/contacts")) == 1
    assert core.contacts()[0]["reference"] == "CUST-0088"
    assert posted(records, "/contacts")[0]["contact"]["contact_type_ids"] == ["CUSTOMER"]


def test_customer_created_by_hand_in_sage_is_found_by_email(sage, core, tokens):
    with httpx.Client(transport=mock_transport(core), base_url=BASE) as client:
        client.post("/contacts", headers={"Authorization": f"Bearer {tokens.token}"}, json={
            "contact": {"name": "Acme (typed in Sage)", "contact_type_ids": ["CUSTOMER"],
                        "main_contact_person": {"email": "ap@acme-plastics.example"}}})
    invoice = make_invoice()
    found = sage.ensure_customer(invoice.customer, keys_for(invoice))
    assert found.id == core.contacts()[0]["id"]
    assert len(core.contacts()) == 1


def test_send_marks_it_sent_on_sage_and_payment_is_read_back(sage, core):
    invoice = make_invoice()
    remote = create(sage, invoice)
    sent = sage.send_invoice(remote, keys_for(invoice))
    assert core.get_invoice(remote.id)["sent"] is True
    assert sent.total == invoice.total
    core.record_payment(remote.id, 50000)
    status = sage.fetch_status(remote.id)
    assert status.status == "part_paid"
    assert status.amount_paid == Money(Decimal("500.00"), "USD")
    assert status.balance == invoice.total - Money(Decimal("500.00"), "USD")
    core.record_payment(remote.id, status.balance.minor)
    paid = sage.fetch_status(remote.id)
    assert paid.status == "paid"
    assert paid.balance.amount == 0
    assert paid.paid_at is not None


def test_find_by_reference_finds_what_create_made(sage):
    invoice = make_invoice()
    remote = create(sage, invoice)
    assert sage.find_by_reference(invoice) == remote
    other_revision = make_invoice(revision=2)
    assert sage.find_by_reference(other_revision) is None


def test_registry_builds_the_connector_and_rounds_per_line(core, tokens):
    connector = build_connector("sage", settings_for(core, tokens))
    assert isinstance(connector, SageConnector)
    assert connector.delivers_itself is False
    assert TAX_ROUNDING["sage"] is TaxRounding.LINE


def test_no_oauth_connection_is_an_auth_error(core):
    with pytest.raises(AuthError, match="OAuth2 connection"):
        SageConnector(settings_for(core, None))


# ---------------------------------------------------------------------------------------------
# Exactly once


def test_replayed_idempotency_id_returns_the_same_invoice(sage, core):
    invoice = make_invoice()
    first = create(sage, invoice)
    second = create(sage, invoice)
    assert first == second
    assert len(core.invoices()) == 1


def test_lost_response_is_retried_with_the_same_idempotency_id(sage, core, records):
    invoice = make_invoice()
    core.faults.lose_response("/v3.1/sales_invoices")
    remote = create(sage, invoice)
    assert len(core.invoices()) == 1
    assert remote.id == core.invoices()[0]["id"]
    ids = {b["sales_invoice"]["idempotency_id"] for b in posted(records, "/sales_invoices")}
    assert len(posted(records, "/sales_invoices")) == 2
    assert ids == {idempotency_id(keys_for(invoice).for_step("create"))}


def test_idempotency_id_is_deterministic_per_step():
    keys = IdempotencyKeys.derive("t", "J1", 1)
    assert idempotency_id(keys.for_step("create")) == idempotency_id(keys.for_step("create"))
    assert idempotency_id(keys.for_step("create")) != idempotency_id(keys.for_step("customer"))
    assert all(c in "0123456789abcdef" for c in idempotency_id(keys.for_step("create")))


# ---------------------------------------------------------------------------------------------
# Errors


def test_401_refreshes_once_then_continues(sage, core, tokens):
    invoice = make_invoice()
    create(sage, invoice)
    core.oauth.expire_all()
    assert sage.find_by_reference(invoice) is not None
    assert tokens.refreshes == 1


def test_401_with_a_token_that_cannot_be_refreshed_is_an_auth_error(core):
    connector = SageConnector(settings_for(core, StaticTokens("not-a-token")))
    with pytest.raises(AuthError) as caught:
        connector.check_auth()
    assert "refresh" in str(caught.value)


def test_second_401_is_the_platforms_answer(core, tokens):
    core.oauth.expire_all()
    tokens.refreshed = lambda rejected: "still-wrong"  # type: ignore[method-assign]
    connector = SageConnector(settings_for(core, tokens))
    with pytest.raises(AuthError) as caught:
        connector.check_auth()
    assert caught.value.status == 401
    assert caught.value.code == "AuthorizationFailure"


def test_validation_422_keeps_sages_message_code_and_request_id(sage):
    invoice = make_invoice()
    with pytest.raises(ValidationRejected) as caught:
        sage.create_invoice(invoice, RemoteCustomer("no-such-contact"), keys_for(invoice))
    err = caught.value
    assert err.status == 422
    assert err.code == "RecordInvalid"
    assert "is not a valid contact (contact_id)" in err.message
    assert err.request_id
    assert err.request_id.startswith("sage-req-")


def test_409_is_retried_then_mapped_as_permanent(sage, core, sleeps):
    core.faults.inject("/v3.1/sales_invoices", status=409, times=1)
    remote = create(sage, make_invoice())
    assert remote.total == make_invoice().total
    response = httpx.Response(409, json=[{"$severity": "error", "$dataCode": "Conflict",
                                          "$message": "Record was changed", "$source": ""}])
    err = _map_error(response)
    assert type(err) is PermanentError
    assert err.message == "Record was changed"


def test_idempotency_resource_mismatch_is_permanent():
    err = _map_error(httpx.Response(422, json=[{
        "$severity": "error", "$dataCode": "IdempotencyResourceMismatch",
        "$message": "Entity type mismatch", "$source": ""}]))
    assert isinstance(err, PermanentError)
    assert err.code == "IdempotencyResourceMismatch"


def test_429_retry_after_is_honoured(sage, core, sleeps):
    core.faults.inject("/v3.1/sales_invoices", status=429, retry_after=7)
    create(sage, make_invoice())
    assert 7.0 in sleeps
    assert len(core.invoices()) == 1


def test_stand_in_rate_limit_answers_429_with_retry_after(tokens):
    timer = VirtualTimer(1000.0)
    core = SageSandbox(rate_limit_per_minute=2, clock=timer.monotonic)
    tokens._core = core
    pair = core.oauth.issue()
    tokens.token = pair["access_token"]
    connector = SageConnector(settings_for(core, tokens, timer=timer))
    connector.check_auth()
    connector.check_auth()
    connector.check_auth()  # the third one in a minute: 429, slept through, retried
    with httpx.Client(transport=mock_transport(core), base_url=BASE) as client:
        client.get("/contacts", headers={"Authorization": f"Bearer {tokens.token}"})
        answer = client.get("/contacts", headers={"Authorization": f"Bearer {tokens.token}"})
        answer = client.get("/contacts", headers={"Authorization": f"Bearer {tokens.token}"})
    assert answer.status_code == 429
    assert int(answer.headers["Retry-After"]) > 0
    assert answer.json()[0]["$dataCode"] == "TooManyRequests"


def test_long_retry_after_is_handed_back_as_rate_limited(sage, core):
    core.faults.inject("/v3.1/contacts", status=429, retry_after=3600, method="GET")
    with pytest.raises(RateLimited) as caught:
        sage.check_auth()
    assert caught.value.retry_after == 3600


def test_5xx_is_retried(sage, core, sleeps):
    core.faults.inject("/v3.1/sales_invoices", status=500, times=2)
    remote = create(sage, make_invoice())
    assert len(core.invoices()) == 1
    assert remote.id == core.invoices()[0]["id"]
    assert len(sleeps) >= 2


def test_5xx_to_the_end_is_transient(sage, core):
    core.faults.inject("/v3.1/contacts", status=503, times=5, method="GET")
    with pytest.raises(TransientError):
        sage.check_auth()


def test_a_body_that_is_not_json_is_a_clear_error(tokens):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>maintenance</html>")

    settings = ConnectorSettings(tenant="t", currency="USD", base_url=BASE,
                                 transport=httpx.MockTransport(handler), tokens=tokens,
                                 timer=VirtualTimer())
    with pytest.raises(PermanentError, match="not JSON"):
        SageConnector(settings).fetch_status("x")


def test_a_list_without_items_is_a_clear_error(tokens):
    settings = ConnectorSettings(
        tenant="t", currency="USD", base_url=BASE, tokens=tokens, timer=VirtualTimer(),
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"$total": 0})))
    with pytest.raises(PermanentError, match=r"\$items"):
        SageConnector(settings).find_by_reference(make_invoice())


def test_missing_tax_rate_names_the_percentage(sage):
    invoice = make_invoice(make_line("Odd tax", "1", "10.00", "0.0333"))
    with pytest.raises(PermanentError, match=r"3\.33%"):
        create(sage, invoice)


def test_no_secret_in_logs_or_recorded_requests(sage, core, tokens, records, caplog):
    caplog.set_level(logging.DEBUG)
    invoice = make_invoice()
    create(sage, invoice)
    core.oauth.expire_all()
    sage.fetch_status(core.invoices()[0]["id"])
    secrets = {tokens.token, tokens.refresh_token, core.oauth.client_secret}
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "sales_invoices" in text
    recorded = "\n".join(f"{r.url} {r.headers} {r.body}" for r in records)
    for secret in secrets:
        assert secret not in text
        assert secret not in recorded
    assert all(r.headers["authorization"] == "***" for r in records)


# ---------------------------------------------------------------------------------------------
# A batch, and corrections


def test_token_expiry_in_the_middle_of_a_batch(sage, core, tokens):
    for n in range(1, 5):
        if n == 3:
            core.oauth.expire_all()
        create(sage, make_invoice(job_id=f"WO-B-{n}", number=f"NW-2026-{n:04d}"))
    assert len(core.invoices()) == 4
    assert tokens.refreshes == 1
    assert core.oauth.refresh_count == 1


def test_void_unpaid_invoice_then_again(sage, core):
    invoice = make_invoice()
    remote = create(sage, invoice)
    assert sage.void_invoice(remote.id, keys_for(invoice)) == "voided"
    assert core.get_invoice(remote.id)["status"]["id"] == "VOID"
    assert core.get_invoice(remote.id)["void_reason"]
    assert sage.void_invoice(remote.id, keys_for(invoice)) == "already_void"


def test_paid_invoice_cannot_be_voided(sage, core):
    invoice = make_invoice()
    remote = create(sage, invoice)
    core.record_payment(remote.id, 100)
    with pytest.raises(PermanentError, match="credit it instead"):
        sage.void_invoice(remote.id, keys_for(invoice))


def test_credit_note_is_issued_once(sage, core, records):
    invoice = make_invoice()
    remote = create(sage, invoice)
    credit = type(invoice)(**{**{f: getattr(invoice, f) for f in invoice.__slots__},
                              "kind": DocumentKind.CREDIT_NOTE, "number": "NW-CN-2026-0001",
                              "corrects": invoice.number})
    keys = IdempotencyKeys.derive("northwind", invoice.job_id, 1, kind="credit_note")
    note = sage.credit_invoice(remote.id, credit, keys)
    again = sage.credit_invoice(remote.id, credit, keys)
    assert note == again
    assert note.total == invoice.total
    assert len(core.credit_notes()) == 1
    body = posted(records, "/sales_credit_notes")[0]["sales_credit_note"]
    assert body["reference"] == "NW-CN-2026-0001"
    assert "credits invoice NW-2026-0001 (Sage SI-1)" in body["notes"]
    assert body["original_invoice_date"] == "2026-11-21"


def test_labor_line_without_tax_uses_a_zero_rate(sage, records):
    labor = make_line("Labor", "2", "100.00", "0", LineKind.LABOR)
    create(sage, make_invoice(labor))
    line = posted(records, "/sales_invoices")[0]["sales_invoice"]["invoice_lines"][0]
    assert line["tax_rate_id"] == "US_NO_TAX"
    assert line["tax_amount"] == 0


def test_contact_created_meanwhile_by_another_worker_is_found_again(sage, core, monkeypatch):
    invoice = make_invoice()
    other = SageConnector(settings_for(core, StandInTokens(core)))
    theirs = other.ensure_customer(invoice.customer, IdempotencyKeys.derive("t", "WO-X", 1))
    misses = iter([None])
    real_find = sage._find_contact
    monkeypatch.setattr(sage, "_find_contact",
                        lambda customer: next(misses, None) or real_find(customer))
    ours = sage.ensure_customer(invoice.customer, keys_for(invoice))
    assert ours == theirs
    assert len(core.contacts()) == 1


# ---------------------------------------------------------------------------------------------
# Issue 10: the stand-in as strict as Sage -- discovery, scopes, a UK business, typed numbers

UK = "https://api.accounting.sage.test"


def uk_line(description: str, quantity: str, price: str, rate: str,
            category: TaxCategory = TaxCategory.STANDARD) -> Any:
    line = make_line(description, quantity, price, rate, currency="GBP")
    return type(line)(**{**{f: getattr(line, f) for f in line.__slots__},
                         "tax_category": category})


def uk_invoice(*lines: Any) -> Invoice:
    invoice = make_invoice(*lines, currency="GBP")
    return type(invoice)(**{**{f: getattr(invoice, f) for f in invoice.__slots__},
                            "currency": "GBP"})


@pytest.fixture
def uk_core() -> SageSandbox:
    return SageSandbox()  # the default: a UK business with Sage's UK rates only


def uk_connector(core: SageSandbox, records: list[RecordedRequest] | None = None,
                 tax_rates: dict[str, str] | None = None) -> SageConnector:
    settings = ConnectorSettings(
        tenant="thames", currency="GBP", base_url=BASE, transport=mock_transport(core),
        recorder=records.append if records is not None else None, timer=VirtualTimer(),
        tokens=StandInTokens(core), options={"tax_rates": tax_rates} if tax_rates else {})
    return SageConnector(settings)


@pytest.mark.parametrize("shape", ["items", "array"])
def test_connect_finds_the_business_through_get_businesses_in_either_shape(shape):
    # given: Sage's guides show GET /businesses as a $items list, other sources as a bare
    # array; the token answer names no business
    from tests.connectors.oauth_consent import consent

    core = SageSandbox(businesses_shape=shape)
    # when
    tokens, values = consent(core, "sage", UK, mock_transport(core))
    # then
    assert "business_id" not in tokens.extra
    assert values == {"business_id": core.business_id}
    assert ("GET", "/v3.1/businesses") in core.requests


def test_token_answer_does_not_carry_the_business(uk_core):
    assert "business_id" not in uk_core.oauth.issue()


def test_uk_business_lists_uk_tax_rates_only(uk_core):
    assert sorted(uk_core.tax_rate_ids()) == ["GB_EXEMPT", "GB_NO_TAX", "GB_REDUCED",
                                               "GB_STANDARD", "GB_ZERO"]


def test_each_tax_outcome_maps_to_sages_own_uk_rate(uk_core):
    # given: one line per outcome our engine can reach for a UK seller
    records: list[RecordedRequest] = []
    sage = uk_connector(uk_core, records)
    invoice = uk_invoice(
        uk_line("Labour", "2", "100.00", "0.20"),
        uk_line("Fuel surcharge", "1", "10.00", "0.05"),
        uk_line("Export crate", "1", "20.00", "0", TaxCategory.ZERO),
        uk_line("Training", "1", "50.00", "0", TaxCategory.EXEMPT),
        uk_line("Service abroad", "1", "30.00", "0", TaxCategory.REVERSE_CHARGE),
        uk_line("Outside scope", "1", "5.00", "0", TaxCategory.NOT_SUBJECT))
    # when
    remote = create(sage, invoice)
    # then
    lines = posted(records, "/sales_invoices")[0]["sales_invoice"]["invoice_lines"]
    assert [x["tax_rate_id"] for x in lines] == [
        "GB_STANDARD", "GB_REDUCED", "GB_ZERO", "GB_EXEMPT", "GB_NO_TAX", "GB_NO_TAX"]
    assert remote.total == invoice.total


def test_a_rate_the_uk_business_lacks_names_the_outcome_and_its_rates(uk_core):
    sage = uk_connector(uk_core)
    with pytest.raises(PermanentError) as caught:
        create(sage, uk_invoice(uk_line("Kit", "1", "100.00", "0.19")))
    assert caught.value.code == "no_tax_rate"
    assert "S at 19%" in caught.value.message
    assert "GB_STANDARD" in caught.value.message
    assert "platform.tax_rates" in caught.value.message


def test_tax_rates_mapping_wins_and_unknown_ids_are_reported(uk_core):
    records: list[RecordedRequest] = []
    sage = uk_connector(uk_core, records, {"AE": "GB_ZERO"})
    create(sage, uk_invoice(uk_line("Service abroad", "1", "30.00", "0",
                                    TaxCategory.REVERSE_CHARGE)))
    line = posted(records, "/sales_invoices")[0]["sales_invoice"]["invoice_lines"][0]
    assert line["tax_rate_id"] == "GB_ZERO"
    assert sage.check_setup() == []
    wrong = uk_connector(uk_core, tax_rates={"S:20": "T1"})
    [problem] = wrong.check_setup()
    assert problem.startswith('platform.tax_rates."S:20" = \'T1\'')
    assert "GB_STANDARD" in problem
    with pytest.raises(PermanentError) as caught:
        create(wrong, uk_invoice(uk_line("Labour", "1", "100.00", "0.20")))
    assert caught.value.code == "unknown_tax_rate"


def test_a_readonly_token_cannot_create(uk_core):
    # given: a connection consented with the readonly scope only
    tokens = StandInTokens(uk_core)
    tokens.token = uk_core.oauth.issue(frozenset({"readonly"}))["access_token"]
    sage = SageConnector(ConnectorSettings(
        tenant="thames", currency="GBP", base_url=BASE, transport=mock_transport(uk_core),
        timer=VirtualTimer(), tokens=tokens))
    sage.check_auth()  # reading is allowed
    # when / then: the first write is refused with Sage's error shape
    with pytest.raises(AuthError) as caught:
        create(sage, uk_invoice(uk_line("Labour", "1", "100.00", "0.20")))
    assert caught.value.status == 403
    assert "full_access" in caught.value.message


def test_connect_asks_for_full_access():
    from autoinvoice.connectors.oauth import PLATFORMS

    assert PLATFORMS["sage"].scopes == ("full_access",)


def test_stand_in_answers_amounts_as_json_numbers_and_refuses_strings(uk_core):
    sage = uk_connector(uk_core)
    remote = create(sage, uk_invoice(uk_line("Labour", "2", "100.00", "0.20")))
    token = uk_core.oauth.issue()["access_token"]
    with httpx.Client(transport=mock_transport(uk_core), base_url=BASE) as http:
        raw = http.get(f"/sales_invoices/{remote.id}",
                       headers={"Authorization": f"Bearer {token}"}).text
        assert '"total_amount":240.00' in raw
        assert '"quantity":2' in raw
        rates = http.get("/tax_rates", params={"attributes": "percentage"},
                         headers={"Authorization": f"Bearer {token}"}).json()
        assert {r["id"]: r["percentage"] for r in rates["$items"]}["GB_STANDARD"] == 20
        body = json.loads(posted_body(uk_core, sage))
        body["sales_invoice"]["invoice_lines"][0]["unit_price"] = "100.00"
        del body["sales_invoice"]["idempotency_id"]
        refused = http.post("/sales_invoices", json=body,
                            headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 422
    assert refused.json()[0]["$source"] == "invoice_lines[0].unit_price"


def posted_body(core: SageSandbox, sage: SageConnector) -> str:
    records: list[RecordedRequest] = []
    again = uk_connector(core, records)
    create(again, uk_invoice(uk_line("Labour", "2", "100.00", "0.20")))
    return next(r.body for r in records if r.method == "POST" and r.url.endswith("/sales_invoices"))


def test_connect_takes_the_lead_business_or_the_configured_one():
    from autoinvoice.connectors.errors import AuthError as Refused
    from tests.connectors.oauth_consent import consent

    core = SageSandbox(other_countries=("DE",))
    german = core.business_for("DE")
    _, lead = consent(core, "sage", UK, mock_transport(core))
    assert lead == {"business_id": core.business_id}  # Sage's lead business by default
    _, chosen = consent(core, "sage", UK, mock_transport(core),
                        fill={"business": "Stand-in Kompressoren GmbH"})
    assert chosen == {"business_id": german}
    with pytest.raises(Refused, match="platform.business = 'Nope' is none of"):
        consent(core, "sage", UK, mock_transport(core), fill={"business": "Nope"})
