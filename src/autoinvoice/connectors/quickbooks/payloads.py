"""Our objects -> QuickBooks Online JSON bodies (vendor field names stay in this package).

Amounts, quantities and rates are ``Decimal`` all the way and go out as JSON numbers with their
exact digits (``543.75``; Finance.xsd / SalesTax.xsd type ``Amount``, ``Qty``, ``UnitPrice``,
``TotalTax``, ``TotalAmt``, ``RateValue`` as ``xs:decimal``), written by the HTTP layer's
``exact_json``, never through a float; responses are parsed with ``parse_float=Decimal``.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from autoinvoice.connectors.errors import PermanentError
from autoinvoice.domain.invoice import Invoice, InvoiceLine, LineKind
from autoinvoice.domain.job import Address, Customer

PLATFORM = "quickbooks"
Obj = dict[str, Any]

DOC_NUMBER_MAX = 21  # Invoice.DocNumber / CreditMemo.DocNumber
DISPLAY_NAME_MAX = 500  # Customer.DisplayName
PRIVATE_NOTE_MAX = 4000  # PrivateNote
MEMO_MAX = 1000  # CustomerMemo
DESCRIPTION_MAX = 4000  # Line.Description
REQUEST_ID_MAX = 50  # requestid query parameter (36 in batch calls)
CUSTOMER_MARK = "autoinvoice-customer-id:"
REFERENCE_MARK = "autoinvoice"

#: One service item per line kind, created once per company (find by Name first).
ITEM_NAMES: dict[LineKind, str] = {
    LineKind.LABOR: "Labor",
    LineKind.TRAVEL: "Travel",
    LineKind.PART: "Parts",
    LineKind.FEE: "Fees",
    LineKind.MILEAGE: "Mileage",
    LineKind.SERVICE: "Service",
}


def request_id(key: str) -> str:
    """Our idempotency key as a QuickBooks ``requestid`` (at most 50 characters): kept as is
    when it fits, else shortened to a digest that stays deterministic."""
    if len(key) <= REQUEST_ID_MAX:
        return key
    return "ai-" + hashlib.sha256(key.encode()).hexdigest()[: REQUEST_ID_MAX - 3]


def decimal_text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def exact(value: Decimal) -> Decimal:
    """A quantity, price or rate as a JSON number: its significant digits, no exponent."""
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal == normal.to_integral() else normal


def money(value: Decimal) -> Decimal:
    """An amount as a JSON number with its two decimals (``543.75``, ``0.00``)."""
    return value.quantize(Decimal("0.01"))


def quoted(value: str) -> str:
    """A literal for the QuickBooks query language: single quotes escaped with a backslash."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


# -- customers ------------------------------------------------------------------------------


def display_names(customer: Customer) -> tuple[str, str]:
    """The plain DisplayName, and the one used when the name is taken by another customer,
    a vendor or an employee (DisplayName is one name space for all three)."""
    suffix = f" [{customer.id}]"
    plain = clip(customer.name.strip(), DISPLAY_NAME_MAX)
    return plain, clip(customer.name.strip(), DISPLAY_NAME_MAX - len(suffix)) + suffix


def customer_mark(customer_id: str) -> str:
    return f"{CUSTOMER_MARK} {customer_id}"


def is_ours(obj: Obj, customer_id: str) -> bool:
    return customer_mark(customer_id) in str(obj.get("Notes") or "")


def marked_elsewhere(obj: Obj) -> bool:
    return CUSTOMER_MARK in str(obj.get("Notes") or "")


def address_body(address: Address) -> Obj:
    """A ``PhysicalAddress``: AST reads ``CountrySubDivisionCode`` (state) and ``PostalCode``."""
    return {k: v for k, v in {
        "Line1": address.line1, "Line2": address.line2 or None, "City": address.city,
        "CountrySubDivisionCode": address.region or None,
        "PostalCode": address.postal_code or None, "Country": address.country,
    }.items() if v}


def customer_body(customer: Customer, display_name: str) -> Obj:
    body: Obj = {
        "DisplayName": display_name,
        "CompanyName": clip(customer.name, 100),
        "Notes": customer_mark(customer.id),
        "BillAddr": address_body(customer.billing_address),
    }
    if customer.email:
        body["PrimaryEmailAddr"] = {"Address": customer.email}
    if customer.tax_exempt_certificate:
        body["Taxable"] = False
        body["ResaleNum"] = clip(customer.tax_exempt_certificate, 16)
    return body


# -- items ----------------------------------------------------------------------------------


def item_body(name: str, income_account_id: str) -> Obj:
    return {"Name": name, "Type": "NonInventory" if name == "Parts" else "Service",
            "IncomeAccountRef": {"value": income_account_id},
            "Description": f"{name} (autoinvoice)"}


# -- invoices and credit memos --------------------------------------------------------------


def single_tax_rate(document: Invoice) -> Decimal | None:
    """The one sales-tax rate of the document (US model: one tax code per transaction),
    None when no line is taxed."""
    rates = sorted({line.tax_rate for line in document.lines if line.tax_rate > 0})
    if len(rates) > 1:
        shown = ", ".join(f"{decimal_text(r * 100)}%" for r in rates)
        raise PermanentError(
            f"QuickBooks Online (US) applies one sales tax rate per transaction; this "
            f"document taxes lines at {shown}: split it or set one rate", platform=PLATFORM,
            code="mixed_tax_rates")
    return rates[0] if rates else None


