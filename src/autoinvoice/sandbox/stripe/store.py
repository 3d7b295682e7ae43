"""The stand-in's objects in memory: lookup, list pages, search, customers and tax rates.

Not locked itself: ``StripeSandbox`` holds its lock around every call.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from autoinvoice.sandbox.stripe.errors import invalid, missing
from autoinvoice.sandbox.stripe.forms import (
    CUSTOMER_PARAMS,
    QUERY_PARAMS,
    TAX_RATE_PARAMS,
    Clause,
    Obj,
    allow,
    bool_param,
    int_param,
    parse_query,
    require,
)
from autoinvoice.sandbox.stripe.objects import (
    Ids,
    balance_object,
    customer_object,
    listing,
    tax_rate_object,
)

KINDS = ("customer", "tax_rate", "invoice", "invoiceitem", "credit_note")


class Store:
    def __init__(self, ids: Ids, now: Callable[[], int]) -> None:
        self.ids, self.now = ids, now
        self.objects: dict[str, dict[str, Obj]] = {k: {} for k in KINDS}
        #: Each tax rate's exact percentage (the object carries a float, as Stripe's does).
        self.percent: dict[str, Decimal] = {}
        self._metadata_index: dict[tuple[str, str, str], list[str]] = {}

    def get(self, kind: str, object_id: str, param: str | None = None) -> Obj:
        obj = self.objects[kind].get(object_id)
        if obj is None:
            raise missing(kind.replace("_", " ").replace("invoiceitem", "invoice item"),
                          object_id, param)
        return obj

    def add(self, kind: str, obj: Obj) -> Obj:
        self.objects[kind][obj["id"]] = obj
        for key, value in obj.get("metadata", {}).items():
            self._metadata_index.setdefault((kind, key, value), []).append(obj["id"])
        return obj

    def remove(self, kind: str, object_id: str) -> Obj:
        obj = self.objects[kind].pop(object_id)
        for key, value in obj.get("metadata", {}).items():
            ids = self._metadata_index.get((kind, key, value), [])
            if object_id in ids:
                ids.remove(object_id)
        return obj

    def count(self, kind: str) -> int:
        return len(self.objects[kind])

    # -- reading ------------------------------------------------------------------------------

    def retrieve(self, kind: str, object_id: str, params: Obj) -> Obj:
        allow(params, QUERY_PARAMS["retrieve"])
        return self.get(kind, object_id)

    def list_objects(self, kind: str, params: Obj, resource: str,
                     keep: Callable[[Obj], bool]) -> Obj:
        allow(params, QUERY_PARAMS[resource])
        newest_first = [o for o in reversed(self.objects[kind].values()) if keep(o)]
        return self.page(newest_first, params, f"/v1/{resource}")

    def page(self, objects: list[Obj], params: Obj, url: str) -> Obj:
        limit = _limit(params)
        after = params.get("starting_after")
        if after:
            ids = [o["id"] for o in objects]
            objects = objects[ids.index(after) + 1:] if after in ids else []
        return listing(objects[:limit], url, len(objects) > limit)

    def search(self, kind: str, params: Obj, url: str) -> Obj:
        allow(params, QUERY_PARAMS["search"])
        clauses, any_of = parse_query(str(require(params, "query")))
        found = [self.objects[kind][i] for i in self.candidates(kind, clauses, any_of)]
        found = [o for o in found if (any if any_of else all)(c.matches(o) for c in clauses)]
        limit = _limit(params)
        offset = int(params.get("page") or 0)
        page = found[offset:offset + limit]
        more = len(found) > offset + limit
        return {"object": "search_result", "data": page, "has_more": more,
                "next_page": str(offset + limit) if more else None, "url": url}

    def candidates(self, kind: str, clauses: list[Clause], any_of: bool) -> list[str]:
        """Ids worth testing, newest first: narrowed by the metadata index when clauses AND."""
        indexed = [c for c in clauses if c.field.startswith("metadata.") and c.op == ":"
                   and not c.negate]
        if any_of or not indexed:
            return list(reversed(self.objects[kind]))
        sets = [set(self._metadata_index.get((kind, c.field[9:], c.value), ()))
                for c in indexed]
        return sorted(set.intersection(*sets), reverse=True)

    def balance(self, params: Obj) -> Obj:
        allow(params, QUERY_PARAMS["retrieve"])
        return balance_object()

    # -- customers and tax rates --------------------------------------------------------------

    def create_customer(self, params: Obj) -> Obj:
        allow(params, CUSTOMER_PARAMS)
        prefix = params.get("invoice_prefix") or self.ids.tag[:4].upper() + \
            f"{self.ids.number() % 10000:04d}"
        return self.add("customer", customer_object(params, "cus_" + self.ids.suffix(), prefix,
                                                    self.now()))

    def create_tax_rate(self, params: Obj) -> Obj:
        allow(params, TAX_RATE_PARAMS)
        name = str(require(params, "display_name"))
        require(params, "inclusive")
        inclusive = bool_param(params, "inclusive", False)
        try:
            percentage = Decimal(str(require(params, "percentage")))
        except InvalidOperation:
            raise invalid("percentage", "Invalid decimal: percentage") from None
        if not 0 <= percentage <= 100 or len(name) > 50:
            raise invalid("percentage", "percentage must be within 0..100, display_name "
                          "at most 50 characters")
        rate = self.add("tax_rate", tax_rate_object(params, "txr_" + self.ids.suffix(), name,
                                                    inclusive, percentage, self.now()))
        self.percent[rate["id"]] = percentage
        return rate


def _limit(params: Obj) -> int:
    return min(max(int_param(params, "limit", 10) or 10, 1), 100)


def customer_filter(params: Obj) -> Callable[[Obj], bool]:
    email = params.get("email")
    return lambda c: email is None or c["email"] == email


def tax_rate_filter(params: Obj) -> Callable[[Obj], bool]:
    active = bool_param(params, "active", True) if "active" in params else None
    inclusive = bool_param(params, "inclusive", False) if "inclusive" in params else None
    return lambda r: ((active is None or r["active"] == active)
                      and (inclusive is None or r["inclusive"] == inclusive))


def invoice_filter(params: Obj) -> Callable[[Obj], bool]:
    customer, status = params.get("customer"), params.get("status")
    return lambda i: ((customer is None or i["customer"] == customer)
                      and (status is None or i["status"] == status))
