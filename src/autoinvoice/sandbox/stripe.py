"""A local Stripe stand-in: the slice of the Stripe API that invoicing uses, in memory.

Shapes follow Stripe's API version 2023-08-16 (the fixtures in ``stripe/openapi``), so the real
connector runs against it unchanged. What it implements:

- ``/v1/customers`` create, retrieve, list (``email``), search; ``/v1/tax_rates`` create,
  retrieve, list; ``/v1/invoiceitems`` create (attached to a draft invoice, or pending);
  ``/v1/invoices`` create, retrieve, list, search, ``lines``, ``finalize``, ``send``, ``pay``
  (``paid_out_of_band=true``), ``void``; ``/v1/balance``. Unknown parameters are rejected the
  way Stripe rejects them (``Received unknown parameter``).
- Totals recomputed from the items: tax per line is ``round_half_up(amount * percentage/100)``
  in minor units; ``subtotal``, ``tax``, ``total``, ``amount_due/paid/remaining``.
- Search: ``field:'value'`` clauses joined by spaces, ``AND`` or ``OR``; ``metadata['k']``,
  quotes escaped with a backslash; ``-`` negates; ``>``/``<`` on numbers. Unlike Stripe's,
  this index is consistent at once (Stripe's takes up to a minute).
- Bearer (or Basic) auth against ``api_key``; a ``Request-Id`` on every response; Stripe's
  error body ``{"error": {type, code, message, param}}``.
- Idempotency as docs.stripe.com/api/idempotent_requests describes: a POST's result is saved
  under its ``Idempotency-Key`` once execution began; the same key with the same parameters
  replays it (``Idempotent-Replayed: true``, ``Original-Request``), with other parameters or
  another endpoint it is a 400 ``idempotency_error``; keys are forgotten after 24 h
  (``clock`` is injectable). Parameter-validation errors are not saved.
- Faults (``sandbox.faults``, see ``sandbox.faults``): injected statuses are answered before
  processing; lost responses are processed, then ``ResponseLost`` is raised to the adapter.
- Webhooks (when ``webhook_url`` and ``webhook_secret`` are set): ``invoice.finalized``,
  ``invoice.sent``, ``invoice.paid``, ``invoice.payment_succeeded``, ``invoice.voided`` events
  are queued and POSTed, signed ``Stripe-Signature: t=…,v1=…``, by ``deliver_webhooks()``
  (synchronous, for tests) or by a background thread from ``start_webhook_delivery()``.
  Every event is also kept in ``sandbox.events``.

Sandbox-only helpers: ``record_payment(invoice_id, amount_minor)`` (a partial or full payment),
``get_invoice(id)``, ``find_invoices(**metadata)``, ``count(kind)``, ``emails_sent(invoice_id)``.

Adapters: ``mock_transport(sandbox)`` (an ``httpx.MockTransport``; a lost response raises
``httpx.RemoteProtocolError``) and ``asgi_app(sandbox)`` (raw ASGI, served by uvicorn through
``sandbox.server``; a lost response closes the connection before any byte is written).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import secrets
import string
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, TypeAlias
from urllib.parse import parse_qsl

import httpx

from autoinvoice.sandbox.faults import Fault, FaultKind, Faults, ResponseLost
from autoinvoice.sandbox.server import (
    ASGIApp,
    Receive,
    Scope,
    Send,
    answer_lifespan,
    drop_connection,
    read_body,
)

API_VERSION = "2023-08-16"
KEY_TTL = 24 * 3600
Obj: TypeAlias = dict[str, Any]
Response: TypeAlias = tuple[int, dict[str, str], bytes]

_CUSTOMER_PARAMS = frozenset(
    "address balance cash_balance coupon description email expand invoice_prefix "
    "invoice_settings metadata name next_invoice_sequence payment_method phone "
    "preferred_locales promotion_code shipping source tax tax_exempt tax_id_data "
    "test_clock".split())
_TAX_RATE_PARAMS = frozenset(
    "active country description display_name expand inclusive jurisdiction metadata "
    "percentage state tax_type".split())
_INVOICE_PARAMS = frozenset(
    "account_tax_ids application_fee_amount auto_advance automatic_tax collection_method "
    "currency custom_fields customer days_until_due default_payment_method default_source "
    "default_tax_rates description discounts due_date effective_at expand footer "
    "from_invoice metadata on_behalf_of payment_settings pending_invoice_items_behavior "
    "rendering_options shipping_cost shipping_details statement_descriptor subscription "
    "transfer_data".split())
_ITEM_PARAMS = frozenset(
    "amount currency customer description discountable discounts expand invoice metadata "
    "period price price_data quantity subscription tax_behavior tax_code tax_rates "
    "unit_amount unit_amount_decimal".split())
_LIST_PARAMS = frozenset("created ending_before expand limit starting_after".split())
_QUERY_PARAMS: dict[str, frozenset[str]] = {
    "customers": _LIST_PARAMS | {"email", "test_clock"},
    "tax_rates": _LIST_PARAMS | {"active", "inclusive"},
    "invoices": _LIST_PARAMS | {"collection_method", "customer", "due_date", "status",
                                "subscription"},
    "search": frozenset({"expand", "limit", "page", "query"}),
    "lines": _LIST_PARAMS,
    "retrieve": frozenset({"expand"}),
}


class StripeError(Exception):
    """An error answered in Stripe's shape. ``saved``: execution had begun, so the result is
    kept under the idempotency key (validation errors are not)."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None, saved: bool = False) -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.code, self.param, self.saved = code, param, saved

    def body(self, request_id: str) -> Obj:
        error: Obj = {"message": self.message, "type": self.type,
                      "request_log_url": f"https://dashboard.stripe.com/test/logs/{request_id}"}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        return {"error": error}


