"""``MyobSandbox``: the HTTP face of the MYOB stand-in (faults, OAuth2, headers, rate limits,
routing) and its sandbox-only helpers. The company file lives in ``store``."""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeAlias
from urllib.parse import parse_qsl

from autoinvoice.domain.money import exponent
from autoinvoice.sandbox.faults import Fault, FaultKind, Faults, ResponseLost
from autoinvoice.sandbox.myob.store import (
    DEFAULT_TAX_CODES,
    CompanyFile,
    MyobError,
    Obj,
    matches,
    not_found,
)
from autoinvoice.sandbox.oauth import OAuthServer
from autoinvoice.sandbox.scopes import Rule, missing

Response: TypeAlias = tuple[int, dict[str, str], bytes]
ROOT = "/accountright"
AUTHORIZE_PATH = "/oauth2/account/authorize"
TOKEN_PATH = "/oauth2/v1/authorize"  # MYOB's token endpoint really is named so
DEFAULT_FILE = "4d5e6f70-8192-4a3b-9c4d-5e6f708192a3"
CLIENT_ID = "myob-demo-key"
CLIENT_SECRET = "myob-demo-secret"
_CF = rf"{ROOT}/[^/]+"
#: Scopes per endpoint family, as MYOB's "Scopes" pages group them (developer.myob.com/api/
#: myob-business-api/api-overview/granular_data_scopes; sme-company-file, sme-contacts-customer,
#: sme-sales, sme-general-ledger); API keys made since 12 March 2025 get these only.
SCOPE_RULES = (
    Rule("*", rf"{ROOT}/?", ("sme-company-file",)),
    Rule("*", rf"{_CF}/Contact/Customer(/.*)?", ("sme-contacts-customer",)),
    Rule("*", rf"{_CF}/Sale/.*", ("sme-sales",)),
    Rule("*", rf"{_CF}/GeneralLedger/.*", ("sme-general-ledger",)),
)
#: what ``autoinvoice connect myob`` asks for (``connectors.oauth``)
CONNECTOR_SCOPES = ("sme-company-file", "sme-contacts-customer", "sme-sales",
                    "sme-general-ledger")


