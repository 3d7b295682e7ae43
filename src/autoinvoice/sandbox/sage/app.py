"""``SageSandbox``: the HTTP face of the Sage stand-in (faults, OAuth2, auth, rate limit,
idempotency, routing) and its sandbox-only helpers. The objects live in ``store``."""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeAlias
from urllib.parse import parse_qsl

from autoinvoice.connectors.http import exact_json
from autoinvoice.domain.money import exponent
from autoinvoice.sandbox.faults import Fault, FaultKind, Faults, ResponseLost
from autoinvoice.sandbox.sage.store import (
    COUNTRY_SETUP,
    Obj,
    SageError,
    Store,
    invalid,
    not_found,
)
from autoinvoice.sandbox.scoped_oauth import ScopedOAuthServer

Response: TypeAlias = tuple[int, dict[str, str], bytes]
API = "/v3.1"
AUTHORIZE_PATH = "/oauth2/auth/central"
TOKEN_PATH = "/token"
IDEMPOTENCY_TTL = 7 * 24 * 3600  # "for the next 7 days"
DEFAULT_BUSINESS = "0d40342d0287cd6b13555c54afca6c90"
#: developer.sage.com/accounting/guides/authenticating/authentication: "scopes ... Can be
#: readonly or full_access"
FULL_ACCESS, READONLY = "full_access", "readonly"
#: the shape of ``GET /businesses``: Sage's guides (multi_business, best_practices) show the
#: ``$items`` envelope; some third-party references show a bare array
BusinessesShape = str  # "items" | "array"
#: which list attributes are always shown (Sage: "in addition to the base attributes")
BASE_ATTRIBUTES = ("id", "displayed_as", "$path")


