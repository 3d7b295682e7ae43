"""A local Xero stand-in: the slice of the Xero Accounting API 2.0 that invoicing uses.

Same paths (``/api.xro/2.0/…``), headers, payload shapes and error bodies as Xero (checked
against ``XeroAPI/Xero-OpenAPI`` ``xero_accounting.yaml`` and developer.xero.com), so the real
connector runs against it unchanged:

- ``GET /Organisation`` (``CountryCode``, ``Version``); ``GET|PUT /Contacts`` (``where``),
  ``GET /Contacts/{id}``; ``GET|PUT /TaxRates``: one realistic organisation per country
  (``country=``: ``US`` the original demo company, ``NONE`` 0 % and ``OUTPUT`` 15 %; ``GB``
  Xero's UK default rates -- ``OUTPUT2`` 20 %, ``RROUTPUT`` 5 %, ``ZERORATEDOUTPUT``,
  ``EXEMPTOUTPUT``, ``NONE`` "No VAT", ``ECZROUTPUT``, ``ECZROUTPUTSERVICES`` and input
  rates that cannot apply to revenue; ``DE`` a Global-edition company with its accountant's
  own ``TAX00n`` rates, all reported as OUTPUT), each rate with its ``ReportTaxType``; a
  created rate gets the next ``TAX00n``; a line whose tax type cannot apply to a revenue
  account is refused; ``PUT /Invoices`` (``unitdp``), ``GET /Invoices`` (``where``,
  ``InvoiceNumbers``), ``GET /Invoices/{id}``, ``POST /Invoices/{id}`` (status changes:
  DRAFT → SUBMITTED/AUTHORISED/DELETED, AUTHORISED → VOIDED without payments or credits),
  ``POST /Invoices/{id}/Email`` (204; ACCREC with status SUBMITTED, AUTHORISED or PAID and a
  contact with an e-mail address); ``GET|PUT /CreditNotes``, ``GET /CreditNotes/{id}``,
  ``PUT /CreditNotes/{id}/Allocations``; ``GET /connections`` (the tenant list).
  Every answer is wrapped ``{"Id", "Status": "OK", "ProviderName", "DateTimeUTC", …}``; dates
  are Xero's ``/Date(ms+0000)/`` (plus ``DateString``), amounts JSON numbers.
- Validation as Xero answers it: 400 ``{"ErrorNumber": 10, "Type": "ValidationException",
  "Message": "A validation exception occurred", "Elements": [{…, "ValidationErrors":
  [{"Message": …}]}]}`` -- missing contact or lines, unknown ``AccountCode``/``TaxType``,
  ``Due Date`` missing on an AUTHORISED invoice, ``Invoice # must be unique.``, contact names
  unique across active contacts; unknown ids are a plain-text 404.
- Totals per line, as Xero computes them (see ``ledger``): ``UnitAmount`` rounded to
  ``unitdp`` (2 by default, 4 with ``unitdp=4``), line amount and line tax rounded half-up to
  cents, then summed (tax rounding per *line*).
- Auth: ``Authorization: Bearer`` checked by ``oauth`` (an ``OAuthServer``: code grant,
  rotating refresh tokens, 30-minute access tokens like Xero's) served at ``oauth_paths``
  (``/identity/connect/authorize``, ``/connect/token``), or the pre-issued ``api_key`` token
  when one is given; 401/403 are Xero's problem body (``Title``, ``Detail``:
  ``AuthenticationUnsuccessful``/``AuthorizationUnsuccessful``). ``xero-tenant-id`` must name
  the organisation, which only ``GET /connections`` tells (never the token answer).
- Scopes, per endpoint (``app.SCOPE_RULES``): a token without one of the endpoint's scopes gets
  401 ``AuthorizationUnsuccessful``. ``app="granular"`` (default: an app made since 2 March
  2026) is refused ``accounting.transactions`` at consent (``unauthorized_client`` "Invalid
  scope for client"); ``app="legacy"`` may still have it.
- Idempotency: a PUT/POST with ``Idempotency-Key`` (at most 128 characters) whose answer was a
  2xx is saved for 24 h (Xero does not document the period); the same key with the same
  request replays it (``Idempotent-Replayed: true``), with another request it is a 400.
- Rate limits per tenant (``limits``: 60 a minute, 5,000 a day, 5 in flight; each can be
  switched off): 429 with ``Retry-After`` and ``X-Rate-Limit-Problem`` (minute, day,
  concurrent); every answer carries ``X-MinLimit-Remaining``, ``X-DayLimit-Remaining``,
  ``X-AppMinLimit-Remaining`` and a ``Xero-Correlation-Id``.
- Faults (``sandbox.faults``, matching every method unless ``method=`` is given): injected
  statuses are answered before processing; lost responses are processed, then lost.

Sandbox-only helpers: ``record_payment(invoice_id, amount_minor)``, ``emails_sent(id)``,
``get_invoice(id)``, ``find_invoices(where)``, ``contacts()``, ``credit_notes()``.
"""

from autoinvoice.sandbox.faults import Faults, ResponseLost
from autoinvoice.sandbox.xero.adapters import asgi_app, mock_transport
from autoinvoice.sandbox.xero.app import (
    API,
    AUTHORIZE_PATH,
    TENANT_ID,
    TOKEN_PATH,
    Limits,
    Response,
    XeroSandbox,
)
from autoinvoice.sandbox.xero.ledger import XeroError

__all__ = [
    "API", "AUTHORIZE_PATH", "TENANT_ID", "TOKEN_PATH", "Faults", "Limits", "Response",
    "ResponseLost", "XeroError", "XeroSandbox", "asgi_app", "mock_transport",
]
