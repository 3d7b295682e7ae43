"""``QuickBooksSandbox``: the HTTP face of the stand-in (OAuth2, auth, throttling, faults,
``requestid`` replay, routing) and its sandbox-only helpers."""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, urlsplit

from autoinvoice.sandbox.faults import Fault, FaultKind, Faults, ResponseLost
from autoinvoice.sandbox.oauth import OAuthServer
from autoinvoice.sandbox.quickbooks.company import Company, Obj
from autoinvoice.sandbox.quickbooks.errors import QboError, invalid
from autoinvoice.sandbox.quickbooks.query import QueryError, dumps, loads, parse_query

Response: TypeAlias = tuple[int, dict[str, str], bytes]
AUTHORIZE_PATH = "/connect/oauth2"  # appcenter.intuit.com/connect/oauth2
TOKEN_PATH = "/oauth2/v1/tokens/bearer"  # oauth.platform.intuit.com/oauth2/v1/tokens/bearer
REFRESH_TOKEN_TTL = 100 * 24 * 3600  # x_refresh_token_expires_in: 100 days
ACCOUNTING = "com.intuit.quickbooks.accounting"
#: path prefix -> the scope a token needs there (developer.intuit.com .../authentication-and-
#: authorization/oauth-2.0: "com.intuit.quickbooks.accounting" for the Accounting API,
#: "com.intuit.quickbooks.payment" for the Payments API, which invoicing does not use)
SCOPES = {"/v3/company/": ACCOUNTING}
ENTITIES = {"customer": "Customer", "invoice": "Invoice", "creditmemo": "CreditMemo",
            "payment": "Payment", "item": "Item", "account": "Account", "taxcode": "TaxCode",
            "taxrate": "TaxRate", "taxagency": "TaxAgency"}


