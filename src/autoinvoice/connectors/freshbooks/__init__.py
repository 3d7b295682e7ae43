"""FreshBooks (Accounting API).

API docs checked: https://www.freshbooks.com/api/start (JSON over HTTPS at
https://api.freshbooks.com, accounting resources under ``/accounting/account/{accountId}/…``),
/api/authentication (OAuth2 authorization code; ``POST /auth/oauth/token``; bearer access
tokens, 12 h; refresh tokens rotate), /api/me_endpoint (``GET /auth/api/v1/users/me``:
``business_memberships[].business.account_id``), /api/clients, /api/invoices (create with
``{"invoice": {customerid, create_date, due_offset_days, currency_code, invoice_number,
po_number, notes, lines}}``; a line is ``type`` 0, ``name``, ``description``, ``qty``,
``unit_cost {amount, code}``, ``taxName1``/``taxAmount1`` a percentage; searches
``search[invoice_number]=``, ``search[email]=`` on clients; "send by email" is an update with
``action_email``, ``email_recipients``, ``email_include_pdf``), /api/credit_notes, /api/payments,
/api/pagination (``page``/``per_page``, at most 100). Cross-checked with FreshBooks' own SDKs
(``amcintosh/freshbooks-python-sdk``: resource paths ``users/clients``, ``invoices/invoices``,
``credit_notes/credit_notes``, ``payments/payments``; bodies wrapped in the singular name;
soft delete ``{"vis_state": 1}``; errors read from ``response.errors[0].errno/message``) and
with the unofficial OpenAPI file ``shared/vendor-specs/freshbooks/unofficial/openapi.yaml``
(WSO2's, a guide only: ``tests/connectors/test_freshbooks_spec.py`` validates every body we
send against it and lists where it is silent or wrong).

Auth: ``Authorization: Bearer <access token>`` from ``settings.tokens`` (``connectors.oauth``
keeps, refreshes and rotates them); a 401 refreshes once (``http.bearer_request``). The
account id is ``tokens.value("account_id")`` (learned at connect from ``GET
/auth/api/v1/users/me``, ``business_memberships[].business.account_id``: the token answer does
not carry it; freshbooks.com/api/me_endpoint), else the credential
``account_id``, else asked once from ``/auth/api/v1/users/me`` (refused when the user belongs
to several businesses: the tenant must name one). Until the shared OAuth layer is wired into
the composition root, a tenant without ``tokens`` may give a pre-issued access token as the
credential ``access_token`` (or ``api_key``, which the demo and ``preview`` pass): it cannot be
refreshed, so its 401 is an ``AuthError`` at once. Scopes (``connectors.oauth``):
``user:profile:read``, ``user:clients:read|write``, ``user:invoices:read|write`` and
``user:credit_notes:read|write`` (freshbooks.com/api/scopes lists ``credit_notes`` among the
objects); since October 2021 a call without its scope is a 403 naming the scopes given and
needed (freshbooks.com/api/how-to-find-the-right-scopes-for-your-app), an ``AuthError`` here.

Flow: client found by ``search[email]`` and our id kept in the client's admin ``note``
(``autoinvoice-customer:<id>``; FreshBooks clients have no metadata; an e-mail match without
our mark is still the customer), else created → invoice created (a draft) with our lines →
read back (``GET`` the invoice) for FreshBooks' own ``amount``. Delivery: the ``action_email``
update e-mails the invoice (PDF attached) to the client's address and marks it sent:
``delivers_itself``. Lines whose unit price has more digits than the currency (0.655/mi) go as
one unit of our rounded amount, the quantity and price in the description, so FreshBooks'
total equals ours. Covered lines stay, at 0.00, their coverage text in the description.

Idempotency: FreshBooks has none. ``create_invoice`` first searches
``search[invoice_number]=<our number>`` and recognises ours by the reference line
``autoinvoice-ref: job=… rev=… number=…`` at the top of ``notes``; only when nothing is found
does it POST. The POST is not repeated by the HTTP layer after a lost response (it is not
replay-safe): the error goes to the pipeline, whose retry searches again. Sending is the same:
an invoice already ``sent``/``viewed``/paid is not e-mailed again, and the PUT carrying
``action_email`` is not repeated blindly. Credit notes are found by ``credit_number`` before
one is created.

Corrections: a draft is deleted (``PUT {"invoice": {"vis_state": 1}}``: FreshBooks deletes by
setting ``vis_state`` 1); a sent, unpaid one likewise (FreshBooks has no "void" status; a
deleted invoice no longer counts in the books) and reported ``voided``; one with any payment
is refused (``PermanentError``: credit it). A delivered invoice is credited with a FreshBooks
credit note (``POST …/credit_notes/credit_notes``, ``{"credit_note": {clientid, create_date,
currency_code, credit_number, credit_type, notes, lines}}``) carrying the credited lines; it is
not applied to the invoice as a payment (that would be an operator's ``from_credit`` payment).

Rate limits: FreshBooks publishes none and answers 429 when a client goes too fast. We keep
each tenant under 5 requests/s (burst 10) and 4 requests in flight, shared by every connector
instance of the tenant (``limiter_for``/``slots_for``), or under
``platform.rate_limit_per_second``; a 429 is retried after ``Retry-After`` by the HTTP layer.

Errors: ``{"response": {"errors": [{errno, field, message, object, value}]}}`` (and the newer
``{"code", "message", "details": [{reason, metadata: {message, field}}]}``, and the auth
layer's ``{"error", "error_description"}``), mapped once in ``_map_error``; FreshBooks
documents no request-id header, ``X-Request-Id`` is read when present.

Tax: FreshBooks computes each line's tax from its ``taxAmount1`` percentage (inferred, not
published: per line, rounded half-up to the cent, then summed), so tenants on FreshBooks round
tax per line (``TAX_ROUNDING``).

Sandbox: FreshBooks has no sandbox host (test on a free account), or our local stand-in
``autoinvoice.sandbox.freshbooks`` (``mock_transport`` in tests, ``asgi_app`` under uvicorn).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from autoinvoice.connectors.base import (
    ConnectorSettings,
    IdempotencyKeys,
    RemoteCreditNote,
    RemoteCustomer,
    RemoteInvoice,
    RemoteStatus,
    StaticTokens,
    TokenSource,
)
from autoinvoice.connectors.errors import (
    AuthError,
    ConnectorError,
    NotFound,
    PermanentError,
    RateLimited,
    class_for_status,
)
from autoinvoice.connectors.freshbooks.payloads import (
    DELETE_BODY,
    PLATFORM,
    REFERENCE_MARK,
    Obj,
    client_body,
    credit_note_body,
    credit_reference,
    invoice_body,
    is_ours,
    money,
    object_id,
    paid_at,
    reference,
    remote_credit_note,
    remote_invoice,
    result,
    send_body,
    status_of,
)
from autoinvoice.connectors.http import HttpClient, bearer_request, limiter_for, slots_for
from autoinvoice.connectors.http import retry_after_seconds as retry_after
from autoinvoice.domain.invoice import Invoice
from autoinvoice.domain.job import Customer

DEFAULT_BASE_URL = "https://api.freshbooks.com"
RATE_PER_SECOND = 5.0  # not published by FreshBooks: a conservative default
BURST = 10
CONCURRENT = 4
PER_PAGE = 100
#: v3_status values of an invoice that has already gone to the client
DELIVERED = frozenset({"sent", "viewed", "outstanding", "overdue", "partial", "paid",
                       "auto-paid", "disputed", "resent"})
__all__ = ["DEFAULT_BASE_URL", "REFERENCE_MARK", "FreshBooksConnector", "reference"]


class FreshBooksConnector:
    platform = PLATFORM
    delivers_itself = True

    def __init__(self, settings: ConnectorSettings) -> None:
        self._settings = settings
        self._currency = settings.currency
        self._account: str | None = None
        key = f"{settings.tenant}:{PLATFORM}"
        rate = settings.rate_limit_per_second or RATE_PER_SECOND
        self._http = HttpClient(
            platform=PLATFORM,
            base_url=settings.base_url or DEFAULT_BASE_URL,
            default_headers={"Accept": "application/json"},
            error_mapper=_map_error,
            transport=settings.transport,
            recorder=settings.recorder,
            limiter=limiter_for(key, rate, max(BURST, int(rate)), timer=settings.timer),
            slots=slots_for(key, CONCURRENT),
            timer=settings.timer,
        )

    def close(self) -> None:
        self._http.close()

    # -- the Connector protocol ---------------------------------------------------------------

    def check_auth(self) -> None:
        self._get("/auth/api/v1/users/me")
        self._path("invoices/invoices")  # the account id resolves

    def ensure_customer(self, customer: Customer, keys: IdempotencyKeys) -> RemoteCustomer:
        found = self._find_client(customer)
        if found is not None:
            return RemoteCustomer(found)
        created = self._send("POST", self._path("users/clients"),
                             client_body(customer, self._currency))
        return RemoteCustomer(object_id(result(created, "client")))

    def create_invoice(self, invoice: Invoice, customer: RemoteCustomer,
                       keys: IdempotencyKeys) -> RemoteInvoice:
        found = self.find_by_reference(invoice)  # no idempotency keys on FreshBooks
        if found is not None:
            return found
        created = result(self._send("POST", self._path("invoices/invoices"),
                                    invoice_body(invoice, customer.id)), "invoice")
        return remote_invoice(self._invoice(object_id(created)), self._currency)

    def send_invoice(self, remote: RemoteInvoice, keys: IdempotencyKeys) -> RemoteInvoice:
        current = self._invoice(remote.id)  # ``remote`` may be stale
        status = status_of(current)
        if status == "deleted":
            raise PermanentError(f"invoice {remote.id} is deleted on FreshBooks",
                                 platform=PLATFORM, code="invoice_deleted")
        if status in DELIVERED:
            return remote_invoice(current, self._currency)
        recipients = self._recipients(str(current.get("customerid", "")))
        sent = self._send("PUT", self._path(f"invoices/invoices/{remote.id}"),
                          send_body(recipients))
        return remote_invoice(result(sent, "invoice"), self._currency)

    def fetch_status(self, remote_id: str) -> RemoteStatus:
        obj = self._invoice(remote_id)
        return RemoteStatus(
            status=str(obj.get("payment_status") or status_of(obj)),
            total=money(obj.get("amount"), self._currency, "amount"),
            amount_paid=money(obj.get("paid"), self._currency, "paid"),
            balance=money(obj.get("outstanding"), self._currency, "outstanding"),
            paid_at=paid_at(obj),
        )

    def find_by_reference(self, invoice: Invoice) -> RemoteInvoice | None:
        if not invoice.number:
            return None  # the pipeline numbers every invoice before it is created
        listed = self._list("invoices/invoices", "invoices",
                            {"search[invoice_number]": invoice.number})
        ours = [obj for obj in listed if obj.get("vis_state", 0) == 0
                and reference(invoice) in (obj.get("notes") or "")]
        return remote_invoice(ours[0], self._currency) if ours else None

    def void_invoice(self, remote_id: str, keys: IdempotencyKeys) -> str:
        try:
            obj = self._invoice(remote_id)
        except NotFound:
            return "already_void"
        status = status_of(obj)
        if status == "deleted":
            return "already_void"
        paid = money(obj.get("paid") or {"amount": "0"}, self._currency, "paid")
        if not paid.is_zero() or obj.get("payment_status") in ("paid", "partial", "auto-paid"):
            raise PermanentError(f"invoice {remote_id} has payments on FreshBooks and cannot "
                                 "be deleted; credit it instead", platform=PLATFORM,
                                 code="invoice_paid")
        self._send("PUT", self._path(f"invoices/invoices/{remote_id}"), DELETE_BODY,
                   replay_safe=True)
        return "deleted" if status == "draft" else "voided"

    def credit_invoice(self, remote_id: str, credit: Invoice, keys: IdempotencyKeys
                       ) -> RemoteCreditNote:
        invoice = self._invoice(remote_id)
        client_id = str(invoice.get("customerid", ""))
        found = self._find_credit_note(client_id, credit)
        if found is not None:
            return found
        created = self._send("POST", self._path("credit_notes/credit_notes"),
                             credit_note_body(credit, client_id))
        return remote_credit_note(result(created, "credit_note"), self._currency)

    # -- look-ups -----------------------------------------------------------------------------

    def _find_client(self, customer: Customer) -> str | None:
        search = ({"search[email]": customer.email} if customer.email
                  else {"search[organization_like]": customer.name})
        listed = [c for c in self._list("users/clients", "clients", search)
                  if c.get("vis_state", 0) == 0]
        ours = [c for c in listed if is_ours(c, customer)]
        chosen = ours or (listed if customer.email else [])
        return object_id(chosen[0]) if chosen else None

    def _recipients(self, client_id: str) -> list[str]:
        client = result(self._get(self._path(f"users/clients/{client_id}")), "client")
        email = client.get("email")
        if not email:
            raise PermanentError(f"FreshBooks client {client_id} has no e-mail address to "
                                 "send the invoice to", platform=PLATFORM, code="no_recipient")
        return [str(email)]

    def _find_credit_note(self, client_id: str, credit: Invoice) -> RemoteCreditNote | None:
        listed = self._list("credit_notes/credit_notes", "credit_notes",
                            {"search[clientid]": client_id})
        mark = credit_reference(credit)
        ours = [n for n in listed if n.get("vis_state", 0) == 0
                and (n.get("credit_number") == credit.number or mark in (n.get("notes") or ""))]
        return remote_credit_note(ours[0], self._currency) if ours else None

    def _invoice(self, remote_id: str) -> Obj:
        found: Obj = result(self._get(self._path(f"invoices/invoices/{remote_id}")), "invoice")
        return found

    def _list(self, resource: str, name: str, search: Mapping[str, str]) -> list[Obj]:
        items: list[Obj] = []
        page = 1
        while True:
            body = self._get(self._path(resource),
                             {**search, "page": str(page), "per_page": str(PER_PAGE)})
            found = result(body, name)
            items.extend(found if isinstance(found, list) else [])
            pages = body["response"]["result"].get("pages") or 1
            if page >= int(pages) or not found:
                return items
            page += 1

    # -- plumbing -----------------------------------------------------------------------------

    @property
    def _tokens(self) -> TokenSource:
        if self._settings.tokens is not None:
            return self._settings.tokens
        creds = self._settings.credentials
        name = next((n for n in ("access_token", "api_key") if n in creds), None)
        if name is None:
            raise AuthError("FreshBooks is not connected: no OAuth2 tokens (run "
                            "`autoinvoice connect freshbooks`) and no access_token credential",
                            platform=PLATFORM)
        return StaticTokens(self._settings.secret(name))

    def _path(self, resource: str) -> str:
        return f"/accounting/account/{self._account_id()}/{resource}"

    def _account_id(self) -> str:
        if self._account is None:
            given = self._tokens.value("account_id")
            if not given and "account_id" in self._settings.credentials:
                given = self._settings.secret("account_id")
            self._account = given or self._account_from_identity()
        return self._account

    def _account_from_identity(self) -> str:
        me = self._get("/auth/api/v1/users/me").get("response") or {}
        accounts = sorted({str(m["business"]["account_id"])
                           for m in me.get("business_memberships") or []
                           if (m.get("business") or {}).get("account_id")})
        if len(accounts) != 1:
            raise PermanentError(f"the FreshBooks user belongs to {len(accounts)} accounts "
                                 f"({', '.join(accounts) or 'none'}); set account_id",
                                 platform=PLATFORM, code="account_id")
        return accounts[0]

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> Obj:
        return _json(bearer_request(self._http, self._tokens, "GET", path, params=params))

    def _send(self, method: str, path: str, body: Obj, *, replay_safe: bool = False) -> Obj:
        return _json(bearer_request(self._http, self._tokens, method, path, json=body,
                                    replay_safe=replay_safe))


def _json(response: httpx.Response) -> Obj:
    try:
        body = response.json()
    except ValueError:
        raise PermanentError(f"FreshBooks answered HTTP {response.status_code} with a body "
                             "that is not JSON", platform=PLATFORM, code="bad_response") from None
    if not isinstance(body, dict):
        raise PermanentError("FreshBooks answered with JSON that is not an object",
                             platform=PLATFORM, code="bad_response")
    return body


# ---------------------------------------------------------------------------------------------
# FreshBooks errors -> ours


def _map_error(response: httpx.Response) -> ConnectorError:
    """The one place FreshBooks' error bodies are read."""
    status = response.status_code
    code, message, field = _error_fields(response)
    if field:
        message = f"{message} (field {field})"
    common: dict[str, Any] = {"platform": PLATFORM, "status": status, "code": code,
                              "request_id": response.headers.get("X-Request-Id")}
    if status == 429:
        return RateLimited(message, retry_after=retry_after(response), **common)
    return class_for_status(status)(message, **common)


def _error_fields(response: httpx.Response) -> tuple[str | None, str, str | None]:
    """(errno, message, field) from whichever error shape FreshBooks used."""
    fallback = f"HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return None, fallback, None
    if not isinstance(body, dict):
        return None, fallback, None
    errors = (body.get("response") or {}).get("errors") if isinstance(
        body.get("response"), dict) else None
    if isinstance(errors, dict):
        errors = [errors]
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        messages = "; ".join(str(e.get("message")) for e in errors
                             if isinstance(e, dict) and e.get("message"))
        return _text(first.get("errno")), messages or fallback, _text(first.get("field"))
    details = body.get("details")
    if isinstance(details, list) and details and isinstance(details[0], dict):
        meta = details[0].get("metadata") or {}
        return (_text(details[0].get("reason")), str(meta.get("message") or body.get("message")
                or fallback), _text(meta.get("field")))
    if "error" in body:  # the auth layer: {"error": "unauthenticated", "error_description"}
        return _text(body["error"]), str(body.get("error_description") or body["error"]), None
    return _text(body.get("errno")), str(body.get("message") or fallback), None


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
