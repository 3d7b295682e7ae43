"""The Business Central stand-in's companies: one realistic company per country, each with its
own tax setup as BC keeps it (no invented codes).

BC computes tax from its own setup, never from a percentage sent to it:

- a **VAT** company (W1 and the EU localizations) -- the API's ``taxGroups`` are its VAT
  product posting groups, its ``taxAreas`` its VAT business posting groups (``Tax Group
  Buffer`` / ``Tax Area Buffer``, type ``VAT``); a sales line's VAT % and calculation type come
  from the VAT Posting Setup row of (the customer's VAT business posting group, the line's VAT
  product posting group). "Reverse Charge VAT" puts 0 % on the sales line (the buyer accounts
  for it); a combination without a setup row is refused.
  learn.microsoft.com/dynamics365/business-central/application/base-application/table/
  microsoft.integration.entity.tax-group-buffer (and .tax-area-buffer);
  microsoft.github.io/BCApps/reference/base-application/Table/
  Microsoft.Finance.VAT.Setup.VAT-Posting-Setup.html; Enum "Tax Calculation Type".
- a **US** company -- ``taxGroups`` are its tax groups, ``taxAreas`` its tax areas (type
  ``Sales Tax``, e.g. ``ATLANTA, GA`` in Microsoft's own example); a line is taxed at the sum
  of the area's jurisdictions' rates for its tax group, only when the customer is
  ``taxLiable`` (Sales Header "Tax Area Code": "in combination with the Tax Group Code on the
  sales line, to determine the sales tax %").

The codes follow Microsoft's demo companies (VAT: business groups DOMESTIC / EU / EXPORT,
product groups STANDARD / REDUCED / ZERO / NO VAT; US: tax groups such as MATERIALS, LABOR,
NONTAXABLE); a localization's demo data may name them differently (unconfirmed per version).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

NORMAL, REVERSE = "Normal VAT", "Reverse Charge VAT"
VAT, SALES_TAX = "VAT", "Sales Tax"


@dataclass(frozen=True)
class TaxSetup:
    tax_type: str  # VAT or Sales Tax
    groups: Mapping[str, str]  # taxGroups: code -> display name
    areas: Mapping[str, str]  # taxAreas: code -> display name
    #: (area, group) -> (percent, calculation type); US: the summed jurisdictions' rate
    rates: Mapping[tuple[str, str], tuple[Decimal, str]]
    default_area: str | None = None  # what a new customer gets (BC's customer template)


@dataclass(frozen=True)
class CompanySpec:
    name: str
    country: str
    currency: str
    tax: TaxSetup
    accounts: Mapping[str, str] = field(default_factory=lambda: {
        "40100": "Income, Services", "40200": "Income, Product Sales",
        "40300": "Income, Consulting"})


def _vat(standard: str, reduced: str) -> TaxSetup:
    std, red, zero = Decimal(standard), Decimal(reduced), Decimal(0)
    rates: dict[tuple[str, str], tuple[Decimal, str]] = {}
    for group, pct in (("STANDARD", std), ("REDUCED", red), ("ZERO", zero),
                       ("NO VAT", zero)):
        rates[("DOMESTIC", group)] = (pct, NORMAL)
        rates[("EU", group)] = (pct, REVERSE if pct else NORMAL)
        rates[("EXPORT", group)] = (zero, NORMAL)
    return TaxSetup(VAT, {"STANDARD": "Standard VAT", "REDUCED": "Reduced VAT",
                          "ZERO": "Zero-rated VAT", "NO VAT": "No VAT"},
                    {"DOMESTIC": "Domestic customers and vendors",
                     "EU": "Customers and vendors in EU",
                     "EXPORT": "Other customers and vendors (not EU)"}, rates, "DOMESTIC")


def _us() -> TaxSetup:
    areas = {"TULSA, OK": Decimal("8.5"), "AUSTIN, TX": Decimal("6.25"),
             "ATLANTA, GA": Decimal("8.9")}
    rates: dict[tuple[str, str], tuple[Decimal, str]] = {}
    for area, pct in areas.items():
        rates[(area, "MATERIALS")] = (pct, SALES_TAX)
        rates[(area, "LABOR")] = (Decimal(0), SALES_TAX)
        rates[(area, "NONTAXABLE")] = (Decimal(0), SALES_TAX)
    return TaxSetup(SALES_TAX, {"MATERIALS": "Taxable materials and parts",
                                "LABOR": "Labor (not taxable here)",
                                "NONTAXABLE": "Nontaxable"},
                    {code: code for code in areas}, rates)


COMPANIES: Mapping[str, CompanySpec] = {
    "US": CompanySpec("CRONUS USA, Inc.", "US", "USD", _us()),
    "DE": CompanySpec("CRONUS AG", "DE", "EUR", _vat("19", "7")),
}

#: what each company's tenant maps (the README's example for that country)
DEMO_OPTIONS: Mapping[str, Mapping[str, Mapping[str, str]]] = {
    "US": {"tax_groups": {"S": "MATERIALS", "Z": "LABOR", "E": "NONTAXABLE",
                          "O": "NONTAXABLE"},
           "tax_areas": {"S:8.5": "TULSA, OK", "S:6.25": "AUSTIN, TX", "S": "TULSA, OK",
                         "Z": "TULSA, OK", "E": "TULSA, OK", "O": "TULSA, OK"}},
    "DE": {"tax_groups": {"S:19": "STANDARD", "S:7": "REDUCED", "Z": "ZERO", "E": "NO VAT",
                          "AE": "STANDARD", "K": "ZERO", "G": "ZERO", "O": "NO VAT"},
           "tax_areas": {"S": "DOMESTIC", "Z": "DOMESTIC", "E": "DOMESTIC", "AE": "EU",
                         "K": "EU", "G": "EXPORT", "O": "EXPORT"}},
}