class QuickBooksSandbox:
    """The in-memory QuickBooks Online stand-in; ``handle`` is the whole API."""

    def __init__(self, api_key: str | None = None, *, realm_id: str = "9341453172718204",
                 clock: Callable[[], float] = time.time, requests_per_minute: int = 500,
                 client_id: str = "demo-client", client_secret: str = "demo-secret",
                 automated_sales_tax: bool = True) -> None:
        self.api_key, self.realm_id, self._clock = api_key, realm_id, clock
        self.requests_per_minute = requests_per_minute
        self.faults = Faults()
        self.oauth = OAuthServer(client_id=client_id, client_secret=client_secret,
                                 access_ttl=3600.0, refresh_ttl=float(REFRESH_TOKEN_TTL),
                                 redirect_values={"realmId": realm_id},
                                 extra={"x_refresh_token_expires_in": REFRESH_TOKEN_TTL},
                                 clock=clock)
        self.oauth_paths = (AUTHORIZE_PATH, TOKEN_PATH)
        self.company = Company(realm_id, self._now, automated_sales_tax)
        #: what each token was granted: the ``scope`` of the consent it came from (tokens the
        #: test helper ``oauth.issue()`` hands out stand for a consent to ``default_scopes``)
        self.default_scopes: frozenset[str] = frozenset({ACCOUNTING})
        self._granted: dict[str, frozenset[str]] = {}
        self._lock = threading.RLock()
        self._saved: dict[str, Response] = {}  # requestid -> the original 2xx answer
        self._recent: deque[float] = deque()
        self.requests: list[tuple[str, str]] = []  # (method, path?query) as received

    # -- the HTTP entry point ----------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str],
               body: bytes) -> Response:
        method = method.upper()
        tid = "1-" + secrets.token_hex(12)
        lowered = {k.lower(): v for k, v in headers.items()}
        if path in self.oauth_paths:
            return self._oauth(method, path, query, lowered, body, tid)
        self.requests.append((method, f"{path}?{query}" if query else path))
        fault = self.faults.take(method, path)
        if fault is not None and fault.kind is FaultKind.STATUS:
            return self._fault_response(fault, tid)
        with self._lock:
            response = self._api(method, path, query, lowered, body, tid)
        if fault is not None:
            raise ResponseLost(f"{method} {path} processed as {tid}; response lost")
        return response

    def _api(self, method: str, path: str, query: str, headers: Mapping[str, str],
             body: bytes, tid: str) -> Response:
        params = dict(parse_qsl(query, keep_blank_values=True))
        if not self._authorized(headers.get("authorization")):
            return self._answer(401, _auth_fault(self.company.stamp()), tid)
        if not self._in_scope(path, headers.get("authorization", "")):
            return self._answer(403, _scope_fault(self.company.stamp()), tid)
        throttled = self._throttle()
        if throttled is not None:
            return self._answer(429, _throttle_fault(self.company.stamp()), tid,
                                {"Retry-After": f"{throttled:g}"})
        request_id = params.get("requestid") if method == "POST" else None
        if request_id is not None:
            if len(request_id) > 50:
                return self._error(invalid("requestid is longer than 50 characters",
                                           "requestid"), tid)
            if request_id in self._saved:
                status, saved_headers, payload = self._saved[request_id]
                return status, {**saved_headers, "intuit_tid": tid}, payload
        try:
            result = self._route(method, path, params, headers, body)
        except (QboError, QueryError) as exc:
            return self._error(exc, tid)
        response = self._answer(200, {**result, "time": self.company.stamp()}, tid)
        if request_id is not None:
            self._saved[request_id] = response
        return response

    # -- routing ------------------------------------------------------------------------------

    def _route(self, method: str, path: str, params: Mapping[str, str],
               headers: Mapping[str, str], body: bytes) -> Obj:
        parts = path.strip("/").split("/")
        if parts[:2] != ["v3", "company"] or len(parts) < 4:
            raise QboError(404, "Unsupported Operation", f"Operation {path} is not supported",
                           "500", fault_type="ValidationFault")
        if parts[2] != self.realm_id:
            raise QboError(403, "ApplicationAuthorizationFailed", "message=ApplicationAuthor"
                           "izationFailed; errorCode=003100; statusCode=403", "003100",
                           fault_type="SECURITY")
        rest, company = parts[3:], self.company
        match (method, *rest):
            case ("GET", "query"):
                return self._query(params.get("query", ""))
            case ("POST", "query"):
                return self._query(body.decode("utf-8", "replace"))
            case ("GET", "preferences"):
                return {"Preferences": company.preferences}
            case ("GET", "companyinfo", realm):
                return {"CompanyInfo": {"Id": realm, "CompanyName": "Sandbox Company_US_1",
                                        "Country": company.address.get("Country", "US"),
                                        "CompanyAddr": company.address,
                                        "LegalAddr": company.address}}
            case ("GET", entity, obj_id) if entity in ENTITIES:
                return {ENTITIES[entity]: company.get(ENTITIES[entity], obj_id)}
            case ("POST", "customer"):
                return {"Customer": company.create_customer(_json(body))}
            case ("POST", "item"):
                return {"Item": company.create_item(_json(body))}
            case ("POST", "taxservice", "taxcode"):
                return company.create_tax_code(_json(body))
            case ("POST", "invoice") if params.get("operation") == "void":
                return {"Invoice": company.void_invoice(_json(body))}
            case ("POST", "invoice" | "creditmemo" as entity) if "operation" not in params:
                kind = ENTITIES[entity]
                return {kind: company.create_document(kind, _json(body))}
            case ("POST", "invoice" | "creditmemo" as entity, obj_id, "send"):
                return {ENTITIES[entity]: company.send(ENTITIES[entity], obj_id,
                                                       params.get("sendTo"))}
            case ("POST", "payment"):
                return {"Payment": company.create_payment(_json(body))}
        raise QboError(400, "Unsupported Operation", f"Operation {method} {'/'.join(rest)} is "
                       "not supported.", "500")

    def _query(self, text: str) -> Obj:
        query = parse_query(text)
        found = self.company.query(query)
        if not found:
            return {"QueryResponse": {}}
        return {"QueryResponse": {query.entity: found, "startPosition": query.start,
                                  "maxResults": len(found)}}

    # -- auth, throttling, OAuth ----------------------------------------------------------------

    def _authorized(self, authorization: str | None) -> bool:
        if self.api_key and authorization == f"Bearer {self.api_key}":
            return True
        return self.oauth.check(authorization)

    def _in_scope(self, path: str, authorization: str) -> bool:
        """The token carries the scope Intuit requires for this API (else 403, 003100)."""
        token = authorization.removeprefix("Bearer ")
        granted = self._granted.get(token, self.default_scopes)
        if self.api_key and token == self.api_key:
            granted = self.default_scopes
        return all(scope in granted for prefix, scope in SCOPES.items()
                   if path.startswith(prefix))

    def _throttle(self) -> float | None:
        """Seconds until the next request is allowed when the realm's per-minute quota is used
        up (500/min, as QuickBooks documents), else None."""
        now = self._clock()
        while self._recent and now - self._recent[0] >= 60:
            self._recent.popleft()
        if len(self._recent) >= self.requests_per_minute:
            return max(1.0, round(60 - (now - self._recent[0])))
        self._recent.append(now)
        return None

    def _oauth(self, method: str, path: str, query: str, headers: Mapping[str, str],
               body: bytes, tid: str) -> Response:
        if path == AUTHORIZE_PATH and method == "GET":
            params = dict(parse_qsl(query))
            status, target = self.oauth.authorize(params)
            if status == 302:
                code = dict(parse_qsl(urlsplit(target).query)).get("code", "")
                self._granted[code] = frozenset(params.get("scope", "").split())
                return 302, {"Location": target, "intuit_tid": tid}, b""
            return status, {"Content-Type": "text/plain", "intuit_tid": tid}, target.encode()
        if path == TOKEN_PATH and method == "POST":
            form = dict(parse_qsl(body.decode("utf-8", "replace")))
            status, answer = self.oauth.token(form, headers.get("authorization"))
            if status == 200:  # the new tokens carry the scopes of the grant they came from
                grant = form.get("code") or form.get("refresh_token") or ""
                scopes = self._granted.get(grant, self.default_scopes)
                for kind in ("access_token", "refresh_token"):
                    self._granted[str(answer[kind])] = scopes
            return status, {"Content-Type": "application/json", "intuit_tid": tid,
                            "Cache-Control": "no-store"}, dumps(answer)
        return 405, {"intuit_tid": tid}, b""

    # -- answers ------------------------------------------------------------------------------

    def _answer(self, status: int, body: Obj, tid: str,
                extra: Mapping[str, str] | None = None) -> Response:
        return status, {"Content-Type": "application/json;charset=UTF-8", "intuit_tid": tid,
                        **(extra or {})}, dumps(body)

    def _error(self, exc: QboError | QueryError, tid: str) -> Response:
        if isinstance(exc, QueryError):
            exc = QboError(400, exc.message, exc.detail, exc.code)
        return self._answer(exc.status, exc.body(self.company.stamp()), tid)

    def _fault_response(self, fault: Fault, tid: str) -> Response:
        now = self.company.stamp()
        if fault.status == 429:
            body = _throttle_fault(now)
        elif fault.status == 401:
            body = _auth_fault(now)
        elif fault.status >= 500:
            body = QboError(fault.status, "An application error has occurred while processing "
                            "your request", "System Failure Error: Injected fault", "10000",
                            fault_type="SystemFault").body(now)
        else:
            body = QboError(fault.status, "Injected fault", f"Injected fault: HTTP "
                            f"{fault.status}", "6000").body(now)
        extra = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        return self._answer(fault.status, body, tid, extra)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # -- sandbox-only API ---------------------------------------------------------------------

    def record_payment(self, remote_id: str, amount_minor: int) -> Obj:
        """A customer payment of ``amount_minor`` cents applied to invoice ``remote_id``."""
        with self._lock:
            invoice = self.company.get("Invoice", remote_id)
            amount = Decimal(amount_minor).scaleb(-2)
            return self.company.create_payment({
                "CustomerRef": invoice["CustomerRef"], "TotalAmt": amount,
                "Line": [{"Amount": amount,
                          "LinkedTxn": [{"TxnId": remote_id, "TxnType": "Invoice"}]}]})

    def emails_sent(self, remote_id: str) -> int:
        with self._lock:
            return len(self.company.emails.get(remote_id, []))

    def get_invoice(self, remote_id: str) -> Obj:
        with self._lock:
            return dict(loads(dumps(self.company.get("Invoice", remote_id))))

    def find(self, entity: str, **fields: Any) -> list[Obj]:
        """Copies of the objects of ``entity`` whose top-level fields equal ``fields``."""
        with self._lock:
            return [dict(loads(dumps(o))) for o in self.company.objects[entity].values()
                    if all(o.get(k) == v for k, v in fields.items())]

    def count(self, entity: str) -> int:
        with self._lock:
            return len(self.company.objects[entity])

    def add_vendor(self, display_name: str) -> Obj:
        with self._lock:
            return self.company.add_name("Vendor", display_name)

    def add_employee(self, display_name: str) -> Obj:
        with self._lock:
            return self.company.add_name("Employee", display_name)

    def issue(self, scopes: tuple[str, ...] = (ACCOUNTING,)) -> dict[str, Any]:
        """A token pair as if the user had just consented to ``scopes``."""
        pair = self.oauth.issue()
        with self._lock:
            for kind in ("access_token", "refresh_token"):
                self._granted[str(pair[kind])] = frozenset(scopes)
        return pair

    def token_values(self) -> dict[str, str]:
        """What a connection learns besides the tokens (the realm id from the redirect)."""
        return {"realm_id": self.realm_id}


