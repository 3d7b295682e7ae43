"""``GenericSandbox``: the API of the generic sandbox over its ``Store`` (faults, auth,
idempotency, routing), answering ``(status, headers, body)``."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from autoinvoice.sandbox.faults import Fault, FaultKind, Faults, ResponseLost
from autoinvoice.sandbox.generic.store import Store
from autoinvoice.sandbox.generic.validation import ApiError, Json, bad

Response = tuple[int, dict[str, str], bytes]
API = "/api/v1"
ACCOUNT: Json = {"id": "acct_sandbox", "object": "account", "name": "autoinvoice sandbox"}
_MAX_KEY = 255


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
        self.faults = Faults(default_method=None)
        #: The last 1000 requests answered, oldest first.
        self.calls: deque[Call] = deque(maxlen=1000)
        self._lock = threading.RLock()
        self._request_ids = itertools.count(1)
        self._keys: dict[str, _Stored] = {}
        self._store = Store(clock or (lambda: datetime.now(UTC)))
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
            _route("POST", "/credit_notes", lambda p, q, b: (201, s.add_credit_note(b))),
            _route("GET", "/credit_notes",
                   lambda p, q, b: (200, _listing(s.find_credit_notes(q)))),
            _route("GET", "/credit_notes/{id}", lambda p, q, b: (200, s.credit_note(p["id"]))),
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
        if self.faults.take(method, path, FaultKind.LOSE_RESPONSE) is not None:
            raise ResponseLost(response=response)
        return response

    def _answer(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
        body: bytes,
    ) -> tuple[int, bytes, dict[str, str]]:
        fault = self.faults.take(method, path, FaultKind.STATUS)
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
            raise bad("invalid_request", "Idempotency-Key must be 1-255 characters",
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


def _fault_response(fault: Fault) -> tuple[int, bytes, dict[str, str]]:
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
        raise bad("invalid_json", f"body is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise bad("invalid_json", "body must be a JSON object")
    return parsed


def _dump(payload: Json) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()
