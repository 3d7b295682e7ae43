"""Zoho Books.

API docs checked (search tool, pages corpus): zoho.com/books/api/v3/invoices (create with
``customer_id`` and ``line_items``; ``invoice_number`` "can be a custom number (requires
``ignore_auto_number_generation=true`` query parameter) ... Must be unique within the
organization"; list filters; "Email an invoice", "Void an invoice", "Delete an invoice"),
/books/api/v3/contacts (``contact_name`` "Display Name", ``company_name``, ``contact_type``
customer), /books/api/v3/taxes ("Create a tax": ``POST /settings/taxes`` with ``tax_name``,
``tax_percentage``, ``tax_type`` tax | compound_tax, scope ``ZohoBooks.settings.CREATE``),
/books/api/v3/credit-notes ("Create a credit note", "Credit to an invoice", "List all Credit
Notes"), /books/api/v3/errors (HTTP 400/401/404/405/429/500 with a body
``{"code": <non-zero>, "message": ...}``, ``code`` 0 on success), and the Zoho Books
"Update or Upsert Records Using Unique Custom Fields" community post (help.zoho.com). The
``POST /invoices/{invoice_id}/email`` shape (``to_mail_ids`` array, ``subject``, ``body``) was
cross-checked on docs.onehazel.com's generated reference of Zoho's OpenAPI document.

Base URL: the connection's ``api_domain`` (``tokens.value("api_domain")``), which Zoho's token
answer names for the login's data centre (``https://www.zohoapis.com``, ``.eu``, ``.in``,
``.com.au``, ``.jp``, ``zohoapis.ca``, ``.sa``; zoho.com/books/api/v3/oauth "Step 3: Generate
Access and Refresh Token": "api_domain") and ``autoinvoice connect`` stores; without one (a
token given directly), ``settings.base_url``, else ``https://www.zohoapis.com``; a host root gets
``/books/v3`` appended. Every call carries the ``organization_id`` query parameter
(``tokens.value("organization_id")``, learned at connect from ``GET {api_domain}/books/v3/
organizations``, else the default organisation from that call).

Scopes (``connectors.oauth.ZOHO_BOOKS_SCOPES``): ``ZohoBooks.<module>.<operation>`` per call as
each v3 page states it (GET = READ, POST = CREATE, PUT = UPDATE, DELETE = DELETE): contacts
CREATE/READ, settings CREATE/READ (taxes are created with ``POST /settings/taxes``), invoices
CREATE/READ/DELETE (e-mail and void are POSTs), creditnotes CREATE/READ. A call without its
scope is answered 401 code 57 "You are not authorized to perform this operation".

Auth: Zoho OAuth 2.0 (authorization code, ``access_type=offline``); the access token from
``settings.tokens`` goes in ``Authorization: Zoho-oauthtoken {token}`` (not ``Bearer``); a 401
refreshes it once through ``tokens.refreshed(rejected)``, a second 401 is an ``AuthError``.

Bodies: Zoho's API accepts the JSON document as the form parameter ``JSONString`` (the form its
v3 examples used for years; the current pages show a raw JSON body). We send ``JSONString``
because it lets us write amounts, rates and quantities as exact JSON numbers from ``Decimal``
(never through float); responses are parsed with ``Decimal`` for every number.

Flow: contact (``GET /contacts?email=``, then ``?contact_name=`` because display names are
unique in Zoho, else ``POST /contacts`` with our customer id in its ``notes``: Zoho contacts
have no searchable external-reference field unless the organisation configures a unique custom
field) -> taxes (``GET /settings/taxes`` once per connector, one ``tax`` per percentage, created
with ``POST /settings/taxes`` when missing) -> ``POST /invoices?ignore_auto_number_generation=
true`` with our ``invoice_number``, ``reference_number`` = "PO / job id" (shown as the
reference on Zoho's PDF), ``date``, ``due_date``, ``line_items[{name, description, rate,
quantity, unit, tax_id}]`` (covered lines listed at rate 0 with their coverage text) and
``notes`` (legal notes such as reverse charge first, then job and PO). The total Zoho computed
comes back in the create response and is returned as ``RemoteInvoice.total``.

Currency: an organisation has one country and base currency (``GET /organizations``:
``country_code``, ``currency_code``) and an invoice is created in its customer's currency
(zoho.com/books/api/v3/invoices: ``currency_code`` "The currency code in which the invoice is
created"; a contact's currency defaults to the base currency): every total is read with the
invoice's own ``currency_code``, so a German organisation's invoice is EUR and a UK one's GBP.

VAT (``vat``): in the UK edition (``vat_treatment``) and the EU edition (``tax_treatment``) a
contact carries its customer's treatment and an invoice or credit note its tax outcome's, with
the customer's VAT id as ``vat_reg_no``; 0 % lines go on the organisation's Zero Rate (exempt:
its exempt tax if it has one; out of scope: no tax); ``platform.tax_rates`` (outcome -> tax id
or name) and ``platform.tax_treatments`` (outcome -> treatment) come first and are checked
against the organisation by ``check_setup`` (at ``connect`` and when ``worker``/``serve``
start). Sources and what is unconfirmed: ``vat`` and docs/platforms.md.

Delivery: ``POST /invoices/{id}/email`` (``delivers_itself = True``), which also moves a draft
to ``sent``; a sent invoice is not e-mailed twice.

Idempotency: Zoho documents none for creates. Our ``invoice_number`` is unique per organisation,
so ``create_invoice`` first searches ``GET /invoices?invoice_number=`` (and Zoho itself refuses
a duplicate number with code 1001, answered by searching again); ``find_by_reference`` does the
same search. Creates are never replayed blindly by the HTTP layer (no key: a lost response
surfaces as ``TransientError`` and the retry searches first).

Corrections: ``void_invoice`` deletes a draft (``DELETE /invoices/{id}``) and voids anything
else unpaid (``POST /invoices/{id}/status/void``); paid or partly paid is a ``PermanentError``.
``credit_invoice`` finds our credit note by number (``GET /creditnotes?creditnote_number=``)
or creates it (``POST /creditnotes?ignore_auto_number_generation=true``, the credited lines,
``reference_number`` = credited invoice number), then applies what the invoice still owes
(``POST /creditnotes/{id}/invoices`` with ``invoices[{invoice_id, amount_applied}]``); a
paid invoice's note stays open for the operator to refund.

Rate limits: 100 requests per minute per organisation plus a daily cap by plan (1,000 Free to
about 10,000) and a concurrency cap (3rd-party: Codat's Zoho Books limits page, and
PLATFORMS.md); we keep each tenant under 100 in any minute (a bucket of 10 refilled at 1.5/s)
and 5 requests in flight. 429 is retried by the HTTP layer (``Retry-After`` honoured); the
daily cap shows up as 429 too.

Errors: ``{"code", "message"}`` mapped in ``bodies._map_error``, the only place they are read (Zoho
documents no request-id header; ``X-Request-Id`` is kept when present).

Sandbox: ``autoinvoice.sandbox.zoho_books`` (``mock_transport`` in tests, ``asgi_app`` under
uvicorn), with its own OAuth2 server.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal

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
)
from autoinvoice.connectors.http import HttpClient, limiter_for, slots_for
from autoinvoice.connectors.zoho_books import vat
from autoinvoice.connectors.zoho_books.bodies import (
    DEFAULT_BASE_URL,
    PLATFORM,
    Obj,
    _map_error,
    api_base,
    body_of,
    contact_body,
    credit_note_body,
    dumps,
    email_body,
    invoice_body,
    line_body,
    money,
    reference,
    remote_invoice,
)
from autoinvoice.connectors.zoho_books.taxes import OrganisationTaxes
from autoinvoice.domain.invoice import Invoice, InvoiceLine
from autoinvoice.domain.job import Customer

PER_MINUTE, BURST, CONCURRENT = 100, 10, 5
DUPLICATE_NUMBER = 1001  # "Invoice Number already exist"
__all__ = ["DEFAULT_BASE_URL", "PLATFORM", "ZohoBooksConnector", "api_base", "dumps"]


class ZohoBooksConnector:
    platform = PLATFORM
    delivers_itself = True

    def __init__(self, settings: ConnectorSettings) -> None:
        self._customer_lock = threading.Lock()
        if settings.tokens is None:
            raise AuthError("zoho_books needs an OAuth2 connection (autoinvoice connect "
                            "zoho_books): no token source configured", platform=PLATFORM)
        self._tokens: TokenSource = settings.tokens
        self._org: str | None = settings.tokens.value("organization_id")
        self._taxes = OrganisationTaxes(lambda: self._get("/settings/taxes")["taxes"],
                                        lambda body: self._post("/settings/taxes", body)["tax"],
                                        settings.options.get("tax_rates") or {})
        self._seller_country: str | None = None  # the last document's seller's country
        self._org_obj: Obj | None = None
        self._treatment_map: Mapping[str, str] = settings.options.get("tax_treatments") or {}
        rate = settings.rate_limit_per_second or (PER_MINUTE - BURST) / 60
        key = f"{settings.tenant}:{PLATFORM}"
        self._http = HttpClient(
            platform=PLATFORM,
            base_url=api_base(settings.tokens.value("api_domain") or settings.base_url),
            default_headers={"Accept": "application/json"},
            error_mapper=_map_error,
            transport=settings.transport,
            recorder=settings.recorder,
            limiter=limiter_for(key, rate, BURST, timer=settings.timer),
            slots=slots_for(key, CONCURRENT),
            timer=settings.timer,
        )

    def close(self) -> None:
        self._http.close()

    # -- the Connector protocol ---------------------------------------------------------------

    def check_auth(self) -> None:
        self._organization_id()
        self._get("/settings/taxes")

    def ensure_customer(self, customer: Customer, keys: IdempotencyKeys) -> RemoteCustomer:
        # Workers of one process share this connector: one look-up-then-create at a time, so
        # two jobs of one new customer do not both create it.
        with self._customer_lock:
            found = self._find_contact(customer)
            if found is not None:
                return RemoteCustomer(found)
            try:
                created = self._post("/contacts", contact_body(customer, self._vat_fields(
                    vat.customer_treatment(*self._edition(), customer), customer)))["contact"]
            except ConnectorError:  # another process created it meanwhile?
                again = self._find_contact(customer)
                if again is not None:
                    return RemoteCustomer(again)
                raise
            return RemoteCustomer(str(created["contact_id"]))

    def create_invoice(self, invoice: Invoice, customer: RemoteCustomer,
                       keys: IdempotencyKeys) -> RemoteInvoice:
        found = self.find_by_reference(invoice)  # a lost response or a crash came first
        if found is not None:
            return found
        self._seller_country = invoice.seller.address.country
        self._check_currency(invoice, customer.id)
        lines = [line_body(line, self._tax_id(line)) for line in invoice.lines]
        body = {**invoice_body(invoice, customer.id, lines), **self._document_vat(invoice)}
        try:
            created = self._post("/invoices", body, {"ignore_auto_number_generation": "true"})
        except ConnectorError as exc:
            again = self.find_by_reference(invoice) if exc.code == str(DUPLICATE_NUMBER) else None
            if again is None:
                raise
            return again
        return remote_invoice(created["invoice"])

    def send_invoice(self, remote: RemoteInvoice, keys: IdempotencyKeys) -> RemoteInvoice:
        current = self._invoice(remote.id)  # ``remote`` may be stale
        status = current["status"]
        if status == "void":
            raise PermanentError(f"invoice {remote.id} is void on Zoho Books",
                                 platform=PLATFORM, code="invoice_void")
        if status == "draft":
            contact = self._get(f"/contacts/{current['customer_id']}")["contact"]
            self._post(f"/invoices/{remote.id}/email", email_body(current, contact))
            current = self._invoice(remote.id)
        return remote_invoice(current)

    def fetch_status(self, remote_id: str) -> RemoteStatus:
        obj = self._invoice(remote_id)
        currency = obj["currency_code"]
        paid_on = obj.get("last_payment_date") if obj["status"] == "paid" else None
        return RemoteStatus(
            status=obj["status"],
            total=money(obj["total"], currency),
            amount_paid=money(obj.get("payment_made") or 0, currency),
            balance=money(obj.get("balance") or 0, currency),
            paid_at=datetime.combine(date.fromisoformat(paid_on), datetime.min.time(), UTC)
            if paid_on else None,
        )

    def find_by_reference(self, invoice: Invoice) -> RemoteInvoice | None:
        params = ({"invoice_number": invoice.number} if invoice.number
                  else {"reference_number": reference(invoice)})
        listed = self._get("/invoices", params)["invoices"]
        ours = [obj for obj in listed if invoice.job_id in str(obj.get("reference_number"))]
        if not ours:
            return None
        live = [obj for obj in ours if obj["status"] != "void"]
        return remote_invoice(self._invoice(str((live or ours)[0]["invoice_id"])))

    def void_invoice(self, remote_id: str, keys: IdempotencyKeys) -> str:
        try:
            status = self._invoice(remote_id)["status"]
        except NotFound:  # a deleted draft is gone
            return "already_void"
        if status == "void":
            return "already_void"
        if status == "draft":
            self._request("DELETE", f"/invoices/{remote_id}")
            return "deleted"
        if status in ("paid", "partially_paid"):
            raise PermanentError(f"invoice {remote_id} is {status} on Zoho Books and cannot "
                                 "be voided; credit it instead", platform=PLATFORM,
                                 code=f"invoice_{status}")
        self._post(f"/invoices/{remote_id}/status/void", None)
        return "voided"

    def credit_invoice(self, remote_id: str, credit: Invoice, keys: IdempotencyKeys
                       ) -> RemoteCreditNote:
        invoice = self._invoice(remote_id)
        if invoice["status"] in ("draft", "void"):
            raise PermanentError(f"invoice {remote_id} is {invoice['status']} on Zoho Books; "
                                 "only delivered invoices are credited", platform=PLATFORM,
                                 code=f"invoice_{invoice['status']}")
        note = self._find_credit_note(credit)
        if note is None:
            self._seller_country = credit.seller.address.country
            lines = [line_body(line, self._tax_id(line)) for line in credit.lines]
            body = {**credit_note_body(credit, str(invoice["customer_id"]), lines),
                    **self._document_vat(credit)}
            note = self._post("/creditnotes", body,
                              {"ignore_auto_number_generation": "true"})["creditnote"]
        self._apply(note, invoice)
        return RemoteCreditNote(id=str(note["creditnote_id"]),
                                total=money(note["total"], note["currency_code"]),
                                number=note.get("creditnote_number"))

    # -- helpers ------------------------------------------------------------------------------

    def _apply(self, note: Obj, invoice: Obj) -> None:
        """Apply the note to what the invoice still owes (nothing when paid or applied)."""
        fresh = self._get(f"/creditnotes/{note['creditnote_id']}")["creditnote"]
        amount = min(Decimal(fresh.get("balance") or 0), Decimal(invoice.get("balance") or 0))
        if amount > 0:
            self._post(f"/creditnotes/{note['creditnote_id']}/invoices",
                       {"invoices": [{"invoice_id": str(invoice["invoice_id"]),
                                      "amount_applied": amount}]})

    def _find_credit_note(self, credit: Invoice) -> Obj | None:
        if not credit.number:
            return None
        listed = self._get("/creditnotes", {"creditnote_number": credit.number})["creditnotes"]
        live = [n for n in listed if n.get("status") != "void"
                and n.get("creditnote_number") == credit.number]
        return live[0] if live else None

    def _find_contact(self, customer: Customer) -> str | None:
        if customer.email:
            listed = self._get("/contacts", {"email": customer.email})["contacts"]
            hit = _pick_customer(listed, customer)
            if hit is not None:
                return hit
        listed = self._get("/contacts", {"contact_name": customer.name})["contacts"]
        same = [c for c in listed if c.get("contact_name") == customer.name]
        return _pick_customer(same, customer)

    def check_setup(self) -> list[str]:
        """What in ``platform.tax_rates`` / ``platform.tax_treatments`` the organisation
        lacks (at connect and at start): tax ids or names it does not have, treatments its
        edition does not know."""
        edition, country = self._edition()
        return self._taxes.problems() + vat.treatment_problems(edition, country,
                                                               self._treatment_map)

    def _check_currency(self, invoice: Invoice, contact_id: str) -> None:
        """Zoho creates the invoice in the contact's currency (by default the organisation's
        base currency): one in another currency is refused before it is created, saying so,
        rather than created in the wrong currency."""
        base = self._organization().get("currency_code")
        if not base or base == invoice.currency:
            return
        contact = self._get(f"/contacts/{contact_id}")["contact"]
        if contact.get("currency_code", base) != invoice.currency:
            raise PermanentError(
                f"invoice {invoice.number or invoice.job_id} is in {invoice.currency}, but this "
                f"Zoho Books organisation keeps its books in {base} and the customer "
                f"{contact.get('contact_name')!r} is billed in "
                f"{contact.get('currency_code', base)}: connect the organisation of the "
                f"tenant's currency, or set the customer's currency in Zoho Books",
                platform=PLATFORM, code="currency_mismatch")

    def _edition(self, seller_country: str | None = None) -> tuple[vat.Edition, str]:
        """The organisation's edition and country (``country_code`` of ``GET
        /organizations``; where Zoho leaves it out, the seller's country on the invoice)."""
        country = str(self._organization().get("country_code") or seller_country
                      or self._seller_country or "")
        return vat.edition_of(country), country.upper()

    def _vat_fields(self, treatment: str | None, customer: Customer,
                    seller_country: str | None = None) -> Obj:
        edition, _ = self._edition(seller_country)
        fields: Obj = {edition.field: treatment} if edition.field and treatment else {}
        if customer.vat_id:
            fields["vat_reg_no"] = customer.vat_id
        return fields

    def _document_vat(self, document: Invoice) -> Obj:
        """The document's VAT treatment (its outcome's) and the customer's VAT number."""
        edition, country = self._edition(document.seller.address.country)
        treatment = vat.treatment_for(edition, country, document.customer, document.lines,
                                      self._treatment_map)
        return self._vat_fields(treatment, document.customer, document.seller.address.country)

    def _tax_id(self, line: InvoiceLine) -> str | None:
        return self._taxes.for_line(line, self._edition()[0].field is not None)

    def _invoice(self, remote_id: str) -> Obj:
        found: Obj = self._get(f"/invoices/{remote_id}")["invoice"]
        return found

    def _organization_id(self) -> str:
        if self._org is None:
            self._org = str(self._organization()["organization_id"])
        return self._org

    def _organization(self) -> Obj:
        """Our organisation as ``GET /organizations`` lists it (its ``country_code`` and base
        ``currency_code``): the connected one, else the login's default."""
        if self._org_obj is None:
            orgs = self._request("GET", "/organizations", org=False)["organizations"]
            ours = [o for o in orgs if str(o.get("organization_id")) == self._org] or \
                [o for o in orgs if o.get("is_default_org")] or orgs
            if not ours:
                raise AuthError("this Zoho login has no Books organisation", platform=PLATFORM)
            self._org_obj = ours[0]
        return self._org_obj

    # -- plumbing -----------------------------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> Obj:
        return self._request("GET", path, params=params)

    def _post(self, path: str, body: Obj | None, params: Mapping[str, str] | None = None
              ) -> Obj:
        form = [("JSONString", dumps(body))] if body is not None else None
        return self._request("POST", path, params=params, form=form)

    def _request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                 form: list[tuple[str, str]] | None = None, org: bool = True) -> Obj:
        query = {**({"organization_id": self._organization_id()} if org else {}),
                 **(params or {})}
        token = self._tokens.access_token()
        try:
            response = self._send(method, path, query, form, token)
        except AuthError as exc:
            if exc.status != 401:
                raise
            response = self._send(method, path, query, form, self._tokens.refreshed(token))
        return body_of(response)

    def _send(self, method: str, path: str, query: Mapping[str, str],
              form: list[tuple[str, str]] | None, token: str) -> httpx.Response:
        return self._http.request(method, path, params=query, form=form,
                                  headers={"Authorization": f"Zoho-oauthtoken {token}"})


def _pick_customer(contacts: list[Obj], customer: Customer) -> str | None:
    customers = [c for c in contacts if c.get("contact_type", "customer") == "customer"
                 and c.get("status", "active") == "active"]
    named = [c for c in customers if c.get("contact_name") == customer.name]
    chosen = (named or customers)[:1]
    return str(chosen[0]["contact_id"]) if chosen else None
