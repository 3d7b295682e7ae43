"""Stripe-shaped objects (API version ``API_VERSION``), built from validated params, and the
ids they carry."""

from __future__ import annotations

import itertools
import json
import secrets
import string
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from autoinvoice.sandbox.stripe.forms import (
    Obj,
    bool_param,
    custom_fields_param,
    int_param,
    metadata_param,
)

API_VERSION = "2023-08-16"


class Ids:
    """Object, request and event ids: a random tag per sandbox, then one shared counter."""

    def __init__(self) -> None:
        self.tag = "".join(secrets.choice(string.ascii_letters) for _ in range(6))
        self._count = itertools.count(1)

    def number(self) -> int:
        return next(self._count)

    def suffix(self) -> str:
        return f"{self.tag}{self.number():010d}"


def tax_minor(amount: int, percentage: Decimal) -> int:
    return int((Decimal(amount) * percentage / 100).quantize(Decimal(1), ROUND_HALF_UP))


def address(raw: Any) -> Obj | None:
    if not isinstance(raw, dict):
        return None
    return {k: raw.get(k) for k in ("city", "country", "line1", "line2", "postal_code", "state")}


def price(price_id: str, product_id: str, currency: str, unit_amount: int, now: int) -> Obj:
    return {"id": price_id, "object": "price", "active": False, "billing_scheme": "per_unit",
            "created": now, "currency": currency, "custom_unit_amount": None,
            "livemode": False, "lookup_key": None, "metadata": {}, "nickname": None,
            "product": product_id, "recurring": None, "tax_behavior": "unspecified",
            "tiers_mode": None, "transform_quantity": None, "type": "one_time",
            "unit_amount": unit_amount, "unit_amount_decimal": str(unit_amount)}


def listing(data: list[Obj], url: str, has_more: bool = False) -> Obj:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def customer_object(params: Obj, customer_id: str, prefix: str, now: int) -> Obj:
    return {
        "id": customer_id, "object": "customer",
        "address": address(params.get("address")), "balance": 0, "created": now,
        "currency": None, "default_source": None, "delinquent": False,
        "description": params.get("description"), "discount": None,
        "email": params.get("email"), "invoice_prefix": prefix,
        "invoice_settings": {"custom_fields": None, "default_payment_method": None,
                             "footer": None, "rendering_options": None},
        "livemode": False, "metadata": metadata_param(params), "name": params.get("name"),
        "next_invoice_sequence": 1, "phone": params.get("phone"),
        "preferred_locales": params.get("preferred_locales") or [], "shipping": None,
        "tax_exempt": params.get("tax_exempt") or "none", "test_clock": None}


def tax_rate_object(params: Obj, rate_id: str, name: str, inclusive: bool,
                    percentage: Decimal, now: int) -> Obj:
    return {
        "id": rate_id, "object": "tax_rate",
        "active": bool_param(params, "active", True), "country": params.get("country"),
        "created": now, "description": params.get("description"),
        "display_name": name, "effective_percentage": float(percentage),
        "inclusive": inclusive, "jurisdiction": params.get("jurisdiction"),
        "livemode": False, "metadata": metadata_param(params), "percentage": float(percentage),
        "state": params.get("state"), "tax_type": params.get("tax_type")}


