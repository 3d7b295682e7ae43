"""MYOB Business API (AccountRight / new Essentials / MYOB Business), version v2.

API docs (checked with the search tool): developer.myob.com/api/accountright/v2/sale/invoice/
invoice_service ("/{cf_uri}/Sale/Invoice/Service GET | PUT | POST | DELETE"; ``Number``
String(13), ``Date``, ``CustomerPurchaseOrderNumber``, ``Customer{UID}``, ``Terms``,
``IsTaxInclusive``, ``Lines``, ``JournalMemo``, ``Comment``; totals ``Subtotal``,
``TotalTax``, ``TotalAmount``, ``BalanceDueAmount``, ``Status``), …/invoice_item (the same
header), /api/myob-business-api/v2/sale/credit_refund ("credit notes": sales with a negative
total), /api/myob-business-api/api-overview/headers (``x-myobapi-key``, ``x-myobapi-version:
v2``, ``x-myobapi-cftoken``), /api/myob-business-api/api-overview/error-messages (the error
body and ``RateLimitError``), community.myob.com "API v2 rate limits" (MYOB staff: "By default
when a key is created the rate limit is 8 calls per second and 1,000,000 calls per day ... the
API limits are held against the key"). Field names and types were cross-checked against MYOB's
own SDK, myob-oss/AccountRight_Live_API_.Net_SDK (``Contracts/Version2/Sale/Invoice.cs``,
``InvoiceLine.cs``, ``ServiceInvoiceLine.cs``, ``Contact/Contact.cs``,
``CustomerSellingDetails.cs``, ``SDK/Error.cs``) and uptick/pymyob ``myob/exceptions.py``.

Base URL: the company file URI the OAuth connection learned (``tokens.value
("company_file_uri")``: ``https://api.myob.com/accountright/{businessId}``, or a path / bare
GUID joined to ``settings.base_url``, default ``https://api.myob.com``). Every request carries
``Authorization: Bearer`` (``settings.tokens``; access tokens last 20 minutes, a 401 refreshes
once through ``bearer_request``), ``x-myobapi-key`` (the app's API key, which is its OAuth
client id: credential ``client_id``, else ``api_key``), ``x-myobapi-version: v2``, and
``x-myobapi-cftoken`` (base64 ``user:password``) only when the tenant configures
``company_file_user``/``company_file_password`` (files that still ask for one).

Flow: customer -- ``GET /Contact/Customer?$filter=DisplayID eq '<our id>'`` (the "Card
Identifier", 15 characters), then by e-mail (``Addresses/any(a: a/Email eq '…')``; the lambda
form is inferred from MYOB's OData v3 support), else ``POST /Contact/Customer`` with
``CompanyName``, ``IsIndividual: false``, ``DisplayID``, ``Notes``, ``Addresses[0]`` and
``SellingDetails.TaxCode/FreightTaxCode`` (both required by AccountRight). The income account
(``GET /GeneralLedger/Account?$filter=Classification eq 'Income' and IsHeader eq false``) and
tax codes (``GET /GeneralLedger/TaxCode``, matched by ``Rate``) are read once and cached.
Invoice -- ``POST /Sale/Invoice/Service`` (the service layout: lines need no inventory items)
with ``Number`` (our invoice number, at most 13 characters), ``Date``, ``Customer{UID}``,
``CustomerPurchaseOrderNumber`` (PO), ``Terms {PaymentIsDue: "InAGivenNumberOfDays",
BalanceDueDate: <days to our due date>}``, ``IsTaxInclusive: false``, ``JournalMemo`` (``Job
<id> rev <n> · <number>``: our reference), ``Comment`` (the legal notes, 255 characters) and
``Lines[{Type: "Transaction", Description, Account{UID}, Total, TaxCode{UID}}]``. A service line
has no quantity field (SDK ``ServiceInvoiceLine``): quantity × unit price and a covered line's
coverage text go into its ``Description``. MYOB answers 201 with the new URI in ``Location``
and no body: we ``GET`` it and return MYOB's ``TotalAmount`` (the pipeline compares it).

Tax: tax-exclusive lines; MYOB applies each line's tax code rate to the line (AccountRight
calculates and rounds tax per line, inferred) -- ``TAX_ROUNDING["myob"] = line``. Each line's
tax code is the Australian code for its outcome (``myob.tax``: standard 10 % ``GST``,
GST-free ``FRE``, export ``EXP``, exempt ``ITS``, out of scope ``N-T``), looked up by ``Code``
in ``GET /GeneralLedger/TaxCode`` and its rate checked; an outcome without a code (reverse
charge, an intra-EU supply, any rate but 10 %) is refused before anything is created. A new
customer card gets ``GST`` as its selling tax code.

Scopes (keys made since 12 March 2025 use granular ``sme-*`` scopes; developer.myob.com/api/
myob-business-api/api-overview/granular_data_scopes and its "Scopes" pages): ``sme-company-file``
(the company file list), ``sme-contacts-customer`` (``/Contact/Customer``), ``sme-sales``
(``/Sale/Invoice/Service``) and ``sme-general-ledger`` (``/GeneralLedger/Account`` and
``/GeneralLedger/TaxCode``, which every invoice reads).

Delivery: the public API has no e-mail operation for sales (PLATFORMS.md; the SDK's
``SaleEmail`` contract has no documented endpoint), so ``delivers_itself = False``: the
pipeline e-mails our own PDF, and ``send_invoice`` does nothing on MYOB.

Exactly once: MYOB takes no idempotency key. ``create_invoice`` first asks
``GET /Sale/Invoice/Service?$filter=Number eq '<number>'`` and returns what it finds; the
pipeline calls ``find_by_reference`` (the same query) before retrying a create. The POST
itself is never replayed by the HTTP layer.

Payment status: ``TotalAmount``, ``BalanceDueAmount``, ``Status`` (``Open``/``Closed``),
``LastPaymentDate``; no webhooks, the pipeline polls.

Corrections: ``void_invoice`` is ``DELETE /Sale/Invoice/Service/{UID}`` when nothing was paid
(a sale with payments cannot be deleted: ``PermanentError``, credit it). ``credit_invoice``
posts a service sale with negated line totals (MYOB's credit note: a sale with a negative
total, which ``/Sale/CreditRefund`` and ``/Sale/CreditSettlement`` then refer to), numbered
with our credit note number and found by that number first; settling it against the invoice
is left to the bookkeeper.

Rate limits: 8 requests a second and 1,000,000 a day *per API key*. The token bucket is keyed
by the API key (all tenants of the app share it; stricter than per tenant), 8/s with a burst
of 8; at most 4 requests in flight per tenant. The daily cap is not metered here. Over a limit
MYOB answers ``403`` with ``Name: RateLimitError`` (documented for the daily limit) or ``429``:
both become ``RateLimited``.

Errors: ``{"Errors": [{"Name", "Message", "AdditionalDetails", "ErrorCode", "Severity",
"LearnMore"}], "Information": …}``, read in ``_map_error`` only.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx

from autoinvoice.connectors.base import (
    ConnectorSettings,
    IdempotencyKeys,
    RemoteCreditNote,
    RemoteCustomer,
    RemoteInvoice,
    RemoteStatus,
    TokenSource,
    paid_on,
)
from autoinvoice.connectors.errors import (
    AuthError,
    ConnectorError,
    NotFound,
    PermanentError,
    RateLimited,
    class_for_status,
)
from autoinvoice.connectors.http import (
    HttpClient,
    bearer_request,
    exact_json,
    limiter_for,
    retry_after_seconds,
    slots_for,
)
from autoinvoice.connectors.myob import tax
from autoinvoice.domain.invoice import Invoice, InvoiceLine
from autoinvoice.domain.job import Customer
from autoinvoice.domain.money import Money

PLATFORM = "myob"
DEFAULT_BASE_URL = "https://api.myob.com"
API_VERSION = "v2"
RATE_PER_SECOND = 8
CONCURRENT = 4
NUMBER_MAX = 13  # Sale invoice Number: String (13)
DISPLAY_ID_MAX = 15  # Card Identifier
TEXT_MAX = 255  # JournalMemo, Comment
SERVICE = "/Sale/Invoice/Service"
Obj = dict[str, Any]
__all__ = ["DEFAULT_BASE_URL", "MyobConnector", "_map_error", "dumps"]


class MyobConnector:
    platform = PLATFORM
    delivers_itself = False

    def __init__(self, settings: ConnectorSettings) -> None:
        if settings.tokens is None:
            raise AuthError("MYOB needs an OAuth2 connection (autoinvoice connect myob)",
                            platform=PLATFORM)
        self._tokens: TokenSource = settings.tokens
        self._currency = settings.currency
        api_key = _credential(settings, "client_id") or _credential(settings, "api_key")
        if not api_key:
            raise AuthError("MYOB needs the app's API key (credential client_id)",
                            platform=PLATFORM)
        headers = {"Accept": "application/json", "x-myobapi-key": api_key,
                   "x-myobapi-version": API_VERSION}
        secrets = [api_key]
        cf_user = _credential(settings, "company_file_user")
        if cf_user:
            pair = f"{cf_user}:{_credential(settings, 'company_file_password') or ''}"
            headers["x-myobapi-cftoken"] = base64.b64encode(pair.encode()).decode()
            secrets.append(headers["x-myobapi-cftoken"])
        rate = settings.rate_limit_per_second or RATE_PER_SECOND
        key_id = hashlib.sha256(api_key.encode()).hexdigest()[:16]
        self._http = HttpClient(
            exact_decimals=True,
            platform=PLATFORM,
            base_url=company_file_root(settings.base_url, self._tokens),
            default_headers=headers, secrets=secrets, error_mapper=_map_error,
            transport=settings.transport, recorder=settings.recorder,
            limiter=limiter_for(f"{PLATFORM}:key:{key_id}", rate, max(1, int(rate)),
                                timer=settings.timer),
            slots=slots_for(f"{settings.tenant}:{PLATFORM}", CONCURRENT),
            timer=settings.timer,
        )
        self._income_account: str | None = None
        self._tax_codes: list[Obj] | None = None

    def close(self) -> None:
        self._http.close()

    # -- the Connector protocol ---------------------------------------------------------------

    def check_auth(self) -> None:
        self._get("/Contact/Customer", {"$top": 1})

    def ensure_customer(self, customer: Customer, keys: IdempotencyKeys) -> RemoteCustomer:
        found = self._find_customer(customer)
        if found is not None:
            return RemoteCustomer(found)
        uid = self._create("/Contact/Customer",
                           customer_body(customer, self._customer_tax_code_uid()))
        return RemoteCustomer(uid)

    def create_invoice(self, invoice: Invoice, customer: RemoteCustomer,
                       keys: IdempotencyKeys) -> RemoteInvoice:
        found = self.find_by_reference(invoice)  # no idempotency key on MYOB: look first
        if found is not None:
            return found
        body = invoice_body(invoice, customer.id, self._lines(invoice))
        uid = self._create(SERVICE, body)
        return remote_invoice(self._get(f"{SERVICE}/{uid}"), invoice.currency)

    def send_invoice(self, remote: RemoteInvoice, keys: IdempotencyKeys) -> RemoteInvoice:
        return remote  # no send operation on MYOB: the pipeline e-mails our own PDF

    def fetch_status(self, remote_id: str) -> RemoteStatus:
        return remote_status(self._get(f"{SERVICE}/{remote_id}"), self._currency)

    def find_by_reference(self, invoice: Invoice) -> RemoteInvoice | None:
        found = self._by_number(number_of(invoice), job_marker(invoice))
        return remote_invoice(found, invoice.currency) if found else None

    def void_invoice(self, remote_id: str, keys: IdempotencyKeys) -> str:
        try:
            current = self._get(f"{SERVICE}/{remote_id}")
        except NotFound:  # deleted already (a retried DELETE whose answer was lost)
            return "already_void"
        if _dec(current, "BalanceDueAmount") != _dec(current, "TotalAmount"):
            raise PermanentError(f"invoice {remote_id} has payments on MYOB and cannot be "
                                 "deleted; credit it instead", platform=PLATFORM,
                                 code="invoice_paid")
        try:
            self._request("DELETE", f"{SERVICE}/{remote_id}")
        except NotFound:
            return "already_void"
        return "deleted"

    def credit_invoice(self, remote_id: str, credit: Invoice, keys: IdempotencyKeys
                       ) -> RemoteCreditNote:
        original = self._get(f"{SERVICE}/{remote_id}")
        found = self._by_number(number_of(credit), job_marker(credit))
        if found is None:
            customer = str((original.get("Customer") or {}).get("UID", ""))
            body = invoice_body(credit, customer, self._lines(credit, sign=-1),
                                credits=str(original.get("Number") or remote_id))
            found = self._get(f"{SERVICE}/{self._create(SERVICE, body)}")
        total = -_dec(found, "TotalAmount")  # MYOB's credit note is a negative sale
        return RemoteCreditNote(id=str(found["UID"]), total=Money(total, credit.currency),
                                number=str(found.get("Number") or "") or None)

    # -- look-ups -----------------------------------------------------------------------------

    def _find_customer(self, customer: Customer) -> str | None:
        display_id = customer.id[:DISPLAY_ID_MAX]
        found = self._items("/Contact/Customer", f"DisplayID eq {_quoted(display_id)}")
        if not found and customer.email:
            by_mail = self._items("/Contact/Customer", "Addresses/any(a: a/Email eq "
                                  f"{_quoted(customer.email)})")
            found = [c for c in by_mail if c.get("DisplayID") in (None, "", "*None",
                                                                 display_id)]
        return str(found[0]["UID"]) if found else None

    def _by_number(self, number: str, marker: str) -> Obj | None:
        found = self._items(SERVICE, f"Number eq {_quoted(number)}")
        ours = [i for i in found if str(i.get("JournalMemo") or "").startswith(marker)]
        chosen = (ours or found)[:1]
        return chosen[0] if chosen else None

    def _lines(self, invoice: Invoice, sign: int = 1) -> list[Obj]:
        account = self._income_account_uid()
        codes = self._tax_codes_by_code()
        return [line_body(line, account, tax.code_for(line, codes), sign)
                for line in invoice.lines]

    def _income_account_uid(self) -> str:
        if self._income_account is None:
            found = self._items("/GeneralLedger/Account",
                                "Classification eq 'Income' and IsHeader eq false")
            if not found:
                raise PermanentError("the MYOB company file has no income account",
                                     platform=PLATFORM, code="no_income_account")
            self._income_account = str(found[0]["UID"])
        return self._income_account

    def _tax_codes_by_code(self) -> dict[str, Obj]:
        if self._tax_codes is None:
            self._tax_codes = self._items("/GeneralLedger/TaxCode", None)
        return {str(c.get("Code")): c for c in self._tax_codes}

    def _customer_tax_code_uid(self) -> str:
        codes = self._tax_codes_by_code()
        chosen = codes.get(tax.CUSTOMER_DEFAULT) or next(iter(codes.values()), None)
        if chosen is None:
            raise PermanentError("the MYOB company file has no tax codes", platform=PLATFORM,
                                 code="no_tax_code")
        return str(chosen["UID"])

    # -- plumbing -----------------------------------------------------------------------------

    def _items(self, path: str, odata_filter: str | None) -> list[Obj]:
        params = {"$filter": odata_filter} if odata_filter else None
        page = self._get(path, params)
        items = page.get("Items")
        if not isinstance(items, list):
            raise PermanentError(f"MYOB answered GET {path} without 'Items'", platform=PLATFORM)
        return [i for i in items if isinstance(i, dict)]

    def _create(self, path: str, body: Obj) -> str:
        """POST ``body``; MYOB answers 201 with the new resource's URI in ``Location``."""
        response = bearer_request(self._http, self._tokens, "POST", path, json=body)
        location = str(response.headers.get("Location", ""))
        uid = location.rstrip("/").rsplit("/", 1)[-1]
        if not uid:
            raise PermanentError(f"MYOB answered POST {path} without a Location",
                                 platform=PLATFORM, status=response.status_code)
        return uid

    def _request(self, method: str, path: str, **kwargs: Any) -> Obj:
        response = bearer_request(self._http, self._tokens, method, path, **kwargs)
        if not response.content:
            return {}
        body = loads(response)
        if not isinstance(body, dict):
            raise PermanentError(f"MYOB answered {method} {path} with a non-object body",
                                 platform=PLATFORM, status=response.status_code)
        return body

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Obj:
        return self._request("GET", path, params=params)


