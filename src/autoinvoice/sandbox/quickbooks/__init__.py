"""A local QuickBooks Online stand-in: the slice of the Accounting API (v3, minor version 75)
that invoicing uses, for one company (realm), in memory.

Same paths, auth, payload shapes and error bodies as QuickBooks Online, so the real connector
runs against it unchanged:

- ``/v3/company/{realmId}/``: ``query`` (GET ``?query=`` or POST text; ``select * from E
  where … and …`` with ``=``, ``IN``, ``LIKE``, no ``OR``, only filterable properties),
  ``customer``, ``item``, ``invoice``, ``creditmemo``, ``payment`` (create; GET by id),
  ``invoice?operation=void`` (``Id`` + ``SyncToken``; a stale token is 5010),
  ``invoice/{id}/send`` and ``creditmemo/{id}/send`` (``?sendTo=``, else ``BillEmail``),
  ``taxservice/taxcode``, ``preferences``, ``companyinfo/{realmId}``. Unknown properties are
  refused (2010), missing required ones too (2020); a DisplayName already used by a customer,
  vendor or employee is 6240 "Duplicate Name Exists Error"; a DocNumber used twice is 6140;
  longer than 21 characters is 6000.
- One realistic US company in Tulsa, Oklahoma. By default (``automated_sales_tax=True``) it is
  on automated sales tax like every US company created since 10 Nov 2017 (``ast``): tax from
  the ship-to address by AST's own jurisdiction rates, the app's tax code replaced, an explicit
  ``TxnTaxDetail.TotalTax`` honoured and prorated unless ``UseAutomatedSalesTax`` is true or
  the company refuses partner overrides (``company.ast.allow_partner_tax_override``).
  ``automated_sales_tax=False``: an older company on the manual US model (``company``).
- Totals: ``Amount = Qty * UnitPrice`` checked per line (6070); tax per document: each rate
  applied once to the sum of the TAX lines, rounded half-up to the cent; ``TotalAmt``,
  ``Balance``, ``TxnTaxDetail.TaxLine``.
- Decimal fields (Finance.xsd ``xs:decimal``) must be JSON numbers: a string there is a
  ValidationFault 2010 naming the element. Answered as numbers.
- OAuth 2.0 (``core.oauth``, an ``OAuthServer``; ``core.oauth_paths``): authorize
  ``/connect/oauth2`` (the redirect carries ``realmId``), token ``/oauth2/v1/tokens/bearer``
  (rotating refresh tokens, ``x_refresh_token_expires_in``). API calls need
  ``Authorization: Bearer`` with a live access token (or ``api_key``, a pre-issued token for
  demos); otherwise 401 with QuickBooks' lower-case ``fault`` body (code 3200). Scopes per
  endpoint (``app.SCOPES``): ``/v3/company/…`` needs ``com.intuit.quickbooks.accounting``, else
  403 ``AuthorizationFailed`` 3100; a code-flow token carries the ``scope`` of its consent
  (kept across refreshes), ``issue(scopes=…)`` hands out a pair for given scopes, and
  ``oauth.issue()`` stands for a consent to the accounting scope. The realm id is only on the
  consent redirect (``realmId``), never in a token answer.
- ``requestid``: a POST whose ``requestid`` was seen before gets the original response again
  without any change (Intuit: "the service sends the same response as it did for the
  original request"); only successful answers are kept (whether QuickBooks replays errors is
  not documented); ids longer than 50 characters are refused.
- Throttling: ``requests_per_minute`` (500, per realm, sliding minute); beyond it 429
  ``ThrottleExceeded`` (003001) with ``Retry-After`` (our addition: QuickBooks does not
  document one). Requests are processed one at a time, so the 10-concurrent limit is not
  modelled.
- Faults (``core.faults``, ``sandbox.faults``): injected statuses answered before processing
  (5xx as a SystemFault 10000, 429 as ThrottleExceeded, 401 as AuthenticationFailed); lost
  responses processed, then dropped.
- Every response carries an ``intuit_tid`` request id header.

Sandbox-only helpers: ``record_payment(remote_id, amount_minor)``, ``emails_sent(remote_id)``,
``get_invoice(id)``, ``find(entity, **fields)``, ``count(entity)``, ``add_vendor(name)``,
``add_employee(name)``, ``issue(scopes)``, ``token_values()``, ``requests`` (what was received).
"""

from autoinvoice.sandbox.faults import Fault, FaultKind, Faults, ResponseLost
from autoinvoice.sandbox.quickbooks.adapters import asgi_app, mock_transport
from autoinvoice.sandbox.quickbooks.app import AUTHORIZE_PATH, TOKEN_PATH, QuickBooksSandbox
from autoinvoice.sandbox.quickbooks.company import Company
from autoinvoice.sandbox.quickbooks.errors import QboError

__all__ = [
    "AUTHORIZE_PATH", "TOKEN_PATH", "Company", "Fault", "FaultKind", "Faults", "QboError",
    "QuickBooksSandbox", "ResponseLost", "asgi_app", "mock_transport",
]
