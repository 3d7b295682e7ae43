"""Invoices and invoice items: creation, totals recomputed from the items, and the actions
(finalize, send, pay out of band, void), each emitting its events.

Tax per line is ``round_half_up(amount * percentage/100)`` in minor units; ``subtotal``,
``tax``, ``total`` and ``amount_due/paid/remaining`` are summed from the lines. Not locked
itself: ``StripeSandbox`` holds its lock around every call.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from autoinvoice.sandbox.stripe.errors import StripeError, invalid
from autoinvoice.sandbox.stripe.forms import (
    INVOICE_PARAMS,
    ITEM_PARAMS,
    QUERY_PARAMS,
    Obj,
    allow,
    bool_param,
    int_param,
    require,
)
from autoinvoice.sandbox.stripe.objects import invoice_object, item_object, line_object
from autoinvoice.sandbox.stripe.store import Store

Emit = Callable[[str, Obj], None]


class Invoices:
    def __init__(self, store: Store, emit: Emit, hosted_base: str) -> None:
        self._store, self._emit, self._hosted_base = store, emit, hosted_base
        self._items_of: dict[str, list[str]] = {}  # invoice id -> its item ids, in order
        self._sent: dict[str, int] = {}

    def create_invoice(self, params: Obj) -> Obj:
        allow(params, INVOICE_PARAMS)
        store = self._store
        customer = store.get("customer", str(require(params, "customer")), "customer")
        method = params.get("collection_method", "charge_automatically")
        days = int_param(params, "days_until_due")
        if method not in ("charge_automatically", "send_invoice"):
            raise invalid("collection_method", f"Invalid collection_method: {method}")
        if days is not None and method != "send_invoice":
            raise invalid("days_until_due", "days_until_due is only valid for invoices with "
                          "collection_method=send_invoice")
        now = store.now()
        invoice = store.add("invoice", invoice_object(params, "in_" + store.ids.suffix(),
                                                      customer, method, days, now))
        if params.get("pending_invoice_items_behavior") in ("include", "include_and_require"):
            for item in store.objects["invoiceitem"].values():
                if item["customer"] == customer["id"] and item["invoice"] is None:
                    self._attach(invoice, item)
        return invoice

    def create_item(self, params: Obj) -> Obj:
        allow(params, ITEM_PARAMS)
        store = self._store
        customer = store.get("customer", str(require(params, "customer")), "customer")
        invoice = self._item_invoice(params, customer)
        if "price" in params or "price_data" in params:
            raise invalid("price", "The sandbox supports amount or unit_amount items only")
        quantity = int_param(params, "quantity", 1) or 1
        unit = int_param(params, "unit_amount")
        amount = int_param(params, "amount", None if unit is None else unit * quantity)
        if amount is None:
            raise StripeError(400, "Missing required param: amount.", param="amount",
                              code="parameter_missing")
        currency = str(params.get("currency") or (invoice or {}).get("currency") or "usd")
        if invoice is not None and currency.lower() != invoice["currency"]:
            raise invalid("currency", "The currency of an invoice item must match its invoice")
        rates = [store.get("tax_rate", str(t), "tax_rates") for t in
                 params.get("tax_rates") or []]
        now, suffix = store.now(), store.ids.suffix()
        item = store.add("invoiceitem", item_object(
            params, suffix, now, customer, currency.lower(), amount, quantity, rates))
        if invoice is not None:
            self._attach(invoice, item)
        return item

    def _item_invoice(self, params: Obj, customer: Obj) -> Obj | None:
        if not params.get("invoice"):
            return None
        invoice = self._store.get("invoice", str(params["invoice"]), "invoice")
        if invoice["customer"] != customer["id"]:
            raise invalid("invoice", "The invoice belongs to another customer")
        if invoice["status"] != "draft":
            raise invalid("invoice", "Invoice items can only be added to draft invoices")
        return invoice

    def _attach(self, invoice: Obj, item: Obj) -> None:
        item["invoice"] = invoice["id"]
        self._items_of.setdefault(invoice["id"], []).append(item["id"])
        self._recompute(invoice)

    def _recompute(self, invoice: Obj) -> None:
        items, percent = self._store.objects["invoiceitem"], self._store.percent
        lines = [line_object(items[i], percent) for i in self._items_of.get(invoice["id"], ())]
        subtotal = sum(line["amount"] for line in lines)
        by_rate: dict[str, Obj] = {}
        for tax in (t for line in lines for t in line["tax_amounts"]):
            entry = by_rate.setdefault(tax["tax_rate"], {**tax, "amount": 0,
                                                         "taxable_amount": 0})
            entry["amount"] += tax["amount"]
            entry["taxable_amount"] += tax["taxable_amount"]
        tax_total = sum(entry["amount"] for entry in by_rate.values())
        invoice["lines"]["data"] = lines
        invoice.update(subtotal=subtotal, subtotal_excluding_tax=subtotal,
                       tax=tax_total if by_rate else None, total=subtotal + tax_total,
                       total_excluding_tax=subtotal, amount_due=subtotal + tax_total,
                       total_tax_amounts=list(by_rate.values()))
        invoice["amount_remaining"] = invoice["amount_due"] - invoice["amount_paid"]

    def lines(self, invoice_id: str, params: Obj) -> Obj:
        allow(params, QUERY_PARAMS["lines"])
        invoice = self._store.get("invoice", invoice_id)
        return self._store.page(list(invoice["lines"]["data"]), params,
                                f"/v1/invoices/{invoice_id}/lines")

    # -- actions ------------------------------------------------------------------------------

    def finalize(self, invoice_id: str, params: Obj) -> Obj:
        allow(params, frozenset({"auto_advance", "expand"}))
        invoice = self._store.get("invoice", invoice_id)
        if invoice["status"] != "draft":
            raise StripeError(400, "This invoice is already finalized, you can't re-finalize a "
                              "non-draft invoice.", code="invoice_not_editable", saved=True)
        customer = self._store.objects["customer"][invoice["customer"]]
        sequence = customer["next_invoice_sequence"]
        customer["next_invoice_sequence"] = sequence + 1
        now, token = self._store.now(), secrets.token_urlsafe(18)
        invoice.update(status="open", number=f"{customer['invoice_prefix']}-{sequence:04d}",
                       hosted_invoice_url=f"{self._hosted_base}/test_{token}",
                       invoice_pdf=f"{self._hosted_base}/test_{token}/pdf", effective_at=now,
                       auto_advance=bool_param(params, "auto_advance", invoice["auto_advance"]))
        invoice["status_transitions"]["finalized_at"] = now
        self._emit("invoice.finalized", invoice)
        if invoice["amount_due"] == 0:
            self._mark_paid(invoice)
        return invoice

    def send(self, invoice_id: str, params: Obj) -> Obj:
        invoice = self._store.retrieve("invoice", invoice_id, params)
        if invoice["collection_method"] != "send_invoice":
            raise StripeError(400, "You can only manually send an invoice if its collection "
                              "method is 'send_invoice'.", saved=True)
        if invoice["status"] not in ("open", "paid"):
            raise StripeError(400, f"You can't send an invoice with status "
                              f"'{invoice['status']}'; finalize it first.", saved=True)
        self._sent[invoice_id] = self._sent.get(invoice_id, 0) + 1
        self._emit("invoice.sent", invoice)
        return invoice

    def pay(self, invoice_id: str, params: Obj) -> Obj:
        allow(params, frozenset({"expand", "forgive", "mandate", "off_session",
                                 "paid_out_of_band", "payment_method", "source"}))
        invoice = self._store.get("invoice", invoice_id)
        if invoice["status"] != "open":
            raise StripeError(400, f"Invoice is {invoice['status']}; only open invoices can be "
                              "paid.", code="invoice_not_open", saved=True)
        if not bool_param(params, "paid_out_of_band", False):
            raise StripeError(402, "This customer has no attached payment source or default "
                              "payment method.", type="card_error",
                              code="invoice_no_customer_line_items", saved=True)
        invoice["paid_out_of_band"] = True
        self._mark_paid(invoice)
        return invoice

    def void(self, invoice_id: str, params: Obj) -> Obj:
        invoice = self._store.retrieve("invoice", invoice_id, params)
        if invoice["status"] not in ("open", "uncollectible"):
            raise StripeError(400, "You can only void open or uncollectible invoices; this "
                              f"invoice is {invoice['status']}.", saved=True)
        invoice["status"] = "void"
        invoice["status_transitions"]["voided_at"] = self._store.now()
        self._emit("invoice.voided", invoice)
        return invoice

    def delete(self, invoice_id: str, params: Obj) -> Obj:
        """``DELETE /v1/invoices/{id}``: drafts only; a finalized invoice must be voided."""
        allow(params, frozenset())
        invoice = self._store.get("invoice", invoice_id)
        if invoice["status"] != "draft":
            raise StripeError(400, "You can only delete draft invoices. A finalized invoice "
                              "must be voided instead.", code="invoice_not_editable")
        for item_id in self._items_of.pop(invoice_id, []):
            self._store.remove("invoiceitem", item_id)
        self._store.remove("invoice", invoice_id)
        self._emit("invoice.deleted", invoice)
        return {"id": invoice_id, "object": "invoice", "deleted": True}

    def _mark_paid(self, invoice: Obj) -> None:
        invoice.update(status="paid", paid=True, amount_paid=invoice["amount_due"],
                       amount_remaining=0)
        self._paid(invoice)

    def _paid(self, invoice: Obj) -> None:
        invoice["status_transitions"]["paid_at"] = self._store.now()
        self._emit("invoice.paid", invoice)
        self._emit("invoice.payment_succeeded", invoice)

    # -- sandbox-only -------------------------------------------------------------------------

    def record_payment(self, invoice_id: str, amount_minor: int) -> Obj:
        """A payment of ``amount_minor`` against an open invoice (partial or full)."""
        invoice = self._store.get("invoice", invoice_id)
        if invoice["status"] != "open" or amount_minor <= 0:
            raise StripeError(400, f"cannot record {amount_minor} on a "
                              f"{invoice['status']} invoice")
        paid = invoice["amount_paid"] + amount_minor
        invoice.update(amount_paid=paid, amount_remaining=max(0, invoice["amount_due"] - paid))
        if paid >= invoice["amount_due"]:
            invoice["status"], invoice["paid"] = "paid", True
            self._paid(invoice)
        return invoice

    def emails_sent(self, invoice_id: str) -> int:
        return self._sent.get(invoice_id, 0)


ACTIONS: dict[str, Callable[[Invoices, str, Obj], Obj]] = {
    "finalize": Invoices.finalize, "send": Invoices.send,
    "pay": Invoices.pay, "void": Invoices.void,
}
