"""A local FreshBooks stand-in: the slice of the FreshBooks Accounting API that invoicing uses,
in memory, with FreshBooks' paths, bearer auth, payload shapes and error bodies, so the real
connector runs against it unchanged.

- OAuth2 (``core.oauth``, an ``OAuthServer``; ``core.oauth_paths``): ``GET /oauth/authorize``
  (auth.freshbooks.com's page: consent at once, 302 to the redirect with ``code``) and
  ``POST /auth/oauth/token`` (JSON body as FreshBooks documents, or a form as its SDKs send;
  ``authorization_code`` and ``refresh_token`` grants, rotating refresh tokens, 12 h access
  tokens, ``created_at`` in the answer). ``api_key``, when given, is accepted as a pre-issued
  bearer token (demo, ``preview``); ``core.oauth.issue()`` gives a fresh pair.
- ``GET /auth/api/v1/users/me`` (identity: ``business_memberships[].business.account_id``):
  the only place the account id is told (the token answer does not carry it).
- Scopes per endpoint (``app.SCOPE_RULES``: ``user:profile:read`` for ``users/me``,
  ``user:<object>:read`` for GET and ``:write`` for the rest of clients, invoices, credit
  notes, payments): a token without it gets 403 naming the scopes given and needed.
- Under ``/accounting/account/{account_id}/``: ``users/clients`` list (``search[email]``,
  ``search[organization_like]``), create, get; ``invoices/invoices`` list
  (``search[invoice_number]``, ``search[customerid]``), create, get, update (``action_email``
  with ``email_recipients`` e-mails it and marks a draft ``sent``; ``vis_state`` 1 deletes),
  ``DELETE``; ``credit_notes/credit_notes`` list (``search[clientid]``,
  ``search[credit_number]``), create, get; ``payments/payments`` list, create, get. Lists page
  with ``page``/``per_page`` (at most 100) and answer ``{page, pages, per_page, total}``.
  Bodies are wrapped in the singular name; unknown fields and unknown search fields are
  refused (FreshBooks would ignore some: stricter here, to catch typos).
- Totals as FreshBooks computes them: a line's ``amount`` is ``qty × unit_cost`` (the cost kept
  to the cent), its tax ``amount × taxAmountN / 100`` per tax, each rounded half-up to the cent
  per line; the invoice ``amount`` is the sum of line amounts and line taxes; ``paid``,
  ``outstanding``, ``payment_status`` (unpaid/partial/paid), ``v3_status``, ``date_paid``
  follow the payments. Amounts are decimal strings ``{"amount": "12.34", "code": "USD"}``.
- Errors: ``{"response": {"errors": [{errno, field, message, object, value}]}}`` with 400
  (malformed), 422 (a field), 404 (errno 1012, not found), 403 (another account), 429 (rate
  limit, ``Retry-After``); 401 as the auth layer answers,
  ``{"error": "unauthenticated", "error_description": …}``. An ``X-Request-Id`` on every answer.
- Rate limit: ``rate_limit`` requests per ``rate_window`` seconds (default 1200 per 60 s;
  ``None`` turns it off), then 429 with ``Retry-After``.
- Faults (``core.faults``, see ``sandbox.faults``): injected statuses are answered before
  processing; lost responses are processed, then ``ResponseLost`` is raised to the adapter.

Sandbox-only helpers: ``record_payment(remote_id, amount_minor)``, ``get_invoice(id)`` (lines
included), ``find_invoices(job_id=…, invoice_number=…)``, ``credit_notes()``, ``count(kind)``,
``emails_sent(remote_id)``, ``email_recipients(remote_id)``.
"""

from autoinvoice.sandbox.freshbooks.adapters import asgi_app, mock_transport
from autoinvoice.sandbox.freshbooks.app import (
    ACCOUNT_ID,
    AUTHORIZE_PATH,
    TOKEN_PATH,
    FreshBooksSandbox,
)
from autoinvoice.sandbox.freshbooks.store import FreshBooksError

__all__ = ["ACCOUNT_ID", "AUTHORIZE_PATH", "TOKEN_PATH", "FreshBooksError",
           "FreshBooksSandbox", "asgi_app", "mock_transport"]