def _credential(settings: ConnectorSettings, name: str) -> str | None:
    secret = settings.credentials.get(name)
    return secret.reveal() if secret is not None else None


def company_file_root(base_url: str | None, tokens: TokenSource) -> str:
    """The company file URI every path hangs off: absolute as MYOB listed it, or a path /
    bare GUID joined to ``base_url``."""
    uri = tokens.value("company_file_uri")
    if not uri:
        raise AuthError("the MYOB connection names no company file (connect again)",
                        platform=PLATFORM)
    if uri.startswith(("http://", "https://")):
        return uri.rstrip("/")
    root = (base_url or DEFAULT_BASE_URL).rstrip("/")
    path = uri if uri.startswith("/") else f"/accountright/{uri}"
    return root + path.rstrip("/")


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"  # OData string literal


# ---------------------------------------------------------------------------------------------
# our objects -> MYOB bodies, MYOB's answers -> ours


def number_of(invoice: Invoice) -> str:
    number = invoice.number or invoice.job_id
    if len(number) > NUMBER_MAX:
        raise PermanentError(f"invoice number {number!r} is longer than MYOB's 13 characters; "
                             "shorten the tenant's invoice_series", platform=PLATFORM,
                             code="number_too_long")
    return number


def job_marker(invoice: Invoice) -> str:
    return f"Job {invoice.job_id} rev {invoice.revision}"


