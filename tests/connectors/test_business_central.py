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
    make_line,
)
from tests.connectors.test_stripe import make_invoice as _make_invoice
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


#: a US company's invoice has one sales tax rate: the customer's tax area's (TULSA, OK: 8.5 %)
US_LINES = (
    dataclasses.replace(make_line("Onsite labor, senior technician", "3.75", "145.00", "0"),
                        tax_category=TaxCategory.ZERO),  # labor is not taxed in Oklahoma
    make_line("Thermostatic valve kit", "1", "212.40", "0.085"),
    make_line("Roto-Inject Fluid, 8000 h", "5", "31.17", "0.085"),
)


def make_invoice(*lines: InvoiceLine, **kw: Any) -> Invoice:
    return _make_invoice(*(lines or US_LINES), **kw)


def doc_invoice(*lines: InvoiceLine, **kw: Any) -> Invoice:
    """An invoice rounded per document, as BC rounds (so our totals equal the platform's)."""
    return dataclasses.replace(make_invoice(*lines, **kw), tax_rounding=TaxRounding.DOCUMENT)


def settings_for(core: BusinessCentralSandbox, records: list[RecordedRequest] | None = None,
                 tokens: Any = None, timer: Any = None, options: dict[str, Any] | None = None,
                 **credentials: str) -> ConnectorSettings:
    return ConnectorSettings(
        tenant="northwind", currency="USD", base_url="https://api.businesscentral.test",
        credentials={k: PlainSecret(v) for k, v in credentials.items()},
        transport=mock_transport(core), recorder=records.append if records is not None else None,
        timer=timer if timer is not None else VirtualTimer(),
        tokens=tokens or EndpointTokens(core),
        options=core.demo_options("US") if options is None else options)


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
    built = BusinessCentralConnector(settings_for(core, records,
                                                  tenant_id=core.tenant_domain,
                                                  environment="sandbox-us"))
    built.check_auth()
    assert f"/v2.0/{core.tenant_domain}/sandbox-us/api/v2.0/" in records[-1].url


def test_rate_limit_is_set_before_sending_from_bc_documented_limit(connector, sleeps) -> None:
    limiter = limiter_for("northwind:business_central", 1, 1, timer=sleeps)
    assert limiter.rate * 300 <= 6000
    assert limiter.rate == Decimal("19.5")


