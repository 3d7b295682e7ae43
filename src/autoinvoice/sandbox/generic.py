"""The generic "sandbox" platform: autoinvoice's own small invoicing API, kept in memory.

The demo runs against it, and so do tenants whose platform is ``"sandbox"``. It behaves like a
careful real platform: it computes taxes and totals itself, replays idempotent requests, and can
be made to fail (``faults``) the way real networks and platforms fail.

API (JSON over HTTP, base path ``/api/v1``; amounts, quantities and rates are decimal *strings*)

  GET  /account                       → {id, name}; a cheap authenticated call (check_auth)
  POST /customers                     {external_id, name, email?, address?}            → 201
  GET  /customers?external_id=        → {"object": "list", "data": [customer, …]}
  GET  /customers/{id}
  POST /invoices                      → 201
       {customer_id, reference, revision, number?, currency, issue_date, due_date, po_number?,
        lines: [{description, quantity, unit_price, amount, tax_rate, tax?}]}
       Each line's tax is recomputed here as round-half-up(amount × tax_rate) to the currency's
       minor unit (a client's ``tax`` is ignored); subtotal, tax and total are summed from the
       lines. ``number`` defaults to ``SBX-00001``…. References are *not* unique, as on most
       platforms: a client that retries without a key, or without searching, creates twice.
  GET  /invoices?reference=&revision=&status=   → list, oldest first
  GET  /invoices/{id}                 → {id, number, status, currency, subtotal, tax, total,
                                         amount_paid, balance, paid_at, lines, payments, …}
  POST /invoices/{id}/issue           draft → issued; issuing again returns the invoice as is
  POST /invoices/{id}/payments        {amount, paid_at?} → 201 with the invoice; issued or
                                      partially_paid only, amount ≤ balance
  POST /invoices/{id}/void            draft or issued without payments → void

  Statuses: draft | issued | partially_paid | paid | void. ``paid_at`` is ISO 8601 with offset.

Auth: with ``api_key`` set, every request needs ``Authorization: Bearer <api_key>`` (else 401).

Idempotency (as Stripe does it): every POST may carry ``Idempotency-Key`` (≤ 255 chars). The
first response is stored under the key unless the request failed validation (400) or
never ran (401, injected faults); the same key with the same method, path and JSON body gets that
response again with ``Idempotent-Replayed: true``; with anything else, 409
``idempotency_key_reused``. Requests are handled one at a time under one lock.

Errors: ``{"error": {"code", "message", "field"}}`` (``field`` may be null). Every response has
an ``X-Request-Id``. Codes: unauthorized (401), not_found (404), method_not_allowed (405),
invalid_json / invalid_request / invalid_amount / invalid_currency / no_such_customer /
unknown_field / missing_field (400), invalid_state / idempotency_key_reused (409),
rate_limited (429, ``Retry-After``), internal_error (500), service_unavailable (502-504).

Faults: ``sandbox.faults.inject(prefix, status=500|429, retry_after=None, times=1)`` answers
the next ``times`` matching requests with that error *without* processing them;
``sandbox.faults.lose_response(prefix, times=1)`` processes them and then loses the response
(``handle`` raises ``ResponseLost``; the ASGI adapter drops the connection, the mock transport
raises ``httpx.RemoteProtocolError``). ``prefix`` matches the start of the full path
(``/api/v1/invoices``); ``method=`` narrows either to one HTTP method.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

import httpx

from autoinvoice.domain.money import CurrencyError, exponent, quantize
from autoinvoice.sandbox.server import (
    ASGIApp,
    Receive,
    Scope,
    Send,
    answer_lifespan,
    drop_connection,
    read_body,
)

Json = dict[str, Any]
Response = tuple[int, dict[str, str], bytes]
API = "/api/v1"
ACCOUNT: Json = {"id": "acct_sandbox", "object": "account", "name": "autoinvoice sandbox"}
_MAX_KEY = 255


class ApiError(Exception):
    """An error answer: HTTP status plus the ``{"error": {code, message, field}}`` body."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def body(self) -> Json:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


class ResponseLost(Exception):
    """A ``lose_response`` fault fired: the request *was* processed, its response is gone."""

    def __init__(self, response: Response) -> None:
        super().__init__("response lost (injected fault)")
        self.response = response


# -- faults --------------------------------------------------------------------------------
@dataclass
class _Fault:
    prefix: str
    method: str | None
    remaining: int
    status: int = 500
    retry_after: float | None = None

    def matches(self, method: str, path: str) -> bool:
        return path.startswith(self.prefix) and self.method in (None, method)


