"""The company's data in the Business Central stand-in: customers, sales invoices, sales credit
memos, their totals and their life cycle (Draft -> Open -> Paid, or Canceled).

Totals are computed the way BC computes them: each line's ``amountExcludingTax`` is
``round(quantity * unitPrice)`` to the currency's precision; tax is computed **per document**,
per tax code (BC's VAT identifier): ``round(sum of the group's line amounts * percent / 100)``,
then spread over the group's lines (each line rounded, the last one takes the remainder), as
BC's VAT Amount Line (table 290) does. The percentage comes from the company's own tax setup
(``companies``): the line's tax group (``taxCode``) with the tax area of the document's customer
(its VAT business posting group, or US tax area); codes the company lacks are refused.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from autoinvoice.domain.money import CurrencyError, exponent
from autoinvoice.sandbox.business_central.companies import (
    COMPANIES,
    REVERSE,
    SALES_TAX,
    CompanySpec,
    TaxSetup,
)

Obj = dict[str, Any]
DEFAULT_ACCOUNTS = {"40100": "Income, Services", "40200": "Income, Product Sales",
                    "40300": "Income, Consulting"}

CUSTOMER_FIELDS = {"number": 20, "displayName": 100, "type": None, "addressLine1": 100,
                   "addressLine2": 50, "city": 30, "state": 30, "country": 10, "postalCode": 20,
                   "phoneNumber": 30, "email": 80, "website": 80, "taxRegistrationNumber": 20,
                   "currencyCode": 10, "taxLiable": None, "taxAreaId": None}
#: what PATCH /customers({id}) takes here (the tax area and liability the connector sets)
CUSTOMER_PATCH_FIELDS = {"taxAreaId": None, "taxLiable": None, "taxRegistrationNumber": 20,
                         "email": 80, "displayName": 100}
HEADER_FIELDS = {"externalDocumentNumber": 35, "invoiceDate": None, "postingDate": None,
                 "dueDate": None, "customerPurchaseOrderReference": 35, "customerId": None,
                 "customerNumber": 20, "currencyCode": 10, "email": 80, "phoneNumber": 30}
MEMO_FIELDS = {**{k: v for k, v in HEADER_FIELDS.items()
                  if k not in ("invoiceDate", "customerPurchaseOrderReference")},
               "creditMemoDate": None, "invoiceId": None, "invoiceNumber": 20}
LINE_FIELDS = {"lineType": None, "lineObjectNumber": 20, "description": 100, "quantity": None,
               "unitPrice": None, "discountPercent": None, "taxCode": 20, "itemId": None,
               "accountId": None, "unitOfMeasureCode": 10, "shipmentDate": None, "sequence": None}
DECIMALS = {"quantity", "unitPrice", "discountPercent"}
LINE_TYPES = {"Comment", "Account", "Item", "Resource", "Fixed Asset", "Charge"}


class BCError(Exception):
    """An OData error: ``{"error": {"code": code, "message": message}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self, correlation: str) -> Obj:
        return {"error": {"code": self.code,
                          "message": f"{self.message}  CorrelationId:  {correlation}."}}


def unknown_property(name: str, entity: str) -> BCError:
    return BCError(400, "BadRequest", f"The property '{name}' does not exist on type "
                   f"'Microsoft.NAV.{entity}'. Make sure to only use property names that are "
                   "defined by the type or mark the type as open type.")


def not_found(what: str, key: str) -> BCError:
    return BCError(404, "BadRequest_NotFound", f"The {what} does not exist. Identification "
                   f"fields and values: Id='{key}'")


@dataclass
class Company:
    currency: str = "USD"
    accounts: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ACCOUNTS))
    tax: TaxSetup = field(default_factory=lambda: COMPANIES["US"].tax)
    email_configured: bool = True
    name: str = "CRONUS USA, Inc."
    country: str = "US"
    id: str = ""

    @classmethod
    def of(cls, spec: CompanySpec, company_id: str, email_configured: bool = True,
           currency: str | None = None) -> Company:
        return cls(currency or spec.currency, dict(spec.accounts), spec.tax, email_configured,
                   spec.name, spec.country, company_id)