def reference_note(document: Invoice) -> str:
    """PrivateNote: our reference (job id, revision, number), not shown to the client."""
    kind = "credit note" if document.is_credit_note else "invoice"
    parts = [f"{REFERENCE_MARK} job {document.job_id} revision {document.revision} "
             f"{kind} {document.number or ''}".rstrip()]
    if document.corrects:
        parts.append(f"credits invoice {document.corrects}")
    if document.po_number:
        parts.append(f"PO {document.po_number}")
    return clip("; ".join(parts), PRIVATE_NOTE_MAX)


def customer_memo(document: Invoice, po_in_memo: bool) -> str:
    """CustomerMemo ("Message displayed on invoice"): legal notes (reverse charge,
    exemption), the PO when the company has no PO custom field, and the credited invoice."""
    said = list(document.notes)
    said += [reason for _, reason in document.exemption_reasons if reason not in said]
    if document.corrects:
        said.insert(0, f"Credits invoice {document.corrects} in full.")
    if po_in_memo and document.po_number:
        said.insert(0, f"PO {document.po_number}")
    return clip("\n".join(said), MEMO_MAX)


def line_description(line: InvoiceLine) -> str:
    text = line.description
    if line.coverage:
        text = f"{text} ({line.coverage})"
    return clip(text, DESCRIPTION_MAX)


def line_body(line: InvoiceLine, line_no: int, item: Obj, service_date: str | None) -> Obj:
    detail: Obj = {
        "ItemRef": {"value": item["Id"], "name": item["Name"]},
        "Qty": exact(line.quantity),
        "UnitPrice": exact(line.unit_price),
        "TaxCodeRef": {"value": "TAX" if line.tax_rate > 0 else "NON"},
    }
    if service_date:
        detail["ServiceDate"] = service_date
    return {"LineNum": line_no, "DetailType": "SalesItemLineDetail",
            "Amount": money(line.amount.amount), "Description": line_description(line),
            "SalesItemLineDetail": detail}


def tax_detail(document: Invoice, tax_code_id: str | None, automated: bool) -> Obj | None:
    """``TxnTaxDetail``. Manual US model: the tax code whose rate QuickBooks applies. Automated
    sales tax: the tax code is only a placeholder AST replaces, and our tax goes as the explicit
    ``TotalTax`` AST honours (prorated over its own rates), with ``UseAutomatedSalesTax``
    false so AST's rates do not win over it."""
    if tax_code_id is None:
        return None
    if not automated:
        return {"TxnTaxCodeRef": {"value": tax_code_id}}
    return {"TxnTaxCodeRef": {"value": tax_code_id},
            "TotalTax": money(document.tax_total.amount), "UseAutomatedSalesTax": False}


def ship_to(document: Invoice) -> Address:
    """Where the service was done (the job's site), else the customer's billing address: the
    destination AST taxes by."""
    site = document.job.site
    return site.address if site is not None else document.customer.billing_address


def document_body(document: Invoice, customer_id: str, lines: list[Obj],
                  tax: Obj | None, po_field: Obj | None) -> Obj:
    """An Invoice or a CreditMemo body (the same fields, CreditMemo has no DueDate)."""
    body: Obj = {
        "CustomerRef": {"value": customer_id},
        "DocNumber": clip(document.number or "", DOC_NUMBER_MAX) or None,
        "TxnDate": document.issue_date.isoformat(),
        "CurrencyRef": {"value": document.currency},
        "PrivateNote": reference_note(document),
        "Line": lines,
        "ShipAddr": address_body(ship_to(document)),
        "ShipFromAddr": address_body(document.seller.address),
    }
    if not body["DocNumber"]:
        del body["DocNumber"]
    if not document.is_credit_note:
        body["DueDate"] = document.due_date.isoformat()
    if tax is not None:
        body["TxnTaxDetail"] = tax
    memo = customer_memo(document, po_in_memo=po_field is None)
    if memo:
        body["CustomerMemo"] = {"value": memo}
    if document.customer.email:
        body["BillEmail"] = {"Address": document.customer.email}
    if po_field is not None and document.po_number:
        body["CustomField"] = [{**po_field, "Type": "StringType",
                                "StringValue": clip(document.po_number, 31)}]
    return body


def po_custom_field(preferences: Obj) -> Obj | None:
    """The sales-form custom field the company named for the PO (``SalesFormsPrefs``:
    ``UseSalesCustomN`` on and ``SalesCustomNameN`` like "PO"/"P.O. Number"), as
    ``{DefinitionId, Name}``; None when there is none (the PO then goes in the memo)."""
    groups = ((preferences.get("SalesFormsPrefs") or {}).get("CustomField")) or []
    values: dict[str, Any] = {}
    for group in groups:
        for field in group.get("CustomField") or []:
            values[str(field.get("Name"))] = field.get("BooleanValue", field.get("StringValue"))
    for n in (1, 2, 3):
        name = str(values.get(f"SalesFormsPrefs.SalesCustomName{n}") or "")
        used = values.get(f"SalesFormsPrefs.UseSalesCustom{n}") is True
        squeezed = name.upper().replace(".", "").replace(" ", "")
        if used and squeezed.startswith(("PO", "PURCHASEORDER")):
            return {"DefinitionId": str(n), "Name": name}
    return None