def test_tax_groups_map_outcomes_most_specific_first_and_never_invent_a_code() -> None:
    lines = LineSettings.parse(None, {"S:19": "STANDARD", "S": "REDUCED", "AE": "STANDARD"})
    assert lines.tax_code("S", Decimal("0.19")) == "STANDARD"
    assert lines.tax_code("S", Decimal("0.07")) == "REDUCED"
    assert lines.tax_code("AE", Decimal(0)) == "STANDARD"
    with pytest.raises(PermanentError, match='add "Z:0" or "Z"'):
        lines.tax_code("Z", Decimal(0))


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
        ("Onsite labor, senior technician", Decimal("3.75"), Decimal("145.00"), "LABOR"),
        ("Thermostatic valve kit", 1, Decimal("212.40"), "MATERIALS"),
        ("Roto-Inject Fluid, 8000 h", 5, Decimal("31.17"), "MATERIALS")]
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
    # a US company maps reverse charge (a foreign business buyer) to a nontaxable group
    line = dataclasses.replace(make_line("Compressor overhaul", "1", "900", "0"),
                               tax_category=TaxCategory.REVERSE_CHARGE)
    connector = BusinessCentralConnector(settings_for(core, options={
        "tax_groups": {"AE": "NONTAXABLE"}, "tax_areas": {"AE": "TULSA, OK"}}))
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
    url = (f"https://bc.test/v2.0/{core.tenant_id}/production/api/v2.0/"
           f"companies({core.company_id})/"
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


# -- issue 10: the stand-in as strict as Business Central ------------------------------------

ORIGIN = "https://bc.test"


def eur_line(description: str, price: str, rate: str, category: TaxCategory) -> InvoiceLine:
    return dataclasses.replace(make_line(description, "1", price, rate, currency="EUR"),
                               tax_category=category)


def de_invoice(*lines: InvoiceLine) -> Invoice:
    return doc_invoice(*lines, currency="EUR")


def de_connector(core: BusinessCentralSandbox, records: list[RecordedRequest] | None = None
                 ) -> BusinessCentralConnector:
    return BusinessCentralConnector(settings_for(core, records,
                                                 options=core.demo_options("DE")))


def test_connect_learns_the_tenant_from_the_tokens_tid_and_the_company_from_companies():
    # given: the stand-in hands out no ids in its token answer (as Entra does not)
    from tests.connectors.oauth_consent import consent

    core = BusinessCentralSandbox()
    transport = mock_transport(core)
    # when: consent with the app's default "organizations" sign-in
    tokens, values = consent(core, "business_central", ORIGIN, transport,
                             fill={"entra_tenant": "organizations", "environment": "production"})
    # then
    assert not {"tenant_id", "company_id"} & set(tokens.extra)
    assert tokens.claims["tid"] == core.tenant_id
    assert values == {"tenant_id": core.tenant_id, "environment": "production",
                      "company_id": core.company_id}


def test_connect_takes_a_configured_tenant_when_the_token_names_none():
    from autoinvoice.connectors.oauth import PLATFORMS, TokenSet
    from autoinvoice.connectors.oauth_client import ClientSettings, OAuthClient

    core = BusinessCentralSandbox()
    token = core.oauth.issue()["access_token"]
    settings = ClientSettings(PLATFORMS["business_central"], "c", "s", "a", "t", ORIGIN,
                              {"entra_tenant": core.tenant_domain, "environment": "production"},
                              mock_transport(core))
    values = OAuthClient(settings, lambda: None).discover(TokenSet(token, None, None), {})
    assert values["tenant_id"] == core.tenant_domain
    assert values["company_id"] == core.company_id
    alias = dataclasses.replace(settings, fill={"entra_tenant": "organizations",
                                                "environment": "production"})
    with pytest.raises(AuthError, match="platform.entra_tenant"):
        OAuthClient(alias, lambda: None).discover(TokenSet("opaque", None, None), {})


def test_the_stand_in_refuses_organizations_as_the_tenant_of_an_api_url(core):
    token = core.oauth.issue()["access_token"]
    with httpx.Client(transport=mock_transport(core)) as http:
        answer = http.get(f"{ORIGIN}/v2.0/organizations/production/api/v2.0/companies",
                          headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 404
    assert "organizations" in answer.json()["error"]["message"]


def test_a_token_without_the_business_central_scope_is_refused(core):
    # given: a live token consented for openid only (not for BC's API)
    tokens = EndpointTokens(core)
    issued = core.oauth.issue(frozenset({"openid", "offline_access"}))
    tokens.access, tokens.refresh = issued["access_token"], issued["refresh_token"]
    connector = BusinessCentralConnector(settings_for(core, tokens=tokens))
    # when / then
    with pytest.raises(AuthError) as caught:
        connector.check_auth()
    assert caught.value.status == 401
    assert caught.value.code == "Authentication_InvalidCredentials"


def test_companies_have_their_countrys_real_tax_groups_and_areas():
    us, de = BusinessCentralSandbox(), BusinessCentralSandbox(country="DE")
    assert sorted(us.store.tax_groups) == ["LABOR", "MATERIALS", "NONTAXABLE"]
    assert {a["taxType"] for a in us.store.tax_areas.values()} == {"Sales Tax"}
    assert sorted(de.store.tax_groups) == ["NO VAT", "REDUCED", "STANDARD", "ZERO"]
    assert sorted(de.store.tax_areas) == ["DOMESTIC", "EU", "EXPORT"]


def test_an_invented_vat_code_is_refused_by_the_company(core):
    # the connector used to send "VAT8.5": a US company has no such tax group
    connector = BusinessCentralConnector(settings_for(core, options={
        "tax_groups": {"S": "VAT8.5", "Z": "NO VAT"}, "tax_areas": {"S": "TULSA, OK"}}))
    with pytest.raises(ValidationRejected) as caught:
        created(connector, doc_invoice())
    assert caught.value.code == "Internal_RecordNotFound"
    assert "VAT8.5" in caught.value.message or "NO VAT" in caught.value.message


def test_check_setup_names_each_unknown_code_and_lists_the_companys_codes(core):
    connector = BusinessCentralConnector(settings_for(core, options={
        "tax_groups": {"S:8.5": "VAT8.5", "Z": "LABOR"}, "tax_areas": {"S": "OKLAHOMA"}}))
    problems = connector.check_setup()
    assert problems == [
        "platform.tax_groups.\"S:8.5\" = 'VAT8.5': the company has no such tax group (its "
        "tax groups: LABOR, MATERIALS, NONTAXABLE)",
        "platform.tax_areas.\"S\" = 'OKLAHOMA': the company has no such tax area (its tax "
        "areas: ATLANTA, GA, AUSTIN, TX, TULSA, OK)"]
    assert BusinessCentralConnector(settings_for(core)).check_setup() == []


def test_a_us_customer_gets_its_tax_area_and_is_tax_liable(connector, core, records):
    # given: a new customer, which BC creates without a tax area
    invoice = doc_invoice()
    # when
    remote = created(connector, invoice)
    # then: put in TULSA, OK (8.5 %) and tax liable before the invoice, so BC taxes the parts
    stored = core.get_invoice(remote.id)
    customer = core.customer(stored["customerId"])
    assert customer["taxAreaDisplayName"] == "TULSA, OK"
    assert customer["taxLiable"] is True
    patch = next(r for r in records if r.method == "PATCH")
    assert {k.lower() for k in patch.headers} >= {"if-match"}
    assert remote.total == invoice.total
    assert [x["taxPercent"] for x in stored["lines"] if x["lineType"] == "Account"] == [
        0, Decimal("8.5"), Decimal("8.5")]


def test_reverse_charge_de_to_at_is_net_on_a_german_company(records):
    # given: a German company; an Austrian business buyer with a valid VAT id
    core = BusinessCentralSandbox(country="DE")
    connector = de_connector(core, records)
    invoice = de_invoice(eur_line("Kompressorwartung", "900.00", "0",
                                  TaxCategory.REVERSE_CHARGE))
    invoice = dataclasses.replace(invoice, notes=(REVERSE_CHARGE,))
    # when
    remote = created(connector, invoice)
    # then: the customer sits in the EU VAT business posting group, the line in STANDARD,
    # and BC's Reverse Charge VAT setup puts 0 % on the invoice
    stored = core.get_invoice(remote.id)
    assert core.customer(stored["customerId"])["taxAreaDisplayName"] == \
        "Customers and vendors in EU"
    [line] = [x for x in stored["lines"] if x["lineType"] == "Account"]
    assert (line["taxCode"], line["taxPercent"]) == ("STANDARD", 0)
    assert remote.total == Money.of("900.00", "EUR") == invoice.total
    assert any(REVERSE_CHARGE[:60] in x["description"] for x in stored["lines"])


def test_domestic_german_invoice_is_taxed_by_the_companys_vat_setup():
    core = BusinessCentralSandbox(country="DE")
    connector = de_connector(core)
    invoice = de_invoice(eur_line("Wartung", "100.00", "0.19", TaxCategory.STANDARD),
                         eur_line("Fachbuch", "10.00", "0.07", TaxCategory.STANDARD))
    remote = created(connector, invoice)
    stored = core.get_invoice(remote.id)
    assert [(x["taxCode"], x["taxPercent"]) for x in stored["lines"]
            if x["lineType"] == "Account"] == [("STANDARD", 19), ("REDUCED", 7)]
    assert remote.total == invoice.total == Money.of("129.70", "EUR")


def test_an_unmapped_outcome_names_the_keys_to_add(core):
    connector = BusinessCentralConnector(settings_for(core, options={
        "tax_groups": {"S": "MATERIALS", "Z": "LABOR"}, "tax_areas": {"S": "TULSA, OK"}}))
    zero_only = doc_invoice(US_LINES[0])
    with pytest.raises(PermanentError, match='platform.tax_areas maps no tax area for Z:0: '
                                             'add "Z:0" or "Z"'):
        created(connector, zero_only)


def test_connect_refuses_to_guess_among_several_companies_and_takes_the_configured_one():
    from tests.connectors.oauth_consent import consent

    # given: an environment with two companies
    core = BusinessCentralSandbox(other_countries=("DE",))
    german = core.demo_choice("DE")["company_id"]
    fill = {"entra_tenant": "organizations", "environment": "production"}
    # when / then: without platform.company, connect lists them and stops
    with pytest.raises(AuthError) as caught:
        consent(core, "business_central", ORIGIN, mock_transport(core), fill=fill)
    assert "set platform.company to one of" in caught.value.message
    assert f"'CRONUS AG' ({german})" in caught.value.message
    # and with it (by name, any case, or by id) that company is connected
    for chosen in ("cronus ag", german):
        _, values = consent(core, "business_central", ORIGIN, mock_transport(core),
                            fill={**fill, "company": chosen})
        assert values["company_id"] == german
