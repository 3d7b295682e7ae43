"""``XeroSandbox``: the HTTP face of the Xero stand-in (faults, OAuth2, tenant header, rate
limits, idempotency, routing) and its sandbox-only helpers. The objects live in ``ledger``."""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeAlias
from urllib.parse import parse_qsl

from autoinvoice.sandbox.faults import Fault, FaultKind, Faults, ResponseLost
from autoinvoice.sandbox.oauth import OAuthServer
from autoinvoice.sandbox.scopes import Rule, missing
from autoinvoice.sandbox.xero.ledger import (
    ORGANISATIONS,
    Ledger,
    Obj,
    XeroError,
    ms_date,
    not_found,
    select,
)

Response: TypeAlias = tuple[int, dict[str, str], bytes]
API = "/api.xro/2.0"
AUTHORIZE_PATH = "/identity/connect/authorize"
TOKEN_PATH = "/connect/token"
TENANT_ID = "a3f0c1d2-7b9e-4c4f-9d5e-1f2a3b4c5d6e"
#: Scopes per endpoint. Broad ones from ``xero_accounting.yaml`` (``security: OAuth2``, every
#: operation); the granular ones that replace ``accounting.transactions`` for apps made since
#: 2 March 2026 (developer.xero.com/documentation/guides/oauth2/scopes; announcement
#: "Upcoming changes to Xero accounting API scopes"): ``accounting.invoices`` for Invoices and
#: CreditNotes, ``accounting.payments`` for Payments (and, accepted here, allocations).
_TXN = ("accounting.transactions", "accounting.invoices")
_TXN_READ = (*_TXN, "accounting.transactions.read", "accounting.invoices.read")
SCOPE_RULES = (
    # which granular scope Xero checks on a credit note's allocations is not documented in
    # our sources: either is accepted here
    Rule("PUT", rf"{API}/CreditNotes/[^/]+/Allocations", (*_TXN, "accounting.payments")),
    Rule("GET", rf"{API}/(Invoices|CreditNotes)(/.*)?", _TXN_READ),
    Rule("*", rf"{API}/(Invoices|CreditNotes)(/.*)?", _TXN),
    Rule("GET", rf"{API}/Payments(/.*)?", ("accounting.transactions", "accounting.payments",
                                           "accounting.transactions.read",
                                           "accounting.payments.read")),
    Rule("*", rf"{API}/Payments(/.*)?", ("accounting.transactions", "accounting.payments")),
    Rule("GET", rf"{API}/Contacts(/.*)?", ("accounting.contacts", "accounting.contacts.read")),
    Rule("*", rf"{API}/Contacts(/.*)?", ("accounting.contacts",)),
    Rule("GET", rf"{API}/(TaxRates|Organisation|Accounts)(/.*)?",
         ("accounting.settings", "accounting.settings.read")),
    Rule("*", rf"{API}/(TaxRates|Organisation|Accounts)(/.*)?", ("accounting.settings",)),
)
_IDENTITY = frozenset({"openid", "profile", "email", "offline_access"})
GRANULAR_SCOPES = _IDENTITY | {
    "accounting.invoices", "accounting.invoices.read", "accounting.payments",
    "accounting.payments.read", "accounting.contacts", "accounting.contacts.read",
    "accounting.settings", "accounting.settings.read"}
#: an app made before 2 March 2026 keeps the broad scopes (and may move to granular ones)
LEGACY_SCOPES = GRANULAR_SCOPES | {"accounting.transactions", "accounting.transactions.read"}
KEY_TTL = 24 * 3600  # not documented by Xero; Stripe's 24 h is assumed
KEY_MAX = 128


@dataclass
class Limits:
    """Xero's per-tenant limits (developer.xero.com/faq/limits); None switches one off."""

    per_minute: int | None = 60
    per_day: int | None = 5000
    concurrent: int | None = 5


@dataclass(frozen=True)
class _Saved:
    at: float
    fingerprint: tuple[str, str, str, bytes]
    response: Response