class Store:
    def __init__(self, company: Company, now: Callable[[], float]) -> None:
        self.company = company
        self._now = now
        stamp = datetime.fromtimestamp(now(), UTC).isoformat().replace("+00:00", "Z")
        self.tax_groups = {code: {"id": str(uuid.uuid4()), "code": code, "displayName": name,
                                  "taxType": company.tax.tax_type, "lastModifiedDateTime": stamp}
                           for code, name in company.tax.groups.items()}
        self.tax_areas = {code: {"id": str(uuid.uuid4()), "code": code, "displayName": name,
                                 "taxType": company.tax.tax_type, "lastModifiedDateTime": stamp}
                          for code, name in company.tax.areas.items()}
        self.doc_tax: dict[str, tuple[str, bool]] = {}  # document id -> (tax area, liable)
        self.customers: dict[str, Obj] = {}
        self.invoices: dict[str, Obj] = {}
        self.memos: dict[str, Obj] = {}
        self.emails: dict[str, int] = {}
        self._numbers = {k: itertools.count(1) for k in ("C", "S-INV", "PS-INV", "S-CR", "PS-CR")}

    # -- customers ------------------------------------------------------------------------------
    def create_customer(self, body: Obj) -> Obj:
        check_fields(body, CUSTOMER_FIELDS, "customer")
        if not body.get("displayName"):
            raise BCError(400, "BadRequest_RequiredParamNotProvided",
                          "Field 'displayName' must not be blank or empty.")
        number = body.get("number") or f"C{next(self._numbers['C']):05d}"
        if any(c["number"] == number for c in self.customers.values()):
            raise BCError(409, "Internal_EntityWithSameKeyExists", "The record in table Customer "
                          f"already exists. Identification fields and values: No.='{number}'")
        area = self._area_by_id(body.get("taxAreaId")) if body.get("taxAreaId") else \
            self.company.tax.default_area
        customer = {**{k: "" for k in CUSTOMER_FIELDS if k != "taxLiable"}, **body,
                    "id": str(uuid.uuid4()), "number": number, "type": body.get("type", "Company"),
                    "blocked": " ", "taxLiable": bool(body.get("taxLiable", False))}
        self._set_area(customer, area)
        self.customers[customer["id"]] = self._touch(customer)
        return customer

    def update_customer(self, customer: Obj, body: Obj) -> Obj:
        check_fields(body, CUSTOMER_PATCH_FIELDS, "customer")
        if "taxAreaId" in body:
            self._set_area(customer, self._area_by_id(body.pop("taxAreaId")))
        if "taxLiable" in body and not isinstance(body["taxLiable"], bool):
            raise BCError(400, "BadRequest", "Cannot convert the literal to the expected type "
                          "'Edm.Boolean'.")
        customer.update(body)
        return self._touch(customer)

    def _area_by_id(self, area_id: Any) -> str:
        for code, area in self.tax_areas.items():
            if area["id"] == area_id:
                return code
        raise BCError(400, "Internal_RecordNotFound", "The Tax Area does not exist. "
                      f"Identification fields and values: Id='{area_id}'")

    def _set_area(self, customer: Obj, code: str | None) -> None:
        area = self.tax_areas.get(code or "")
        customer["taxAreaId"] = area["id"] if area else ZERO_ID
        customer["taxAreaDisplayName"] = area["displayName"] if area else ""

    # -- documents ------------------------------------------------------------------------------
    def create_invoice(self, body: Obj) -> Obj:
        lines = body.pop("salesInvoiceLines", [])
        check_fields(body, HEADER_FIELDS, "salesInvoice")
        doc = self._document(body, "S-INV", "invoiceDate")
        doc.update({"customerPurchaseOrderReference": body.get("customerPurchaseOrderReference",
                                                               ""), "orderId": ZERO_ID})
        return self._with_lines(self.invoices, doc, lines, "salesInvoiceLine")

    def create_memo(self, body: Obj) -> Obj:
        lines = body.pop("salesCreditMemoLines", [])
        check_fields(body, MEMO_FIELDS, "salesCreditMemo")
        doc = self._document(body, "S-CR", "creditMemoDate")
        invoice_id = body.get("invoiceId") or ZERO_ID
        if invoice_id != ZERO_ID:
            invoice = self.get(self.invoices, invoice_id, "Sales Invoice Header")
            if invoice["status"] != "Open":
                raise BCError(400, "Application_DialogException", "Cannot apply the credit memo "
                              f"to invoice {invoice['number']}: it is {invoice['status']}.")
            doc["invoiceNumber"] = invoice["number"]
        doc["invoiceId"] = invoice_id
        return self._with_lines(self.memos, doc, lines, "salesCreditMemoLine")

    def _document(self, body: Obj, series: str, date_field: str) -> Obj:
        customer = self._customer_of(body)
        today = datetime.fromtimestamp(self._now(), UTC).date().isoformat()
        currency = body.get("currencyCode") or self.company.currency
        try:
            exponent(currency)
        except CurrencyError:
            raise BCError(400, "Internal_RecordNotFound", "The Currency does not exist. "
                          f"Identification fields and values: Code='{currency}'") from None
        number = f"{series}{next(self._numbers[series]) + 100000}"
        return {"id": str(uuid.uuid4()), "number": number,
                "externalDocumentNumber": body.get("externalDocumentNumber", ""),
                date_field: body.get(date_field) or today,
                "postingDate": body.get("postingDate") or body.get(date_field) or today,
                "dueDate": body.get("dueDate") or body.get(date_field) or today,
                "customerId": customer["id"], "customerNumber": customer["number"],
                "customerName": customer["displayName"], "billToName": customer["displayName"],
                "billToCustomerId": customer["id"], "billToCustomerNumber": customer["number"],
                "currencyCode": currency, "pricesIncludeTax": False, "discountAmount": Decimal(0),
                "discountAppliedBeforeTax": True, "status": "Draft",
                "email": customer.get("email", ""), "phoneNumber": ""}

    def _customer_of(self, body: Obj) -> Obj:
        if body.get("customerId"):
            return self.get(self.customers, body["customerId"], "Customer")
        if body.get("customerNumber"):
            for customer in self.customers.values():
                if customer["number"] == body["customerNumber"]:
                    return customer
            raise BCError(400, "Internal_RecordNotFound", "The Customer does not exist. "
                          f"Identification fields and values: No.='{body['customerNumber']}'")
        raise BCError(400, "Application_DialogException",
                      "A customerNumber or a customerID must be provided.")

    def _with_lines(self, table: dict[str, Obj], doc: Obj, lines: Any, entity: str) -> Obj:
        if not isinstance(lines, list):
            raise BCError(400, "BadRequest", f"The navigation property for {entity} must be a "
                          "collection.")
        customer = self.customers[doc["customerId"]]
        area = next((c for c, a in self.tax_areas.items() if a["id"] == customer["taxAreaId"]),
                    "")
        self.doc_tax[doc["id"]] = (area, bool(customer.get("taxLiable")))
        doc["lines"] = [self._line(doc["id"], raw, n, entity) for n, raw in enumerate(lines, 1)]
        self.recompute(doc)
        doc["remainingAmount"] = doc["totalAmountIncludingTax"]
        table[doc["id"]] = self._touch(doc)
        return doc

    def _line(self, doc_id: str, raw: Any, n: int, entity: str) -> Obj:
        if not isinstance(raw, dict):
            raise BCError(400, "BadRequest", f"A {entity} must be an object.")
        check_fields(raw, LINE_FIELDS, entity)
        line_type = raw.get("lineType", "Item")
        if line_type not in LINE_TYPES:
            raise BCError(400, "Application_EvaluateException",
                          f"The value \"{line_type}\" can't be evaluated into type Option.")
        line: Obj = {"id": str(uuid.uuid4()), "documentId": doc_id, "sequence": n * 10000,
                     "lineType": line_type, "description": raw.get("description", ""),
                     "lineObjectNumber": "", "quantity": Decimal(0), "unitPrice": Decimal(0),
                     "discountPercent": Decimal(0), "taxCode": "", "taxPercent": Decimal(0)}
        if line_type == "Comment":
            return line
        if line_type != "Account":
            raise BCError(400, "Application_DialogException", f"Line type {line_type} needs an "
                          "item or resource, which this stand-in does not keep; use Account.")
        account = raw.get("lineObjectNumber", "")
        if account not in self.company.accounts:
            raise BCError(400, "Internal_RecordNotFound", "The G/L Account does not exist. "
                          f"Identification fields and values: No.='{account}'")
        code = raw.get("taxCode", "")
        line.update({"lineObjectNumber": account, "taxCode": code,
                     "taxPercent": self.tax_percent(code, *self.doc_tax[doc_id]),
                     **{k: raw[k] for k in DECIMALS if k in raw}})
        return line

    def tax_percent(self, code: str, area: str, liable: bool) -> Decimal:
        """The line's tax %: the company's setup for (the customer's tax area, the line's tax
        group); Reverse Charge VAT puts 0 % on the sales line; US sales tax only for a
        tax-liable customer."""
        tax = self.company.tax
        if code not in tax.groups:
            what = "Tax Group" if tax.tax_type == SALES_TAX else "VAT Product Posting Group"
            raise BCError(400, "Internal_RecordNotFound", f"The {what} does not exist. "
                          f"Identification fields and values: Code='{code}'")
        if tax.tax_type == SALES_TAX:
            return tax.rates.get((area, code), (Decimal(0), SALES_TAX))[0] if liable \
                else Decimal(0)
        setup = tax.rates.get((area, code))
        if setup is None:
            raise BCError(400, "Internal_RecordNotFound", "The VAT Posting Setup does not "
                          "exist. Identification fields and values: VAT Bus. Posting Group="
                          f"'{area}',VAT Prod. Posting Group='{code}'")
        return Decimal(0) if setup[1] == REVERSE else setup[0]

    def recompute(self, doc: Obj) -> None:
        quantum = Decimal(1).scaleb(-exponent(doc["currencyCode"]))
        priced = [x for x in doc["lines"] if x["lineType"] != "Comment"]
        for line in priced:
            gross = line["quantity"] * line["unitPrice"]
            amount = (gross * (1 - line["discountPercent"] / 100)).quantize(quantum, ROUND_HALF_UP)
            line["amountExcludingTax"] = line["netAmount"] = amount
        for code in {(x["taxCode"], x["taxPercent"]) for x in priced}:
            group = [x for x in priced if (x["taxCode"], x["taxPercent"]) == code]
            percent = group[0]["taxPercent"]
            base = sum((x["amountExcludingTax"] for x in group), Decimal(0))
            left = (base * percent / 100).quantize(quantum, ROUND_HALF_UP)
            for i, line in enumerate(group):
                share = left if i == len(group) - 1 else (
                    line["amountExcludingTax"] * percent / 100).quantize(quantum, ROUND_HALF_UP)
                line["totalTaxAmount"] = line["netTaxAmount"] = share
                line["amountIncludingTax"] = line["amountExcludingTax"] + share
                left -= share
        excl = sum((x["amountExcludingTax"] for x in priced), Decimal(0))
        tax = sum((x["totalTaxAmount"] for x in priced), Decimal(0))
        doc.update({"totalAmountExcludingTax": excl, "totalTaxAmount": tax,
                    "totalAmountIncludingTax": excl + tax})

    # -- life cycle -----------------------------------------------------------------------------
    def post(self, doc: Obj, kind: str) -> None:
        if doc["status"] != "Draft":
            raise BCError(400, "Application_DialogException",
                          f"The {kind} {doc['number']} is already posted.")
        if not any(x["lineType"] != "Comment" for x in doc["lines"]):
            raise BCError(400, "Application_DialogException", "There is nothing to post.")
        series = "PS-INV" if kind == "invoice" else "PS-CR"
        doc.update({"number": f"{series}{next(self._numbers[series]) + 103000}",
                    "status": "Open"})
        if kind == "credit memo":
            self._apply_memo(doc)
        self._touch(doc)

    def _apply_memo(self, memo: Obj) -> None:
        memo["status"] = "Paid" if memo["invoiceId"] != ZERO_ID else "Open"
        if memo["invoiceId"] == ZERO_ID:
            return
        invoice = self.invoices[memo["invoiceId"]]
        left = max(Decimal(0), invoice["remainingAmount"] - memo["totalAmountIncludingTax"])
        invoice["remainingAmount"] = left
        if left == 0:
            invoice["status"] = "Paid"
        self._touch(invoice)

    def send(self, doc: Obj, kind: str) -> None:
        if doc["status"] == "Draft":
            raise BCError(400, "Application_DialogException",
                          f"You must post the {kind} {doc['number']} before you can send it.")
        if not self.company.email_configured:
            raise BCError(400, "Application_DialogException", "You must set up email in "
                          "Business Central before you can send documents.")
        self.emails[doc["id"]] = self.emails.get(doc["id"], 0) + 1

    def cancel(self, invoice: Obj) -> None:
        if invoice["status"] != "Open" or invoice["remainingAmount"] != invoice[
                "totalAmountIncludingTax"]:
            raise BCError(400, "Application_DialogException", "You cannot cancel the posted "
                          f"sales invoice {invoice['number']} because it is fully or partially "
                          "paid or is not posted.")
        invoice.update({"status": "Canceled", "remainingAmount": Decimal(0)})
        memo = {**{k: v for k, v in invoice.items() if k not in ("lines", "invoiceDate")},
                "id": str(uuid.uuid4()), "status": "Corrective", "invoiceId": invoice["id"],
                "invoiceNumber": invoice["number"], "creditMemoDate": invoice["invoiceDate"],
                "number": f"PS-CR{next(self._numbers['PS-CR']) + 103000}",
                "lines": [dict(x) for x in invoice["lines"]]}
        self.memos[memo["id"]] = self._touch(memo)
        self._touch(invoice)

    def pay(self, invoice: Obj, amount: Decimal) -> None:
        if invoice["status"] != "Open":
            raise BCError(400, "Application_DialogException",
                          f"Invoice {invoice['number']} is {invoice['status']}, not Open.")
        if amount <= 0 or amount > invoice["remainingAmount"]:
            raise BCError(400, "Application_DialogException",
                          f"The payment {amount} does not fit the remaining amount "
                          f"{invoice['remainingAmount']}.")
        invoice["remainingAmount"] -= amount
        if invoice["remainingAmount"] == 0:
            invoice["status"] = "Paid"
        self._touch(invoice)

    # -- helpers --------------------------------------------------------------------------------
    def get(self, table: dict[str, Obj], key: str, what: str) -> Obj:
        if key not in table:
            raise not_found(what, key)
        return table[key]

    def _touch(self, obj: Obj) -> Obj:
        stamp = datetime.fromtimestamp(self._now(), UTC)
        obj["lastModifiedDateTime"] = stamp.isoformat().replace("+00:00", "Z")
        obj["@odata.etag"] = f'W/"JzE5OzE{uuid.uuid4().hex[:16]}MDsn"'
        return obj


ZERO_ID = "00000000-0000-0000-0000-000000000000"


def check_fields(body: Obj, allowed: Mapping[str, int | None], entity: str) -> None:
    for name, value in body.items():
        if name not in allowed:
            raise unknown_property(name, entity)
        if name in DECIMALS and (isinstance(value, str | bool) or value is None):
            raise BCError(400, "BadRequest", "Cannot convert a value to target type "
                          "'Edm.Decimal' because of conflict between input format string/number "
                          "and parameter 'IEEE754Compatible' false/true.")
        if name in DECIMALS:
            body[name] = Decimal(value)
        limit = allowed[name]
        if limit is not None and isinstance(value, str) and len(value) > limit:
            raise BCError(400, "Application_StringExceededLength",
                          f"The length of the string is {len(value)}, but it must be less than "
                          f"or equal to {limit} characters. Value: {value}")
