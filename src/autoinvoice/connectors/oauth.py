"""OAuth2 facts of the seven ledger platforms, and the token set they hand out.

Everything here is data; the flows (authorize URL, code exchange, refresh, learning the
connection's values) are in ``connectors.oauth_client``, the encrypted store and the
``TokenSource`` the connectors use in ``autoinvoice.connections``.

Per platform (checked against the vendors' docs, July 2026):

- **QuickBooks Online** -- authorize ``https://appcenter.intuit.com/connect/oauth2``, token
  ``https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer``, scope
  ``com.intuit.quickbooks.accounting``, client_secret_basic. Access token 1 h. The refresh
  token rotates and lives 100 days from its last use (``x_refresh_token_expires_in`` in every
  token response); since 2025 a hard maximum of five years from consent applies (Intuit SDK
  release notes: "All refresh tokens will now have a maximum validity period of five years").
  ``realmId`` comes back on the redirect. Sources: developer.intuit.com
  …/authentication-and-authorization/faq; intuit/QuickBooks-V3-Java-SDK release v6.5.4.
- **Xero** -- authorize ``https://login.xero.com/identity/connect/authorize``, token
  ``https://identity.xero.com/connect/token``, client_secret_basic, PKCE supported. Granular
  scopes by default, the broad ones with ``platform.scopes = "legacy"`` (``XERO_GRANULAR``).
  The ``offline_access`` scope is what yields a refresh token; access token 30 min, refresh token
  single-use, 60 days. ``tenant_id`` from ``GET https://api.xero.com/connections``
  (``[].tenantId``). Sources: developer.xero.com/documentation/guides/oauth2/auth-flow;
  XeroAPI/Xero-OpenAPI ``xero-identity.yaml`` (``/Connections``).
- **FreshBooks** -- authorize ``https://auth.freshbooks.com/oauth/authorize``, token
  ``https://api.freshbooks.com/auth/oauth/token``, client_secret_post. Access token 12 h;
  refresh-token lifetime not published (None). ``account_id`` from
  ``GET /auth/api/v1/users/me`` (``response.business_memberships[].business.account_id``).
  Scopes ``user:<object>:read|write`` for profile, clients, invoices and credit notes (the
  objects we call; a call without its scope is a 403 naming the scopes needed). Sources:
  freshbooks.com/api/authentication, /api/scopes, /api/how-to-find-the-right-scopes-for-your-app.
- **Zoho Books** -- ``https://accounts.zoho.com/oauth/v2/auth`` and ``…/oauth/v2/token`` (a
  data centre's own ``accounts.zoho.eu`` etc. through ``authorize_url``/``token_url``),
  client_secret_post, ``access_type=offline`` (else no refresh token) and ``prompt=consent``.
  Access token 1 h; the refresh token does not expire until revoked (capped at 20 per user).
  The token answer's ``api_domain`` names the login's data centre (``https://www.zohoapis.eu``
  …): stored at connect, the API origin of every later call (discovery included);
  ``organization_id`` from ``GET {api_domain}/books/v3/organizations``. A login of another
  data centre comes back with ``location`` and ``accounts-server`` on the consent redirect: the
  code is redeemed there, and every refresh goes there (stored as ``accounts_server``). Source:
  zoho.com/accounts/protocol/oauth/multi-dc/client-authorization.html. Sources:
  zoho.com/books/api/v3/oauth; zoho.com/accounts/protocol/oauth (token limits).
- **Business Central** -- Microsoft Entra ID v2:
  ``https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize`` and ``…/token``
  (``{tenant}`` = ``entra_tenant``, default ``organizations``), scope
  ``https://api.businesscentral.dynamics.com/.default offline_access``, client_secret_post,
  PKCE supported. Refresh tokens are replaced on every use and last 90 days (24 h for SPAs).
  ``tenant_id`` from the ID token's ``tid`` claim (``openid`` is asked for), else a real
  ``entra_tenant`` -- never ``organizations``; ``environment`` from the config;
  ``company_id`` from ``GET /v2.0/{tenant_id}/{environment}/api/v2.0/companies``. Sources:
  learn.microsoft.com/entra/identity-platform/refresh-tokens, …/id-token-claims-reference.
- **Sage Business Cloud Accounting** -- authorize
  ``https://www.sageone.com/oauth2/auth/central?filter=apiv3.1``, token
  ``https://oauth.accounting.sage.com/token``, scope ``full_access``, client_secret_post.
  Access token 5 min; refresh token single-use, 31 days (``refresh_token_expires_in`` in the
  token response; the 31 days are a third-party figure). ``business_id`` from
  ``GET /v3.1/businesses`` (``$items[0].id``, or ``[0].id`` of a bare array). Sources:
  developer.sage.com/accounting/guides/authenticating/authentication,
  …/guides/concepts/multi_business.
- **MYOB Business** -- authorize ``https://secure.myob.com/oauth2/account/authorize``, token
  ``https://secure.myob.com/oauth2/v1/authorize``, client_secret_post, granular ``sme-*``
  scopes for keys made after 12 Mar 2025, ``prompt=consent`` (which is what puts
  ``businessId`` on the redirect: such keys cannot list company files). Access token 20 min
  (third-party); refresh lifetime not published (None). ``company_file_uri`` =
  ``/accountright/{businessId}``, or the first ``Uri`` of ``GET /accountright/``. Sources:
  developer.myob.com/api/myob-business-api/api-overview/authentication, …/granular_data_scopes.

Where a lifetime is "not published" we keep None and rely on the platform's ``invalid_grant``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class ClientAuth(StrEnum):
    """How the client authenticates at the token endpoint (RFC 6749 §2.3.1)."""

    BASIC = "client_secret_basic"
    POST = "client_secret_post"


@dataclass(frozen=True, slots=True)
class Discovery:
    """Where one connection value is learned after consent.

    ``redirect_param``: read from the consent redirect's query. Otherwise ``path`` is fetched
    with the new access token from the API origin (the tenant's ``base_url``, else
    ``api_origin``) and ``pick`` digs the value out of the JSON. ``{entra_tenant}`` and
    ``{environment}`` in ``path`` are filled from the platform config, and ``{name}`` from a
    value learned before it (the discoveries run in order).

    ``claim``: read from the token response's ID token (else a JWT access token), e.g.
    Microsoft Entra's ``tid``. ``from_fill``: the platform config value of that name (after
    ``claim``; a multi-tenant alias such as ``organizations`` is never taken as a value).
    ``fallback_picks``: other places of the value in the JSON when vendor sources disagree
    on the response's shape (Sage's ``/businesses``: ``$items`` list or bare array).
    """

    name: str
    redirect_param: str | None = None
    path: str | None = None
    pick: tuple[str | int, ...] = ()
    claim: str | None = None
    from_fill: str | None = None
    fallback_picks: tuple[tuple[str | int, ...], ...] = ()
    #: the platform config key naming which listed element to take (Business Central's
    #: ``company``, Sage's ``business``), matched on ``names`` (id or name, any case)
    choose_by: str | None = None
    names: tuple[str, ...] = ("id",)
    #: several listed and none configured: refuse (listing them) instead of taking the first
    must_choose: bool = False
    #: a value built from the one found, e.g. MYOB's company file URI from its businessId
    template: str = "{value}"
    headers: Mapping[str, str] = field(default_factory=dict)
    #: read from this field of the token answer instead (Zoho's ``api_domain``)
    token_field: str | None = None


@dataclass(frozen=True, slots=True)
class OAuthPlatform:
    slug: str
    title: str
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    client_auth: ClientAuth
    api_origin: str
    discovery: tuple[Discovery, ...]
    extra_authorize: Mapping[str, str] = field(default_factory=dict)
    pkce: bool = False
    scope_separator: str = " "
    #: how the access token is sent to the API (Zoho: ``Zoho-oauthtoken``)
    auth_scheme: str = "Bearer"
    #: documented refresh-token lifetime (sliding: counted from the last refresh)
    refresh_ttl: timedelta | None = None
    #: documented hard limit counted from consent, whatever the refreshes
    consent_ttl: timedelta | None = None
    #: other scope sets ``platform.scopes`` may choose (``scopes`` is the default set)
    scope_sets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: the token answer's field naming the API host of this connection (Zoho: api_domain)
    origin_field: str | None = None
    #: the consent redirect's parameter naming the accounts server the code must be redeemed
    #: at, and every refresh made (Zoho: ``accounts-server``), and the hosts it may name
    token_server_param: str | None = None
    token_servers: str | None = None

    def scopes_for(self, choice: str | None) -> tuple[str, ...]:
        """The scopes to ask for under ``platform.scopes = choice`` (None: the default)."""
        return self.scope_sets[choice] if choice else self.scopes


#: Xero apps made since 2 March 2026 get only granular scopes (``accounting.transactions`` is
#: refused); ``PUT /TaxRates`` needs ``accounting.settings`` (``xero_accounting.yaml``
#: ``security``), not ``.read``. Invoices and credit notes are ``accounting.invoices``;
#: ``accounting.payments`` is asked for too because allocating a credit note to the invoice
#: (``PUT /CreditNotes/{id}/Allocations``) settles it like a payment and the sources we have
#: do not say which granular scope Xero checks there (docs/platforms.md). Source:
#: developer.xero.com/documentation/guides/oauth2/scopes.
XERO_GRANULAR = ("offline_access", "accounting.invoices", "accounting.payments",
                 "accounting.contacts", "accounting.settings")
#: an app made before 2 March 2026 (``platform.scopes = "legacy"``), until Xero's September
#: 2027 migration deadline
XERO_LEGACY = ("offline_access", "accounting.transactions", "accounting.contacts",
               "accounting.settings")

#: Zoho Books: ``ZohoBooks.<module>.<operation>`` as each v3 page states it -- contacts found or
#: created, taxes read and created (``POST /settings/taxes``: ZohoBooks.settings.CREATE),
#: invoices read, created, e-mailed and voided (POST = CREATE) or deleted as drafts, credit
#: notes read, created and applied. Source: zoho.com/books/api/v3/oauth, /taxes,
#: /credit-notes, /invoices.
ZOHO_BOOKS_SCOPES = ("ZohoBooks.contacts.CREATE", "ZohoBooks.contacts.READ",
                     "ZohoBooks.settings.CREATE", "ZohoBooks.settings.READ",
                     "ZohoBooks.invoices.CREATE", "ZohoBooks.invoices.READ",
                     "ZohoBooks.invoices.DELETE", "ZohoBooks.creditnotes.CREATE",
                     "ZohoBooks.creditnotes.READ")

PLATFORMS: dict[str, OAuthPlatform] = {p.slug: p for p in (
    OAuthPlatform(
        "quickbooks", "QuickBooks Online",
        "https://appcenter.intuit.com/connect/oauth2",
        "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
        ("com.intuit.quickbooks.accounting",), ClientAuth.BASIC,
        "https://quickbooks.api.intuit.com",
        (Discovery("realm_id", redirect_param="realmId"),),
        refresh_ttl=timedelta(days=100), consent_ttl=timedelta(days=5 * 365)),
    OAuthPlatform(
        "xero", "Xero",
        "https://login.xero.com/identity/connect/authorize",
        "https://identity.xero.com/connect/token",
        XERO_GRANULAR, ClientAuth.BASIC,
        "https://api.xero.com",
        (Discovery("tenant_id", path="/connections", pick=(0, "tenantId")),),
        pkce=True, refresh_ttl=timedelta(days=60),
        scope_sets={"granular": XERO_GRANULAR, "legacy": XERO_LEGACY}),
    OAuthPlatform(
        "freshbooks", "FreshBooks",
        "https://auth.freshbooks.com/oauth/authorize",
        "https://api.freshbooks.com/auth/oauth/token",
        ("user:profile:read", "user:clients:read", "user:clients:write",
         "user:invoices:read", "user:invoices:write", "user:credit_notes:read",
         "user:credit_notes:write"), ClientAuth.POST,
        "https://api.freshbooks.com",
        (Discovery("account_id", path="/auth/api/v1/users/me",
                   pick=("response", "business_memberships", 0, "business", "account_id")),)),
    OAuthPlatform(
        "zoho_books", "Zoho Books",
        "https://accounts.zoho.com/oauth/v2/auth",
        "https://accounts.zoho.com/oauth/v2/token",
        ZOHO_BOOKS_SCOPES, ClientAuth.POST, "https://www.zohoapis.com",
        (Discovery("api_domain", token_field="api_domain"),
         Discovery("organization_id", path="/books/v3/organizations",
                   pick=("organizations", 0, "organization_id"))),
        extra_authorize={"access_type": "offline", "prompt": "consent"},
        scope_separator=",", auth_scheme="Zoho-oauthtoken", origin_field="api_domain",
        token_server_param="accounts-server",
        token_servers=r"accounts\.(zoho\.(com|eu|in|com\.au|jp|sa|uk|com\.cn)|zohocloud\.ca)"),
    OAuthPlatform(
        "business_central", "Microsoft Dynamics 365 Business Central",
        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        ("https://api.businesscentral.dynamics.com/.default", "openid", "offline_access"),
        ClientAuth.POST, "https://api.businesscentral.dynamics.com",
        (Discovery("tenant_id", claim="tid", from_fill="entra_tenant"),
         Discovery("environment", from_fill="environment"),
         Discovery("company_id", path="/v2.0/{tenant_id}/{environment}/api/v2.0/companies",
                   pick=("value", 0, "id"), choose_by="company",
                   names=("id", "name", "displayName"), must_choose=True)),
        pkce=True, refresh_ttl=timedelta(days=90)),
    OAuthPlatform(
        "sage", "Sage Business Cloud Accounting",
        "https://www.sageone.com/oauth2/auth/central?filter=apiv3.1",
        "https://oauth.accounting.sage.com/token",
        ("full_access",), ClientAuth.POST, "https://api.accounting.sage.com",
        (Discovery("business_id", path="/v3.1/businesses", pick=("$items", 0, "id"),
                   fallback_picks=((0, "id"),), choose_by="business",
                   names=("id", "displayed_as", "name")),),
        refresh_ttl=timedelta(days=31)),
    OAuthPlatform(
        "myob", "MYOB Business",
        "https://secure.myob.com/oauth2/account/authorize",
        "https://secure.myob.com/oauth2/v1/authorize",
        ("sme-company-file", "sme-contacts-customer", "sme-sales", "sme-general-ledger"),
        ClientAuth.POST,
        "https://api.myob.com",
        (Discovery("company_file_uri", redirect_param="businessId", path="/accountright/",
                   pick=(0, "Uri"), template="{origin}/accountright/{value}",
                   headers={"x-myobapi-version": "v2"}),),
        extra_authorize={"prompt": "consent"}),
)}

#: Entra's sign-in aliases for "any work account": never a tenant id (Business Central's URL
#: needs the real one). learn.microsoft.com/entra/identity-platform/v2-protocols
MULTI_TENANT_ALIASES = frozenset({"organizations", "common", "consumers"})

#: Refresh this long before the access token expires.
REFRESH_MARGIN = timedelta(minutes=5)
#: ``autoinvoice connections`` warns this long before a refresh token or consent runs out.
EXPIRY_WARNING = timedelta(days=14)


def oauth_platform(slug: str) -> OAuthPlatform | None:
    """The platform's OAuth2 facts, or None for a platform that does not use OAuth2 here."""
    return PLATFORMS.get(slug)