class XeroSandbox:
    """The in-memory Xero stand-in. ``handle`` is the whole API; the adapters put it on a wire."""

    def __init__(self, api_key: str | None = None, *, clock: Callable[[], float] = time.time,
                 tenant_id: str = TENANT_ID, limits: Limits | None = None,
                 base_currency: str | None = None, organisation: str | None = None,
                 app: str = "granular", country: str = "US") -> None:
        """``app``: ``granular`` (made since 2 March 2026: ``accounting.transactions`` is
        refused at consent) or ``legacy`` (an older app, broad scopes allowed). ``country``:
        which realistic organisation (``ledger.ORGANISATIONS``: US, GB, DE) with its edition's
        own tax rates; name and base currency default to that organisation's."""
        if country not in ORGANISATIONS:
            raise ValueError(f"country {country!r}: the Xero stand-in models "
                             f"{', '.join(ORGANISATIONS)}")
        name, currency, self.version, _ = ORGANISATIONS[country]
        self.api_key, self.tenant_id, self.organisation = api_key, tenant_id, organisation or name
        self.country = country
        self.clock = clock
        self.limits = limits or Limits()
        self.faults = Faults(default_method=None)
        self.oauth = OAuthServer(
            clock=clock, access_ttl=1800.0, refresh_ttl=60 * 24 * 3600.0,
            allowed_scopes=LEGACY_SCOPES if app == "legacy" else GRANULAR_SCOPES,
            default_scopes=("offline_access", "accounting.invoices", "accounting.payments",
                            "accounting.contacts", "accounting.settings"),
            scope_error=("unauthorized_client", "Invalid scope for client"))
        self.oauth_paths = (AUTHORIZE_PATH, TOKEN_PATH)
        self.ledger = Ledger(self._now, base_currency or currency, country)
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.RLock()
        self._saved: dict[str, _Saved] = {}
        self._calls: deque[float] = deque()
        self._day: deque[float] = deque()
        self._in_flight = 0

    def connection_values(self) -> dict[str, str]:
        """What ``connect`` learns (from ``GET /connections``): tests and the demo that skip
        the consent use it."""
        return {"tenant_id": self.tenant_id}

    # -- the HTTP entry point ----------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str],
               body: bytes) -> Response:
        """One request in, one ``(status, headers, body)`` out; raises ``ResponseLost`` after
        processing when a lost response was injected."""
        method, request_id = method.upper(), str(uuid.uuid4())
        lowered = {k.lower(): v for k, v in headers.items()}
        params = dict(parse_qsl(query, keep_blank_values=True))
        if path in self.oauth_paths:
            return self._oauth(path, params, lowered, body)
        with self._lock:
            self.requests.append((method, path))
        fault = self.faults.take(method, path)
        if fault is not None and fault.kind is FaultKind.STATUS:
            return self._fault(fault, request_id)
        with self._lock:
            self._in_flight += 1
        try:
            status, extra, payload = self._guarded(method, path, params, lowered, body)
        finally:
            with self._lock:
                self._in_flight -= 1
        out = {"Content-Type": "application/json; charset=utf-8",
               "Xero-Correlation-Id": request_id, **self._remaining(), **extra}
        if fault is not None:
            raise ResponseLost(f"{method} {path} processed as {request_id}; response lost")
        return status, out, payload

    def _guarded(self, method: str, path: str, params: dict[str, str],
                 headers: Mapping[str, str], body: bytes) -> Response:
        if not self._authenticated(headers.get("authorization")):
            return _problem(401, "Unauthorized", "AuthenticationUnsuccessful")
        if path == "/connections":
            return 200, {}, json.dumps([self._connection()]).encode()
        if headers.get("xero-tenant-id") != self.tenant_id:
            return _problem(403, "Forbidden", "AuthorizationUnsuccessful")
        if self._lacks_scope(method, path, headers.get("authorization")):
            # what Xero answers a token without the endpoint's scope (XeroAPI/Xero-NetStandard
            # issue 178, xero-ruby-oauth2-app issue 82: 401 "AuthorizationUnsuccessful")
            return _problem(401, "Unauthorized", "AuthorizationUnsuccessful")
        with self._lock:
            limited = self._rate_limited()
            if limited is not None:
                return limited
            key = headers.get("idempotency-key") if method in ("PUT", "POST") else None
            if key is not None and len(key) > KEY_MAX:
                return _error(XeroError(f"Idempotency-Key is longer than {KEY_MAX} characters"))
            fingerprint = (method, path, json.dumps(sorted(params.items())), body)
            saved = self._replay(key, fingerprint)
            if saved is not None:
                return saved
            answer = self._dispatch(method, path, params, body)
            if key is not None and 200 <= answer[0] < 300:
                self._saved[key] = _Saved(self.clock(), fingerprint, answer)
            return answer

    def _lacks_scope(self, method: str, path: str, authorization: str | None) -> bool:
        if self.api_key and authorization == f"Bearer {self.api_key}":
            return False  # the pre-issued token holds every scope
        granted = self.oauth.scopes_of(authorization) or frozenset()
        return missing(SCOPE_RULES, method, path, granted) is not None

    def _authenticated(self, authorization: str | None) -> bool:
        if self.api_key and authorization == f"Bearer {self.api_key}":
            return True  # a pre-issued token (demo, tests); it never expires
        return self.oauth.check(authorization)

    def _replay(self, key: str | None, fingerprint: tuple[str, str, str, bytes]
                ) -> Response | None:
        if key is None:
            return None
        horizon = self.clock() - KEY_TTL
        self._saved = {k: s for k, s in self._saved.items() if s.at > horizon}
        saved = self._saved.get(key)
        if saved is None:
            return None
        if saved.fingerprint != fingerprint:
            return _error(XeroError("This Idempotency-Key was already used for a different "
                                    "request"))
        status, headers, payload = saved.response
        return status, {**headers, "Idempotent-Replayed": "true"}, payload

    # -- rate limits --------------------------------------------------------------------------

    def _rate_limited(self) -> Response | None:
        now, limits = self.clock(), self.limits
        while self._calls and self._calls[0] <= now - 60:
            self._calls.popleft()
        while self._day and self._day[0] <= now - 86400:
            self._day.popleft()
        if limits.concurrent is not None and self._in_flight > limits.concurrent:
            return self._too_many("concurrent", 1)
        if limits.per_day is not None and len(self._day) >= limits.per_day:
            return self._too_many("day", self._day[0] + 86400 - now)
        if limits.per_minute is not None and len(self._calls) >= limits.per_minute:
            return self._too_many("minute", self._calls[0] + 60 - now)
        self._calls.append(now)
        self._day.append(now)
        return None

    def _too_many(self, problem: str, wait: float) -> Response:
        headers = {"Retry-After": str(max(1, math.ceil(wait))), "X-Rate-Limit-Problem": problem}
        status, extra, payload = _problem(429, "Too Many Requests",
                                          f"Rate limit exceeded ({problem} limit)")
        return status, {**extra, **headers}, payload

    def _remaining(self) -> dict[str, str]:
        out = {"X-AppMinLimit-Remaining": "9999"}
        if self.limits.per_minute is not None:
            out["X-MinLimit-Remaining"] = str(max(0, self.limits.per_minute - len(self._calls)))
        if self.limits.per_day is not None:
            out["X-DayLimit-Remaining"] = str(max(0, self.limits.per_day - len(self._day)))
        return out

    # -- routing ------------------------------------------------------------------------------

    def _dispatch(self, method: str, path: str, params: dict[str, str], body: bytes) -> Response:
        if not path.startswith(API + "/"):
            return _error(not_found())
        parts = path[len(API) + 1:].split("/")
        try:
            data = json.loads(body, parse_float=Decimal) if body else {}
            result = self._route(method, parts, params, data)
        except XeroError as err:
            return _error(err)
        except ValueError:
            return _error(XeroError("The request body is not valid JSON"))
        if result is None:
            return 204, {}, b""
        return 200, {}, _dumps(self._envelope(result))

    def _route(self, method: str, parts: list[str], params: dict[str, str], data: Any
               ) -> Obj | None:
        ledger = self.ledger
        unitdp = 4 if params.get("unitdp") == "4" else 2
        where = params.get("where")
        match (method, *parts):
            case ("GET", "Organisation"):
                return {"Organisations": [self._organisation()]}
            case ("GET", "Contacts"):
                return {"Contacts": select(ledger.contacts.values(), where)}
            case ("GET", "Contacts", cid):
                return {"Contacts": [_get(ledger.contacts, cid)]}
            case ("PUT", "Contacts"):
                return {"Contacts": [ledger.create_contact(d) for d in _items(data, "Contacts")]}
            case ("GET", "TaxRates"):
                return {"TaxRates": select(ledger.tax_rates.values(), where)}
            case ("PUT", "TaxRates"):
                return {"TaxRates": [ledger.create_tax_rate(d) for d in _items(data, "TaxRates")]}
            case ("GET", "Invoices"):
                return {"Invoices": self._invoices(where, params)}
            case ("PUT", "Invoices"):
                return {"Invoices": [ledger.create_document(d, "invoice", unitdp)
                                     for d in _items(data, "Invoices")]}
            case ("GET", "Invoices", iid):
                return {"Invoices": [ledger.invoice(iid)]}
            case ("POST", "Invoices", iid):
                return {"Invoices": [ledger.update_invoice(iid, d)
                                     for d in _items(data, "Invoices")]}
            case ("POST", "Invoices", iid, "Email"):
                ledger.email_invoice(iid)
                return None
            case ("GET", "CreditNotes"):
                return {"CreditNotes": select(ledger.credit_notes.values(), where)}
            case ("PUT", "CreditNotes"):
                return {"CreditNotes": [ledger.create_document(d, "credit_note", unitdp)
                                        for d in _items(data, "CreditNotes")]}
            case ("GET", "CreditNotes", nid):
                return {"CreditNotes": [ledger.credit_note(nid)]}
            case ("PUT", "CreditNotes", nid, "Allocations"):
                return {"Allocations": [ledger.allocate(nid, d)
                                        for d in _items(data, "Allocations")]}
        raise not_found()

    def _invoices(self, where: str | None, params: Mapping[str, str]) -> list[Obj]:
        found = select(self.ledger.invoices.values(), where)
        numbers = [n for n in params.get("InvoiceNumbers", "").split(",") if n]
        return [doc for doc in found if not numbers or doc["InvoiceNumber"] in numbers]

    def _envelope(self, result: Obj) -> Obj:
        return {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": "autoinvoice",
                "DateTimeUTC": ms_date(self._now()), **result}

    def _organisation(self) -> Obj:
        return {"OrganisationID": self.tenant_id, "Name": self.organisation,
                "BaseCurrency": self.ledger.base_currency, "OrganisationStatus": "ACTIVE",
                "CountryCode": self.country, "Version": self.version}

    def _connection(self) -> Obj:
        return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, self.tenant_id)),
                "tenantId": self.tenant_id, "tenantType": "ORGANISATION",
                "tenantName": self.organisation}

    # -- OAuth2 and faults --------------------------------------------------------------------

    def _oauth(self, path: str, params: dict[str, str], headers: Mapping[str, str],
               body: bytes) -> Response:
        if path == AUTHORIZE_PATH:
            status, target = self.oauth.authorize(params)
            if status == 302:
                return 302, {"Location": target}, b""
            return status, {"Content-Type": "text/plain"}, target.encode()
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        status, answer = self.oauth.token(form, headers.get("authorization"))
        return status, {"Content-Type": "application/json", "Cache-Control": "no-store"}, \
            json.dumps(answer).encode()

    def _fault(self, fault: Fault, request_id: str) -> Response:
        status, headers, payload = _problem(fault.status, _TITLES.get(fault.status, "Error"),
                                            f"Injected fault: HTTP {fault.status}")
        headers["Xero-Correlation-Id"] = request_id
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        if fault.status == 429:
            headers["X-Rate-Limit-Problem"] = "minute"
        return status, headers, payload

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # -- sandbox-only API ---------------------------------------------------------------------

    def record_payment(self, remote_id: str, amount_minor: int) -> Obj:
        """A client payment of ``amount_minor`` cents against an AUTHORISED invoice."""
        with self._lock:
            return _plain(self.ledger.record_payment(remote_id, Decimal(amount_minor) / 100))

    def emails_sent(self, remote_id: str) -> int:
        with self._lock:
            return self.ledger.emails.get(remote_id, 0)

    def get_invoice(self, remote_id: str) -> Obj:
        with self._lock:
            return _plain(self.ledger.invoice(remote_id))

    def find_invoices(self, where: str | None = None) -> list[Obj]:
        with self._lock:
            return [_plain(doc) for doc in select(self.ledger.invoices.values(), where)]

    def contacts(self) -> list[Obj]:
        with self._lock:
            return [_plain(c) for c in self.ledger.contacts.values()]

    def credit_notes(self) -> list[Obj]:
        with self._lock:
            return [_plain(n) for n in self.ledger.credit_notes.values()]


