"""A ledger's own tax codes, as the tenant maps them: required where the ledger computes tax from
its own setup (Business Central), and checked against the ledger itself -- at ``connect`` and
when ``worker`` / ``serve`` start -- where the connector can read that setup
(``check_setup``: Business Central's tax groups and areas, Sage's tax rates, Xero's tax
types, Zoho Books' taxes and VAT treatments)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from autoinvoice.connectors.errors import ConnectorError
from autoinvoice.validation import InputError

if TYPE_CHECKING:
    from autoinvoice.bootstrap import App
    from autoinvoice.config import PlatformConfig

log = logging.getLogger("autoinvoice.ledger_setup")
__all__ = ["LEDGERS_WITH_TAX_SETUP", "check_ledger_setup", "tax_code_problems"]


def tax_code_problems(platform: PlatformConfig, key: str) -> list[str]:
    """A ledger that computes tax from its own codes needs the tenant's mapping to them."""
    if platform.name != "business_central":
        return []
    said = {"tax_groups": "its tax groups (a line's tax code), e.g. tax_groups = { \"S:19\" = "
                          "\"STANDARD\", \"AE\" = \"STANDARD\", \"O\" = \"NO VAT\" }",
            "tax_areas": "its tax areas (the customer's VAT business posting group or US tax "
                         "area), e.g. tax_areas = { \"S\" = \"DOMESTIC\", \"AE\" = \"EU\", "
                         "\"O\" = \"EXPORT\" }"}
    return [f"{key}.{name}: Business Central computes tax from the company's own setup: map "
            f"each tax outcome to {text} (README, Business Central)"
            for name, text in said.items() if not getattr(platform, name)]


#: ledgers whose connector checks the tenant's tax code mapping against the ledger itself
LEDGERS_WITH_TAX_SETUP = frozenset({"business_central", "sage", "xero", "zoho_books"})


def check_ledger_setup(app: App, tenants: Iterable[str] | None = None) -> None:
    """At start (worker, serve) and after ``connect``: each connected tenant's mapped tax codes
    exist on its ledger (connectors with a ``check_setup``: Business Central, Sage, Xero). A
    code the ledger lacks refuses the start, naming the key and listing the ledger's codes; a
    tenant not yet connected, or a ledger out of reach, is only logged (the first invoice says
    it)."""
    problems: list[str] = []
    for name in tenants or list(app.config.tenants):
        if app.config.tenant(name).platform.name not in LEDGERS_WITH_TAX_SETUP:
            continue
        try:
            check = app.connector(name).check_setup  # type: ignore[attr-defined]
            problems += [f"tenants.{name}: {p}" for p in check()]
        except ConnectorError as exc:
            log.warning("tenant %s: the ledger's tax setup was not checked: %s", name,
                        exc.message)
    if problems:
        raise InputError(problems, source=f"{app.config.source} against the ledger")
