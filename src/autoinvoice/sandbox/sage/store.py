"""The Sage stand-in's objects: one business's contacts, ledger accounts, tax rates, sales
invoices and sales credit notes, with Sage's validation (422 ``RecordInvalid`` naming the
attribute) and its per-line totals. Not locked itself: ``SageSandbox`` holds its lock around
every call.

Numbers are typed as Sage's Swagger types them (``swagger.full.v3.1.json``: amounts,
quantities and ``percentage`` are ``number``/``double``): they are kept as ``Decimal`` and
written as exact JSON numbers; a string where a number belongs is refused (stricter than
anything Sage documents: its Rails back end may coerce one).

Tax rates per country (``COUNTRY_SETUP``): a UK business has Sage's built-in UK rates only --
``GB_STANDARD`` 20 %, ``GB_REDUCED`` 5 %, ``GB_ZERO``, ``GB_EXEMPT`` and ``GB_NO_TAX`` (the
ids the ``tax_rates`` endpoint lists for a UK business). The German and US businesses exist
for the demo's other tenants; their ids follow the UK pattern and are a stand-in assumption
(a US business's sales tax rates are made per agency by its user).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from autoinvoice.domain.money import CurrencyError, exponent

Obj = dict[str, Any]
REFERENCE_MAX = 25

#: Sage's ids of its built-in UK rates: what a UK business's ``GET /tax_rates`` lists.
UK_TAX_RATES: Mapping[str, str] = {
    "GB_STANDARD": "20", "GB_REDUCED": "5", "GB_ZERO": "0", "GB_EXEMPT": "0", "GB_NO_TAX": "0",
}
#: country -> (base currency, tax rates); DE and US are stand-in assumptions (see above)
COUNTRY_SETUP: Mapping[str, tuple[str, Mapping[str, str]]] = {
    "GB": ("GBP", UK_TAX_RATES),
    "DE": ("EUR", {"DE_STANDARD": "19", "DE_REDUCED": "7", "DE_ZERO": "0", "DE_EXEMPT": "0",
                   "DE_NO_TAX": "0"}),
    "US": ("USD", {"US_OK_SALES": "8.5", "US_TX_SALES": "6.25", "US_EXEMPT": "0",
                   "US_NO_TAX": "0"}),
}
DEFAULT_TAX_RATES = UK_TAX_RATES


class SageError(Exception):
    """An error answer: ``status`` and Sage's body, a list of ``$severity/$dataCode/
    $message/$source`` entries."""

    def __init__(self, status: int, code: str, message: str, source: str = "", *,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.source = status, code, message, source
        self.retry_after = retry_after

    def body(self) -> list[Obj]:
        return [{"$severity": "error", "$dataCode": self.code, "$message": self.message,
                 "$source": self.source}]


def invalid(source: str, message: str) -> SageError:
    return SageError(422, "RecordInvalid", message, source)


def not_found(kind: str, key: str) -> SageError:
    return SageError(404, "RecordNotFound", f"{kind} {key} not found")


def new_id() -> str:
    return secrets.token_hex(16)


def number(value: Decimal) -> Decimal:
    """An amount as the API shows it: a JSON number (kept exact)."""
    return value


def _decimal(value: Any, source: str) -> Decimal:
    if isinstance(value, bool | str) or value is None:
        raise invalid(source, f"{source} must be a number")
    try:
        return Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise invalid(source, f"{source} must be a number") from None


def _text(data: Obj, name: str, source: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise invalid(source, f"{source} can't be blank")
        return None
    if not isinstance(value, str):
        raise invalid(source, f"{source} must be a string")
    return value


def _date(data: Obj, name: str, source: str, *, required: bool = False) -> str | None:
    value = _text(data, name, source, required=required)
    if value is None:
        return None
    try:
        date.fromisoformat(value)
    except ValueError:
        raise invalid(source, f"{source} is not a valid date") from None
    return value


class Store:
    def __init__(self, *, business_id: str, currency: str, clock: Callable[[], float],
                 tax_rates: Mapping[str, str] | None = None, country: str = "GB") -> None:
        self.business_id, self.currency, self._clock = business_id, currency, clock
        self.country = country
        self.contacts: dict[str, Obj] = {}
        self.invoices: dict[str, Obj] = {}
        self.credit_notes: dict[str, Obj] = {}
        self.ledger_accounts: dict[str, Obj] = {}
        self.tax_rates: dict[str, Obj] = {}
        self._seq = {"SI": 0, "SCN": 0}
        for code, name, kind in ((4000, "Sales Type A", "SALES"), (4900, "Other sales",
                                                                    "OTHER_INCOME"),
                                 (1200, "Current", "BANK")):
            key = new_id()
            self.ledger_accounts[key] = {
                "id": key, "displayed_as": f"{name} ({code})",
                "$path": f"/ledger_accounts/{key}", "name": name, "nominal_code": code,
                "ledger_account_type": {"id": kind, "displayed_as": kind.title()},
                "visible_in_sales": kind in ("SALES", "OTHER_INCOME"),
                "included_in_chart": True}
        for key, pct in (tax_rates or DEFAULT_TAX_RATES).items():
            self.tax_rates[key] = {"id": key, "displayed_as": f"{key} {pct}%",
                                   "$path": f"/tax_rates/{key}", "name": key,
                                   "percentage": Decimal(pct), "is_visible": True}

    # -- contacts -------------------------------------------------------------------------

    def create_contact(self, data: Obj) -> Obj:
        name = _text(data, "name", "name", required=True)
        types = data.get("contact_type_ids")
        if not isinstance(types, list) or not types:
            raise invalid("contact_type_ids", "contact_type_ids can't be blank")
        if not set(types) <= {"CUSTOMER", "VENDOR"}:
            raise invalid("contact_type_ids", "contact_type_ids must be CUSTOMER or VENDOR")
        reference = _text(data, "reference", "reference")
        if reference and any(c.get("reference") == reference for c in self.contacts.values()):
            raise invalid("reference", "reference has already been taken")
        person = data.get("main_contact_person") or {}
        key = new_id()
        contact = {
            "id": key, "displayed_as": f"{name} ({reference or key[:8]})",
            "$path": f"/contacts/{key}", "name": name, "reference": reference,
            "contact_types": [{"id": t, "displayed_as": t.title()} for t in types],
            "email": person.get("email") if isinstance(person, dict) else None,
            "main_address": data.get("main_address"), "tax_number": data.get("tax_number"),
            "main_contact_person": person or None, "created_at": self._now(),
            "updated_at": self._now()}
        self.contacts[key] = contact
        return contact

    def find_contacts(self, query: Mapping[str, str]) -> list[Obj]:
        found = list(self.contacts.values())
        if query.get("search"):
            needle = query["search"].lower()
            found = [c for c in found if needle in c["name"].lower()
                     or needle in (c.get("reference") or "").lower()]
        if query.get("email"):
            found = [c for c in found if (c.get("email") or "").lower()
                     == query["email"].lower()]
        if query.get("contact_type_id"):
            found = [c for c in found
                     if query["contact_type_id"] in {t["id"] for t in c["contact_types"]}]
        return found

    # -- sales invoices and credit notes ----------------------------------------------------

    def create_invoice(self, data: Obj) -> Obj:
        doc = self._document(data, "invoice_lines", "invoice")
        self._seq["SI"] += 1
        doc.update({"invoice_number": f"SI-{self._seq['SI']}", "sent": False,
                    "total_paid": number(self._q(Decimal(0), doc["currency"]["id"])),
                    "outstanding_amount": doc["total_amount"], "last_paid": None,
                    "void_reason": None, "$path": f"/sales_invoices/{doc['id']}"})
        if data.get("status_id") == "DRAFT":
            doc["status"] = {"id": "DRAFT", "displayed_as": "Draft"}
        self.invoices[doc["id"]] = doc
        return doc

    def create_credit_note(self, data: Obj) -> Obj:
        doc = self._document(data, "credit_note_lines", "credit_note")
        self._seq["SCN"] += 1
        doc.update({"credit_note_number": f"SCN-{self._seq['SCN']}",
                    "original_invoice_date": _date(data, "original_invoice_date",
                                                   "original_invoice_date"),
                    "$path": f"/sales_credit_notes/{doc['id']}"})
        self.credit_notes[doc["id"]] = doc
        return doc

    def find_documents(self, kind: str, query: Mapping[str, str]) -> list[Obj]:
        docs = self.invoices if kind == "invoice" else self.credit_notes
        found = [d for d in docs.values() if d["deleted_at"] is None]
        if query.get("search"):
            needle = query["search"].lower()
            found = [d for d in found if needle in (d.get("reference") or "").lower()
                     or needle in d["contact"]["displayed_as"].lower()]
        if query.get("contact_id"):
            found = [d for d in found if d["contact"]["id"] == query["contact_id"]]
        if query.get("status_id"):
            found = [d for d in found if d["status"]["id"] == query["status_id"]]
        return found

    def invoice(self, key: str) -> Obj:
        doc = self.invoices.get(key)
        if doc is None or doc["deleted_at"] is not None:
            raise not_found("SalesInvoice", key)
        return doc

    def update_invoice(self, key: str, data: Obj) -> Obj:
        doc = self.invoice(key)
        if doc["status"]["id"] == "VOID":
            raise invalid("status", "a void invoice cannot be updated")
        if "sent" in data:
            if not isinstance(data["sent"], bool):
                raise invalid("sent", "sent must be true or false")
            doc["sent"] = data["sent"]
        for name in ("notes", "reference", "due_date"):
            if name in data:
                doc[name] = _text(data, name, name)
        doc["updated_at"] = self._now()
        return doc

    def delete_invoice(self, key: str, void_reason: str | None) -> None:
        doc = self.invoice(key)
        status = doc["status"]["id"]
        if status == "DRAFT":
            doc["deleted_at"] = self._now()
            return
        if status == "VOID":
            raise invalid("status", "the invoice is already void")
        if Decimal(doc["total_paid"]) > 0:
            raise invalid("status", "an invoice with payments or allocations cannot be voided")
        if not void_reason:
            raise invalid("void_reason", "void_reason can't be blank")
        doc.update({"status": {"id": "VOID", "displayed_as": "Void"},
                    "void_reason": void_reason,
                    "outstanding_amount": self._q(Decimal(0), doc["currency"]["id"]),
                    "updated_at": self._now()})

    def record_payment(self, key: str, amount: Decimal, day: str) -> Obj:
        doc = self.invoice(key)
        outstanding = Decimal(doc["outstanding_amount"])
        if doc["status"]["id"] in ("VOID", "DRAFT"):
            raise ValueError(f"invoice {key} is {doc['status']['id']}: it cannot be paid")
        if amount <= 0 or amount > outstanding:
            raise ValueError(f"payment {amount} must be > 0 and <= outstanding {outstanding}")
        currency = doc["currency"]["id"]
        paid = self._q(Decimal(doc["total_paid"]) + amount, currency)
        left = self._q(outstanding - amount, currency)
        status = ("PAID", "Paid") if left == 0 else ("PART_PAID", "Part Paid")
        doc.update({"total_paid": number(paid), "outstanding_amount": number(left),
                    "last_paid": day, "status": {"id": status[0], "displayed_as": status[1]},
                    "updated_at": self._now()})
        return doc

    # -- inside ---------------------------------------------------------------------------

    def _document(self, data: Obj, lines_name: str, kind: str) -> Obj:
        contact_id = _text(data, "contact_id", "contact_id", required=True) or ""
        contact = self.contacts.get(contact_id)
        if contact is None:
            raise invalid("contact_id", f"contact_id {contact_id} is not a valid contact")
        if "CUSTOMER" not in {t["id"] for t in contact["contact_types"]}:
            raise invalid("contact_id", "the contact is not a customer")
        day = _date(data, "date", "date", required=True)
        due = _date(data, "due_date", "due_date")
        reference = _text(data, "reference", "reference")
        if reference and len(reference) > REFERENCE_MAX:
            raise invalid("reference", f"reference is too long (maximum is {REFERENCE_MAX} "
                          "characters)")
        currency = _text(data, "currency_id", "currency_id") or self.currency
        try:
            exponent(currency)
        except CurrencyError:
            raise invalid("currency_id", f"currency_id {currency} is not valid") from None
        raw_lines = data.get(lines_name)
        if not isinstance(raw_lines, list) or not raw_lines:
            raise invalid(lines_name, f"{lines_name} can't be blank")
        lines = [self._line(raw, f"{lines_name}[{i}]", currency)
                 for i, raw in enumerate(raw_lines)]
        net = sum((Decimal(x["net_amount"]) for x in lines), Decimal(0))
        tax = sum((Decimal(x["tax_amount"]) for x in lines), Decimal(0))
        key = new_id()
        return {
            "id": key, "displayed_as": reference or key[:8], "date": day, "due_date": due,
            "contact": {"id": contact_id, "displayed_as": contact["displayed_as"],
                        "$path": f"/contacts/{contact_id}"},
            "reference": reference, "notes": _text(data, "notes", "notes"),
            "currency": {"id": currency, "displayed_as": currency},
            "status": {"id": "UNPAID", "displayed_as": "Unpaid"},
            "net_amount": number(self._q(net, currency)),
            "tax_amount": number(self._q(tax, currency)),
            "total_amount": number(self._q(net + tax, currency)),
            lines_name: lines, "created_at": self._now(), "updated_at": self._now(),
            "deleted_at": None}

    def _line(self, raw: Any, source: str, currency: str) -> Obj:
        if not isinstance(raw, dict):
            raise invalid(source, f"{source} must be an object")
        description = _text(raw, "description", f"{source}.description", required=True)
        account = _text(raw, "ledger_account_id", f"{source}.ledger_account_id", required=True)
        if account not in self.ledger_accounts:
            raise invalid(f"{source}.ledger_account_id", "ledger_account_id is not valid")
        if "unit_price" not in raw:
            raise invalid(f"{source}.unit_price", "unit_price can't be blank")
        price = _decimal(raw["unit_price"], f"{source}.unit_price")
        quantity = _decimal(raw.get("quantity", 1), f"{source}.quantity")
        net = self._q(quantity * price, currency)
        rate_id = _text(raw, "tax_rate_id", f"{source}.tax_rate_id")
        rate = self.tax_rates.get(rate_id or "")
        if rate_id and rate is None:
            raise invalid(f"{source}.tax_rate_id", f"tax_rate_id {rate_id} is not valid")
        percentage = Decimal(rate["percentage"]) if rate else Decimal(0)
        if "tax_amount" in raw:
            tax = self._q(_decimal(raw["tax_amount"], f"{source}.tax_amount"), currency)
        elif percentage:
            raise invalid(f"{source}.tax_amount", "tax_amount is required for a tax rate "
                          "with a percentage (v3.1)")
        else:
            tax = Decimal(0)
        return {"id": new_id(), "description": description,
                "ledger_account": {"id": account}, "quantity": number(quantity),
                "unit_price": number(price), "net_amount": number(net),
                "tax_rate": {"id": rate_id} if rate_id else None,
                "tax_amount": number(tax), "total_amount": number(net + tax)}

    @staticmethod
    def _q(value: Decimal, currency: str) -> Decimal:
        return value.quantize(Decimal(1).scaleb(-exponent(currency)), rounding=ROUND_HALF_UP)

    def _now(self) -> str:
        return datetime.fromtimestamp(self._clock(), UTC).isoformat().replace("+00:00", "Z")
