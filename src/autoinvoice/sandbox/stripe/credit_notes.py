"""Credit notes (``/v1/credit_notes``), as docs.stripe.com/api/credit_notes/create describes them
for API version 2023-08-16: issued against a finalized invoice, from ``lines`` (invoice lines
credited by ``amount`` or ``quantity``, or custom lines) or a bare ``amount``.

- On an ``open`` invoice the note is ``pre_payment``: it may not exceed ``amount_remaining`` and
  reduces ``amount_due``/``amount_remaining``; an invoice credited down to nothing is marked
  ``paid`` (inferred: Stripe has no open invoice with nothing left to pay).
- On a ``paid`` invoice it is ``post_payment``: ``refund_amount + credit_amount +
  out_of_band_amount`` must equal its total (``out_of_band_amount`` has been required for the
  shortfall since 2019-12-03). Refunds need a charge, which the stand-in has not: rejected.
- An invoice line cannot be credited beyond its amount, over all notes.

Numbers are ``{invoice number}-CN-{nn}``. Not locked itself: ``StripeSandbox`` holds its lock.
"""

from __future__ import annotations

from collections.abc import Callable

from autoinvoice.sandbox.stripe.errors import StripeError, invalid
from autoinvoice.sandbox.stripe.forms import (
    CREDIT_NOTE_PARAMS,
    QUERY_PARAMS,
    Obj,
    allow,
    int_param,
    require,
)
from autoinvoice.sandbox.stripe.objects import credit_line_object, credit_note_object
from autoinvoice.sandbox.stripe.store import Store

Emit = Callable[[str, Obj], None]


class CreditNotes:
    def __init__(self, store: Store, emit: Emit) -> None:
        self._store, self._emit = store, emit
        self._credited: dict[str, int] = {}  # invoice line id -> amount credited so far

    def create(self, params: Obj) -> Obj:
        allow(params, CREDIT_NOTE_PARAMS)
        store = self._store
        invoice = store.get("invoice", str(require(params, "invoice")), "invoice")
        if invoice["status"] not in ("open", "paid"):
            raise StripeError(400, "A credit note can only be issued for a finalized invoice "
                              f"that is open or paid; invoice {invoice['id']} is "
                              f"{invoice['status']}.", param="invoice")
        prefix = "cnli_" + store.ids.suffix()
        lines = self._lines(params, invoice, prefix)
        number = f"{invoice['number']}-CN-{self._count_for(invoice['id']) + 1:02d}"
        kind = "pre_payment" if invoice["status"] == "open" else "post_payment"
        note = credit_note_object(params, "cn_" + store.ids.suffix(), invoice, number, lines,
                                  kind, store.now())
        self._check_amounts(params, invoice, note)
        for line in lines:
            if line["invoice_line_item"]:
                key = line["invoice_line_item"]
                self._credited[key] = self._credited.get(key, 0) + line["amount"]
        self._apply(invoice, note)
        store.add("credit_note", note)
        self._emit("credit_note.created", note)
        return note

    def listing(self, params: Obj) -> Obj:
        allow(params, QUERY_PARAMS["credit_notes"])
        invoice, customer = params.get("invoice"), params.get("customer")
        return self._store.list_objects(
            "credit_note", params, "credit_notes",
            lambda n: (invoice is None or n["invoice"] == invoice)
            and (customer is None or n["customer"] == customer))

    def _count_for(self, invoice_id: str) -> int:
        return sum(1 for n in self._store.objects["credit_note"].values()
                   if n["invoice"] == invoice_id)

    # -- lines --------------------------------------------------------------------------------

    def _lines(self, params: Obj, invoice: Obj, prefix: str) -> list[Obj]:
        raw = params.get("lines")
        if raw is None:
            amount = int_param(params, "amount")
            if amount is None:
                raise StripeError(400, "You must pass either amount or lines.", param="lines",
                                  code="parameter_missing")
            return [credit_line_object(f"{prefix}_0", amount, None, None, self._store.percent)]
        if not isinstance(raw, list) or not raw:
            raise invalid("lines", "lines must be a non-empty array")
        by_id = {line["id"]: line for line in invoice["lines"]["data"]}
        return [self._line(entry, i, by_id, prefix) for i, entry in enumerate(raw)]

    def _line(self, entry: object, index: int, by_id: dict[str, Obj], prefix: str) -> Obj:
        where = f"lines[{index}]"
        if not isinstance(entry, dict):
            raise invalid(where, f"{where} must be a hash")
        kind = require(entry, "type")
        quantity = int_param(entry, "quantity", 1) or 1
        if kind == "custom_line_item":
            unit = int_param(entry, "unit_amount")
            if unit is None or unit <= 0:
                raise invalid(f"{where}[unit_amount]", "A custom credit note line needs a "
                              "positive unit_amount")
            return credit_line_object(f"{prefix}_{index}", unit * quantity,
                                      entry.get("description"), None, self._store.percent,
                                      quantity)
        if kind != "invoice_line_item":
            raise invalid(f"{where}[type]", f"Invalid type: {kind}")
        line_id = str(require(entry, "invoice_line_item"))
        line = by_id.get(line_id)
        if line is None:
            raise invalid(f"{where}[invoice_line_item]", f"No such invoice line: '{line_id}' "
                          "on this invoice")
        amount = int_param(entry, "amount")
        if amount is None:
            amount = line["amount"] * quantity // max(line["quantity"], 1)
        left = line["amount"] - self._credited.get(line_id, 0)
        if not 0 < amount <= left:
            raise invalid(f"{where}[amount]", f"The credit amount for invoice line {line_id} "
                          f"must be positive and at most what is left to credit ({left}).")
        return credit_line_object(f"{prefix}_{index}", amount, line["description"], line,
                                  self._store.percent)

    # -- effect on the invoice ----------------------------------------------------------------

    @staticmethod
    def _check_amounts(params: Obj, invoice: Obj, note: Obj) -> None:
        total = note["total"]
        if note["type"] == "pre_payment":
            if total > invoice["amount_remaining"]:
                raise StripeError(400, f"The credit note total ({total}) cannot exceed the "
                                  f"invoice's amount_remaining ({invoice['amount_remaining']}).",
                                  param="lines")
            return
        if int_param(params, "refund_amount") or params.get("refund"):
            raise invalid("refund_amount", "The invoice has no charge to refund")
        covered = sum(int_param(params, name, 0) or 0
                      for name in ("credit_amount", "out_of_band_amount"))
        if covered != total:
            raise StripeError(400, "For a credit note on a paid invoice, the sum of "
                              "refund_amount, credit_amount and out_of_band_amount must equal "
                              f"the credit note total ({total}); got {covered}.",
                              param="out_of_band_amount")

    def _apply(self, invoice: Obj, note: Obj) -> None:
        total = note["total"]
        if note["type"] == "post_payment":
            invoice["post_payment_credit_notes_amount"] += total
            return
        invoice["pre_payment_credit_notes_amount"] += total
        invoice["amount_due"] -= total
        invoice["amount_remaining"] -= total
        if invoice["amount_remaining"] == 0:
            invoice.update(status="paid", paid=True)
            invoice["status_transitions"]["paid_at"] = self._store.now()
            self._emit("invoice.paid", invoice)
