"""The Zoho Books stand-in's objects: contacts, taxes, invoices, credit notes, in memory.

Totals are computed as Zoho Books computes them for an organisation with exclusive tax and
item-level tax rounding: ``item_total = round_half_up(rate × quantity)`` and each line's tax
``round_half_up(item_total × tax_percentage / 100)``, both to the currency's minor unit;
``sub_total``, ``tax_total`` and ``total`` are sums of those. ``balance`` is
``total − payment_made − credits_applied``. Every number is a ``Decimal``.

Currency and VAT treatment (``editions``): the organisation's country fixes its base currency;
a contact's ``currency_code`` is the base currency (Zoho: "the currency of the customer", by
default the organisation's), and an invoice or credit note is in its customer's currency
(``currency_code`` "The currency code in which the invoice is created"). In a VAT edition a
contact and an invoice carry the edition's treatment field (``vat_treatment`` in the UK,
``tax_treatment`` in the EU edition), the invoice's defaulting to its contact's; a value the
edition does not know is refused (400, code 2 "Invalid value passed for ..."), and so is an
invoice whose treatment does not fit (an EU-registered treatment without the customer's VAT
registration number, or with a taxed line: Zoho's German help, "all the items ... must be
associated with Zero Rate (0%) VAT"). Zoho's own
wording and code for these two refusals are unconfirmed (code 2 and a plain message here).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from autoinvoice.domain.money import quantize
from autoinvoice.sandbox.zoho_books.editions import Edition

Obj = dict[str, Any]


class ZohoError(Exception):
    """An error answer: HTTP ``status`` and Zoho's body ``{"code", "message"}``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> Obj:
        return {"code": self.code, "message": self.message}


def invalid(name: str) -> ZohoError:
    return ZohoError(400, 2, f"Invalid value passed for {name}")


def required(name: str) -> ZohoError:
    return ZohoError(400, 4, f"{name} is required.")


def _text(body: Mapping[str, Any], name: str, *, need: bool = False, limit: int = 100
          ) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if need:
            raise required(name)
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise invalid(name)
    return value


def _number(body: Mapping[str, Any], name: str, default: Decimal | None = None) -> Decimal:
    value = body.get(name, default)
    if value is None:
        raise required(name)
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise invalid(name)  # a JSON number, not a string
    return Decimal(value)


def _date(body: Mapping[str, Any], name: str, default: date) -> str:
    value = body.get(name)
    if value is None:
        return default.isoformat()
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise invalid(name) from None


_IDS = itertools.count(460000000026049)