class Faults:
    """Errors and lost responses to inject into the next matching requests (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._errors: list[_Fault] = []
        self._losses: list[_Fault] = []

    def inject(
        self, path_prefix: str, status: int = 500, *, retry_after: float | None = None,
        times: int = 1, method: str | None = None,
    ) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"inject an error status, not {status}")
        with self._lock:
            self._errors.append(_Fault(path_prefix, method, times, status, retry_after))

    def lose_response(self, path_prefix: str, *, times: int = 1, method: str | None = None) -> None:
        with self._lock:
            self._losses.append(_Fault(path_prefix, method, times))

    def clear(self) -> None:
        with self._lock:
            self._errors.clear()
            self._losses.clear()

    def take_error(self, method: str, path: str) -> _Fault | None:
        return self._take(self._errors, method, path)

    def take_loss(self, method: str, path: str) -> bool:
        return self._take(self._losses, method, path) is not None

    def _take(self, faults: list[_Fault], method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        faults.remove(fault)
                    return fault
        return None


# -- request validation --------------------------------------------------------------------
def _path(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _bad(code: str, message: str, field: str | None = None) -> ApiError:
    return ApiError(400, code, message, field)


def _only(obj: Json, allowed: frozenset[str], where: str = "") -> None:
    for name in obj:
        if name not in allowed:
            raise _bad("unknown_field", f"unknown field {name!r}", _path(where, name))


def _opt_text(obj: Json, name: str, where: str = "") -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise _bad("invalid_request", f"{name} must be a string", _path(where, name))
    return value


def _text(obj: Json, name: str, where: str = "") -> str:
    value = _opt_text(obj, name, where)
    if not value:
        raise _bad("missing_field", f"{name} is required", _path(where, name))
    return value


def _decimal(obj: Json, name: str, where: str = "") -> Decimal:
    raw = _text(obj, name, where)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise _bad("invalid_amount", f"{name} must be a decimal string", _path(where, name))
    return value


def _amount(obj: Json, name: str, currency: str, where: str = "") -> Decimal:
    value = _decimal(obj, name, where)
    if value != quantize(value, currency):
        raise _bad("invalid_amount", f"{name} has more decimals than {currency} allows",
                   _path(where, name))
    return value


def _date(obj: Json, name: str) -> date:
    try:
        return date.fromisoformat(_text(obj, name))
    except ValueError:
        raise _bad("invalid_request", f"{name} must be an ISO date", name) from None


def _moment(obj: Json, name: str, default: datetime) -> datetime:
    raw = _opt_text(obj, name)
    if raw is None:
        return default
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise _bad("invalid_request", f"{name} must be ISO 8601 with an offset", name)
    return value


def _revision(obj: Json) -> int:
    value = obj.get("revision")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _bad("invalid_request", "revision must be a non-negative integer", "revision")
    return value


def _currency(obj: Json) -> str:
    code = _text(obj, "currency")
    try:
        exponent(code)
    except CurrencyError:
        raise _bad("invalid_currency", f"unknown currency {code!r}", "currency") from None
    return code


def _address(obj: Json) -> Json | None:
    value = obj.get("address")
    ok = value is None or (
        isinstance(value, dict) and all(isinstance(v, str | None) for v in value.values())
    )
    if not ok:
        raise _bad("invalid_request", "address must be an object of strings", "address")
    return value


# -- the in-memory platform ------------------------------------------------------------------
_CUSTOMER_FIELDS = frozenset({"external_id", "name", "email", "address"})
_INVOICE_FIELDS = frozenset({"customer_id", "reference", "revision", "number", "currency",
                             "issue_date", "due_date", "po_number", "lines"})
_LINE_FIELDS = frozenset({"description", "quantity", "unit_price", "amount", "tax_rate", "tax"})
_PAYMENT_FIELDS = frozenset({"amount", "paid_at"})


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
    paid_at: datetime | None = None
    payments: list[Json] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.tax

    @property
    def balance(self) -> Decimal:
        return self.total - self.amount_paid

    def render(self) -> Json:
        money = {name: _fmt(getattr(self, name), self.currency)
                 for name in ("subtotal", "tax", "total", "amount_paid", "balance")}
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
        raise _bad("invalid_request", "each line must be an object", where)
    _only(raw, _LINE_FIELDS, where)
    amount = _amount(raw, "amount", currency, where)
    rate = _decimal(raw, "tax_rate", where)
    if not 0 <= rate < 1:
        raise _bad("invalid_amount", "tax_rate is a fraction in [0, 1)", f"{where}.tax_rate")
    tax = quantize(amount * rate, currency)  # half-up, once per line: the platform's own rule
    line = {
        "description": _text(raw, "description", where),
        "quantity": format(_decimal(raw, "quantity", where), "f"),
        "unit_price": format(_decimal(raw, "unit_price", where), "f"),
        "amount": _fmt(amount, currency), "tax_rate": format(rate, "f"), "tax": _fmt(tax, currency),
    }
    return line, amount, tax


class _Store:
    """Customers and invoices. Not locked itself: ``GenericSandbox.handle`` holds the lock."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._customers: dict[str, Json] = {}
        self._invoices: dict[str, _Invoice] = {}
        self._payments = itertools.count(1)

    @property
    def invoice_count(self) -> int:
        return len(self._invoices)

    def add_customer(self, body: Json) -> Json:
        _only(body, _CUSTOMER_FIELDS)
        customer: Json = {
            "id": f"cus_{len(self._customers) + 1:06d}", "object": "customer",
            "external_id": _text(body, "external_id"), "name": _text(body, "name"),
            "email": _opt_text(body, "email"), "address": _address(body),
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
        _only(body, _INVOICE_FIELDS)
        customer_id = _text(body, "customer_id")
        if customer_id not in self._customers:
            raise _bad("no_such_customer", f"no customer {customer_id}", "customer_id")
        currency = _currency(body)
        issue_date, due_date = _date(body, "issue_date"), _date(body, "due_date")
        if due_date < issue_date:
            raise _bad("invalid_request", "due_date is before issue_date", "due_date")
        raw_lines = body.get("lines")
        if not isinstance(raw_lines, list) or not raw_lines:
            raise _bad("missing_field", "lines must be a non-empty list", "lines")
        parsed = [_line(raw, i, currency) for i, raw in enumerate(raw_lines)]
        seq = len(self._invoices) + 1
        invoice = _Invoice(
            id=f"inv_{seq:06d}", customer_id=customer_id, reference=_text(body, "reference"),
            revision=_revision(body), number=_opt_text(body, "number") or f"SBX-{seq:05d}",
            currency=currency, issue_date=issue_date, due_date=due_date,
            po_number=_opt_text(body, "po_number"), lines=[line for line, _, _ in parsed],
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
            raise _bad("invalid_request", "revision must be an integer", "revision")
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
        _only(body, _PAYMENT_FIELDS)
        amount = _amount(body, "amount", invoice.currency)
        paid_at = _moment(body, "paid_at", self._clock())
        if invoice.status not in ("issued", "partially_paid"):
            raise ApiError(409, "invalid_state", f"cannot pay a {invoice.status} invoice")
        if not 0 < amount <= invoice.balance:
            raise _bad("invalid_amount", f"amount must be in (0, {invoice.balance}]", "amount")
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


# -- the API -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Call:
    """One request the sandbox answered (for tests: what did the client really send?)."""

    method: str
    path: str
    headers: Mapping[str, str]
    status: int
    replayed: bool = False


@dataclass
class _Stored:
    fingerprint: str
    status: int
    body: bytes


Handler = Callable[[dict[str, str], Mapping[str, str], Json], tuple[int, Json]]
_Route = tuple[str, re.Pattern[str], Handler]


def _route(verb: str, template: str, handler: Handler) -> _Route:
    return verb, re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)), handler


