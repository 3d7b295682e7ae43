"""Microsoft Dynamics 365 Business Central (online), standard API v2.0 (OData v4, JSON).

API docs checked (learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0,
source MicrosoftDocs/dynamics365smb-devitpro-pb): resources/dynamics_salesinvoice (properties,
bound actions ``post``/``send``/``postAndSend``/``cancel``, each answering 204, and the note
that the API ``id`` of a draft is carried to the posted invoice), api/dynamics_salesinvoice_create
(201 with the invoice; ``postingDate``), resources/dynamics_salesinvoiceline (``lineType``
Comment/Account/Item..., ``lineObjectNumber``, ``unitPrice``, ``quantity``, ``taxCode``),
api/dynamics_salesinvoiceline_create, resources/dynamics_salescreditmemo (``invoiceId`` links a
credit memo to the invoice it credits; same bound actions), resources/dynamics_customer,
dynamics-rate-limits and the "Work with API limits" training module, and the error-code table
(``{"error": {"code", "message"}}``: ``BadRequest_*``, ``Internal_RecordNotFound``,
``Request_EntityChanged`` for a stale ETag, ``Application_DialogException``...). The request
bodies are validated in the tests against Microsoft's only published OpenAPI file,
``shared/vendor-specs/dynamics365-business-central/BCOAS1.0.yaml`` (API v1.0, see its note B1).

URL: ``{base}/v2.0/{tenant}/{environment}/api/v2.0/companies({company_id})/…`` with base
``https://api.businesscentral.dynamics.com`` (``platform.base_url`` overrides it, e.g. for the
stand-in); the "Access Business Central API" training module shows the tenant segment as the
tenant's id or domain. The tenant is ``credentials.tenant_id``, else a real
``platform.entra_tenant``, else what ``connect`` learned from the ID token's ``tid`` claim
(learn.microsoft.com/entra/identity-platform/id-token-claims-reference; MSAL's TokenClaims
``tid``) -- never the sign-in alias ``organizations``/``common``, which names no tenant. The
environment is ``credentials.environment``, ``platform.environment`` or the connection's
(default ``production``); the company is the one ``GET …/companies`` listed at ``connect``.

Auth: Microsoft Entra ID OAuth2 (authorization code or client credentials), scope
``https://api.businesscentral.dynamics.com/.default`` (the app's configured delegated
permission ``Financials.ReadWrite.All``: Microsoft/navcontainerhelper
``AzureAD/Create-AadAppsForNav.ps1``) plus ``openid`` for the ID token; the access token comes
from ``settings.tokens`` and a 401 refreshes it once (``bearer_request``).

Flow: customer by ``number eq '<our id>'`` (our id is the BC customer number when it fits
Code[20]), then by ``email``; created with our id as its number, so a repeated create is
refused as a duplicate key and found again. Invoice: one deep insert ``POST /salesInvoices``
with its ``salesInvoiceLines`` (atomic: no half-made invoice; recommended by the limits
guidance), a Comment line naming our job and number, one ``Account`` line per invoice line on
the ``sales_account`` G/L account (credential, default 40100) with description, quantity, unit
price and ``taxCode``, covered lines at price 0 followed by a Comment saying why, and the legal
notes (reverse charge, exemptions) as Comment lines; PO in ``customerPurchaseOrderReference``;
``currencyCode`` is our currency (the API pages translate the company's local currency code to
BC's blank LCY, "Graph Mgt - General Tools"; a currency the company lacks is refused, and a
total read back in another currency is a mismatch the pipeline holds).
Tax: BC computes it from its own setup -- the API takes a tax group, never a percentage (see
``tax_setup``): each line's ``taxCode`` is the company's tax group for the line's outcome
(``platform.tax_groups``: VAT product posting group in W1/EU companies, tax group in US ones),
and before the invoice is created the customer is put in the tax area of the document's
outcome (``platform.tax_areas``: VAT business posting group such as DOMESTIC/EU/EXPORT, or the
US tax area, with ``taxLiable``), so an EU business buyer is reverse-charged by BC's own
"Reverse Charge VAT" setup. An outcome without a mapping fails naming the keys to add; codes
the company lacks are reported at ``connect`` and at start (``check_setup``). The total read
back after creating (``totalAmountIncludingTax``) is what the pipeline compares with ours. BC
rounds tax per document: the VAT Amount Line (table 290) sums the lines per VAT identifier and
rounds once, the Sales Tax Calculate codeunit (398) likewise per jurisdiction
(``TAX_ROUNDING``).
Delivery: ``Microsoft.NAV.postAndSend`` (BC e-mails the posted invoice; needs e-mail set up in
the tenant), so ``delivers_itself``; an invoice already posted is sent with ``Microsoft.NAV.send``.

Exactly once: BC has no idempotency keys. ``create_invoice`` first looks for an invoice with our
reference (``$filter=externalDocumentNumber eq '…'``, our number and job id) and only creates
when there is none; the pipeline's ``find_by_reference`` runs the same query. The deep insert is
never retried blindly by the HTTP layer (a POST without a key is not replay-safe).

Corrections: a draft is deleted (``DELETE``), a posted unpaid invoice cancelled
(``Microsoft.NAV.cancel``: BC makes the corrective credit memo and marks it Canceled); a paid one
raises ``PermanentError``. A credit note is a ``salesCreditMemos`` deep insert with our lines and
reference (applied to the invoice through ``invoiceId`` while it is unpaid), then
``Microsoft.NAV.postAndSend``; it is looked up by reference first. Changes and bound actions
carry ``If-Match`` with the entity's ``@odata.etag``; a stale one (409 ``Request_EntityChanged``)
is transient: the step re-reads and tries again.

Payment: ``status`` (Draft, In Review, Open, Paid, Canceled, Corrective), ``remainingAmount``
and ``totalAmountIncludingTax``; the API has no paid date, so ``paid_at`` is the invoice's
``lastModifiedDateTime`` once it reads Paid.

Rate limits: 6,000 requests per user or service principal in a five-minute sliding window (429
when exceeded), at most 100 simultaneous requests of which the operational-limits page lets 5
run per user while the rest queue. We keep each tenant under 19.5 requests/s (5,850 per five
minutes, burst 20) and 5 in flight, shared by every connector instance; 429 honours
``Retry-After`` in the HTTP layer; 5xx and lost GET/DELETE responses are retried there.

Errors: ``_map_error`` is the only place the OData error body is read; the ``request-id`` header
(else ``ms-correlation-x``) is kept as the request id.
"""

