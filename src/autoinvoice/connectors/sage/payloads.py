"""Our objects -> Sage Accounting v3.1 request bodies, and Sage's answers -> ours.

Vendor field names stay in this package. Amounts go out as exact JSON numbers (``Decimal``
written by ``dumps``, never a float) and come back parsed as ``Decimal``.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

import httpx

from autoinvoice.connectors.base import RemoteCreditNote, RemoteInvoice, RemoteStatus, paid_on
from autoinvoice.connectors.errors import PermanentError
from autoinvoice.connectors.http import exact_json
from autoinvoice.domain.invoice import Invoice, InvoiceLine, TaxCategory
from autoinvoice.domain.job import Customer
from autoinvoice.domain.money import Money

PLATFORM = "sage"
REFERENCE_MAX = 25  # sales_invoice.reference: at most 25 characters
CUSTOMER_TYPE = "CUSTOMER"
Obj = dict[str, Any]


# -- idempotency ----------------------------------------------------------------------------

def idempotency_id(key: str) -> str:
    """Sage's ``idempotency_id``: a 32-character hyphenless hex GUID, derived from our stored
    key so that a retry (even after a restart) sends the very same one."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


# -- exact JSON -----------------------------------------------------------------------------

dumps = exact_json  # JSON with exact decimal numbers (the shared encoder)


def loads(response: httpx.Response) -> Any:
    """A Sage response body with every number read as ``Decimal``."""
    try:
        return json.loads(response.content, parse_float=Decimal)
    except ValueError:
        raise PermanentError("Sage answered with a body that is not JSON", platform=PLATFORM,
                             status=response.status_code) from None


# -- requests -------------------------------------------------------------------------------

def reference_of(invoice: Invoice) -> str:
    """Our invoice number (the job id while unnumbered) as Sage's 25-character reference."""
    return (invoice.number or invoice.job_id)[:REFERENCE_MAX]


def job_marker(invoice: Invoice) -> str:
    """The first line of the notes: how ``find_by_reference`` tells revisions apart."""
    return f"Job {invoice.job_id} revision {invoice.revision}"


def contact_body(customer: Customer, key: str) -> Obj:
    address = customer.billing_address
    main_address = {"address_line_1": address.line1, "address_line_2": address.line2 or None,
                    "city": address.city, "postal_code": address.postal_code or None,
                    "region": address.region or None, "country_id": address.country}
    person = {"name": customer.name, "email": customer.email, "is_main_contact": True}
    contact: Obj = {
        "name": customer.name,
        "contact_type_ids": [CUSTOMER_TYPE],
        "reference": customer.id,
        "tax_number": customer.vat_id,
        "main_address": _compact(main_address),
        "main_contact_person": _compact(person) if customer.email else None,
        "idempotency_id": idempotency_id(key),
    }
    return {"contact": _compact(contact)}


def invoice_notes(invoice: Invoice) -> str:
    head = job_marker(invoice)
    if invoice.po_number:
        head += f" · PO {invoice.po_number}"
    said = [head, *invoice.notes]
    said += [reason for _, reason in invoice.exemption_reasons if reason not in said]
    return "\n".join(said)


def line_description(line: InvoiceLine) -> str:
    if line.coverage:
        return f"{line.description} ({line.coverage})"
    return line.description


def line_body(line: InvoiceLine, ledger_account_id: str, tax_rate_id: str) -> Obj:
    return {
        "description": line_description(line),
        "ledger_account_id": ledger_account_id,
        "quantity": line.quantity,
        "unit_price": line.unit_price,
        "tax_rate_id": tax_rate_id,
        # v3.1 requires the line's tax amount for any rate that is not zero/exempt/no-tax
        "tax_amount": line.tax.amount,
    }


def invoice_body(invoice: Invoice, contact_id: str, lines: list[Obj], key: str) -> Obj:
    return {"sales_invoice": _compact({
        "contact_id": contact_id,
        "date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "reference": reference_of(invoice),
        "notes": invoice_notes(invoice),
        "currency_id": invoice.currency,
        "invoice_lines": lines,
        "idempotency_id": idempotency_id(key),
    })}


def credit_note_body(credit: Invoice, contact_id: str, original: Obj, lines: list[Obj],
                     key: str) -> Obj:
    said = [f"Credit note {credit.number}: credits invoice {credit.corrects} "
            f"(Sage {original.get('invoice_number') or original.get('id')}) in full",
            job_marker(credit), *credit.notes]
    return {"sales_credit_note": _compact({
        "contact_id": contact_id,
        "date": credit.issue_date.isoformat(),
        "original_invoice_date": original.get("date"),
        "reference": (credit.number or credit.job_id)[:REFERENCE_MAX],
        "notes": "\n".join(said),
        "currency_id": credit.currency,
        "credit_note_lines": lines,
        "idempotency_id": idempotency_id(key),
    })}


