"""The local stand-ins, by platform slug: in-process (preview, tests) or served over HTTP."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from autoinvoice.connectors.base import StaticTokens

STANDINS: dict[str, tuple[str, str]] = {
    "sandbox": ("autoinvoice.sandbox.generic", "GenericSandbox"),
    "stripe": ("autoinvoice.sandbox.stripe", "StripeSandbox"),
    "business_central": ("autoinvoice.sandbox.business_central", "BusinessCentralSandbox"),
    "freshbooks": ("autoinvoice.sandbox.freshbooks", "FreshBooksSandbox"),
    "quickbooks": ("autoinvoice.sandbox.quickbooks", "QuickBooksSandbox"),
    "xero": ("autoinvoice.sandbox.xero", "XeroSandbox"),
    "zoho_books": ("autoinvoice.sandbox.zoho_books", "ZohoBooksSandbox"),
    "sage": ("autoinvoice.sandbox.sage", "SageSandbox"),
    "myob": ("autoinvoice.sandbox.myob", "MyobSandbox"),
}


def _module(platform: str) -> ModuleType:
    if platform not in STANDINS:
        raise LookupError(f"no local stand-in for platform {platform!r}")
    return importlib.import_module(STANDINS[platform][0])


def make_standin(platform: str, **kwargs: Any) -> Any:
    """A fresh, empty stand-in core for ``platform``."""
    module = _module(platform)
    return getattr(module, STANDINS[platform][1])(**kwargs)


def standin_transport(platform: str, core: Any) -> Any:
    """An ``httpx.MockTransport`` that lets a connector talk to ``core`` in-process."""
    return _module(platform).mock_transport(core)


def standin_tokens(core: Any, country: str | None = None) -> StaticTokens | None:
    """OAuth2 stand-ins: a token their own authorization server just issued (with the
    scopes ``connect`` asks for) and the connection values a real connect would have learned
    (``core.connection_values()``, e.g. Xero's tenant_id, Zoho's organization_id; on a
    stand-in holding one business or company per country, Sage and Business Central, the one
    in ``country``); None for API-key stand-ins."""
    if getattr(core, "oauth", None) is None:
        return None
    values = dict(getattr(core.oauth, "values", None) or {})
    learned = getattr(core, "connection_values", None)  # what connect's discovery learns
    if learned is not None:
        values.update(learned())
    if country is not None and hasattr(core, "demo_choice"):
        values.update(core.demo_choice(country))
    if hasattr(core, "organization_id"):
        values["organization_id"] = core.organization_id
    if hasattr(core, "realm_id"):  # QuickBooks: the company the connection is for
        values["realm_id"] = core.realm_id
    return StaticTokens(core.oauth.issue()["access_token"], values=values)


def standin_options(core: Any, country: str) -> dict[str, Any]:
    """The platform options (``ConnectorSettings.options``) that fit the stand-in's company in
    ``country``, e.g. Business Central's tax groups and areas; {} for the others."""
    options = getattr(core, "demo_options", None)
    return dict(options(country)) if options is not None else {}


def standin_app(platform: str, core: Any) -> Any:
    """The ASGI app serving ``core`` over real HTTP."""
    return _module(platform).asgi_app(core)


def serve_standin(platform: str, host: str, port: int, api_key: str | None = None) -> None:
    from autoinvoice.sandbox.server import serve_forever

    kwargs = {"api_key": api_key} if api_key else {}
    core = make_standin(platform, **kwargs)
    print(f"{platform} stand-in on http://{host}:{port}")
    serve_forever(standin_app(platform, core), host, port)
