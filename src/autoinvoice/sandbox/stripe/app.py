"""``StripeSandbox``: the HTTP face of the stand-in (faults, auth, idempotency, routing) and
its sandbox-only helpers. The objects live in ``store``/``invoices``; events in ``webhooks``."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import TypeAlias
from urllib.parse import parse_qsl

import httpx

from autoinvoice.sandbox.faults import Fault, FaultKind, Faults, ResponseLost
from autoinvoice.sandbox.stripe.credit_notes import CreditNotes
from autoinvoice.sandbox.stripe.errors import StripeError
from autoinvoice.sandbox.stripe.forms import Clause, Obj, decode_pairs
from autoinvoice.sandbox.stripe.idempotency import Fingerprint, SavedResults
from autoinvoice.sandbox.stripe.invoices import ACTIONS, Invoices
from autoinvoice.sandbox.stripe.objects import API_VERSION, Ids, public
from autoinvoice.sandbox.stripe.store import (
    Store,
    customer_filter,
    invoice_filter,
    tax_rate_filter,
)
from autoinvoice.sandbox.stripe.webhooks import Webhooks

Response: TypeAlias = tuple[int, dict[str, str], bytes]


class StripeSandbox:
    """The in-memory Stripe stand-in. ``handle`` is the whole API; the adapters put it on a wire."""

    def __init__(self, api_key: str = "sk_test_sandbox", webhook_url: str | None = None,
                 webhook_secret: str | None = None, *, clock: Callable[[], float] = time.time,
                 hosted_base: str = "https://invoice.stripe.com/i/acct_1Sandbox") -> None:
        self.api_key, self.webhook_url, self.webhook_secret = api_key, webhook_url, webhook_secret
        self.faults = Faults()
        self._clock = clock
        self._lock = threading.RLock()
        self._ids = Ids()
        self._webhooks = Webhooks(lambda: (self.webhook_url, self.webhook_secret),
                                  lock=self._lock, now=self._now, new_suffix=self._ids.suffix)
        self.events: list[Obj] = self._webhooks.events
        self._store = Store(self._ids, self._now)
        self._invoices = Invoices(self._store, self._webhooks.emit, hosted_base)
        self._credit_notes = CreditNotes(self._store, self._webhooks.emit)
        self._saved = SavedResults(clock)
        self._basic = "Basic " + base64.b64encode(f"{api_key}:".encode()).decode()

    # -- the HTTP entry point ----------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str],
               body: bytes) -> Response:
        """One request in, one ``(status, headers, body)`` out; raises ``ResponseLost`` after
        processing when a lost response was injected."""
        method = method.upper()
        request_id = "req_" + self._ids.suffix()
        fault = self.faults.take(method, path)
        if fault is not None and fault.kind is FaultKind.STATUS:
            return self._fault_response(fault, request_id)
        lowered = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            status, extra, payload = self._dispatch(method, path, query, lowered, body,
                                                    request_id)
        response_headers = {"Content-Type": "application/json", "Request-Id": request_id,
                            "Stripe-Version": lowered.get("stripe-version", API_VERSION), **extra}
        if fault is not None:
            raise ResponseLost(f"{method} {path} processed as {request_id}; response lost")
        return status, response_headers, payload

    def _fault_response(self, fault: Fault, request_id: str) -> Response:
        code = {429: "rate_limit", 409: "lock_timeout"}.get(fault.status)
        kind = "api_error" if fault.status >= 500 else "invalid_request_error"
        error = StripeError(fault.status, f"Injected fault: HTTP {fault.status}", type=kind,
                            code=code)
        headers = {"Content-Type": "application/json", "Request-Id": request_id}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        return fault.status, headers, json.dumps(error.body(request_id)).encode()

    def _dispatch(self, method: str, path: str, query: str, headers: Mapping[str, str],
                  body: bytes, request_id: str) -> Response:
        key = headers.get("idempotency-key") if method == "POST" else None
        pairs = parse_qsl(body.decode("utf-8", "replace") if method == "POST" else query,
                          keep_blank_values=True)
        fingerprint: Fingerprint = (method, path, tuple(sorted(pairs)) if key else ())
        try:
            self._authenticate(headers.get("authorization"))
            if key is not None:
                replay = self._saved.replay(key, fingerprint)
                if replay is not None:
                    return replay
            result = self._route(method, path, decode_pairs(pairs), request_id, key)
            status, payload, saved = 200, json.dumps(result).encode(), True
        except StripeError as err:
            status, payload, saved = err.status, json.dumps(err.body(request_id)).encode(), \
                err.saved
        if key is not None and saved:
            self._saved.save(key, fingerprint, status, payload, request_id)
            return status, {"Idempotency-Key": key}, payload
        return status, {}, payload

    def _authenticate(self, authorization: str | None) -> None:
        if authorization in (f"Bearer {self.api_key}", self._basic):
            return
        if not authorization:
            raise StripeError(401, "You did not provide an API key. You need to provide your "
                              "API key in the Authorization header, using Bearer auth (e.g. "
                              "'Authorization: Bearer YOUR_SECRET_KEY').")
        given = authorization.partition(" ")[2]
        shown = given[:8] + "*" * max(0, len(given) - 12) + given[-4:]
        raise StripeError(401, f"Invalid API Key provided: {shown}")

    # -- routing ------------------------------------------------------------------------------

    def _route(self, method: str, path: str, params: Obj, request_id: str,
               key: str | None) -> Obj:
        parts = path.strip("/").split("/")
        if parts[0] != "v1" or len(parts) < 2:
            raise self._unrecognized(method, path)
        self._webhooks.context = {"id": request_id, "idempotency_key": key}
        handler = self._handler(method, parts[1:])
        if handler is None:
            raise self._unrecognized(method, path)
        return handler(params)

    def _handler(self, method: str, parts: list[str]) -> Callable[[Obj], Obj] | None:
        store, invoices = self._store, self._invoices
        match (method, *parts):
            case ("POST", "customers"):
                return store.create_customer
            case ("GET", "customers"):
                return lambda p: store.list_objects("customer", p, "customers",
                                                    customer_filter(p))
            case ("GET", "customers", "search"):
                return lambda p: store.search("customer", p, "/v1/customers/search")
            case ("GET", "customers", cid):
                return lambda p: store.retrieve("customer", cid, p)
            case ("POST", "tax_rates"):
                return store.create_tax_rate
            case ("GET", "tax_rates"):
                return lambda p: store.list_objects("tax_rate", p, "tax_rates",
                                                    tax_rate_filter(p))
            case ("GET", "tax_rates", tid):
                return lambda p: store.retrieve("tax_rate", tid, p)
            case ("POST", "invoiceitems"):
                return invoices.create_item
            case ("GET", "invoiceitems", iid):
                return lambda p: store.retrieve("invoiceitem", iid, p)
            case ("POST", "invoices"):
                return invoices.create_invoice
            case ("GET", "invoices"):
                return lambda p: store.list_objects("invoice", p, "invoices", invoice_filter(p))
            case ("GET", "invoices", "search"):
                return lambda p: store.search("invoice", p, "/v1/invoices/search")
            case ("GET", "invoices", iid):
                return lambda p: store.retrieve("invoice", iid, p)
            case ("GET", "invoices", iid, "lines"):
                return lambda p: invoices.lines(iid, p)
            case ("POST", "invoices", iid, action) if action in ACTIONS:
                return lambda p: ACTIONS[action](invoices, iid, p)
            case ("DELETE", "invoices", iid):
                return lambda p: invoices.delete(iid, p)
            case ("POST", "credit_notes"):
                return self._credit_notes.create
            case ("GET", "credit_notes"):
                return self._credit_notes.listing
            case ("GET", "credit_notes", nid):
                return lambda p: store.retrieve("credit_note", nid, p)
            case ("GET", "balance"):
                return store.balance
        return None

    @staticmethod
    def _unrecognized(method: str, path: str) -> StripeError:
        return StripeError(404, f"Unrecognized request URL ({method}: {path}). Please see "
                           "https://stripe.com/docs or we can help at https://support.stripe.com/.")

    def _now(self) -> int:
        return int(self._clock())

    # -- sandbox-only API ---------------------------------------------------------------------

    def record_payment(self, invoice_id: str, amount_minor: int) -> Obj:
        """A payment of ``amount_minor`` against an open invoice (partial or full)."""
        with self._lock:
            self._webhooks.context = {"id": None, "idempotency_key": None}
            return public(self._invoices.record_payment(invoice_id, amount_minor))

    def get_invoice(self, invoice_id: str) -> Obj:
        """A copy of the invoice as the API would return it."""
        with self._lock:
            return public(self._store.get("invoice", invoice_id))

    def find_invoices(self, **metadata: str) -> list[Obj]:
        """Copies of the invoices whose metadata has all these values, newest first."""
        with self._lock:
            ids = self._store.candidates("invoice", [Clause(False, f"metadata.{k}", ":", v)
                                                     for k, v in metadata.items()], any_of=False)
            return [public(self._store.objects["invoice"][i]) for i in ids]

    def credit_notes(self, invoice_id: str | None = None) -> list[Obj]:
        """Copies of the credit notes (of one invoice when given), newest first."""
        with self._lock:
            return [public(n) for n in reversed(self._store.objects["credit_note"].values())
                    if invoice_id in (None, n["invoice"])]

    def count(self, kind: str) -> int:
        """How many ``customer``, ``tax_rate``, ``invoice``, ``invoiceitem`` or
        ``credit_note`` objects exist."""
        with self._lock:
            return self._store.count(kind)

    def emails_sent(self, invoice_id: str) -> int:
        with self._lock:
            return self._invoices.emails_sent(invoice_id)

    # -- webhooks -----------------------------------------------------------------------------

    def deliver_webhooks(self, client: httpx.Client | None = None) -> int:
        """POST every queued event to ``webhook_url``; returns how many were accepted (2xx).
        Failed ones stay queued for the next call, as Stripe retries them."""
        return self._webhooks.deliver(client)

    def start_webhook_delivery(self, interval: float = 0.2,
                               client: httpx.Client | None = None) -> None:
        """Deliver queued events from a daemon thread every ``interval`` seconds (with
        ``client`` when given, which the caller then owns)."""
        self._webhooks.start(interval, client)

    def stop_webhook_delivery(self) -> None:
        self._webhooks.stop()
