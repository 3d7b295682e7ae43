"""The generic "sandbox" platform: autoinvoice's own small invoicing API, kept in memory.

The demo runs against it, and so do tenants whose platform is ``"sandbox"``. It behaves like a
careful real platform: it computes taxes and totals itself, replays idempotent requests, and can
be made to fail (``faults``) the way real networks and platforms fail.

API (JSON over HTTP, base path ``/api/v1``; amounts, quantities and rates are decimal *strings*)

  GET  /account                       → {id, name}; a cheap authenticated call (check_auth)
  POST /customers                     {external_id, name, email?, address?}            → 201
  GET  /customers?external_id=        → {"object": "list", "data": [customer, …]}
  GET  /customers/{id}
  POST /invoices                      → 201
       {customer_id, reference, revision, number?, currency, issue_date, due_date, po_number?,
        lines: [{description, quantity, unit_price, amount, tax_rate, tax?}]}
       Each line's tax is recomputed here as round-half-up(amount × tax_rate) to the currency's
       minor unit (a client's ``tax`` is ignored); subtotal, tax and total are summed from the
       lines. ``number`` defaults to ``SBX-00001``…. References are *not* unique, as on most
       platforms: a client that retries without a key, or without searching, creates twice.
  GET  /invoices?reference=&revision=&status=   → list, oldest first
  GET  /invoices/{id}                 → {id, number, status, currency, subtotal, tax, total,
                                         amount_paid, balance, paid_at, lines, payments, …}
  POST /invoices/{id}/issue           draft → issued; issuing again returns the invoice as is
  POST /invoices/{id}/payments        {amount, paid_at?} → 201 with the invoice; issued or
                                      partially_paid only, amount ≤ balance
  POST /invoices/{id}/void            draft or issued without payments → void
  POST /credit_notes                  → 201
       {invoice_id, number?, issue_date, reason?, lines: [same as an invoice's]}
       Against an issued, partially_paid or paid invoice; taxes recomputed as for invoices; the
       total may not exceed what is left to credit (the invoice total less earlier notes). The
       invoice's ``credited`` grows, its ``balance`` is total − paid − credited (never below
       0), and an issued invoice credited in full becomes ``credited``. ``number`` defaults to
       ``SBX-CN-00001``….
  GET  /credit_notes?invoice_id=&number=   → list, oldest first
  GET  /credit_notes/{id}             → {id, invoice_id, number, issue_date, reason, currency,
                                         lines, subtotal, tax, total, created_at}

  Statuses: draft | issued | partially_paid | paid | credited | void. ``paid_at`` is ISO 8601
  with offset.

Auth: with ``api_key`` set, every request needs ``Authorization: Bearer <api_key>`` (else 401).

Idempotency (as Stripe does it): every POST may carry ``Idempotency-Key`` (≤ 255 chars). The
first response is stored under the key unless the request failed validation (400) or
never ran (401, injected faults); the same key with the same method, path and JSON body gets that
response again with ``Idempotent-Replayed: true``; with anything else, 409
``idempotency_key_reused``. Requests are handled one at a time under one lock.

Errors: ``{"error": {"code", "message", "field"}}`` (``field`` may be null). Every response has
an ``X-Request-Id``. Codes: unauthorized (401), not_found (404), method_not_allowed (405),
invalid_json / invalid_request / invalid_amount / invalid_currency / no_such_customer /
unknown_field / missing_field (400), invalid_state / idempotency_key_reused (409),
rate_limited (429, ``Retry-After``), internal_error (500), service_unavailable (502-504).

Faults: ``sandbox.faults.inject(prefix, status=500|429, retry_after=None, times=1)`` answers
the next ``times`` matching requests with that error *without* processing them;
``sandbox.faults.lose_response(prefix, times=1)`` processes them and then loses the response
(``handle`` raises ``ResponseLost``; the ASGI adapter drops the connection, the mock transport
raises ``httpx.RemoteProtocolError``). ``prefix`` matches the start of the full path
(``/api/v1/invoices``); ``method=`` narrows either to one HTTP method (by default, here, they
match every method). The rules are ``sandbox.faults.Faults``, shared with the Stripe stand-in.

Modules: ``app`` (``GenericSandbox``: faults, auth, idempotency, routing), ``store`` (customers,
invoices, payments), ``validation`` (typed fields or a 400), ``adapters``.
"""

from autoinvoice.sandbox.faults import Faults, ResponseLost
from autoinvoice.sandbox.generic.adapters import asgi_app, mock_transport
from autoinvoice.sandbox.generic.app import ACCOUNT, API, Call, GenericSandbox, Handler, Response
from autoinvoice.sandbox.generic.validation import ApiError, Json

__all__ = [
    "ACCOUNT", "API", "ApiError", "Call", "Faults", "GenericSandbox", "Handler", "Json",
    "Response", "ResponseLost", "asgi_app", "mock_transport",
]