from __future__ import annotations

from datetime import datetime
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
from autoinvoice.connectors.business_central.payloads import (
    PLATFORM,
    LineSettings,
    Obj,
    credit_memo_body,
    customer_body,
    customer_number,
    dumps,
    invoice_body,
    loads,
    odata_literal,
    reference,
)
from autoinvoice.connectors.business_central.tax_setup import CompanyTaxSetup
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
from autoinvoice.connectors.oauth import MULTI_TENANT_ALIASES
from autoinvoice.domain.invoice import Invoice
from autoinvoice.domain.job import Customer
from autoinvoice.domain.money import Money

DEFAULT_BASE_URL = "https://api.businesscentral.dynamics.com"
RATE_PER_SECOND = 19.5  # 6,000 per 5-minute sliding window, with headroom for the burst
BURST = 20
CONCURRENT = 5
JSON = "application/json"
__all__ = ["BusinessCentralConnector", "LineSettings", "dumps", "loads"]


class BusinessCentralConnector:
    platform = PLATFORM
    delivers_itself = True

    def __init__(self, settings: ConnectorSettings) -> None:
        if settings.tokens is None:
            raise AuthError("Business Central needs an OAuth2 connection (autoinvoice connect "
                            "business_central)", platform=PLATFORM)
        self._tokens: TokenSource = settings.tokens
        self._currency = settings.currency
        self._settings = settings
        self._root: str | None = None  # learned on first use: the connection may come later
        self._lines = LineSettings.parse(_setting(settings, "sales_account"),
                                         settings.options.get("tax_groups"))
        self._tax = CompanyTaxSetup(self._lines.tax_groups,
                                    settings.options.get("tax_areas") or {}, self._get,
                                    self._patch)
        key = f"{settings.tenant}:{PLATFORM}"
        rate = settings.rate_limit_per_second or RATE_PER_SECOND
        self._http = HttpClient(
            exact_decimals=True,
            platform=PLATFORM,
            base_url=settings.base_url or DEFAULT_BASE_URL,
            default_headers={"Accept": JSON},
            error_mapper=_map_error,
            transport=settings.transport,
            recorder=settings.recorder,
            limiter=limiter_for(key, rate, max(1, min(BURST, int(rate))), timer=settings.timer),
            slots=slots_for(key, CONCURRENT),
            timer=settings.timer,
            request_id_header="request-id",
        )

    def close(self) -> None:
        self._http.close()

    # -- the Connector protocol ---------------------------------------------------------------

    def check_auth(self) -> None:
        self._get("", {"$select": "id,name"})

    def ensure_customer(self, customer: Customer, keys: IdempotencyKeys) -> RemoteCustomer:
        found = self._find_customer(customer)
        if found is not None:
            return RemoteCustomer(found)
        try:
            created = self._post("/customers", customer_body(customer))
        except PermanentError as exc:  # our number already taken: a lost response, or a race
            if exc.code != "Internal_EntityWithSameKeyExists":
                raise
            found = self._find_customer(customer)
            if found is None:
                raise
            return RemoteCustomer(found)
        return RemoteCustomer(str(created["id"]))

    def create_invoice(self, invoice: Invoice, customer: RemoteCustomer,
                       keys: IdempotencyKeys) -> RemoteInvoice:
        existing = self.find_by_reference(invoice)  # no idempotency keys on BC
        if existing is not None:
            return existing
        body = invoice_body(invoice, customer.id, self._lines)  # unmapped outcomes fail here
        self._tax.place_customer(customer.id, invoice)
        created = self._post("/salesInvoices", body)
        return self._remote(self._invoice(str(created["id"])))

    def send_invoice(self, remote: RemoteInvoice, keys: IdempotencyKeys) -> RemoteInvoice:
        current = self._invoice(remote.id)  # ``remote`` may be stale
        status = current.get("status")
        if status == "Draft":
            self._action(f"/salesInvoices({remote.id})/Microsoft.NAV.postAndSend", current)
        elif status == "Open":  # posted earlier; its e-mail may not have gone out
            self._action(f"/salesInvoices({remote.id})/Microsoft.NAV.send", current)
        elif status != "Paid":
            raise PermanentError(f"invoice {remote.id} is {status!r} on Business Central and "
                                 "cannot be sent", platform=PLATFORM, code=f"invoice_{status}")
        return self._remote(self._invoice(remote.id))

    def fetch_status(self, remote_id: str) -> RemoteStatus:
        obj = self._invoice(remote_id)
        total = self._money(obj, "totalAmountIncludingTax")
        balance = self._money(obj, "remainingAmount")
        paid = obj.get("status") == "Paid"
        return RemoteStatus(status=str(obj.get("status")), total=total,
                            amount_paid=total - balance, balance=balance,
                            paid_at=_timestamp(obj.get("lastModifiedDateTime")) if paid else None)

    def find_by_reference(self, invoice: Invoice) -> RemoteInvoice | None:
        found = self._list("/salesInvoices", reference(invoice))
        live = [obj for obj in found if obj.get("status") not in ("Canceled", "Corrective")]
        return self._remote((live or found)[0]) if found else None

    def void_invoice(self, remote_id: str, keys: IdempotencyKeys) -> str:
        try:
            current = self._invoice(remote_id)
            status = current.get("status")
            if status == "Draft":
                self._request("DELETE", f"/salesInvoices({remote_id})",
                              headers=_if_match(current))
                return "deleted"
        except NotFound:  # a deleted draft is gone; a lost DELETE response retried ends here
            return "already_void"
        if status in ("Canceled", "Corrective"):
            return "already_void"
        if status == "Open" and self._money(current, "remainingAmount") == self._money(
                current, "totalAmountIncludingTax"):
            self._action(f"/salesInvoices({remote_id})/Microsoft.NAV.cancel", current)
            return "voided"
        raise PermanentError(f"invoice {remote_id} is {status!r} on Business Central (paid in "
                             "full or in part) and cannot be cancelled; credit it instead",
                             platform=PLATFORM, code=f"invoice_{status}")

    def credit_invoice(self, remote_id: str, credit: Invoice, keys: IdempotencyKeys
                       ) -> RemoteCreditNote:
        found = self._list("/salesCreditMemos", reference(credit))
        memo = found[0] if found else self._create_credit_memo(remote_id, credit)
        if memo.get("status") == "Draft":
            self._action(f"/salesCreditMemos({memo['id']})/Microsoft.NAV.postAndSend", memo)
            memo = self._get(f"/salesCreditMemos({memo['id']})")
        return RemoteCreditNote(id=str(memo["id"]),
                                total=self._money(memo, "totalAmountIncludingTax"),
                                number=memo.get("number") or None)

    def _create_credit_memo(self, remote_id: str, credit: Invoice) -> Obj:
        invoice = self._invoice(remote_id)
        status = invoice.get("status")
        if status not in ("Open", "Paid"):
            raise PermanentError(f"invoice {remote_id} is {status!r} on Business Central; only "
                                 "posted (Open or Paid) invoices can be credited",
                                 platform=PLATFORM, code=f"invoice_{status}")
        apply_to = remote_id if status == "Open" else None  # a closed entry takes no application
        body = credit_memo_body(credit, str(invoice["customerId"]), apply_to, self._lines)
        self._tax.place_customer(str(invoice["customerId"]), credit)
        created = self._post("/salesCreditMemos", body)
        return self._get(f"/salesCreditMemos({created['id']})")

    # -- the company's own tax setup ------------------------------------------------------------

    def check_setup(self) -> list[str]:
        """Every code of ``platform.tax_groups`` / ``tax_areas`` the company lacks, each naming
        the key and listing the company's real codes (run at connect and at start)."""
        return self._tax.problems()

    # -- look-ups -----------------------------------------------------------------------------

    def _find_customer(self, customer: Customer) -> str | None:
        number = customer_number(customer)
        if number is not None:
            found = self._get("/customers", {"$filter": f"number eq {odata_literal(number)}"})
            if found.get("value"):
                return str(found["value"][0]["id"])
        if not customer.email:
            return None
        found = self._get("/customers", {"$filter": f"email eq {odata_literal(customer.email)}"})
        return str(found["value"][0]["id"]) if found.get("value") else None

    def _list(self, collection: str, ref: str) -> list[Obj]:
        page = self._get(collection, {"$filter": f"externalDocumentNumber eq {odata_literal(ref)}"})
        value = page.get("value")
        if not isinstance(value, list):
            raise PermanentError(f"Business Central answered GET {collection} without a 'value' "
                                 "list", platform=PLATFORM, code="bad_response")
        return value

    def _invoice(self, remote_id: str) -> Obj:
        return self._get(f"/salesInvoices({remote_id})")

    # -- plumbing -----------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._root is None:
            self._root = _company_root(self._settings)
        return bearer_request(self._http, self._tokens, method, self._root + path, **kwargs)

    def _get(self, path: str, params: dict[str, str] | None = None) -> Obj:
        return _json_object(self._request("GET", path, params=params), path)

    def _post(self, path: str, body: Obj) -> Obj:
        # The body is serialized here (exact decimals) and handed over as pre-encoded JSON.
        response = self._request("POST", path, json=body)
        return _json_object(response, path)

    def _patch(self, path: str, entity: Obj, change: Obj) -> None:
        self._request("PATCH", path, json=change, headers=_if_match(entity))

    def _action(self, path: str, entity: Obj) -> None:
        self._request("POST", path, headers=_if_match(entity))

    def _remote(self, obj: Obj) -> RemoteInvoice:
        return RemoteInvoice(id=str(obj["id"]), total=self._money(obj, "totalAmountIncludingTax"),
                             status=str(obj.get("status")), number=obj.get("number") or None)

    def _money(self, obj: Obj, name: str) -> Money:
        value = obj.get(name)
        if not isinstance(value, Decimal | int) or isinstance(value, bool):
            raise PermanentError(f"Business Central returned no numeric {name!r} for "
                                 f"{obj.get('id', '?')}", platform=PLATFORM, code="bad_response")
        currency = obj.get("currencyCode") or self._currency
        return Money(Decimal(value), str(currency))


