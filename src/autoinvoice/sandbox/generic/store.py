"""The generic sandbox's customers, invoices and payments, in memory. Taxes and totals are
computed here, as a careful platform does: each line's tax is round-half-up(amount × tax_rate)
to the currency's minor unit; subtotal, tax and total are summed from the lines."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from autoinvoice.domain.money import quantize
from autoinvoice.sandbox.generic.validation import (
    ApiError,
    Json,
    address_field,
    amount_field,
    bad,
    currency_field,
    date_field,
    decimal_field,
    moment_field,
    only_fields,
    opt_text_field,
    revision_field,
    text_field,
)

_CUSTOMER_FIELDS = frozenset({"external_id", "name", "email", "address"})
_INVOICE_FIELDS = frozenset({"customer_id", "reference", "revision", "number", "currency",
                             "issue_date", "due_date", "po_number", "lines"})
_LINE_FIELDS = frozenset({"description", "quantity", "unit_price", "amount", "tax_rate", "tax"})
_PAYMENT_FIELDS = frozenset({"amount", "paid_at"})
_CREDIT_NOTE_FIELDS = frozenset({"invoice_id", "number", "issue_date", "reason", "lines"})


def _fmt(amount: Decimal, currency: str) -> str:
    return format(quantize(amount, currency), "f")


@dataclass
class _Invoice:
    id: str
    customer_id: str
    reference: str
    revision: int
    number: str
    currency: str
    issue_date: date
    due_date: date
    po_number: str | None
    lines: list[Json]
    subtotal: Decimal
    tax: Decimal
    created_at: datetime
    status: str = "draft"
    amount_paid: Decimal = Decimal(0)
    credited: Decimal = Decimal(0)
    paid_at: datetime | None = None
    payments: list[Json] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.tax

    @property
    def balance(self) -> Decimal:
        return max(Decimal(0), self.total - self.amount_paid - self.credited)

    def render(self) -> Json:
        money = {name: _fmt(getattr(self, name), self.currency)
                 for name in ("subtotal", "tax", "total", "amount_paid", "credited", "balance")}
        return {
            "id": self.id, "object": "invoice", "customer_id": self.customer_id,
            "reference": self.reference, "revision": self.revision, "number": self.number,
            "status": self.status, "currency": self.currency,
            "issue_date": self.issue_date.isoformat(), "due_date": self.due_date.isoformat(),
            "po_number": self.po_number, "lines": self.lines, **money,
            "paid_at": self.paid_at.isoformat() if self.paid_at else None,
            "payments": self.payments, "created_at": self.created_at.isoformat(),
        }


def _line(raw: object, index: int, currency: str) -> tuple[Json, Decimal, Decimal]:
    where = f"lines[{index}]"
    if not isinstance(raw, dict):
        raise bad("invalid_request", "each line must be an object", where)
    only_fields(raw, _LINE_FIELDS, where)
    amount = amount_field(raw, "amount", currency, where)
    rate = decimal_field(raw, "tax_rate", where)
    if not 0 <= rate < 1:
        raise bad("invalid_amount", "tax_rate is a fraction in [0, 1)", f"{where}.tax_rate")
    tax = quantize(amount * rate, currency)  # half-up, once per line: the platform's own rule
    line = {
        "description": text_field(raw, "description", where),
        "quantity": format(decimal_field(raw, "quantity", where), "f"),
        "unit_price": format(decimal_field(raw, "unit_price", where), "f"),
        "amount": _fmt(amount, currency), "tax_rate": format(rate, "f"), "tax": _fmt(tax, currency),
    }
    return line, amount, tax


class Store:
    """Customers and invoices. Not locked itself: ``GenericSandbox.handle`` holds the lock."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._customers: dict[str, Json] = {}
        self._invoices: dict[str, _Invoice] = {}
        self._credit_notes: dict[str, Json] = {}
        self._payments = itertools.count(1)

    @property
    def invoice_count(self) -> int:
        return len(self._invoices)

    def add_customer(self, body: Json) -> Json:
        only_fields(body, _CUSTOMER_FIELDS)
        customer: Json = {
            "id": f"cus_{len(self._customers) + 1:06d}", "object": "customer",
            "external_id": text_field(body, "external_id"), "name": text_field(body, "name"),
            "email": opt_text_field(body, "email"), "address": address_field(body),
            "created_at": self._clock().isoformat(),
        }
        self._customers[customer["id"]] = customer
        return customer

    def customer(self, customer_id: str) -> Json:
        if customer_id not in self._customers:
            raise ApiError(404, "not_found", f"no customer {customer_id}")
        return self._customers[customer_id]

    def find_customers(self, query: Mapping[str, str]) -> list[Json]:
        wanted = query.get("external_id")
        return [c for c in self._customers.values() if wanted in (None, c["external_id"])]

    def add_invoice(self, body: Json) -> Json:
        only_fields(body, _INVOICE_FIELDS)
        customer_id = text_field(body, "customer_id")
        if customer_id not in self._customers:
            raise bad("no_such_customer", f"no customer {customer_id}", "customer_id")
        currency = currency_field(body)
        issue_date, due_date = date_field(body, "issue_date"), date_field(body, "due_date")
        if due_date < issue_date:
            raise bad("invalid_request", "due_date is before issue_date", "due_date")
        raw_lines = body.get("lines")
        if not isinstance(raw_lines, list) or not raw_lines:
            raise bad("missing_field", "lines must be a non-empty list", "lines")
        parsed = [_line(raw, i, currency) for i, raw in enumerate(raw_lines)]
        seq = len(self._invoices) + 1
        invoice = _Invoice(
            id=f"inv_{seq:06d}", customer_id=customer_id, reference=text_field(body, "reference"),
            revision=revision_field(body),
            number=opt_text_field(body, "number") or f"SBX-{seq:05d}",
            currency=currency, issue_date=issue_date, due_date=due_date,
            po_number=opt_text_field(body, "po_number"), lines=[line for line, _, _ in parsed],
            subtotal=sum((amount for _, amount, _ in parsed), Decimal(0)),
            tax=sum((tax for _, _, tax in parsed), Decimal(0)), created_at=self._clock(),
        )
        self._invoices[invoice.id] = invoice
        return invoice.render()

    def _get(self, invoice_id: str) -> _Invoice:
        if invoice_id not in self._invoices:
            raise ApiError(404, "not_found", f"no invoice {invoice_id}")
        return self._invoices[invoice_id]

    def invoice(self, invoice_id: str) -> Json:
        return self._get(invoice_id).render()

    def find_invoices(self, query: Mapping[str, str]) -> list[Json]:
        revision = query.get("revision")
        if revision is not None and not revision.isdigit():
            raise bad("invalid_request", "revision must be an integer", "revision")
        wanted = {"reference": query.get("reference"), "status": query.get("status"),
                  "revision": int(revision) if revision is not None else None}
        return [
            inv.render() for inv in self._invoices.values()
            if all(v is None or getattr(inv, k) == v for k, v in wanted.items())
        ]

    def issue(self, invoice_id: str) -> Json:
        invoice = self._get(invoice_id)
        if invoice.status == "void":
            raise ApiError(409, "invalid_state", "a void invoice cannot be issued")
        if invoice.status == "draft":
            invoice.status = "issued"
        return invoice.render()

    def pay(self, invoice_id: str, body: Json) -> Json:
        invoice = self._get(invoice_id)
        only_fields(body, _PAYMENT_FIELDS)
        amount = amount_field(body, "amount", invoice.currency)
        paid_at = moment_field(body, "paid_at", self._clock())
        if invoice.status not in ("issued", "partially_paid"):
            raise ApiError(409, "invalid_state", f"cannot pay a {invoice.status} invoice")
        if not 0 < amount <= invoice.balance:
            raise bad("invalid_amount", f"amount must be in (0, {invoice.balance}]", "amount")
        invoice.amount_paid += amount
        invoice.payments.append({"id": f"pay_{next(self._payments):06d}",
                                 "amount": _fmt(amount, invoice.currency),
                                 "paid_at": paid_at.isoformat()})
        invoice.status = "paid" if invoice.balance == 0 else "partially_paid"
        invoice.paid_at = paid_at if invoice.status == "paid" else None
        return invoice.render()

    def void(self, invoice_id: str) -> Json:
        invoice = self._get(invoice_id)
        if invoice.status not in ("draft", "issued") or invoice.amount_paid:
            raise ApiError(409, "invalid_state", f"cannot void a {invoice.status} invoice")
        invoice.status = "void"
        return invoice.render()

    # -- credit notes -------------------------------------------------------------------------

    def add_credit_note(self, body: Json) -> Json:
        only_fields(body, _CREDIT_NOTE_FIELDS)
        invoice = self._get(text_field(body, "invoice_id"))
        if invoice.status not in ("issued", "partially_paid", "paid"):
            raise ApiError(409, "invalid_state", f"cannot credit a {invoice.status} invoice")
        raw_lines = body.get("lines")
        if not isinstance(raw_lines, list) or not raw_lines:
            raise bad("missing_field", "lines must be a non-empty list", "lines")
        parsed = [_line(raw, i, invoice.currency) for i, raw in enumerate(raw_lines)]
        subtotal = sum((amount for _, amount, _ in parsed), Decimal(0))
        tax = sum((t for _, _, t in parsed), Decimal(0))
        if subtotal + tax > invoice.total - invoice.credited:
            raise bad("invalid_amount", "a credit note may not exceed what is left to credit "
                      f"({_fmt(invoice.total - invoice.credited, invoice.currency)})", "lines")
        seq = len(self._credit_notes) + 1
        note: Json = {
            "id": f"cn_{seq:06d}", "object": "credit_note", "invoice_id": invoice.id,
            "number": opt_text_field(body, "number") or f"SBX-CN-{seq:05d}",
            "issue_date": date_field(body, "issue_date").isoformat(),
            "reason": opt_text_field(body, "reason"), "currency": invoice.currency,
            "lines": [line for line, _, _ in parsed],
            "subtotal": _fmt(subtotal, invoice.currency), "tax": _fmt(tax, invoice.currency),
            "total": _fmt(subtotal + tax, invoice.currency),
            "created_at": self._clock().isoformat(),
        }
        invoice.credited += subtotal + tax
        if invoice.credited == invoice.total and invoice.status == "issued":
            invoice.status = "credited"
        self._credit_notes[note["id"]] = note
        return note

    def credit_note(self, note_id: str) -> Json:
        if note_id not in self._credit_notes:
            raise ApiError(404, "not_found", f"no credit note {note_id}")
        return self._credit_notes[note_id]

    def find_credit_notes(self, query: Mapping[str, str]) -> list[Json]:
        wanted = {k: query.get(k) for k in ("invoice_id", "number")}
        return [n for n in self._credit_notes.values()
                if all(v is None or n[k] == v for k, v in wanted.items())]