def _listing(items: list[Json]) -> Json:
    return {"object": "list", "data": items}


class GenericSandbox:
    """The in-memory platform. ``handle`` is the whole API; the adapters put it on a wire."""

    def __init__(
        self, api_key: str | None = None, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.api_key = api_key
        self.faults = Faults()
        #: The last 1000 requests answered, oldest first.
        self.calls: deque[Call] = deque(maxlen=1000)
        self._lock = threading.RLock()
        self._request_ids = itertools.count(1)
        self._keys: dict[str, _Stored] = {}
        self._store = _Store(clock or (lambda: datetime.now(UTC)))
        s = self._store
        self._routes: list[_Route] = [
            _route("GET", "/account", lambda p, q, b: (200, ACCOUNT)),
            _route("POST", "/customers", lambda p, q, b: (201, s.add_customer(b))),
            _route("GET", "/customers", lambda p, q, b: (200, _listing(s.find_customers(q)))),
            _route("GET", "/customers/{id}", lambda p, q, b: (200, s.customer(p["id"]))),
            _route("POST", "/invoices", lambda p, q, b: (201, s.add_invoice(b))),
            _route("GET", "/invoices", lambda p, q, b: (200, _listing(s.find_invoices(q)))),
            _route("GET", "/invoices/{id}", lambda p, q, b: (200, s.invoice(p["id"]))),
            _route("POST", "/invoices/{id}/issue", lambda p, q, b: (200, s.issue(p["id"]))),
            _route("POST", "/invoices/{id}/payments", lambda p, q, b: (201, s.pay(p["id"], b))),
            _route("POST", "/invoices/{id}/void", lambda p, q, b: (200, s.void(p["id"]))),
        ]

    @property
    def invoice_count(self) -> int:
        with self._lock:
            return self._store.invoice_count

    def handle(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
        body: bytes,
    ) -> Response:
        """Answer one request: (status, headers, body). Raises ``ResponseLost`` (see Faults)."""
        method = method.upper()
        lowered = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            request_id = f"req_{next(self._request_ids):06d}"
            status, payload, extra = self._answer(method, path, query, lowered, body)
            out = {"content-type": "application/json", "x-request-id": request_id, **extra}
            self.calls.append(Call(method, path, lowered, status, "idempotent-replayed" in out))
            response = (status, out, payload)
        if self.faults.take_loss(method, path):
            raise ResponseLost(response)
        return response

    def _answer(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
        body: bytes,
    ) -> tuple[int, bytes, dict[str, str]]:
        fault = self.faults.take_error(method, path)
        if fault is not None:
            return _fault_response(fault)
        try:
            self._authenticate(headers)
            key = headers.get("idempotency-key") if method == "POST" else None
            if key is None:
                return *self._dispatch(method, path, query, body), {}
            return self._idempotent(key, method, path, query, body)
        except ApiError as exc:
            return exc.status, _dump(exc.body()), {}

    def _authenticate(self, headers: Mapping[str, str]) -> None:
        if self.api_key is None:
            return
        given = headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.api_key}".encode()):
            raise ApiError(401, "unauthorized", "missing or invalid bearer token")

    def _idempotent(
        self, key: str, method: str, path: str, query: Mapping[str, str], body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        if not key or len(key) > _MAX_KEY:
            raise _bad("invalid_request", "Idempotency-Key must be 1-255 characters",
                       "Idempotency-Key")
        fingerprint = _fingerprint(method, path, body)
        stored = self._keys.get(key)
        if stored is not None:
            if stored.fingerprint != fingerprint:
                raise ApiError(409, "idempotency_key_reused",
                               "this Idempotency-Key was used with a different request")
            return stored.status, stored.body, {"idempotent-replayed": "true"}
        status, payload = self._dispatch(method, path, query, body)
        if status != 400:  # as Stripe: a request that failed validation never ran
            self._keys[key] = _Stored(fingerprint, status, payload)
        return status, payload, {}

    def _dispatch(
        self, method: str, path: str, query: Mapping[str, str], body: bytes
    ) -> tuple[int, bytes]:
        try:
            status, payload = self._run(method, path, query, body)
        except ApiError as exc:
            return exc.status, _dump(exc.body())
        return status, _dump(payload)

    def _run(
        self, method: str, path: str, query: Mapping[str, str], body: bytes
    ) -> tuple[int, Json]:
        local = path[len(API):].rstrip("/") if path.startswith(API + "/") else None
        allowed = False
        for verb, pattern, handler in self._routes if local is not None else []:
            match = pattern.fullmatch(local or "")
            if match and verb == method:
                parsed = _parse_body(body) if verb == "POST" else {}
                return handler(match.groupdict(), query, parsed)
            allowed = allowed or match is not None
        if allowed:
            raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}")
        raise ApiError(404, "not_found", f"no route {method} {path}")