ZERO_KINDS = ("ZERO", "EXEMPT", "NO_TAX")


def zero_rate_preference(category: TaxCategory) -> tuple[str, ...]:
    """Which 0 % Sage rate suits an untaxed line of ``category``: Sage's built-in ids end with
    the kind (``GB_ZERO``, ``GB_EXEMPT``, ``GB_NO_TAX``). Reverse charge, intra-community,
    export and not-subject supplies are outside the seller's own VAT: "no tax"."""
    if category is TaxCategory.EXEMPT:
        return ("EXEMPT",)
    if category is TaxCategory.ZERO:
        return ("ZERO", "NO_TAX")
    return ("NO_TAX",)


def kind_of(rate: Obj) -> str | None:
    rate_id = str(rate.get("id", "")).upper()
    return next((k for k in ZERO_KINDS if rate_id.endswith("_" + k) or rate_id == k), None)


def rate_ids(rates: list[Obj]) -> list[str]:
    return [str(r["id"]) for r in rates]


def rate_for(rates: list[Obj], category: TaxCategory, rate: Decimal) -> str | None:
    """The id of the business's rate for a line of ``category`` at ``rate`` (None: none)."""
    if rate > 0:
        percentage = (rate * 100).normalize()
        taxed = [r for r in rates if kind_of(r) is None
                 and Decimal(str(r.get("percentage") or 0)) == percentage]
        return str(taxed[0]["id"]) if taxed else None
    for kind in zero_rate_preference(category):
        found = [r for r in rates if kind_of(r) == kind]
        if found:
            return str(found[0]["id"])
    return None


def unknown_rate_message(key: str, code: str, rates: list[Obj]) -> str:
    return (f"platform.tax_rates.\"{key}\" = {code!r}: this Sage business has no such tax "
            f"rate (its rates: {', '.join(rate_ids(rates))})")


def _compact(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if v is not None and v != ""}


# -- responses ------------------------------------------------------------------------------

def items(listing: Any) -> list[Obj]:
    """The ``$items`` of a Sage list response."""
    found = listing.get("$items") if isinstance(listing, dict) else None
    if not isinstance(found, list) or not all(isinstance(i, dict) for i in found):
        raise PermanentError("Sage list response has no valid '$items'", platform=PLATFORM)
    return found


def field(obj: Obj, name: str) -> Any:
    if name not in obj or obj[name] is None:
        raise PermanentError(f"Sage response has no {name!r} (object {obj.get('id')!r})",
                             platform=PLATFORM)
    return obj[name]


def amount(obj: Obj, name: str, currency: str) -> Money:
    value = field(obj, name)
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise PermanentError(f"Sage response has a non-numeric {name!r}: {value!r}",
                             platform=PLATFORM)
    try:
        return Money(Decimal(value), currency)
    except ArithmeticError:
        raise PermanentError(f"Sage response has a non-numeric {name!r}: {value!r}",
                             platform=PLATFORM) from None


def nested_id(obj: Obj, name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        raise PermanentError(f"Sage response has no {name}.id (object {obj.get('id')!r})",
                             platform=PLATFORM)
    return str(value["id"])


def currency_of(obj: Obj, fallback: str) -> str:
    value = obj.get("currency")
    return str(value["id"]) if isinstance(value, dict) and value.get("id") else fallback


def remote_invoice(obj: Obj, fallback_currency: str) -> RemoteInvoice:
    currency = currency_of(obj, fallback_currency)
    number = obj.get("invoice_number")
    return RemoteInvoice(id=str(field(obj, "id")),
                         total=amount(obj, "total_amount", currency),
                         status=nested_id(obj, "status").lower(),
                         number=str(number) if number else None)


def remote_credit_note(obj: Obj, fallback_currency: str) -> RemoteCreditNote:
    currency = currency_of(obj, fallback_currency)
    number = obj.get("credit_note_number")
    return RemoteCreditNote(id=str(field(obj, "id")),
                            total=amount(obj, "total_amount", currency),
                            number=str(number) if number else None)


def remote_status(obj: Obj, fallback_currency: str) -> RemoteStatus:
    currency = currency_of(obj, fallback_currency)
    return RemoteStatus(status=nested_id(obj, "status").lower(),
                        total=amount(obj, "total_amount", currency),
                        amount_paid=amount(obj, "total_paid", currency),
                        balance=amount(obj, "outstanding_amount", currency),
                        paid_at=paid_on(obj.get("last_paid"), platform=PLATFORM,
                                        field="last_paid"))

