"""BusinessCentralConnector against the local Business Central stand-in (MockTransport)."""

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
    IdempotencyKeys,
    RecordedRequest,
    StaticTokens,
)
from autoinvoice.connectors.business_central import (
    BusinessCentralConnector,
    LineSettings,
    _map_error,
    dumps,
)
from autoinvoice.connectors.errors import (
    AuthError,
    PermanentError,
    RateLimited,
    TransientError,
    ValidationRejected,
)
from autoinvoice.connectors.http import clear_limiters, limiter_for
from autoinvoice.connectors.registry import TAX_ROUNDING, build_connector
from autoinvoice.domain.invoice import Invoice, InvoiceLine, TaxCategory, TaxRounding
from autoinvoice.domain.money import Money
from autoinvoice.sandbox.business_central import BusinessCentralSandbox, mock_transport
from tests.connectors.test_stripe import (
    PlainSecret,
    keys_for,
    make_invoice,
    make_line,
)
from tests.helpers import VirtualTimer

REVERSE_CHARGE = "Reverse charge: VAT to be accounted for by the recipient (Art. 196)"


class EndpointTokens:
    """A small TokenSource that refreshes at the stand-in's token endpoint (rotating refresh
    tokens), as the shared OAuth layer does, counting its refreshes."""

    def __init__(self, core: BusinessCentralSandbox) -> None:
        self.core = core
        issued = core.oauth.issue()
        self.access, self.refresh = issued["access_token"], issued["refresh_token"]
        self.refreshes = 0
        self._http = httpx.Client(transport=mock_transport(core), base_url="https://login.test")

    def access_token(self) -> str:
        return self.access

    def refreshed(self, rejected: str) -> str:
        if rejected != self.access:
            return self.access
        response = self._http.post(self.core.oauth_paths[1], data={
            "grant_type": "refresh_token", "refresh_token": self.refresh,
            "client_id": self.core.oauth.client_id,
            "client_secret": self.core.oauth.client_secret})
        if response.status_code != 200:
            raise AuthError("refresh refused", platform="business_central")
        body = response.json()
        self.access, self.refresh = body["access_token"], body["refresh_token"]
        self.refreshes += 1
        return self.access

    def value(self, name: str) -> str | None:
        return self.core.connection_values().get(name)


class DeadTokens(StaticTokens):
    """Refreshing yields another token the platform refuses too."""

    refreshes = 0

    def refreshed(self, rejected: str) -> str:
        self.refreshes += 1
        return "still-not-valid"


def doc_invoice(*lines: InvoiceLine, **kw: Any) -> Invoice:
    """An invoice rounded per document, as BC rounds (so our totals equal the platform's)."""
    return dataclasses.replace(make_invoice(*lines, **kw), tax_rounding=TaxRounding.DOCUMENT)


def settings_for(core: BusinessCentralSandbox, records: list[RecordedRequest] | None = None,
                 tokens: Any = None, timer: Any = None, **credentials: str
                 ) -> ConnectorSettings:
    return ConnectorSettings(
        tenant="northwind", currency="USD", base_url="https://api.businesscentral.test",
        credentials={k: PlainSecret(v) for k, v in credentials.items()},
        transport=mock_transport(core), recorder=records.append if records is not None else None,
        timer=timer if timer is not None else VirtualTimer(),
        tokens=tokens or EndpointTokens(core))


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    clear_limiters()
    yield
    clear_limiters()


@pytest.fixture
def core() -> BusinessCentralSandbox:
    return BusinessCentralSandbox()


@pytest.fixture
def records() -> list[RecordedRequest]:
    return []


@pytest.fixture
def sleeps() -> VirtualTimer:
    return VirtualTimer()


@pytest.fixture
def connector(core: BusinessCentralSandbox, records: list[RecordedRequest],
              sleeps: VirtualTimer) -> Iterator[BusinessCentralConnector]:
    built = BusinessCentralConnector(settings_for(core, records, timer=sleeps))
    yield built
    built.close()


def created(connector: BusinessCentralConnector, invoice: Invoice) -> Any:
    keys = keys_for(invoice)
    customer = connector.ensure_customer(invoice.customer, keys)
    return connector.create_invoice(invoice, customer, keys)


# -- registration and settings ----------------------------------------------------------------


def test_the_registry_builds_it_and_knows_bc_rounds_tax_per_document(core) -> None:
    built = build_connector("business_central", settings_for(core))
    assert isinstance(built, BusinessCentralConnector)
    assert TAX_ROUNDING["business_central"] is TaxRounding.DOCUMENT


