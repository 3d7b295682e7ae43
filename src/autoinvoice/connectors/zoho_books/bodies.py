"""Our objects -> Zoho Books request bodies, and Zoho's answers -> ours (vendor field names
stay in this package). ``_map_error`` is the one place Zoho's error body is read."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx

from autoinvoice.connectors.base import RemoteInvoice
from autoinvoice.connectors.errors import (
    ConnectorError,
    NotFound,
    PermanentError,
    RateLimited,
    class_for_status,
)
from autoinvoice.connectors.http import exact_json, retry_after_seconds
from autoinvoice.domain.invoice import Invoice, InvoiceLine
from autoinvoice.domain.job import Customer
from autoinvoice.domain.money import Money, quantize

PLATFORM = "zoho_books"
DEFAULT_BASE_URL = "https://www.zohoapis.com/books/v3"
API_ROOT = "/books/v3"
RATE_LIMIT_CODES = frozenset({45, 44})  # request limit per minute / per day exceeded
NOT_FOUND_CODES = frozenset({1002, 5})
NAME_MAX, DESCRIPTION_MAX, REFERENCE_MAX, NOTES_MAX = 100, 2000, 100, 5000
Obj = dict[str, Any]




def api_base(base_url: str | None) -> str:
    """``settings.base_url`` as the API root: a host root gets ``/books/v3``."""
    url = (base_url or DEFAULT_BASE_URL).rstrip("/")
    return url if url.endswith(("/books/v3", "/books/v4")) else url + API_ROOT


def contact_body(customer: Customer, vat_fields: Obj | None = None) -> Obj:
    address = customer.billing_address
    person: Obj = {"email": customer.email, "is_primary_contact": True}
    body: Obj = {
        "contact_name": clip(customer.name, 200),
        "company_name": clip(customer.name, 200),
        "contact_type": "customer",
        "billing_address": {"address": address.line1, "street2": address.line2,
                            "city": address.city, "state": address.region,
                            "zip": address.postal_code, "country": address.country},
        "contact_persons": [person] if customer.email else [],
        "notes": f"autoinvoice customer id: {customer.id}",
    }
    if customer.vat_id:
        body["vat_reg_no"] = customer.vat_id
    return {**body, **(vat_fields or {})}


def reference(invoice: Invoice) -> str:
    """The invoice's ``reference_number``: the client's PO first (it is what their accounts
    payable match on), then our job id."""
    ref = f"{invoice.po_number} / {invoice.job_id}" if invoice.po_number else invoice.job_id
    return clip(ref, REFERENCE_MAX)


def invoice_body(invoice: Invoice, customer_id: str, lines: list[Obj]) -> Obj:
    return {
        "customer_id": customer_id,
        "invoice_number": invoice.number,
        "reference_number": reference(invoice),
        "date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "is_inclusive_tax": False,
        "line_items": lines,
        "notes": clip(notes(invoice), NOTES_MAX),
    }


def notes(invoice: Invoice) -> str:
    said = list(invoice.notes)
    said += [reason for _, reason in invoice.exemption_reasons if reason not in said]
    job = f"Job {invoice.job_id}" + (f", PO {invoice.po_number}" if invoice.po_number else "")
    return "\n".join([*said, job])


def line_body(line: InvoiceLine, tax_id: str | None) -> Obj:
    description = line.description if not line.coverage else \
        f"{line.description} ({line.coverage})"
    body: Obj = {"name": clip(line.description, NAME_MAX),
                 "description": clip(description, DESCRIPTION_MAX),
                 "rate": line.unit_price, "quantity": line.quantity, "unit": line.unit}
    if tax_id is not None:
        body["tax_id"] = tax_id
    return body


def tax_body(percentage: Decimal) -> Obj:
    return {"tax_name": f"Tax {format(percentage, 'f')}%", "tax_percentage": percentage,
            "tax_type": "tax"}


def email_body(invoice: Obj, contact: Obj) -> Obj:
    emails = [p["email"] for p in contact.get("contact_persons") or [] if p.get("email")]
    emails = emails or ([contact["email"]] if contact.get("email") else [])
    if not emails:
        raise PermanentError(f"contact {contact.get('contact_id')} has no e-mail address on "
                             "Zoho Books; the invoice cannot be e-mailed", platform=PLATFORM,
                             code="no_email")
    number = invoice.get("invoice_number") or invoice["invoice_id"]
    return {"to_mail_ids": emails[:1], "subject": f"Invoice {number}",
            "body": f"Please find attached invoice {number} "
                    f"({invoice.get('reference_number') or ''}).".replace(" ()", "")}


def credit_note_body(credit: Invoice, customer_id: str, lines: list[Obj]) -> Obj:
    return {
        "customer_id": customer_id,
        "creditnote_number": credit.number,
        "reference_number": clip(credit.corrects or credit.job_id, REFERENCE_MAX),
        "date": credit.issue_date.isoformat(),
        "is_inclusive_tax": False,
        "line_items": lines,
        "notes": clip(f"Credits invoice {credit.corrects} in full (the job changed; a "
                      "corrected invoice follows).", NOTES_MAX),
    }


def remote_invoice(obj: Obj) -> RemoteInvoice:
    return RemoteInvoice(id=str(obj["invoice_id"]), total=money(obj["total"],
                         obj["currency_code"]), status=obj["status"],
                         number=obj.get("invoice_number"), url=obj.get("invoice_url"))


def money(value: Any, currency: str) -> Money:
    """A Zoho amount (a JSON number parsed as Decimal) as Money; never through float."""
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    return Money(quantize(amount, currency), currency)


dumps = exact_json  # JSON with exact decimal numbers (the shared encoder)


def clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def body_of(response: httpx.Response) -> Obj:
    """The JSON body of a 2xx answer; a non-zero ``code`` in it is an error all the same."""
    try:
        body = json.loads(response.text or "{}", parse_float=Decimal)
    except ValueError:
        raise PermanentError(f"Zoho Books answered {response.request.method} "
                             f"{response.request.url.path} with a body that is not JSON",
                             platform=PLATFORM, status=response.status_code) from None
    if not isinstance(body, dict):
        raise PermanentError("Zoho Books answered with JSON that is not an object",
                             platform=PLATFORM, status=response.status_code)
    if body.get("code", 0) != 0:
        raise _map_error(response)
    return body


def _map_error(response: httpx.Response) -> ConnectorError:
    """The one place Zoho's error body (``{"code", "message"}``) is read."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    status = response.status_code
    code = body.get("code")
    message = str(body.get("message") or f"HTTP {status}")
    common: dict[str, Any] = {"platform": PLATFORM, "status": status,
                              "code": None if code is None else str(code),
                              "request_id": response.headers.get("X-Request-Id")}
    if status == 429 or code in RATE_LIMIT_CODES:
        return RateLimited(message, retry_after=retry_after_seconds(response), **common)
    if status < 400:  # a 2xx with a non-zero code: Zoho refused the operation
        return (NotFound if code in NOT_FOUND_CODES else PermanentError)(message, **common)
    return class_for_status(status)(message, **common)
