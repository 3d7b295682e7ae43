"""Sage Business Cloud Accounting, API v3.1.

API docs (checked with the search tool): developer.sage.com/accounting/guides/authenticating/
authentication (OAuth2 code grant only; ``Authorization: Bearer``; ``X-Business`` selects the
business, the lead business without it), /guides/concepts/idempotency, /guides/concepts/
response_codes, /guides/concepts/frequently_raised_errors (error bodies), /guides/concepts/
best_practices (list envelope ``$total/$page/$next/$back/$items_per_page/$items``); the
operations and bodies are Sage's own Swagger 2.0 ``swagger.full.json``
(``shared/vendor-specs/sage/swagger.full.v3.1.json``), which the tests validate every request
body against. Base URL ``https://api.accounting.sage.com`` + ``/v3.1`` (``settings.base_url``
points it at ``autoinvoice.sandbox.sage``; a URL already ending in ``/v3.1`` is kept).

Auth: an OAuth2 access token from ``settings.tokens`` (Sage's last 5 minutes; the refresh
token rotates on every use -- ``connectors.oauth`` keeps them); a 401 refreshes once
(``bearer_request``). The consent asks for scope ``full_access`` (guides/authenticating/
authentication: "scopes ... Can be readonly or full_access"; a readonly token cannot create).
The business is the one ``connect`` found with ``GET /businesses`` ("a GET request to the
businesses endpoint will return all businesses accessible to the authenticated user",
guides/concepts/multi_business; its answer is the ``$items`` envelope there and in
best_practices, a bare array in some other sources: both are read), kept as
``tokens.value("business_id")`` and sent as ``X-Business`` on every request.

Flow: contact -- ``GET /contacts?search=<our id>`` (search covers name and ``reference``; we
keep our customer id in the contact's ``reference``, "Unique reference for the contact"),
then ``GET /contacts?email=``, else ``POST /contacts`` with ``contact_type_ids: [CUSTOMER]``
-> the sales ledger account (``GET /ledger_accounts?ledger_account_type_id=SALES``, first
one, cached) and the tax rates (``GET /tax_rates?usage=sales``, matched by ``percentage``;
0 % lines by kind: exempt, zero or no-tax; ``platform.tax_rates`` first; cached)
-> ``POST /sales_invoices`` with
``contact_id``, ``date``, ``due_date``, ``reference`` (our invoice number, at most 25
characters), ``notes`` (first line ``Job <id> revision <n> · PO <po>``, then the legal notes
such as reverse charge -- the sales invoice has no PO or vendor-reference field),
``currency_id`` and ``invoice_lines`` (``description`` with a covered line's reason,
``ledger_account_id``, ``quantity``, ``unit_price``, ``tax_rate_id``, ``tax_amount``). The
201 answer is Sage's own computation: its ``total_amount`` is returned as
``RemoteInvoice.total`` and compared by the pipeline.

Tax: Swagger, ``invoice_lines[].tax_amount``: "required in v3.1, unless the tax rate is of a
zero, exempt or no_tax type" -- tax lives on each line and the document totals are the sums
of the lines (``TAX_ROUNDING["sage"] = line``). Each line's ``tax_rate_id`` is one of the
business's own rates (``GET /tax_rates?usage=sales``; a UK business lists ``GB_STANDARD``,
``GB_REDUCED``, ``GB_ZERO``, ``GB_EXEMPT``, ``GB_NO_TAX``): ``platform.tax_rates`` maps an
outcome ("S:20", "AE", ...) to an id, else a taxed line takes the rate of its percentage and an
untaxed one the business's ZERO (zero-rated), EXEMPT (exempt) or NO_TAX (reverse charge,
intra-community, export, outside the scope) rate. No fitting rate fails naming the outcome and
listing the business's rates; ``check_setup`` reports mapped ids the business lacks (at
``connect`` and at start). Amounts, quantities and percentages are JSON numbers both ways
(Swagger: ``number``/``double``).

Delivery: the API has no e-mail/send operation for sales invoices (the sales-invoice paths
are list/get/create/update/delete plus ``/release``), so ``delivers_itself = False``: the
pipeline e-mails our own PDF; ``send_invoice`` records it on Sage with ``PUT
/sales_invoices/{key}`` ``{"sales_invoice": {"sent": true}}`` ("Indicates whether the invoice
has been sent").

Idempotency (guides/concepts/idempotency): ``idempotency_id``, "a random 32 character
hyphenless GUID in the namespace of the entity", supported by ``contact``,
``sales_invoice`` and ``sales_credit_note``; "for the next 7 days, a repetition of this very
same request will return the exact same result as the first request and not create a new
object". Ours is derived from ``keys.for_step`` (sha-256, 32 hex digits), so a retry after a
lost response or a restart sends the same one; the POST is therefore replay-safe for the HTTP
layer. Past 7 days the pipeline calls ``find_by_reference``: ``GET
/sales_invoices?search=<reference>`` filtered on the exact ``reference`` and the job line of
``notes``.

Payment status: ``total_amount``, ``total_paid``, ``outstanding_amount``, ``last_paid`` (a
date) and ``status.id``; no webhooks for Accounting, the pipeline polls.

Corrections: ``void_invoice`` is ``DELETE /sales_invoices/{key}`` -- a draft is deleted,
anything else voided with ``void_reason`` ("required unless status is DRAFT"); a paid or part
paid one raises ``PermanentError`` (credit it instead). ``credit_invoice`` is ``POST
/sales_credit_notes`` with the credited lines, our credit note number as ``reference`` and the
original invoice (its number and date: the credit note has ``original_invoice_date`` but no
invoice id field) in ``notes``, after ``GET /sales_credit_notes?contact_id=&search=`` found
none. Allocating the note against the invoice (``/contact_allocations``) is left to the
bookkeeper.

Rate limits: Sage publishes none for v3.1 (PLATFORMS.md: "Limits unknown"); the v3.0 docs said
"200 calls in any 60 second period (per Accounting business)" and integrators report 100/min
and 2,500/day per business. We keep each tenant under 100 requests a minute (burst 10) and 5
in flight, shared by every instance (``limiter_for``/``slots_for``), unless the tenant sets
``platform.rate_limit_per_second``; 429 is still retried with ``Retry-After``.

Errors: a JSON list of ``{"$severity", "$dataCode", "$message", "$source"}`` (e.g.
``AuthorizationFailure``, ``RecordInvalid``, ``IdempotencyResourceMismatch``), read in
``_map_error`` only; the request id is the ``X-Request-Id`` header when present.
"""