def test_without_a_token_source_it_asks_for_a_connection(core) -> None:
    settings = dataclasses.replace(settings_for(core), tokens=None)
    with pytest.raises(AuthError, match="autoinvoice connect"):
        BusinessCentralConnector(settings)


def test_urls_carry_tenant_environment_and_company(connector, records, core) -> None:
    connector.check_auth()
    assert records[-1].url.startswith(
        f"https://api.businesscentral.test/v2.0/{core.tenant_id}/production/api/v2.0/"
        f"companies({core.company_id})")


def test_credentials_override_tenant_and_environment(core, records) -> None:
    built = BusinessCentralConnector(settings_for(core, records, tenant_id="contoso.example",
                                                  environment="sandbox-us"))
    built.check_auth()
    assert "/v2.0/contoso.example/sandbox-us/api/v2.0/" in records[-1].url


def test_rate_limit_is_set_before_sending_from_bc_documented_limit(connector, sleeps) -> None:
    limiter = limiter_for("northwind:business_central", 1, 1, timer=sleeps)
    assert limiter.rate * 300 <= 6000
    assert limiter.rate == Decimal("19.5")


def test_tax_codes_setting_maps_percentages() -> None:
    lines = LineSettings.parse(None, "8.5=TAXABLE, 0=NONTAXABLE")
    assert lines.tax_code(Decimal("0.085")) == "TAXABLE"
    assert lines.tax_code(Decimal(0)) == "NONTAXABLE"
    assert lines.tax_code(Decimal("0.19")) == "VAT19"
    with pytest.raises(PermanentError, match="percentage=CODE"):
        LineSettings.parse(None, "TAXABLE")


# -- customers ---------------------------------------------------------------------------------


def test_customer_is_created_with_our_id_as_number_and_found_again(connector, core) -> None:
    invoice = make_invoice()
    first = connector.ensure_customer(invoice.customer, keys_for(invoice))
    again = connector.ensure_customer(invoice.customer, keys_for(invoice))
    assert first == again
    assert core.count("customers") == 1
    assert core.store.customers[first.id]["number"] == "CUST-0088"


def test_customer_created_in_bc_by_hand_is_found_by_email(connector, core) -> None:
    invoice = make_invoice()
    theirs = core.store.create_customer({"displayName": "Acme Plastics",
                                         "email": "ap@acme-plastics.example"})
    assert connector.ensure_customer(invoice.customer, keys_for(invoice)).id == theirs["id"]


def test_customer_create_whose_response_was_lost_is_found_not_duplicated(connector,
                                                                          core) -> None:
    invoice = make_invoice()
    prefix = f"/v2.0/{core.tenant_id}/production/api/v2.0/companies({core.company_id})/customers"
    core.faults.lose_response(prefix, method="POST")
    with pytest.raises(TransientError):
        connector.ensure_customer(invoice.customer, keys_for(invoice))
    connector.ensure_customer(invoice.customer, keys_for(invoice))
    assert core.count("customers") == 1


# -- invoices ----------------------------------------------------------------------------------


def test_invoice_lines_po_due_date_and_reference_land_on_bc(connector, core) -> None:
    invoice = doc_invoice()
    remote = created(connector, invoice)
    stored = core.get_invoice(remote.id)
    assert stored["externalDocumentNumber"] == "NW-2026-0001 WO-T-1"
    assert stored["customerPurchaseOrderReference"] == "PO-77813"
    assert (stored["invoiceDate"], stored["dueDate"]) == ("2026-11-21", "2026-12-21")
    accounts = [x for x in stored["lines"] if x["lineType"] == "Account"]
    assert [(x["description"], x["quantity"], x["unitPrice"], x["taxCode"]) for x in accounts] == [
        ("Onsite labor, senior technician", Decimal("3.75"), Decimal("145.00"), "NO VAT"),
        ("Thermostatic valve kit", 1, Decimal("212.40"), "VAT8.5"),
        ("Roto-Inject Fluid, 8000 h", 5, Decimal("31.17"), "VAT8.5"),
        ("Cooler fan motor 1.1 kW", 1, Decimal("689.99"), "VAT6.25")]
    assert stored["lines"][0] == {**stored["lines"][0], "lineType": "Comment",
                                  "description": "Job WO-T-1, invoice NW-2026-0001"}