def invoice_object(params: Obj, invoice_id: str, customer: Obj, method: str,
                   days: int | None, now: int) -> Obj:
    due = now + days * 86400 if days is not None else int_param(params, "due_date")
    return {
        "id": invoice_id, "object": "invoice", "account_country": "US",
        "account_name": "Sandbox", "account_tax_ids": None, "amount_due": 0,
        "amount_paid": 0, "amount_remaining": 0, "amount_shipping": 0,
        "application": None, "application_fee_amount": None, "attempt_count": 0,
        "attempted": False, "auto_advance": bool_param(params, "auto_advance", False),
        "automatic_tax": {"enabled": False, "status": None}, "billing_reason": "manual",
        "charge": None, "collection_method": method, "created": now,
        "currency": str(params.get("currency") or customer["currency"] or "usd").lower(),
        "custom_fields": custom_fields_param(params), "customer": customer["id"],
        "customer_address": customer["address"], "customer_email": customer["email"],
        "customer_name": customer["name"], "customer_phone": customer["phone"],
        "customer_shipping": None, "customer_tax_exempt": customer["tax_exempt"],
        "customer_tax_ids": [], "default_payment_method": None, "default_source": None,
        "default_tax_rates": [], "description": params.get("description"),
        "discount": None, "discounts": [], "due_date": due, "effective_at": None,
        "ending_balance": None, "footer": params.get("footer"), "from_invoice": None,
        "hosted_invoice_url": None, "invoice_pdf": None, "last_finalization_error": None,
        "latest_revision": None, "lines": listing([], f"/v1/invoices/{invoice_id}/lines"),
        "livemode": False, "metadata": metadata_param(params), "next_payment_attempt": None,
        "number": None, "on_behalf_of": None, "paid": False, "paid_out_of_band": False,
        "payment_intent": None,
        "payment_settings": {"default_mandate": None, "payment_method_options": None,
                             "payment_method_types": None},
        "period_end": now, "period_start": now, "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0, "quote": None, "receipt_number": None,
        "rendering_options": None, "shipping_cost": None, "shipping_details": None,
        "starting_balance": 0, "statement_descriptor": params.get("statement_descriptor"),
        "status": "draft",
        "status_transitions": {"finalized_at": None, "marked_uncollectible_at": None,
                               "paid_at": None, "voided_at": None},
        "subscription": None, "subscription_details": {"metadata": None}, "subtotal": 0,
        "subtotal_excluding_tax": 0, "tax": None, "test_clock": None, "total": 0,
        "total_discount_amounts": [], "total_excluding_tax": 0, "total_tax_amounts": [],
        "transfer_data": None, "webhooks_delivered_at": None,
    }


def item_object(params: Obj, suffix: str, now: int, customer: Obj, currency: str,
                amount: int, quantity: int, rates: list[Obj]) -> Obj:
    unit = amount // quantity if quantity else amount
    return {
        "id": "ii_" + suffix, "object": "invoiceitem", "amount": amount,
        "currency": currency, "customer": customer["id"], "date": now,
        "description": params.get("description"),
        "discountable": bool_param(params, "discountable", amount >= 0), "discounts": [],
        "invoice": None, "livemode": False, "metadata": metadata_param(params),
        "period": {"end": now, "start": now},
        "price": price("price_" + suffix, "prod_" + suffix, currency, unit, now),
        "proration": False, "quantity": quantity, "subscription": None,
        "tax_rates": rates, "test_clock": None, "unit_amount": unit,
        "unit_amount_decimal": str(unit)}


def line_object(item: Obj, percent: Mapping[str, Decimal]) -> Obj:
    """The invoice line for an item; its taxes from the rates' exact percentages."""
    taxes = [{"amount": tax_minor(item["amount"], percent[r["id"]]),
              "inclusive": r["inclusive"], "tax_rate": r["id"], "taxability_reason": None,
              "taxable_amount": item["amount"]} for r in item["tax_rates"]]
    return {
        "id": "il_tmp_" + item["id"][3:], "object": "line_item", "amount": item["amount"],
        "amount_excluding_tax": item["amount"], "currency": item["currency"],
        "description": item["description"], "discount_amounts": [],
        "discountable": item["discountable"], "discounts": [],
        "invoice_item": item["id"], "livemode": False, "metadata": item["metadata"],
        "period": item["period"], "price": item["price"], "proration": False,
        "proration_details": {"credited_items": None}, "quantity": item["quantity"],
        "subscription": None, "tax_amounts": taxes, "tax_rates": item["tax_rates"],
        "type": "invoiceitem", "unit_amount_excluding_tax": str(item["unit_amount"])}


