"""A local Dynamics 365 Business Central stand-in: companies behind the standard API v2.0.

Paths, auth, bodies and errors follow the real service (see ``connectors.business_central``):

- ``/v2.0/{tenant}/{environment}/api/v2.0/companies`` lists every company (one per country:
  ``companies.COMPANIES``, CRONUS USA by default, more with ``other_countries`` or
  ``add_company``) and ``companies({id})``; the tenant segment must be the token's tenant (its
  id or ``tenant_domain``): ``organizations`` is a 404. An unknown company id is a 404
  ``BadRequest_NotFound``. Under a company: ``taxGroups`` and ``taxAreas`` (its real codes),
  ``customers`` (GET with ``$filter``, POST, GET by id, PATCH ``taxAreaId``/``taxLiable`` with
  ``If-Match``), ``salesInvoices``
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
- Tax as BC computes it (``companies``): a line's ``taxCode`` must be one of the company's tax
  groups, its percentage comes from (the customer's tax area, the tax group) -- VAT Posting
  Setup in the German company, with Reverse Charge VAT (0 % on the invoice) for EU customers;
  US tax areas for tax-liable customers; totals per document per tax code (see ``store``).
- Life cycle: Draft -> (post) Open with a posted number ``PS-INV…`` (the API id is kept) ->
  Paid when the remaining amount reaches 0 (``record_payment``, or a credit memo applied through
  ``invoiceId``); ``cancel`` makes a Canceled invoice and a Corrective credit memo; ``send``
  counts e-mails (refused when ``email_configured=False``, or on a draft).
- Auth: bearer tokens of its own ``ScopedOAuthServer`` (``oauth``; Entra-style paths
  ``/{any tenant}/oauth2/v2.0/authorize`` and ``/token``, ``oauth_paths`` with
  ``organizations``): JWT-shaped, with ``tid`` and ``scp`` claims, an ID token when ``openid``
  is granted, and no ids in the token answer (``connect`` learns them as with Entra: ``tid``,
  then ``GET companies``). A token without a Business Central scope (``…/.default``,
  ``…/Financials.ReadWrite.All``) is refused like any other: 401
  ``Authentication_InvalidCredentials``. ``api_key``, when given, is also accepted as a
  pre-issued bearer token.
- Rate limit: ``rate_limit`` requests (6,000) per ``rate_window`` seconds (300) sliding, per
  principal; beyond it 429 ``Application_TooManyRequests`` with ``Retry-After``.
- Faults: ``faults.inject(path_prefix, status, retry_after=…)`` answers before processing;
  ``faults.lose_response(path_prefix)`` processes, then loses the answer (every method matches
  unless ``method=`` is given).
- Responses carry ``request-id`` and ``ms-correlation-x``, and numbers as exact decimals.

Sandbox-only helpers: ``record_payment(remote_id, amount_minor)``, ``emails_sent(remote_id)``,
``get_invoice(id)``, ``find_invoices(external_document_number)``, ``credit_memos(invoice_id)``,
``count(kind)``, ``customer(id)``, ``connection_values()``, ``demo_choice(country)`` and
``demo_options(country)`` (the company of a country and the tax mapping that fits it).
"""

from autoinvoice.sandbox.business_central.adapters import asgi_app, mock_transport
from autoinvoice.sandbox.business_central.app import BusinessCentralSandbox
from autoinvoice.sandbox.business_central.store import BCError

__all__ = ["BCError", "BusinessCentralSandbox", "asgi_app", "mock_transport"]