def _fault_response(fault: _Fault) -> tuple[int, bytes, dict[str, str]]:
    code = {429: "rate_limited", 500: "internal_error"}.get(fault.status, "service_unavailable")
    extra = {} if fault.retry_after is None else {"retry-after": f"{fault.retry_after:g}"}
    error = ApiError(fault.status, code, f"injected fault: HTTP {fault.status}")
    return fault.status, _dump(error.body()), extra


def _fingerprint(method: str, path: str, body: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True).encode()
    except (UnicodeDecodeError, json.JSONDecodeError):
        canonical = body
    return hashlib.sha256(f"{method} {path}\n".encode() + canonical).hexdigest()


def _parse_body(body: bytes) -> Json:
    try:
        parsed = json.loads(body or b"{}", parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad("invalid_json", f"body is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise _bad("invalid_json", "body must be a JSON object")
    return parsed


def _dump(payload: Json) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


# -- adapters ------------------------------------------------------------------------------
def mock_transport(sandbox: GenericSandbox) -> httpx.MockTransport:
    """An httpx transport that answers from ``sandbox`` in-process (no sockets)."""

    def handler(request: httpx.Request) -> httpx.Response:
        try:
            status, headers, body = sandbox.handle(
                request.method, request.url.path, dict(request.url.params),
                dict(request.headers), request.read(),
            )
        except ResponseLost:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from None
        return httpx.Response(status, headers=headers, content=body)

    return httpx.MockTransport(handler)


def asgi_app(sandbox: GenericSandbox) -> ASGIApp:
    """A raw ASGI app serving ``sandbox``; a lost response drops the TCP connection."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"the sandbox speaks HTTP only, not {scope['type']}")
        body = await read_body(receive)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        try:
            status, out, payload = sandbox.handle(scope["method"], scope["path"], query, headers,
                                                  body)
        except ResponseLost:
            await drop_connection(receive, send)
            return
        raw = [(k.encode(), v.encode()) for k, v in out.items()]
        raw.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": payload})

    return app