@dataclass
class Books:
    """One organisation's data; the caller holds the lock."""

    edition: Edition
    today: Callable[[], date]
    contacts: dict[str, Obj] = field(default_factory=dict)
    taxes: dict[str, Obj] = field(default_factory=dict)
    invoices: dict[str, Obj] = field(default_factory=dict)
    creditnotes: dict[str, Obj] = field(default_factory=dict)
    emails: dict[str, int] = field(default_factory=dict)
    # Zoho's ids are unique across organisations: one counter for all of them.
    _ids: itertools.count[int] = field(default_factory=lambda: _IDS)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        for name, percentage in self.edition.taxes:  # the edition's default rates
            tax: Obj = {"tax_id": self.new_id(), "tax_name": name, "tax_percentage": percentage,
                   "tax_type": "tax", "is_default_tax": False, "is_editable": False}
            self.taxes[tax["tax_id"]] = tax

    @property
    def currency(self) -> str:
        """The organisation's base currency."""
        return self.edition.currency

    def new_id(self) -> str:
        return str(next(self._ids))

    def treatment(self, body: Mapping[str, Any], default: str | None) -> str | None:
        """The edition's VAT treatment in ``body`` (else ``default``); unknown ones refused."""
        field_name = self.edition.treatment_field
        if field_name is None:
            return None
        value = body.get(field_name) or default
        if value is not None and value not in self.edition.treatments:
            raise invalid(field_name)
        return value

    # -- contacts -----------------------------------------------------------------------------
    def create_contact(self, body: Obj) -> Obj:
        name = _text(body, "contact_name", need=True, limit=200)
        if any(c["contact_name"] == name for c in self.contacts.values()):
            raise ZohoError(400, 3062, "The customer name already exists. Please specify a "
                            "different name.")
        persons = body.get("contact_persons") or []
        if not isinstance(persons, list) or not all(isinstance(p, dict) for p in persons):
            raise invalid("contact_persons")
        contact: Obj = {"contact_id": self.new_id(), "contact_name": name,
                   "company_name": _text(body, "company_name", limit=200) or "",
                   "contact_type": body.get("contact_type") or "customer", "status": "active",
                   "email": next((p.get("email") for p in persons if p.get("email")), ""),
                   "contact_persons": [{"contact_person_id": self.new_id(), **p}
                                       for p in persons],
                   "billing_address": body.get("billing_address") or {},
                   "notes": _text(body, "notes", limit=5000) or "",
                   "vat_reg_no": _text(body, "vat_reg_no", limit=20) or "",
                   "currency_code": self.currency}
        if self.edition.treatment_field:
            contact[self.edition.treatment_field] = self.treatment(body, self.edition.home)
        self.contacts[contact["contact_id"]] = contact
        return contact

    def list_contacts(self, query: Mapping[str, str]) -> list[Obj]:
        out = list(self.contacts.values())
        if "email" in query:
            out = [c for c in out if c["email"].lower() == query["email"].lower()
                   or any(str(p.get("email", "")).lower() == query["email"].lower()
                          for p in c["contact_persons"])]
        if "contact_name" in query:
            out = [c for c in out if c["contact_name"] == query["contact_name"]]
        return out

    # -- taxes --------------------------------------------------------------------------------
    def create_tax(self, body: Obj) -> Obj:
        name = _text(body, "tax_name", need=True)
        percentage = _number(body, "tax_percentage")
        if not Decimal(0) <= percentage <= 100:
            raise invalid("tax_percentage")
        kind = body.get("tax_type", "tax")
        if kind not in ("tax", "compound_tax"):
            raise invalid("tax_type")
        tax = {"tax_id": self.new_id(), "tax_name": name, "tax_percentage": percentage,
               "tax_type": kind}
        self.taxes[tax["tax_id"]] = tax
        return tax

    # -- documents (invoices and credit notes share their line rules) --------------------------
    def lines(self, body: Obj) -> tuple[list[Obj], Decimal, Decimal]:
        raw = body.get("line_items")
        if not isinstance(raw, list) or not raw:
            raise required("line_items")
        lines, sub, tax = [], Decimal(0), Decimal(0)
        for item in raw:
            if not isinstance(item, dict):
                raise invalid("line_items")
            line = self._line(item)
            lines.append(line)
            sub += line["item_total"]
            tax += line["tax_amount"]
        return lines, sub, tax

    def _line(self, item: Obj) -> Obj:
        if not (item.get("item_id") or item.get("name") or item.get("description")):
            raise required("line_items.name")
        rate, quantity = _number(item, "rate"), _number(item, "quantity", Decimal(1))
        total = quantize(rate * quantity, self.currency)
        tax_id, pct = item.get("tax_id"), Decimal(0)
        if tax_id:
            if tax_id not in self.taxes:
                raise ZohoError(400, 1002, "Tax does not exist.")
            pct = self.taxes[tax_id]["tax_percentage"]
        return {"line_item_id": self.new_id(), "name": _text(item, "name") or "",
                "description": _text(item, "description", limit=2000) or "",
                "rate": rate, "quantity": quantity, "unit": item.get("unit") or "",
                "tax_id": tax_id or "", "tax_percentage": pct, "item_total": total,
                "tax_amount": quantize(total * pct / 100, self.currency)}

    def customer(self, body: Obj) -> Obj:
        cid = _text(body, "customer_id", need=True, limit=40)
        if cid not in self.contacts:
            raise ZohoError(400, 1002, "Contact does not exist.")
        return self.contacts[cid]

    def create_invoice(self, body: Obj, manual_number: bool) -> Obj:
        contact = self.customer(body)
        number = _text(body, "invoice_number")
        if number is not None and not manual_number:
            raise ZohoError(400, 1001, "Invoice number is auto-generated; pass "
                            "ignore_auto_number_generation=true to give your own.")
        number = number or f"INV-{next(self._numbers):06d}"
        if any(i["invoice_number"] == number for i in self.invoices.values()):
            raise ZohoError(400, 1001, "Invoice Number already exist")
        lines, sub, tax = self.lines(body)
        vat = self._vat(body, contact, lines)
        invoice = {"invoice_id": self.new_id(), "invoice_number": number, "status": "draft",
                   "customer_id": contact["contact_id"],
                   "customer_name": contact["contact_name"],
                   "reference_number": _text(body, "reference_number") or "",
                   "date": _date(body, "date", self.today()),
                   "due_date": _date(body, "due_date", self.today()),
                   "currency_code": contact["currency_code"], "line_items": lines,
                   "sub_total": sub, "tax_total": tax, "total": sub + tax,
                   "payment_made": Decimal(0), "credits_applied": Decimal(0),
                   "balance": sub + tax, "last_payment_date": "",
                   "notes": _text(body, "notes", limit=5000) or "",
                   "invoice_url": "", **vat}
        invoice["invoice_url"] = f"https://books.zoho.com/portal/invoice/{invoice['invoice_id']}"
        self.invoices[invoice["invoice_id"]] = invoice
        return invoice

    def _vat(self, body: Obj, contact: Obj, lines: list[Obj]) -> Obj:
        """A document's VAT treatment and the customer's VAT number, checked against its
        lines and contact (nothing in an edition without treatments)."""
        field_name, edition = self.edition.treatment_field, self.edition
        if field_name is None:
            return {}
        treatment = self.treatment(body, contact.get(field_name))
        vat_no = _text(body, "vat_reg_no", limit=20) or contact.get("vat_reg_no") or ""
        if treatment == edition.registered and not vat_no:
            raise ZohoError(400, 2, f"Invalid value passed for {field_name}: {treatment} needs "
                            "the customer's VAT registration number (vat_reg_no).")
        taxed = [line["name"] or line["description"] for line in lines
                 if line["tax_percentage"] > 0]
        if treatment == edition.registered and taxed:
            raise ZohoError(400, 2, f"Invalid value passed for {field_name}: {treatment} "
                            f"sales take the Zero Rate (0%), not VAT on {taxed[0]!r}.")
        return {field_name: treatment, "vat_reg_no": vat_no}

    def invoice(self, invoice_id: str) -> Obj:
        if invoice_id not in self.invoices:
            raise ZohoError(404, 1002, "Invoice does not exist.")
        return self.invoices[invoice_id]

    def email(self, invoice_id: str, body: Obj) -> None:
        invoice = self.invoice(invoice_id)
        to = body.get("to_mail_ids")
        if not isinstance(to, list) or not to or not all(isinstance(t, str) for t in to):
            raise invalid("to_mail_ids")
        if invoice["status"] == "void":
            raise ZohoError(400, 1036, "Voided invoices cannot be emailed.")
        if invoice["status"] == "draft":
            invoice["status"] = "sent"
        self.emails[invoice_id] = self.emails.get(invoice_id, 0) + 1

    def void(self, invoice_id: str) -> None:
        invoice = self.invoice(invoice_id)
        if invoice["payment_made"] > 0 or invoice["credits_applied"] > 0:
            raise ZohoError(400, 1040, "Payments have been recorded for this invoice. Hence "
                            "it cannot be voided.")
        invoice["status"] = "void"
        invoice["balance"] = Decimal(0)

    def delete(self, invoice_id: str) -> None:
        invoice = self.invoice(invoice_id)
        if invoice["payment_made"] > 0:
            raise ZohoError(400, 4001, "Payments have been recorded for these invoices.Hence "
                            "they cannot be deleted")
        del self.invoices[invoice_id]

    def pay(self, invoice_id: str, amount: Decimal) -> Obj:
        invoice = self.invoice(invoice_id)
        if invoice["status"] in ("draft", "void") or not 0 < amount <= invoice["balance"]:
            raise ZohoError(400, 24016, "The amount entered is more than the balance due "
                            "or the invoice cannot take payments.")
        invoice["payment_made"] += amount
        invoice["last_payment_date"] = self.today().isoformat()
        self._settle(invoice)
        return invoice

    def _settle(self, invoice: Obj) -> None:
        invoice["balance"] = invoice["total"] - invoice["payment_made"] - \
            invoice["credits_applied"]
        invoice["status"] = "paid" if invoice["balance"] <= 0 else "partially_paid"

    # -- credit notes -------------------------------------------------------------------------
    def create_creditnote(self, body: Obj, manual_number: bool) -> Obj:
        contact = self.customer(body)
        number = _text(body, "creditnote_number")
        if number is not None and not manual_number:
            raise ZohoError(400, 12018, "Credit note number is auto-generated; pass "
                            "ignore_auto_number_generation=true to give your own.")
        number = number or f"CN-{next(self._numbers):05d}"
        if any(n["creditnote_number"] == number for n in self.creditnotes.values()):
            raise ZohoError(400, 12018, "The specified Credit Note Number already exists")
        lines, sub, tax = self.lines(body)
        vat = self._vat(body, contact, lines)
        note = {"creditnote_id": self.new_id(), "creditnote_number": number,
                "status": "open", "customer_id": contact["contact_id"],
                "reference_number": _text(body, "reference_number") or "",
                "date": _date(body, "date", self.today()),
                "currency_code": contact["currency_code"], **vat,
                "line_items": lines, "sub_total": sub, "tax_total": tax, "total": sub + tax,
                "balance": sub + tax, "invoices": [],
                "notes": _text(body, "notes", limit=5000) or ""}
        self.creditnotes[note["creditnote_id"]] = note
        return note

    def creditnote(self, note_id: str) -> Obj:
        if note_id not in self.creditnotes:
            raise ZohoError(404, 1002, "Credit Note does not exists")
        return self.creditnotes[note_id]

    def apply_credit(self, note_id: str, body: Obj) -> list[Obj]:
        note = self.creditnote(note_id)
        wanted = body.get("invoices")
        if not isinstance(wanted, list) or not wanted:
            raise required("invoices")
        applied = []
        for entry in wanted:
            invoice = self.invoice(str(entry.get("invoice_id")))
            amount = _number(entry, "amount_applied")
            if invoice["status"] in ("draft", "void"):
                code = 12005 if invoice["status"] == "draft" else 12007
                raise ZohoError(400, code, f"Credits cannot be applied to invoices in the "
                                f"{invoice['status']} status")
            if not 0 < amount <= min(note["balance"], invoice["balance"]):
                raise invalid("amount_applied")
            note["balance"] -= amount
            invoice["credits_applied"] += amount
            self._settle(invoice)
            note["status"] = "closed" if note["balance"] == 0 else "open"
            entry_out = {"invoice_id": invoice["invoice_id"], "amount_applied": amount,
                         "invoice_number": invoice["invoice_number"]}
            note["invoices"].append(entry_out)
            applied.append(entry_out)
        return applied
