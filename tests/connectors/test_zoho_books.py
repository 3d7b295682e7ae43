"""ZohoBooksConnector against the local Zoho Books stand-in (``sandbox.zoho_books``).

No vendor spec file exists in the kit; the request shapes are checked against what the Zoho
Books API v3 pages say (zoho.com/books/api/v3/invoices, /contacts, /taxes, /credit-notes,
/errors; the email endpoint as docs.onehazel.com's reference of Zoho's OpenAPI document lists
it): see ``DOCUMENTED`` below.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

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
from autoinvoice.connectors.registry import build_connector
from autoinvoice.connectors.zoho_books import ZohoBooksConnector, api_base
from autoinvoice.domain.invoice import DocumentKind
from autoinvoice.sandbox.zoho_books import ZohoBooksSandbox, mock_transport
from tests.connectors.test_stripe import make_invoice, make_line
from tests.helpers import VirtualTimer

# Documented required fields and JSON types per (method, path suffix) -- Zoho Books API v3.
DOCUMENTED: dict[tuple[str, str], dict[str, type | tuple[type, ...]]] = {
    # contacts: "contact_name (Required) string"
    ("POST", "/contacts"): {"contact_name": str},
    # taxes, "Create a tax": tax_name, tax_percentage (double), tax_type
    ("POST", "/settings/taxes"): {"tax_name": str, "tax_percentage": (int, Decimal),
                                  "tax_type": str},
    # invoices, "Create an invoice": customer_id (Required), line_items (Required) array
    ("POST", "/invoices"): {"customer_id": str, "line_items": list},
    # "Email an invoice": to_mail_ids (Required) array, subject, body
    ("POST", "/email"): {"to_mail_ids": list, "subject": str, "body": str},
    # "Create a credit note": customer_id, line_items (Required)
    ("POST", "/creditnotes"): {"customer_id": str, "line_items": list},
    # "Credit to an invoice": invoices (Required) [{invoice_id, amount_applied}]
    ("POST", "/invoices#apply"): {"invoices": list},
}
LINE_TYPES = {"name": str, "description": str, "rate": (int, Decimal),
              "quantity": (int, Decimal)}


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    clear_limiters()
    yield
    clear_limiters()


class EndpointTokens:
    """A small TokenSource that refreshes through the stand-in's token endpoint (as the
    shared OAuth layer will), counting its refreshes."""

    def __init__(self, core: ZohoBooksSandbox) -> None:
        self.client = httpx.Client(transport=mock_transport(core),
                                   base_url="https://accounts.zoho.com")
        issued = core.oauth.issue()
        self.token, self.refresh = issued["access_token"], issued["refresh_token"]
        self.org = core.organization_id
        self.refreshes = 0

    def access_token(self) -> str:
        return self.token

    def refreshed(self, rejected: str) -> str:
        answer = self.client.post("/oauth/v2/token", data={
            "grant_type": "refresh_token", "refresh_token": self.refresh,
            "client_id": "demo-client", "client_secret": "demo-secret"})
        if answer.status_code != 200:
            raise AuthError("refresh refused", platform="zoho_books", status=401)
        body = answer.json()
        self.token, self.refresh = body["access_token"], body["refresh_token"]
        self.refreshes += 1
        return self.token

    def value(self, name: str) -> str | None:
        return self.org if name == "organization_id" else None


def connector(core: ZohoBooksSandbox, tokens: Any = None,
              recorded: list[RecordedRequest] | None = None,
              sleeps: VirtualTimer | None = None) -> ZohoBooksConnector:
    tokens = tokens or StaticTokens(core.oauth.issue()["access_token"],
                                    {"organization_id": core.organization_id})
    settings = ConnectorSettings(
        tenant="t1", currency="USD", transport=mock_transport(core),
        recorder=None if recorded is None else recorded.append, tokens=tokens,
        timer=(sleeps if sleeps is not None else VirtualTimer()),
        rate_limit_per_second=1000)
    built = build_connector("zoho_books", settings)
    assert isinstance(built, ZohoBooksConnector)
    return built


def keys_for(invoice: Any) -> IdempotencyKeys:
    return IdempotencyKeys.derive("t1", invoice.job_id, invoice.revision)


def create(conn: ZohoBooksConnector, invoice: Any) -> Any:
    keys = keys_for(invoice)
    return conn.create_invoice(invoice, conn.ensure_customer(invoice.customer, keys), keys)


def body_of(request: RecordedRequest) -> dict[str, Any]:
    form = dict(parse_qsl(request.body))
    parsed: dict[str, Any] = json.loads(form["JSONString"], parse_float=Decimal)
    return parsed


# ---------------------------------------------------------------------------------------------


def test_every_request_carries_the_org_id_and_zoho_oauth_header_and_documented_fields():
    # given
    core, recorded = ZohoBooksSandbox(), []
    conn = connector(core, recorded=recorded)
    invoice = make_invoice()
    # when
    remote = create(conn, invoice)
    conn.send_invoice(remote, keys_for(invoice))
    # then
    for request in recorded:
        url = urlsplit(request.url)
        assert url.path.startswith("/books/v3/")
        if url.path == "/books/v3/organizations":  # the organisation's edition: no org id
            continue
        assert dict(parse_qsl(url.query))["organization_id"] == core.organization_id
        assert request.headers["authorization"] == "***"  # Zoho-oauthtoken, masked
        if request.method != "POST":
            continue
        suffix = "/email" if url.path.endswith("/email") else url.path[len("/books/v3"):]
        body = body_of(request)
        for name, kind in DOCUMENTED[("POST", suffix)].items():
            assert isinstance(body[name], kind), (suffix, name)
    posted = [body_of(r) for r in recorded
              if r.method == "POST" and r.url.split("?")[0].endswith("/invoices")]
    assert len(posted) == 1
    for line in posted[0]["line_items"]:
        for name, kind in LINE_TYPES.items():
            assert isinstance(line[name], kind), name  # rate/quantity exact JSON numbers
    assert posted[0]["invoice_number"] == "NW-2026-0001"
    assert "ignore_auto_number_generation=true" in [r.url for r in recorded
                                                    if r.method == "POST"][-2]


def test_invoice_carries_our_number_reference_po_due_date_notes_and_platform_total():
    core = ZohoBooksSandbox()
    conn = connector(core)
    covered = make_line("Filter kit (under contract)", "1", "0")
    covered = type(covered)(**{**{s: getattr(covered, s) for s in covered.__slots__},
                               "coverage": "Covered by service contract SC-12"})
    invoice = make_invoice(*make_invoice().lines, covered)
    invoice = type(invoice)(**{**{s: getattr(invoice, s) for s in invoice.__slots__},
                               "notes": ("Reverse charge: VAT to be accounted for by the "
                                         "recipient.",)})
    remote = create(conn, invoice)
    stored = core.get_invoice(remote.id)
    assert remote.total == invoice.total
    assert stored["invoice_number"] == invoice.number
    assert stored["reference_number"] == "PO-77813 / WO-T-1"
    assert stored["due_date"] == invoice.due_date.isoformat()
    assert stored["notes"].startswith("Reverse charge")
    assert "Covered by service contract SC-12" in stored["line_items"][-1]["description"]
    assert stored["line_items"][-1]["rate"] == 0


def test_customer_is_found_by_email_then_created_once():
    core = ZohoBooksSandbox()
    conn = connector(core)
    invoice = make_invoice()
    first = conn.ensure_customer(invoice.customer, keys_for(invoice))
    second = conn.ensure_customer(invoice.customer, keys_for(invoice))
    assert first == second
    assert core.count("contacts") == 1
    assert "CUST-0088" in core.books.contacts[first.id]["notes"]


def test_lost_create_response_is_found_not_created_twice():
    # given: the create goes through, its response is lost
    core = ZohoBooksSandbox()
    conn = connector(core)
    invoice = make_invoice()
    core.faults.lose_response("/books/v3/invoices", method="POST")
    with pytest.raises(TransientError):
        create(conn, invoice)
    # when: the pipeline retries
    found = conn.find_by_reference(invoice)
    again = create(conn, invoice)
    # then
    assert found is not None
    assert again.id == found.id
    assert core.count("invoices") == 1


def test_find_by_reference_finds_what_create_made_and_nothing_else():
    core = ZohoBooksSandbox()
    conn = connector(core)
    invoice = make_invoice()
    remote = create(conn, invoice)
    found = conn.find_by_reference(invoice)
    assert found is not None
    assert (found.id, found.total) == (remote.id, remote.total)
    assert conn.find_by_reference(make_invoice(job_id="WO-T-2", number="NW-2026-0002")) is None


def test_a_401_refreshes_once_then_continues():
    core = ZohoBooksSandbox()
    tokens = EndpointTokens(core)
    conn = connector(core, tokens=tokens)
    core.oauth.expire_all()
    conn.check_auth()
    assert tokens.refreshes == 1


class RefusedAgain(StaticTokens):
    """Hands out another dead token on refresh: the platform refuses it too."""

    refreshes = 0

    def refreshed(self, rejected: str) -> str:
        self.refreshes += 1
        return "still-not-a-token"


def test_a_second_401_after_the_one_refresh_is_an_auth_error():
    core = ZohoBooksSandbox()
    tokens = RefusedAgain("not-a-token", {"organization_id": core.organization_id})
    conn = connector(core, tokens=tokens)
    with pytest.raises(AuthError) as caught:
        conn.check_auth()
    assert (caught.value.status, caught.value.code, tokens.refreshes) == (401, "57", 1)


def test_token_expiry_in_the_middle_of_a_batch_refreshes_and_continues():
    core = ZohoBooksSandbox()
    tokens = EndpointTokens(core)
    conn = connector(core, tokens=tokens)
    for n in range(3):
        if n:
            core.oauth.expire_all()  # the access token runs out between two invoices
        invoice = make_invoice(job_id=f"WO-B-{n}", number=f"NW-2026-01{n}")
        create(conn, invoice)
    assert core.count("invoices") == 3
    assert tokens.refreshes == 2  # each expiry cost one refresh, nothing more


def test_400_keeps_zoho_code_and_message():
    core = ZohoBooksSandbox()
    conn = connector(core)
    invoice = make_invoice()
    keys = keys_for(invoice)
    with pytest.raises(ValidationRejected) as caught:
        conn.create_invoice(invoice, type(conn.ensure_customer(invoice.customer, keys))(
            "999"), keys)
    assert caught.value.code == "1002"
    assert "Contact does not exist" in caught.value.message
    assert caught.value.platform == "zoho_books"


def test_429_with_retry_after_is_honoured():
    core, sleeps = ZohoBooksSandbox(), VirtualTimer()
    conn = connector(core, sleeps=sleeps)
    core.faults.inject("/books/v3/settings/taxes", status=429, retry_after=7, method="GET")
    conn.check_auth()
    assert sleeps == [7.0]


def test_429_past_the_limit_is_rate_limited():
    core = ZohoBooksSandbox(per_minute=1, clock=lambda: 1000.0)
    conn = connector(core)
    conn.check_auth()  # GET /settings/taxes: the 1st and 2nd call of this minute
    with pytest.raises(RateLimited) as caught:
        conn.check_auth()
    assert caught.value.code == "45"


def test_5xx_is_retried():
    core = ZohoBooksSandbox()
    conn = connector(core)
    core.faults.inject("/books/v3/settings/taxes", status=503, times=2, method="GET")
    conn.check_auth()
    assert core.faults.pending == 0


def test_no_secret_in_logs_or_recorded_requests(caplog):
    core, recorded = ZohoBooksSandbox(), []
    tokens = EndpointTokens(core)
    conn = connector(core, tokens=tokens, recorded=recorded)
    caplog.set_level(logging.DEBUG)
    invoice = make_invoice()
    core.oauth.expire_all()
    remote = create(conn, invoice)
    conn.send_invoice(remote, keys_for(invoice))
    text = caplog.text + "".join(f"{r.url}{dict(r.headers)}{r.body}" for r in recorded)
    for secret in (tokens.token, "demo-secret", tokens.refresh):
        assert secret not in text


def test_send_emails_once_and_status_reads_payments():
    core = ZohoBooksSandbox()
    conn = connector(core)
    invoice = make_invoice()
    remote = create(conn, invoice)
    sent = conn.send_invoice(remote, keys_for(invoice))
    conn.send_invoice(sent, keys_for(invoice))
    assert (sent.status, core.emails_sent(remote.id)) == ("sent", 1)
    core.record_payment(remote.id, invoice.total.minor)
    status = conn.fetch_status(remote.id)
    assert (status.status, status.amount_paid, status.balance.minor) == (
        "paid", invoice.total, 0)
    assert status.paid_at is not None


def test_void_deletes_a_draft_voids_a_sent_one_and_refuses_a_paid_one():
    core = ZohoBooksSandbox()
    conn = connector(core)
    draft = create(conn, make_invoice(job_id="WO-V1", number="V-1"))
    assert conn.void_invoice(draft.id, keys_for(make_invoice())) == "deleted"
    assert conn.void_invoice(draft.id, keys_for(make_invoice())) == "already_void"
    sent = create(conn, make_invoice(job_id="WO-V2", number="V-2"))
    conn.send_invoice(sent, keys_for(make_invoice()))
    assert conn.void_invoice(sent.id, keys_for(make_invoice())) == "voided"
    paid = create(conn, make_invoice(job_id="WO-V3", number="V-3"))
    conn.send_invoice(paid, keys_for(make_invoice()))
    core.record_payment(paid.id, 100)
    with pytest.raises(PermanentError):
        conn.void_invoice(paid.id, keys_for(make_invoice()))


def test_credit_note_is_issued_once_and_applied_to_the_balance():
    core = ZohoBooksSandbox()
    conn = connector(core)
    invoice = make_invoice()
    remote = conn.send_invoice(create(conn, invoice), keys_for(invoice))
    credit = type(invoice)(**{**{s: getattr(invoice, s) for s in invoice.__slots__},
                              "kind": DocumentKind.CREDIT_NOTE, "number": "CN-2026-0001",
                              "corrects": invoice.number})
    keys = IdempotencyKeys.derive("t1", invoice.job_id, 1, "credit_note")
    note = conn.credit_invoice(remote.id, credit, keys)
    again = conn.credit_invoice(remote.id, credit, keys)
    assert note.id == again.id
    assert note.total == invoice.total
    assert core.count("creditnotes") == 1
    assert core.get_invoice(remote.id)["balance"] == 0


def test_base_url_may_be_a_data_centre_host_or_the_full_api_root():
    assert api_base("https://www.zohoapis.eu") == "https://www.zohoapis.eu/books/v3"
    assert api_base("https://www.zohoapis.in/books/v3/") == "https://www.zohoapis.in/books/v3"
    assert api_base(None) == "https://www.zohoapis.com/books/v3"


def test_a_connector_without_tokens_is_refused_clearly():
    with pytest.raises(AuthError, match="OAuth2 connection"):
        ZohoBooksConnector(ConnectorSettings(tenant="t", currency="USD"))