def _json(body: bytes) -> Obj:
    try:
        parsed: Any = loads(body)
    except ValueError:
        raise QboError(400, "Request has invalid or unsupported property",
                       "Error parsing object: the request body is not valid JSON",
                       "2010") from None
    if not isinstance(parsed, dict):
        raise invalid("the request body must be a JSON object")
    return parsed


def _auth_fault(now: str) -> Obj:
    return {"warnings": None, "intuitObject": None, "fault": {"error": [{
        "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
        "detail": "Token expired or invalid", "code": "3200", "element": None}],
        "type": "AUTHENTICATION"}, "report": None, "queryResponse": None, "batchItemResponse":
        [], "attachableResponse": [], "syncErrorResponse": None, "requestId": None,
        "time": now, "status": None, "cdcresponse": []}


def _scope_fault(now: str) -> Obj:
    """403 for a token without the API's scope (IntuitDeveloper/QBOConceptsTutorial-PHP#13:
    "message=AuthorizationFailed; errorCode=003100; statusCode=403", "The access token does
    not have sufficient scope"; the JSON envelope as in intuit/oauth-jsclient#2)."""
    return {"warnings": None, "intuitObject": None, "fault": {"error": [{
        "message": "message=AuthorizationFailed; errorCode=003100; statusCode=403",
        "detail": "The access token does not have sufficient scope", "code": "3100",
        "element": None}], "type": "SERVICE"}, "report": None, "queryResponse": None,
        "batchItemResponse": [], "attachableResponse": [], "syncErrorResponse": None,
        "requestId": None, "time": now, "status": None, "cdcresponse": []}


def _throttle_fault(now: str) -> Obj:
    return {"Fault": {"Error": [{
        "Message": "message=ThrottleExceeded; errorCode=003001; statusCode=429",
        "Detail": "The request limit was reached.", "code": "003001"}],
        "type": "SERVICE"}, "time": now}