def customer_body(customer: Customer, tax_code_uid: str) -> Obj:
    address = customer.billing_address
    return {
        "CompanyName": customer.name[:50],
        "IsIndividual": False,
        "DisplayID": customer.id[:DISPLAY_ID_MAX],
        "IsActive": True,
        "Notes": f"autoinvoice customer {customer.id}",
        "Addresses": [{"Location": 1, "Street": "\n".join(filter(None, (address.line1,
                                                                         address.line2))),
                       "City": address.city, "State": address.region or "",
                       "PostCode": address.postal_code or "", "Country": address.country,
                       "Email": customer.email}],
        "SellingDetails": {"TaxCode": {"UID": tax_code_uid},
                           "FreightTaxCode": {"UID": tax_code_uid},
                           **({"TaxIdNumber": customer.vat_id} if customer.vat_id else {})},
    }


def line_description(line: InvoiceLine) -> str:
    said = f"{line.description} ({_plain(line.quantity)} {line.unit} × {_plain(line.unit_price)})"
    return f"{said} -- {line.coverage}" if line.coverage else said


def line_body(line: InvoiceLine, account_uid: str, tax_code_uid: str, sign: int = 1) -> Obj:
    return {"Type": "Transaction", "Description": line_description(line),
            "Account": {"UID": account_uid}, "Total": line.amount.amount * sign,
            "TaxCode": {"UID": tax_code_uid}}


