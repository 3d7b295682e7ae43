"""Xero (Accounting API 2.0).

API docs checked: developer.xero.com/documentation/api/accounting/invoices (create with
``PUT /Invoices``, update/status with ``POST /Invoices/{InvoiceID}``, ``unitdp=4``, e-mail
with ``POST /Invoices/{InvoiceID}/Email``: "The invoice must be of Type ACCREC and a valid
Status for sending (SUBMITTED, AUTHORISED or PAID)", 204, the contact needs an e-mail),
/accounting/contacts (``ContactNumber``, ``where`` filters, names unique across active
contacts), /accounting/creditnotes (``PUT /CreditNotes``, ``PUT /CreditNotes/{id}/Allocations``
with Amount, Date and Invoice.InvoiceID), /accounting/taxrates, /guides/how-to-guides/
rounding-in-xero ("Xero calculates tax on a per line basis, rounding to two decimal places, and
then sums the tax totals of each line"; "A line item with just a description ... can be
created"), /faq/limits (per tenant: 5 calls in progress, 60 calls per minute, 5000 per day;
10,000/min per app; ``X-DayLimit-Remaining``/``X-MinLimit-Remaining``/
``X-AppMinLimit-Remaining``; 429 when exceeded), /api/http-response-codes (400
``ValidationException`` with ``Elements[].ValidationErrors[].Message``). Every request and
body is validated in the tests against Xero's OpenAPI 3 spec ``XeroAPI/Xero-OpenAPI``
``xero_accounting.yaml`` 16.1.0 (``shared/vendor-specs/xero``), which also documents the
``Idempotency-Key`` header ("safely retry requests without the risk of duplicate processing.
128 character max.") on every PUT/POST we send, the Email call included.

Auth: OAuth2 authorization code; the access token (30 min) comes from ``settings.tokens`` per
request (``bearer_request``: a 401 refreshes once, then ``AuthError``), the organisation from
``tokens.value("tenant_id")`` in the ``xero-tenant-id`` header; ``Accept: application/json``.
That id is learned by ``autoinvoice connect`` from ``GET https://api.xero.com/connections``
(``[].tenantId``; XeroAPI/Xero-OpenAPI ``xero-identity.yaml``), never from the token answer.
Scopes (``connectors.oauth.XERO_GRANULAR``): apps made since 2 March 2026 get only granular
scopes and are refused ``accounting.transactions`` (developer.xero.com/documentation/guides/
oauth2/scopes and the "Upcoming changes to Xero accounting API scopes" announcement), so we ask
for ``accounting.invoices`` (Invoices, CreditNotes), ``accounting.payments`` (a credit note's
allocation to the invoice: which granular scope Xero checks there is unconfirmed),
``accounting.contacts`` and ``accounting.settings`` (``PUT /TaxRates`` needs it, not
``.read``: ``security`` of ``xero_accounting.yaml``); ``platform.scopes = "legacy"`` asks an
older app for ``accounting.transactions`` instead. A token without an endpoint's scope is
answered 401 ``AuthorizationUnsuccessful`` (XeroAPI/Xero-NetStandard issue 178).

Flow: contact by ``ContactNumber`` (= our customer id), else by ``EmailAddress`` or
``Name`` (an unnumbered contact, entered by hand, is adopted; a name held by another numbered
contact gets our id appended, since names are unique), else ``PUT /Contacts``.

Tax types per tax outcome from the organisation's own rates (``GET /TaxRates``, active rates
that ``CanApplyToRevenue``; cached per connector): ``platform.tax_types`` first (keys as in
``domain.tax_outcome``), else by the rate's ``ReportTaxType`` (``tax_types``: S at its
``EffectiveRate`` on OUTPUT, Z on a 0 % OUTPUT rate, E on EXEMPTOUTPUT, AE on
ECOUTPUTSERVICES, K on ECOUTPUT, G on EXEMPTEXPORT or a 0 % OUTPUT rate, O on NONE;
developer.xero.com/documentation/api/accounting/types, "Report Tax Types" and "Tax Types";
``TaxRate.ReportTaxType`` in ``xero_accounting.yaml``). Every line's type is resolved before
anything is written; an outcome no rate fits is refused, naming it and listing the
organisation's tax types. A missing standard rate is created with ``PUT /TaxRates`` only on
editions without national rates of their own (US, Global; not UK/AU/NZ: ``GET /Organisation``
``Version``). ``check_setup`` reports mapped types the organisation lacks (at ``connect`` and
at start).

Invoice: ``PUT /Invoices?unitdp=4`` as a DRAFT ACCREC
with ``LineAmountTypes: Exclusive``, ``InvoiceNumber`` = our number, ``Reference`` = number,
job (and revision) and PO, ``DueDate``, one line per our line (covered lines at price 0 with
their coverage), legal notes as description-only lines. DRAFT, not AUTHORISED, because the
pipeline compares Xero's total with ours first and holds a mismatch: a held draft is
simply deleted, an authorised invoice would already sit in receivables. ``send_invoice``
authorises (``POST /Invoices/{id}`` Status AUTHORISED) and then e-mails it:
``delivers_itself``. The total is read from the created invoice Xero returns.

Idempotency: ``Idempotency-Key`` (``keys.for_step``: customer, taxrate-P, create, authorise,
send, void, credit-note, credit-allocation) on every PUT/POST. Xero does not document how long
keys are kept, so past the pipeline's key window ``find_by_reference`` searches
``GET /Invoices?where=Type=="ACCREC"&&Reference=="…"``; and a create that Xero refuses with
"Invoice # must be unique" returns the invoice that holds our number when its reference is
ours (so ``create_invoice`` is safe to repeat even without the key).

Corrections: a DRAFT/SUBMITTED invoice is deleted (Status DELETED), an AUTHORISED one without
payments voided (Status VOIDED); PAID or part-paid ones cannot be voided (``PermanentError``:
credit instead). ``credit_invoice`` issues an AUTHORISED ACCRECCREDIT credit note with the
invoice's own line items, found first by its reference, then allocates what is still due on
the invoice to it (a paid invoice keeps the credit as the contact's remaining credit, for the
operator to refund).

Rate limits: a token bucket per tenant of 55 calls a minute with a burst of 5 (so no
60-second window exceeds 60) and 5 requests in flight (``slots_for``); the daily 5,000 are
left to Xero's 429 (``Retry-After`` is honoured; a long one is handed to the pipeline).

Errors: ``_map_error`` is the only place Xero's error bodies are read: validation
(``Elements[].ValidationErrors[].Message``, joined), the OAuth problem body of 401/403
(``Title``/``Detail``), plain text otherwise; the ``Xero-Correlation-Id`` header is the request
id.

Sandbox: Xero has no sandbox host (use the Demo Company); locally ``autoinvoice.sandbox.xero``.
"""

