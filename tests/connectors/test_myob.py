"""MyobConnector against the local MYOB stand-in (``sandbox.myob``).

No vendor spec file exists for MYOB; the request shapes are checked against what MYOB's pages
say (developer.myob.com/api/accountright/v2/sale/invoice/invoice_service: ``Number`` String
(13), ``Date``, ``Customer{UID}``, ``Lines[{Type, Description, Account{UID}, Total,
TaxCode{UID}}]``, ``JournalMemo``; …/api-overview/headers: ``x-myobapi-key``,
``x-myobapi-version``; MYOB's SDK ``Contracts/Version2/Contact/Contact.cs`` and
``CustomerSellingDetails.cs`` for the customer card): see ``DOCUMENTED`` below.
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
from autoinvoice.connectors.myob import MyobConnector
from autoinvoice.connectors.registry import build_connector
from autoinvoice.domain.invoice import DocumentKind, Invoice, InvoiceLine, LineKind
from autoinvoice.sandbox.myob import CLIENT_ID, TOKEN_PATH, MyobSandbox, mock_transport
from tests.connectors import test_stripe
from tests.helpers import VirtualTimer

SECRET = "cf-password-xyz"


def make_line(description: str, quantity: str, unit_price: str, tax_rate: str = "0",
              kind: LineKind = LineKind.PART) -> InvoiceLine:
    """A line of an Australian invoice (AUD; GST 10 % or GST-free)."""
    return test_stripe.make_line(description, quantity, unit_price, tax_rate, kind, "AUD")


AU_LINES = (
    make_line("Onsite labour, senior technician", "3.75", "145.00", "0.1", LineKind.LABOR),
    make_line("Thermostatic valve kit", "1", "212.40", "0.1"),
    make_line("Roto-Inject Fluid, 8000 h", "5", "31.17", "0.1"),
    make_line("Cooler fan motor 1.1 kW", "1", "689.99", "0.1"),
)


def make_invoice(*lines: InvoiceLine, **kwargs: Any) -> Invoice:
    """An invoice of an Australian service company (the stand-in's file is Australian)."""
    return test_stripe.make_invoice(*(lines or AU_LINES), currency="AUD", **kwargs)


def cf_values(core: MyobSandbox) -> dict[str, str]:
    """What ``connect`` learns from the consent redirect's ``businessId``."""
    return {"company_file_uri": core.file.uri}
# Documented required fields and JSON types per (method, path suffix) -- MYOB Business API v2.
DOCUMENTED: dict[tuple[str, str], dict[str, type | tuple[type, ...]]] = {
    # Contact/Customer: CompanyName (company card), IsIndividual, SellingDetails.TaxCode and
    # FreightTaxCode (required), DisplayID "Card Identifier"
    ("POST", "/Contact/Customer"): {"CompanyName": str, "IsIndividual": bool,
                                    "DisplayID": str, "SellingDetails": dict},
    # Sale/Invoice/Service: Date and Customer{UID} and Lines required; Number String (13)
    ("POST", "/Sale/Invoice/Service"): {"Date": str, "Customer": dict, "Lines": list,
                                        "Number": str, "IsTaxInclusive": bool,
                                        "JournalMemo": str, "Terms": dict},
}
LINE_TYPES = {"Type": str, "Description": str, "Account": dict, "Total": (int, float),
              "TaxCode": dict}


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    clear_limiters()
    yield
    clear_limiters()


class EndpointTokens:
    """A small TokenSource that refreshes at the stand-in's token endpoint (as the shared
    OAuth layer does), counting its refreshes."""

    def __init__(self, core: MyobSandbox) -> None:
        self.client = httpx.Client(transport=mock_transport(core),
                                   base_url="https://secure.myob.com")
        issued = core.oauth.issue()
        self.token, self.refresh = issued["access_token"], issued["refresh_token"]
        self.uri = core.file.uri
        self.refreshes = 0

    def access_token(self) -> str:
        return self.token

    def refreshed(self, rejected: str) -> str:
        answer = self.client.post(TOKEN_PATH, data={
            "grant_type": "refresh_token", "refresh_token": self.refresh,
            "client_id": CLIENT_ID, "client_secret": "myob-demo-secret"})
        if answer.status_code != 200:
            raise AuthError("refresh refused", platform="myob", status=401)
        body = answer.json()
        self.token, self.refresh = body["access_token"], body["refresh_token"]
        self.refreshes += 1
        return self.token

    def value(self, name: str) -> str | None:
        return self.uri if name == "company_file_uri" else None


class Secret:
    def __init__(self, value: str) -> None:
        self.value = value

    def reveal(self) -> str:
        return self.value


def connector(core: MyobSandbox, tokens: Any = None,
              recorded: list[RecordedRequest] | None = None,
              sleeps: VirtualTimer | None = None, cf_token: bool = False) -> MyobConnector:
    tokens = tokens or StaticTokens(core.oauth.issue()["access_token"], cf_values(core))
    creds = {"client_id": Secret(CLIENT_ID)}
    if cf_token:
        creds |= {"company_file_user": Secret("Administrator"),
                  "company_file_password": Secret(SECRET)}
    settings = ConnectorSettings(
        tenant="t1", currency="AUD", transport=mock_transport(core), credentials=creds,
        recorder=None if recorded is None else recorded.append, tokens=tokens,
        timer=(sleeps if sleeps is not None else VirtualTimer()),
        rate_limit_per_second=1000)
    built = build_connector("myob", settings)
    assert isinstance(built, MyobConnector)
    return built


def keys_for(invoice: Any) -> IdempotencyKeys:
    return IdempotencyKeys.derive("t1", invoice.job_id, invoice.revision)


def create(conn: MyobConnector, invoice: Any) -> Any:
    keys = keys_for(invoice)
    return conn.create_invoice(invoice, conn.ensure_customer(invoice.customer, keys), keys)


def test_every_request_carries_myob_headers_and_documented_fields():
    core = MyobSandbox()
    recorded: list[RecordedRequest] = []
    create(connector(core, recorded=recorded), make_invoice())
    assert recorded
    for request in recorded:
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert headers["x-myobapi-version"] == "v2"
        assert headers["x-myobapi-key"] == "***"  # the API key, masked in the record
        assert headers["authorization"] == "***"
        assert urlsplit(request.url).path.startswith(f"/accountright/{core.company_file_id}/")
        if request.method != "POST":
            continue
        suffix = next(s for (m, s) in DOCUMENTED if request.url.split("?")[0].endswith(s))
        body = json.loads(request.body)
        for name, kind in DOCUMENTED[("POST", suffix)].items():
            assert isinstance(body[name], kind), (suffix, name)
        for line in body.get("Lines", []):
            for name, kind in LINE_TYPES.items():
                assert isinstance(line[name], kind), name
            assert set(line["Account"]) == {"UID"}
            assert set(line["TaxCode"]) == {"UID"}


def test_invoice_carries_number_reference_po_terms_notes_and_myobs_total():
    core = MyobSandbox()
    covered = make_line("Warranty compressor element", "1", "0", "0.1")
    from dataclasses import replace
    covered = replace(covered, coverage="Covered by warranty W-88")
    invoice = replace(make_invoice(*make_invoice().lines, covered),
                      notes=("Tax exempt resale certificate on file",))
    remote = create(connector(core), invoice)
    stored = core.get_invoice(remote.id)
    assert stored["Number"] == "NW-2026-0001"
    assert stored["CustomerPurchaseOrderNumber"] == "PO-77813"
    assert stored["JournalMemo"].startswith("Job WO-T-1 rev 1 · NW-2026-0001")
    assert stored["Comment"] == "Tax exempt resale certificate on file"
    assert stored["Terms"]["BalanceDueDate"] == 30
    assert stored["Terms"]["DueDate"].startswith("2026-12-21")
    assert stored["IsTaxInclusive"] is False
    assert len(stored["Lines"]) == len(invoice.lines)
    last = stored["Lines"][-1]
    assert last["Total"] == 0
    assert "Covered by warranty W-88" in last["Description"]
    assert "3.75 ea × 145" in stored["Lines"][0]["Description"]
    # MYOB's own total, per-line tax rounding, equals ours
    assert remote.total.amount == stored["TotalAmount"] == invoice.total.amount


def test_customer_is_found_by_our_id_then_by_email_else_created_once():
    core = MyobSandbox()
    conn = connector(core)
    invoice = make_invoice()
    first = conn.ensure_customer(invoice.customer, keys_for(invoice))
    again = conn.ensure_customer(invoice.customer, keys_for(invoice))
    assert first == again
    assert len(core.customers()) == 1
    assert core.customers()[0]["DisplayID"] == "CUST-0088"
    from dataclasses import replace
    other_id = replace(invoice.customer, id="CUST-NEW")
    core.file.customers[first.id]["DisplayID"] = "*None"  # a card made by hand, no id
    assert conn.ensure_customer(other_id, keys_for(invoice)) == first  # by e-mail


def test_lost_create_response_is_found_not_created_twice():
    core = MyobSandbox()
    conn = connector(core)
    invoice = make_invoice()
    core.faults.lose_response(f"/accountright/{core.company_file_id}/Sale/Invoice/Service")
    with pytest.raises(TransientError):
        create(conn, invoice)
    assert len(core.invoices()) == 1  # MYOB has it, we did not hear
    # the pipeline asks find_by_reference first; create itself also looks before posting
    found = conn.find_by_reference(invoice)
    again = create(conn, invoice)
    assert found is not None
    assert again.id == found.id
    assert len(core.invoices()) == 1


def test_find_by_reference_finds_what_create_made_and_nothing_else():
    core = MyobSandbox()
    conn = connector(core)
    made = create(conn, make_invoice())
    found = conn.find_by_reference(make_invoice())
    assert found == made
    assert conn.find_by_reference(make_invoice(number="NW-2026-0002", job_id="WO-X")) is None
    gets = [p for m, p in core.requests if m == "GET" and p.endswith("/Sale/Invoice/Service")]
    assert gets  # $filter=Number eq '…'


def test_a_401_refreshes_once_then_continues():
    core = MyobSandbox()
    tokens = EndpointTokens(core)
    conn = connector(core, tokens=tokens)
    core.oauth.expire_all()
    create(conn, make_invoice())
    assert tokens.refreshes == 1


def test_a_second_401_after_the_one_refresh_is_an_auth_error():
    core = MyobSandbox()
    conn = connector(core, tokens=StaticTokens("not-a-token", cf_values(core)))
    with pytest.raises(AuthError) as caught:
        conn.check_auth()
    assert "refresh" in str(caught.value) or caught.value.status == 401


def test_401_is_mapped_with_myobs_message():
    core = MyobSandbox()
    tokens = EndpointTokens(core)
    conn = connector(core, tokens=tokens)
    tokens.refreshed = lambda rejected: rejected  # type: ignore[method-assign]
    tokens.token = "dead-token"
    with pytest.raises(AuthError) as caught:
        conn.check_auth()
    assert caught.value.status == 401
    assert caught.value.code == "OAuthTokenIsInvalid"
    assert "not valid" in caught.value.message
    assert caught.value.request_id


def test_token_expiry_in_the_middle_of_a_batch_refreshes_and_continues():
    core = MyobSandbox()
    tokens = EndpointTokens(core)
    conn = connector(core, tokens=tokens)
    for n in range(1, 5):
        if n == 3:
            core.oauth.expire_all()
        create(conn, make_invoice(number=f"NW-2026-000{n}", job_id=f"WO-{n}"))
    assert len(core.invoices()) == 4
    assert tokens.refreshes == 1


def test_400_keeps_myobs_name_message_and_details():
    core = MyobSandbox()
    conn = connector(core)
    with pytest.raises(PermanentError, match="13 characters"):  # our check, before MYOB
        create(conn, make_invoice(number="NW-2026-000009"))
    bad = make_invoice()
    customer = conn.ensure_customer(bad.customer, keys_for(bad))
    core.file.accounts[conn._income_account_uid()]["IsHeader"] = True  # noqa: SLF001
    with pytest.raises(ValidationRejected) as rejected:
        conn.create_invoice(bad, customer, keys_for(bad))
    error = rejected.value
    assert error.status == 400
    assert error.code == "4000"
    assert error.request_id
    assert "header account" in error.message
    assert "Lines[1].Account" in error.message


def test_429_with_retry_after_is_honoured():
    core = MyobSandbox()
    sleeps = VirtualTimer()
    core.faults.inject("/accountright/", 429, retry_after=2, method="GET")
    connector(core, sleeps=sleeps).check_auth()
    assert 2.0 in sleeps


def test_rate_limit_error_past_retries_is_rate_limited():
    core = MyobSandbox(rate_limit_per_day=1)
    conn = connector(core)
    conn.check_auth()
    with pytest.raises(RateLimited) as caught:
        conn.check_auth()
    assert caught.value.status == 403
    assert caught.value.code == "RateLimitError"
    assert caught.value.retry_after


def test_per_second_limit_answers_429_with_retry_after():
    sleeps = VirtualTimer(1000.0)
    core = MyobSandbox(rate_limit_per_second=1, clock=sleeps.monotonic)

    tokens = StaticTokens(core.oauth.issue()["access_token"], cf_values(core))
    conn = MyobConnector(ConnectorSettings(
        tenant="t1", currency="USD", transport=mock_transport(core), tokens=tokens,
        credentials={"client_id": Secret(CLIENT_ID)}, timer=sleeps, rate_limit_per_second=1000))
    conn.check_auth()
    conn.check_auth()  # second call in the same second: 429 Retry-After 1, slept, retried
    assert sleeps == [1.0]


def test_the_connector_keeps_under_8_requests_a_second_per_api_key():
    core = MyobSandbox()
    sleeps = VirtualTimer()
    tokens = StaticTokens(core.oauth.issue()["access_token"], cf_values(core))
    settings = ConnectorSettings(tenant="t1", currency="USD", transport=mock_transport(core),
                                 credentials={"client_id": Secret(CLIENT_ID)}, tokens=tokens,
                                 timer=sleeps)
    conn = build_connector("myob", settings)
    for _ in range(10):
        conn.check_auth()
    assert sleeps
    assert all(s <= 1 for s in sleeps)


def test_5xx_is_retried():
    core = MyobSandbox()
    core.faults.inject("/accountright/", 503, method="GET", times=2)
    connector(core).check_auth()
    assert core.faults.pending == 0


def test_no_secret_in_logs_or_recorded_requests(caplog):
    core = MyobSandbox()
    recorded: list[RecordedRequest] = []
    issued = core.oauth.issue()
    tokens = StaticTokens(issued["access_token"], cf_values(core))
    caplog.set_level(logging.DEBUG)
    conn = connector(core, tokens=tokens, recorded=recorded, cf_token=True)
    core.faults.inject("/accountright/", 500, method="GET")
    create(conn, make_invoice())
    text = caplog.text + "".join(str(r) for r in recorded)
    for secret in (issued["access_token"], CLIENT_ID, SECRET):
        assert secret not in text
    assert "myob" in caplog.text


def test_send_does_nothing_on_myob_and_status_reads_payments():
    core = MyobSandbox()
    conn = connector(core)
    remote = create(conn, make_invoice())
    before = len(core.requests)
    assert conn.send_invoice(remote, keys_for(make_invoice())) == remote
    assert len(core.requests) == before
    assert conn.delivers_itself is False
    total_minor = int(remote.total.amount * 100)
    core.record_payment(remote.id, total_minor // 2)
    part = conn.fetch_status(remote.id)
    assert part.amount_paid.amount + part.balance.amount == remote.total.amount
    assert part.status == "open"
    assert part.paid_at is not None
    core.record_payment(remote.id, total_minor - total_minor // 2)
    paid = conn.fetch_status(remote.id)
    assert (paid.status, paid.balance.amount) == ("closed", Decimal("0.00"))


def test_void_deletes_an_unpaid_sale_and_refuses_a_paid_one():
    core = MyobSandbox()
    conn = connector(core)
    remote = create(conn, make_invoice())
    assert conn.void_invoice(remote.id, keys_for(make_invoice())) == "deleted"
    assert conn.void_invoice(remote.id, keys_for(make_invoice())) == "already_void"
    paid = create(conn, make_invoice(number="NW-2026-0002", job_id="WO-2"))
    core.record_payment(paid.id, 100)
    with pytest.raises(PermanentError, match="credit it instead"):
        conn.void_invoice(paid.id, keys_for(make_invoice()))


def test_credit_note_is_a_negative_sale_issued_once():
    core = MyobSandbox()
    conn = connector(core)
    original = make_invoice()
    remote = create(conn, original)
    from dataclasses import replace
    credit = replace(original, kind=DocumentKind.CREDIT_NOTE, number="CN-2026-0001",
                     corrects=original.number)
    note = conn.credit_invoice(remote.id, credit, keys_for(credit))
    again = conn.credit_invoice(remote.id, credit, keys_for(credit))
    assert note == again
    assert note.total.amount == remote.total.amount
    sale = core.get_invoice(note.id)
    assert sale["TotalAmount"] == -remote.total.amount
    assert sale["Number"] == "CN-2026-0001"
    assert "credits NW-2026-0001" in sale["JournalMemo"]


def test_find_by_number_is_an_odata_filter_on_number():
    core = MyobSandbox()
    recorded: list[RecordedRequest] = []
    connector(core, recorded=recorded).find_by_reference(make_invoice())
    query = dict(parse_qsl(urlsplit(recorded[-1].url).query))
    assert query["$filter"] == "Number eq 'NW-2026-0001'"


def test_a_connector_without_tokens_or_company_file_is_refused_clearly():
    with pytest.raises(AuthError, match="OAuth2"):
        MyobConnector(ConnectorSettings(tenant="t1", currency="USD"))
    with pytest.raises(AuthError, match="company file"):
        MyobConnector(ConnectorSettings(tenant="t1", currency="USD",
                                        credentials={"client_id": Secret(CLIENT_ID)},
                                        tokens=StaticTokens("x")))


def test_wrong_api_key_is_an_auth_error_with_myobs_name():
    core = MyobSandbox()
    tokens = StaticTokens(core.oauth.issue()["access_token"], cf_values(core))
    conn = MyobConnector(ConnectorSettings(tenant="t1", currency="USD",
                                           transport=mock_transport(core), tokens=tokens,
                                           credentials={"client_id": Secret("other-key")},
                                           timer=VirtualTimer()))
    with pytest.raises(AuthError) as caught:
        conn.check_auth()
    assert caught.value.code == "InvalidApiKey"
    assert caught.value.status == 403


def test_company_file_uri_may_be_absolute_a_path_or_a_guid():
    from autoinvoice.connectors.myob import company_file_root
    guid = "4d5e6f70-8192-4a3b-9c4d-5e6f708192a3"
    assert company_file_root(None, StaticTokens("x", {"company_file_uri": guid})) == \
        f"https://api.myob.com/accountright/{guid}"
    assert company_file_root("http://127.0.0.1:9", StaticTokens(
        "x", {"company_file_uri": f"/accountright/{guid}"})) == \
        f"http://127.0.0.1:9/accountright/{guid}"
    absolute = f"https://arl2.api.myob.com/accountright/{guid}"
    assert company_file_root("http://x", StaticTokens(
        "x", {"company_file_uri": absolute})) == absolute
    assert httpx.URL(absolute).host == "arl2.api.myob.com"