def _dumps(value: Any) -> bytes:
    """JSON with every ``Decimal`` written as a number with its exact digits (no float)."""
    found: list[str] = []

    def mark(item: Any) -> Any:
        if isinstance(item, Decimal):
            found.append(format(item, "f"))
            return f"\x00{len(found) - 1}\x00"
        if isinstance(item, Mapping):
            return {k: mark(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [mark(v) for v in item]
        return item

    text = json.dumps(mark(value), separators=(",", ":"))
    for index, digits in enumerate(found):
        text = text.replace(f'"\\u0000{index}\\u0000"', digits, 1)
    return text.encode()


class MyobSandbox:
    """The in-memory MYOB Business API stand-in. ``handle`` is the whole API."""

    def __init__(self, api_key: str | None = None, *, clock: Callable[[], float] = time.time,
                 company_file_id: str = DEFAULT_FILE,
                 rate_limit_per_second: int | None = None,
                 rate_limit_per_day: int | None = None,
                 tax_codes: tuple[tuple[str, str, str], ...] = DEFAULT_TAX_CODES,
                 access_ttl: float = 1200.0) -> None:
        #: a pre-issued bearer token accepted for ever (demo, ``sandbox serve``); optional
        self.api_key = api_key
        self.company_file_id = company_file_id
        self.rate_limit_per_second = rate_limit_per_second
        self.rate_limit_per_day = rate_limit_per_day
        self.faults = Faults()
        self.oauth = OAuthServer(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, access_ttl=access_ttl,
            redirect_values={"businessId": company_file_id}, clock=clock,
            default_scopes=CONNECTOR_SCOPES)
        self.oauth_paths = (AUTHORIZE_PATH, TOKEN_PATH)
        self._clock = clock
        self._lock = threading.RLock()
        self.file = CompanyFile(f"{ROOT}/{company_file_id}", self._today, tax_codes)
        self._second: deque[float] = deque()
        self._day: tuple[date, int] = (self._today(), 0)
        self._request_no = 0
        self.requests: list[tuple[str, str]] = []  # (method, path) of every API request

    def connection_values(self) -> dict[str, str]:
        """What ``connect`` learns (the redirect's ``businessId``): tests and the demo that
        skip the consent use it."""
        return {"company_file_uri": self.file.uri}

    def _today(self) -> date:
        return datetime.fromtimestamp(self._clock(), UTC).date()

    # -- the HTTP entry point ----------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str],
               body: bytes) -> Response:
        """One request in, one ``(status, headers, body)`` out; raises ``ResponseLost`` after
        processing when a lost response was injected."""
        method = method.upper()
        lowered = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            self._request_no += 1
            request_id = f"myob-req-{self._request_no:06d}"
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
        name = {429: "RateLimitError", 503: "ServiceUnavailable", 504: "GatewayTimeout"}.get(
            fault.status, "InternalServerError" if fault.status >= 500 else "InjectedFault")
        headers = {"Content-Type": "application/json", "X-Request-Id": request_id}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        error = MyobError(fault.status, name, f"Injected fault: HTTP {fault.status}")
        return fault.status, headers, _dumps(error.body())

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
        json_type = {"Content-Type": "application/json; charset=utf-8"}
        try:
            self._authenticate(method, path, headers)
            self._throttle()
            status, result, location = self._route(method, path, dict(parse_qsl(query)),
                                                   body, headers.get("host", "localhost"))
        except MyobError as err:
            extra = {"Retry-After": str(err.retry_after)} if err.retry_after else {}
            return err.status, {**json_type, **extra}, _dumps(err.body())
        out = {"Location": location} if location else {}
        if result is None:
            return status, out, b""
        return status, {**json_type, **out}, _dumps(result)

    def _authenticate(self, method: str, path: str, headers: Mapping[str, str]) -> None:
        authorization = headers.get("authorization")
        if not (self.api_key and authorization == f"Bearer {self.api_key}") and \
                not self.oauth.check(authorization):
            raise MyobError(401, "OAuthTokenIsInvalid",
                            "The supplied OAuth token (Bearer) is not valid",
                            "Header: Authorization")
        granted = self.oauth.scopes_of(authorization) or frozenset()
        needed = None if self.api_key and authorization == f"Bearer {self.api_key}" else \
            missing(SCOPE_RULES, method, path, granted)
        if needed is not None:
            raise MyobError(403, "AccessDenied", "The access token was not granted the scope "
                            "this endpoint needs", f"Scope: {' '.join(needed)}")
        if headers.get("x-myobapi-key") != self.oauth.client_id:
            raise MyobError(403, "InvalidApiKey", "The API key is missing or not valid",
                            "Header: x-myobapi-key")
        if headers.get("x-myobapi-version", "").lower() != "v2":
            raise MyobError(400, "UnsupportedVersion", "This stand-in speaks v2 only",
                            "Header: x-myobapi-version")

    def _throttle(self) -> None:
        today = self._today()
        day, count = self._day if self._day[0] == today else (today, 0)
        if self.rate_limit_per_day is not None and count >= self.rate_limit_per_day:
            raise MyobError(403, "RateLimitError", "API key has exceeded the daily rate limit",
                            "Header: x-myobapi-key")
        self._day = (day, count + 1)
        if not self.rate_limit_per_second:
            return
        now = self._clock()
        while self._second and now - self._second[0] >= 1:
            self._second.popleft()
        if len(self._second) >= self.rate_limit_per_second:
            wait = max(1, math.ceil(1 - (now - self._second[0])))
            raise MyobError(429, "RateLimitError", "API key has exceeded the per-second "
                            "rate limit", "Header: x-myobapi-key", retry_after=wait)
        self._second.append(now)

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes, host: str
               ) -> tuple[int, Any, str | None]:
        if path.rstrip("/") == ROOT and method == "GET":
            return 200, [{"Id": self.company_file_id, "Name": "Stand-in Compressors",
                          "ProductVersion": "2024.1", "Country": "AU",
                          "Uri": f"http://{host}{self.file.uri}"}], None
        prefix = self.file.uri + "/"
        if not path.startswith(prefix):
            raise not_found("Resource", path)
        parts = tuple(path[len(prefix):].strip("/").split("/"))
        f = self.file
        match (method, *parts):
            case ("GET", "GeneralLedger", "Account"):
                return 200, self._page(list(f.accounts.values()), query), None
            case ("GET", "GeneralLedger", "TaxCode"):
                return 200, self._page(list(f.tax_codes.values()), query), None
            case ("GET", "Contact", "Customer"):
                return 200, self._page(list(f.customers.values()), query), None
            case ("GET", "Contact", "Customer", uid):
                return 200, self._one(f.customers, uid, "Customer"), None
            case ("POST", "Contact", "Customer"):
                made = f.create_customer(self._json(body))
                return 201, None, self._absolute(host, made["URI"])
            case ("GET", "Sale", "Invoice", "Service"):
                return 200, self._page(list(f.sales.values()), query), None
            case ("POST", "Sale", "Invoice", "Service"):
                made = f.create_service_invoice(self._json(body))
                return 201, None, self._absolute(host, made["URI"])
            case ("GET", "Sale", "Invoice", "Service", uid):
                return 200, f.sale(uid), None
            case ("DELETE", "Sale", "Invoice", "Service", uid):
                f.delete_sale(uid)
                return 200, None, None
        raise not_found("Resource", f"{method} {path}")

    @staticmethod
    def _absolute(host: str, uri: str) -> str:
        return f"http://{host}{uri}"

    @staticmethod
    def _json(body: bytes) -> Obj:
        try:
            data = json.loads(body or b"{}", parse_float=Decimal)
        except ValueError:
            raise MyobError(400, "InvalidJson", "The request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise MyobError(400, "InvalidJson", "The request body must be a JSON object")
        return data

    @staticmethod
    def _one(objects: Mapping[str, Obj], uid: str, kind: str) -> Obj:
        if uid not in objects:
            raise not_found(kind, uid)
        return objects[uid]

    @staticmethod
    def _page(found: list[Obj], query: Mapping[str, str]) -> Obj:
        """MYOB's list envelope: ``Items``, ``NextPageLink``, ``Count`` (``$top`` ≤ 1000)."""
        chosen = [obj for obj in found if matches(obj, query.get("$filter"))]
        try:
            top = max(1, min(1000, int(query.get("$top", "400"))))
            skip = max(0, int(query.get("$skip", "0")))
        except ValueError:
            raise MyobError(400, "InvalidQuery", "$top and $skip must be numbers") from None
        more = skip + top < len(chosen)
        return {"Items": chosen[skip:skip + top],
                "NextPageLink": f"?$top={top}&$skip={skip + top}" if more else None,
                "Count": len(chosen)}

    # -- sandbox-only API ---------------------------------------------------------------------

    def record_payment(self, remote_id: str, amount_minor: int, currency: str = "USD") -> Obj:
        """A customer payment of ``amount_minor`` against the sale (partial or full)."""
        with self._lock:
            amount = Decimal(amount_minor).scaleb(-exponent(currency))
            return dict(self.file.record_payment(remote_id, amount))

    def get_invoice(self, remote_id: str) -> Obj:
        with self._lock:
            return dict(self.file.sale(remote_id))

    def invoices(self) -> list[Obj]:
        with self._lock:
            return [dict(s) for s in self.file.sales.values()]

    def customers(self) -> list[Obj]:
        with self._lock:
            return [dict(c) for c in self.file.customers.values()]