from __future__ import annotations

import threading
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
from autoinvoice.connectors.xero.payloads import (
    PLATFORM,
    Obj,
    allocation_body,
    contact_body,
    credit_note_body,
    credit_note_reference,
    invoice_body,
    money,
    need,
    only,
    parse_json,
    percentage_of,
    reference,
    remote_credit_note,
    remote_invoice,
    remote_status,
    status_body,
    tax_rate_body,
    text,
    where_literal,
)
from autoinvoice.connectors.xero.tax_types import (
    by_default,
    mapped,
    no_type_message,
    revenue_rates,
    unknown_type_message,
)
from autoinvoice.domain.invoice import Invoice
from autoinvoice.domain.job import Customer

DEFAULT_BASE_URL = "https://api.xero.com"
API = "/api.xro/2.0"
CALLS_PER_MINUTE = 55  # documented 60; 55 + a burst of 5 never exceeds 60 in any minute
BURST = 5
CONCURRENT = 5
DEFAULT_ACCOUNT_CODE = "200"  # "Sales" in Xero's default chart of accounts
REQUEST_ID_HEADER = "Xero-Correlation-Id"
__all__ = ["API", "DEFAULT_BASE_URL", "XeroConnector", "reference"]


class XeroConnector:
    platform = PLATFORM
    delivers_itself = True

    def __init__(self, settings: ConnectorSettings) -> None:
        if settings.tokens is None:
            raise AuthError("xero needs an OAuth2 connection (autoinvoice connect xero "
                            f"--tenant {settings.tenant})", platform=PLATFORM)
        self._tokens: TokenSource = settings.tokens
        self._currency = settings.currency
        self._account_code = _option(settings, "account_code", DEFAULT_ACCOUNT_CODE)
        self._tax_rates: list[Obj] | None = None  # the organisation's revenue tax rates
        self._tax_map: Mapping[str, str] = settings.options.get("tax_types") or {}
        self._edition: str | None = None
        self._tax_lock = threading.Lock()
        # Workers of one process share this connector: two jobs of one new customer must not
        # both find no contact and both create one (Xero refuses the second name).
        self._customer_lock = threading.Lock()
        per_second = settings.rate_limit_per_second or CALLS_PER_MINUTE / 60
        key = f"{settings.tenant}:{PLATFORM}"
        self._http = HttpClient(
            exact_decimals=True,
            platform=PLATFORM,
            base_url=settings.base_url or DEFAULT_BASE_URL,
            default_headers={"Accept": "application/json"},
            error_mapper=_map_error,
            transport=settings.transport,
            recorder=settings.recorder,
            limiter=limiter_for(key, per_second, BURST, timer=settings.timer),
            slots=slots_for(key, CONCURRENT),
            timer=settings.timer,
            request_id_header=REQUEST_ID_HEADER,
        )

    def close(self) -> None:
        self._http.close()

    # -- the Connector protocol ---------------------------------------------------------------

    def check_auth(self) -> None:
        self._get("/Organisation")

    def ensure_customer(self, customer: Customer, keys: IdempotencyKeys) -> RemoteCustomer:
        with self._customer_lock:
            found = self._find_contact(customer)
            if isinstance(found, RemoteCustomer):
                return found
            body = contact_body(customer, found)
            try:
                created = self._send("PUT", "/Contacts", body, keys.for_step("customer"))
            except ValidationRejected:  # another process created it meanwhile?
                again = self._find_contact(customer)
                if isinstance(again, RemoteCustomer):
                    return again
                raise
            return RemoteCustomer(str(need(only(created, "Contacts"), "ContactID")))

    def create_invoice(self, invoice: Invoice, customer: RemoteCustomer,
                       keys: IdempotencyKeys) -> RemoteInvoice:
        tax_types = self._tax_types_for(invoice, keys)
        body = invoice_body(invoice, customer.id, tax_types, self._account_code)
        try:
            created = self._send("PUT", "/Invoices", body, keys.for_step("create"),
                                 params={"unitdp": 4})
        except ValidationRejected as exc:
            existing = self._ours_by_number(invoice) if "must be unique" in exc.message else None
            if existing is None:
                raise
            return existing
        return remote_invoice(_checked(only(created, "Invoices")), self._currency)

    def send_invoice(self, remote: RemoteInvoice, keys: IdempotencyKeys) -> RemoteInvoice:
        current = self._invoice(remote.id)  # ``remote`` may be stale
        status = current.get("Status")
        if status in ("DRAFT", "SUBMITTED"):
            updated = self._send("POST", f"/Invoices/{remote.id}",
                                 status_body(remote.id, "AUTHORISED"), keys.for_step("authorise"),
                                 params={"unitdp": 4})
            current = _checked(only(updated, "Invoices"))
            status = current.get("Status")
        if status not in ("AUTHORISED", "PAID"):
            raise PermanentError(f"invoice {remote.id} is {status} on Xero and cannot be sent",
                                 platform=PLATFORM, code=f"invoice_{str(status).lower()}")
        self._call("POST", f"/Invoices/{remote.id}/Email", json={},
                   idempotency_key=keys.for_step("send"))
        return remote_invoice(current, self._currency)

    def fetch_status(self, remote_id: str) -> RemoteStatus:
        return remote_status(self._invoice(remote_id), self._currency)

    def find_by_reference(self, invoice: Invoice) -> RemoteInvoice | None:
        where = f'Type=="ACCREC"&&Reference=={where_literal(reference(invoice))}'
        found = self._get("/Invoices", {"where": where}).get("Invoices") or []
        live = [obj for obj in found if obj.get("Status") not in ("VOIDED", "DELETED")]
        return remote_invoice((live or found)[0], self._currency) if found else None

    def void_invoice(self, remote_id: str, keys: IdempotencyKeys) -> str:
        try:
            current = self._invoice(remote_id)
        except NotFound:
            return "already_void"
        status = current.get("Status")
        if status in ("VOIDED", "DELETED"):
            return "already_void"
        paid = money(current, "AmountPaid", self._currency)
        if status == "PAID" or not paid.is_zero():
            raise PermanentError(f"invoice {remote_id} is {status} on Xero with {paid} paid and "
                                 "cannot be voided; credit it instead", platform=PLATFORM,
                                 code=f"invoice_{str(status).lower()}")
        target = "DELETED" if status in ("DRAFT", "SUBMITTED") else "VOIDED"
        self._send("POST", f"/Invoices/{remote_id}", status_body(remote_id, target),
                   keys.for_step("void"))
        return "deleted" if target == "DELETED" else "voided"

    def credit_invoice(self, remote_id: str, credit: Invoice, keys: IdempotencyKeys
                       ) -> RemoteCreditNote:
        invoice = self._invoice(remote_id)
        if invoice.get("Status") not in ("AUTHORISED", "PAID"):
            raise PermanentError(f"invoice {remote_id} is {invoice.get('Status')} on Xero; only "
                                 "authorised or paid invoices are credited", platform=PLATFORM,
                                 code="invoice_not_creditable")
        note = self._find_credit_note(credit)
        if note is None:
            created = self._send("PUT", "/CreditNotes", credit_note_body(invoice, credit),
                                 keys.for_step("credit-note"), params={"unitdp": 4})
            note = _checked(only(created, "CreditNotes"))
        self._allocate(note, invoice, credit, keys)
        return remote_credit_note(note, self._currency)

    # -- contacts, tax types, credit notes ----------------------------------------------------

    def _find_contact(self, customer: Customer) -> RemoteCustomer | str:
        """The contact that is ours, or the name to create one under."""
        by_number = self._contacts(f"ContactNumber=={where_literal(customer.id)}")
        if by_number:
            return RemoteCustomer(str(by_number[0]["ContactID"]))
        if customer.email:
            for contact in self._contacts(f"EmailAddress=={where_literal(customer.email)}"):
                if not contact.get("ContactNumber"):  # entered by hand: adopt it
                    return RemoteCustomer(str(contact["ContactID"]))
        for contact in self._contacts(f"Name=={where_literal(customer.name)}"):
            if not contact.get("ContactNumber"):
                return RemoteCustomer(str(contact["ContactID"]))
            return f"{customer.name} ({customer.id})"  # the name belongs to another customer
        return customer.name

    def _contacts(self, where: str) -> list[Obj]:
        found = self._get("/Contacts", {"where": where}).get("Contacts") or []
        return [c for c in found if c.get("ContactStatus", "ACTIVE") == "ACTIVE"]

    def _tax_types_for(self, invoice: Invoice, keys: IdempotencyKeys
                       ) -> dict[tuple[str, Decimal], str]:
        """The organisation's tax type per (category, rate) of the invoice (``tax_types``):
        ``platform.tax_types`` first, else by Xero's report types. Every outcome is resolved
        before anything is written: one that no rate fits refuses the invoice, naming it and
        listing the organisation's tax types; a missing standard rate is then created where
        the edition lets a company add its own sales tax rates (US, Global)."""
        outcomes = list(dict.fromkeys((line.tax_category.value, line.tax_rate)
                                      for line in invoice.lines))
        with self._tax_lock:
            rates = self._revenue_rates()
            chosen: dict[tuple[str, Decimal], str] = {}
            problems: list[str] = []
            for category, rate in outcomes:
                found = self._chosen(rates, category, rate, problems)
                if found is not None:
                    chosen[(category, rate)] = found
            if problems:
                raise PermanentError("; ".join(problems), platform=PLATFORM, code="no_tax_type")
            for category, rate in outcomes:
                if (category, rate) not in chosen:
                    chosen[(category, rate)] = self._created_rate(rates, rate, keys)
        return chosen

    def _chosen(self, rates: list[Obj], category: str, rate: Decimal,
                problems: list[str]) -> str | None:
        hit = mapped(self._tax_map, category, rate)
        if hit is not None:
            key, code = hit
            if code not in {str(r["TaxType"]) for r in rates}:
                problems.append(unknown_type_message(key, code, rates))
                return None
            return code
        found = by_default(rates, category, rate)
        if found is None and not (category == "S" and rate > 0 and self._may_create_rates()):
            problems.append(no_type_message(category, rate, rates))
        return found

    def _created_rate(self, rates: list[Obj], rate: Decimal, keys: IdempotencyKeys) -> str:
        percentage = percentage_of(rate)
        created = self._send("PUT", "/TaxRates", tax_rate_body(percentage),
                             keys.for_step(f"taxrate-{text(percentage)}"))
        tax_type = str(need(only(created, "TaxRates"), "TaxType"))
        rates.append({"TaxType": tax_type, "Name": f"autoinvoice {text(percentage)}%",
                      "ReportTaxType": "OUTPUT", "EffectiveRate": percentage,
                      "CanApplyToRevenue": True, "Status": "ACTIVE"})
        return tax_type

    def _may_create_rates(self) -> bool:
        """UK, AU and NZ editions come with their country's VAT/GST rates (developer.xero.com
        /documentation/api/accounting/types, "Tax Types"): a standard rate missing there means
        the tenant's tax setup does not fit the organisation, so it is refused, not invented."""
        if self._edition is None:
            found = self._get("/Organisation").get("Organisations") or [{}]
            self._edition = str(found[0].get("Version") or "")
        return not self._edition.startswith(("UK", "AU", "NZ"))

    def check_setup(self) -> list[str]:
        """Every ``platform.tax_types`` code the organisation lacks among its sales tax rates
        (at ``connect`` and at start: ``ledger_setup.check_ledger_setup``); no call to Xero
        when nothing is mapped."""
        if not self._tax_map:
            return []
        rates = self._revenue_rates()
        known = {str(r["TaxType"]) for r in rates}
        return [unknown_type_message(key, code, rates)
                for key, code in self._tax_map.items() if code not in known]

    def _revenue_rates(self) -> list[Obj]:
        if self._tax_rates is None:
            found = self._get("/TaxRates", {"where": 'Status=="ACTIVE"'}).get("TaxRates") or []
            self._tax_rates = revenue_rates(found)
        return self._tax_rates

    def _find_credit_note(self, credit: Invoice) -> Obj | None:
        where = f'Type=="ACCRECCREDIT"&&Reference=={where_literal(credit_note_reference(credit))}'
        found = self._get("/CreditNotes", {"where": where}).get("CreditNotes") or []
        live = [n for n in found if n.get("Status") not in ("VOIDED", "DELETED")]
        return live[0] if live else None

    def _allocate(self, note: Obj, invoice: Obj, credit: Invoice, keys: IdempotencyKeys) -> None:
        currency = str(invoice.get("CurrencyCode") or self._currency)
        remaining = money(note, "RemainingCredit", currency)
        due = money(invoice, "AmountDue", currency)
        already = any((a.get("Invoice") or {}).get("InvoiceID") == invoice["InvoiceID"]
                      for a in note.get("Allocations") or [])
        if already or remaining.is_zero() or due.is_zero():
            return
        amount = min(remaining.amount, due.amount)
        self._send("PUT", f"/CreditNotes/{note['CreditNoteID']}/Allocations",
                   allocation_body(str(invoice["InvoiceID"]), amount, credit.issue_date),
                   keys.for_step("credit-allocation"))

    def _ours_by_number(self, invoice: Invoice) -> RemoteInvoice | None:
        if not invoice.number:
            return None
        found = self._get("/Invoices", {"InvoiceNumbers": invoice.number}).get("Invoices") or []
        ours = [obj for obj in found if obj.get("Reference") == reference(invoice)
                and obj.get("Status") not in ("VOIDED", "DELETED")]
        return remote_invoice(ours[0], self._currency) if ours else None

    # -- plumbing -----------------------------------------------------------------------------

    def _invoice(self, remote_id: str) -> Obj:
        return only(self._get(f"/Invoices/{remote_id}", {"unitdp": 4}), "Invoices")

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Obj:
        return parse_json(self._call("GET", path, params=params).content, f"GET {path}")

    def _send(self, method: str, path: str, body: Obj, key: str,
              params: Mapping[str, Any] | None = None) -> Obj:
        response = self._call(method, path, json=body, idempotency_key=key, params=params)
        return parse_json(response.content, f"{method} {path}")

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        tenant_id = self._tokens.value("tenant_id")
        if not tenant_id:
            raise AuthError("the Xero connection has no tenant id (connect again)",
                            platform=PLATFORM)
        return bearer_request(self._http, self._tokens, method, API + path,
                              headers={"xero-tenant-id": tenant_id}, **kwargs)