_TITLES = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout", 409: "Conflict"}


def _items(data: Any, collection: str) -> list[Obj]:
    """Xero takes ``{"Invoices": [...]}`` or one bare object."""
    items = data.get(collection) if isinstance(data, dict) and collection in data else [data]
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise XeroError(f"{collection} must be a list of objects")
    return items


def _get(store: Mapping[str, Obj], object_id: str) -> Obj:
    found = store.get(object_id)
    if found is None:
        raise not_found()
    return found


def _error(err: XeroError) -> Response:
    if err.status == 404:
        return 404, {"Content-Type": "text/plain"}, err.messages[0].encode()
    return err.status, {}, _dumps(err.body())


def _problem(status: int, title: str, detail: str) -> Response:
    body: Obj = {"Type": None, "Title": title, "Status": status, "Detail": detail,
            "Instance": str(uuid.uuid4()), "Extensions": {}}
    return status, {"Content-Type": "application/problem+json"}, json.dumps(body).encode()


def _dumps(obj: Any) -> bytes:
    """JSON with Decimal amounts as number literals (as Xero sends them)."""
    return _encode(obj).encode()


def _encode(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    return json.dumps(value)


def _plain(obj: Obj) -> Obj:
    """A deep copy as the API would return it (Decimals kept)."""
    parsed: Obj = json.loads(_dumps(obj), parse_float=Decimal)
    return parsed
