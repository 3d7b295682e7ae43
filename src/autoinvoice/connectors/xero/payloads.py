"""Our objects -> Xero request bodies, and Xero's answers -> ours (vendor field names stay in
this package). Amounts go out as exact JSON numbers (``Decimal``), never as floats."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from autoinvoice.connectors.base import RemoteCreditNote, RemoteInvoice, RemoteStatus
from autoinvoice.connectors.errors import PermanentError
from autoinvoice.domain.invoice import Invoice, InvoiceLine
from autoinvoice.domain.job import Customer
from autoinvoice.domain.money import Money

PLATFORM = "xero"
Obj = dict[str, Any]
UNIT_DP = 4  # ``unitdp=4``: Xero keeps four decimals of UnitAmount, two of everything else
REFERENCE_MAX = 255
DESCRIPTION_MAX = 4000
NAME_MAX = 255
CONTACT_NUMBER_MAX = 50
_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")


# ---------------------------------------------------------------------------------------------
# Requests


def contact_body(customer: Customer, name: str) -> Obj:
    address = customer.billing_address
    contact: Obj = {
        "ContactNumber": customer.id[:CONTACT_NUMBER_MAX],
        "Name": clip(name, NAME_MAX),
        "IsCustomer": True,
        "Addresses": [{k: v for k, v in {
            "AddressType": "POBOX", "AddressLine1": address.line1,
            "AddressLine2": address.line2, "City": address.city, "Region": address.region,
            "PostalCode": address.postal_code, "Country": address.country}.items() if v}],
    }
    if customer.email:
        contact["EmailAddress"] = customer.email
    if customer.vat_id:
        contact["TaxNumber"] = customer.vat_id[:50]
    return {"Contacts": [contact]}


def reference(invoice: Invoice) -> str:
    """Our reference on the Xero invoice: number, job (and revision), PO -- shown to the client
    and searched by ``find_by_reference`` (exact match)."""
    job = f"job {invoice.job_id}" + (f" rev {invoice.revision}" if invoice.revision > 1 else "")
    parts = [invoice.number or "", job, f"PO {invoice.po_number}" if invoice.po_number else ""]
    return clip(" / ".join(p for p in parts if p), REFERENCE_MAX)


def invoice_body(invoice: Invoice, contact_id: str,
                 tax_types: Mapping[tuple[str, Decimal], str], account_code: str) -> Obj:
    """A DRAFT ACCREC invoice (``send_invoice`` authorises it). Legal notes (reverse charge,
    exemption) become description-only lines: Xero invoices have no notes field, and a line with
    only a Description is Xero's documented way to print text on the document. ``tax_types``:
    the organisation's TaxType per (category, rate) of our lines."""
    lines = [line_item(line, tax_types[(line.tax_category.value, line.tax_rate)], account_code,
                       invoice.currency)
             for line in invoice.lines]
    lines += [{"Description": clip(note, DESCRIPTION_MAX)} for note in legal_notes(invoice)]
    body: Obj = {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact_id},
        "Date": invoice.issue_date.isoformat(),
        "DueDate": invoice.due_date.isoformat(),
        "LineAmountTypes": "Exclusive",
        "Reference": reference(invoice),
        "CurrencyCode": invoice.currency,
        "Status": "DRAFT",
        "LineItems": lines,
    }
    if invoice.number:
        body["InvoiceNumber"] = invoice.number
    return {"Invoices": [body]}


def line_item(line: InvoiceLine, tax_type: str, account_code: str, currency: str) -> Obj:
    quantity, unit = line.quantity, line.unit_price
    description = line_text(line)
    if -unit.normalize().as_tuple().exponent > UNIT_DP:  # type: ignore[operator]
        # More than four decimals: one unit of the rounded amount, the detail in the text
        # (Xero's own advice in "Rounding in Xero").
        description = f"{description} ({text(quantity)} {line.unit} @ {text(unit)})"
        quantity, unit = Decimal(1), line.amount.amount
    return {"Description": clip(description, DESCRIPTION_MAX), "Quantity": quantity,
            "UnitAmount": unit, "AccountCode": account_code, "TaxType": tax_type}


def line_text(line: InvoiceLine) -> str:
    text_ = line.description
    if line.coverage:
        listed = f", list price {text(line.list_unit_price)}" if line.list_unit_price else ""
        text_ = f"{text_} (covered: {line.coverage}{listed})"
    return text_


def legal_notes(invoice: Invoice) -> list[str]:
    said = list(invoice.notes)
    return said + [reason for _, reason in invoice.exemption_reasons if reason not in said]


def status_body(invoice_id: str, status: str) -> Obj:
    return {"Invoices": [{"InvoiceID": invoice_id, "Status": status}]}


def tax_rate_body(percentage: Decimal) -> Obj:
    return {"TaxRates": [{"Name": f"autoinvoice {text(percentage)}%", "TaxComponents": [
        {"Name": "Tax", "Rate": percentage, "IsCompound": False, "IsNonRecoverable": False}]}]}


