"""The FreshBooks stand-in's objects: clients, invoices (with FreshBooks' totals), payments and
credit notes, validated the way FreshBooks answers (``FreshBooksError``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

Obj = dict[str, Any]
CENT = Decimal("0.01")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
INVOICE_FIELDS = frozenset({
    "customerid", "create_date", "due_offset_days", "currency_code", "invoice_number",
    "po_number", "notes", "terms", "lines", "language", "discount_value", "address",
    "organization", "fname", "lname", "vat_name", "vat_number", "status"})
UPDATE_FIELDS = frozenset({"action_email", "email_recipients", "email_include_pdf",
                           "invoice_customized_email", "vis_state", "notes", "po_number",
                           "terms", "due_offset_days"})
LINE_FIELDS = frozenset({"type", "name", "description", "qty", "unit_cost", "taxName1",
                         "taxAmount1", "taxName2", "taxAmount2", "expenseid"})
CLIENT_FIELDS = frozenset({
    "fname", "lname", "email", "organization", "vat_name", "vat_number", "note", "home_phone",
    "mob_phone", "bus_phone", "p_street", "p_street2", "p_city", "p_province", "p_code",
    "p_country", "currency_code", "language"})
CREDIT_FIELDS = frozenset({"clientid", "create_date", "currency_code", "credit_number",
                           "credit_type", "language", "notes", "terms", "lines"})


class FreshBooksError(Exception):
    """An error answered in FreshBooks' shape:
    ``{"response": {"errors": [{errno, field, message, object, value}]}}``."""

    def __init__(self, status: int, message: str, *, errno: int = 2001,
                 field: str | None = None, obj: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errno = status, message, errno
        self.field, self.obj, self.value = field, obj, value

    def body(self) -> Obj:
        return {"response": {"errors": [{"errno": self.errno, "field": self.field,
                                         "message": self.message, "object": self.obj,
                                         "value": self.value}]}}


def invalid(obj: str, field: str, message: str, value: Any = None) -> FreshBooksError:
    return FreshBooksError(422, message, errno=2001, field=field, obj=obj, value=value)


def missing(obj: str, field: str, object_id: Any) -> FreshBooksError:
    return FreshBooksError(404, f"{obj.capitalize()} not found.", errno=1012, field=field,
                           obj=obj, value=str(object_id))


def cents(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def money(value: Decimal, code: str) -> Obj:
    return {"amount": cents(value), "code": code}


def decimal(raw: Any, obj: str, field: str) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, str | int):  # no floats: exact strings
        raise invalid(obj, field, f"Invalid value for field {field}: a decimal string", raw)
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        raise invalid(obj, field, f"Invalid value for field {field}", raw) from None


def day(raw: Any, obj: str, field: str) -> date:
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        raise invalid(obj, field, f"Invalid date for field {field}: YYYY-MM-DD", raw) from None


class Store:
    """Every object, by kind and id. ``today`` gives the account's date."""

    def __init__(self, account_id: str, today: Callable[[], date]) -> None:
        self.account_id, self._today = account_id, today
        self.clients: dict[int, Obj] = {}
        self.invoices: dict[int, Obj] = {}
        self.credit_notes: dict[int, Obj] = {}
        self.payments: dict[int, Obj] = {}
        self.emails: dict[int, list[list[str]]] = {}
        self._next = {"client": 3301, "invoice": 88001, "credit_note": 5101, "payment": 7701,
                      "line": 1}

    def new_id(self, kind: str) -> int:
        self._next[kind] += 1
        return self._next[kind] - 1

    # -- clients ------------------------------------------------------------------------------

    def create_client(self, data: Obj) -> Obj:
        _known(data, CLIENT_FIELDS, "client")
        if not any(data.get(k) for k in ("email", "organization", "fname", "lname")):
            raise invalid("client", "email", "A client needs an e-mail, a name or an "
                          "organization.")
        if data.get("email") and not EMAIL.match(str(data["email"])):
            raise invalid("client", "email", "Invalid email address.", data["email"])
        cid = self.new_id("client")
        client = {k: data.get(k, "") for k in CLIENT_FIELDS}
        client.update({"id": cid, "userid": cid, "accounting_systemid": self.account_id,
                       "vis_state": 0, "currency_code": data.get("currency_code") or "USD",
                       "updated": self._today().isoformat()})
        self.clients[cid] = client
        return client

    def client(self, cid: Any) -> Obj:
        found = self.clients.get(_int(cid))
        if found is None:
            raise missing("client", "userid", cid)
        return found

    def find_clients(self, search: Mapping[str, str]) -> list[Obj]:
        email, like = search.get("email"), search.get("organization_like")
        return [c for c in self.clients.values()
                if (email is None or str(c.get("email", "")).lower() == email.lower())
                and (like is None or like.lower() in str(c.get("organization", "")).lower())]

    # -- invoices -----------------------------------------------------------------------------

    def create_invoice(self, data: Obj) -> Obj:
        _known(data, INVOICE_FIELDS, "invoice")
        for field in ("customerid", "create_date"):
            if data.get(field) in (None, ""):
                raise invalid("invoice", field, f"Field {field} is required.")
        client = self.client(data["customerid"])
        created = day(data["create_date"], "invoice", "create_date")
        offset = _int(data.get("due_offset_days", 0), "invoice", "due_offset_days")
        code = str(data.get("currency_code") or client["currency_code"])
        iid = self.new_id("invoice")
        invoice = {
            "id": iid, "invoiceid": iid, "accountid": self.account_id,
            "accounting_systemid": self.account_id, "customerid": client["id"],
            "create_date": created.isoformat(), "due_offset_days": offset,
            "due_date": (created + timedelta(days=offset)).isoformat(),
            "currency_code": code, "invoice_number": str(data.get("invoice_number")
                                                         or f"{iid:07d}"),
            "po_number": data.get("po_number"), "notes": data.get("notes", ""),
            "terms": data.get("terms", ""), "language": data.get("language", "en"),
            "organization": client.get("organization", ""), "status": 1,
            "current_organization": client.get("organization", ""),
            "v3_status": "draft", "display_status": "draft", "payment_status": "unpaid",
            "vis_state": 0, "date_paid": None, "paid_total": "0",
            "created_at": f"{self._today().isoformat()} 00:00:00",
            "lines": self._lines(data.get("lines") or [], code, "invoice"),
        }
        self.invoices[iid] = _totals(invoice)
        return invoice

    def invoice(self, iid: Any) -> Obj:
        found = self.invoices.get(_int(iid))
        if found is None:
            raise missing("invoice", "invoiceid", iid)
        return found

    def update_invoice(self, iid: Any, data: Obj) -> Obj:
        _known(data, UPDATE_FIELDS, "invoice")
        invoice = self.invoice(iid)
        if "vis_state" in data:
            if data["vis_state"] not in (0, 1, 2):
                raise invalid("invoice", "vis_state", "vis_state is 0, 1 or 2", data["vis_state"])
            invoice["vis_state"] = data["vis_state"]
        for field in ("notes", "po_number", "terms"):
            if field in data:
                invoice[field] = data[field]
        if data.get("action_email"):
            self._email(invoice, data.get("email_recipients"))
        return invoice

    def _email(self, invoice: Obj, recipients: Any) -> None:
        if invoice["vis_state"] != 0:
            raise invalid("invoice", "vis_state", "A deleted invoice cannot be sent.")
        if not isinstance(recipients, list) or not recipients:
            raise invalid("invoice", "email_recipients", "email_recipients is required with "
                          "action_email.")
        for address in recipients:
            if not EMAIL.match(str(address)):
                raise invalid("invoice", "email_recipients", "Invalid email address.", address)
        self.emails.setdefault(invoice["id"], []).append([str(r) for r in recipients])
        if invoice["v3_status"] == "draft":
            invoice.update({"v3_status": "sent", "display_status": "sent", "status": 2})

    def find_invoices(self, search: Mapping[str, str]) -> list[Obj]:
        number, customer = search.get("invoice_number"), search.get("customerid")
        return [i for i in self.invoices.values()
                if (number is None or i["invoice_number"] == number)
                and (customer is None or str(i["customerid"]) == customer)]

    # -- payments -----------------------------------------------------------------------------

    def create_payment(self, data: Obj) -> Obj:
        if data.get("invoiceid") in (None, ""):
            raise invalid("payment", "invoiceid", "Field invoiceid is required.")
        invoice = self.invoice(data["invoiceid"])
        if invoice["vis_state"] != 0:
            raise invalid("payment", "invoiceid", "Cannot pay a deleted invoice.")
        amount = decimal((data.get("amount") or {}).get("amount"), "payment", "amount")
        if amount <= 0:
            raise invalid("payment", "amount", "Payment amount must be positive.", str(amount))
        when = day(data.get("date") or self._today().isoformat(), "payment", "date")
        pid = self.new_id("payment")
        payment = {"id": pid, "logid": pid, "invoiceid": invoice["id"],
                   "clientid": invoice["customerid"], "date": when.isoformat(),
                   "amount": money(amount, invoice["currency_code"]),
                   "type": data.get("type") or "Check", "vis_state": 0}
        self.payments[pid] = payment
        invoice["paid_total"] = str(Decimal(invoice["paid_total"]) + amount)
        _totals(invoice, when)
        return payment

    # -- credit notes -------------------------------------------------------------------------

    def create_credit_note(self, data: Obj) -> Obj:
        _known(data, CREDIT_FIELDS, "credit_note")
        if data.get("clientid") in (None, ""):
            raise invalid("credit_note", "clientid", "Field clientid is required.")
        client = self.client(data["clientid"])
        code = str(data.get("currency_code") or client["currency_code"])
        lines = self._lines(data.get("lines") or [], code, "credit_note")
        nid = self.new_id("credit_note")
        total = sum((Decimal(x["amount"]["amount"]) + Decimal(x["tax_total"]) for x in lines),
                    Decimal(0))
        note = {"id": nid, "creditid": nid, "clientid": client["id"], "currency_code": code,
                "credit_number": str(data.get("credit_number") or f"CN{nid:05d}"),
                "create_date": day(data.get("create_date") or self._today().isoformat(),
                                   "credit_note", "create_date").isoformat(),
                "credit_type": data.get("credit_type", "goodwill"),
                "notes": data.get("notes", ""), "lines": lines, "status": "created",
                "display_status": "created", "vis_state": 0, "amount": money(total, code),
                "paid": money(Decimal(0), code)}
        self.credit_notes[nid] = note
        return note

    def find_credit_notes(self, search: Mapping[str, str]) -> list[Obj]:
        client, number = search.get("clientid"), search.get("credit_number")
        return [n for n in self.credit_notes.values()
                if (client is None or str(n["clientid"]) == client)
                and (number is None or n["credit_number"] == number)]

    # -- lines --------------------------------------------------------------------------------

    def _lines(self, raw: Any, code: str, obj: str) -> list[Obj]:
        if not isinstance(raw, list):
            raise invalid(obj, "lines", "lines must be a list")
        return [self._line(item, code, obj) for item in raw]

    def _line(self, item: Any, code: str, obj: str) -> Obj:
        if not isinstance(item, dict):
            raise invalid(obj, "lines", "a line must be an object")
        _known(item, LINE_FIELDS, obj)
        if item.get("type", 0) not in (0, 1):
            raise invalid(obj, "type", "line type is 0 or 1", item.get("type"))
        cost = item.get("unit_cost")
        if not isinstance(cost, dict) or "amount" not in cost:
            raise invalid(obj, "unit_cost", "unit_cost needs an amount")
        if cost.get("code") not in (None, code):
            raise invalid(obj, "unit_cost", f"unit_cost code must be {code}", cost.get("code"))
        unit = decimal(cost["amount"], obj, "unit_cost").quantize(CENT, ROUND_HALF_UP)
        qty = decimal(item.get("qty", "1"), obj, "qty")
        amount = (qty * unit).quantize(CENT, ROUND_HALF_UP)
        line = {"lineid": self.new_id("line"), "type": item.get("type", 0),
                "name": item.get("name", ""), "description": item.get("description", ""),
                "qty": str(qty), "unit_cost": money(unit, code), "amount": money(amount, code)}
        tax = Decimal(0)
        for n in ("1", "2"):
            rate = _percent(item.get(f"taxAmount{n}"), obj, f"taxAmount{n}")
            line[f"taxName{n}"] = item.get(f"taxName{n}")
            line[f"taxAmount{n}"] = None if rate is None else str(rate)
            if rate is not None:  # FreshBooks: per line, to the cent, half up
                tax += (amount * rate / 100).quantize(CENT, ROUND_HALF_UP)
        line["tax_total"] = cents(tax)
        return line


