"""QuickBooks Online Accounting API (v3, REST/JSON).

Docs checked (search tool): developer.intuit.com .../docs/api/accounting/all-entities/invoice
(create, read, "send an invoice": ``POST /v3/company/{realmId}/invoice/{invoiceId}/send
?sendTo=``, body ``application/octet-stream``; void: ``POST /invoice?operation=void`` with
``Id`` and ``SyncToken``), .../customer, .../creditmemo (``POST /creditmemo``,
``/creditmemo/{id}/send``), .../item, .../payment; the REST quick reference (URI formats:
``GET …/query?query=selectStmt``); "Manage sales tax for US locales" (lines are TAX or NON,
"the US tax model can have just a single tax code for the entire transaction", set in
``TxnTaxDetail.TxnTaxCodeRef``; QuickBooks computes ``TxnTaxDetail.TotalTax``); the Intuit
blog "Request ID update" (2015-04-06: ``requestid`` query parameter, unique per company, at
most 50 characters, a repeated id gets the original response instead of a second create) and
"Changes to our accounting API" (2025-01-21: minor versions 1-74 are ignored from 1 Aug 2025,
75 is the default: we pin ``minorversion=75``); ej2/python-quickbooks (``client.py``,
``mixins.py``: Fault ``Error[{Message, Detail, code, element}]``, code 610 object not found,
send as ``application/octet-stream``, void body). Payload element names and types are
validated in the tests against Intuit's XSD (``shared/vendor-specs/quickbooks/xsd``,
Finance.xsd ``Invoice``, ``Customer``, ``Item``, ``CreditMemo``).

Host ``https://quickbooks.api.intuit.com`` (``sandbox-quickbooks.api.intuit.com`` for
Intuit's sandbox companies, or our stand-in ``autoinvoice.sandbox.quickbooks``:
``settings.base_url``); every path is ``/v3/company/{realmId}/…``, the realm id comes from
the connection (``tokens.value("realm_id")``).

Auth: OAuth 2.0 bearer access token from ``settings.tokens`` (one refresh after a 401, see
``connectors.http.bearer_request``); tokens never appear in logs or recorded requests. The
Accounting API needs the ``com.intuit.quickbooks.accounting`` scope (the only one ``connect``
asks for; ``com.intuit.quickbooks.payment`` is for the Payments API, which we do not use); a
token without it gets 403 ``AuthorizationFailed`` 003100 "The access token does not have
sufficient scope" (IntuitDeveloper/QBOConceptsTutorial-PHP#13), an ``AuthError``. The realm id
is the ``realmId`` query parameter of the consent redirect (``connectors.oauth``).

Flow: customer -> items -> tax code -> ``POST /invoice`` -> ``POST /invoice/{id}/send``.
- Customer: QuickBooks has no external-id field on Customer, and ``DisplayName`` is one name
  space shared with vendors and employees. We keep our customer id in ``Notes``
  (``autoinvoice-customer-id: C-1``; Notes is not filterable) and find candidates with two
  queries (``DisplayName IN (name, "name [C-1]")`` and ``PrimaryEmailAddr = e-mail``): the one
  whose Notes carry our id wins, else an active one with the same e-mail and no other id of
  ours. Otherwise it is created; a "Duplicate Name Exists" (6240: a customer, vendor or
  employee has the name) makes us create it again as "name [C-1]".
- Items: every line needs an ``ItemRef``. One item per line kind (Labor, Travel, Parts,
  Fees, Mileage, Service), found by Name or created (Service, or NonInventory for Parts, on
  the first Income account); cached per connector (i.e. per tenant in a worker process).
- Tax (``tax.SalesTax``): lines TAX or NON; on a company with automated sales tax (every US
  company since Nov 2017) our tax goes as an explicit ``TxnTaxDetail.TotalTax`` AST honours,
  with the job site as ``ShipAddr``; on the manual US model, a tax code with our single rate.
  Intuit's words and the sources are in ``tax``.
- Invoice: ``DocNumber`` our number (21 chars max), ``PrivateNote`` our reference (job id,
  revision, number, PO), ``CustomField`` the PO when the company has a sales-form custom field
  named like "PO" (``GET /preferences``), else the PO is in ``CustomerMemo``, which also
  carries legal notes (reverse charge, exemptions); ``BillEmail``, ``TxnDate``, ``DueDate``.
  Covered lines are sent with unit price 0 and the coverage in the description. The total is
  the one QuickBooks computed (``TotalAmt`` of the create response).
- Amounts, quantities and rates are sent as JSON numbers with their exact digits (never floats;
  Finance.xsd and SalesTax.xsd type ``Amount``, ``Qty``, ``UnitPrice``, ``TotalTax``,
  ``TotalAmt``, ``RateValue`` as ``xs:decimal``; Intuit's own JSON examples write them as
  numbers) and read with ``Decimal``. Whether QuickBooks would coerce a numeric string is
  undocumented: the stand-in refuses one.

Idempotency: every POST carries ``requestid`` = our step key (``keys.for_step``, <= 50 chars,
else a digest), so a retry after a lost response gets the original answer. The pipeline's
``find_by_reference`` (after our key may have been forgotten) queries
``select * from Invoice where DocNumber = '…'``.

Corrections: ``void_invoice`` voids (``operation=void``) an unpaid invoice (QuickBooks has no
drafts); a paid or part-paid one raises ``PermanentError`` (credit it instead).
``credit_invoice`` creates a CreditMemo (found first by its DocNumber) with the credited
lines and tax code, e-mails it (``/creditmemo/{id}/send``) and, when the invoice still has a
balance, applies it with a zero-amount Payment linking both (Intuit's documented way to apply
a credit memo).

Rate limits (per realm): 500 requests per minute and 10 concurrent requests; we keep every
tenant under 500/min (bursts of at most 10) and 10 in flight with shared limiters. 429
(``ThrottleExceeded``, 003001) is retried by the HTTP layer, honouring ``Retry-After``.

Errors: ``{"Fault": {"Error": [{Message, Detail, code, element}], "type"}}`` (401 bodies use
lower-case ``fault``/``error``) plus the ``intuit_tid`` request id header, mapped in
``_map_error`` only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
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
    TransientError,
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
from autoinvoice.connectors.quickbooks.payloads import (
    ITEM_NAMES,
    PLATFORM,
    Obj,
    customer_body,
    display_names,
    document_body,
    is_ours,
    item_body,
    line_body,
    marked_elsewhere,
    money,
    po_custom_field,
    quoted,
    request_id,
)
from autoinvoice.connectors.quickbooks.tax import SalesTax
from autoinvoice.domain.invoice import Invoice
from autoinvoice.domain.job import Customer
from autoinvoice.domain.money import Money

DEFAULT_BASE_URL = "https://quickbooks.api.intuit.com"
MINOR_VERSION = "75"
REQUESTS_PER_MINUTE = 500
CONCURRENT = 10
DUPLICATE_NAME = "6240"
__all__ = ["MINOR_VERSION", "QuickBooksConnector", "request_id"]


class QuickBooksConnector:
    platform = PLATFORM
    delivers_itself = True

    def __init__(self, settings: ConnectorSettings) -> None:
        if settings.tokens is None:
            raise AuthError("QuickBooks needs an OAuth2 connection: run `autoinvoice connect "
                            f"quickbooks --tenant {settings.tenant}`", platform=PLATFORM)
        realm = settings.tokens.value("realm_id")
        if not realm:
            raise AuthError("the QuickBooks connection has no realm id (company id): connect "
                            "again", platform=PLATFORM)
        self._tokens: TokenSource = settings.tokens
        self._company = f"/v3/company/{realm}"
        self._currency = settings.currency
        self._items: dict[str, Obj] = {}
        self._items_loaded = False
        self._income_account: str | None = None
        self._preferences: Obj | None = None
        self._country: str | None = None
        self._tax = SalesTax(self._query, self._post, self._prefs, self._company_country)
        limit_key = f"{settings.tenant}:{PLATFORM}:{realm}"
        rate = settings.rate_limit_per_second or REQUESTS_PER_MINUTE / 60
        self._http = HttpClient(
            platform=PLATFORM,
            base_url=settings.base_url or DEFAULT_BASE_URL,
            default_headers={"Accept": "application/json"},
            error_mapper=_map_error,
            transport=settings.transport,
            recorder=settings.recorder,
            limiter=limiter_for(limit_key, rate, CONCURRENT, timer=settings.timer),
            slots=slots_for(limit_key, CONCURRENT),
            timer=settings.timer,
            request_id_header="intuit_tid",
            exact_decimals=True,
        )

    def close(self) -> None:
        self._http.close()

    # -- the Connector protocol ---------------------------------------------------------------

    def check_auth(self) -> None:
        self._read_company_info()

    def _company_country(self) -> str:
        return self._country or self._read_company_info()

    def _read_company_info(self) -> str:
        info = self._get(f"/companyinfo/{self._company.rsplit('/', 1)[1]}")
        self._country = str((info.get("CompanyInfo") or {}).get("Country") or "US")
        return self._country

    def ensure_customer(self, customer: Customer, keys: IdempotencyKeys) -> RemoteCustomer:
        found = self._find_customer(customer)
        if found is not None:
            return RemoteCustomer(found)
        for name, step in zip(display_names(customer), ("customer", "customer-alt"),
                              strict=True):
            try:
                created = self._post("/customer", customer_body(customer, name),
                                     keys.for_step(step))
            except ValidationRejected as exc:
                if exc.code != DUPLICATE_NAME:
                    raise
                # Taken: by our own customer, just created by another worker (use it), or by
                # someone else's customer, vendor or employee (try the disambiguated name).
                found = self._find_customer(customer)
                if found is not None:
                    return RemoteCustomer(found)
                if step == "customer-alt":
                    raise
                continue
            return RemoteCustomer(str(created["Customer"]["Id"]))
        raise AssertionError("unreachable")  # the loop returns or raises

    def create_invoice(self, invoice: Invoice, customer: RemoteCustomer,
                       keys: IdempotencyKeys) -> RemoteInvoice:
        body = self._document(invoice, customer.id, keys)
        created = self._post("/invoice", body, keys.for_step("create"))["Invoice"]
        return self._remote(created)

    def send_invoice(self, remote: RemoteInvoice, keys: IdempotencyKeys) -> RemoteInvoice:
        current = self._get(f"/invoice/{remote.id}")["Invoice"]
        if _is_void(current):
            raise PermanentError(f"invoice {remote.id} is void on QuickBooks",
                                 platform=PLATFORM, code="invoice_void")
        if current.get("EmailStatus") == "EmailSent":
            return self._remote(current)
        address = (current.get("BillEmail") or {}).get("Address")
        if not address:
            raise PermanentError(f"invoice {remote.id} has no BillEmail: QuickBooks cannot "
                                 "e-mail it", platform=PLATFORM, code="no_bill_email")
        sent = self._post(f"/invoice/{remote.id}/send", None, keys.for_step("send"),
                          params={"sendTo": address})
        return self._remote(sent["Invoice"])

    def fetch_status(self, remote_id: str) -> RemoteStatus:
        obj = self._get(f"/invoice/{remote_id}")["Invoice"]
        currency = _currency(obj, self._currency)
        total, balance = _money(obj.get("TotalAmt"), currency), _money(obj.get("Balance"),
                                                                        currency)
        paid = total - balance
        return RemoteStatus(status=_status(obj, total, balance), total=total, amount_paid=paid,
                            balance=balance,
                            paid_at=self._paid_at(obj) if balance.is_zero() and not
                            paid.is_zero() else None)

    def find_by_reference(self, invoice: Invoice) -> RemoteInvoice | None:
        if not invoice.number:
            return None
        found = self._query("Invoice", f"DocNumber = {quoted(invoice.number)}")
        live = [obj for obj in found if not _is_void(obj)]
        return self._remote((live or found)[0]) if found else None

    def void_invoice(self, remote_id: str, keys: IdempotencyKeys) -> str:
        try:
            current = self._get(f"/invoice/{remote_id}")["Invoice"]
        except NotFound:
            return "already_void"
        if _is_void(current):
            return "already_void"
        currency = _currency(current, self._currency)
        if _money(current.get("Balance"), currency) != _money(current.get("TotalAmt"),
                                                              currency):
            raise PermanentError(f"invoice {remote_id} has payments applied on QuickBooks and "
                                 "cannot be voided; credit it instead", platform=PLATFORM,
                                 code="invoice_paid")
        self._post("/invoice", {"Id": current["Id"], "SyncToken": current["SyncToken"]},
                   keys.for_step("void"), params={"operation": "void"})
        return "voided"

    def credit_invoice(self, remote_id: str, credit: Invoice, keys: IdempotencyKeys
                       ) -> RemoteCreditNote:
        if credit.number:
            found = self._query("CreditMemo", f"DocNumber = {quoted(credit.number)}")
            if found:
                return _credit_note(found[0], self._currency)
        invoice = self._get(f"/invoice/{remote_id}")["Invoice"]
        if _is_void(invoice):
            raise PermanentError(f"invoice {remote_id} is void on QuickBooks; nothing to "
                                 "credit", platform=PLATFORM, code="invoice_void")
        customer_id = str(invoice["CustomerRef"]["value"])
        body = self._document(credit, customer_id, keys)
        memo = self._post("/creditmemo", body, keys.for_step("credit-note"))["CreditMemo"]
        self._apply_credit(invoice, memo, keys)
        if (memo.get("BillEmail") or {}).get("Address"):
            self._post(f"/creditmemo/{memo['Id']}/send", None, keys.for_step("credit-send"),
                       params={"sendTo": memo["BillEmail"]["Address"]})
        return _credit_note(memo, self._currency)

    # -- documents ----------------------------------------------------------------------------

    def _document(self, document: Invoice, customer_id: str, keys: IdempotencyKeys) -> Obj:
        service_date = document.supply_date.isoformat() if document.supply_date else None
        tax = self._tax.detail(document, keys)
        lines = [line_body(line, n, self._item(ITEM_NAMES[line.kind], keys), service_date)
                 for n, line in enumerate(document.lines, start=1)]
        return document_body(document, customer_id, lines, tax, self._po())

    def _apply_credit(self, invoice: Obj, memo: Obj, keys: IdempotencyKeys) -> None:
        """A zero-amount Payment linking the credit memo to the invoice it credits."""
        currency = _currency(invoice, self._currency)
        amount = min(_money(invoice.get("Balance"), currency),
                     _money(memo.get("TotalAmt"), currency))
        if amount.amount <= 0:
            return  # paid already: the credit stays on the customer's account
        text = money(amount.amount)
        self._post("/payment", {
            "CustomerRef": invoice["CustomerRef"], "TotalAmt": money(Decimal(0)),
            "PrivateNote": f"autoinvoice: credit memo {memo.get('DocNumber', memo['Id'])} "
                           f"applied to invoice {invoice.get('DocNumber', invoice['Id'])}",
            "Line": [
                {"Amount": text, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]},
                {"Amount": text, "LinkedTxn": [{"TxnId": memo["Id"], "TxnType": "CreditMemo"}]},
            ]}, keys.for_step("credit-apply"))

    # -- customers, items, tax codes, preferences ----------------------------------------------

    def _find_customer(self, customer: Customer) -> str | None:
        names = ", ".join(quoted(name) for name in display_names(customer))
        candidates = self._query("Customer", f"DisplayName IN ({names})")
        if customer.email:
            candidates += self._query("Customer",
                                      f"PrimaryEmailAddr = {quoted(customer.email)}")
        ours = [c for c in candidates if is_ours(c, customer.id)]
        if ours:
            return str(ours[0]["Id"])
        email = customer.email.lower()
        same_email = [c for c in candidates if email and not marked_elsewhere(c)
                      and str((c.get("PrimaryEmailAddr") or {}).get("Address", "")).lower()
                      == email]
        return str(same_email[0]["Id"]) if same_email else None

    def _item(self, name: str, keys: IdempotencyKeys) -> Obj:
        if not self._items_loaded:
            self._items_loaded = True
            listed = ", ".join(quoted(n) for n in ITEM_NAMES.values())
            for obj in self._query("Item", f"Name IN ({listed})"):
                self._items.setdefault(str(obj["Name"]), obj)
        if name not in self._items:
            self._items[name] = self._create_item(name, keys)
        return self._items[name]

    def _create_item(self, name: str, keys: IdempotencyKeys) -> Obj:
        if self._income_account is None:
            accounts = self._query("Account", "AccountType = 'Income'")
            if not accounts:
                raise PermanentError("the QuickBooks company has no Income account for our "
                                     "service items", platform=PLATFORM,
                                     code="no_income_account")
            chosen = next((a for a in accounts if a.get("Name") == "Services"), accounts[0])
            self._income_account = str(chosen["Id"])
        try:
            item: Obj = self._post("/item", item_body(name, self._income_account),
                                   keys.for_step(f"item-{name.lower()}"))["Item"]
        except ValidationRejected as exc:  # another worker created it meanwhile
            if exc.code != DUPLICATE_NAME:
                raise
            return self._query("Item", f"Name = {quoted(name)}")[0]
        return item

    def _prefs(self) -> Obj:
        if self._preferences is None:
            self._preferences = self._get("/preferences").get("Preferences") or {}
        return self._preferences

    def _po(self) -> Obj | None:
        return po_custom_field(self._prefs())

    def _paid_at(self, invoice: Obj) -> datetime | None:
        stamps: list[datetime] = []
        for linked in invoice.get("LinkedTxn") or []:
            if linked.get("TxnType") != "Payment":
                continue
            payment = self._get(f"/payment/{linked['TxnId']}")["Payment"]
            stamps.append(_timestamp(payment))
        return max(stamps) if stamps else None

    # -- plumbing -----------------------------------------------------------------------------

    def _query(self, entity: str, where: str | None = None) -> list[Obj]:
        sql = f"select * from {entity}" + (f" where {where}" if where else "")
        response = self._get("/query", {"query": sql + " maxresults 1000"})
        found: list[Obj] = (response.get("QueryResponse") or {}).get(entity) or []
        return found

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Obj:
        return _json(bearer_request(self._http, self._tokens, "GET", self._company + path,
                                    params={**(params or {}), "minorversion": MINOR_VERSION}))

    def _post(self, path: str, body: Obj | None, key: str,
              params: Mapping[str, str] | None = None) -> Obj:
        query = {**(params or {}), "requestid": request_id(key), "minorversion": MINOR_VERSION}
        if body is None:  # the send actions take an empty octet-stream body
            response = bearer_request(self._http, self._tokens, "POST", self._company + path,
                                      params=query, replay_safe=True,
                                      headers={"Content-Type": "application/octet-stream"})
        else:
            response = bearer_request(self._http, self._tokens, "POST", self._company + path,
                                      params=query, json=body, replay_safe=True)
        return _json(response)

    def _remote(self, obj: Obj) -> RemoteInvoice:
        currency = _currency(obj, self._currency)
        total = _money(obj.get("TotalAmt"), currency)
        balance = _money(obj.get("Balance", obj.get("TotalAmt")), currency)
        return RemoteInvoice(id=str(obj["Id"]), total=total, status=_status(obj, total, balance),
                             number=obj.get("DocNumber"), url=obj.get("InvoiceLink") or None)


# ---------------------------------------------------------------------------------------------
# Reading QuickBooks objects


def _json(response: httpx.Response) -> Obj:
    try:
        body = json.loads(response.content, parse_float=Decimal)
    except ValueError:
        raise PermanentError(f"QuickBooks answered HTTP {response.status_code} with a body "
                             "that is not JSON", platform=PLATFORM,
                             request_id=response.headers.get("intuit_tid")) from None
    if not isinstance(body, dict):
        raise PermanentError("QuickBooks answered with JSON that is not an object",
                             platform=PLATFORM, request_id=response.headers.get("intuit_tid"))
    return body


def _currency(obj: Obj, default: str) -> str:
    return str((obj.get("CurrencyRef") or {}).get("value") or default)


def _money(value: Any, currency: str) -> Money:
    try:
        return Money(Decimal(str(value if value is not None else "0")), currency)
    except ArithmeticError:
        raise PermanentError(f"QuickBooks sent an amount that is not a number: {value!r}",
                             platform=PLATFORM) from None


def _is_void(obj: Obj) -> bool:
    return str(obj.get("PrivateNote") or "").startswith("Voided") and Decimal(
        str(obj.get("TotalAmt", "0"))) == 0


def _status(obj: Obj, total: Money, balance: Money) -> str:
    if _is_void(obj):
        return "void"
    if balance.is_zero() and not total.is_zero():
        return "paid"
    if balance != total:
        return "partially_paid"
    return "sent" if obj.get("EmailStatus") == "EmailSent" else "open"


def _timestamp(payment: Obj) -> datetime:
    created = (payment.get("MetaData") or {}).get("CreateTime")
    if created:
        return datetime.fromisoformat(str(created)).astimezone(UTC)
    return datetime.fromisoformat(f"{payment['TxnDate']}T00:00:00+00:00")


def _credit_note(obj: Obj, default_currency: str) -> RemoteCreditNote:
    currency = _currency(obj, default_currency)
    return RemoteCreditNote(id=str(obj["Id"]), total=_money(obj.get("TotalAmt"), currency),
                            number=obj.get("DocNumber"))


# ---------------------------------------------------------------------------------------------
# QuickBooks errors -> ours


def _map_error(response: httpx.Response) -> ConnectorError:
    """The one place QuickBooks' error body is read."""
    status = response.status_code
    error = _first_error(response)
    code = str(error.get("code") or "") or None
    message = str(error.get("Message") or error.get("message") or f"HTTP {status}")
    detail = error.get("Detail") or error.get("detail")
    if detail and str(detail) != message:
        message = f"{message}: {detail}"
    if error.get("element"):
        message = f"{message} (element {error['element']})"
    common: dict[str, Any] = {"platform": PLATFORM, "status": status, "code": code,
                              "request_id": response.headers.get("intuit_tid")}
    if status == 429 or (code or "").lstrip("0") == "3001":
        return RateLimited(message, retry_after=retry_after_seconds(response), **common)
    return _error_class(status, (code or "").lstrip("0"))(message, **common)


def _error_class(status: int, code: str) -> type[ConnectorError]:
    if code == "610":  # Object Not Found (answered with HTTP 400)
        return NotFound
    if code == "5010":  # Stale Object Error: re-read and try again
        return TransientError
    return class_for_status(status)


def _first_error(response: httpx.Response) -> Obj:
    try:
        body = json.loads(response.content, parse_float=Decimal)
    except ValueError:
        return {"Message": f"HTTP {response.status_code}: "
                           f"{response.text[:200].strip() or 'no body'}"}
    fault = (body.get("Fault") or body.get("fault")) if isinstance(body, dict) else None
    errors = (fault.get("Error") or fault.get("error")) if isinstance(fault, dict) else None
    first = errors[0] if isinstance(errors, list) and errors else None
    return first if isinstance(first, dict) else {}
