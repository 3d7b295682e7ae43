"""The objects of the Xero stand-in: contacts, tax rates, invoices, credit notes, payments.

Totals the way Xero computes them ("Rounding in Xero"): ``UnitAmount`` rounded to ``unitdp``
(2, or 4 with ``unitdp=4``), ``LineAmount = round(Quantity × UnitAmount, 2)``, tax per line
``TaxAmount = round(LineAmount × EffectiveRate / 100, 2)`` (inclusive lines: the tax inside
the line amount), then ``SubTotal``, ``TotalTax`` and ``Total`` summed from the lines; half-up
rounding. Not locked itself: ``XeroSandbox`` holds its lock around every call.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

Obj = dict[str, Any]
CENT = Decimal("0.01")
ACCOUNTS = {"200": "Sales", "260": "Other Revenue", "400": "Advertising"}
REVENUE_ACCOUNTS = frozenset({"200", "260"})
#: (TaxType, Name, rate %, ReportTaxType, can apply to revenue)
TaxRateSeed = tuple[str, str, str, str, bool]
#: One realistic organisation per country: the tax rates Xero sets up by default in that
#: edition, as developer.xero.com/documentation/api/accounting/types lists them ("Tax Types":
#: TaxType, rate, name; "Report Tax Types" per edition), each with the ``ReportTaxType`` of
#: ``xero_accounting.yaml``'s ``TaxRate.ReportTaxType`` enum. Which ReportTaxType Xero gives
#: ZERORATEDOUTPUT (we say OUTPUT: the UK list has no zero-rated report type) is inferred.
ORGANISATIONS: dict[str, tuple[str, str, str, tuple[TaxRateSeed, ...]]] = {
    # the stand-in's original US company (kept: earlier tests rely on its 15 % OUTPUT)
    "US": ("Demo Company (US)", "USD", "US", (
        ("NONE", "Tax Exempt", "0", "NONE", True),
        ("OUTPUT", "Sales Tax", "15", "OUTPUT", True),
        ("INPUT", "Tax on Purchases", "0", "INPUT", False),
    )),
    # a UK VAT-registered company: Xero's UK default rates
    "GB": ("Demo Company (UK)", "GBP", "UK", (
        ("OUTPUT2", "20% (VAT on Income)", "20", "OUTPUT", True),
        ("RROUTPUT", "5% (VAT on Income)", "5", "OUTPUT", True),
        ("ZERORATEDOUTPUT", "Zero Rated Income", "0", "OUTPUT", True),
        ("EXEMPTOUTPUT", "Exempt Income", "0", "EXEMPTOUTPUT", True),
        ("NONE", "No VAT", "0", "NONE", True),
        ("ECZROUTPUT", "Zero Rated EC Goods Income", "0", "ECOUTPUT", True),
        ("ECZROUTPUTSERVICES", "Zero Rated EC Services", "0", "ECOUTPUTSERVICES", True),
        ("CAPEXOUTPUT2", "20% (VAT on Capital Sales)", "20", "CAPITALSALESOUTPUT", False),
        ("INPUT2", "20% (VAT on Expenses)", "20", "INPUT", False),
        ("ECACQUISITIONS", "EC Acquisitions (20%)", "20", "ECACQUISITIONS", False),
        ("REVERSECHARGES", "Reverse Charge Expenses (20%)", "20", "REVERSECHARGES", False),
    )),
    # a German company on Xero's Global edition (there is no German edition): the Global
    # defaults plus the rates its accountant set up, each reported as plain OUTPUT -- so
    # reverse charge has no EC type here and must be mapped (``platform.tax_types``)
    "DE": ("Druckluft Service GmbH", "EUR", "GLOBAL", (
        ("NONE", "Tax Exempt", "0", "NONE", True),
        ("OUTPUT", "Tax on Sales", "0", "OUTPUT", True),
        ("INPUT", "Tax on Purchases", "0", "INPUT", False),
        ("TAX001", "USt 19%", "19", "OUTPUT", True),
        ("TAX002", "USt 7%", "7", "OUTPUT", True),
        ("TAX003", "Steuerfrei (§ 4 UStG)", "0", "EXEMPTOUTPUT", True),
        ("TAX004", "Reverse Charge EU (§ 13b UStG)", "0", "OUTPUT", True),
        ("TAX005", "Innergemeinschaftliche Lieferung", "0", "OUTPUT", True),
        ("TAX006", "Ausfuhr (Drittland)", "0", "OUTPUT", True),
    )),
}
EDITABLE = ("DRAFT", "SUBMITTED")


class XeroError(Exception):
    """A 400 ``ValidationException`` (or another status) in Xero's shape."""

    def __init__(self, messages: str | list[str], status: int = 400, *,
                 element: Obj | None = None, kind: str = "ValidationException") -> None:
        self.messages = [messages] if isinstance(messages, str) else messages
        super().__init__("; ".join(self.messages))
        self.status, self.element, self.kind = status, element or {}, kind

    def body(self) -> Obj:
        if self.status != 400:
            return {"Title": self.kind, "Status": self.status, "Detail": self.messages[0]}
        element = {**self.element, "ValidationErrors": [{"Message": m} for m in self.messages]}
        return {"ErrorNumber": 10, "Type": self.kind,
                "Message": "A validation exception occurred", "Elements": [element]}