def test_platform_total_is_read_back_and_equals_ours_when_rounded_per_document(connector,
                                                                               core) -> None:
    invoice = doc_invoice()
    remote = created(connector, invoice)
    assert remote.total == invoice.total
    assert remote.status == "Draft"
    assert core.get_invoice(remote.id)["totalAmountIncludingTax"] == invoice.total.amount


def test_unit_prices_go_out_as_exact_json_numbers(connector, records) -> None:
    created(connector, doc_invoice(make_line("Mileage", "38.5", "0.655", "0")))
    body = next(r.body for r in records if r.method == "POST" and "salesInvoices" in r.url)
    assert '"unitPrice":0.655' in body
    assert '"quantity":38.5' in body
    assert dumps({"a": Decimal("18.40")}) == '{"a":18.40}'


def test_covered_lines_and_legal_notes_are_listed(connector, core) -> None:
    covered = dataclasses.replace(make_line("Thermostatic valve kit", "1", "0", "0"),
                                  coverage="Service contract WV-2024-017",
                                  list_unit_price=Decimal("412.00"))
    invoice = dataclasses.replace(doc_invoice(covered, *make_invoice().lines),
                                  notes=(REVERSE_CHARGE,))
    stored = core.get_invoice(created(connector, invoice).id)
    descriptions = [(x["lineType"], x["description"]) for x in stored["lines"]]
    assert ("Account", "Thermostatic valve kit") in descriptions
    assert ("Comment", "Covered: Service contract WV-2024-017 (list price 412 per ea)") in \
        descriptions
    assert descriptions[-1] == ("Comment", REVERSE_CHARGE)


def test_a_reverse_charge_line_goes_out_with_the_zero_tax_code(connector, core) -> None:
    line = dataclasses.replace(make_line("Compressor overhaul", "1", "900", "0"),
                               tax_category=TaxCategory.REVERSE_CHARGE)
    remote = created(connector, doc_invoice(line))
    assert remote.total == Money.of("900", "USD")


def test_create_is_safe_to_repeat(connector, core) -> None:
    invoice = doc_invoice()
    first, second = created(connector, invoice), created(connector, invoice)
    assert first.id == second.id
    assert core.count("salesInvoices") == 1


def test_lost_create_response_then_retry_finds_it_and_creates_nothing_more(connector,
                                                                          core) -> None:
    # given: the deep insert goes through, its answer is lost
    invoice = doc_invoice()
    keys = keys_for(invoice)
    customer = connector.ensure_customer(invoice.customer, keys)
    path = f"/v2.0/{core.tenant_id}/production/api/v2.0/companies({core.company_id})/salesInvoices"
    core.faults.lose_response(path, method="POST")
    # when
    with pytest.raises(TransientError):
        connector.create_invoice(invoice, customer, keys)
    found = connector.find_by_reference(invoice)
    again = connector.create_invoice(invoice, customer, keys)
    # then
    assert found is not None
    assert again.id == found.id
    assert found.total == invoice.total
    assert core.count("salesInvoices") == 1


def test_find_by_reference_finds_what_create_made_and_nothing_else(connector) -> None:
    invoice = doc_invoice()
    remote = created(connector, invoice)
    assert connector.find_by_reference(invoice) == remote
    other = doc_invoice(job_id="WO-T-2", number="NW-2026-0002")
    assert connector.find_by_reference(other) is None


def test_send_posts_and_sends_the_invoice_once(connector, core) -> None:
    invoice = doc_invoice()
    remote = created(connector, invoice)
    sent = connector.send_invoice(remote, keys_for(invoice))
    assert sent.status == "Open"
    assert sent.id == remote.id
    assert (sent.number or "").startswith("PS-INV")
    assert core.emails_sent(remote.id) == 1


def test_send_without_email_setup_is_a_clear_error(core) -> None:
    core.store.company.email_configured = False
    built = BusinessCentralConnector(settings_for(core))
    invoice = doc_invoice()
    remote = created(built, invoice)
    with pytest.raises(ValidationRejected, match="set up email"):
        built.send_invoice(remote, keys_for(invoice))


def test_payment_status_reads_paid_amount_balance_and_paid_date(connector, core) -> None:
    invoice = doc_invoice()
    remote = connector.send_invoice(created(connector, invoice), keys_for(invoice))
    core.record_payment(remote.id, 50000)
    part = connector.fetch_status(remote.id)
    assert (part.status, part.amount_paid, part.paid_at) == ("Open", Money.of("500", "USD"), None)
    assert part.balance == invoice.total - Money.of("500", "USD")
    core.record_payment(remote.id, part.balance.minor)
    paid = connector.fetch_status(remote.id)
    assert (paid.status, paid.balance, paid.amount_paid) == (
        "Paid", Money.zero("USD"), invoice.total)
    assert paid.paid_at is not None


