"""Our objects -> Business Central API v2.0 bodies, and BC's JSON back (vendor field names stay
in this package).

Decimals cross the wire as exact JSON numbers both ways: ``dumps`` writes a ``Decimal`` as its
digits (BC's own examples send ``"unitPrice": 54.9``), ``loads`` reads every number with
``parse_float=Decimal``, so no amount ever passes through a float.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from autoinvoice.connectors.errors import PermanentError
from autoinvoice.connectors.http import exact_json
from autoinvoice.domain.invoice import Invoice, InvoiceLine
from autoinvoice.domain.job import Customer
from autoinvoice.domain.tax_outcome import keys_for, lookup

PLATFORM = "business_central"
Obj = dict[str, Any]

# Field lengths of the v1.0 spec (``BCOAS1.0.yaml``), unchanged in v2.0.
DESCRIPTION_MAX = 100  # salesInvoiceLine.description
EXTERNAL_DOC_MAX = 35  # salesInvoice.externalDocumentNumber
PO_MAX = 35  # salesInvoice.customerPurchaseOrderReference
CUSTOMER_NUMBER_MAX = 20  # customer.number
NAME_MAX = 100  # customer.displayName
EMAIL_MAX = 80  # customer.email
DEFAULT_SALES_ACCOUNT = "40100"  # overridden by the ``sales_account`` connection setting


# -- wire format --------------------------------------------------------------------------------

dumps = exact_json  # JSON with exact decimal numbers (the shared encoder)


def loads(text: str) -> Any:
    """BC's JSON with numbers as ``Decimal`` (``totalAmountIncludingTax`` 2519.5 stays exact)."""
    return json.loads(text, parse_float=Decimal)


def odata_literal(value: str) -> str:
    """A quoted OData string literal: single quotes doubled (OData ABNF ``SQUOTE-in-string``)."""
    return "'" + value.replace("'", "''") + "'"


# -- customers ----------------------------------------------------------------------------------

def customer_number(customer: Customer) -> str | None:
    """Our customer id as BC's customer ``number`` when it fits Code[20]."""
    return customer.id if len(customer.id) <= CUSTOMER_NUMBER_MAX else None


def customer_body(customer: Customer) -> Obj:
    address = customer.billing_address
    body: Obj = {
        "number": customer_number(customer),
        "displayName": clip(customer.name, NAME_MAX),
        "type": "Company",
        "addressLine1": address.line1,
        "addressLine2": address.line2 or None,
        "city": address.city,
        "state": address.region or None,
        "country": address.country,
        "postalCode": address.postal_code or None,
        "email": clip(customer.email, EMAIL_MAX) if customer.email else None,
        "taxRegistrationNumber": customer.vat_id,
    }
    return {k: v for k, v in body.items() if v is not None}


# -- invoices -----------------------------------------------------------------------------------

def reference(document: Invoice) -> str:
    """What goes into ``externalDocumentNumber``: our document number and the job id when both
    fit its 35 characters, else the number alone (unique per series, so still findable)."""
    both = " ".join(p for p in (document.number, document.job_id) if p)
    if len(both) <= EXTERNAL_DOC_MAX:
        return both
    if document.number:
        return clip(document.number, EXTERNAL_DOC_MAX)
    return clip(f"{document.job_id} r{document.revision}", EXTERNAL_DOC_MAX)


def invoice_body(invoice: Invoice, customer_id: str, settings: LineSettings) -> Obj:
    body: Obj = {
        "customerId": customer_id,
        "externalDocumentNumber": reference(invoice),
        "invoiceDate": iso(invoice.issue_date),
        "postingDate": iso(invoice.issue_date),
        "dueDate": iso(invoice.due_date),
        "currencyCode": invoice.currency,
        "salesInvoiceLines": document_lines(invoice, settings),
    }
    if invoice.po_number:
        body["customerPurchaseOrderReference"] = clip(invoice.po_number, PO_MAX)
    return body


def credit_memo_body(credit: Invoice, customer_id: str, invoice_id: str | None,
                     settings: LineSettings) -> Obj:
    body: Obj = {
        "customerId": customer_id,
        "externalDocumentNumber": reference(credit),
        "creditMemoDate": iso(credit.issue_date),
        "postingDate": iso(credit.issue_date),
        "dueDate": iso(credit.due_date),
        "currencyCode": credit.currency,
        "salesCreditMemoLines": document_lines(credit, settings),
    }
    if invoice_id is not None:  # applies the credit memo to the (unpaid) posted invoice
        body["invoiceId"] = invoice_id
    return body


class LineSettings:
    """Where our lines post in the tenant's books: the revenue G/L account of every line, and
    the company's own tax group (a line's ``taxCode``: a VAT product posting group, or a US
    tax group) per tax outcome, from ``platform.tax_groups``."""

    def __init__(self, sales_account: str, tax_groups: Mapping[str, str]) -> None:
        self.sales_account = sales_account
        self.tax_groups = dict(tax_groups)

    def tax_code(self, category: str, rate: Decimal) -> str:
        code = lookup(self.tax_groups, category, rate)
        if code is None:
            exact, general = keys_for(category, rate)
            raise PermanentError(
                f"platform.tax_groups maps no tax group for {exact}: add \"{exact}\" or "
                f"\"{general}\" with one of the company's tax groups",
                platform=PLATFORM, code="unmapped_tax_outcome")
        return code

    @classmethod
    def parse(cls, sales_account: str | None, tax_groups: Mapping[str, str] | None
              ) -> LineSettings:
        return cls(sales_account or DEFAULT_SALES_ACCOUNT, tax_groups or {})


def document_lines(document: Invoice, settings: LineSettings) -> list[Obj]:
    """A comment line naming our job and number, one Account line per invoice line (covered
    lines too, at their price 0, followed by a comment saying why), then the legal notes."""
    header = f"Job {document.job_id}, {kind_word(document)} {document.number or '(unnumbered)'}"
    if document.corrects:
        header += f", credits invoice {document.corrects}"
    lines = comment_lines(header)
    for line in document.lines:
        lines.append(account_line(line, settings))
        lines.extend(comment_lines(line.description[DESCRIPTION_MAX:]))
        if line.coverage:
            lines.extend(comment_lines(coverage_text(line)))
    for note in legal_notes(document):
        lines.extend(comment_lines(note))
    return lines


def account_line(line: InvoiceLine, settings: LineSettings) -> Obj:
    return {
        "lineType": "Account",
        "lineObjectNumber": settings.sales_account,
        "description": line.description[:DESCRIPTION_MAX],
        "quantity": line.quantity,
        "unitPrice": line.unit_price,
        "taxCode": settings.tax_code(line.tax_category, line.tax_rate),
    }


def comment_lines(words: str) -> list[Obj]:
    return [{"lineType": "Comment", "description": words[i:i + DESCRIPTION_MAX]}
            for i in range(0, len(words), DESCRIPTION_MAX) if words[i:i + DESCRIPTION_MAX].strip()]


def coverage_text(line: InvoiceLine) -> str:
    said = f"Covered: {line.coverage}"
    if line.list_unit_price is not None:
        said += f" (list price {text(line.list_unit_price)} per {line.unit})"
    return said


def legal_notes(document: Invoice) -> list[str]:
    said = list(document.notes)
    return said + [reason for _, reason in document.exemption_reasons if reason not in said]


def kind_word(document: Invoice) -> str:
    return "credit note" if document.is_credit_note else "invoice"


# -- small helpers ------------------------------------------------------------------------------

def iso(day: date) -> str:
    return day.isoformat()


def text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"