def invoice_body(invoice: Invoice, customer_uid: str, lines: list[Obj],
                 credits: str | None = None) -> Obj:
    memo = f"{job_marker(invoice)} · {number_of(invoice)}"
    if credits:
        memo += f" · credits {invoice.corrects or ''} (MYOB {credits})"
    body: Obj = {
        "Number": number_of(invoice),
        "Date": f"{invoice.issue_date.isoformat()}T00:00:00",
        "Customer": {"UID": customer_uid},
        "Terms": {"PaymentIsDue": "InAGivenNumberOfDays",
                  "BalanceDueDate": max(0, (invoice.due_date - invoice.issue_date).days)},
        "IsTaxInclusive": False,
        "Lines": lines,
        "JournalMemo": memo[:TEXT_MAX],
        "InvoiceDeliveryStatus": "Nothing",  # we deliver our own PDF
    }
    if invoice.po_number:
        body["CustomerPurchaseOrderNumber"] = invoice.po_number[:20]
    notes = [*invoice.notes, *(r for _, r in invoice.exemption_reasons if r not in invoice.notes)]
    if notes:
        body["Comment"] = "\n".join(notes)[:TEXT_MAX]
    return body


def remote_invoice(obj: Obj, currency: str) -> RemoteInvoice:
    return RemoteInvoice(id=str(_field(obj, "UID")),
                         total=Money(_dec(obj, "TotalAmount"), currency),
                         status=str(obj.get("Status") or "Open").lower(),
                         number=str(obj.get("Number") or "") or None)


