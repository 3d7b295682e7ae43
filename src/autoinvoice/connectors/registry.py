"""Every platform slug we know, and how to build its connector.

A plain dict of slug -> module path and class name, imported lazily so that building one
connector never imports the others. Platforms still without a connector are listed with
``None``: asking for them raises ``ConnectorUnavailable`` with a clear message.
"""

from __future__ import annotations

import importlib

from autoinvoice.connectors.base import Connector, ConnectorSettings
from autoinvoice.connectors.errors import ConnectorUnavailable
from autoinvoice.domain.invoice import TaxRounding

CONNECTORS: dict[str, tuple[str, str] | None] = {
    "sandbox": ("autoinvoice.connectors.sandbox", "SandboxConnector"),
    "stripe": ("autoinvoice.connectors.stripe", "StripeConnector"),
    "quickbooks": ("autoinvoice.connectors.quickbooks", "QuickBooksConnector"),
    "xero": ("autoinvoice.connectors.xero", "XeroConnector"),
    "freshbooks": ("autoinvoice.connectors.freshbooks", "FreshBooksConnector"),
    "zoho_books": ("autoinvoice.connectors.zoho_books", "ZohoBooksConnector"),
    "business_central": ("autoinvoice.connectors.business_central", "BusinessCentralConnector"),
    "square": None,
    "wave": None,
    "sage": ("autoinvoice.connectors.sage", "SageConnector"),
    "paypal": None,
    "odoo": None,
    "sap_business_one": None,
    "invoicely": None,
    "bill_com": None,
    "kashflow": None,
    "invoice_ninja": None,
    "harvest": None,
    "financialforce": None,
    "netsuite": None,
    "myob": ("autoinvoice.connectors.myob", "MyobConnector"),
    "servicetitan": None,
    "jobber": None,
}

#: How each platform rounds tax (where documented), so a tenant's ``tax.rounding`` can be
#: checked against it before the first total mismatch: Stripe computes each tax rate's amount
#: per invoice line item; the sandbox does the same.
TAX_ROUNDING: dict[str, TaxRounding] = {
    # Business Central: VAT Amount Line (table 290) rounds once per VAT identifier on the
    # document, Sales Tax Calculate (codeunit 398) per jurisdiction; sandbox.business_central too
    "business_central": TaxRounding.DOCUMENT,
    "stripe": TaxRounding.LINE,
    "sandbox": TaxRounding.LINE,
    # FreshBooks: each line's tax from its taxAmount1 percentage, to the cent (inferred;
    # sandbox.freshbooks does the same)
    "freshbooks": TaxRounding.LINE,
    # QuickBooks Online (US): the transaction's tax code applies each rate once to the sum of
    # the TAX lines ("Manage sales tax for US locales"): tax rounded per document.
    "quickbooks": TaxRounding.DOCUMENT,
    # Xero: "calculates tax on a per line basis, rounding to two decimal places, and then sums
    # the tax totals of each line" (Rounding in Xero); sandbox.xero does the same
    "xero": TaxRounding.LINE,
    "zoho_books": TaxRounding.LINE,  # item-level tax rounding (sandbox.zoho_books)
    # Sage v3.1 takes each invoice line's tax_amount ("required in v3.1", Swagger) and sums
    # the lines; sandbox.sage does the same
    "sage": TaxRounding.LINE,
    # MYOB: tax-exclusive service lines, each line's tax from its tax code rate, rounded per
    # line (inferred; sandbox.myob does the same)
    "myob": TaxRounding.LINE,
}


def rounding_problems(platform: str, rounding: TaxRounding, field: str) -> list[str]:
    """A problem when the tenant rounds tax unlike its platform (totals would never match)."""
    theirs = TAX_ROUNDING.get(platform)
    if theirs is None or theirs == rounding:
        return []
    return [f"{field}: {platform} rounds tax per {theirs.value}; set rounding = "
            f"\"{theirs.value}\" so our totals equal the platform's"]


def build_connector(platform: str, settings: ConnectorSettings) -> Connector:
    if platform not in CONNECTORS:
        raise ConnectorUnavailable(
            f"unknown platform {platform!r}; known: {', '.join(sorted(CONNECTORS))}",
            platform=platform,
        )
    target = CONNECTORS[platform]
    if target is None:
        raise ConnectorUnavailable(
            f"platform {platform!r} has no connector yet (see the README's platform table)",
            platform=platform,
        )
    module = importlib.import_module(target[0])
    connector: Connector = getattr(module, target[1])(settings)
    return connector