def credit_note_reference(credit: Invoice) -> str:
    parts = [credit.number or "", f"credits {credit.corrects}" if credit.corrects else "",
             f"job {credit.job_id}"]
    return clip(" / ".join(p for p in parts if p), REFERENCE_MAX)


def credit_note_body(invoice: Obj, credit: Invoice) -> Obj:
    """A full credit of ``invoice`` (Xero's object): its own line items again, so Xero's
    per-line rounding gives exactly the invoice's total."""
    keep = ("Description", "Quantity", "UnitAmount", "AccountCode", "TaxType", "ItemCode")
    lines = [{k: item[k] for k in keep if item.get(k) not in (None, "")}
             for item in invoice.get("LineItems") or []]
    body: Obj = {
        "Type": "ACCRECCREDIT",
        "Contact": {"ContactID": need(invoice, "Contact")["ContactID"]},
        "Date": credit.issue_date.isoformat(),
        "LineAmountTypes": invoice.get("LineAmountTypes") or "Exclusive",
        "Reference": credit_note_reference(credit),
        "CurrencyCode": invoice.get("CurrencyCode") or credit.currency,
        "Status": "AUTHORISED",
        "LineItems": [line for line in lines if line],
    }
    if credit.number:
        body["CreditNoteNumber"] = credit.number
    return {"CreditNotes": [body]}


def allocation_body(invoice_id: str, amount: Decimal, when: date) -> Obj:
    return {"Allocations": [{"Amount": amount, "Date": when.isoformat(),
                             "Invoice": {"InvoiceID": invoice_id}}]}


def where_literal(value: str) -> str:
    """A string in a Xero ``where`` filter: double quotes, inner quotes and backslashes
    escaped with a backslash."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---------------------------------------------------------------------------------------------
# Responses


def parse_json(content: bytes, what: str) -> Obj:
    """Xero's JSON with every non-integer number as an exact ``Decimal``."""
    try:
        data = json.loads(content, parse_float=Decimal)
    except ValueError:
        raise PermanentError(f"Xero answered {what} with a body that is not JSON",
                             platform=PLATFORM) from None
    if not isinstance(data, dict):
        raise PermanentError(f"Xero answered {what} with JSON that is not an object",
                             platform=PLATFORM)
    return data


def need(obj: Mapping[str, Any], field: str) -> Any:
    value = obj.get(field)
    if value is None:
        raise PermanentError(f"Xero's answer lacks {field!r}", platform=PLATFORM)
    return value


def only(body: Obj, collection: str) -> Obj:
    items = body.get(collection)
    if not isinstance(items, list) or not items or not isinstance(items[0], dict):
        raise PermanentError(f"Xero's answer has no {collection}", platform=PLATFORM)
    item: Obj = items[0]
    return item


def money(obj: Mapping[str, Any], field: str, currency: str) -> Money:
    raw = obj.get(field, 0)
    try:
        return Money(Decimal(str(raw)), currency)
    except (InvalidOperation, ValueError):
        raise PermanentError(f"Xero's {field} {raw!r} is not an amount",
                             platform=PLATFORM) from None


def currency_of(obj: Mapping[str, Any], default: str) -> str:
    return str(obj.get("CurrencyCode") or default)


def remote_invoice(obj: Obj, default_currency: str) -> RemoteInvoice:
    currency = currency_of(obj, default_currency)
    return RemoteInvoice(id=str(need(obj, "InvoiceID")), total=money(obj, "Total", currency),
                         status=str(need(obj, "Status")), number=obj.get("InvoiceNumber"))


def remote_status(obj: Obj, default_currency: str) -> RemoteStatus:
    currency = currency_of(obj, default_currency)
    return RemoteStatus(status=str(need(obj, "Status")), total=money(obj, "Total", currency),
                        amount_paid=money(obj, "AmountPaid", currency),
                        balance=money(obj, "AmountDue", currency),
                        paid_at=xero_datetime(obj.get("FullyPaidOnDate")))


def remote_credit_note(obj: Obj, default_currency: str) -> RemoteCreditNote:
    currency = currency_of(obj, default_currency)
    return RemoteCreditNote(id=str(need(obj, "CreditNoteID")),
                            total=money(obj, "Total", currency),
                            number=obj.get("CreditNoteNumber"))


def xero_datetime(raw: Any) -> datetime | None:
    """Xero's JSON dates: ``/Date(1518652800000+0000)/`` (milliseconds, UTC) or ISO 8601."""
    if not raw:
        return None
    match = _MS_DATE.fullmatch(str(raw))
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, UTC)
    try:
        parsed = datetime.fromisoformat(str(raw))
    except ValueError:
        raise PermanentError(f"Xero's date {raw!r} is not a date", platform=PLATFORM) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Exact JSON


def text(value: Decimal | None) -> str:
    return "" if value is None else format(value.normalize(), "f")


def percentage_of(rate: Decimal) -> Decimal:
    return (rate * 100).normalize()


def clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"
