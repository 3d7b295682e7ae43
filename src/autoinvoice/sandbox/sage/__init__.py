"""A local Sage Business Cloud Accounting (API v3.1) stand-in: the slice invoicing uses.

Paths, headers and bodies follow Sage's Swagger (``swagger.full.json``) and its guides, so
``connectors.sage`` runs against it unchanged (base URL ``<server>/v3.1``):

- ``GET /v3.1/businesses`` (every business of the user, the lead one first, as the
  ``$items`` envelope Sage's multi-business guide shows, or -- ``businesses_shape="array"`` --
  as a bare array, the other shape some sources show) and ``GET /businesses/{id|lead}``;
  ``X-Business`` picks the business (the lead one without it) and comes back on every answer;
  ``GET|POST /v3.1/contacts`` (``search`` over name and
  ``reference``, ``email`` over the contact person's address, ``contact_type_id``),
  ``GET /contacts/{key}``; ``GET /ledger_accounts`` (``ledger_account_type_id``,
  ``visible_in``); ``GET /tax_rates``; ``GET|POST /sales_invoices`` (``search`` over
  ``reference`` and contact name, ``contact_id``, ``status_id``), ``GET|PUT|DELETE
  /sales_invoices/{key}``; ``GET|POST /sales_credit_notes``, ``GET /sales_credit_notes/{key}``.
  Bodies are wrapped in the resource's name (``{"sales_invoice": {...}}``).
- Lists: ``{"$total", "$page", "$next", "$back", "$items_per_page", "$items"}``; items show
  ``id``, ``displayed_as``, ``$path`` plus the comma-separated ``attributes`` (``all``: all).
- Validation as Sage answers it: 422 with ``$dataCode: RecordInvalid`` and ``$source`` naming
  the attribute -- ``contact_id`` (an existing customer), ``date`` and the lines required;
  per line ``description``, ``ledger_account_id`` and ``unit_price``, and ``tax_amount``
  for a rate with a percentage ("required in v3.1"); ``reference`` at most 25 characters;
  a contact's ``name`` and ``contact_type_ids``, its ``reference`` unique.
- Businesses per country (``store.COUNTRY_SETUP``): by default one UK business (GBP) with
  Sage's UK tax rates only (``GB_STANDARD`` 20, ``GB_REDUCED`` 5, ``GB_ZERO``, ``GB_EXEMPT``,
  ``GB_NO_TAX``); ``country=``/``other_countries=``/``add_business`` add German and US ones
  for the demo's other tenants.
- Totals, per line: ``net_amount`` = quantity × unit_price rounded half-up to the currency's
  minor unit; ``tax_amount`` as the client sent it (v3.1 takes the line's tax from the
  client), 0 for a rate without percentage; the document's ``net_amount``, ``tax_amount``
  and ``total_amount`` are the sums of the lines. Every amount, quantity and percentage is a
  JSON number, as the Swagger types them; a string sent for one is refused (422).
- Invoices are created ``UNPAID`` (``status_id: DRAFT`` makes a draft) with Sage's own
  ``invoice_number`` (``SI-1``…); ``PUT`` sets ``sent``; ``DELETE`` removes a draft, voids
  anything else with the required ``void_reason`` query parameter (204), refuses one with
  payments. Payment fields: ``total_paid``, ``outstanding_amount``, ``last_paid`` (a date),
  ``status`` ``UNPAID | PART_PAID | PAID | VOID | DRAFT``.
- Idempotency (guides/concepts/idempotency): an ``idempotency_id`` (32 hex characters)
  inside the resource makes a create replay its first answer for 7 days (``clock``); the id
  alone decides. Used on another resource type: 422 ``IdempotencyResourceMismatch`` "Entity
  type mismatch". A request rejected by validation is not remembered.
- Auth: ``Authorization: Bearer`` with a live token of ``self.oauth`` (a
  ``ScopedOAuthServer``: code grant, rotating refresh tokens, access tokens of 5 minutes as
  Sage's; scopes ``full_access`` or ``readonly``), or the optional pre-issued ``api_key``;
  otherwise 401 ``AuthorizationFailure``. A ``readonly`` token may only GET: anything else is
  403 ``AuthorizationFailure`` (the exact answer Sage gives is unconfirmed). ``X-Business``
  must name one of the user's businesses (403 otherwise). OAuth paths (``core.oauth_paths``):
  ``GET /oauth2/auth/central`` and ``POST /token``; the token answer names no business
  (``GET /businesses`` does); ``core.oauth.issue(scopes)`` pre-issues a pair.
- Rate limit: ``rate_limit_per_minute`` (off by default) answers 429 ``TooManyRequests``
  with ``Retry-After`` once exceeded in a sliding minute.
- Errors: a JSON list of ``{"$severity", "$dataCode", "$message", "$source"}``; every answer
  has an ``X-Request-Id``.
- Faults (``sandbox.faults``): ``core.faults.inject(prefix, status, retry_after=, times=)``
  answers before processing; ``core.faults.lose_response(prefix)`` processes, then the
  adapter loses the answer. Prefixes match the full path (``/v3.1/sales_invoices``).

Sandbox-only helpers: ``record_payment(remote_id, amount_minor)``, ``get_invoice``,
``invoices()``, ``credit_notes()``, ``contacts()``, ``tax_rate_ids()``, ``business_for``,
``demo_choice(country)``, ``requests`` (method and path of every API request).

Modules: ``app`` (``SageSandbox``), ``store`` (objects, validation, totals), ``adapters``.
"""

from autoinvoice.sandbox.sage.adapters import asgi_app, mock_transport
from autoinvoice.sandbox.sage.app import API, AUTHORIZE_PATH, TOKEN_PATH, SageSandbox
from autoinvoice.sandbox.sage.store import SageError

__all__ = ["API", "AUTHORIZE_PATH", "TOKEN_PATH", "SageError", "SageSandbox", "asgi_app",
           "mock_transport"]
