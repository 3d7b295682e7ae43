"""Connector for the generic "sandbox" platform: autoinvoice's own small invoicing API.

- API docs: the docstring of ``autoinvoice.sandbox.generic`` (JSON over HTTP under ``/api/v1``;
  amounts, quantities and rates travel as decimal strings).
- Base URL: ``settings.base_url`` (the server root), default ``http://127.0.0.1:8766``, which is
  where ``autoinvoice sandbox serve`` listens; tests use ``sandbox.generic.mock_transport``.
- Auth: optional Bearer API key, credential ``api_key``; without one no Authorization is sent.
- Idempotency: ``Idempotency-Key`` on every POST (Stripe-like replay; the same key with another
  body is a 409), from ``keys.for_step("customer" | "create" | "send")``.
  ``find_by_reference`` searches by our reference (job id) and revision.
- Rate limit: none of its own; 429 with ``Retry-After`` only when a fault is injected.
- Delivery: ``delivers_itself = False``: ``send_invoice`` only issues the invoice on the platform,
  the pipeline e-mails our own PDF afterwards (credit notes alike).
- Corrections: ``void_invoice`` is ``POST /invoices/{id}/void`` (draft, or issued without
  payments); ``credit_invoice`` is ``POST /credit_notes`` with our credit note's number and
  lines, after ``GET /credit_notes?invoice_id=&number=`` found none (so a retry past the key's
  life cannot issue a second one).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
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
    PermanentError,
    RateLimited,
    class_for_status,
)
from autoinvoice.connectors.http import HttpClient, retry_after_seconds
from autoinvoice.domain.invoice import Invoice, InvoiceLine
from autoinvoice.domain.job import Address, Customer
from autoinvoice.domain.money import Money

PLATFORM = "sandbox"
DEFAULT_BASE_URL = "http://127.0.0.1:8766"
API_PREFIX = "/api/v1"
Json = dict[str, Any]

log = logging.getLogger(__name__)


class SandboxConnector:
    platform = PLATFORM
    delivers_itself = False

    def __init__(self, settings: ConnectorSettings) -> None:
        headers = {"Accept": "application/json"}
        secrets: tuple[str, ...] = ()
        if "api_key" in settings.credentials:
            api_key = settings.secret("api_key")
            headers["Authorization"] = f"Bearer {api_key}"
            secrets = (api_key,)
        self._http = HttpClient(
            platform=PLATFORM,
            base_url=(settings.base_url or DEFAULT_BASE_URL).rstrip("/") + API_PREFIX,
            default_headers=headers,
            error_mapper=_map_error,
            transport=settings.transport,
            recorder=settings.recorder,
            secrets=secrets,
            timer=settings.timer,
        )

    def check_auth(self) -> None:
        self._get("/account")

    def ensure_customer(self, customer: Customer, keys: IdempotencyKeys) -> RemoteCustomer:
        found = _items(self._get("/customers", {"external_id": customer.id}))
        if found:
            return RemoteCustomer(_text(found[0], "id"))
        created = self._post("/customers", _customer_payload(customer), keys.for_step("customer"))
        log.info("sandbox customer %s created for %s", created.get("id"), customer.id)
        return RemoteCustomer(_text(created, "id"))

    def create_invoice(
        self, invoice: Invoice, customer: RemoteCustomer, keys: IdempotencyKeys
    ) -> RemoteInvoice:
        created = self._post("/invoices", _invoice_payload(invoice, customer),
                             keys.for_step("create"))
        remote = _remote_invoice(created)
        log.info("sandbox invoice %s created for job %s rev %s, total %s",
                 remote.id, invoice.job_id, invoice.revision, remote.total)
        return remote

    def send_invoice(self, remote: RemoteInvoice, keys: IdempotencyKeys) -> RemoteInvoice:
        issued = self._post(f"/invoices/{remote.id}/issue", {}, keys.for_step("send"))
        return _remote_invoice(issued)

    def fetch_status(self, remote_id: str) -> RemoteStatus:
        data = self._get(f"/invoices/{remote_id}")
        return RemoteStatus(
            status=_text(data, "status"),
            total=_money(data, "total"),
            amount_paid=_money(data, "amount_paid"),
            balance=_money(data, "balance"),
            paid_at=_moment(data, "paid_at"),
        )

    def find_by_reference(self, invoice: Invoice) -> RemoteInvoice | None:
        query = {"reference": invoice.reference, "revision": str(invoice.revision)}
        found = _items(self._get("/invoices", query))
        live = [item for item in found if item.get("status") != "void"]
        return _remote_invoice((live or found)[0]) if found else None

    def void_invoice(self, remote_id: str, keys: IdempotencyKeys) -> str:
        status = _text(self._get(f"/invoices/{remote_id}"), "status")
        if status == "void":
            return "already_void"
        if status not in ("draft", "issued"):
            raise PermanentError(f"invoice {remote_id} is {status} and cannot be voided; credit "
                                 "it instead", platform=PLATFORM, code="invalid_state")
        self._post(f"/invoices/{remote_id}/void", {}, keys.for_step("void"))
        return "voided"

    def credit_invoice(self, remote_id: str, credit: Invoice, keys: IdempotencyKeys
                       ) -> RemoteCreditNote:
        query = {"invoice_id": remote_id, "number": credit.number or ""}
        found = _items(self._get("/credit_notes", query))
        note = found[0] if found else self._post(
            "/credit_notes", _credit_note_payload(remote_id, credit),
            keys.for_step("credit-note"))
        return RemoteCreditNote(id=_text(note, "id"), total=_money(note, "total"),
                                number=_text(note, "number"))

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> Json:
        return _json(self._http.request("GET", path, params=params))

    def _post(self, path: str, payload: Json, key: str) -> Json:
        return _json(self._http.request("POST", path, json=payload, idempotency_key=key))


# -- the wire format -----------------------------------------------------------------------
def _dec(value: Decimal) -> str:
    """A Decimal as a plain string: never a float, never exponent notation."""
    return format(value, "f")


def _address_payload(address: Address) -> dict[str, str]:
    return {"line1": address.line1, "line2": address.line2, "city": address.city,
            "region": address.region, "postal_code": address.postal_code,
            "country": address.country}


def _customer_payload(customer: Customer) -> Json:
    return {"external_id": customer.id, "name": customer.name, "email": customer.email,
            "address": _address_payload(customer.billing_address)}


def _line_payload(line: InvoiceLine) -> Json:
    return {"description": line.description, "quantity": _dec(line.quantity),
            "unit_price": _dec(line.unit_price), "amount": _dec(line.amount.amount),
            "tax_rate": _dec(line.tax_rate), "tax": _dec(line.tax.amount)}


def _invoice_payload(invoice: Invoice, customer: RemoteCustomer) -> Json:
    return {
        "customer_id": customer.id,
        "reference": invoice.reference,
        "revision": invoice.revision,
        "number": invoice.number,
        "currency": invoice.currency,
        "issue_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "po_number": invoice.po_number,
        "lines": [_line_payload(line) for line in invoice.lines],
    }


def _credit_note_payload(remote_id: str, credit: Invoice) -> Json:
    return {"invoice_id": remote_id, "number": credit.number,
            "issue_date": credit.issue_date.isoformat(),
            "reason": f"credits invoice {credit.corrects}" if credit.corrects else None,
            "lines": [_line_payload(line) for line in credit.lines]}


def _json(response: httpx.Response) -> Json:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise PermanentError("response is not a JSON object", platform=PLATFORM,
                             status=response.status_code, request_id=_request_id(response))
    return data


def _unexpected(data: Json, name: str) -> PermanentError:
    return PermanentError(f"response has no valid {name!r}: {data.get(name)!r}",
                          platform=PLATFORM)


def _text(data: Json, name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise _unexpected(data, name)
    return value


def _items(listing: Json) -> list[Json]:
    data = listing.get("data")
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise _unexpected(listing, "data")
    return data


def _money(data: Json, name: str) -> Money:
    try:
        return Money(Decimal(str(data[name])), _text(data, "currency"))
    except (KeyError, InvalidOperation, ValueError):
        raise _unexpected(data, name) from None


def _moment(data: Json, name: str) -> datetime | None:
    value = data.get(name)
    try:
        return datetime.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        raise _unexpected(data, name) from None


def _remote_invoice(data: Json) -> RemoteInvoice:
    number = data.get("number")
    return RemoteInvoice(id=_text(data, "id"), total=_money(data, "total"),
                         status=_text(data, "status"),
                         number=number if isinstance(number, str) else None)


# -- errors --------------------------------------------------------------------------------
def _request_id(response: httpx.Response) -> str | None:
    value = response.headers.get("x-request-id")
    return str(value) if value is not None else None


def _map_error(response: httpx.Response) -> ConnectorError:
    """The one place sandbox errors become our error tree (by status, then vendor code)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {}
    code, status = error.get("code"), response.status_code
    message = error.get("message") or response.reason_phrase or f"HTTP {status}"
    if error.get("field"):
        message = f"{message} (field {error['field']})"
    kw: dict[str, Any] = {"platform": PLATFORM, "status": status, "code": code,
                          "request_id": _request_id(response)}
    if status == 429:
        return RateLimited(message, retry_after=retry_after_seconds(response), **kw)
    return class_for_status(status)(message, **kw)