def _option(settings: ConnectorSettings, name: str, default: str) -> str:
    secret = settings.credentials.get(name)
    return secret.reveal() if secret is not None else default


def _checked(obj: Obj) -> Obj:
    """A 200 can still carry per-item errors (``summarizeErrors=false``): refuse them."""
    if obj.get("HasErrors") or obj.get("ValidationErrors"):
        messages = "; ".join(str(e.get("Message")) for e in obj.get("ValidationErrors") or [])
        raise ValidationRejected(messages or "Xero reported errors on the document",
                                 platform=PLATFORM, code="ValidationException")
    return obj


# ---------------------------------------------------------------------------------------------
# Xero errors -> ours


def _map_error(response: httpx.Response) -> ConnectorError:
    """The one place Xero's error bodies are read."""
    status = response.status_code
    code, message = _error_text(response)
    common: dict[str, Any] = {"platform": PLATFORM, "status": status, "code": code,
                              "request_id": response.headers.get(REQUEST_ID_HEADER)}
    if status == 429:
        problem = response.headers.get("X-Rate-Limit-Problem")
        return RateLimited(f"{message} (limit: {problem})" if problem else message,
                           retry_after=retry_after_seconds(response), **common)
    if status == 401 and code == "AuthorizationUnsuccessful":  # a valid token, a missing scope
        message += (" (the connection lacks a scope this call needs: check platform.scopes, "
                    "granular for apps made since 2 March 2026, then run `autoinvoice connect "
                    "xero` again)")
    return class_for_status(status)(message, **common)


def _error_text(response: httpx.Response) -> tuple[str | None, str]:
    try:
        body = parse_json(response.content, "an error")
    except PermanentError:
        text_ = response.text.strip()[:300]
        return None, text_ or f"HTTP {response.status_code}"
    elements = body.get("Elements") or []
    errors = [str(e.get("Message")) for element in elements if isinstance(element, dict)
              for e in element.get("ValidationErrors") or [] if isinstance(e, dict)]
    if errors:
        return str(body.get("Type") or "ValidationException"), "; ".join(errors)
    if "Title" in body or "Detail" in body:  # the problem body of 401/403/429/5xx
        detail, title = str(body.get("Detail") or ""), str(body.get("Title") or "")
        code = detail if detail and " " not in detail else None  # AuthenticationUnsuccessful
        return code, title if code else (detail or title or f"HTTP {response.status_code}")
    message = body.get("Message") or body.get("Detail") or f"HTTP {response.status_code}"
    return (str(body["Type"]) if body.get("Type") else None), str(message)