def remote_status(obj: Obj, currency: str) -> RemoteStatus:
    total, balance = _dec(obj, "TotalAmount"), _dec(obj, "BalanceDueAmount")
    return RemoteStatus(status=str(obj.get("Status") or "Open").lower(),
                        total=Money(total, currency), amount_paid=Money(total - balance, currency),
                        balance=Money(balance, currency),
                        paid_at=paid_on(obj.get("LastPaymentDate"), platform=PLATFORM,
                                        field="LastPaymentDate"))



def _field(obj: Obj, name: str) -> Any:
    if obj.get(name) is None:
        raise PermanentError(f"MYOB response has no {name!r}", platform=PLATFORM)
    return obj[name]


def _dec(obj: Obj, name: str) -> Decimal:
    value = _field(obj, name)
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise PermanentError(f"MYOB response has a non-numeric {name!r}", platform=PLATFORM)
    return Decimal(value)


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


dumps = exact_json  # JSON with exact decimal numbers (the shared encoder)


def loads(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content, parse_float=Decimal)
    except ValueError:
        raise PermanentError("MYOB answered with a body that is not JSON", platform=PLATFORM,
                             status=response.status_code) from None


# ---------------------------------------------------------------------------------------------
# MYOB errors -> ours


def _map_error(response: httpx.Response) -> ConnectorError:
    """The one place MYOB's ``{"Errors": [{Name, Message, AdditionalDetails, ErrorCode,
    Severity}]}`` is read: every message kept, the first ErrorCode (else Name) as code."""
    errors = _error_entries(response)
    status = response.status_code
    said = "; ".join(filter(None, map(_said, errors))) or response.reason_phrase \
        or f"HTTP {status}"
    first = errors[0] if errors else {}
    code = first.get("ErrorCode") or first.get("Name")
    common: dict[str, Any] = {"platform": PLATFORM, "status": status,
                              "code": str(code) if code is not None else None,
                              "request_id": response.headers.get("X-Request-Id")}
    names = {str(e.get("Name")) for e in errors}
    if status == 429 or "RateLimitError" in names:
        daily = "daily" in said.lower()
        retry = retry_after_seconds(response) or (3600.0 if daily else None)
        return RateLimited(said, retry_after=retry, **common)
    return class_for_status(status)(said, **common)


def _said(error: Obj) -> str:
    name, message = str(error.get("Name") or ""), str(error.get("Message") or "").strip()
    details = str(error.get("AdditionalDetails") or "").strip()
    text = f"{name}: {message}" if name and message else name or message
    return f"{text} ({details})" if details else text


def _error_entries(response: httpx.Response) -> list[Obj]:
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("Errors") if isinstance(body, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