def _missing(kind: str, object_id: str, param: str | None = None) -> StripeError:
    status = 400 if param else 404
    return StripeError(status, f"No such {kind}: '{object_id}'", code="resource_missing",
                       param=param or "id")


def _invalid(param: str, message: str) -> StripeError:
    return StripeError(400, message, code="parameter_invalid_string", param=param)


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
                raise _invalid(key, f"Invalid array or hash: {key}")
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


def _int(params: Obj, name: str, default: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise _invalid(name, f"Invalid integer: {raw}") from None


def _bool(params: Obj, name: str, default: bool) -> bool:
    raw = params.get(name)
    if raw is None:
        return default
    if raw in ("true", "false"):
        return bool(raw == "true")
    raise _invalid(name, f"Invalid boolean: {raw}")


def _metadata(params: Obj) -> dict[str, str]:
    raw = params.get("metadata") or {}
    if not isinstance(raw, dict) or len(raw) > 50:
        raise _invalid("metadata", "Invalid metadata: a hash of at most 50 keys is expected")
    for key, value in raw.items():
        if not isinstance(value, str) or len(key) > 40 or len(value) > 500:
            raise _invalid(f"metadata[{key}]", "Metadata keys are at most 40 characters and "
                           "values at most 500 characters")
    return dict(raw)


def _allow(params: Obj, allowed: frozenset[str]) -> None:
    for name in params:
        if name not in allowed:
            raise StripeError(400, f"Received unknown parameter: {name}", param=name)


def _require(params: Obj, name: str) -> Any:
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
            raise _invalid("query", f"Invalid search query at position {position}: {query!r}")
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
        raise _invalid("query", "A search query needs clauses joined by either AND or OR")
    return clauses, joiners == {"OR"}


# ---------------------------------------------------------------------------------------------
# Object shapes


def _tax_minor(amount: int, percentage: Decimal) -> int:
    return int((Decimal(amount) * percentage / 100).quantize(Decimal(1), ROUND_HALF_UP))


def _address(raw: Any) -> Obj | None:
    if not isinstance(raw, dict):
        return None
    return {k: raw.get(k) for k in ("city", "country", "line1", "line2", "postal_code", "state")}


def _price(price_id: str, product_id: str, currency: str, unit_amount: int, now: int) -> Obj:
    return {"id": price_id, "object": "price", "active": False, "billing_scheme": "per_unit",
            "created": now, "currency": currency, "custom_unit_amount": None,
            "livemode": False, "lookup_key": None, "metadata": {}, "nickname": None,
            "product": product_id, "recurring": None, "tax_behavior": "unspecified",
            "tiers_mode": None, "transform_quantity": None, "type": "one_time",
            "unit_amount": unit_amount, "unit_amount_decimal": str(unit_amount)}


def _list(data: list[Obj], url: str, has_more: bool = False) -> Obj:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


# ---------------------------------------------------------------------------------------------
# The sandbox


Fingerprint: TypeAlias = tuple[str, str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True, slots=True)
class _Saved:
    at: float
    fingerprint: Fingerprint
    status: int
    body: bytes
    request_id: str


class StripeSandbox:
    def __init__(self, api_key: str = "sk_test_sandbox", webhook_url: str | None = None,
                 webhook_secret: str | None = None, *, clock: Callable[[], float] = time.time,
                 hosted_base: str = "https://invoice.stripe.com/i/acct_1Sandbox") -> None:
        self.api_key, self.webhook_url, self.webhook_secret = api_key, webhook_url, webhook_secret
        self.faults = Faults()
        self.events: list[Obj] = []
        self._clock, self._hosted_base = clock, hosted_base
        self._lock = threading.RLock()
        self._tag = "".join(secrets.choice(string.ascii_letters) for _ in range(6))
        self._ids = itertools.count(1)
        self._store: dict[str, dict[str, Obj]] = {
            k: {} for k in ("customer", "tax_rate", "invoice", "invoiceitem")}
        self._percent: dict[str, Decimal] = {}
        self._metadata_index: dict[tuple[str, str, str], list[str]] = {}
        self._saved: OrderedDict[str, _Saved] = OrderedDict()
        self._items_of: dict[str, list[str]] = {}  # invoice id -> its item ids, in order
        self._sent: dict[str, int] = {}
        self._event_context: dict[str, str | None] = {"id": None, "idempotency_key": None}
        self._outbox: deque[Obj] = deque()
        self._delivery: tuple[threading.Thread, threading.Event] | None = None
        self._basic = "Basic " + base64.b64encode(f"{api_key}:".encode()).decode()

    # -- the HTTP entry point ----------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str],
               body: bytes) -> Response:
        """One request in, one ``(status, headers, body)`` out; raises ``ResponseLost`` after
        processing when a lost response was injected."""
        method = method.upper()
        request_id = "req_" + self._new_suffix()
        fault = self.faults.take(method, path)
        if fault is not None and fault.kind is FaultKind.STATUS:
            return self._fault_response(fault, request_id)
        lowered = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            status, extra, payload = self._dispatch(method, path, query, lowered, body,
                                                    request_id)
        response_headers = {"Content-Type": "application/json", "Request-Id": request_id,
                            "Stripe-Version": lowered.get("stripe-version", API_VERSION), **extra}
        if fault is not None:
            raise ResponseLost(f"{method} {path} processed as {request_id}; response lost")
        return status, response_headers, payload

    def _fault_response(self, fault: Fault, request_id: str) -> Response:
        code = {429: "rate_limit", 409: "lock_timeout"}.get(fault.status)
        kind = "api_error" if fault.status >= 500 else "invalid_request_error"
        error = StripeError(fault.status, f"Injected fault: HTTP {fault.status}", type=kind,
                            code=code)
        headers = {"Content-Type": "application/json", "Request-Id": request_id}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        return fault.status, headers, json.dumps(error.body(request_id)).encode()

    def _dispatch(self, method: str, path: str, query: str, headers: Mapping[str, str],
                  body: bytes, request_id: str) -> tuple[int, dict[str, str], bytes]:
        key = headers.get("idempotency-key") if method == "POST" else None
        pairs = parse_qsl(body.decode("utf-8", "replace") if method == "POST" else query,
                          keep_blank_values=True)
        fingerprint: Fingerprint = (method, path, tuple(sorted(pairs)) if key else ())
        try:
            self._authenticate(headers.get("authorization"))
            if key is not None:
                replay = self._replay(key, fingerprint)
                if replay is not None:
                    return replay
            result = self._route(method, path, decode_pairs(pairs), request_id, key)
            status, payload, saved = 200, json.dumps(result).encode(), True
        except StripeError as err:
            status, payload, saved = err.status, json.dumps(err.body(request_id)).encode(), \
                err.saved
        if key is not None and saved:
            self._saved[key] = _Saved(self._clock(), fingerprint, status, payload, request_id)
            return status, {"Idempotency-Key": key}, payload
        return status, {}, payload

    def _authenticate(self, authorization: str | None) -> None:
        if authorization in (f"Bearer {self.api_key}", self._basic):
            return
        if not authorization:
            raise StripeError(401, "You did not provide an API key. You need to provide your "
                              "API key in the Authorization header, using Bearer auth (e.g. "
                              "'Authorization: Bearer YOUR_SECRET_KEY').")
        given = authorization.partition(" ")[2]
        shown = given[:8] + "*" * max(0, len(given) - 12) + given[-4:]
        raise StripeError(401, f"Invalid API Key provided: {shown}")

    # -- idempotency --------------------------------------------------------------------------

    def _replay(self, key: str,
                fingerprint: Fingerprint) -> tuple[int, dict[str, str], bytes] | None:
        if len(key) > 255:
            raise StripeError(400, "Idempotency key is too long (at most 255 characters)")
        self._expire_keys()
        saved = self._saved.get(key)
        if saved is None:
            return None
        if saved.fingerprint != fingerprint:
            raise StripeError(400, "Keys for idempotent requests can only be used with the same "
                              f"parameters they were first used with. Try using a key other "
                              f"than '{key}' if you meant to execute a different request.",
                              type="idempotency_error")
        return saved.status, {"Idempotency-Key": key, "Idempotent-Replayed": "true",
                              "Original-Request": saved.request_id}, saved.body

    def _expire_keys(self) -> None:
        horizon = self._clock() - KEY_TTL
        while self._saved:
            oldest = next(iter(self._saved.values()))
            if oldest.at > horizon:
                return
            self._saved.popitem(last=False)

    # -- routing ------------------------------------------------------------------------------

    def _route(self, method: str, path: str, params: Obj, request_id: str,
               key: str | None) -> Obj:
        parts = path.strip("/").split("/")
        if parts[0] != "v1" or len(parts) < 2:
            raise self._unrecognized(method, path)
        self._event_context = {"id": request_id, "idempotency_key": key}
        handler = self._handler(method, parts[1:])
        if handler is None:
            raise self._unrecognized(method, path)
        return handler(params)

    def _handler(self, method: str, parts: list[str]) -> Callable[[Obj], Obj] | None:
        match (method, *parts):
            case ("POST", "customers"):
                return self._create_customer
            case ("GET", "customers"):
                return lambda p: self._list("customer", p, "customers", _customer_filter(p))
            case ("GET", "customers", "search"):
                return lambda p: self._search("customer", p, "/v1/customers/search")
            case ("GET", "customers", cid):
                return lambda p: self._retrieve("customer", cid, p)
            case ("POST", "tax_rates"):
                return self._create_tax_rate
            case ("GET", "tax_rates"):
                return lambda p: self._list("tax_rate", p, "tax_rates", _tax_rate_filter(p))
            case ("GET", "tax_rates", tid):
                return lambda p: self._retrieve("tax_rate", tid, p)
            case ("POST", "invoiceitems"):
                return self._create_item
            case ("GET", "invoiceitems", iid):
                return lambda p: self._retrieve("invoiceitem", iid, p)
            case ("POST", "invoices"):
                return self._create_invoice
            case ("GET", "invoices"):
                return lambda p: self._list("invoice", p, "invoices", _invoice_filter(p))
            case ("GET", "invoices", "search"):
                return lambda p: self._search("invoice", p, "/v1/invoices/search")
            case ("GET", "invoices", iid):
                return lambda p: self._retrieve("invoice", iid, p)
            case ("GET", "invoices", iid, "lines"):
                return lambda p: self._lines(iid, p)
            case ("POST", "invoices", iid, action) if action in _INVOICE_ACTIONS:
                return lambda p: _INVOICE_ACTIONS[action](self, iid, p)
            case ("GET", "balance"):
                return self._balance
        return None

    @staticmethod
    def _unrecognized(method: str, path: str) -> StripeError:
        return StripeError(404, f"Unrecognized request URL ({method}: {path}). Please see "
                           "https://stripe.com/docs or we can help at https://support.stripe.com/.")

    # -- helpers --------------------------------------------------------------------------------

    def _new_suffix(self) -> str:
        return f"{self._tag}{next(self._ids):010d}"

    def _now(self) -> int:
        return int(self._clock())

    def _get(self, kind: str, object_id: str, param: str | None = None) -> Obj:
        obj = self._store[kind].get(object_id)
        if obj is None:
            raise _missing(kind.replace("_", " ").replace("invoiceitem", "invoice item"),
                           object_id, param)
        return obj

    def _add(self, kind: str, obj: Obj) -> Obj:
        self._store[kind][obj["id"]] = obj
        for key, value in obj.get("metadata", {}).items():
            self._metadata_index.setdefault((kind, key, value), []).append(obj["id"])
        return obj

    def _retrieve(self, kind: str, object_id: str, params: Obj) -> Obj:
        _allow(params, _QUERY_PARAMS["retrieve"])
        return self._get(kind, object_id)

    def _list(self, kind: str, params: Obj, resource: str,
              keep: Callable[[Obj], bool]) -> Obj:
        _allow(params, _QUERY_PARAMS[resource])
        newest_first = [o for o in reversed(self._store[kind].values()) if keep(o)]
        return self._page(newest_first, params, f"/v1/{resource}")

    def _page(self, objects: list[Obj], params: Obj, url: str) -> Obj:
        limit = min(max(_int(params, "limit", 10) or 10, 1), 100)
        after = params.get("starting_after")
        if after:
            ids = [o["id"] for o in objects]
            objects = objects[ids.index(after) + 1:] if after in ids else []
        return _list(objects[:limit], url, len(objects) > limit)

    def _search(self, kind: str, params: Obj, url: str) -> Obj:
        _allow(params, _QUERY_PARAMS["search"])
        clauses, any_of = parse_query(str(_require(params, "query")))
        found = [self._store[kind][i] for i in self._candidates(kind, clauses, any_of)]
        found = [o for o in found if (any if any_of else all)(c.matches(o) for c in clauses)]
        limit = min(max(_int(params, "limit", 10) or 10, 1), 100)
        offset = int(params.get("page") or 0)
        page = found[offset:offset + limit]
        more = len(found) > offset + limit
        return {"object": "search_result", "data": page, "has_more": more,
                "next_page": str(offset + limit) if more else None, "url": url}

    def _candidates(self, kind: str, clauses: list[Clause], any_of: bool) -> list[str]:
        """Ids worth testing, newest first: narrowed by the metadata index when clauses AND."""
        indexed = [c for c in clauses if c.field.startswith("metadata.") and c.op == ":"
                   and not c.negate]
        if any_of or not indexed:
            return list(reversed(self._store[kind]))
        sets = [set(self._metadata_index.get((kind, c.field[9:], c.value), ()))
                for c in indexed]
        return sorted(set.intersection(*sets), reverse=True)

    def _balance(self, params: Obj) -> Obj:
        _allow(params, _QUERY_PARAMS["retrieve"])
        zero = {"amount": 0, "currency": "usd"}
        return {"object": "balance", "available": [{**zero, "source_types": {"card": 0}}],
                "connect_reserved": [zero], "livemode": False,
                "pending": [{**zero, "source_types": {"card": 0}}]}

    # -- customers and tax rates --------------------------------------------------------------

    def _create_customer(self, params: Obj) -> Obj:
        _allow(params, _CUSTOMER_PARAMS)
        prefix = params.get("invoice_prefix") or self._tag[:4].upper() + \
            f"{next(self._ids) % 10000:04d}"
        return self._add("customer", {
            "id": "cus_" + self._new_suffix(), "object": "customer",
            "address": _address(params.get("address")), "balance": 0, "created": self._now(),
            "currency": None, "default_source": None, "delinquent": False,
            "description": params.get("description"), "discount": None,
            "email": params.get("email"), "invoice_prefix": prefix,
            "invoice_settings": {"custom_fields": None, "default_payment_method": None,
                                 "footer": None, "rendering_options": None},
            "livemode": False, "metadata": _metadata(params), "name": params.get("name"),
            "next_invoice_sequence": 1, "phone": params.get("phone"),
            "preferred_locales": params.get("preferred_locales") or [], "shipping": None,
            "tax_exempt": params.get("tax_exempt") or "none", "test_clock": None})

    def _create_tax_rate(self, params: Obj) -> Obj:
        _allow(params, _TAX_RATE_PARAMS)
        name = str(_require(params, "display_name"))
        _require(params, "inclusive")
        inclusive = _bool(params, "inclusive", False)
        try:
            percentage = Decimal(str(_require(params, "percentage")))
        except InvalidOperation:
            raise _invalid("percentage", "Invalid decimal: percentage") from None
        if not 0 <= percentage <= 100 or len(name) > 50:
            raise _invalid("percentage", "percentage must be within 0..100, display_name "
                           "at most 50 characters")
        rate = self._add("tax_rate", {
            "id": "txr_" + self._new_suffix(), "object": "tax_rate",
            "active": _bool(params, "active", True), "country": params.get("country"),
            "created": self._now(), "description": params.get("description"),
            "display_name": name, "effective_percentage": float(percentage),
            "inclusive": inclusive, "jurisdiction": params.get("jurisdiction"),
            "livemode": False, "metadata": _metadata(params), "percentage": float(percentage),
            "state": params.get("state"), "tax_type": params.get("tax_type")})
        self._percent[rate["id"]] = percentage
        return rate

    # -- invoices -----------------------------------------------------------------------------

    def _create_invoice(self, params: Obj) -> Obj:
        _allow(params, _INVOICE_PARAMS)
        customer = self._get("customer", str(_require(params, "customer")), "customer")
        method = params.get("collection_method", "charge_automatically")
        days = _int(params, "days_until_due")
        if method not in ("charge_automatically", "send_invoice"):
            raise _invalid("collection_method", f"Invalid collection_method: {method}")
        if days is not None and method != "send_invoice":
            raise _invalid("days_until_due", "days_until_due is only valid for invoices with "
                           "collection_method=send_invoice")
        now = self._now()
        invoice = self._add("invoice", self._invoice_shape(params, customer, method, days, now))
        if params.get("pending_invoice_items_behavior") in ("include", "include_and_require"):
            for item in self._store["invoiceitem"].values():
                if item["customer"] == customer["id"] and item["invoice"] is None:
                    self._attach(invoice, item)
        return invoice

    def _invoice_shape(self, params: Obj, customer: Obj, method: str, days: int | None,
                       now: int) -> Obj:
        invoice_id = "in_" + self._new_suffix()
        due = now + days * 86400 if days is not None else _int(params, "due_date")
        return {
            "id": invoice_id, "object": "invoice", "account_country": "US",
            "account_name": "Sandbox", "account_tax_ids": None, "amount_due": 0,
            "amount_paid": 0, "amount_remaining": 0, "amount_shipping": 0,
            "application": None, "application_fee_amount": None, "attempt_count": 0,
            "attempted": False, "auto_advance": _bool(params, "auto_advance", False),
            "automatic_tax": {"enabled": False, "status": None}, "billing_reason": "manual",
            "charge": None, "collection_method": method, "created": now,
            "currency": str(params.get("currency") or customer["currency"] or "usd").lower(),
            "custom_fields": _custom_fields(params), "customer": customer["id"],
            "customer_address": customer["address"], "customer_email": customer["email"],
            "customer_name": customer["name"], "customer_phone": customer["phone"],
            "customer_shipping": None, "customer_tax_exempt": customer["tax_exempt"],
            "customer_tax_ids": [], "default_payment_method": None, "default_source": None,
            "default_tax_rates": [], "description": params.get("description"),
            "discount": None, "discounts": [], "due_date": due, "effective_at": None,
            "ending_balance": None, "footer": params.get("footer"), "from_invoice": None,
            "hosted_invoice_url": None, "invoice_pdf": None, "last_finalization_error": None,
            "latest_revision": None, "lines": _list([], f"/v1/invoices/{invoice_id}/lines"),
            "livemode": False, "metadata": _metadata(params), "next_payment_attempt": None,
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

    def _create_item(self, params: Obj) -> Obj:
        _allow(params, _ITEM_PARAMS)
        customer = self._get("customer", str(_require(params, "customer")), "customer")
        invoice = self._item_invoice(params, customer)
        if "price" in params or "price_data" in params:
            raise _invalid("price", "The sandbox supports amount or unit_amount items only")
        quantity = _int(params, "quantity", 1) or 1
        unit = _int(params, "unit_amount")
        amount = _int(params, "amount", None if unit is None else unit * quantity)
        if amount is None:
            raise StripeError(400, "Missing required param: amount.", param="amount",
                              code="parameter_missing")
        currency = str(params.get("currency") or (invoice or {}).get("currency") or "usd")
        if invoice is not None and currency.lower() != invoice["currency"]:
            raise _invalid("currency", "The currency of an invoice item must match its invoice")
        rates = [self._get("tax_rate", str(t), "tax_rates") for t in
                 params.get("tax_rates") or []]
        item = self._add("invoiceitem", self._item_shape(
            params, customer, currency.lower(), amount, quantity, rates))
        if invoice is not None:
            self._attach(invoice, item)
        return item

    def _item_invoice(self, params: Obj, customer: Obj) -> Obj | None:
        if not params.get("invoice"):
            return None
        invoice = self._get("invoice", str(params["invoice"]), "invoice")
        if invoice["customer"] != customer["id"]:
            raise _invalid("invoice", "The invoice belongs to another customer")
        if invoice["status"] != "draft":
            raise _invalid("invoice", "Invoice items can only be added to draft invoices")
        return invoice

    def _item_shape(self, params: Obj, customer: Obj, currency: str, amount: int,
                    quantity: int, rates: list[Obj]) -> Obj:
        now, suffix = self._now(), self._new_suffix()
        unit = amount // quantity if quantity else amount
        return {
            "id": "ii_" + suffix, "object": "invoiceitem", "amount": amount,
            "currency": currency, "customer": customer["id"], "date": now,
            "description": params.get("description"),
            "discountable": _bool(params, "discountable", amount >= 0), "discounts": [],
            "invoice": None, "livemode": False, "metadata": _metadata(params),
            "period": {"end": now, "start": now},
            "price": _price("price_" + suffix, "prod_" + suffix, currency, unit, now),
            "proration": False, "quantity": quantity, "subscription": None,
            "tax_rates": rates, "test_clock": None, "unit_amount": unit,
            "unit_amount_decimal": str(unit)}

    def _attach(self, invoice: Obj, item: Obj) -> None:
        item["invoice"] = invoice["id"]
        self._items_of.setdefault(invoice["id"], []).append(item["id"])
        self._recompute(invoice)

    def _line(self, item: Obj) -> Obj:
        taxes = [{"amount": _tax_minor(item["amount"], self._percent[r["id"]]),
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

    def _recompute(self, invoice: Obj) -> None:
        items = self._store["invoiceitem"]
        lines = [self._line(items[i]) for i in self._items_of.get(invoice["id"], ())]
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

    def _lines(self, invoice_id: str, params: Obj) -> Obj:
        _allow(params, _QUERY_PARAMS["lines"])
        invoice = self._get("invoice", invoice_id)
        return self._page(list(invoice["lines"]["data"]), params,
                          f"/v1/invoices/{invoice_id}/lines")

    # -- invoice actions ----------------------------------------------------------------------

    def _finalize(self, invoice_id: str, params: Obj) -> Obj:
        _allow(params, frozenset({"auto_advance", "expand"}))
        invoice = self._get("invoice", invoice_id)
        if invoice["status"] != "draft":
            raise StripeError(400, "This invoice is already finalized, you can't re-finalize a "
                              "non-draft invoice.", code="invoice_not_editable", saved=True)
        customer = self._store["customer"][invoice["customer"]]
        sequence = customer["next_invoice_sequence"]
        customer["next_invoice_sequence"] = sequence + 1
        now, token = self._now(), secrets.token_urlsafe(18)
        invoice.update(status="open", number=f"{customer['invoice_prefix']}-{sequence:04d}",
                       hosted_invoice_url=f"{self._hosted_base}/test_{token}",
                       invoice_pdf=f"{self._hosted_base}/test_{token}/pdf", effective_at=now,
                       auto_advance=_bool(params, "auto_advance", invoice["auto_advance"]))
        invoice["status_transitions"]["finalized_at"] = now
        self._emit("invoice.finalized", invoice)
        if invoice["amount_due"] == 0:
            self._mark_paid(invoice)
        return invoice

    def _send(self, invoice_id: str, params: Obj) -> Obj:
        _allow(params, frozenset({"expand"}))
        invoice = self._get("invoice", invoice_id)
        if invoice["collection_method"] != "send_invoice":
            raise StripeError(400, "You can only manually send an invoice if its collection "
                              "method is 'send_invoice'.", saved=True)
        if invoice["status"] not in ("open", "paid"):
            raise StripeError(400, f"You can't send an invoice with status "
                              f"'{invoice['status']}'; finalize it first.", saved=True)
        self._sent[invoice_id] = self._sent.get(invoice_id, 0) + 1
        self._emit("invoice.sent", invoice)
        return invoice

    def _pay(self, invoice_id: str, params: Obj) -> Obj:
        _allow(params, frozenset({"expand", "forgive", "mandate", "off_session",
                                  "paid_out_of_band", "payment_method", "source"}))
        invoice = self._get("invoice", invoice_id)
        if invoice["status"] != "open":
            raise StripeError(400, f"Invoice is {invoice['status']}; only open invoices can be "
                              "paid.", code="invoice_not_open", saved=True)
        if not _bool(params, "paid_out_of_band", False):
            raise StripeError(402, "This customer has no attached payment source or default "
                              "payment method.", type="card_error",
                              code="invoice_no_customer_line_items", saved=True)
        invoice["paid_out_of_band"] = True
        self._mark_paid(invoice)
        return invoice

    def _void(self, invoice_id: str, params: Obj) -> Obj:
        _allow(params, frozenset({"expand"}))
        invoice = self._get("invoice", invoice_id)
        if invoice["status"] != "open":
            raise StripeError(400, "You can only void open invoices.", saved=True)
        invoice["status"] = "void"
        invoice["status_transitions"]["voided_at"] = self._now()
        self._emit("invoice.voided", invoice)
        return invoice

    def _mark_paid(self, invoice: Obj) -> None:
        invoice.update(status="paid", paid=True, amount_paid=invoice["amount_due"],
                       amount_remaining=0)
        invoice["status_transitions"]["paid_at"] = self._now()
        self._emit("invoice.paid", invoice)
        self._emit("invoice.payment_succeeded", invoice)

    # -- sandbox-only API ---------------------------------------------------------------------

    def record_payment(self, invoice_id: str, amount_minor: int) -> Obj:
        """A payment of ``amount_minor`` against an open invoice (partial or full)."""
        with self._lock:
            self._event_context = {"id": None, "idempotency_key": None}
            invoice = self._get("invoice", invoice_id)
            if invoice["status"] != "open" or amount_minor <= 0:
                raise StripeError(400, f"cannot record {amount_minor} on a "
                                  f"{invoice['status']} invoice")
            paid = invoice["amount_paid"] + amount_minor
            invoice.update(amount_paid=paid, amount_remaining=max(0, invoice["amount_due"] - paid))
            if paid >= invoice["amount_due"]:
                invoice["status"], invoice["paid"] = "paid", True
                invoice["status_transitions"]["paid_at"] = self._now()
                self._emit("invoice.paid", invoice)
                self._emit("invoice.payment_succeeded", invoice)
            return _public(invoice)

    def get_invoice(self, invoice_id: str) -> Obj:
        """A copy of the invoice as the API would return it."""
        with self._lock:
            return _public(self._get("invoice", invoice_id))

    def find_invoices(self, **metadata: str) -> list[Obj]:
        """Copies of the invoices whose metadata has all these values, newest first."""
        with self._lock:
            ids = self._candidates("invoice", [Clause(False, f"metadata.{k}", ":", v)
                                               for k, v in metadata.items()], any_of=False)
            return [_public(self._store["invoice"][i]) for i in ids]

    def count(self, kind: str) -> int:
        """How many ``customer``, ``tax_rate``, ``invoice`` or ``invoiceitem`` objects exist."""
        with self._lock:
            return len(self._store[kind])

    def emails_sent(self, invoice_id: str) -> int:
        with self._lock:
            return self._sent.get(invoice_id, 0)

    # -- webhooks -----------------------------------------------------------------------------

    def _emit(self, event_type: str, invoice: Obj) -> None:
        event = {"id": "evt_" + self._new_suffix(), "object": "event",
                 "api_version": API_VERSION, "created": self._now(),
                 "data": {"object": _snapshot(invoice)}, "livemode": False,
                 "pending_webhooks": 1 if self.webhook_url else 0,
                 "request": dict(self._event_context), "type": event_type}
        self.events.append(event)
        if self.webhook_url and self.webhook_secret:
            self._outbox.append(event)

    def deliver_webhooks(self, client: httpx.Client | None = None) -> int:
        """POST every queued event to ``webhook_url``; returns how many were accepted (2xx).
        Failed ones stay queued for the next call, as Stripe retries them."""
        if not (self.webhook_url and self.webhook_secret):
            return 0
        with self._lock:
            pending, self._outbox = list(self._outbox), deque()
        owned = client is None
        http = client or httpx.Client(timeout=5.0)
        try:
            failed = [event for event in pending if not self._post_event(http, event)]
        finally:
            if owned:
                http.close()
        with self._lock:
            self._outbox.extendleft(reversed(failed))
        return len(pending) - len(failed)

    def _post_event(self, http: httpx.Client, event: Obj) -> bool:
        url, secret = self.webhook_url or "", self.webhook_secret or ""
        body = json.dumps(event).encode()
        signature = stripe_signature(body, secret, self._now())
        try:
            response = http.post(url, content=body, headers={
                "Content-Type": "application/json", "Stripe-Signature": signature})
        except httpx.HTTPError:
            return False
        return response.is_success

    def start_webhook_delivery(self, interval: float = 0.2,
                               client: httpx.Client | None = None) -> None:
        """Deliver queued events from a daemon thread every ``interval`` seconds (with
        ``client`` when given, which the caller then owns)."""
        if self._delivery is not None:
            return
        stop = threading.Event()

        def loop() -> None:
            http = client or httpx.Client(timeout=5.0)
            try:
                while not stop.wait(interval):
                    self.deliver_webhooks(http)
            finally:
                if client is None:
                    http.close()

        thread = threading.Thread(target=loop, name="stripe-sandbox-webhooks", daemon=True)
        self._delivery = (thread, stop)
        thread.start()

    def stop_webhook_delivery(self) -> None:
        if self._delivery is not None:
            thread, stop = self._delivery
            stop.set()
            thread.join(timeout=5)
            self._delivery = None


_INVOICE_ACTIONS: dict[str, Callable[[StripeSandbox, str, Obj], Obj]] = {
    "finalize": StripeSandbox._finalize, "send": StripeSandbox._send,
    "pay": StripeSandbox._pay, "void": StripeSandbox._void,
}


def _custom_fields(params: Obj) -> list[dict[str, str]] | None:
    fields = params.get("custom_fields")
    if not fields:
        return None
    if not isinstance(fields, list) or len(fields) > 4:
        raise _invalid("custom_fields", "custom_fields takes at most 4 {name, value} entries")
    for index, field in enumerate(fields):
        for part in ("name", "value"):
            text = field.get(part) if isinstance(field, dict) else None
            if not isinstance(text, str) or not text or len(text) > 30:
                raise _invalid(f"custom_fields[{index}][{part}]",
                               f"custom_fields[{index}][{part}] must be 1 to 30 characters")
    return [{"name": f["name"], "value": f["value"]} for f in fields]


def _customer_filter(params: Obj) -> Callable[[Obj], bool]:
    email = params.get("email")
    return lambda c: email is None or c["email"] == email


def _tax_rate_filter(params: Obj) -> Callable[[Obj], bool]:
    active = _bool(params, "active", True) if "active" in params else None
    inclusive = _bool(params, "inclusive", False) if "inclusive" in params else None
    return lambda r: ((active is None or r["active"] == active)
                      and (inclusive is None or r["inclusive"] == inclusive))


def _invoice_filter(params: Obj) -> Callable[[Obj], bool]:
    customer, status = params.get("customer"), params.get("status")
    return lambda i: ((customer is None or i["customer"] == customer)
                      and (status is None or i["status"] == status))


def _snapshot(invoice: Obj) -> Obj:
    """A cheap copy for events: handlers replace top-level values and mutate in place only
    ``status_transitions`` and ``lines`` (while a draft), so those are the ones copied."""
    lines = invoice["lines"]
    return {**invoice, "status_transitions": dict(invoice["status_transitions"]),
            "lines": {**lines, "data": list(lines["data"])}}


def _public(obj: Obj) -> Obj:
    """A snapshot, safe to hand out while the sandbox keeps changing the original (a JSON
    round trip: objects are JSON anyway, and it is ten times faster than ``deepcopy``)."""
    snapshot: Obj = json.loads(json.dumps(obj))
    return snapshot


def stripe_signature(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header value: ``t=…,v1=HMAC-SHA256(secret, f"{t}.{body}")``."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


# ---------------------------------------------------------------------------------------------
# Adapters

def mock_transport(sandbox: StripeSandbox) -> httpx.MockTransport:
    """An httpx transport served by ``sandbox`` in-process (tests, preview)."""

    def handler(request: httpx.Request) -> httpx.Response:
        try:
            status, headers, body = sandbox.handle(
                request.method, request.url.path, request.url.query.decode(), request.headers,
                request.read())
        except ResponseLost as lost:
            raise httpx.RemoteProtocolError(str(lost), request=request) from lost
        return httpx.Response(status, headers=headers, content=body)

    return httpx.MockTransport(handler)


def asgi_app(sandbox: StripeSandbox) -> ASGIApp:
    """A raw ASGI application serving ``sandbox`` (``sandbox.server.serve_in_thread`` or
    ``serve_forever``); a lost response closes the connection before any byte is sent."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            status, out, payload = sandbox.handle(scope["method"], scope["path"],
                                                  scope["query_string"].decode("latin-1"),
                                                  headers, body)
        except ResponseLost:
            await drop_connection(receive, send)
            return
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in out.items()]
        raw.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": payload})

    return app
