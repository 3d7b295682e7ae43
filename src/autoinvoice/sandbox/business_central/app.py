"""``BusinessCentralSandbox``: the HTTP face of the stand-in (OAuth2, faults, rate limit, auth,
OData routing, filters, ETags) and its sandbox-only helpers. The data lives in ``store``."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeAlias
from urllib.parse import parse_qsl

from autoinvoice.domain.money import Money
from autoinvoice.sandbox.business_central.companies import COMPANIES, DEMO_OPTIONS
from autoinvoice.sandbox.business_central.store import (
    BCError,
    Company,
    Obj,
    Store,
    not_found,
)
from autoinvoice.sandbox.faults import Fault, FaultKind, Faults, ResponseLost
from autoinvoice.sandbox.scoped_oauth import ScopedOAuthServer

Response: TypeAlias = tuple[int, dict[str, str], bytes]
API = re.compile(r"^/v2\.0/(?:(?P<tenant>[^/]+)/)?(?P<env>[^/]+)/api/v2\.0(?P<rest>/.*)?$")
SEGMENT = re.compile(r"^(?P<name>[A-Za-z.]+)(?:\((?P<key>[^)]*)\))?$")
CLAUSE = re.compile(r"^\s*(?P<field>\w+)\s+eq\s+'(?P<value>(?:[^']|'')*)'\s*$")
JSON_TYPE = "application/json; odata.metadata=minimal; odata.streaming=true"
DEFAULT_TENANT = "7a3b2c1d-0000-4000-8000-00000000b0c0"
DEFAULT_COMPANY = "f3a5738a-44e3-ea11-bb43-000d3a2feca1"
DEFAULT_DOMAIN = "cronus-demo.onmicrosoft.com"
OAUTH = re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/(?P<what>authorize|token)$")
#: the API's resource: a token for Business Central carries it as audience, and its scope
#: (``.default``: the app's configured permissions, or the delegated permission itself)
RESOURCE = "https://api.businesscentral.dynamics.com"
API_SCOPES = frozenset({f"{RESOURCE}/.default", f"{RESOURCE}/Financials.ReadWrite.All",
                        f"{RESOURCE}/user_impersonation"})
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
ACTIONS = ("Microsoft.NAV.post", "Microsoft.NAV.send", "Microsoft.NAV.postAndSend",
           "Microsoft.NAV.cancel")


class BusinessCentralSandbox:
    """In-memory Business Central company behind the v2.0 API; ``handle`` is the whole API."""

    def __init__(self, api_key: str | None = None, *, clock: Callable[[], float] = time.time,
                 tenant_id: str = DEFAULT_TENANT, tenant_domain: str = DEFAULT_DOMAIN,
                 environment: str = "production",
                 company_id: str = DEFAULT_COMPANY, country: str = "US",
                 currency: str | None = None, accounts: Mapping[str, str] | None = None,
                 other_countries: tuple[str, ...] = (), email_configured: bool = True,
                 rate_limit: int = 6000, rate_window: float = 300.0) -> None:
        self.api_key = api_key  # accepted as a pre-issued bearer token when given
        self.tenant_id, self.environment, self.company_id = tenant_id, environment, company_id
        self.tenant_domain = tenant_domain  # BC's URL takes the tenant's id or its domain
        self.rate_limit, self.rate_window = rate_limit, rate_window
        self.faults = Faults(default_method=None)
        # Entra names the tenant in the tokens' ``tid`` claim, never in extra fields
        self.oauth = ScopedOAuthServer(
            clock=clock, supported_scopes=API_SCOPES | OIDC_SCOPES,
            claims={"tid": tenant_id, "aud": RESOURCE, "iss":
                    f"https://sts.windows.net/{tenant_id}/"})
        self.oauth_paths = ("/organizations/oauth2/v2.0/authorize",
                            "/organizations/oauth2/v2.0/token")
        self._clock = clock
        self._lock = threading.RLock()
        self._calls: dict[str, deque[float]] = {}
        company = Company.of(COMPANIES[country], company_id, email_configured, currency)
        if accounts is not None:
            company.accounts = dict(accounts)
        self.stores: dict[str, Store] = {company_id: Store(company, clock)}
        self.store = self.stores[company_id]
        for other in other_countries:
            self.add_company(other)

    def add_company(self, country: str) -> str:
        """Sandbox-only: another company of the environment, in ``country``; its id."""
        with self._lock:
            key = f"{self.company_id[:-2]}{len(self.stores):02d}"
            self.stores[key] = Store(Company.of(COMPANIES[country], key), self._clock)
            return key

    def connection_values(self) -> dict[str, str]:
        """What a connection learns (by the token's ``tid`` claim, the configured environment
        and ``GET companies``): the Entra tenant, the environment and the company."""
        return {"tenant_id": self.tenant_id, "environment": self.environment,
                "company_id": self.company_id}

    def demo_choice(self, country: str) -> dict[str, str]:
        """Sandbox-only: the company a tenant of ``country`` picks at consent (made when the
        environment has none there), as ``connect_headless(choose=...)`` takes it."""
        found = next((k for k, s in self.stores.items() if s.company.country == country), None)
        return {"tenant_id": self.tenant_id, "company_id": found or self.add_company(country)}

    def demo_options(self, country: str) -> dict[str, object]:
        """Sandbox-only: the tax group and area mapping that fits the company in
        ``country`` (what its tenant writes under ``platform``)."""
        return {k: dict(v) for k, v in DEMO_OPTIONS.get(country, DEMO_OPTIONS["US"]).items()}

    # -- the HTTP entry point ----------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str],
               body: bytes) -> Response:
        method = method.upper()
        request_id = str(uuid.uuid4())
        lowered = {k.lower(): v for k, v in headers.items()}
        oauth = OAUTH.match(path)
        if oauth is not None:  # any tenant segment: organizations, common, an id, a domain
            return self._oauth(method, oauth.group("what"), query, lowered, body)
        fault = self.faults.take(method, path)
        if fault is not None and fault.kind is FaultKind.STATUS:
            return self._fault_response(fault, request_id)
        with self._lock:
            status, extra, payload = self._answer(method, path, query, lowered, body, request_id)
        if fault is not None:
            raise ResponseLost(f"{method} {path} processed as {request_id}; response lost")
        out = {"request-id": request_id, "ms-correlation-x": request_id, "OData-Version": "4.0",
               **extra}
        if payload:
            out["Content-Type"] = JSON_TYPE
        return status, out, payload

    def _answer(self, method: str, path: str, query: str, headers: Mapping[str, str],
                body: bytes, request_id: str) -> Response:
        try:
            user = self._authenticate(headers.get("authorization"))
            limited = self._rate_limited(user)
            if limited is not None:
                return limited
            status, result = self._route(method, path, dict(parse_qsl(query)), headers, body)
        except BCError as err:
            return err.status, {}, encode(err.body(request_id))
        return status, {}, (encode(result) if result is not None else b"")

    def _authenticate(self, authorization: str | None) -> str:
        if self.api_key is not None and authorization == f"Bearer {self.api_key}":
            return authorization
        scopes = self.oauth.scopes_of(authorization)
        if scopes is not None and scopes & API_SCOPES:
            return "oauth"  # one user: every token of the stand-in is the same principal
        if scopes is not None:  # a live token, but not for Business Central's API
            raise BCError(401, "Authentication_InvalidCredentials", "The credentials "
                          "provided are incorrect: the token has no scope of "
                          f"{RESOURCE} (e.g. {RESOURCE}/.default).")
        raise BCError(401, "Authentication_InvalidCredentials",
                      "The server has rejected the client credentials.")

    def _rate_limited(self, user: str) -> Response | None:
        now = self._clock()
        calls = self._calls.setdefault(user, deque())
        while calls and calls[0] <= now - self.rate_window:
            calls.popleft()
        if len(calls) >= self.rate_limit:
            wait = max(1, int(calls[0] + self.rate_window - now) + 1)
            error = BCError(429, "Application_TooManyRequests",
                            "Too Many Requests - the rate limit of "
                            f"{self.rate_limit} requests per {self.rate_window:g} s is exceeded.")
            return 429, {"Retry-After": str(wait)}, encode(error.body(str(uuid.uuid4())))
        calls.append(now)
        return None

    def _fault_response(self, fault: Fault, request_id: str) -> Response:
        code = {429: "Application_TooManyRequests", 409: "Request_EntityChanged",
                503: "Internal_ServiceUnavailable"}.get(fault.status, "Internal_ServerError"
                                                         if fault.status >= 500 else "BadRequest")
        error = BCError(fault.status, code, f"Injected fault: HTTP {fault.status}")
        headers = {"Content-Type": JSON_TYPE, "request-id": request_id}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        return fault.status, headers, encode(error.body(request_id))

    def _oauth(self, method: str, what: str, query: str, headers: Mapping[str, str],
               body: bytes) -> Response:
        if what == "authorize":
            status, text = self.oauth.authorize(dict(parse_qsl(query)))
            if status == 302:
                return 302, {"Location": text}, b""
            return status, {"Content-Type": "text/plain"}, text.encode()
        if method != "POST":
            return 405, {"Content-Type": "text/plain"}, b"use POST"
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        status, answer = self.oauth.token(form, headers.get("authorization"))
        return status, {"Content-Type": "application/json", "Cache-Control": "no-store"}, \
            json.dumps(answer).encode()

    # -- routing ------------------------------------------------------------------------------

    def _route(self, method: str, path: str, query: Mapping[str, str],
               headers: Mapping[str, str], body: bytes) -> tuple[int, Obj | None]:
        match = API.match(path)
        parts = [SEGMENT.match(s) for s in (match.group("rest") or "").strip("/").split("/")
                 if s] if match else [None]
        if match is None or not parts or None in parts:
            raise BCError(404, "BadRequest_NotFound", f"No HTTP resource was found that matches "
                          f"the request URI '{path}'.")
        tenant = match.group("tenant")
        if tenant is not None and tenant not in (self.tenant_id, self.tenant_domain):
            # BC's URL needs the tenant that issued the token: never "organizations"
            raise BCError(404, "BadRequest_NotFound", f"The tenant '{tenant}' in the request "
                          "URI is not the tenant of the access token (use its 'tid').")
        segments = [(m.group("name"), m.group("key")) for m in parts if m is not None]
        if segments[0] == ("companies", None) and len(segments) == 1 and method == "GET":
            return 200, {"value": [self._company(key) for key in self.stores]}
        if segments[0][0] != "companies" or segments[0][1] not in self.stores:
            raise not_found("Company", str(segments[0][1]))
        self.store = self.stores[str(segments[0][1])]
        return self._company_route(method, segments[1:], query, headers, body)

    def _company_route(self, method: str, segments: list[tuple[str, str | None]],
                       query: Mapping[str, str], headers: Mapping[str, str], body: bytes
                       ) -> tuple[int, Obj | None]:
        store = self.store
        match (method, *segments):
            case ("GET",):
                return 200, self._company(store.company.id)
            case ("GET", (("taxGroups" | "taxAreas") as name, None)):
                table = store.tax_groups if name == "taxGroups" else store.tax_areas
                return 200, listing(table.values(), query)
            case ("PATCH", ("customers", key)) if key:
                customer = store.get(store.customers, key, "Customer")
                check_etag(customer, headers, required=True)
                return 200, store.update_customer(customer, decode(body))
            case ("GET", ("customers", None)):
                return 200, listing(store.customers.values(), query)
            case ("POST", ("customers", None)):
                return 201, store.create_customer(decode(body))
            case ("GET", ("customers", key)) if key:
                return 200, store.get(store.customers, key, "Customer")
            case ("GET", (("salesInvoices" | "salesCreditMemos") as name, None)):
                return 200, listing(self._table(name).values(), query, lines=name)
            case ("POST", ("salesInvoices", None)):
                return 201, view(store.create_invoice(decode(body)), query, "salesInvoices")
            case ("POST", ("salesCreditMemos", None)):
                return 201, view(store.create_memo(decode(body)), query, "salesCreditMemos")
            case ("GET", ((("salesInvoices" | "salesCreditMemos") as name), key)) if key:
                return 200, view(store.get(self._table(name), key, name), query, name)
            case ("DELETE", ("salesInvoices", key)) if key:
                return self._delete(store.get(store.invoices, key, "Sales Header"), headers)
            case ("POST", (("salesInvoices" | "salesCreditMemos") as name, key),
                  (action, None)) if key and action in ACTIONS:
                doc = store.get(self._table(name), key, name)
                check_etag(doc, headers, required=False)
                self._act(doc, action, "invoice" if name == "salesInvoices" else "credit memo")
                return 204, None
        raise BCError(405 if method not in ("GET", "POST", "DELETE", "PATCH") else 400,
                      "BadRequest_MethodNotAllowed", f"'{method}' requests for this resource "
                      "are not supported by this stand-in.")

    def _table(self, name: str) -> dict[str, Obj]:
        return self.store.invoices if name == "salesInvoices" else self.store.memos

    def _act(self, doc: Obj, action: str, kind: str) -> None:
        verb = action.removeprefix("Microsoft.NAV.")
        if verb in ("post", "postAndSend"):
            self.store.post(doc, kind)
        if verb in ("send", "postAndSend"):
            self.store.send(doc, kind)
        if verb == "cancel":
            if kind != "invoice":
                raise BCError(400, "Application_DialogException", "Cancel a credit memo by "
                              "posting a new invoice; not supported by this stand-in.")
            self.store.cancel(doc)

    def _delete(self, doc: Obj, headers: Mapping[str, str]) -> tuple[int, Obj | None]:
        check_etag(doc, headers, required=True)
        if doc["status"] != "Draft":
            raise BCError(400, "Application_DialogException", f"You cannot delete the posted "
                          f"invoice {doc['number']}; cancel it instead.")
        del self.store.invoices[doc["id"]]
        return 204, None

    def _company(self, key: str) -> Obj:
        company = self.stores[key].company
        return {"id": key, "systemVersion": "24.0", "name": company.name[:30],
                "displayName": company.name, "businessProfileId": ""}

    def _holding(self, doc_id: str) -> Store:
        return next((s for s in self.stores.values()
                     if doc_id in s.invoices or doc_id in s.memos), self.stores[self.company_id])

    # -- sandbox-only API ---------------------------------------------------------------------

    def record_payment(self, remote_id: str, amount_minor: int) -> Obj:
        """A customer payment applied to the posted invoice ``remote_id`` (partial or full)."""
        with self._lock:
            store = self._holding(remote_id)
            invoice = store.get(store.invoices, remote_id, "Sales Invoice Header")
            amount = Money.from_minor(amount_minor, invoice["currencyCode"]).amount
            store.pay(invoice, amount)
            return public(invoice)

    def get_invoice(self, remote_id: str) -> Obj:
        with self._lock:
            store = self._holding(remote_id)
            return public(store.get(store.invoices, remote_id, "Sales Invoice Header"),
                          lines=True)

    def find_invoices(self, external_document_number: str) -> list[Obj]:
        with self._lock:
            return [public(x, lines=True) for s in self.stores.values()
                    for x in s.invoices.values()
                    if x["externalDocumentNumber"] == external_document_number]

    def credit_memos(self, invoice_id: str | None = None) -> list[Obj]:
        with self._lock:
            return [public(x, lines=True) for s in self.stores.values() for x in s.memos.values()
                    if invoice_id in (None, x.get("invoiceId"))]

    def count(self, kind: str) -> int:
        """How many ``customers``, ``salesInvoices`` or ``salesCreditMemos`` exist."""
        with self._lock:
            return sum(len({"customers": s.customers, "salesInvoices": s.invoices,
                            "salesCreditMemos": s.memos}[kind]) for s in self.stores.values())

    def emails_sent(self, remote_id: str) -> int:
        with self._lock:
            return self._holding(remote_id).emails.get(remote_id, 0)

    def customer(self, customer_id: str) -> Obj:
        """Sandbox-only: a customer as the API shows it (any company)."""
        with self._lock:
            return dict(next(s.customers[customer_id] for s in self.stores.values()
                             if customer_id in s.customers))


# ---------------------------------------------------------------------------------------------
# OData helpers


def check_etag(doc: Obj, headers: Mapping[str, str], *, required: bool) -> None:
    given = headers.get("if-match")
    if given is None and required:
        raise BCError(400, "BadRequest_InvalidToken", "Could not validate the client "
                      "concurrency token required by the service. Please provide a valid token "
                      "in the client request.")
    if given not in (None, "*", doc["@odata.etag"]):
        raise BCError(409, "Request_EntityChanged", "Another user has already changed the "
                      "record.")


def listing(rows: Any, query: Mapping[str, str], lines: str | None = None) -> Obj:
    clauses = parse_filter(query.get("$filter", ""))
    found = [row for row in rows
             if all(str(row.get(field, "")) == value for field, value in clauses)]
    top = query.get("$top")
    if top is not None:
        found = found[: int(top)]
    return {"value": [view(row, query, lines) for row in found]}


def parse_filter(text: str) -> list[tuple[str, str]]:
    if not text.strip():
        return []
    out = []
    for part in re.split(r"\s+and\s+", text):
        clause = CLAUSE.match(part)
        if clause is None:
            raise BCError(400, "BadRequest", f"Filter '{part}' is not supported: use field eq "
                          "'value' clauses joined by and.")
        out.append((clause.group("field"), clause.group("value").replace("''", "'")))
    return out


def view(doc: Obj, query: Mapping[str, str], collection: str | None) -> Obj:
    expand = query.get("$expand", "")
    wanted = {"salesInvoices": "salesInvoiceLines", "salesCreditMemos": "salesCreditMemoLines"}
    name = wanted.get(collection or "", "")
    return public(doc, lines=bool(name) and name in expand, name=name or "lines")


def public(doc: Obj, *, lines: bool = False, name: str = "lines") -> Obj:
    out = {k: v for k, v in doc.items() if k != "lines"}
    if lines and "lines" in doc:
        out[name] = [dict(x) for x in doc["lines"]]
    return out


def decode(body: bytes) -> Obj:
    try:
        value = json.loads(body or b"{}", parse_float=Decimal)
    except ValueError:
        raise BCError(400, "BadRequest", "The request body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise BCError(400, "BadRequest", "The request body must be a JSON object.")
    return value


def encode(value: Any) -> bytes:
    return _text(value).encode()


def _text(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_text(v) for v in value) + "]"
    return json.dumps(value)