class SageSandbox:
    """The in-memory Sage Accounting stand-in. ``handle`` is the whole API."""

    def __init__(self, api_key: str | None = None, *, clock: Callable[[], float] = time.time,
                 business_id: str = DEFAULT_BUSINESS, country: str = "GB",
                 currency: str | None = None, rate_limit_per_minute: int | None = None,
                 tax_rates: Mapping[str, str] | None = None,
                 other_countries: tuple[str, ...] = (),
                 businesses_shape: BusinessesShape = "items",
                 access_ttl: float = 300.0) -> None:
        #: a pre-issued bearer token accepted for ever (demo, ``sandbox serve``); optional
        self.api_key = api_key
        self.business_id = business_id  # the lead business (the first the user created)
        self.businesses_shape = businesses_shape
        self.rate_limit_per_minute = rate_limit_per_minute
        self.faults = Faults()
        # the business is never in the token answer: ``GET /businesses`` names it
        self.oauth = ScopedOAuthServer(
            client_id="sage-demo-client", client_secret="sage-demo-secret",
            access_ttl=access_ttl, clock=clock,
            supported_scopes=frozenset({FULL_ACCESS, READONLY}),
            default_scopes=(READONLY,))
        self.oauth_paths = (AUTHORIZE_PATH, TOKEN_PATH)
        self._clock = clock
        self._lock = threading.RLock()
        default_currency, default_rates = COUNTRY_SETUP[country]
        self._stores: dict[str, Store] = {business_id: Store(
            business_id=business_id, currency=currency or default_currency, clock=clock,
            tax_rates=tax_rates or default_rates, country=country)}
        self._store = self._stores[business_id]
        self._saved: dict[str, tuple[float, str, int, bytes]] = {}
        self._recent: deque[float] = deque()
        self._request_no = 0
        self.requests: list[tuple[str, str]] = []  # (method, path) of every API request
        for other in other_countries:
            self.add_business(other)

    def add_business(self, country: str) -> str:
        """Sandbox-only: another business of the same user, in ``country`` (its base currency
        and tax rates from ``COUNTRY_SETUP``); returns its id."""
        with self._lock:
            key = f"{self.business_id[:-2]}{len(self._stores):02d}"
            currency, rates = COUNTRY_SETUP[country]
            self._stores[key] = Store(business_id=key, currency=currency, clock=self._clock,
                                      tax_rates=rates, country=country)
            return key

    def demo_choice(self, country: str) -> dict[str, str]:
        """Sandbox-only: the business a demo tenant of ``country`` picks at consent (made when
        the user has none there), as ``connect_headless(choose=...)`` takes it."""
        return {"business_id": self.business_for(country) or self.add_business(country)}

    # -- the HTTP entry point ----------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str],
               body: bytes) -> Response:
        """One request in, one ``(status, headers, body)`` out; raises ``ResponseLost`` after
        processing when a lost response was injected."""
        method = method.upper()
        lowered = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            self._request_no += 1
            request_id = f"sage-req-{self._request_no:06d}"
        fault = self.faults.take(method, path)
        if fault is not None and fault.kind is FaultKind.STATUS:
            return self._fault_response(fault, request_id)
        if path in self.oauth_paths:
            status, out, payload = self._oauth(method, path, query, lowered, body)
        else:
            with self._lock:
                status, out, payload = self._api(method, path, query, lowered, body)
        out = {"X-Request-Id": request_id, **out}
        if fault is not None:
            raise ResponseLost(f"{method} {path} processed as {request_id}; response lost",
                               (status, out, payload))
        return status, out, payload

    def _fault_response(self, fault: Fault, request_id: str) -> Response:
        code = {429: "TooManyRequests", 503: "ServiceUnavailable"}.get(
            fault.status, "InternalServerError" if fault.status >= 500 else "InjectedFault")
        headers = {"Content-Type": "application/json", "X-Request-Id": request_id}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        error = SageError(fault.status, code, f"Injected fault: HTTP {fault.status}")
        return fault.status, headers, json.dumps(error.body()).encode()

    # -- OAuth2 -------------------------------------------------------------------------------

    def _oauth(self, method: str, path: str, query: str, headers: Mapping[str, str],
               body: bytes) -> Response:
        if path == AUTHORIZE_PATH and method == "GET":
            status, target = self.oauth.authorize(dict(parse_qsl(query)))
            if status == 302:
                return 302, {"Location": target}, b""
            return status, {"Content-Type": "text/plain"}, target.encode()
        if path == TOKEN_PATH and method == "POST":
            form = dict(parse_qsl(body.decode("utf-8", "replace")))
            status, answer = self.oauth.token(form, headers.get("authorization"))
            return status, {"Content-Type": "application/json",
                            "Cache-Control": "no-store"}, json.dumps(answer).encode()
        return 405, {"Content-Type": "text/plain"}, b"method not allowed"

    # -- the API ------------------------------------------------------------------------------

    def _api(self, method: str, path: str, query: str, headers: Mapping[str, str],
             body: bytes) -> Response:
        self.requests.append((method, path))
        try:
            self._authenticate(method, headers)
            self._throttle()
            status, result = self._route(method, path, dict(parse_qsl(query)), body)
        except SageError as err:
            extra = {"Retry-After": str(err.retry_after)} if err.retry_after else {}
            return err.status, {"Content-Type": "application/json", **extra}, \
                json.dumps(err.body()).encode()
        business = {"X-Business": self._store.business_id}  # Sage answers with it
        if result is None:
            return status, business, b""
        if isinstance(result, bytes):  # a replayed answer
            return status, {"Content-Type": "application/json", **business}, result
        return status, {"Content-Type": "application/json", **business}, \
            exact_json(result).encode()

    def _authenticate(self, method: str, headers: Mapping[str, str]) -> None:
        authorization = headers.get("authorization")
        if self.api_key and authorization == f"Bearer {self.api_key}":
            scopes: frozenset[str] | None = frozenset({FULL_ACCESS})
        else:
            scopes = self.oauth.scopes_of(authorization)
        if scopes is None:
            raise SageError(401, "AuthorizationFailure",
                            "Access token is missing, invalid or expired")
        if method != "GET" and FULL_ACCESS not in scopes:
            raise SageError(403, "AuthorizationFailure", "The access token's scope "
                            f"({' '.join(sorted(scopes)) or 'none'}) does not allow "
                            f"{method} requests: full_access is needed")
        if READONLY not in scopes and FULL_ACCESS not in scopes:
            raise SageError(403, "AuthorizationFailure",
                            "The access token has neither readonly nor full_access scope")
        business = headers.get("x-business")
        if business is not None and business not in self._stores:
            raise SageError(403, "AuthorizationFailure",
                            f"The user has no access to business {business}")
        self._store = self._stores[business or self.business_id]

    def _throttle(self) -> None:
        if not self.rate_limit_per_minute:
            return
        now = self._clock()
        while self._recent and now - self._recent[0] >= 60:
            self._recent.popleft()
        if len(self._recent) >= self.rate_limit_per_minute:
            wait = max(1, math.ceil(60 - (now - self._recent[0])))
            raise SageError(429, "TooManyRequests", "Too many requests: the rate limit "
                            f"of {self.rate_limit_per_minute} per minute was exceeded",
                            retry_after=wait)
        self._recent.append(now)

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes
               ) -> tuple[int, Any]:
        if not path.startswith(API + "/"):
            raise not_found("Path", path)
        parts = path[len(API) + 1:].strip("/").split("/")
        store = self._store
        match (method, *parts):
            case ("GET", "businesses"):
                return 200, self._businesses(query)
            case ("GET", "businesses", key):
                return 200, self._business(self.business_id if key == "lead" else key)
            case ("GET", "contacts"):
                return 200, self._listing(store.find_contacts(query), query)
            case ("POST", "contacts"):
                return self._create("contact", body, store.create_contact)
            case ("GET", "contacts", key):
                return 200, self._one(store.contacts, key, "Contact")
            case ("GET", "ledger_accounts"):
                return 200, self._listing([a for a in store.ledger_accounts.values()
                                           if _ledger_match(a, query)], query)
            case ("GET", "tax_rates"):
                return 200, self._listing(list(store.tax_rates.values()), query)
            case ("GET", "sales_invoices"):
                return 200, self._listing(store.find_documents("invoice", query), query)
            case ("POST", "sales_invoices"):
                return self._create("sales_invoice", body, store.create_invoice)
            case ("GET", "sales_invoices", key):
                return 200, store.invoice(key)
            case ("PUT", "sales_invoices", key):
                return 200, store.update_invoice(key, self._resource(body, "sales_invoice"))
            case ("DELETE", "sales_invoices", key):
                store.delete_invoice(key, query.get("void_reason"))
                return 204, None
            case ("GET", "sales_credit_notes"):
                return 200, self._listing(store.find_documents("credit_note", query), query)
            case ("POST", "sales_credit_notes"):
                return self._create("sales_credit_note", body, store.create_credit_note)
            case ("GET", "sales_credit_notes", key):
                return 200, self._one(store.credit_notes, key, "SalesCreditNote")
        raise not_found("Path", f"{method} {path}")

    def _create(self, name: str, body: bytes, make: Callable[[Obj], Obj]) -> tuple[int, Any]:
        data = self._resource(body, name)
        idempotency_id = data.pop("idempotency_id", None)
        if idempotency_id is None:
            return 201, make(data)
        if not (isinstance(idempotency_id, str) and len(idempotency_id) == 32
                and all(c in "0123456789abcdefABCDEF" for c in idempotency_id)):
            raise invalid("idempotency_id", "idempotency_id must be a 32 character "
                          "hyphenless GUID")
        self._forget_old_ids()
        saved = self._saved.get(idempotency_id)
        if saved is not None:
            if saved[1] != name:
                raise SageError(422, "IdempotencyResourceMismatch", "Entity type mismatch")
            return saved[2], saved[3]
        try:
            status, payload = 201, exact_json(make(data)).encode()
        except SageError as err:
            if err.status == 422:
                raise  # a rejected request is not remembered: fixed, it may be sent again
            status, payload = err.status, json.dumps(err.body()).encode()
        self._saved[idempotency_id] = (self._clock(), name, status, payload)
        return status, payload

    def _forget_old_ids(self) -> None:
        horizon = self._clock() - IDEMPOTENCY_TTL
        for key in [k for k, saved in self._saved.items() if saved[0] <= horizon]:
            del self._saved[key]

    @staticmethod
    def _resource(body: bytes, name: str) -> Obj:
        try:
            data = json.loads(body or b"{}", parse_float=Decimal)
        except ValueError:
            raise SageError(400, "InvalidJson", "The request body is not valid JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get(name), dict):
            raise invalid(name, f"the request body must be {{\"{name}\": {{...}}}}")
        resource: Obj = data[name]
        return resource

    @staticmethod
    def _one(objects: Mapping[str, Obj], key: str, kind: str) -> Obj:
        if key not in objects:
            raise not_found(kind, key)
        return objects[key]

    @staticmethod
    def _listing(found: list[Obj], query: Mapping[str, str]) -> Obj:
        """Sage's list envelope; items show the base attributes plus ``attributes``."""
        try:
            per_page = max(1, min(200, int(query.get("items_per_page", "20"))))
            page = max(1, int(query.get("page", "1")))
        except ValueError:
            raise invalid("items_per_page", "items_per_page and page must be numbers") \
                from None
        wanted = query.get("attributes", "")
        names = set(BASE_ATTRIBUTES) | {a.strip() for a in wanted.split(",") if a.strip()}
        start = (page - 1) * per_page
        shown = [obj if wanted == "all" else {k: v for k, v in obj.items() if k in names}
                 for obj in found[start:start + per_page]]
        more = start + per_page < len(found)
        return {"$total": len(found), "$page": page,
                "$next": f"?page={page + 1}" if more else None,
                "$back": f"?page={page - 1}" if page > 1 else None,
                "$items_per_page": per_page, "$items": shown}

    def _businesses(self, query: Mapping[str, str]) -> Any:
        """Every business the user can reach, the lead one first."""
        found = [self._business(key, brief=True) for key in self._stores]
        if self.businesses_shape == "array":
            return found
        return self._listing(found, {**query, "attributes": "all"})

    def _business(self, key: str, *, brief: bool = False) -> Obj:
        store = self._stores.get(key)
        if store is None:
            raise not_found("Business", key)
        names = {"GB": "Stand-in Compressors Ltd", "DE": "Stand-in Kompressoren GmbH",
                 "US": "Stand-in Compressors LLC"}
        shown: Obj = {"id": key, "displayed_as": names.get(store.country, key),
                      "$path": f"/businesses/{key}"}
        if not brief:
            shown.update({"name": shown["displayed_as"],
                          "country": {"id": store.country, "displayed_as": store.country}})
        return shown

    def business_for(self, country: str) -> str | None:
        """Sandbox-only: the id of the business in ``country`` (the demo's choice per tenant)."""
        return next((k for k, s in self._stores.items() if s.country == country), None)

    # -- sandbox-only API ---------------------------------------------------------------------

    def record_payment(self, remote_id: str, amount_minor: int) -> Obj:
        """A customer receipt of ``amount_minor`` against the invoice (partial or full)."""
        with self._lock:
            store = self._holding(remote_id)
            currency = store.invoice(remote_id)["currency"]["id"]
            amount = Decimal(amount_minor).scaleb(-exponent(currency))
            day = datetime.fromtimestamp(self._clock(), UTC).date().isoformat()
            return dict(store.record_payment(remote_id, amount, day))

    def get_invoice(self, remote_id: str) -> Obj:
        with self._lock:
            return dict(self._holding(remote_id).invoice(remote_id))

    def invoices(self) -> list[Obj]:
        """Every sales invoice not deleted, oldest first (every business)."""
        with self._lock:
            return [dict(d) for s in self._stores.values()
                    for d in s.find_documents("invoice", {})]

    def credit_notes(self) -> list[Obj]:
        with self._lock:
            return [dict(d) for s in self._stores.values()
                    for d in s.find_documents("credit_note", {})]

    def contacts(self) -> list[Obj]:
        with self._lock:
            return [dict(c) for s in self._stores.values() for c in s.contacts.values()]

    def tax_rate_ids(self, business_id: str | None = None) -> list[str]:
        """Sandbox-only: the tax rate ids of a business (the lead one by default)."""
        with self._lock:
            return list(self._stores[business_id or self.business_id].tax_rates)

    def _holding(self, remote_id: str) -> Store:
        return next((s for s in self._stores.values() if remote_id in s.invoices),
                    self._stores[self.business_id])


def _ledger_match(account: Obj, query: Mapping[str, str]) -> bool:
    kind = query.get("ledger_account_type_id")
    if kind and account["ledger_account_type"]["id"] != kind:
        return False
    return not (query.get("visible_in") == "sales" and not account["visible_in_sales"])
