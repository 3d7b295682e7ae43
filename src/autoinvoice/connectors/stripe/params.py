"""Our objects -> Stripe request parameters (vendor field names stay in this package)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from autoinvoice.connectors.base import RemoteCreditNote
from autoinvoice.connectors.errors import PermanentError
from autoinvoice.domain.invoice import Invoice, InvoiceLine
from autoinvoice.domain.job import Customer
from autoinvoice.domain.money import Money, exponent

PLATFORM = "stripe"
CUSTOMER_REF = "autoinvoice_customer_id"
TAX_REF = "autoinvoice_percentage"
CUSTOM_FIELD_MAX = 30  # Stripe: custom_fields name/value at most 30 characters
DESCRIPTION_MAX = 1500  # invoice description (memo)
FOOTER_MAX = 5000  # invoice footer
MEMO_MAX = 5000  # credit note memo
Obj = dict[str, Any]

def customer_params(customer: Customer) -> Obj:
    address = customer.billing_address
    return {
        "name": customer.name,
        "email": customer.email or None,
        "address": {"line1": address.line1, "line2": address.line2 or None,
                    "city": address.city, "state": address.region or None,
                    "postal_code": address.postal_code or None, "country": address.country},
        "metadata": {CUSTOMER_REF: customer.id},
    }


def invoice_params(invoice: Invoice, customer_id: str) -> Obj:
    metadata = {"job_id": invoice.job_id, "revision": str(invoice.revision),
                "tenant": invoice.tenant, "invoice_number": invoice.number}
    return {
        "customer": customer_id,
        "currency": invoice.currency.lower(),
        "collection_method": "send_invoice",
        "days_until_due": invoice.payment_terms_days,
        "auto_advance": False,
        "pending_invoice_items_behavior": "exclude",
        "description": clip(description(invoice), DESCRIPTION_MAX) or None,
        "metadata": {k: v for k, v in metadata.items() if v},
        "custom_fields": custom_fields(invoice) or None,
        # Legal notes (reverse charge, exemption certificate) must be on the document itself.
        "footer": clip(footer(invoice), FOOTER_MAX) or None,
    }


def footer(invoice: Invoice) -> str:
    said = list(invoice.notes)
    said += [reason for _, reason in invoice.exemption_reasons if reason not in said]
    return "\n".join(said)


def credit_note_params(invoice: Obj, lines: list[Obj], credit: Invoice) -> Obj:
    """A full credit of ``invoice`` (Stripe's object) for our credit note ``credit``."""
    status, total = invoice["status"], invoice["total"]
    if status not in ("open", "paid"):
        raise PermanentError(f"invoice {invoice['id']} is {status} on Stripe; only open or paid "
                             "invoices can be credited", platform=PLATFORM,
                             code=f"invoice_{status}")
    if status == "open" and invoice["amount_paid"]:
        raise PermanentError(f"invoice {invoice['id']} is partly paid; a full credit note needs "
                             "an operator (refund or record the payment first)",
                             platform=PLATFORM, code="invoice_partly_paid")
    metadata = {"job_id": credit.job_id, "revision": str(credit.revision),
                "tenant": credit.tenant, "credit_note_number": credit.number,
                "credits_invoice_number": credit.corrects}
    params: Obj = {
        "invoice": invoice["id"],
        "lines": credit_lines(lines, total, credit.corrects),
        "reason": "order_change",
        "memo": clip(f"Credit note {credit.number}: credits invoice {credit.corrects} in "
                      "full (the job changed; a corrected invoice follows).", MEMO_MAX),
        "metadata": {k: v for k, v in metadata.items() if v},
    }
    if status == "paid":
        params["out_of_band_amount"] = total
    return params


def credit_lines(lines: list[Obj], total: int, corrects: str | None) -> list[Obj]:
    if any(line["amount"] < 0 for line in lines):
        return [{"type": "custom_line_item", "quantity": 1, "unit_amount": total,
                 "description": f"Credit for invoice {corrects or ''}".strip()}]
    return [{"type": "invoice_line_item", "invoice_line_item": line["id"],
             "amount": line["amount"]} for line in lines if line["amount"] > 0]


def remote_credit_note(obj: Obj) -> RemoteCreditNote:
    return RemoteCreditNote(id=obj["id"], total=Money.from_minor(obj["total"],
                            obj["currency"].upper()), number=obj.get("number"),
                            url=obj.get("pdf"))


def description(invoice: Invoice) -> str:
    job = invoice.job
    parts = [job.summary or job.service_type.replace("_", " ")]
    if job.asset is not None:
        parts.append(f"{job.asset.make} {job.asset.model} s/n {job.asset.serial}")
    return " - ".join(parts)


def custom_fields(invoice: Invoice) -> list[dict[str, str]]:
    fields = [("Invoice no.", invoice.number), ("PO", invoice.po_number)]
    return [{"name": name, "value": clip(value, CUSTOM_FIELD_MAX)}
            for name, value in fields if value]


def item_params(line: InvoiceLine, line_no: int, currency: str, customer_id: str,
                 invoice_id: str) -> Obj:
    return {
        "customer": customer_id,
        "invoice": invoice_id,
        "currency": currency.lower(),
        "amount": line.amount.minor,
        "description": line_text(line, currency),
        "metadata": {"line_no": str(line_no), "kind": str(line.kind), "sku": line.sku},
    }


def line_text(line: InvoiceLine, currency: str) -> str:
    if line.quantity == 1:
        return line.description
    return (f"{line.description} ({text(line.quantity)} {line.unit} × "
            f"{unit_price_text(line.unit_price, currency)})")


def unit_price_text(price: Decimal, currency: str) -> str:
    """At least the currency's minor digits (145.00), more when the price has them (0.655)."""
    digits = max(exponent(currency), -int(price.normalize().as_tuple().exponent))
    return f"{price:.{digits}f}"


def tax_rate_params(percentage: Decimal) -> Obj:
    return {"display_name": "Tax", "description": f"autoinvoice {text(percentage)}%",
            "percentage": percentage, "inclusive": False,
            "metadata": {TAX_REF: text(percentage)}}


def percentage_of(rate: Decimal) -> Decimal:
    """Our tax rate as Stripe's percentage: ``Decimal("0.085")`` -> ``Decimal("8.5")``."""
    return (rate * 100).normalize()


def search_literal(value: str) -> str:
    """A quoted search value: backslashes and quotes escaped with a backslash (Stripe search)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"
