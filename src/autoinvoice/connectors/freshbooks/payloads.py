"""Our objects -> FreshBooks request bodies, and FreshBooks objects -> ours (vendor field names
stay in this package).

Every accounting write is wrapped in its singular resource name (``{"client": …}``,
``{"invoice": …}``, ``{"credit_note": …}``, ``{"payment": …}``) and every answer is
``{"response": {"result": {<name>: …}}}``; amounts travel as ``{"amount": "12.34",
"code": "USD"}`` with the amount a decimal string.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from autoinvoice.connectors.base import RemoteCreditNote, RemoteInvoice
from autoinvoice.connectors.errors import PermanentError
from autoinvoice.domain.invoice import Invoice, InvoiceLine
from autoinvoice.domain.job import Customer
from autoinvoice.domain.money import Money, exponent

PLATFORM = "freshbooks"
#: Our customer id, kept in the client's admin ``note`` (FreshBooks clients have no metadata).
CUSTOMER_MARK = "autoinvoice-customer:"
#: The reference line we put first in the invoice ``notes``: job id, revision, our number.
REFERENCE_MARK = "autoinvoice-ref:"
NAME_MAX = 100  # line ``name`` (the item column); the full text goes in ``description``
Obj = dict[str, Any]


# -- clients ---------------------------------------------------------------------------------


def customer_note(customer: Customer) -> str:
    return f"{CUSTOMER_MARK}{customer.id}"


def client_body(customer: Customer, currency: str) -> Obj:
    address = customer.billing_address
    client: Obj = {
        "organization": customer.name,
        "email": customer.email or None,
        "p_street": address.line1,
        "p_street2": address.line2 or None,
        "p_city": address.city,
        "p_province": address.region or None,
        "p_code": address.postal_code or None,
        "p_country": address.country,
        "currency_code": currency,
        "vat_number": customer.vat_id or None,
        "note": customer_note(customer),
    }
    return {"client": {k: v for k, v in client.items() if v is not None}}


def is_ours(client: Obj, customer: Customer) -> bool:
    return customer_note(customer) in (client.get("note") or "")


# -- invoices --------------------------------------------------------------------------------


def reference(invoice: Invoice) -> str:
    """``autoinvoice-ref: job=WO-1 rev=1 number=NW-2026-00001``: how we recognise our invoice."""
    return (f"{REFERENCE_MARK} job={invoice.job_id} rev={invoice.revision} "
            f"number={invoice.number or '-'}")


def invoice_body(invoice: Invoice, customer_id: str) -> Obj:
    body: Obj = {
        "customerid": int(customer_id),
        "create_date": invoice.issue_date.isoformat(),
        "due_offset_days": (invoice.due_date - invoice.issue_date).days,
        "currency_code": invoice.currency,
        "invoice_number": invoice.number,
        "po_number": invoice.po_number,
        "notes": notes(invoice),
        "lines": [line_body(line, invoice.currency) for line in invoice.lines],
    }
    return {"invoice": {k: v for k, v in body.items() if v is not None}}


def notes(invoice: Invoice) -> str:
    """The reference line, the job, then the legal notes (reverse charge, exemptions), which
    must be printed on the document itself."""
    job = invoice.job
    said = [reference(invoice), f"Job {invoice.job_id}: {job.summary or job.service_type}"]
    if job.asset is not None:
        said.append(f"{job.asset.make} {job.asset.model} s/n {job.asset.serial}")
    legal = list(invoice.notes)
    legal += [reason for _, reason in invoice.exemption_reasons if reason not in legal]
    return "\n".join(said + legal)


def line_body(line: InvoiceLine, currency: str) -> Obj:
    """One ``type: 0`` (normal) line. FreshBooks multiplies ``qty`` by ``unit_cost`` and keeps
    the cost to the currency's minor unit, so a price with more digits (0.655/mi) is sent as
    one unit of our rounded line amount, the quantity and price in the description."""
    exact = _fits(line.unit_price, currency)
    body: Obj = {
        "type": 0,
        "name": clip(line.description, NAME_MAX),
        "description": line_description(line, currency, exact),
        "qty": text(line.quantity) if exact else "1",
        "unit_cost": {"amount": amount_text(line.unit_price, currency) if exact
                      else str(line.amount.amount), "code": currency},
    }
    if line.tax_rate:
        body["taxName1"] = tax_name(line.tax_rate)
        body["taxAmount1"] = text(percentage(line.tax_rate))
    return body


def line_description(line: InvoiceLine, currency: str, exact: bool) -> str:
    parts = [line.description]
    if not exact:
        parts.append(f"{text(line.quantity)} {line.unit} x {text(line.unit_price)} {currency}")
    if line.sku:
        parts.append(f"SKU {line.sku}")
    if line.technician:
        parts.append(f"Technician {line.technician}")
    if line.coverage:
        listed = (f" (list price {amount_text(line.list_unit_price, currency)})"
                  if line.list_unit_price is not None else "")
        parts.append(f"{line.coverage}{listed}")
    return " - ".join(parts)


def tax_name(rate: Decimal) -> str:
    return f"Tax {text(percentage(rate))}%"


def percentage(rate: Decimal) -> Decimal:
    """``Decimal("0.085")`` -> ``Decimal("8.5")`` (FreshBooks: "in percentage, up to 3
    decimal places")."""
    return (rate * 100).normalize()


def send_body(recipients: list[str]) -> Obj:
    return {"invoice": {"action_email": True, "email_recipients": recipients,
                        "email_include_pdf": True}}


DELETE_BODY: Obj = {"invoice": {"vis_state": 1}}


def credit_note_body(credit: Invoice, client_id: str) -> Obj:
    body: Obj = {
        "clientid": int(client_id),
        "create_date": credit.issue_date.isoformat(),
        "currency_code": credit.currency,
        "credit_number": credit.number,
        "credit_type": "goodwill",
        "language": "en",
        "notes": f"{credit_reference(credit)}\nCredits invoice {credit.corrects or ''} in full "
                 "(the job changed; a corrected invoice follows).",
        "lines": [line_body(line, credit.currency) for line in credit.lines],
    }
    return {"credit_note": {k: v for k, v in body.items() if v is not None}}


def credit_reference(credit: Invoice) -> str:
    return f"{REFERENCE_MARK} job={credit.job_id} credit_note={credit.number or '-'}"


# -- reading answers -------------------------------------------------------------------------


def result(body: Any, name: str) -> Any:
    """``response.result.<name>``, or a clear error naming what was missing."""
    try:
        found = body["response"]["result"][name]
    except (KeyError, TypeError):
        raise PermanentError(f"unexpected FreshBooks answer: no response.result.{name}",
                             platform=PLATFORM, code="bad_response") from None
    return found


def money(field: Any, currency: str, what: str) -> Money:
    """A FreshBooks ``{"amount": "12.34", "code": "USD"}`` as Money (never through float)."""
    try:
        code = field.get("code") or currency
        return Money(Decimal(str(field["amount"])), code)
    except (AttributeError, KeyError, TypeError, InvalidOperation, ValueError):
        raise PermanentError(f"unexpected FreshBooks answer: {what} is {field!r}",
                             platform=PLATFORM, code="bad_response") from None


def object_id(obj: Obj) -> str:
    found = obj.get("id", obj.get("invoiceid", obj.get("creditid")))
    if found is None:
        raise PermanentError("unexpected FreshBooks answer: object without an id",
                             platform=PLATFORM, code="bad_response")
    return str(found)


def remote_invoice(obj: Obj, currency: str) -> RemoteInvoice:
    return RemoteInvoice(id=object_id(obj), total=money(obj.get("amount"), currency, "amount"),
                         status=status_of(obj), number=obj.get("invoice_number"))


def remote_credit_note(obj: Obj, currency: str) -> RemoteCreditNote:
    return RemoteCreditNote(id=object_id(obj),
                            total=money(obj.get("amount"), currency, "amount"),
                            number=obj.get("credit_number"))


def status_of(obj: Obj) -> str:
    if obj.get("vis_state") == 1:
        return "deleted"
    return str(obj.get("v3_status") or obj.get("display_status") or "draft")


def paid_at(obj: Obj) -> datetime | None:
    raw = obj.get("date_paid")
    if not raw:
        return None
    try:
        day = date.fromisoformat(str(raw)[:10])
    except ValueError:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# -- text ------------------------------------------------------------------------------------


def _fits(price: Decimal, currency: str) -> bool:
    return -int(price.normalize().as_tuple().exponent) <= exponent(currency)


def amount_text(value: Decimal, currency: str) -> str:
    return f"{value:.{exponent(currency)}f}"


def text(value: Decimal) -> str:
    formatted = format(value.normalize(), "f")
    return "0" if formatted in ("-0", "") else formatted


def clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"
