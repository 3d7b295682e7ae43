"""One QuickBooks company (realm) in memory: its objects, validation and the arithmetic.

The company is a US one in Tulsa, Oklahoma. By default it is what every US company created
since 10 November 2017 is: on **automated sales tax** (``Preferences.TaxPrefs``
``PartnerTaxEnabled`` and ``UsingSalesTax`` true; AST computes each sales transaction's tax
from its ship-to address and replaces the tax code an app sends, see ``ast``).
``automated_sales_tax=False`` gives an older company on the manual US model:

Totals, as QuickBooks Online computes them for a US company without automated sales tax:
each ``SalesItemLineDetail`` line's ``Amount`` must equal ``Qty * UnitPrice`` rounded to the
cent (else 6070); the taxable base is the sum of the lines coded ``TAX``; the transaction's
tax code (``TxnTaxDetail.TxnTaxCodeRef``) applies each of its sales rates to that base, one
``TaxLine`` per rate, rounded half-up once per rate (tax per document, not per line);
``TotalAmt = subtotal + TotalTax``; ``Balance`` falls as payments (and applied credit memos)
are linked.

Numbers are typed as Finance.xsd types them: an ``xs:decimal`` element (``Amount``, ``Qty``,
``UnitPrice``, ``TotalTax``, ``TotalAmt``, ``RateValue``) must be a JSON number; a string there
is refused with a ValidationFault (2010) naming the element.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from autoinvoice.sandbox.quickbooks.ast import AutomatedSalesTax
from autoinvoice.sandbox.quickbooks.errors import (
    QboError,
    cents,
    decimal,
    invalid,
    not_found,
    required,
)
from autoinvoice.sandbox.quickbooks.query import Query

Obj = dict[str, Any]
CENT = Decimal("0.01")
NAME_ENTITIES = ("Customer", "Vendor", "Employee")  # one DisplayName space

#: Top-level properties the stand-in accepts on create (Finance.xsd element names).
ACCEPTED: dict[str, frozenset[str]] = {
    "Customer": frozenset({"DisplayName", "CompanyName", "GivenName", "FamilyName", "Title",
                           "MiddleName", "Suffix", "PrimaryEmailAddr", "BillAddr", "ShipAddr",
                           "Notes", "Taxable", "ResaleNum", "PrimaryPhone", "CurrencyRef",
                           "PrintOnCheckName", "Active"}),
    "Item": frozenset({"Name", "Type", "IncomeAccountRef", "ExpenseAccountRef", "Description",
                       "UnitPrice", "Taxable", "Sku", "Active"}),
    "Invoice": frozenset({"CustomerRef", "DocNumber", "TxnDate", "DueDate", "CurrencyRef",
                          "PrivateNote", "Line", "TxnTaxDetail", "CustomerMemo", "BillEmail",
                          "CustomField", "BillAddr", "ShipAddr", "ShipFromAddr", "SalesTermRef",
                          "AllowOnlineCreditCardPayment", "AllowOnlineACHPayment"}),
    "CreditMemo": frozenset({"CustomerRef", "DocNumber", "TxnDate", "CurrencyRef",
                             "PrivateNote", "Line", "TxnTaxDetail", "CustomerMemo",
                             "BillEmail", "CustomField", "BillAddr", "ShipAddr",
                             "ShipFromAddr"}),
    "Payment": frozenset({"CustomerRef", "TotalAmt", "Line", "TxnDate", "PrivateNote",
                          "CurrencyRef", "PaymentRefNum"}),
}


#: the company's legal address (CompanyInfo.LegalAddr): AST's source address
LEGAL_ADDRESS: Obj = {"Line1": "410 W 7th St", "City": "Tulsa",
                      "CountrySubDivisionCode": "OK", "PostalCode": "74119", "Country": "US"}


class Company:
    def __init__(self, realm_id: str, now: Callable[[], datetime],
                 automated_sales_tax: bool = True) -> None:
        self.realm_id = realm_id
        self.address = dict(LEGAL_ADDRESS)
        self._now = now
        self._seq = 0
        self.objects: dict[str, dict[str, Obj]] = {name: {} for name in (
            "Customer", "Vendor", "Employee", "Item", "Account", "TaxAgency", "TaxRate",
            "TaxCode", "Invoice", "CreditMemo", "Payment")}
        self.emails: dict[str, list[str]] = {}
        self.duplicate_doc_numbers_refused = True
        self.ast = AutomatedSalesTax(self.address, self.objects, self._put) \
            if automated_sales_tax else None
        self._seed()

    # -- seed data ----------------------------------------------------------------------------

    def _seed(self) -> None:
        self._put("Account", {"Name": "Services", "AccountType": "Income",
                              "Classification": "Revenue", "Active": True})
        self._put("Account", {"Name": "Accounts Receivable (A/R)",
                              "AccountType": "Accounts Receivable", "Active": True})
        if self.ast is None:  # AST sets up the agency (and its codes) itself
            self._put("TaxAgency", {"DisplayName": "Oklahoma Tax Commission"})
        self.objects["TaxCode"]["TAX"] = {"Id": "TAX", "Name": "TAX", "Taxable": True,
                                          "Active": True, "domain": "QBO"}
        self.objects["TaxCode"]["NON"] = {"Id": "NON", "Name": "NON", "Taxable": False,
                                          "Active": True, "domain": "QBO"}
        self.preferences: Obj = {
            "SalesFormsPrefs": {
                "CustomTxnNumbers": True,
                "CustomField": [
                    {"CustomField": [
                        {"Name": "SalesFormsPrefs.UseSalesCustom1", "Type": "BooleanType",
                         "BooleanValue": True},
                        {"Name": "SalesFormsPrefs.UseSalesCustom2", "Type": "BooleanType",
                         "BooleanValue": False},
                        {"Name": "SalesFormsPrefs.UseSalesCustom3", "Type": "BooleanType",
                         "BooleanValue": False}]},
                    {"CustomField": [
                        {"Name": "SalesFormsPrefs.SalesCustomName1", "Type": "StringType",
                         "StringValue": "PO Number"}]}]},
            "TaxPrefs": {"UsingSalesTax": True, **(
                {"PartnerTaxEnabled": True} if self.ast is not None else {})},
            "CurrencyPrefs": {"MultiCurrencyEnabled": False, "HomeCurrency": {"value": "USD"}},
        }
        if self.ast is not None:  # AST sets up the code of the company's own place
            self.ast.home_code()

    def stamp(self) -> str:
        return self._now().astimezone(UTC).isoformat(timespec="seconds")

    def _put(self, entity: str, obj: Obj) -> Obj:
        self._seq += 1
        obj = {**obj, "Id": str(self._seq), "SyncToken": "0", "domain": "QBO",
               "MetaData": {"CreateTime": self.stamp(), "LastUpdatedTime": self.stamp()}}
        self.objects[entity][obj["Id"]] = obj
        return obj

    def get(self, entity: str, obj_id: str) -> Obj:
        found = self.objects.get(entity, {}).get(obj_id)
        if found is None:
            raise not_found(entity, obj_id)
        return found

    def query(self, query: Query) -> list[Obj]:
        found = [o for o in self.objects[query.entity].values()
                 if o.get("Active", True) is not False and query.matches(o)]
        return [copy.deepcopy(o) for o in found[query.start - 1: query.start - 1 + query.limit]]

    # -- names --------------------------------------------------------------------------------

    def _name_taken(self, name: str, entity: str, field: str = "DisplayName") -> bool:
        spaces = NAME_ENTITIES if entity in NAME_ENTITIES else (entity,)
        return any(str(o.get(field, "")).lower() == name.lower()
                   for space in spaces for o in self.objects[space].values())

    def add_name(self, entity: str, display_name: str) -> Obj:
        """A vendor or employee (sandbox helper: to make a name collide)."""
        return self._put(entity, {"DisplayName": display_name, "Active": True})

    # -- creates ------------------------------------------------------------------------------

    def create_customer(self, body: Obj) -> Obj:
        self._accepts("Customer", body)
        name = str(body.get("DisplayName") or " ".join(
            str(body[k]) for k in ("GivenName", "FamilyName") if body.get(k))).strip()
        if not name:
            raise required("DisplayName")
        if len(name) > 500:
            raise invalid("String length exceeds maximum length of 500: DisplayName",
                          "DisplayName")
        if self._name_taken(name, "Customer"):
            raise QboError(400, "Duplicate Name Exists Error",
                           "The name supplied already exists. : Another customer, vendor or "
                           "employee is already using this name. Please use a different name.",
                           "6240")
        return self._put("Customer", {**body, "DisplayName": name,
                                      "FullyQualifiedName": name, "Active": True,
                                      "Balance": Decimal(0)})

    def create_item(self, body: Obj) -> Obj:
        self._accepts("Item", body)
        name = str(body.get("Name") or "").strip()
        if not name:
            raise required("Name")
        if body.get("Type") in ("Service", "NonInventory", "Inventory"):
            ref = (body.get("IncomeAccountRef") or {}).get("value")
            if not ref:
                raise required("IncomeAccountRef")
            self.get("Account", str(ref))
        if self._name_taken(name, "Item", "Name"):
            raise QboError(400, "Duplicate Name Exists Error", "The name supplied already "
                           f"exists. : {name}", "6240")
        return self._put("Item", {**body, "Name": name, "FullyQualifiedName": name,
                                  "Active": True})

    def create_tax_code(self, body: Obj) -> Obj:
        name = str(body.get("TaxCode") or "")
        details = body.get("TaxRateDetails") or []
        if not name:
            raise required("TaxCode")
        if not details:
            raise required("TaxRateDetails")
        if self._name_taken(name, "TaxCode", "Name"):
            raise QboError(400, "Duplicate Name Exists Error", f"Duplicate tax code: {name}",
                           "6240")
        out, refs = [], []
        for detail in details:
            self.get("TaxAgency", str(detail.get("TaxAgencyId")))
            value = decimal(detail.get("RateValue"), "RateValue")
            rate = self._put("TaxRate", {"Name": detail.get("TaxRateName") or name,
                                         "RateValue": value, "Active": True,
                                         "AgencyRef": {"value": str(detail["TaxAgencyId"])}})
            refs.append({"TaxRateRef": {"value": rate["Id"]}, "TaxTypeApplicable":
                         "TaxOnAmount", "TaxOrder": 0})
            out.append({**detail, "RateValue": value, "TaxRateId": rate["Id"]})
        code = self._put("TaxCode", {"Name": name, "Taxable": True, "TaxGroup": True,
                                     "Active": True,
                                     "SalesTaxRateList": {"TaxRateDetail": refs}})
        return {"TaxCode": name, "TaxCodeId": code["Id"], "TaxRateDetails": out}

    def create_document(self, entity: str, body: Obj) -> Obj:
        """An Invoice or a CreditMemo, with QuickBooks' own totals."""
        self._accepts(entity, body)
        customer_id = str((body.get("CustomerRef") or {}).get("value") or "")
        if not customer_id:
            raise required("CustomerRef")
        self.get("Customer", customer_id)
        if not body.get("Line"):
            raise required("Line")
        doc_number = str(body.get("DocNumber") or "")
        if len(doc_number) > 21:
            raise QboError(400, "String length is either shorter or longer than supported by "
                           "specification", f"String length specified does not match the "
                           f"supported length. Min:0 Max:21 supplied length:{len(doc_number)}",
                           "6000", "DocNumber")
        if doc_number and self.duplicate_doc_numbers_refused and any(
                o.get("DocNumber") == doc_number for o in self.objects[entity].values()):
            raise QboError(400, "Duplicate Document Number Error",
                           f"Duplicate Document Number Error : You must specify a different "
                           f"number. This number has already been used. DocNumber="
                           f"{doc_number}", "6140")
        self._check_texts(body)
        lines = [self._line(line, n) for n, line in enumerate(body["Line"], start=1)]
        obj = {**body, "Line": lines}
        obj.setdefault("TxnDate", self._now().date().isoformat())
        obj.setdefault("CurrencyRef", {"value": "USD", "name": "United States Dollar"})
        if entity == "Invoice":
            due = date.fromisoformat(obj["TxnDate"]) + timedelta(days=30)
            obj.setdefault("DueDate", due.isoformat())
            obj["EmailStatus"] = "NotSet"
        if not doc_number:
            obj["DocNumber"] = str(1000 + len(self.objects[entity]) + 1)
        self._compute(obj)
        obj["Balance"] = obj["TotalAmt"]
        if entity == "CreditMemo":
            obj["RemainingCredit"] = obj["TotalAmt"]
        return self._put(entity, obj)

    def _accepts(self, entity: str, body: Obj) -> None:
        unknown = sorted(set(body) - ACCEPTED[entity])
        if unknown:
            raise invalid(f"Property Name:Unrecognized field \"{unknown[0]}\" specified is "
                          "unsupported or invalid", unknown[0])

    def _check_texts(self, body: Obj) -> None:
        for element, limit in (("PrivateNote", 4000),):
            if len(str(body.get(element) or "")) > limit:
                raise invalid(f"String length exceeds {limit}: {element}", element)
        memo = body.get("CustomerMemo")
        if memo is not None and len(str(memo.get("value") or "")) > 1000:
            raise invalid("String length exceeds 1000: CustomerMemo", "CustomerMemo")
        for field in body.get("CustomField") or []:
            used = f"SalesFormsPrefs.UseSalesCustom{field.get('DefinitionId')}"
            enabled = any(f.get("Name") == used and f.get("BooleanValue") is True
                          for group in self.preferences["SalesFormsPrefs"]["CustomField"]
                          for f in group["CustomField"])
            if not enabled or len(str(field.get("StringValue") or "")) > 31:
                raise invalid("Invalid custom field (DefinitionId not enabled, or StringValue "
                              "longer than 31 characters)", "CustomField")

    def _line(self, line: Obj, line_no: int) -> Obj:
        if line.get("DetailType") != "SalesItemLineDetail":
            raise invalid(f"Line {line_no}: DetailType {line.get('DetailType')!r} is not "
                          "supported here", "Line.DetailType")
        if "Amount" not in line:
            raise required("Line.Amount")
        amount = decimal(line["Amount"], "Line.Amount")
        detail = line.get("SalesItemLineDetail") or {}
        item_id = str((detail.get("ItemRef") or {}).get("value") or "")
        if not item_id:
            raise required("Line.SalesItemLineDetail.ItemRef")
        self.get("Item", item_id)
        out = copy.deepcopy(line)
        out["Id"], out["LineNum"], out["Amount"] = str(line_no), Decimal(line_no), cents(amount)
        sid = out["SalesItemLineDetail"]
        if "Qty" in detail and "UnitPrice" in detail:
            qty, price = decimal(detail["Qty"], "Qty"), decimal(detail["UnitPrice"], "UnitPrice")
            sid["Qty"], sid["UnitPrice"] = qty, price
            if cents(qty * price) != cents(amount):
                raise QboError(400, "Amount is not equal to UnitPrice * Qty",
                               f"Amount is not equal to UnitPrice * Qty. Supplied value:"
                               f"{amount}", "6070", "Line.Amount")
        code = str((detail.get("TaxCodeRef") or {}).get("value") or "NON")
        if code not in ("TAX", "NON"):
            raise invalid(f"Line {line_no}: TaxCodeRef must be TAX or NON", "TaxCodeRef")
        sid["TaxCodeRef"] = {"value": code}
        return out

    def _compute(self, obj: Obj) -> None:
        lines = obj["Line"]
        subtotal = sum((line["Amount"] for line in lines), Decimal(0))
        taxable = sum((line["Amount"] for line in lines
                       if line["SalesItemLineDetail"]["TaxCodeRef"]["value"] == "TAX"),
                      Decimal(0))
        detail = dict(obj.get("TxnTaxDetail") or {})
        if "TotalTax" in detail:
            detail["TotalTax"] = cents(decimal(detail["TotalTax"], "TxnTaxDetail.TotalTax"))
        if self.ast is not None:
            obj["TxnTaxDetail"] = self.ast.compute(obj, taxable, detail)
            self._total(obj, subtotal)
            return
        code_id = (detail.get("TxnTaxCodeRef") or {}).get("value")
        tax_lines: list[Obj] = []
        if code_id and code_id not in ("TAX", "NON"):
            code = self.get("TaxCode", str(code_id))
            for ref in code.get("SalesTaxRateList", {}).get("TaxRateDetail", []):
                rate = self.get("TaxRate", ref["TaxRateRef"]["value"])
                tax_lines.append({"Amount": cents(taxable * rate["RateValue"] / 100),
                                  "DetailType": "TaxLineDetail", "TaxLineDetail": {
                                      "TaxRateRef": {"value": rate["Id"]}, "PercentBased": True,
                                      "TaxPercent": rate["RateValue"],
                                      "NetAmountTaxable": taxable}})
        total_tax = sum((t["Amount"] for t in tax_lines), Decimal(0))
        obj["TxnTaxDetail"] = {**detail, "TotalTax": total_tax, **(
            {"TaxLine": tax_lines} if tax_lines else {})}
        self._total(obj, subtotal)

    @staticmethod
    def _total(obj: Obj, subtotal: Decimal) -> None:
        obj["Line"].append({"Amount": subtotal, "DetailType": "SubTotalLineDetail",
                            "SubTotalLineDetail": {}})
        obj["TotalAmt"] = subtotal + obj["TxnTaxDetail"]["TotalTax"]

    # -- actions ------------------------------------------------------------------------------

    def void_invoice(self, body: Obj) -> Obj:
        invoice = self.get("Invoice", str(body.get("Id") or ""))
        if str(body.get("SyncToken")) != invoice["SyncToken"]:
            raise QboError(400, "Stale Object Error", "Stale Object Error : You and "
                           f"{invoice['Id']} were working on this at the same time.", "5010")
        if any(t.get("TxnType") == "Payment" for t in invoice.get("LinkedTxn", [])):
            raise QboError(400, "A business validation error has occurred while processing "
                           "your request", "Business Validation Error: This invoice has "
                           "payments applied; remove them first.", "6000")
        for line in invoice["Line"]:
            line["Amount"] = Decimal(0)
            if "SalesItemLineDetail" in line:
                line["SalesItemLineDetail"]["Qty"] = Decimal(0)
        invoice["TxnTaxDetail"] = {**invoice.get("TxnTaxDetail", {}), "TotalTax": Decimal(0),
                                   "TaxLine": []}
        invoice.update(TotalAmt=Decimal(0), Balance=Decimal(0), PrivateNote="Voided")
        self._touch(invoice)
        return invoice

    def send(self, entity: str, obj_id: str, send_to: str | None) -> Obj:
        obj = self.get(entity, obj_id)
        address = send_to or (obj.get("BillEmail") or {}).get("Address")
        if not address or "@" not in address:
            raise QboError(400, "Invalid Email Address", "Email Address is missing or "
                           "invalid", "2090", "sendTo")
        obj["BillEmail"] = {"Address": address}
        obj["EmailStatus"] = "EmailSent"
        obj["DeliveryInfo"] = {"DeliveryType": "Email", "DeliveryTime": self.stamp()}
        self.emails.setdefault(obj_id, []).append(address)
        self._touch(obj)
        return obj

    def create_payment(self, body: Obj) -> Obj:
        self._accepts("Payment", body)
        customer_id = str((body.get("CustomerRef") or {}).get("value") or "")
        self.get("Customer", customer_id)
        total = decimal(body.get("TotalAmt", Decimal(0)), "TotalAmt")
        links: list[tuple[Obj, Decimal]] = []
        applied = Decimal(0)
        for line in body.get("Line") or []:
            amount = cents(decimal(line.get("Amount"), "Line.Amount"))
            for link in line.get("LinkedTxn") or []:
                kind = str(link.get("TxnType"))
                if kind not in ("Invoice", "CreditMemo"):
                    raise invalid(f"LinkedTxn TxnType {kind} not supported", "LinkedTxn")
                target = self.get(kind, str(link.get("TxnId")))
                if amount > target["Balance"]:
                    raise QboError(400, "A business validation error has occurred while "
                                   "processing your request", f"{kind} {target['Id']} has "
                                   f"a balance of {target['Balance']}", "6000", "Line.Amount")
                links.append((target, amount))
                applied += amount if kind == "Invoice" else -amount
        if cents(applied) != cents(total):
            raise QboError(400, "A business validation error has occurred while processing "
                           "your request", "The payment amount must equal the amounts "
                           "applied to invoices less the credits", "6000", "TotalAmt")
        payment = self._put("Payment", {**body, "TotalAmt": cents(total),
                                        "TxnDate": body.get("TxnDate")
                                        or self._now().date().isoformat(),
                                        "UnappliedAmt": Decimal(0)})
        for target, amount in links:
            target["Balance"] = target["Balance"] - amount
            if "RemainingCredit" in target:
                target["RemainingCredit"] = target["Balance"]
            target.setdefault("LinkedTxn", []).append({"TxnId": payment["Id"],
                                                       "TxnType": "Payment"})
            self._touch(target)
        return payment

    def _touch(self, obj: Obj) -> None:
        obj["SyncToken"] = str(int(obj["SyncToken"]) + 1)
        obj["MetaData"] = {**obj["MetaData"], "LastUpdatedTime": self.stamp()}
