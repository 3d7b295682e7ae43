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
    RemoteCustomer,
    RemoteInvoice,
    RemoteStatus,
)
from autoinvoice.connectors.errors import (
    ConnectorError,
    PermanentError,
    RateLimited,
    TransientError,
    class_for_status,
)
from autoinvoice.connectors.http import HttpClient, form_encode, limiter_for, retry_after_seconds
from autoinvoice.domain.invoice import Invoice, InvoiceLine
from autoinvoice.domain.job import Customer
from autoinvoice.domain.money import Money, exponent

PLATFORM = "stripe"
DEFAULT_BASE_URL = "https://api.stripe.com"
API_VERSION = "2023-08-16"
RATE_PER_SECOND = 25  # test mode
LIVE_RATE_PER_SECOND = 100
CUSTOMER_REF = "autoinvoice_customer_id"
TAX_REF = "autoinvoice_percentage"
CUSTOM_FIELD_MAX = 30  # Stripe: custom_fields name/value at most 30 characters
DESCRIPTION_MAX = 1500  # invoice description (memo)
Obj = dict[str, Any]


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
                                sleep=settings.sleep),
            sleep=settings.sleep,
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
        created = self._post("/v1/customers", _customer_params(customer),
                             keys.for_step("customer"))
        return RemoteCustomer(created["id"])

    def create_invoice(self, invoice: Invoice, customer: RemoteCustomer,
                       keys: IdempotencyKeys) -> RemoteInvoice:
        draft = self._post("/v1/invoices", _invoice_params(invoice, customer.id),
                           keys.for_step("create"))
        for line_no, line in enumerate(invoice.lines, start=1):
            params = _item_params(line, line_no, invoice.currency, customer.id, draft["id"])
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
            created = self._post("/v1/tax_rates", _tax_rate_params(percentage),
                                 keys.for_step(f"taxrate-{_text(percentage)}"))
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
# Our objects -> Stripe parameters (vendor field names stay in this module)


def _customer_params(customer: Customer) -> Obj:
    address = customer.billing_address
    return {
        "name": customer.name,
        "email": customer.email or None,
        "address": {"line1": address.line1, "line2": address.line2 or None,
                    "city": address.city, "state": address.region or None,
                    "postal_code": address.postal_code or None, "country": address.country},
        "metadata": {CUSTOMER_REF: customer.id},
    }


def _invoice_params(invoice: Invoice, customer_id: str) -> Obj:
    metadata = {"job_id": invoice.job_id, "revision": str(invoice.revision),
                "tenant": invoice.tenant, "invoice_number": invoice.number}
    return {
        "customer": customer_id,
        "currency": invoice.currency.lower(),
        "collection_method": "send_invoice",
        "days_until_due": invoice.payment_terms_days,
        "auto_advance": False,
        "pending_invoice_items_behavior": "exclude",
        "description": _clip(_description(invoice), DESCRIPTION_MAX) or None,
        "metadata": {k: v for k, v in metadata.items() if v},
        "custom_fields": _custom_fields(invoice) or None,
    }


def _description(invoice: Invoice) -> str:
    job = invoice.job
    parts = [job.summary or job.service_type.replace("_", " ")]
    if job.asset is not None:
        parts.append(f"{job.asset.make} {job.asset.model} s/n {job.asset.serial}")
    return " - ".join(parts)


def _custom_fields(invoice: Invoice) -> list[dict[str, str]]:
    fields = [("Invoice no.", invoice.number), ("PO", invoice.po_number)]
    return [{"name": name, "value": _clip(value, CUSTOM_FIELD_MAX)}
            for name, value in fields if value]


def _item_params(line: InvoiceLine, line_no: int, currency: str, customer_id: str,
                 invoice_id: str) -> Obj:
    return {
        "customer": customer_id,
        "invoice": invoice_id,
        "currency": currency.lower(),
        "amount": line.amount.minor,
        "description": _line_text(line, currency),
        "metadata": {"line_no": str(line_no), "kind": str(line.kind), "sku": line.sku},
    }


def _line_text(line: InvoiceLine, currency: str) -> str:
    if line.quantity == 1:
        return line.description
    return (f"{line.description} ({_text(line.quantity)} {line.unit} × "
            f"{_unit_price_text(line.unit_price, currency)})")


def _unit_price_text(price: Decimal, currency: str) -> str:
    """At least the currency's minor digits (145.00), more when the price has them (0.655)."""
    digits = max(exponent(currency), -int(price.normalize().as_tuple().exponent))
    return f"{price:.{digits}f}"


def _tax_rate_params(percentage: Decimal) -> Obj:
    return {"display_name": "Tax", "description": f"autoinvoice {_text(percentage)}%",
            "percentage": percentage, "inclusive": False,
            "metadata": {TAX_REF: _text(percentage)}}


def percentage_of(rate: Decimal) -> Decimal:
    """Our tax rate as Stripe's percentage: ``Decimal("0.085")`` -> ``Decimal("8.5")``."""
    return (rate * 100).normalize()


def search_literal(value: str) -> str:
    """A quoted search value: backslashes and quotes escaped with a backslash (Stripe search)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


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