# -- corrections -------------------------------------------------------------------------------


def test_void_deletes_a_draft_and_cancels_a_posted_invoice(connector, core) -> None:
    draft = created(connector, doc_invoice())
    assert connector.void_invoice(draft.id, keys_for(doc_invoice())) == "deleted"
    assert connector.void_invoice(draft.id, keys_for(doc_invoice())) == "already_void"
    invoice = doc_invoice(job_id="WO-T-9", number="NW-2026-0009")
    posted = connector.send_invoice(created(connector, invoice), keys_for(invoice))
    assert connector.void_invoice(posted.id, keys_for(invoice)) == "voided"
    assert core.get_invoice(posted.id)["status"] == "Canceled"
    assert connector.void_invoice(posted.id, keys_for(invoice)) == "already_void"


def test_a_paid_invoice_cannot_be_voided(connector, core) -> None:
    invoice = doc_invoice()
    posted = connector.send_invoice(created(connector, invoice), keys_for(invoice))
    core.record_payment(posted.id, 100)
    with pytest.raises(PermanentError, match="credit it instead"):
        connector.void_invoice(posted.id, keys_for(invoice))


def test_credit_memo_for_the_full_amount_is_issued_once(connector, core) -> None:
    invoice = doc_invoice()
    posted = connector.send_invoice(created(connector, invoice), keys_for(invoice))
    credit = dataclasses.replace(invoice, number="CN-2026-0001", corrects="NW-2026-0001")
    keys = IdempotencyKeys.derive("northwind", invoice.job_id, 1, "credit_note")
    note = connector.credit_invoice(posted.id, credit, keys)
    again = connector.credit_invoice(posted.id, credit, keys)
    assert note == again
    assert note.total == invoice.total
    memos = [m for m in core.credit_memos(posted.id) if m["status"] != "Corrective"]
    assert len(memos) == 1
    assert memos[0]["externalDocumentNumber"] == "CN-2026-0001 WO-T-1"
    assert core.get_invoice(posted.id)["status"] == "Paid"  # closed by the applied memo
    assert core.emails_sent(note.id) == 1


def test_a_draft_cannot_be_credited(connector) -> None:
    invoice = doc_invoice()
    draft = created(connector, invoice)
    credit = dataclasses.replace(invoice, number="CN-2026-0001", corrects="NW-2026-0001")
    with pytest.raises(PermanentError, match="only posted"):
        connector.credit_invoice(draft.id, credit, keys_for(credit))


# -- errors ------------------------------------------------------------------------------------


def test_401_refreshes_the_token_once_and_continues(core, records) -> None:
    tokens = EndpointTokens(core)
    built = BusinessCentralConnector(settings_for(core, records, tokens=tokens))
    core.oauth.expire_all()
    built.check_auth()
    assert tokens.refreshes == 1


def test_a_second_401_after_the_refresh_is_an_auth_error(core) -> None:
    tokens = DeadTokens("not-a-token", values=core.connection_values())
    built = BusinessCentralConnector(settings_for(core, tokens=tokens))
    with pytest.raises(AuthError) as caught:
        built.check_auth()
    assert tokens.refreshes == 1
    assert caught.value.status == 401
    assert caught.value.code == "Authentication_InvalidCredentials"


def test_400_validation_keeps_bc_message_code_and_request_id(core) -> None:
    built = BusinessCentralConnector(settings_for(core, sales_account="99999"))
    with pytest.raises(ValidationRejected) as caught:
        created(built, doc_invoice())
    error = caught.value
    assert "The G/L Account does not exist" in error.message
    assert "No.='99999'" in error.message
    assert (error.status, error.code) == (400, "Internal_RecordNotFound")
    assert error.request_id


def test_409_codes_map_to_the_error_tree() -> None:
    def response(status: int, code: str) -> httpx.Response:
        return httpx.Response(status, headers={"request-id": "r-1"}, content=json.dumps(
            {"error": {"code": code, "message": "Another user has already changed the record."}}))

    stale = _map_error(response(409, "Request_EntityChanged"))
    duplicate = _map_error(response(409, "Internal_EntityWithSameKeyExists"))
    assert type(stale) is TransientError
    assert type(duplicate) is PermanentError
    assert (stale.message, stale.request_id) == (
        "Another user has already changed the record.", "r-1")
    assert type(_map_error(httpx.Response(502, content=b"<html>bad gateway"))) is \
        TransientError


