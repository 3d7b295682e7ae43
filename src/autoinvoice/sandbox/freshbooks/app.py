"""``FreshBooksSandbox``: the HTTP face of the stand-in (faults, OAuth2, bearer auth, rate
limit, routing) and its sandbox-only helpers; the objects live in ``store``."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeAlias
from urllib.parse import parse_qsl

from autoinvoice.sandbox.faults import Fault, FaultKind, Faults, ResponseLost
from autoinvoice.sandbox.freshbooks.store import FreshBooksError, Obj, Store
from autoinvoice.sandbox.oauth import OAuthServer
from autoinvoice.sandbox.scopes import Rule, missing

Response: TypeAlias = tuple[int, dict[str, str], bytes]
ACCOUNT_ID = "zDmNq"
AUTHORIZE_PATH = "/oauth/authorize"  # auth.freshbooks.com/oauth/authorize on the real thing
TOKEN_PATH = "/auth/oauth/token"
ME_PATH = "/auth/api/v1/users/me"
UNAUTHENTICATED = {"error": "unauthenticated",
                   "error_description": "This action requires authentication to continue."}
_ACCOUNT = r"/accounting/account/[^/]+/"
#: Scopes per endpoint, as FreshBooks' API pages state each call's access requirement
#: (freshbooks.com/api/scopes: ``user:<object>:read|write``; objects include ``clients``,
#: ``invoices``, ``credit_notes``, ``payments``; ``user:profile:read`` for ``/users/me``).
SCOPE_RULES = (
    Rule("GET", ME_PATH, ("user:profile:read",)),
    *(rule for obj, path in (("clients", "users/clients"), ("invoices", "invoices/invoices"),
                             ("credit_notes", "credit_notes/credit_notes"),
                             ("payments", "payments/payments"))
      for rule in (Rule("GET", rf"{_ACCOUNT}{path}(/.*)?", (f"user:{obj}:read",)),
                   Rule("*", rf"{_ACCOUNT}{path}(/.*)?", (f"user:{obj}:write",)))),
)
#: what ``autoinvoice connect freshbooks`` asks for (``connectors.oauth``)
CONNECTOR_SCOPES = ("user:profile:read", "user:clients:read", "user:clients:write",
                    "user:invoices:read", "user:invoices:write", "user:credit_notes:read",
                    "user:credit_notes:write")
RESOURCES = {"users/clients": ("client", "clients"), "invoices/invoices": ("invoice", "invoices"),
             "credit_notes/credit_notes": ("credit_note", "credit_notes"),
             "payments/payments": ("payment", "payments")}
SEARCHES = {"client": {"email", "organization_like"},
            "invoice": {"invoice_number", "customerid"},
            "credit_note": {"clientid", "credit_number"}, "payment": set()}


class FreshBooksSandbox:
    """The in-memory FreshBooks stand-in. ``handle`` is the whole API; adapters put it on a
    wire. ``rate_limit`` requests per ``rate_window`` seconds per account (None: no limit)."""

    def __init__(self, api_key: str | None = None, *, clock: Callable[[], float] = time.time,
                 account_id: str = ACCOUNT_ID, rate_limit: int | None = 1200,
                 rate_window: float = 60.0, client_id: str = "demo-client",
                 client_secret: str = "demo-secret") -> None:
        self.api_key, self.account_id = api_key, account_id
        self.rate_limit, self.rate_window = rate_limit, rate_window
        self._clock = clock
        self.faults = Faults(default_method="POST")
        self.oauth = OAuthServer(client_id=client_id, client_secret=client_secret,
                                 access_ttl=12 * 3600.0, default_scopes=CONNECTOR_SCOPES,
                                 clock=clock)
        self.oauth_paths = (AUTHORIZE_PATH, TOKEN_PATH)
        self._store = Store(account_id, self._today)
        self._lock = threading.RLock()
        self._hits: deque[float] = deque()
        self.requests: list[tuple[str, str]] = []

    def connection_values(self) -> dict[str, str]:
        """What ``connect`` learns (from ``GET /auth/api/v1/users/me``): tests and the demo
        that skip the consent use it."""
        return {"account_id": self.account_id}

    # -- the HTTP entry point ----------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str],
               body: bytes) -> Response:
        """One request in, one ``(status, headers, body)`` out; raises ``ResponseLost`` after
        processing when a lost response was injected."""
        method = method.upper()
        request_id = uuid.uuid4().hex
        fault = self.faults.take(method, path)
        if fault is not None and fault.kind is FaultKind.STATUS:
            return self._fault_response(fault, request_id)
        lowered = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            self.requests.append((method, path))
            status, extra, payload = self._dispatch(method, path, query, lowered, body)
        out = {"Content-Type": "application/json", "X-Request-Id": request_id, **extra}
        if fault is not None:
            raise ResponseLost(f"{method} {path} processed as {request_id}; response lost")
        return status, out, payload

    def _fault_response(self, fault: Fault, request_id: str) -> Response:
        error = FreshBooksError(fault.status, f"Injected fault: HTTP {fault.status}",
                                errno=fault.status)
        headers = {"Content-Type": "application/json", "X-Request-Id": request_id}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        return fault.status, headers, json.dumps(error.body()).encode()

    def _dispatch(self, method: str, path: str, query: str, headers: Mapping[str, str],
                  body: bytes) -> Response:
        if path == AUTHORIZE_PATH and method == "GET":
            status, text = self.oauth.authorize(dict(parse_qsl(query)))
            if status == 302:
                return 302, {"Location": text}, b""
            return status, {}, json.dumps({"error": text}).encode()
        if path == TOKEN_PATH and method == "POST":
            return self._token(headers, body)
        if not self._authenticated(headers.get("authorization")):
            return 401, {}, json.dumps(UNAUTHENTICATED).encode()
        refused = self._scope_refusal(method, path, headers.get("authorization"))
        if refused is not None:
            return refused
        limited = self._rate_limited()
        if limited is not None:
            return limited
        try:
            result = self._route(method, path, query, body)
        except FreshBooksError as err:
            return err.status, {}, json.dumps(err.body()).encode()
        return 200, {}, json.dumps(result).encode()

    def _token(self, headers: Mapping[str, str], body: bytes) -> Response:
        """FreshBooks takes the token request as JSON (its docs) or as a form (its SDKs)."""
        text = body.decode("utf-8", "replace")
        try:
            form = json.loads(text) if text.lstrip().startswith("{") else dict(parse_qsl(text))
        except ValueError:
            form = {}
        form = {str(k): str(v) for k, v in form.items()}
        status, answer = self.oauth.token(form, headers.get("authorization"))
        if status == 200:
            answer["created_at"] = int(self._clock())
        return status, {"Cache-Control": "no-store"}, json.dumps(answer).encode()

    def _scope_refusal(self, method: str, path: str, authorization: str | None
                       ) -> Response | None:
        """403 naming the scopes given and the scopes needed, as FreshBooks reports a call
        with insufficient scopes since October 2021 (freshbooks.com/api/
        how-to-find-the-right-scopes-for-your-app; the exact body is not published)."""
        if self.api_key and authorization == f"Bearer {self.api_key}":
            return None
        granted = self.oauth.scopes_of(authorization) or frozenset()
        needed = missing(SCOPE_RULES, method, path, granted)
        if needed is None:
            return None
        error = FreshBooksError(403, f"Insufficient scopes. Provided scopes: "
                                f"{' '.join(sorted(granted))}. Required scopes: "
                                f"{' '.join(needed)}", errno=1003)
        return 403, {}, json.dumps(error.body()).encode()

    def _authenticated(self, authorization: str | None) -> bool:
        if self.api_key and authorization == f"Bearer {self.api_key}":
            return True
        return self.oauth.check(authorization)

    def _rate_limited(self) -> Response | None:
        if self.rate_limit is None:
            return None
        now = self._clock()
        while self._hits and now - self._hits[0] >= self.rate_window:
            self._hits.popleft()
        if len(self._hits) >= self.rate_limit:
            wait = max(1, int(self.rate_window - (now - self._hits[0]) + 0.999))
            error = FreshBooksError(429, "Too many requests. Please slow down.", errno=429)
            return 429, {"Retry-After": str(wait)}, json.dumps(error.body()).encode()
        self._hits.append(now)
        return None

    # -- routing ------------------------------------------------------------------------------

    def _route(self, method: str, path: str, query: str, body: bytes) -> Obj:
        if path == ME_PATH and method == "GET":
            return self._me()
        prefix = f"/accounting/account/{self.account_id}/"
        if path.startswith("/accounting/account/") and not path.startswith(prefix):
            raise FreshBooksError(403, "The server could not verify that you are authorized "
                                  "to access that account.", errno=1003, obj="account")
        rest = path[len(prefix):].strip("/") if path.startswith(prefix) else ""
        for resource, (single, plural) in RESOURCES.items():
            if rest == resource:
                if method == "GET":
                    return self._list(single, plural, query)
                if method == "POST":
                    return {"response": {"result": {single: self._create(single, body)}}}
            elif rest.startswith(resource + "/") and "/" not in rest[len(resource) + 1:]:
                return self._one(method, single, rest[len(resource) + 1:], body)
        raise FreshBooksError(404, f"Not Found: {method} {path}", errno=1000)

    def _one(self, method: str, single: str, oid: str, body: bytes) -> Obj:
        store = self._store
        getters: dict[str, Callable[[Any], Obj]] = {
            "client": store.client, "invoice": store.invoice,
            "credit_note": lambda i: _get(store.credit_notes, i, "credit_note"),
            "payment": lambda i: _get(store.payments, i, "payment")}
        if method == "GET":
            return {"response": {"result": {single: _public(getters[single](oid))}}}
        if method == "PUT" and single == "invoice":
            found = store.update_invoice(oid, _wrapped(body, "invoice"))
            return {"response": {"result": {"invoice": _public(found)}}}
        if method == "DELETE" and single == "invoice":
            found = store.update_invoice(oid, {"vis_state": 1})
            return {"response": {"result": {"invoice": _public(found)}}}
        raise FreshBooksError(405, f"{method} is not allowed on {single}", errno=1000)

    def _create(self, single: str, body: bytes) -> Obj:
        data = _wrapped(body, single)
        create = {"client": self._store.create_client, "invoice": self._store.create_invoice,
                  "credit_note": self._store.create_credit_note,
                  "payment": self._store.create_payment}[single]
        return _public(create(data))

    def _list(self, single: str, plural: str, query: str) -> Obj:
        pairs = parse_qsl(query, keep_blank_values=True)
        search = {k[7:-1]: v for k, v in pairs if k.startswith("search[") and k.endswith("]")}
        unknown = sorted(set(search) - SEARCHES[single])
        if unknown:
            raise FreshBooksError(400, f"Invalid search field {unknown[0]}.", errno=2002,
                                  field=unknown[0], obj=single)
        options = dict(pairs)
        page, per_page = int(options.get("page", "1")), min(100, int(options.get("per_page",
                                                                                   "15")))
        found = self._search(single, search)
        pages = max(1, -(-len(found) // per_page))
        chunk = found[(page - 1) * per_page: page * per_page]
        return {"response": {"result": {plural: [_public(o) for o in chunk], "page": page,
                                        "pages": pages, "per_page": per_page,
                                        "total": len(found)}}}

    def _search(self, single: str, search: Mapping[str, str]) -> list[Obj]:
        store = self._store
        if single == "client":
            return store.find_clients(search)
        if single == "invoice":
            return store.find_invoices(search)
        if single == "credit_note":
            return store.find_credit_notes(search)
        return list(store.payments.values())

    def _me(self) -> Obj:
        return {"response": {"id": 1, "identity_id": 1, "email": "owner@northwind.example",
                             "first_name": "Nora", "last_name": "West",
                             "business_memberships": [{"id": 1, "role": "owner", "business": {
                                 "id": 77, "name": "Northwind Compressed Air",
                                 "account_id": self.account_id}}]}}

    def _today(self) -> date:
        return datetime.fromtimestamp(self._clock(), UTC).date()

    # -- sandbox-only API ---------------------------------------------------------------------

    def record_payment(self, remote_id: str, amount_minor: int) -> Obj:
        """A client's payment of ``amount_minor`` cents against invoice ``remote_id``."""
        with self._lock:
            amount = str(Decimal(amount_minor).scaleb(-2))
            return _public(self._store.create_payment(
                {"invoiceid": remote_id, "amount": {"amount": amount}, "type": "Check"}))

    def get_invoice(self, remote_id: str) -> Obj:
        """A copy of the invoice, lines included."""
        with self._lock:
            return json.loads(json.dumps(self._store.invoice(remote_id)))  # type: ignore[no-any-return]

    def find_invoices(self, **search: str) -> list[Obj]:
        """Copies of the live invoices whose notes contain ``job=<job_id> `` (``job_id=``) or
        whose number is ``invoice_number=``."""
        with self._lock:
            job = search.get("job_id")
            return [json.loads(json.dumps(i)) for i in self._store.invoices.values()
                    if i["vis_state"] == 0
                    and (job is None or f"job={job} " in (i.get("notes") or ""))
                    and search.get("invoice_number") in (None, i["invoice_number"])]

    def credit_notes(self) -> list[Obj]:
        with self._lock:
            return [json.loads(json.dumps(n)) for n in self._store.credit_notes.values()]

    def count(self, kind: str) -> int:
        """How many ``client``, ``invoice``, ``credit_note`` or ``payment`` objects exist."""
        with self._lock:
            return len({"client": self._store.clients, "invoice": self._store.invoices,
                        "credit_note": self._store.credit_notes,
                        "payment": self._store.payments}[kind])

    def emails_sent(self, remote_id: str) -> int:
        with self._lock:
            return len(self._store.emails.get(int(remote_id), []))

    def email_recipients(self, remote_id: str) -> list[list[str]]:
        with self._lock:
            return list(self._store.emails.get(int(remote_id), []))


def _wrapped(body: bytes, single: str) -> Obj:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise FreshBooksError(400, "The request body is not valid JSON.", errno=2002) from None
    if not isinstance(data, dict) or not isinstance(data.get(single), dict):
        raise FreshBooksError(400, f"The request body must be {{\"{single}\": {{…}}}}.",
                              errno=2002, obj=single)
    inner: Obj = data[single]
    return inner


def _get(objects: dict[int, Obj], oid: str, kind: str) -> Obj:
    try:
        return objects[int(oid)]
    except (KeyError, ValueError):
        raise FreshBooksError(404, f"{kind.replace('_', ' ').capitalize()} not found.",
                              errno=1012, obj=kind, value=oid) from None


def _public(obj: Obj) -> Obj:
    """What the API shows: a copy, without the stand-in's bookkeeping (lines only of credit
    notes; invoices show theirs with ``include[]=lines``, which the connector never needs)."""
    shown = {k: v for k, v in obj.items() if k not in ("paid_total", "lines")}
    if "creditid" in obj:
        shown["lines"] = obj["lines"]
    return json.loads(json.dumps(shown))  # type: ignore[no-any-return]