def not_found() -> XeroError:
    return XeroError("The resource you're looking for cannot be found", 404, kind="NotFound")


def ms_date(when: datetime | date) -> str:
    """Xero's JSON date: ``/Date(1518652800000+0000)/``."""
    moment = when if isinstance(when, datetime) else datetime(when.year, when.month, when.day,
                                                              tzinfo=UTC)
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def decimal(value: Any, field: str, element: Obj) -> Decimal:
    """A JSON number, as ``xero_accounting.yaml`` types amounts, quantities and rates
    (``type: number``); a string is refused (stricter than Xero may be: its reaction to a
    quoted number is not documented)."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise XeroError(f"{field} must be a number", element=element)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise XeroError(f"{field} must be a number", element=element) from None


def iso_date(value: Any, field: str, element: Obj) -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise XeroError(f"{field} is not a valid date", element=element) from None


class Ledger:
    def __init__(self, now: Callable[[], datetime], base_currency: str = "USD",
                 country: str = "US") -> None:
        self.now, self.base_currency, self.country = now, base_currency, country
        self.contacts: dict[str, Obj] = {}
        self.tax_rates: dict[str, Obj] = {}
        self.invoices: dict[str, Obj] = {}
        self.credit_notes: dict[str, Obj] = {}
        self.emails: dict[str, int] = {}
        self._numbers = {"ACCREC": 0, "ACCRECCREDIT": 0}
        for tax_type, name, rate, report, revenue in ORGANISATIONS[country][3]:
            self._add_tax_rate(tax_type, name, Decimal(rate), report, revenue=revenue)

    # -- contacts -----------------------------------------------------------------------------

    def create_contact(self, data: Obj) -> Obj:
        name = str(data.get("Name") or "").strip()
        element = {"Name": name}
        if not name:
            raise XeroError("The contact name must be specified.", element=element)
        if any(c["Name"].lower() == name.lower() for c in self.contacts.values()
               if c["ContactStatus"] == "ACTIVE"):
            raise XeroError(f"The contact name {name} is already assigned to another contact. "
                            "The contact name must be unique across all active contacts.",
                            element=element)
        contact: Obj = {"ContactID": str(uuid.uuid4()), "ContactStatus": "ACTIVE", "Name": name,
                   "ContactNumber": data.get("ContactNumber") or "",
                   "EmailAddress": data.get("EmailAddress") or "",
                   "TaxNumber": data.get("TaxNumber") or "",
                   "Addresses": list(data.get("Addresses") or []), "Phones": [],
                   "IsCustomer": bool(data.get("IsCustomer", True)), "IsSupplier": False,
                   "UpdatedDateUTC": ms_date(self.now()), "HasValidationErrors": False}
        self.contacts[str(contact["ContactID"])] = contact
        return contact

    def contact_for(self, ref: Any, element: Obj) -> Obj:
        if not isinstance(ref, dict):
            raise XeroError("A Contact must be specified for this type of transaction",
                            element=element)
        if ref.get("ContactID"):
            contact = self.contacts.get(str(ref["ContactID"]))
            if contact is None:
                raise XeroError("Contact could not be found", element=element)
            return contact
        if ref.get("Name"):  # Xero matches the name, or creates the contact
            for contact in self.contacts.values():
                if contact["Name"] == ref["Name"]:
                    return contact
            return self.create_contact(ref)
        raise XeroError("A Contact must be specified for this type of transaction",
                        element=element)

    # -- tax rates ----------------------------------------------------------------------------

    def create_tax_rate(self, data: Obj) -> Obj:
        name = str(data.get("Name") or "")
        components = data.get("TaxComponents") or []
        if not name or not components:
            raise XeroError("Name and at least one TaxComponent are required", element=data)
        rate = sum((decimal(c.get("Rate"), "Rate", data) for c in components), Decimal(0))
        taken = {int(t[3:]) for t in self.tax_rates if re.fullmatch(r"TAX\d{3}", t)}
        tax_type = f"TAX{max(taken, default=0) + 1:03d}"
        report = str(data.get("ReportTaxType") or ("OUTPUT" if rate else "EXEMPTOUTPUT"))
        return self._add_tax_rate(tax_type, name, rate, report)

    def _add_tax_rate(self, tax_type: str, name: str, rate: Decimal, report: str, *,
                      revenue: bool = True) -> Obj:
        obj = {"Name": name, "TaxType": tax_type, "Status": "ACTIVE",
               "ReportTaxType": report,
               "CanApplyToRevenue": revenue, "CanApplyToExpenses": True,
               "CanApplyToAssets": True, "CanApplyToEquity": True,
               "CanApplyToLiabilities": True, "DisplayTaxRate": rate.quantize(Decimal("0.0001")),
               "EffectiveRate": rate.quantize(Decimal("0.0001")),
               "TaxComponents": [{"Name": name, "Rate": rate, "IsCompound": False,
                                  "IsNonRecoverable": False}]}
        self.tax_rates[tax_type] = obj
        return obj

    # -- invoices and credit notes ------------------------------------------------------------

    def create_document(self, data: Obj, kind: str, unitdp: int) -> Obj:
        is_invoice = kind == "invoice"
        number_field = "InvoiceNumber" if is_invoice else "CreditNoteNumber"
        types = ("ACCREC", "ACCPAY") if is_invoice else ("ACCRECCREDIT", "ACCPAYCREDIT")
        element = {k: data.get(k) for k in ("Type", number_field, "Reference") if k in data}
        if data.get("Type") not in types:
            raise XeroError(f"Type must be one of {', '.join(types)}", element=element)
        contact = self.contact_for(data.get("Contact"), element)
        status = str(data.get("Status") or "DRAFT")
        if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
            raise XeroError(f"Status {status} is not valid for a new document", element=element)
        amount_types = str(data.get("LineAmountTypes") or "Exclusive")
        if amount_types not in ("Exclusive", "Inclusive", "NoTax"):
            raise XeroError("LineAmountTypes must be Exclusive, Inclusive or NoTax",
                            element=element)
        lines = [self._line(item, amount_types, unitdp, element)
                 for item in data.get("LineItems") or []]
        if not lines:
            raise XeroError("At least one line item is required", element=element)
        issued = iso_date(data.get("Date") or self.now().date().isoformat(), "Date", element)
        due = data.get("DueDate")
        if is_invoice and status == "AUTHORISED" and not due:
            raise XeroError("Due Date is mandatory for AUTHORISED invoices", element=element)
        currency = str(data.get("CurrencyCode") or self.base_currency)
        number = str(data.get(number_field) or self._next_number(data["Type"]))
        store = self.invoices if is_invoice else self.credit_notes
        if data["Type"].startswith("ACCREC") and any(
                d.get(number_field) == number and d["Status"] not in ("DELETED", "VOIDED")
                for d in store.values()):
            label = "Invoice #" if is_invoice else "Credit Note Number"
            raise XeroError(f"{label} must be unique.", element=element)
        doc: Obj = {
            "Type": data["Type"], number_field: number,
            "Reference": str(data.get("Reference") or ""),
            "Contact": {k: contact[k] for k in ("ContactID", "Name", "ContactNumber",
                                                "EmailAddress")},
            "Date": ms_date(issued), "DateString": f"{issued.isoformat()}T00:00:00",
            "Status": status, "LineAmountTypes": amount_types, "LineItems": lines,
            "CurrencyCode": currency, "CurrencyRate": Decimal("1.0000000000"),
            "SubTotal": Decimal(0), "TotalTax": Decimal(0), "Total": Decimal(0),
            "AmountPaid": Decimal(0), "AmountCredited": Decimal(0), "Payments": [],
            "Allocations": [], "CreditNotes": [], "HasErrors": False,
            "UpdatedDateUTC": ms_date(self.now()),
        }
        if due:
            due_date = iso_date(due, "DueDate", element)
            doc["DueDate"], doc["DueDateString"] = ms_date(due_date), f"{due_date}T00:00:00"
        doc["InvoiceID" if is_invoice else "CreditNoteID"] = str(uuid.uuid4())
        if is_invoice:
            doc["SentToContact"] = False
        self._totals(doc)
        store[doc["InvoiceID" if is_invoice else "CreditNoteID"]] = doc
        return doc

    def _line(self, item: Any, amount_types: str, unitdp: int, element: Obj) -> Obj:
        if not isinstance(item, dict):
            raise XeroError("A line item must be an object", element=element)
        description = str(item.get("Description") or "")
        if "Quantity" not in item and "UnitAmount" not in item and "LineAmount" not in item:
            if not description:
                raise XeroError("Description needs to be at least 1 char long", element=element)
            return {"LineItemID": str(uuid.uuid4()), "Description": description,
                    "LineAmount": Decimal(0), "TaxAmount": Decimal(0), "Tracking": []}
        quantity = decimal(item.get("Quantity", 1), "Quantity", element)
        unit = decimal(item.get("UnitAmount", 0), "UnitAmount", element).quantize(
            Decimal(1).scaleb(-unitdp), rounding=ROUND_HALF_UP)
        code = str(item.get("AccountCode") or "")
        if code and code not in ACCOUNTS:
            raise XeroError(f"Account code '{code}' is not a valid code for this document.",
                            element=element)
        tax_type = str(item.get("TaxType") or ("NONE" if amount_types == "NoTax" else "OUTPUT"))
        rate = self.tax_rates.get(tax_type)
        if rate is None or rate["Status"] != "ACTIVE" or (
                code in REVENUE_ACCOUNTS and not rate["CanApplyToRevenue"]):
            raise XeroError(f"The TaxType code '{tax_type}' does not exist or cannot be used "
                            "with this type of transaction", element=element)
        amount = money(quantity * unit)
        percent = Decimal(0) if amount_types == "NoTax" else rate["EffectiveRate"]
        if amount_types == "Inclusive":
            tax = money(amount * percent / (100 + percent))
        else:
            tax = money(amount * percent / 100)
        line = {"LineItemID": str(uuid.uuid4()), "Description": description,
                "Quantity": quantity, "UnitAmount": unit, "AccountCode": code,
                "TaxType": tax_type, "TaxAmount": tax, "LineAmount": amount, "Tracking": []}
        if item.get("ItemCode"):
            line["ItemCode"] = str(item["ItemCode"])
        return line

    @staticmethod
    def _totals(doc: Obj) -> None:
        lines = doc["LineItems"]
        sub = sum((x["LineAmount"] for x in lines), Decimal(0))
        tax = sum((x["TaxAmount"] for x in lines), Decimal(0))
        if doc["LineAmountTypes"] == "Inclusive":
            sub -= tax
        doc["SubTotal"], doc["TotalTax"], doc["Total"] = money(sub), money(tax), money(sub + tax)
        due = money(doc["Total"] - doc["AmountPaid"] - doc["AmountCredited"])
        if "CreditNoteID" in doc:
            doc["RemainingCredit"] = due if doc["Status"] in ("AUTHORISED", "PAID") else \
                doc["Total"]
        else:
            doc["AmountDue"] = due

    def _next_number(self, kind: str) -> str:
        self._numbers[kind] = self._numbers.get(kind, 0) + 1
        prefix = "INV" if kind in ("ACCREC", "ACCPAY") else "CN"
        return f"{prefix}-{self._numbers[kind]:04d}"

    def update_invoice(self, invoice_id: str, data: Obj) -> Obj:
        doc = self.invoice(invoice_id)
        element = {"InvoiceID": invoice_id, "InvoiceNumber": doc["InvoiceNumber"]}
        if data.get("InvoiceID") not in (None, invoice_id):
            raise XeroError("InvoiceID in the body does not match the URL", element=element)
        target = data.get("Status")
        if target is None or target == doc["Status"]:
            return doc
        if doc["Status"] in ("VOIDED", "DELETED"):
            raise XeroError(f"This document cannot be edited as it is {doc['Status']}.",
                            element=element)
        if target == "AUTHORISED" and doc["Status"] in EDITABLE:
            if "DueDate" not in doc:
                raise XeroError("Due Date is mandatory for AUTHORISED invoices", element=element)
        elif target == "SUBMITTED" and doc["Status"] == "DRAFT":
            pass
        elif target == "DELETED" and doc["Status"] in EDITABLE:
            pass
        elif target == "VOIDED" and doc["Status"] == "AUTHORISED":
            if doc["AmountPaid"] or doc["AmountCredited"]:
                raise XeroError("This document cannot be edited as it has a payment or credit "
                                "note allocated to it.", element=element)
        else:
            raise XeroError(f"Invoice status cannot change from {doc['Status']} to {target}",
                            element=element)
        doc["Status"], doc["UpdatedDateUTC"] = target, ms_date(self.now())
        return doc

    def email_invoice(self, invoice_id: str) -> None:
        doc = self.invoice(invoice_id)
        element = {"InvoiceID": invoice_id}
        if doc["Type"] != "ACCREC" or doc["Status"] not in ("SUBMITTED", "AUTHORISED", "PAID"):
            raise XeroError("Invoice not of valid status for sending by email", element=element)
        if not self.contacts[doc["Contact"]["ContactID"]].get("EmailAddress"):
            raise XeroError("The contact does not have a valid email address", element=element)
        doc["SentToContact"] = True
        self.emails[invoice_id] = self.emails.get(invoice_id, 0) + 1

    def allocate(self, note_id: str, data: Obj) -> Obj:
        note = self.credit_note(note_id)
        element = {"CreditNoteID": note_id}
        invoice_id = str((data.get("Invoice") or {}).get("InvoiceID") or "")
        invoice = self.invoices.get(invoice_id)
        if invoice is None:
            raise XeroError("Invoice could not be found", element=element)
        amount = money(decimal(data.get("Amount"), "Amount", element))
        if "Date" not in data:
            raise XeroError("Date is required", element=element)
        when = iso_date(data["Date"], "Date", element)
        if note["Status"] != "AUTHORISED" or invoice["Status"] != "AUTHORISED":
            raise XeroError("Allocations need an AUTHORISED credit note and invoice",
                            element=element)
        if note["CurrencyCode"] != invoice["CurrencyCode"]:
            raise XeroError("The currencies of the credit note and invoice differ",
                            element=element)
        if amount <= 0 or amount > note["RemainingCredit"] or amount > invoice["AmountDue"]:
            raise XeroError("The amount allocated exceeds the remaining credit or the amount "
                            "due on the invoice", element=element)
        allocation = {"AllocationID": str(uuid.uuid4()), "Amount": amount,
                      "Date": ms_date(when), "Invoice": {"InvoiceID": invoice_id,
                                                         "InvoiceNumber":
                                                             invoice["InvoiceNumber"]},
                      "CreditNote": {"CreditNoteID": note_id}}
        note["Allocations"].append(allocation)
        note["AmountCredited"] += amount
        invoice["AmountCredited"] += amount
        invoice["CreditNotes"].append({"CreditNoteID": note_id, "AppliedAmount": amount})
        self._settle(invoice)
        self._totals(note)
        if note["RemainingCredit"] == 0:
            note["Status"] = "PAID"
        return allocation

    def record_payment(self, invoice_id: str, amount: Decimal) -> Obj:
        invoice = self.invoice(invoice_id)
        element = {"InvoiceID": invoice_id}
        if invoice["Status"] != "AUTHORISED":
            raise XeroError("Payment can only be made against an AUTHORISED invoice",
                            element=element)
        if amount <= 0 or amount > invoice["AmountDue"]:
            raise XeroError("Payment amount exceeds the amount outstanding on this document",
                            element=element)
        invoice["Payments"].append({"PaymentID": str(uuid.uuid4()), "Amount": money(amount),
                                    "Date": ms_date(self.now())})
        invoice["AmountPaid"] = money(invoice["AmountPaid"] + amount)
        self._settle(invoice)
        return invoice

    def _settle(self, invoice: Obj) -> None:
        self._totals(invoice)
        invoice["UpdatedDateUTC"] = ms_date(self.now())
        if invoice["AmountDue"] == 0:
            invoice["Status"], invoice["FullyPaidOnDate"] = "PAID", ms_date(self.now())

    def invoice(self, invoice_id: str) -> Obj:
        doc = self.invoices.get(invoice_id)
        if doc is None:
            raise not_found()
        return doc

    def credit_note(self, note_id: str) -> Obj:
        doc = self.credit_notes.get(note_id)
        if doc is None:
            raise not_found()
        return doc


# ---------------------------------------------------------------------------------------------
# ``where`` filters: ``Field=="value"`` / ``!=`` clauses joined by ``&&`` / `` AND ``, and
# ``Field.StartsWith("x")`` / ``.Contains("x")``; string literals in double quotes with
# backslash escapes.

_CLAUSE = re.compile(
    r'\s*([A-Za-z][\w.]*?)\s*(?:(==|!=)\s*"((?:[^"\\]|\\.)*)"|'
    r'\.(StartsWith|Contains)\("((?:[^"\\]|\\.)*)"\))\s*')
_JOIN = re.compile(r"\s*(?:&&|\bAND\b)\s*")


def where_filter(where: str) -> Callable[[Obj], bool]:
    clauses: list[tuple[str, str, str]] = []
    rest = where.strip()
    while rest:
        match = _CLAUSE.match(rest)
        if match is None:
            raise _unparsable(where)
        field, op, value, method, arg = match.groups()
        clauses.append((field, op or method, _unescape(value if op else arg)))
        rest = rest[match.end():]
        join = _JOIN.match(rest)
        if rest and join is None:
            raise _unparsable(where)
        rest = rest[join.end():] if join else rest
    return lambda obj: all(_holds(obj, c) for c in clauses)


def _unparsable(where: str) -> XeroError:
    return XeroError(f"Unable to parse the where clause: {where}", kind="QueryParseException")


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def _holds(obj: Obj, clause: tuple[str, str, str]) -> bool:
    field, op, value = clause
    actual: Any = obj
    for part in field.split("."):
        actual = actual.get(part) if isinstance(actual, dict) else None
    text = "" if actual is None else str(actual)
    if op == "==":
        return text == value
    if op == "!=":
        return text != value
    if op == "StartsWith":
        return text.startswith(value)
    return value in text


def select(objects: Iterable[Obj], where: str | None) -> list[Obj]:
    keep = where_filter(where) if where else (lambda obj: True)
    return [obj for obj in objects if keep(obj)]