def test_a_stale_etag_on_delete_is_refused_by_the_stand_in(connector, core) -> None:
    remote = created(connector, doc_invoice())
    url = (f"https://bc.test/v2.0/t/production/api/v2.0/companies({core.company_id})/"
           f"salesInvoices({remote.id})")
    token = core.oauth.issue()["access_token"]
    with httpx.Client(transport=mock_transport(core)) as http:
        missing = http.delete(url, headers={"Authorization": f"Bearer {token}"})
        stale = http.delete(url, headers={"Authorization": f"Bearer {token}",
                                          "If-Match": 'W/"old"'})
    assert (missing.status_code, missing.json()["error"]["code"]) == (
        400, "BadRequest_InvalidToken")
    assert (stale.status_code, stale.json()["error"]["code"]) == (409, "Request_EntityChanged")


def test_429_waits_exactly_retry_after_then_succeeds(connector, core, sleeps) -> None:
    core.faults.inject("/v2.0", 429, retry_after=7, method="GET")
    connector.check_auth()
    assert sleeps == [7.0]


def test_429_storm_becomes_rate_limited_with_retry_after(connector, core) -> None:
    core.faults.inject("/v2.0", 429, retry_after=7, times=3, method="GET")
    with pytest.raises(RateLimited) as caught:
        connector.check_auth()
    assert caught.value.retry_after == 7


def test_the_stand_in_enforces_its_sliding_window(core) -> None:
    limited = BusinessCentralSandbox(rate_limit=2, rate_window=300)
    built = BusinessCentralConnector(settings_for(limited))
    built.check_auth()
    built.check_auth()
    with pytest.raises(RateLimited) as caught:
        built.check_auth()  # Retry-After ~300 s: handed back, not slept
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 60


def test_5xx_is_retried(connector, core, sleeps) -> None:
    core.faults.inject("/v2.0", 503, times=2, method="GET")
    connector.check_auth()
    assert len(sleeps) == 2


def test_a_5xx_on_the_create_is_not_blindly_repeated(connector, core) -> None:
    invoice = doc_invoice()
    customer = connector.ensure_customer(invoice.customer, keys_for(invoice))
    core.faults.inject("/v2.0", 500, method="POST")
    with pytest.raises(TransientError):
        connector.create_invoice(invoice, customer, keys_for(invoice))
    assert core.count("salesInvoices") == 0
    connector.create_invoice(invoice, customer, keys_for(invoice))
    assert core.count("salesInvoices") == 1


def test_a_response_that_is_not_json_is_a_clear_error(core) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>login</html>")

    settings = dataclasses.replace(settings_for(core), transport=httpx.MockTransport(handler))
    with pytest.raises(PermanentError, match="not JSON"):
        BusinessCentralConnector(settings).check_auth()


def test_no_token_or_client_secret_in_logs_or_recorded_requests(core, records, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = EndpointTokens(core)
    built = BusinessCentralConnector(settings_for(core, records, tokens=tokens))
    invoice = doc_invoice()
    remote = created(built, invoice)
    core.oauth.expire_all()
    built.send_invoice(remote, keys_for(invoice))
    built.fetch_status(remote.id)
    secrets = {tokens.access, tokens.refresh, core.oauth.client_secret}
    shown = caplog.text + "".join(f"{r.url}{r.headers}{r.body}" for r in records)
    assert records
    assert all(secret not in shown for secret in secrets)
    assert all(r.headers.get("authorization") == "***" for r in records)


def test_token_expiry_in_the_middle_of_a_batch_refreshes_and_continues(core) -> None:
    tokens = EndpointTokens(core)
    built = BusinessCentralConnector(settings_for(core, tokens=tokens))
    for n in range(1, 4):
        invoice = doc_invoice(job_id=f"WO-B-{n}", number=f"NW-2026-010{n}")
        remote = created(built, invoice)
        built.send_invoice(remote, keys_for(invoice))
        core.oauth.expire_all()  # every access token dies between two invoices
    assert core.count("salesInvoices") == 3
    assert tokens.refreshes == 2  # after the first and the second invoice
    assert core.oauth.refresh_count == 2
