"""A local MYOB Business API (AccountRight v2) stand-in: the slice invoicing uses.

Paths, headers and bodies follow developer.myob.com's MYOB Business API pages, so
``connectors.myob`` runs against it unchanged:

- ``GET /accountright/`` lists the company file (``Id``, ``Name``, ``Uri``); everything else
  hangs off ``/accountright/{cf}``: ``GET /GeneralLedger/Account``, ``GET
  /GeneralLedger/TaxCode``, ``GET|POST /Contact/Customer``, ``GET /Contact/Customer/{UID}``,
  ``GET|POST /Sale/Invoice/Service``, ``GET|DELETE /Sale/Invoice/Service/{UID}``.
- Lists: ``{"Items", "NextPageLink", "Count"}`` with ``$top``/``$skip`` and the ``$filter``
  subset MYOB's docs use (``A eq 'x'``, ``A/B eq …``, booleans, ``and``,
  ``Coll/any(a: a/F eq 'x')``); string comparisons ignore case.
- ``POST`` answers 201 with no body and the new resource's URI in ``Location``.
- Headers: ``Authorization: Bearer`` (a live token of ``self.oauth``, or the pre-issued
  ``api_key``) else 401 ``OAuthTokenIsInvalid``; ``x-myobapi-key`` must be the OAuth client id
  (``myob-demo-key``) else 403 ``InvalidApiKey``; ``x-myobapi-version: v2`` else 400.
- Validation (400 ``ValidationError`` naming the field in ``AdditionalDetails``): a customer
  needs ``CompanyName`` (or ``LastName`` for an individual), ``DisplayID`` ≤ 15 characters and
  existing ``SellingDetails.TaxCode``/``FreightTaxCode``; a service sale needs an existing
  ``Customer``, ``Date``, at least one ``Lines`` entry with a numeric ``Total``, an existing
  non-header ``Account`` and ``TaxCode``; ``Number`` ≤ 13 and ``JournalMemo``/``Comment``
  ≤ 255 characters. A sale with payments cannot be deleted.
- Totals as MYOB computes them: each line's tax = its ``Total`` × the tax code's ``Rate``,
  rounded half-up to the cent per line (tax-exclusive; for ``IsTaxInclusive`` the tax inside
  the total, also per line); ``Subtotal``, ``TotalTax``, ``TotalAmount`` are sums of the lines;
  ``BalanceDueAmount`` starts at the total; ``Status`` ``Open`` → ``Closed`` when paid.
  Amounts are JSON numbers with their exact digits.
- Rate limits (off by default): ``rate_limit_per_second`` answers 429 ``RateLimitError`` with
  ``Retry-After``; ``rate_limit_per_day`` answers 403 ``RateLimitError`` "API key has exceeded
  the daily rate limit" (MYOB's documented body).
- Errors: ``{"Errors": [{"Name", "Message", "AdditionalDetails", "ErrorCode", "Severity",
  "LearnMore"}], "Information"}``; every answer has an ``X-Request-Id``.
- OAuth2 (``core.oauth``, ``core.oauth_paths``): ``GET /oauth2/account/authorize`` redirects
  with ``code`` and ``businessId`` (the company file: the only place it is told, the token
  answer does not carry it); ``POST /oauth2/v1/authorize`` is the token endpoint (access tokens
  of 20 minutes, rotating refresh tokens). Scopes per endpoint family (``app.SCOPE_RULES``:
  ``sme-company-file``, ``sme-contacts-customer``, ``sme-sales``, ``sme-general-ledger``): a
  token without it gets 403 ``AccessDenied`` naming the scope (MYOB's exact answer is not
  published).
- The company file is a new Australian business's: AUD, the default Australian tax codes only
  (``GST`` 10 %, ``FRE``, ``EXP``, ``ITS``, ``N-T``, purchase and special codes; ``store.
  DEFAULT_TAX_CODES``), no US or European rates.
- Faults (``sandbox.faults``): ``core.faults.inject(prefix, status, retry_after=, times=)``,
  ``core.faults.lose_response(prefix)``; prefixes match the full path.

Sandbox-only helpers: ``record_payment(remote_id, amount_minor)``, ``get_invoice``,
``invoices()``, ``customers()``, ``requests``.
"""

from autoinvoice.sandbox.myob.adapters import asgi_app, mock_transport
from autoinvoice.sandbox.myob.app import (
    AUTHORIZE_PATH,
    CLIENT_ID,
    ROOT,
    TOKEN_PATH,
    MyobSandbox,
)
from autoinvoice.sandbox.myob.store import MyobError

__all__ = ["AUTHORIZE_PATH", "CLIENT_ID", "ROOT", "TOKEN_PATH", "MyobError", "MyobSandbox",
           "asgi_app", "mock_transport"]