def credit_note_object(params: Obj, note_id: str, invoice: Obj, number: str,
                       lines: list[Obj], kind: str, now: int) -> Obj:
    """A credit note (``kind`` pre_payment or post_payment) with totals from its lines."""
    subtotal = sum(line["amount"] for line in lines)
    taxes: dict[str, Obj] = {}
    for tax in (t for line in lines for t in line["tax_amounts"]):
        entry = taxes.setdefault(tax["tax_rate"], {**tax, "amount": 0, "taxable_amount": 0})
        entry["amount"] += tax["amount"]
        entry["taxable_amount"] += tax["taxable_amount"]
    total = subtotal + sum(entry["amount"] for entry in taxes.values())
    return {
        "id": note_id, "object": "credit_note", "amount": total, "amount_shipping": 0,
        "created": now, "currency": invoice["currency"], "customer": invoice["customer"],
        "customer_balance_transaction": None, "discount_amount": 0, "discount_amounts": [],
        "effective_at": int_param(params, "effective_at", now), "invoice": invoice["id"],
        "lines": listing(lines, f"/v1/credit_notes/{note_id}/lines"), "livemode": False,
        "memo": params.get("memo"), "metadata": metadata_param(params), "number": number,
        "out_of_band_amount": int_param(params, "out_of_band_amount"),
        "pdf": f"https://pay.stripe.com/credit_notes/acct_1Sandbox/test_{note_id}/pdf",
        "reason": params.get("reason"), "refund": None, "shipping_cost": None,
        "status": "issued", "subtotal": subtotal, "subtotal_excluding_tax": subtotal,
        "tax_amounts": list(taxes.values()), "total": total, "total_excluding_tax": subtotal,
        "type": kind, "voided_at": None}


def credit_line_object(line_id: str, amount: int, description: str | None,
                       invoice_line: Obj | None, percent: Mapping[str, Decimal],
                       quantity: int = 1) -> Obj:
    """One credit note line: an invoice line credited by ``amount`` (its tax from the line's
    rates), or a custom line (``invoice_line`` None, no tax)."""
    rates = invoice_line["tax_rates"] if invoice_line else []
    taxes = [{"amount": tax_minor(amount, percent[r["id"]]), "inclusive": r["inclusive"],
              "tax_rate": r["id"], "taxability_reason": None, "taxable_amount": amount}
             for r in rates]
    unit = None if invoice_line else amount // max(quantity, 1)
    return {
        "id": line_id, "object": "credit_note_line_item", "amount": amount,
        "amount_excluding_tax": amount, "description": description, "discount_amount": 0,
        "discount_amounts": [], "invoice_line_item": invoice_line["id"] if invoice_line else None,
        "livemode": False, "quantity": quantity, "tax_amounts": taxes, "tax_rates": rates,
        "type": "invoice_line_item" if invoice_line else "custom_line_item",
        "unit_amount": unit, "unit_amount_decimal": None if unit is None else str(unit),
        "unit_amount_excluding_tax": str(amount if unit is None else unit)}


def balance_object() -> Obj:
    zero = {"amount": 0, "currency": "usd"}
    return {"object": "balance", "available": [{**zero, "source_types": {"card": 0}}],
            "connect_reserved": [zero], "livemode": False,
            "pending": [{**zero, "source_types": {"card": 0}}]}


def snapshot(obj: Obj) -> Obj:
    """A cheap copy for events: handlers replace top-level values and mutate in place only
    an invoice's ``status_transitions`` and ``lines`` (while a draft), so those are copied."""
    copied = {**obj, "lines": {**obj["lines"], "data": list(obj["lines"]["data"])}}
    if "status_transitions" in obj:
        copied["status_transitions"] = dict(obj["status_transitions"])
    return copied


def public(obj: Obj) -> Obj:
    """A snapshot, safe to hand out while the sandbox keeps changing the original (a JSON
    round trip: objects are JSON anyway, and it is ten times faster than ``deepcopy``)."""
    copied: Obj = json.loads(json.dumps(obj))
    return copied
