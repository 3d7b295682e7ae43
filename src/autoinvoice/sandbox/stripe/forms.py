"""Reading requests: form bodies and query strings into nested params, the parameters each
endpoint accepts, coercion of single params, and the search query language (the subset
invoicing needs)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypeAlias
from urllib.parse import parse_qsl

from autoinvoice.sandbox.stripe.errors import StripeError, invalid

Obj: TypeAlias = dict[str, Any]

CUSTOMER_PARAMS = frozenset(
    "address balance cash_balance coupon description email expand invoice_prefix "
    "invoice_settings metadata name next_invoice_sequence payment_method phone "
    "preferred_locales promotion_code shipping source tax tax_exempt tax_id_data "
    "test_clock".split())
TAX_RATE_PARAMS = frozenset(
    "active country description display_name expand inclusive jurisdiction metadata "
    "percentage state tax_type".split())
INVOICE_PARAMS = frozenset(
    "account_tax_ids application_fee_amount auto_advance automatic_tax collection_method "
    "currency custom_fields customer days_until_due default_payment_method default_source "
    "default_tax_rates description discounts due_date effective_at expand footer "
    "from_invoice metadata on_behalf_of payment_settings pending_invoice_items_behavior "
    "rendering_options shipping_cost shipping_details statement_descriptor subscription "
    "transfer_data".split())
ITEM_PARAMS = frozenset(
    "amount currency customer description discountable discounts expand invoice metadata "
    "period price price_data quantity subscription tax_behavior tax_code tax_rates "
    "unit_amount unit_amount_decimal".split())
CREDIT_NOTE_PARAMS = frozenset(
    "amount credit_amount effective_at expand invoice lines memo metadata out_of_band_amount "
    "reason refund refund_amount shipping_cost".split())
_LIST_PARAMS = frozenset("created ending_before expand limit starting_after".split())
QUERY_PARAMS: dict[str, frozenset[str]] = {
    "customers": _LIST_PARAMS | {"email", "test_clock"},
    "tax_rates": _LIST_PARAMS | {"active", "inclusive"},
    "invoices": _LIST_PARAMS | {"collection_method", "customer", "due_date", "status",
                                "subscription"},
    "credit_notes": _LIST_PARAMS | {"customer", "invoice"},
    "search": frozenset({"expand", "limit", "page", "query"}),
    "lines": _LIST_PARAMS,
    "retrieve": frozenset({"expand"}),
}

# ---------------------------------------------------------------------------------------------
# Form decoding and parameter coercion

_KEY_PART = re.compile(r"\[([^\[\]]*)\]")


def decode_form(text: str) -> Obj:
    """``a[b][0][c]=x`` pairs into nested dicts; dicts keyed 0..n become lists."""
    return decode_pairs(parse_qsl(text, keep_blank_values=True))


def decode_pairs(pairs: list[tuple[str, str]]) -> Obj:
    root: Obj = {}
    for key, value in pairs:
        parts = _split_key(key)
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise invalid(key, f"Invalid array or hash: {key}")
            node = child
        leaf = parts[-1] if parts[-1] != "" else str(len(node))
        node[leaf] = value
    return _listify(root)


def _split_key(key: str) -> list[str]:
    bracket = key.find("[")
    if bracket < 0:
        return [key]
    return [key[:bracket], *_KEY_PART.findall(key, bracket)]


def _listify(node: Obj) -> Obj:
    for key, value in node.items():
        if isinstance(value, dict):
            value = _listify(value)
            if value and all(k.isdigit() for k in value):
                value = [value[k] for k in sorted(value, key=int)]
            node[key] = value
    return node


def int_param(params: Obj, name: str, default: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise invalid(name, f"Invalid integer: {raw}") from None


def bool_param(params: Obj, name: str, default: bool) -> bool:
    raw = params.get(name)
    if raw is None:
        return default
    if raw in ("true", "false"):
        return bool(raw == "true")
    raise invalid(name, f"Invalid boolean: {raw}")


def metadata_param(params: Obj) -> dict[str, str]:
    raw = params.get("metadata") or {}
    if not isinstance(raw, dict) or len(raw) > 50:
        raise invalid("metadata", "Invalid metadata: a hash of at most 50 keys is expected")
    for key, value in raw.items():
        if not isinstance(value, str) or len(key) > 40 or len(value) > 500:
            raise invalid(f"metadata[{key}]", "Metadata keys are at most 40 characters and "
                          "values at most 500 characters")
    return dict(raw)


def custom_fields_param(params: Obj) -> list[dict[str, str]] | None:
    fields = params.get("custom_fields")
    if not fields:
        return None
    if not isinstance(fields, list) or len(fields) > 4:
        raise invalid("custom_fields", "custom_fields takes at most 4 {name, value} entries")
    for index, field in enumerate(fields):
        for part in ("name", "value"):
            text = field.get(part) if isinstance(field, dict) else None
            if not isinstance(text, str) or not text or len(text) > 30:
                raise invalid(f"custom_fields[{index}][{part}]",
                              f"custom_fields[{index}][{part}] must be 1 to 30 characters")
    return [{"name": f["name"], "value": f["value"]} for f in fields]


def allow(params: Obj, allowed: frozenset[str]) -> None:
    for name in params:
        if name not in allowed:
            raise StripeError(400, f"Received unknown parameter: {name}", param=name)


def require(params: Obj, name: str) -> Any:
    if params.get(name) in (None, ""):
        raise StripeError(400, f"Missing required param: {name}.", code="parameter_missing",
                          param=name)
    return params[name]


# ---------------------------------------------------------------------------------------------
# Search query language (the subset invoicing needs)

_VALUE = r"""(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
_CLAUSE = re.compile(
    rf"""\s*(-?)(metadata\[{_VALUE}\]|[a-z_.]+)\s*(:|>=|<=|>|<)\s*({_VALUE}|[^\s'"]+)\s*""")
_JOINER = re.compile(r"(AND|OR)\s+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Clause:
    negate: bool
    field: str
    op: str
    value: str

    def matches(self, obj: Obj) -> bool:
        return self.negate != self._test(obj)

    def _test(self, obj: Obj) -> bool:
        actual: Any = obj
        for part in self.field.split("."):
            actual = actual.get(part) if isinstance(actual, dict) else None
        if self.op == ":":
            return actual is not None and str(actual) == self.value
        try:
            left, right = Decimal(str(actual)), Decimal(self.value)
        except InvalidOperation:
            return False
        return {">": left > right, "<": left < right, ">=": left >= right,
                "<=": left <= right}[self.op]


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    return re.sub(r"\\(.)", r"\1", text)


def parse_query(query: str) -> tuple[list[Clause], bool]:
    """The clauses of a search query and whether they are OR-ed (else AND-ed)."""
    clauses: list[Clause] = []
    joiners: set[str] = set()
    position = 0
    while position < len(query):
        match = _CLAUSE.match(query, position)
        if match is None:
            raise invalid("query", f"Invalid search query at position {position}: {query!r}")
        negate, field, op, value = match.groups()
        if field.startswith("metadata["):
            field = "metadata." + _unquote(field[9:-1])
        clauses.append(Clause(bool(negate), field, op, _unquote(value)))
        position = match.end()
        joiner = _JOINER.match(query, position)
        if joiner:
            joiners.add(joiner.group(1).upper())
            position = joiner.end()
    if not clauses or len(joiners) > 1:
        raise invalid("query", "A search query needs clauses joined by either AND or OR")
    return clauses, joiners == {"OR"}
