"""Stripe Invoicing.

API docs: https://docs.stripe.com/api/invoices, /api/invoiceitems, /api/customers,
/api/tax_rates, /api/idempotent_requests, /search, /rate-limits. Requests are form-encoded,
responses JSON, at https://api.stripe.com (``settings.base_url`` overrides it, e.g. for
``sandbox.stripe``); we pin ``Stripe-Version: 2023-08-16``, the version of the OpenAPI spec the
tests validate every request body against (``shared/vendor-specs/stripe``).

Auth: the secret key as ``Authorization: Bearer sk_…`` (credential ``api_key``).

Flow: customer (search by ``metadata['autoinvoice_customer_id']``, else create) → tax rates
(one exclusive ``tax_rate`` per percentage, found by metadata or percentage, else created;
cached per connector) → ``POST /v1/invoices`` (draft, ``collection_method=send_invoice``,
``pending_invoice_items_behavior=exclude``) → one ``POST /v1/invoiceitems`` per line, amount in
minor units → re-read the invoice for Stripe's own total. Sending finalizes a draft (number,
hosted page) and then ``POST /v1/invoices/{id}/send`` e-mails it: ``delivers_itself``.

Corrections (docs.stripe.com/api/invoices/void, /api/invoices/delete, /api/credit_notes/create,
/invoicing/integration/programmatic-credit-notes, /billing/customer/balance): an invoice that
must not go out is deleted while a draft (``DELETE /v1/invoices/{id}``: "Permanently deletes a
one-off invoice draft ... once an invoice has been finalized ... it must be voided") and voided
once finalized (``POST /v1/invoices/{id}/void``). A delivered one is credited in full with
``POST /v1/credit_notes``: one ``invoice_line_item`` line per non-zero invoice line, crediting
its whole ``amount`` (Stripe recommends crediting invoice lines; their tax follows from the
line's tax rates, so the note's total is the invoice's); an invoice with a negative line is
credited with one ``custom_line_item`` for its total instead. For an ``open`` invoice the note
is pre-payment (it reduces ``amount_due``). For a ``paid`` one it is post-payment, where "the
sum of the refund, credit and outside of Stripe amounts must equal the credit note total"
(and, since 2019-12-03, ``out_of_band_amount`` is required when the others fall short): we
record the whole total as ``out_of_band_amount`` -- the operator settles the money -- rather
than ``credit_amount``, because a customer balance "automatically applies toward the next
invoice finalized", which may be another job's, and ``refund_amount`` would move money by
itself. An open invoice with part of it paid cannot be credited in full by one pre-payment
note on this API version: that is a ``PermanentError`` for an operator. The credit note is
found again (``GET /v1/credit_notes?invoice=``, a consistent list, by our
``metadata[credit_note_number]``) before one is created, and created with its own key, so it
is issued once even after the 24 h key window. Stripe e-mails issued credit notes to the
customer per the account's customer e-mail settings (API version 2024-09-30 made the
``credit_note`` e-mail the explicit default of a new ``email_type`` parameter; 2023-08-16 has
no such parameter).

Idempotency: every POST carries an ``Idempotency-Key`` from ``keys.for_step`` ("customer",
"create", "line-N", "taxrate-P", "finalize", "send"), identical on every retry and after a
restart. Stripe keeps keys at least 24 h and answers a reused key with other parameters with an
``idempotency_error`` (a PermanentError here). Past 24 h the pipeline calls
``find_by_reference``: invoice search on ``metadata['job_id']`` and ``metadata['revision']``.
Search is eventually consistent (new objects can take up to a minute to appear), so it is
only the safety net behind the keys; customer look-up falls back to the (consistent) list
endpoint filtered by e-mail.

Rate limits: 100 requests/s live, 25/s in test mode, 25/s per endpoint by default, 20/s for
search; we keep each tenant under 25/s in test mode and 100/s live (``sk_live_`` keys) with
a shared token bucket, or under ``platform.rate_limit_per_second`` when the tenant sets it.
429 and 409 (``lock_timeout``) are retried by the HTTP layer, like network errors and 5xx.

Errors: ``{"error": {type, code, message, param}}`` plus the ``Request-Id`` header, mapped in
``_map_error`` (the only place vendor error fields are read).

Sandbox: test-mode keys (``sk_test_…``) on the same host, or our local stand-in
``autoinvoice.sandbox.stripe`` (``mock_transport`` in tests, ``asgi_app`` under uvicorn).
"""

from __future__ import annotations

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
)
from autoinvoice.connectors.errors import (
    ConnectorError,
    NotFound,
    PermanentError,
    RateLimited,
    TransientError,
    class_for_status,
)
from autoinvoice.connectors.http import HttpClient, form_encode, limiter_for, retry_after_seconds
from autoinvoice.connectors.stripe.params import (
    CUSTOMER_REF,
    PLATFORM,
    TAX_REF,
    Obj,
    credit_note_params,
    customer_params,
    invoice_params,
    item_params,
    percentage_of,
    remote_credit_note,
    search_literal,
    tax_rate_params,
    text,
)
from autoinvoice.domain.invoice import Invoice
from autoinvoice.domain.job import Customer
from autoinvoice.domain.money import Money

