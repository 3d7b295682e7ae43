"""A local Dynamics 365 Business Central stand-in: one company behind the standard API v2.0.

Paths, auth, bodies and errors follow the real service (see ``connectors.business_central``):

- ``/v2.0/{tenant}/{environment}/api/v2.0/companies`` and ``companies({id})`` (any tenant and
  environment segment is served; an unknown company id is a 404 ``BadRequest_NotFound``);
  under the company: ``customers`` (GET with ``$filter``, POST, GET by id), ``salesInvoices``
  and ``salesCreditMemos`` (GET with ``$filter``/``$top``/``$expand=…Lines``, deep-insert POST
  answering 201, GET by id), ``DELETE salesInvoices({id})`` (drafts only, ``If-Match``
  required), and the bound actions ``Microsoft.NAV.post``, ``send``, ``postAndSend`` and
  (invoices) ``cancel``, each answering 204 (``If-Match`` checked when sent).
- ``$filter``: ``field eq 'value'`` clauses joined by ``and`` (quotes doubled).
- Validation as BC does it: unknown properties are refused (``BadRequest``, "The property 'x'
  does not exist on type…"), decimals must be JSON numbers (a string is the
  ``IEEE754Compatible`` conflict error), string lengths (``Application_StringExceededLength``),
  a customer id or number is required (``Application_DialogException``), unknown G/L accounts,
  tax codes, customers and currencies are ``Internal_RecordNotFound``, a duplicate customer
  number is 409 ``Internal_EntityWithSameKeyExists``, a stale ETag 409 ``Request_EntityChanged``.
- Totals: tax **per document** per tax code, spread over the lines (see ``store``).
- Life cycle: Draft -> (post) Open with a posted number ``PS-INV…`` (the API id is kept) ->
  Paid when the remaining amount reaches 0 (``record_payment``, or a credit memo applied through
  ``invoiceId``); ``cancel`` makes a Canceled invoice and a Corrective credit memo; ``send``
  counts e-mails (refused when ``email_configured=False``, or on a draft).
- Auth: bearer tokens of its own ``OAuthServer`` (``oauth``; Entra-style paths
  ``oauth_paths = ("/{tenant}/oauth2/v2.0/authorize", "/{tenant}/oauth2/v2.0/token")``), the
  token response carrying ``tenant_id``, ``environment`` and ``company_id``; ``api_key``, when
  given, is also accepted as a pre-issued bearer token. 401 ``Authentication_InvalidCredentials``.
- Rate limit: ``rate_limit`` requests (6,000) per ``rate_window`` seconds (300) sliding, per
  principal; beyond it 429 ``Application_TooManyRequests`` with ``Retry-After``.
- Faults: ``faults.inject(path_prefix, status, retry_after=…)`` answers before processing;
  ``faults.lose_response(path_prefix)`` processes, then loses the answer (every method matches
  unless ``method=`` is given).
- Responses carry ``request-id`` and ``ms-correlation-x``, and numbers as exact decimals.

Sandbox-only helpers: ``record_payment(remote_id, amount_minor)``, ``emails_sent(remote_id)``,
``get_invoice(id)``, ``find_invoices(external_document_number)``, ``credit_memos(invoice_id)``,
``count(kind)``, ``connection_values()``.
"""

from autoinvoice.sandbox.business_central.adapters import asgi_app, mock_transport
from autoinvoice.sandbox.business_central.app import BusinessCentralSandbox
from autoinvoice.sandbox.business_central.store import BCError

__all__ = ["BCError", "BusinessCentralSandbox", "asgi_app", "mock_transport"]
