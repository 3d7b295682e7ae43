"""The stand-in's events: every one kept in ``events``; with a URL and a secret, also queued
and POSTed, signed ``Stripe-Signature: t=…,v1=…``, by ``deliver`` (synchronous, for tests) or
by a background thread from ``start``. Failed deliveries stay queued, as Stripe retries them."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import deque
from collections.abc import Callable

import httpx

from autoinvoice.sandbox.stripe.forms import Obj
from autoinvoice.sandbox.stripe.objects import API_VERSION, snapshot


def stripe_signature(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header value: ``t=…,v1=HMAC-SHA256(secret, f"{t}.{body}")``."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


Endpoint = Callable[[], tuple[str | None, str | None]]


class Webhooks:
    """Events and their delivery. ``endpoint`` gives the URL and the secret, read at each use
    (the sandbox's attributes); ``lock`` is the sandbox's: events are emitted under it."""

    def __init__(self, endpoint: Endpoint, *, lock: threading.RLock, now: Callable[[], int],
                 new_suffix: Callable[[], str]) -> None:
        self._endpoint = endpoint
        self.events: list[Obj] = []
        #: The ``request`` of the events emitted next: the API request that caused them.
        self.context: dict[str, str | None] = {"id": None, "idempotency_key": None}
        self._lock, self._now, self._new_suffix = lock, now, new_suffix
        self._outbox: deque[Obj] = deque()
        self._delivery: tuple[threading.Thread, threading.Event] | None = None

    def emit(self, event_type: str, invoice: Obj) -> None:
        url, secret = self._endpoint()
        event = {"id": "evt_" + self._new_suffix(), "object": "event",
                 "api_version": API_VERSION, "created": self._now(),
                 "data": {"object": snapshot(invoice)}, "livemode": False,
                 "pending_webhooks": 1 if url else 0,
                 "request": dict(self.context), "type": event_type}
        self.events.append(event)
        if url and secret:
            self._outbox.append(event)

    def deliver(self, client: httpx.Client | None = None) -> int:
        """POST every queued event to the URL; returns how many were accepted (2xx)."""
        url, secret = self._endpoint()
        if not (url and secret):
            return 0
        with self._lock:
            pending, self._outbox = list(self._outbox), deque()
        owned = client is None
        http = client or httpx.Client(timeout=5.0)
        try:
            failed = [event for event in pending if not self._post(http, event)]
        finally:
            if owned:
                http.close()
        with self._lock:
            self._outbox.extendleft(reversed(failed))
        return len(pending) - len(failed)

    def _post(self, http: httpx.Client, event: Obj) -> bool:
        url, secret = self._endpoint()
        body = json.dumps(event).encode()
        signature = stripe_signature(body, secret or "", self._now())
        try:
            response = http.post(url or "", content=body, headers={
                "Content-Type": "application/json", "Stripe-Signature": signature})
        except httpx.HTTPError:
            return False
        return response.is_success

    def start(self, interval: float = 0.2, client: httpx.Client | None = None) -> None:
        """Deliver queued events from a daemon thread every ``interval`` seconds (with
        ``client`` when given, which the caller then owns)."""
        if self._delivery is not None:
            return
        stop = threading.Event()

        def loop() -> None:
            http = client or httpx.Client(timeout=5.0)
            try:
                while not stop.wait(interval):
                    self.deliver(http)
            finally:
                if client is None:
                    http.close()

        thread = threading.Thread(target=loop, name="stripe-sandbox-webhooks", daemon=True)
        self._delivery = (thread, stop)
        thread.start()

    def stop(self) -> None:
        if self._delivery is not None:
            thread, stop = self._delivery
            stop.set()
            thread.join(timeout=5)
            self._delivery = None
