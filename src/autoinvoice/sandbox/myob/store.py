"""The MYOB stand-in's company file: accounts, tax codes, customers and service sales, with
MYOB's validation, totals and OData ``$filter`` subset."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

Obj = dict[str, Any]
CENT = Decimal("0.01")
INFORMATION = ("Warning, error messages have not been finalised in this release and may "
               "change")
#: (Code, Description, Rate %) -- an Australian file's codes plus the rates our demo bills
#: The default tax codes of a new Australian MYOB business (myob.com/au/support/myob-business/
#: accounting/financial-control/accounts-list/gst-codes, "Summary of tax codes"): GST and
#: its GST-free, export and input-taxed sales codes, purchase-side codes, and the special
#: taxes; no other country's rates.
DEFAULT_TAX_CODES: tuple[tuple[str, str, str], ...] = (
    ("GST", "Goods & Services Tax", "10"), ("FRE", "GST-Free", "0"),
    ("EXP", "Export Sales", "0"), ("CAP", "Capital Purchase", "10"),
    ("INP", "Input Taxed Purchases", "0"), ("ITS", "Input Taxed Sales", "0"),
    ("N-T", "No Tax", "0"), ("LCT", "Luxury Car Tax", "33"),
    ("WET", "Wine Equalisation Tax", "29"), ("ABN", "No ABN Withholding", "47"),
)


class MyobError(Exception):
    """An error answer in MYOB's shape."""

    def __init__(self, status: int, name: str, message: str, details: str | None = None,
                 code: int | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.name, self.message = status, name, message
        self.details, self.code, self.retry_after = details, code, retry_after

    def body(self) -> Obj:
        return {"Errors": [{"Name": self.name, "Message": self.message,
                            "AdditionalDetails": self.details, "ErrorCode": self.code,
                            "Severity": "Error", "LearnMore": None}],
                "Information": INFORMATION}


def invalid(field: str, message: str) -> MyobError:
    return MyobError(400, "ValidationError", message, f"Field: {field}", 4000)


def not_found(kind: str, key: str) -> MyobError:
    return MyobError(404, "NotFound", f"{kind} {key} was not found", None, 404)


class CompanyFile:
    def __init__(self, uri: str, clock: Callable[[], date],
                 tax_codes: tuple[tuple[str, str, str], ...] = DEFAULT_TAX_CODES) -> None:
        self.uri, self._today = uri, clock
        self.accounts: dict[str, Obj] = {}
        self.tax_codes: dict[str, Obj] = {}
        self.customers: dict[str, Obj] = {}
        self.sales: dict[str, Obj] = {}
        self._next_number = 1
        for display, name, kind, header in (("4-0000", "Income", "Income", True),
                                            ("4-1000", "Sales", "Income", False),
                                            ("1-1200", "Trade Debtors", "Asset", False)):
            self._add("accounts", "/GeneralLedger/Account", {
                "Name": name, "DisplayID": display, "Classification": kind, "Type": kind,
                "IsHeader": header, "IsActive": True})
        for code, description, rate in tax_codes:
            self._add("tax_codes", "/GeneralLedger/TaxCode", {
                "Code": code, "Description": description, "Type": "GST",
                "Rate": Decimal(rate)})

    def _add(self, table: str, path: str, obj: Obj) -> Obj:
        uid = str(uuid.uuid4())
        stored = {"UID": uid, **obj, "URI": f"{self.uri}{path}/{uid}",
                  "RowVersion": str(uuid.uuid4().int % 10**19)}
        getattr(self, table)[uid] = stored
        return stored

    # -- customers ---------------------------------------------------------------------------

    def create_customer(self, data: Obj) -> Obj:
        individual = bool(data.get("IsIndividual"))
        if not individual and not data.get("CompanyName"):
            raise invalid("CompanyName", "CompanyName is required for a company card")
        if individual and not data.get("LastName"):
            raise invalid("LastName", "LastName is required for an individual card")
        display = data.get("DisplayID")
        if display is not None and len(str(display)) > 15:
            raise invalid("DisplayID", "DisplayID must be at most 15 characters")
        selling = data.get("SellingDetails") or {}
        for name in ("TaxCode", "FreightTaxCode"):
            self._existing(self.tax_codes, selling.get(name), f"SellingDetails.{name}")
        return self._add("customers", "/Contact/Customer", {
            **data, "DisplayID": display or "*None", "IsActive": data.get("IsActive", True),
            "CurrentBalance": Decimal(0)})

    # -- service sales -----------------------------------------------------------------------

    def create_service_invoice(self, data: Obj) -> Obj:
        customer = self._existing(self.customers, data.get("Customer"), "Customer")
        if not data.get("Date"):
            raise invalid("Date", "Date is required")
        day = _day(data["Date"])
        lines = data.get("Lines")
        if not isinstance(lines, list) or not lines:
            raise invalid("Lines", "At least one line is required")
        number = data.get("Number") or f"{self._next_number:08d}"
        if len(str(number)) > 13:
            raise invalid("Number", "Number must be at most 13 characters")
        for name in ("JournalMemo", "Comment", "CustomerPurchaseOrderNumber"):
            if len(str(data.get(name) or "")) > 255:
                raise invalid(name, f"{name} must be at most 255 characters")
        self._next_number += 1
        inclusive = bool(data.get("IsTaxInclusive", True))
        stored_lines = [self._line(i, line, inclusive) for i, line in enumerate(lines, 1)]
        subtotal = sum((ln["_net"] for ln in stored_lines), Decimal(0))
        tax = sum((ln["_tax"] for ln in stored_lines), Decimal(0))
        for ln in stored_lines:
            del ln["_net"], ln["_tax"]
        total = subtotal + tax
        terms = dict(data.get("Terms") or {"PaymentIsDue": "InAGivenNumberOfDays",
                                            "BalanceDueDate": 30})
        days = int(terms.get("BalanceDueDate") or 0)
        terms["DueDate"] = f"{(day + timedelta(days=days)).isoformat()}T00:00:00"
        return self._add("sales", "/Sale/Invoice/Service", {
            "Number": str(number), "Date": f"{day.isoformat()}T00:00:00",
            "CustomerPurchaseOrderNumber": data.get("CustomerPurchaseOrderNumber"),
            "Customer": {"UID": customer["UID"], "Name": customer.get("CompanyName"),
                         "DisplayID": customer.get("DisplayID")},
            "Terms": terms, "IsTaxInclusive": inclusive, "Lines": stored_lines,
            "Subtotal": subtotal, "TotalTax": tax, "TotalAmount": total,
            "BalanceDueAmount": total, "Status": "Open", "LastPaymentDate": None,
            "JournalMemo": data.get("JournalMemo"), "Comment": data.get("Comment"),
            "InvoiceDeliveryStatus": data.get("InvoiceDeliveryStatus", "Print"),
            "InvoiceType": "Service"})

    def _line(self, row: int, line: Any, inclusive: bool) -> Obj:
        if not isinstance(line, dict):
            raise invalid(f"Lines[{row}]", "A line must be an object")
        if line.get("Type", "Transaction") != "Transaction":
            raise invalid(f"Lines[{row}].Type", "Only Transaction lines are supported here")
        total = line.get("Total")
        if isinstance(total, bool) or not isinstance(total, int | Decimal):
            raise invalid(f"Lines[{row}].Total", "Total is required and must be a number")
        account = self._existing(self.accounts, line.get("Account"), f"Lines[{row}].Account")
        if account["IsHeader"]:
            raise invalid(f"Lines[{row}].Account", "A header account cannot be used")
        code = self._existing(self.tax_codes, line.get("TaxCode"), f"Lines[{row}].TaxCode")
        rate = Decimal(code["Rate"]) / 100
        amount = Decimal(total).quantize(CENT, ROUND_HALF_UP)
        if inclusive:  # the tax inside a tax-inclusive total, to the cent, per line
            tax = (amount - amount / (1 + rate)).quantize(CENT, ROUND_HALF_UP)
            net = amount - tax
        else:
            tax, net = (amount * rate).quantize(CENT, ROUND_HALF_UP), amount
        return {"RowID": row, "Type": "Transaction", "Description": line.get("Description"),
                "Account": {"UID": account["UID"], "DisplayID": account["DisplayID"]},
                "Total": amount, "TaxCode": {"UID": code["UID"], "Code": code["Code"]},
                "_net": net, "_tax": tax}

    def delete_sale(self, uid: str) -> None:
        sale = self.sale(uid)
        if sale["BalanceDueAmount"] != sale["TotalAmount"]:
            raise MyobError(400, "ValidationError", "A sale with payments applied cannot be "
                            "deleted", f"UID: {uid}", 4001)
        del self.sales[uid]

    def record_payment(self, uid: str, amount: Decimal) -> Obj:
        sale = self.sale(uid)
        sale["BalanceDueAmount"] -= amount
        sale["LastPaymentDate"] = f"{self._today().isoformat()}T00:00:00"
        sale["Status"] = "Closed" if sale["BalanceDueAmount"] <= 0 else "Open"
        return sale

    def sale(self, uid: str) -> Obj:
        if uid not in self.sales:
            raise not_found("Sale", uid)
        return self.sales[uid]

    @staticmethod
    def _existing(table: Mapping[str, Obj], link: Any, field: str) -> Obj:
        uid = link.get("UID") if isinstance(link, dict) else None
        if not uid:
            raise invalid(field, f"{field}.UID is required")
        if uid not in table:
            raise invalid(field, f"{field} {uid} does not exist")
        return table[uid]


def _day(value: Any) -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise invalid("Date", f"Date {value!r} is not a date") from None


# -- OData $filter (the subset MYOB's docs use) ---------------------------------------------

_ANY = re.compile(r"^(\w+)/any\((\w+):\s*\2/(\w+)\s+eq\s+(.+)\)$")
_EQ = re.compile(r"^([\w/]+)\s+eq\s+(.+)$")


def matches(obj: Obj, odata_filter: str | None) -> bool:
    """``A eq 'x'``, ``A/B eq 1``, ``A eq true``, ``Coll/any(a: a/F eq 'x')``, joined by
    ``and``; anything else is a 400 as on MYOB."""
    if not odata_filter:
        return True
    return all(_clause(obj, part.strip()) for part in re.split(r"\s+and\s+", odata_filter))


def _clause(obj: Obj, clause: str) -> bool:
    found = _ANY.match(clause)
    if found:
        items = obj.get(found.group(1)) or []
        want = _literal(found.group(4))
        return any(isinstance(i, dict) and _same(i.get(found.group(3)), want) for i in items)
    found = _EQ.match(clause)
    if not found:
        raise MyobError(400, "InvalidFilter", f"The $filter clause {clause!r} is not supported",
                        "Query: $filter", 4002)
    value: Any = obj
    for step in found.group(1).split("/"):
        value = value.get(step) if isinstance(value, dict) else None
    return _same(value, _literal(found.group(2)))


def _literal(text: str) -> Any:
    text = text.strip()
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("''", "'")
    if text in ("true", "false"):
        return text == "true"
    try:
        return Decimal(text)
    except ArithmeticError:
        raise MyobError(400, "InvalidFilter", f"Cannot read {text!r} in $filter",
                        "Query: $filter", 4002) from None


def _same(value: Any, want: Any) -> bool:
    if isinstance(want, str) and isinstance(value, str):
        return value.lower() == want.lower()  # MYOB's string comparisons ignore case
    return bool(value == want)