# ---------------------------------------------------------------------------------------------
# Settings and small helpers


def _setting(settings: ConnectorSettings, name: str) -> str | None:
    secret = settings.credentials.get(name)
    if secret is not None:
        return secret.reveal()
    return settings.tokens.value(name) if settings.tokens is not None else None


def _company_root(settings: ConnectorSettings) -> str:
    """``/v2.0/{tenant}/{environment}/api/v2.0/companies({company})``: the Entra tenant from
    ``credentials.tenant_id``, a real ``platform.entra_tenant`` (never an alias such as
    ``organizations``, which only picks the sign-in page) or the connection (the token's
    ``tid``); the environment from the credentials, ``platform.environment`` or the
    connection; the company from the connection (``GET companies``)."""
    configured = str(settings.options.get("entra_tenant") or "")
    if configured.lower() in MULTI_TENANT_ALIASES:
        configured = ""
    tenant = _setting(settings, "tenant_id") or configured or _token_value(settings,
                                                                          "tenant_id")
    environment = (_setting(settings, "environment") or settings.options.get("environment")
                   or _token_value(settings, "environment") or "production")
    company = _setting(settings, "company_id")
    if not company or not tenant:
        missing = "company_id" if not company else "the Entra tenant id"
        raise AuthError(f"Business Central connection lacks {missing}: run autoinvoice "
                        "connect business_central (or set platform.entra_tenant)",
                        platform=PLATFORM)
    return f"/v2.0/{tenant}/{environment}/api/v2.0/companies({company})"


