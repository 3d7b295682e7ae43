"""A local Stripe stand-in: the slice of the Stripe API that invoicing uses, in memory.

Shapes follow Stripe's API version 2023-08-16 (the fixtures in ``stripe/openapi``), so the real
connector runs against it unchanged. What it implements:

- ``/v1/customers`` create, retrieve, list (``email``), search; ``/v1/tax_rates`` create,
  retrieve, list; ``/v1/invoiceitems`` create (attached to a draft invoice, or pending);
  ``/v1/invoices`` create, retrieve, list, search, ``lines``, ``finalize``, ``send``, ``pay``
  (``paid_out_of_band=true``), ``void`` (open or uncollectible), ``DELETE`` (drafts only);
  ``/v1/credit_notes`` create, list (``invoice``, ``customer``), retrieve (see
  ``credit_notes``: pre-payment on open invoices, post-payment on paid ones with
  ``out_of_band_amount``/``credit_amount`` summing to the total); ``/v1/balance``. Unknown
  parameters are rejected the way Stripe rejects them (``Received unknown parameter``).
- Totals recomputed from the items: tax per line is ``round_half_up(amount * percentage/100)``
  in minor units; ``subtotal``, ``tax``, ``total``, ``amount_due/paid/remaining``.
- Search: ``field:'value'`` clauses joined by spaces, ``AND`` or ``OR``; ``metadata['k']``,
  quotes escaped with a backslash; ``-`` negates; ``>``/``<`` on numbers. Unlike Stripe's,
  this index is consistent at once (Stripe's takes up to a minute).
- Bearer (or Basic) auth against ``api_key``; a ``Request-Id`` on every response; Stripe's
  error body ``{"error": {type, code, message, param}}``.
- Idempotency as docs.stripe.com/api/idempotent_requests describes: a POST's result is saved
  under its ``Idempotency-Key`` once execution began; the same key with the same parameters
  replays it (``Idempotent-Replayed: true``, ``Original-Request``), with other parameters or
  another endpoint it is a 400 ``idempotency_error``; keys are forgotten after 24 h
  (``clock`` is injectable). Parameter-validation errors are not saved.
- Faults (``sandbox.faults``, see ``sandbox.faults``): injected statuses are answered before
  processing; lost responses are processed, then ``ResponseLost`` is raised to the adapter.
- Webhooks (when ``webhook_url`` and ``webhook_secret`` are set): ``invoice.finalized``,
  ``invoice.sent``, ``invoice.paid``, ``invoice.payment_succeeded``, ``invoice.voided`` events
  are queued and POSTed, signed ``Stripe-Signature: t=…,v1=…``, by ``deliver_webhooks()``
  (synchronous, for tests) or by a background thread from ``start_webhook_delivery()``.
  Every event is also kept in ``sandbox.events``.

Sandbox-only helpers: ``record_payment(invoice_id, amount_minor)`` (a partial or full payment),
``get_invoice(id)``, ``find_invoices(**metadata)``, ``credit_notes(invoice_id=None)``,
``count(kind)``, ``emails_sent(invoice_id)``.

Adapters: ``mock_transport(sandbox)`` (an ``httpx.MockTransport``; a lost response raises
``httpx.RemoteProtocolError``) and ``asgi_app(sandbox)`` (raw ASGI, served by uvicorn through
``sandbox.server``; a lost response closes the connection before any byte is written).

Modules: ``app`` (``StripeSandbox``: faults, auth, idempotency, routing), ``store`` (objects,
lists, search, customers, tax rates), ``invoices`` (invoices, items, totals, actions),
``credit_notes``, ``objects`` (the shapes), ``forms`` (params and search queries),
``idempotency``, ``webhooks``, ``errors``, ``adapters``.
"""

from autoinvoice.sandbox.faults import Fault, FaultKind, Faults, ResponseLost
from autoinvoice.sandbox.stripe.adapters import asgi_app, mock_transport
from autoinvoice.sandbox.stripe.app import Response, StripeSandbox
from autoinvoice.sandbox.stripe.errors import StripeError
from autoinvoice.sandbox.stripe.forms import Clause, Obj, decode_form, decode_pairs, parse_query
from autoinvoice.sandbox.stripe.idempotency import KEY_TTL, Fingerprint
from autoinvoice.sandbox.stripe.objects import API_VERSION
from autoinvoice.sandbox.stripe.webhooks import stripe_signature

__all__ = [
    "API_VERSION", "KEY_TTL", "Clause", "Fault", "FaultKind", "Faults", "Fingerprint", "Obj",
    "Response", "ResponseLost", "StripeError", "StripeSandbox", "asgi_app", "decode_form",
    "decode_pairs", "mock_transport", "parse_query", "stripe_signature",
]
