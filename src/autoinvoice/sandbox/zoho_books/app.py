"""``ZohoBooksSandbox``: the HTTP face of the Zoho Books stand-in (faults, OAuth, auth, rate
limit, routing) and its sandbox-only helpers. The objects live in ``store``."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, urlencode

from autoinvoice.domain.money import Money
from autoinvoice.sandbox.faults import Fault, FaultKind, Faults, ResponseLost
from autoinvoice.sandbox.oauth import OAuthServer
from autoinvoice.sandbox.scopes import Rule, missing
from autoinvoice.sandbox.zoho_books.editions import edition_for
from autoinvoice.sandbox.zoho_books.store import Books, Obj, ZohoError, invalid

Response: TypeAlias = tuple[int, dict[str, str], bytes]
API = "/books/v3"
AUTHORIZE_PATH, TOKEN_PATH = "/oauth/v2/auth", "/oauth/v2/token"
ORGANIZATION_ID = "10234695"
#: ``ZohoBooks.<module>.<operation>``: each v3 page states its scope, GET = READ, POST =
#: CREATE (e-mail, void and applying credits included), PUT = UPDATE, DELETE = DELETE, ``ALL``
#: any (zoho.com/books/api/v3/oauth "Scopes"; /taxes "Create a tax": ZohoBooks.settings.CREATE);
#: the organisations list is a settings page.
_MODULES = {"organizations": "settings", "settings": "settings", "contacts": "contacts",
            "invoices": "invoices", "creditnotes": "creditnotes",
            "customerpayments": "customerpayments"}
_OPERATIONS = {"GET": "READ", "POST": "CREATE", "PUT": "UPDATE", "DELETE": "DELETE"}
SCOPE_RULES = tuple(
    Rule(method, rf"{API}/{segment}(/.*)?",
         (f"ZohoBooks.{module}.{operation}", f"ZohoBooks.{module}.ALL", "ZohoBooks.fullaccess.all"))
    for segment, module in _MODULES.items() for method, operation in _OPERATIONS.items())
#: what ``autoinvoice connect zoho_books`` asks for (``connectors.oauth``)
CONNECTOR_SCOPES = ("ZohoBooks.contacts.CREATE", "ZohoBooks.contacts.READ",
                    "ZohoBooks.settings.CREATE", "ZohoBooks.settings.READ",
                    "ZohoBooks.invoices.CREATE", "ZohoBooks.invoices.READ",
                    "ZohoBooks.invoices.DELETE", "ZohoBooks.creditnotes.CREATE",
                    "ZohoBooks.creditnotes.READ")
_FAULT_CODES = {429: (45, "You have made too many requests continuously. Please try again "
                           "after some time."),
                401: (57, "You are not authorized to perform this operation")}


class ZohoBooksSandbox:
    """The in-memory Zoho Books stand-in. ``handle`` is the whole API; ``adapters`` put it on
    a wire. ``api_key``, when given, is accepted as a pre-issued access token that never
    expires (preview, demo); tokens from ``oauth`` expire on its clock."""

    def __init__(self, api_key: str | None = None, *, clock: Callable[[], float] = time.time,
                 organization_id: str = ORGANIZATION_ID, country: str | None = None,
                 currency: str | None = None,
                 per_minute: int = 100, client_id: str = "demo-client",
                 client_secret: str = "demo-secret", api_domain: str | None = None,
                 accounts_server: str | None = None, location: str = "us") -> None:
        """A login of one data centre: ``api_domain`` is what the token answer names as its API
        host (e.g. ``https://www.zohoapis.eu``), ``accounts_server`` what the consent redirect
        names as its accounts server (``https://accounts.zoho.eu``) with ``location``; None:
        the host the request came to (a login of the data centre it asked). ``country`` is the
        first organisation's (``US``, ``GB``, ``DE``: ``editions``), which fixes its base
        currency, default taxes and VAT treatments; ``currency`` alone picks the country whose
        currency it is (a US organisation when neither is given)."""
        self.api_key, self.organization_id, self.per_minute = api_key, organization_id, \
            per_minute
        self.faults = Faults()
        self._clock = clock
        self._lock = threading.RLock()
        self.api_domain, self.accounts_server, self.location = api_domain, accounts_server, \
            location
        self.oauth = OAuthServer(client_id=client_id, client_secret=client_secret,
                                 clock=clock, default_scopes=CONNECTOR_SCOPES,
                                 scope_separator=",")
        self.requests: list[tuple[str, str]] = []
        self.oauth_paths = (AUTHORIZE_PATH, TOKEN_PATH)
        self.orgs: dict[str, Books] = {
            organization_id: Books(edition_for(country, currency), self._today)}
        self._calls: dict[str, deque[float]] = {organization_id: deque()}

    def connection_values(self) -> dict[str, str]:
        """What ``connect`` learns (``GET /organizations``; ``api_domain`` only when one was
        named, else the caller's base URL stands): tests and the demo that skip the consent
        use it."""
        domain = {"api_domain": self.api_domain} if self.api_domain else {}
        return {"organization_id": self.organization_id, **domain}

    @property
    def books(self) -> Books:
        """The first organisation's data."""
        return self.orgs[self.organization_id]

    def add_organization(self, organization_id: str, currency: str | None = None,
                         country: str | None = None) -> None:
        """Another organisation of the same Zoho login (each has its own country and base
        currency)."""
        with self._lock:
            self.orgs.setdefault(organization_id,
                                 Books(edition_for(country, currency), self._today))
            self._calls.setdefault(organization_id, deque())

    # -- the HTTP entry point ----------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str],
               body: bytes) -> Response:
        """One request in, one ``(status, headers, body)`` out; raises ``ResponseLost`` after
        processing when a lost response was injected."""
        method = method.upper()
        fault = self.faults.take(method, path)
        if fault is not None and fault.kind is FaultKind.STATUS:
            return self._fault_response(fault)
        lowered = {k.lower(): v for k, v in headers.items()}
        params = dict(parse_qsl(query, keep_blank_values=True))
        if path in self.oauth_paths:
            answer = self._oauth(method, path, params, lowered, body)
        else:
            with self._lock:
                answer = self._api(method, path, params, lowered, body)
        if fault is not None:
            raise ResponseLost(f"{method} {path} processed; response lost")
        return answer

    def _fault_response(self, fault: Fault) -> Response:
        code, message = _FAULT_CODES.get(fault.status, (1000, "Internal error"))
        headers = {"Content-Type": "application/json;charset=UTF-8"}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        return fault.status, headers, _json({"code": code, "message": message})

    def _oauth(self, method: str, path: str, params: dict[str, str],
               headers: Mapping[str, str], body: bytes) -> Response:
        if path == AUTHORIZE_PATH and method == "GET":
            status, where = self.oauth.authorize(params)
            if status == 302:  # Zoho names the login's data centre on the redirect
                server = self.accounts_server or _origin(headers.get("host", ""))
                where += "&" + urlencode({"location": self.location, "accounts-server": server})
                return 302, {"Location": where}, b""
            return status, {"Content-Type": "text/plain"}, where.encode()
        form = {**params, **dict(parse_qsl(body.decode("utf-8", "replace")))}
        status, answer = self.oauth.token(form, headers.get("authorization"))
        if status == 200:  # Zoho names the login's data centre in every token answer
            answer["api_domain"] = self.api_domain or _origin(headers.get("host", ""))
        return status, {"Content-Type": "application/json"}, json.dumps(answer).encode()

    def _api(self, method: str, path: str, params: dict[str, str],
             headers: Mapping[str, str], body: bytes) -> Response:
        self.requests.append((method, path))
        try:
            self._authenticate(headers.get("authorization"))
            self._authorize(method, path, headers.get("authorization"))
            if not path.startswith(API + "/"):
                raise ZohoError(404, 5, "Invalid URL Passed")
            parts = path[len(API) + 1:].strip("/").split("/")
            org = params.get("organization_id", "")
            if parts != ["organizations"] and org not in self.orgs:
                raise ZohoError(400, 6041, "This user is not associated with the CompanyID/"
                                f"CompanyName:{org}.")
            self._count_call(org or self.organization_id)
            status, payload = self._route(self.orgs.get(org, self.books), method, parts,
                                          params, _decode(headers, body))
        except ZohoError as err:
            status, payload = err.status, err.body()
        return status, {"Content-Type": "application/json;charset=UTF-8"}, _json(payload)

    def _authenticate(self, authorization: str | None) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme == "Zoho-oauthtoken" and token and (
                token == self.api_key or self.oauth.check(f"Bearer {token}")):
            return
        raise ZohoError(401, 57, "You are not authorized to perform this operation")

    def _authorize(self, method: str, path: str, authorization: str | None) -> None:
        """A token without the endpoint's scope: 401 code 57, as Zoho answers it."""
        token = (authorization or "").partition(" ")[2]
        if self.api_key and token == self.api_key:
            return
        granted = self.oauth.scopes_of(f"Bearer {token}") or frozenset()
        if missing(SCOPE_RULES, method, path, granted) is not None:
            raise ZohoError(401, 57, "You are not authorized to perform this operation")

    def _count_call(self, org: str) -> None:
        """``per_minute`` requests per organisation: one more in any 60 s is a 429."""
        now, calls = self._clock(), self._calls[org]
        while calls and now - calls[0] >= 60:
            calls.popleft()
        if len(calls) >= self.per_minute:
            raise ZohoError(429, 45, _FAULT_CODES[429][1])
        calls.append(now)

    # -- routing ------------------------------------------------------------------------------

    def _route(self, books: Books, method: str, parts: list[str], params: dict[str, str],
               body: Obj) -> tuple[int, Obj]:
        manual = params.get("ignore_auto_number_generation") == "true"
        match (method, *parts):
            case ("GET", "organizations"):
                return _ok(organizations=[
                    {"organization_id": oid, "name": f"Organisation {oid} (stand-in)",
                     "is_default_org": oid == self.organization_id,
                     "country_code": org.edition.country,
                     "currency_code": org.currency} for oid, org in self.orgs.items()])
            case ("GET", "contacts"):
                return _ok(contacts=books.list_contacts(params), page_context=_page())
            case ("POST", "contacts"):
                return _ok(201, "The contact has been added.",
                           contact=books.create_contact(body))
            case ("GET", "contacts", cid):
                if cid not in books.contacts:
                    raise ZohoError(404, 1002, "Contact does not exist.")
                return _ok(contact=books.contacts[cid])
            case ("GET", "settings", "taxes"):
                return _ok(taxes=list(books.taxes.values()), page_context=_page())
            case ("POST", "settings", "taxes"):
                return _ok(201, "The tax has been added.", tax=books.create_tax(body))
            case ("GET", "invoices"):
                return _ok(invoices=_list_invoices(books, params), page_context=_page())
            case ("POST", "invoices"):
                return _ok(201, "The invoice has been created.",
                           invoice=books.create_invoice(body, manual))
            case ("GET", "invoices", iid):
                return _ok(invoice=books.invoice(iid))
            case ("DELETE", "invoices", iid):
                books.delete(iid)
                return _ok(message="The invoice has been deleted.")
            case ("POST", "invoices", iid, "email"):
                books.email(iid, body)
                return _ok(message="Your invoice has been sent.")
            case ("POST", "invoices", iid, "status", "void"):
                books.void(iid)
                return _ok(message="Invoice status has been changed to Void.")
            case ("GET", "creditnotes"):
                return _ok(creditnotes=_list_creditnotes(books, params), page_context=_page())
            case ("POST", "creditnotes"):
                return _ok(201, "Credit Note has been created.",
                           creditnote=books.create_creditnote(body, manual))
            case ("GET", "creditnotes", nid):
                return _ok(creditnote=books.creditnote(nid))
            case ("POST", "creditnotes", nid, "invoices"):
                return _ok(201, "Credits have been applied to the invoice(s).",
                           apply_to_invoices={"invoices": books.apply_credit(nid, body)})
        if parts and parts[0] in ("contacts", "invoices", "creditnotes", "settings",
                                  "organizations"):
            raise ZohoError(405, 37, "The HTTP method is not allowed for the requested "
                            "resource")
        raise ZohoError(404, 5, "Invalid URL Passed")

    def _today(self) -> date:
        return datetime.fromtimestamp(self._clock(), UTC).date()

    # -- sandbox-only API ---------------------------------------------------------------------

    def _owner(self, remote_id: str) -> Books:
        return next((b for b in self.orgs.values() if remote_id in b.invoices), self.books)

    def record_payment(self, remote_id: str, amount_minor: int) -> Obj:
        """A customer payment of ``amount_minor`` against a sent invoice (partial or full)."""
        with self._lock:
            books = self._owner(remote_id)
            amount = Money.from_minor(amount_minor, books.currency).amount
            return dict(books.pay(remote_id, amount))

    def emails_sent(self, remote_id: str) -> int:
        with self._lock:
            return self._owner(remote_id).emails.get(remote_id, 0)

    def get_invoice(self, remote_id: str) -> Obj:
        with self._lock:
            return dict(self._owner(remote_id).invoice(remote_id))

    def find_invoices(self, **fields: str) -> list[Obj]:
        """Invoices (of every organisation) whose fields equal these values."""
        with self._lock:
            return [dict(i) for b in self.orgs.values() for i in b.invoices.values()
                    if all(i.get(k) == v for k, v in fields.items())]

    def count(self, kind: str) -> int:
        """How many ``contacts``, ``taxes``, ``invoices`` or ``creditnotes`` exist."""
        with self._lock:
            return sum(len(getattr(b, kind)) for b in self.orgs.values())


def _list_invoices(books: Books, params: Mapping[str, str]) -> list[Obj]:
    fields = ("invoice_number", "reference_number", "status", "customer_id")
    return [_summary(i) for i in books.invoices.values()
            if all(i[f] == params[f] for f in fields if f in params)]


def _list_creditnotes(books: Books, params: Mapping[str, str]) -> list[Obj]:
    fields = ("creditnote_number", "reference_number", "customer_id", "status")
    return [{k: v for k, v in n.items() if k not in ("line_items", "invoices")}
            for n in books.creditnotes.values()
            if all(n[f] == params[f] for f in fields if f in params)]


def _ok(status: int = 200, message: str = "success", **data: Any) -> tuple[int, Obj]:
    return status, {"code": 0, "message": message, **data}


def _page() -> Obj:
    return {"page": 1, "per_page": 200, "has_more_page": False}


def _summary(invoice: Obj) -> Obj:
    return {k: v for k, v in invoice.items() if k != "line_items"}


def _decode(headers: Mapping[str, str], body: bytes) -> Obj:
    """A POST body: ``JSONString=<json>`` form, or a raw JSON document; numbers as Decimal."""
    if not body:
        return {}
    text = body.decode("utf-8", "replace")
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = dict(parse_qsl(text, keep_blank_values=True))
        if "JSONString" not in form:
            raise invalid("JSONString")
        text = form["JSONString"]
    try:
        decoded = json.loads(text, parse_float=Decimal)
    except ValueError:
        raise invalid("JSONString") from None
    if not isinstance(decoded, dict):
        raise invalid("JSONString")
    return decoded


def _json(value: Any) -> bytes:
    return _text(value).encode()


def _text(value: Any) -> str:
    """JSON with Decimals as exact numbers (Zoho answers amounts as JSON numbers)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_text(v)}" for k, v in value.items()
                              ) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_text(v) for v in value) + "]"
    return json.dumps(value)


def _origin(host: str) -> str:
    """The origin a request reached: http on loopback (a served stand-in), else https."""
    local = host.split(":")[0] in ("127.0.0.1", "localhost", "")
    return f"{'http' if local else 'https'}://{host or '127.0.0.1'}"