def _token_value(settings: ConnectorSettings, name: str) -> str | None:
    return settings.tokens.value(name) if settings.tokens is not None else None



def _if_match(entity: Obj) -> dict[str, str]:
    etag = entity.get("@odata.etag")
    return {"If-Match": str(etag)} if etag else {"If-Match": "*"}


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _json_object(response: httpx.Response, path: str) -> Obj:
    try:
        body = loads(response.text)
    except ValueError:
        raise PermanentError(f"Business Central answered {path or '/'} with a body that is not "
                             "JSON", platform=PLATFORM, code="bad_response",
                             status=response.status_code) from None
    if not isinstance(body, dict):
        raise PermanentError(f"Business Central answered {path or '/'} with JSON that is not an "
                             "object", platform=PLATFORM, code="bad_response")
    return body


# ---------------------------------------------------------------------------------------------
# Business Central errors -> ours


def _map_error(response: httpx.Response) -> ConnectorError:
    """The one place BC's OData error body ``{"error": {"code", "message"}}`` is read."""
    error = _error_body(response)
    status = response.status_code
    code = error.get("code") or None
    message = error.get("message") or f"HTTP {status}"
    request_id = response.headers.get("request-id") or response.headers.get("ms-correlation-x")
    common: dict[str, Any] = {"platform": PLATFORM, "status": status, "code": code,
                              "request_id": request_id}
    if status == 429:
        return RateLimited(message, retry_after=retry_after_seconds(response), **common)
    return _error_class(status, code)(message, **common)


def _error_class(status: int, code: str | None) -> type[ConnectorError]:
    if code == "Request_EntityChanged":  # a stale ETag: re-read and try again
        return TransientError
    if status == 409:  # Internal_EntityWithSameKeyExists and other conflicts
        return PermanentError
    if status == 400 and code in ("Internal_RecordNotFound", "BadRequest_NotFound"):
        return ValidationRejected
    if code and code.startswith(("Authentication_", "Authorization_")):
        return AuthError
    return class_for_status(status)


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = loads(response.text)
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}
