"""A local Zoho Books stand-in: the slice of the Books API v3 that invoicing uses, in memory.

Same paths, auth header, payloads and error bodies as www.zohoapis.com/books/v3 (see the
docstring of ``autoinvoice.connectors.zoho_books`` for the vendor pages checked):

- ``GET /books/v3/organizations``; ``GET|POST /books/v3/contacts`` (filters ``email``,
  ``contact_name``; display names unique, code 3062), ``GET /contacts/{id}``;
  ``GET|POST /settings/taxes``; ``GET|POST /invoices`` (filters ``invoice_number``,
  ``reference_number``, ``status``, ``customer_id``; ``invoice_number`` only with
  ``ignore_auto_number_generation=true``, unique per organisation, code 1001),
  ``GET|DELETE /invoices/{id}``, ``POST /invoices/{id}/email`` (``to_mail_ids`` required; a
  draft becomes ``sent``), ``POST /invoices/{id}/status/void``; ``GET|POST /creditnotes``
  (filter ``creditnote_number``), ``GET /creditnotes/{id}``, ``POST /creditnotes/{id}/invoices``
  (``invoices[{invoice_id, amount_applied}]``; not on draft 12005 or void 12007 invoices).
  Every call but ``/organizations`` needs ``organization_id`` (else 400, code 6041).
- Request bodies: the ``JSONString`` form parameter or a raw JSON body; amounts must be JSON
  numbers (a string is ``Invalid value passed for rate``, code 2); missing required fields are
  400 with code 4. Responses: ``{"code": 0, "message", <object>}``, 201 on creates; errors
  ``{"code": <non-zero>, "message"}`` with 400/401/404/405/429/500, as
  zoho.com/books/api/v3/errors lists them.
- Organisations (``editions``): one per country, as Zoho's editions are: ``US`` (USD),
  ``GB`` (GBP, ``vat_treatment``), ``DE`` (EUR, ``tax_treatment``), each with its base
  currency and default taxes; ``GET /organizations`` tells ``country_code`` and
  ``currency_code``. Invoices and credit notes are in their customer's currency (the
  organisation's base currency by default), never a fixed USD; a VAT treatment the edition
  does not know, or one that does not fit the customer or the lines, is refused (``store``).
- Totals (``store``): per line ``item_total = round_half_up(rate × quantity)`` and tax
  ``round_half_up(item_total × tax_percentage / 100)`` to the currency's minor unit (item-level
  rounding), summed into ``sub_total``, ``tax_total``, ``total``; ``balance`` = total − payments
  − applied credits; statuses draft, sent, partially_paid, paid, void.
- Auth: ``Authorization: Zoho-oauthtoken <token>``, checked against ``core.oauth`` (an
  ``OAuthServer``: authorization code and rotating refresh tokens at ``core.oauth_paths`` =
  ``("/oauth/v2/auth", "/oauth/v2/token")``; the token answer carries ``api_domain`` as Zoho's
  does: ``api_domain=`` when given, e.g. ``https://www.zohoapis.eu``, else the host the token
  request reached; the consent redirect carries ``location`` and ``accounts-server``, the
  data centre's accounts host, as Zoho's multi-DC flow does) or the pre-issued ``api_key``;
  else 401 code 57. The organisation is told
  only by ``GET /books/v3/organizations``. Scopes per endpoint (``app.SCOPE_RULES``:
  ``ZohoBooks.<module>.<READ|CREATE|UPDATE|DELETE|ALL>`` by method): a token without the
  endpoint's scope gets 401 code 57 "You are not authorized to perform this operation".
- Rate limit: ``per_minute`` requests (default 100) per organisation in any 60 s of ``clock``;
  beyond it 429 code 45 (Zoho documents no ``Retry-After``; injected 429s may carry one).
- Faults (``sandbox.faults``): ``core.faults.inject(prefix, status=…, retry_after=…)`` answers
  before processing; ``lose_response(prefix)`` processes, then loses the answer.

Sandbox-only helpers: ``record_payment(remote_id, amount_minor)``, ``emails_sent(remote_id)``,
``get_invoice(id)``, ``find_invoices(**fields)``, ``count(kind)``.
"""

from autoinvoice.sandbox.zoho_books.adapters import asgi_app, mock_transport
from autoinvoice.sandbox.zoho_books.app import ORGANIZATION_ID, ZohoBooksSandbox
from autoinvoice.sandbox.zoho_books.store import ZohoError

__all__ = ["ORGANIZATION_ID", "ZohoBooksSandbox", "ZohoError", "asgi_app", "mock_transport"]