from __future__ import annotations

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
)
from autoinvoice.connectors.errors import (
    AuthError,
    ConnectorError,
    NotFound,
    PermanentError,
    RateLimited,
    ValidationRejected,
    class_for_status,
)
from autoinvoice.connectors.http import (
    HttpClient,
    bearer_request,
    limiter_for,
    retry_after_seconds,
    slots_for,
)
from autoinvoice.connectors.sage.payloads import (
    PLATFORM,
    Obj,
    contact_body,
    credit_note_body,
    dumps,
    invoice_body,
    items,
    job_marker,
    line_body,
    loads,
    rate_for,
    rate_ids,
    reference_of,
    remote_credit_note,
    remote_invoice,
    remote_status,
    unknown_rate_message,
)
from autoinvoice.domain.invoice import Invoice, InvoiceLine
from autoinvoice.domain.job import Customer
from autoinvoice.domain.tax_outcome import matching_key

DEFAULT_BASE_URL = "https://api.accounting.sage.com"
API_PREFIX = "/v3.1"
RATE_PER_MINUTE = 100
BURST = 10
CONCURRENT = 5
PAGE = 200
__all__ = ["DEFAULT_BASE_URL", "SageConnector", "_map_error", "dumps"]


class SageConnector:
    platform = PLATFORM
    delivers_itself = False

    def __init__(self, settings: ConnectorSettings) -> None:
        if settings.tokens is None:
            raise AuthError("Sage needs an OAuth2 connection (autoinvoice connect sage)",
                            platform=PLATFORM)
        self._tokens: TokenSource = settings.tokens
        self._currency = settings.currency
        self._ledger_account: str | None = None
        self._tax_rates: list[Obj] | None = None
        self._tax_map: Mapping[str, str] = settings.options.get("tax_rates") or {}
        headers = {"Accept": "application/json"}
        business = self._tokens.value("business_id")
        if business:
            headers["X-Business"] = business
        rate = settings.rate_limit_per_second or RATE_PER_MINUTE / 60
        key = f"{settings.tenant}:{PLATFORM}"
        self._http = HttpClient(
            exact_decimals=True,
            platform=PLATFORM,
            base_url=_api_root(settings.base_url or DEFAULT_BASE_URL),
            default_headers=headers,
            error_mapper=_map_error,
            transport=settings.transport,
            recorder=settings.recorder,
            limiter=limiter_for(key, rate, max(BURST, int(rate)), timer=settings.timer),
            slots=slots_for(key, CONCURRENT),
            timer=settings.timer,
        )

    def close(self) -> None:
        self._http.close()

    # -- the Connector protocol ---------------------------------------------------------------

    def check_auth(self) -> None:
        self._get("/contacts", {"items_per_page": 1})

    def ensure_customer(self, customer: Customer, keys: IdempotencyKeys) -> RemoteCustomer:
        found = self._find_contact(customer)
        if found is not None:
            return RemoteCustomer(found)
        try:
            created = self._post("/contacts", contact_body(customer, keys.for_step("customer")))
        except ValidationRejected:
            # another worker created it meanwhile ("reference has already been taken")
            found = self._find_contact(customer)
            if found is None:
                raise
            return RemoteCustomer(found)
        return RemoteCustomer(str(created["id"]))

    def create_invoice(self, invoice: Invoice, customer: RemoteCustomer,
                       keys: IdempotencyKeys) -> RemoteInvoice:
        created = self._post("/sales_invoices", invoice_body(
            invoice, customer.id, self._lines(invoice), keys.for_step("create")))
        return remote_invoice(created, invoice.currency)

    def send_invoice(self, remote: RemoteInvoice, keys: IdempotencyKeys) -> RemoteInvoice:
        current = self._get(f"/sales_invoices/{remote.id}")
        status = str((current.get("status") or {}).get("id", "")).upper()
        if status == "VOID":
            raise PermanentError(f"invoice {remote.id} is void on Sage", platform=PLATFORM,
                                 code="invoice_void")
        if not current.get("sent"):
            current = self._request("PUT", f"/sales_invoices/{remote.id}",
                                    json={"sales_invoice": {"sent": True}})
        return remote_invoice(current, self._currency)

    def fetch_status(self, remote_id: str) -> RemoteStatus:
        return remote_status(self._get(f"/sales_invoices/{remote_id}"), self._currency)

    def find_by_reference(self, invoice: Invoice) -> RemoteInvoice | None:
        reference, marker = reference_of(invoice), job_marker(invoice)
        listed = items(self._get("/sales_invoices", {
            "search": reference, "items_per_page": PAGE,
            "attributes": "reference,notes,total_amount,status,currency,invoice_number"}))
        ours = [obj for obj in listed if obj.get("reference") == reference
                and str(obj.get("notes") or "").startswith(marker)]
        live = [obj for obj in ours if (obj.get("status") or {}).get("id") != "VOID"]
        chosen = (live or ours)[:1]
        return remote_invoice(chosen[0], invoice.currency) if chosen else None

    def void_invoice(self, remote_id: str, keys: IdempotencyKeys) -> str:
        try:
            current = self._get(f"/sales_invoices/{remote_id}")
        except NotFound:  # a deleted draft is gone; a lost DELETE response retried ends here
            return "already_void"
        status = str((current.get("status") or {}).get("id", "")).upper()
        if status == "VOID":
            return "already_void"
        if status == "DRAFT":
            self._request("DELETE", f"/sales_invoices/{remote_id}")
            return "deleted"
        if status in ("PAID", "PART_PAID") or Decimal(current.get("total_paid") or 0) > 0:
            raise PermanentError(f"invoice {remote_id} is {status.lower()} on Sage and cannot "
                                 "be voided; credit it instead", platform=PLATFORM,
                                 code=f"invoice_{status.lower()}")
        self._request("DELETE", f"/sales_invoices/{remote_id}",
                      params={"void_reason": "Cancelled before delivery: the job changed"})
        return "voided"

    def credit_invoice(self, remote_id: str, credit: Invoice, keys: IdempotencyKeys
                       ) -> RemoteCreditNote:
        original = self._get(f"/sales_invoices/{remote_id}")
        contact_id = str((original.get("contact") or {}).get("id", ""))
        found = self._find_credit_note(contact_id, credit)
        if found is not None:
            return found
        body = credit_note_body(credit, contact_id, original, self._lines(credit),
                                keys.for_step("credit-note"))
        return remote_credit_note(self._post("/sales_credit_notes", body), credit.currency)

    # -- look-ups -----------------------------------------------------------------------------

    def _find_contact(self, customer: Customer) -> str | None:
        attrs = "reference,email,contact_types"
        by_ref = items(self._get("/contacts", {"search": customer.id, "attributes": attrs,
                                               "items_per_page": PAGE}))
        ours = [c for c in by_ref if c.get("reference") == customer.id]
        if not ours and customer.email:
            by_mail = items(self._get("/contacts", {"email": customer.email,
                                                    "attributes": attrs,
                                                    "items_per_page": PAGE}))
            ours = [c for c in by_mail if c.get("reference") in (None, "", customer.id)]
        return str(ours[0]["id"]) if ours else None

    def _find_credit_note(self, contact_id: str, credit: Invoice) -> RemoteCreditNote | None:
        reference = (credit.number or credit.job_id)[:25]
        listed = items(self._get("/sales_credit_notes", {
            "contact_id": contact_id, "search": reference, "items_per_page": PAGE,
            "attributes": "reference,total_amount,status,currency,credit_note_number"}))
        ours = [n for n in listed if n.get("reference") == reference
                and (n.get("status") or {}).get("id") != "VOID"]
        return remote_credit_note(ours[0], credit.currency) if ours else None

    def _lines(self, invoice: Invoice) -> list[Obj]:
        account = self._sales_ledger_account()
        return [line_body(line, account, self._tax_rate_id(line)) for line in invoice.lines]

    def _sales_ledger_account(self) -> str:
        if self._ledger_account is None:
            found = items(self._get("/ledger_accounts", {
                "ledger_account_type_id": "SALES", "visible_in": "sales",
                "items_per_page": PAGE}))
            if not found:
                raise PermanentError("Sage business has no sales ledger account",
                                     platform=PLATFORM, code="no_sales_ledger_account")
            self._ledger_account = str(found[0]["id"])
        return self._ledger_account

    def _tax_rate_id(self, line: InvoiceLine) -> str:
        """The business's own tax rate for the line's outcome: the tenant's
        ``platform.tax_rates`` mapping first, else by kind -- a rate of the line's percentage
        for a taxed line, the business's ZERO / EXEMPT / NO_TAX rate for an untaxed one."""
        rates = self._sales_tax_rates()
        key = matching_key(self._tax_map, line.tax_category, line.tax_rate)
        if key is not None:
            mapped = self._tax_map[key]
            if mapped not in rate_ids(rates):
                raise PermanentError(unknown_rate_message(key, mapped, rates),
                                     platform=PLATFORM, code="unknown_tax_rate")
            return mapped
        found = rate_for(rates, line.tax_category, line.tax_rate)
        if found is None:
            percentage = (line.tax_rate * 100).normalize()
            raise PermanentError(
                f"this Sage business has no sales tax rate for {line.tax_category.value} at "
                f"{percentage}% (its rates: {', '.join(rate_ids(rates))}); add one in Sage "
                "(Settings > Tax rates) or map the outcome in platform.tax_rates",
                platform=PLATFORM, code="no_tax_rate")
        return found

    def check_setup(self) -> list[str]:
        """What in ``platform.tax_rates`` the business lacks (at connect and at start)."""
        rates = self._sales_tax_rates()
        known = set(rate_ids(rates))
        return [unknown_rate_message(key, code, rates)
                for key, code in self._tax_map.items() if code not in known]

    def _sales_tax_rates(self) -> list[Obj]:
        if self._tax_rates is None:
            self._tax_rates = items(self._get("/tax_rates", {
                "usage": "sales", "attributes": "percentage,is_visible",
                "items_per_page": PAGE}))
        return self._tax_rates

    # -- plumbing -----------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> Obj:
        response = bearer_request(self._http, self._tokens, method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return {}
        body = loads(response)
        if not isinstance(body, dict):
            raise PermanentError(f"Sage answered {method} {path} with a body that is not an "
                                 "object", platform=PLATFORM, status=response.status_code)
        return body

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Obj:
        return self._request("GET", path, params=params)

    def _post(self, path: str, body: Obj) -> Obj:
        # the idempotency_id inside the body makes a repeated POST replay, not create twice
        return self._request("POST", path, json=body, replay_safe=True)


def _api_root(base_url: str) -> str:
    """The server root (as tenants configure it, and as the OAuth layer's discovery uses it)
    plus ``/v3.1``; a base URL that already ends with ``/v3.1`` is taken as is."""
    root = base_url.rstrip("/")
    return root if root.endswith(API_PREFIX) else root + API_PREFIX


# ---------------------------------------------------------------------------------------------
# Sage errors -> ours


def _map_error(response: httpx.Response) -> ConnectorError:
    """The one place Sage's error body (a list of ``$severity/$dataCode/$message/$source``)
    is read; every entry's message is kept, the first code is the error's code."""
    entries = _error_entries(response)
    status = response.status_code
    messages = [str(e.get("$message") or "").strip() for e in entries]
    sources = [str(e.get("$source") or "") for e in entries]
    said = "; ".join(f"{m} ({s})" if s else m for m, s in zip(messages, sources, strict=True)
                     if m) or response.reason_phrase or f"HTTP {status}"
    code = next((str(e["$dataCode"]) for e in entries if e.get("$dataCode")), None)
    common: dict[str, Any] = {"platform": PLATFORM, "status": status, "code": code,
                              "request_id": response.headers.get("X-Request-Id")}
    if status == 429:
        return RateLimited(said, retry_after=retry_after_seconds(response), **common)
    if code == "IdempotencyResourceMismatch":
        return PermanentError(said, **common)
    return class_for_status(status)(said, **common)


def _error_entries(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return []
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        return []
    return [entry for entry in body if isinstance(entry, dict)]