DEFAULT_BASE_URL = "https://api.stripe.com"
API_VERSION = "2023-08-16"
RATE_PER_SECOND = 25  # test mode
LIVE_RATE_PER_SECOND = 100
__all__ = ["API_VERSION", "StripeConnector", "percentage_of", "search_literal"]


class StripeConnector:
    platform = PLATFORM
    delivers_itself = True

    def __init__(self, settings: ConnectorSettings) -> None:
        api_key = settings.secret("api_key")
        live = api_key.startswith(("sk_live_", "rk_live_"))
        rate = settings.rate_limit_per_second or (
            LIVE_RATE_PER_SECOND if live else RATE_PER_SECOND)
        self._currency = settings.currency
        self._tax_rates: dict[Decimal, str] | None = None
        self._http = HttpClient(
            platform=PLATFORM,
            base_url=settings.base_url or DEFAULT_BASE_URL,
            default_headers={"Authorization": f"Bearer {api_key}",
                             "Stripe-Version": API_VERSION},
            error_mapper=_map_error,
            transport=settings.transport,
            recorder=settings.recorder,
            secrets=[api_key],
            limiter=limiter_for(f"{settings.tenant}:{PLATFORM}", rate, max(1, int(rate)),
                                timer=settings.timer),
            timer=settings.timer,
            request_id_header="Request-Id",
        )

    def close(self) -> None:
        self._http.close()

    # -- the Connector protocol ---------------------------------------------------------------

    def check_auth(self) -> None:
        # Customers, not /v1/balance: a restricted key for invoicing may lack balance access.
        self._get("/v1/customers", {"limit": 1})

    def ensure_customer(self, customer: Customer, keys: IdempotencyKeys) -> RemoteCustomer:
        found = self._find_customer(customer)
        if found is not None:
            return RemoteCustomer(found)
        created = self._post("/v1/customers", customer_params(customer),
                             keys.for_step("customer"))
        return RemoteCustomer(created["id"])

    def create_invoice(self, invoice: Invoice, customer: RemoteCustomer,
                       keys: IdempotencyKeys) -> RemoteInvoice:
        draft = self._post("/v1/invoices", invoice_params(invoice, customer.id),
                           keys.for_step("create"))
        for line_no, line in enumerate(invoice.lines, start=1):
            params = item_params(line, line_no, invoice.currency, customer.id, draft["id"])
            rate_id = self._tax_rate_id(line.tax_rate, keys)
            if rate_id is not None:
                params["tax_rates"] = [rate_id]
            self._post("/v1/invoiceitems", params, keys.for_step(f"line-{line_no}"))
        return self._remote(self._get(f"/v1/invoices/{draft['id']}"))

    def send_invoice(self, remote: RemoteInvoice, keys: IdempotencyKeys) -> RemoteInvoice:
        current = self._get(f"/v1/invoices/{remote.id}")  # ``remote`` may be stale
        if current["status"] == "draft":
            current = self._post(f"/v1/invoices/{remote.id}/finalize", {},
                                 keys.for_step("finalize"))
        if current["status"] == "open":
            current = self._post(f"/v1/invoices/{remote.id}/send", {}, keys.for_step("send"))
        elif current["status"] != "paid":  # void or uncollectible: nothing to send
            raise PermanentError(f"invoice {remote.id} is {current['status']} on Stripe",
                                 platform=PLATFORM, code=f"invoice_{current['status']}")
        return self._remote(current)

    def fetch_status(self, remote_id: str) -> RemoteStatus:
        obj = self._get(f"/v1/invoices/{remote_id}")
        currency = obj["currency"].upper()
        paid_at = (obj.get("status_transitions") or {}).get("paid_at")
        return RemoteStatus(
            status=obj["status"],
            total=Money.from_minor(obj["total"], currency),
            amount_paid=Money.from_minor(obj["amount_paid"], currency),
            balance=Money.from_minor(obj["amount_remaining"], currency),
            paid_at=datetime.fromtimestamp(paid_at, UTC) if paid_at else None,
        )

    def find_by_reference(self, invoice: Invoice) -> RemoteInvoice | None:
        query = (f"metadata['job_id']:{search_literal(invoice.job_id)} AND "
                 f"metadata['revision']:{search_literal(str(invoice.revision))}")
        found = self._get("/v1/invoices/search", {"query": query, "limit": 10})["data"]
        live = [obj for obj in found if obj["status"] != "void"]
        return self._remote((live or found)[0]) if found else None

    def void_invoice(self, remote_id: str, keys: IdempotencyKeys) -> str:
        try:
            status = self._get(f"/v1/invoices/{remote_id}")["status"]
            if status == "draft":
                self._http.request("DELETE", f"/v1/invoices/{remote_id}")
                return "deleted"
        except NotFound:  # a deleted draft is gone; a lost DELETE response retried ends here
            return "already_void"
        if status == "void":
            return "already_void"
        if status in ("open", "uncollectible"):
            self._post(f"/v1/invoices/{remote_id}/void", {}, keys.for_step("void"))
            return "voided"
        raise PermanentError(f"invoice {remote_id} is {status} on Stripe and cannot be voided; "
                             "credit it instead", platform=PLATFORM, code=f"invoice_{status}")

    def credit_invoice(self, remote_id: str, credit: Invoice, keys: IdempotencyKeys
                       ) -> RemoteCreditNote:
        found = self._find_credit_note(remote_id, credit)
        if found is not None:
            return found
        invoice = self._get(f"/v1/invoices/{remote_id}")
        params = credit_note_params(invoice, self._invoice_lines(remote_id), credit)
        created = self._post("/v1/credit_notes", params, keys.for_step("credit-note"))
        return remote_credit_note(created)

    def _find_credit_note(self, remote_id: str, credit: Invoice) -> RemoteCreditNote | None:
        listed = self._get("/v1/credit_notes", {"invoice": remote_id, "limit": 100})["data"]
        ours = [note for note in listed if note.get("status") != "void"
                and (note.get("metadata") or {}).get("credit_note_number") == credit.number]
        return remote_credit_note(ours[0]) if ours else None

    def _invoice_lines(self, remote_id: str) -> list[Obj]:
        lines: list[Obj] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            page = self._get(f"/v1/invoices/{remote_id}/lines", params)
            lines.extend(page["data"])
            if not page.get("has_more") or not page["data"]:
                return lines
            params["starting_after"] = page["data"][-1]["id"]

    # -- customers and tax rates --------------------------------------------------------------

    def _find_customer(self, customer: Customer) -> str | None:
        query = f"metadata['{CUSTOMER_REF}']:{search_literal(customer.id)}"
        found = self._get("/v1/customers/search", {"query": query, "limit": 1})["data"]
        if found:
            return str(found[0]["id"])
        if not customer.email:
            return None
        # Search lags writes by up to a minute; the list endpoint does not.
        listed = self._get("/v1/customers", {"email": customer.email, "limit": 100})["data"]
        ours = [c for c in listed if (c.get("metadata") or {}).get(CUSTOMER_REF) == customer.id]
        return str(ours[0]["id"]) if ours else None

    def _tax_rate_id(self, rate: Decimal, keys: IdempotencyKeys) -> str | None:
        if rate == 0:
            return None
        percentage = percentage_of(rate)
        known = self._known_tax_rates()
        if percentage not in known:
            created = self._post("/v1/tax_rates", tax_rate_params(percentage),
                                 keys.for_step(f"taxrate-{text(percentage)}"))
            known[percentage] = created["id"]
        return known[percentage]

    def _known_tax_rates(self) -> dict[Decimal, str]:
        """Active exclusive tax rates by percentage: ours (by metadata) win over look-alikes."""
        if self._tax_rates is None:
            ours: dict[Decimal, str] = {}
            others: dict[Decimal, str] = {}
            for obj in self._active_tax_rates():
                if obj.get("inclusive"):
                    continue
                percentage = Decimal(str(obj["percentage"]))
                target = ours if (obj.get("metadata") or {}).get(TAX_REF) else others
                target.setdefault(percentage, obj["id"])
            self._tax_rates = {**others, **ours}
        return self._tax_rates

    def _active_tax_rates(self) -> list[Obj]:
        rates: list[Obj] = []
        params: dict[str, Any] = {"active": True, "limit": 100}
        while True:
            page = self._get("/v1/tax_rates", params)
            rates.extend(page["data"])
            if not page.get("has_more") or not page["data"]:
                return rates
            params["starting_after"] = page["data"][-1]["id"]

    # -- plumbing -----------------------------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Obj:
        response: Obj = self._http.request("GET", path, params=params).json()
        return response

    def _post(self, path: str, params: Mapping[str, Any], key: str) -> Obj:
        response: Obj = self._http.request("POST", path, form=form_encode(params),
                                           idempotency_key=key).json()
        return response

    def _remote(self, obj: Obj) -> RemoteInvoice:
        return RemoteInvoice(
            id=obj["id"],
            total=Money.from_minor(obj["total"], obj["currency"].upper()),
            status=obj["status"],
            number=obj.get("number"),
            url=obj.get("hosted_invoice_url"),
        )




# ---------------------------------------------------------------------------------------------
# Stripe errors -> ours


def _map_error(response: httpx.Response) -> ConnectorError:
    """The one place Stripe's error body is read."""
    error = _error_body(response)
    status = response.status_code
    code = error.get("code") or error.get("type")
    message = error.get("message") or f"HTTP {status}"
    if error.get("param"):
        message = f"{message} (param {error['param']})"
    common: dict[str, Any] = {"platform": PLATFORM, "status": status, "code": code,
                              "request_id": response.headers.get("Request-Id")}
    if status == 429:
        return RateLimited(message, retry_after=retry_after_seconds(response), **common)
    return _error_class(status, error.get("type"))(message, **common)


def _error_class(status: int, error_type: str | None) -> type[ConnectorError]:
    if status == 400 and error_type == "idempotency_error":
        return PermanentError
    if status == 409:  # Stripe: another request with this key is in flight, or lock_timeout
        return TransientError
    return class_for_status(status)


def _error_body(response: httpx.Response) -> Obj:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}