def _totals(invoice: Obj, when: date | None = None) -> Obj:
    code = invoice["currency_code"]
    total = sum((Decimal(x["amount"]["amount"]) + Decimal(x["tax_total"])
                 for x in invoice["lines"]), Decimal(0))
    paid = Decimal(invoice["paid_total"])
    outstanding = max(Decimal(0), total - paid)
    invoice.update({"amount": money(total, code), "paid": money(paid, code),
                    "outstanding": money(outstanding, code),
                    "discount_total": money(Decimal(0), code)})
    if paid > 0:
        state = "paid" if outstanding == 0 else "partial"
        invoice.update({"payment_status": state, "v3_status": state,
                        "display_status": state if state == "paid" else "outstanding"})
        if state == "paid" and invoice["date_paid"] is None and when is not None:
            invoice["date_paid"] = when.isoformat()
    return invoice


def _percent(raw: Any, obj: str, field: str) -> Decimal | None:
    if raw in (None, ""):
        return None
    rate = decimal(raw, obj, field)
    if not 0 <= rate <= 100 or -rate.normalize().as_tuple().exponent > 3:  # type: ignore[operator]
        raise invalid(obj, field, f"{field} is a percentage from 0 to 100, up to 3 decimals",
                      str(raw))
    return rate


def _known(data: Any, fields: frozenset[str], obj: str) -> None:
    if not isinstance(data, dict):
        raise FreshBooksError(400, f"The request body must be a JSON object with a {obj}.",
                              errno=2002, obj=obj)
    unknown = sorted(set(data) - fields)
    if unknown:
        raise invalid(obj, unknown[0], f"Unknown field {unknown[0]}.")


def _int(raw: Any, obj: str = "id", field: str = "id") -> int:
    try:
        return int(str(raw))
    except ValueError:
        raise invalid(obj, field, f"Invalid value for field {field}", raw) from None