@dataclass(frozen=True, slots=True)
class TokenSet:
    """What a token endpoint answered. ``repr`` never shows a token."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    access_expires_at: datetime | None
    refresh_expires_at: datetime | None = None
    scope: str | None = None
    #: the response's other fields (QuickBooks ``x_refresh_token_expires_in``, Zoho
    #: ``api_domain``, a stand-in's connection values); never a token
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: the claims of the ID token (else of a JWT access token), e.g. Entra's ``tid``; read
    #: without checking the signature: the token came straight from the token endpoint over
    #: TLS (OpenID Connect Core 1.0, 3.1.3.7) and only names what was connected
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The secret part, to be encrypted as a whole."""
        return {"access_token": self.access_token, "refresh_token": self.refresh_token}


_SECRET_FIELDS = frozenset({"access_token", "refresh_token", "id_token", "token_type",
                            "expires_in", "expires_at", "scope"})
_REFRESH_TTL_FIELDS = ("x_refresh_token_expires_in", "refresh_token_expires_in")


def token_set(response: Mapping[str, Any], now: datetime,
              platform: OAuthPlatform | None = None,
              previous_refresh: str | None = None) -> TokenSet:
    """A ``TokenSet`` from a token endpoint's JSON: expiry times made absolute, the refresh
    token kept from before when a platform does not send a new one (Zoho on refresh)."""
    expires_in = response.get("expires_in")
    access_expires = now + timedelta(seconds=float(expires_in)) if expires_in else None
    refresh_expires = None
    for name in _REFRESH_TTL_FIELDS:
        if response.get(name):
            refresh_expires = now + timedelta(seconds=float(response[name]))
            break
    if refresh_expires is None and platform is not None and platform.refresh_ttl:
        refresh_expires = now + platform.refresh_ttl
    return TokenSet(
        access_token=str(response["access_token"]),
        refresh_token=str(response.get("refresh_token") or previous_refresh or "") or None,
        access_expires_at=access_expires, refresh_expires_at=refresh_expires,
        scope=response.get("scope"),
        extra={k: v for k, v in response.items()
               if k not in _SECRET_FIELDS and "token" not in k.lower()},
        claims=jwt_claims(response.get("id_token")) or jwt_claims(response.get("access_token")))


def jwt_claims(token: Any) -> dict[str, Any]:
    """The payload of a JWT (header.payload.signature, base64url JSON), or {} for anything
    else (an opaque token)."""
    if not isinstance(token, str) or token.count(".") != 2:
        return {}
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


def dig(data: Any, path: tuple[str | int, ...]) -> Any:
    """``data[path[0]][path[1]]…``, or None when any step is missing."""
    for step in path:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data
