"""Automated sales tax (AST), the way a US QuickBooks Online company created after
10 November 2017 computes its sales transactions' tax.

What Intuit documents, and this engine does:

- "Sales tax is determined based on the source and destination address. The source address is
  the company's legal address ... The destination address is the shipping address provided on
  the sales transaction. If a shipping address is not provided, the company address is
  considered as the destination address." (developer.intuit.com/app/developer/qbo/docs/
  workflows/manage-sales-tax-for-us-locales, "Automated sales tax"). The jurisdiction is read
  from ``ShipAddr`` (``CountrySubDivisionCode`` + ``City``), else from the company address.
- "For sales transactions, only: if automated sales tax is enabled
  (Preferences.TaxPrefs.PartnerTaxEnabled is set to true) the supplied transaction tax code
  is replaced by the automated sales tax engine recommendation." (Invoice entity reference,
  ``TxnTaxDetail.TxnTaxCodeRef``). The code AST assigns is the destination's, created on first
  use with one TaxRate per level (state, county, city, district) under the state's agency.
- "Whenever an explicit tax amount is sent in the transaction request the AST engine honors the
  amount and prorates it across tax rates in the AST-assigned tax code." (Intuit developer blog,
  2017-12-11, "Using QuickBooks Online API for automated sales tax"); Intuit's answer on
  intuit/QuickBooks-V3-PHP-SDK#199: the override is ``TxnTaxDetail.TxnTaxCodeRef`` plus
  ``TxnTaxDetail.TotalTax``; Intuit's AST sample: "In order for AST to work, the
  TxnTaxDetail.TxnTaxCodeRef has to be provided. However, the value does not matter".
- Finance.xsd ``TxnTaxDetail.UseAutomatedSalesTax``: true always keeps AST's rates; otherwise
  the company's "AllowPartnerTaxOverride" preference decides whether an app's amount is kept
  (``allow_partner_tax_override``, on by default here: unconfirmed what a new company has).

Taxable base: the lines coded ``TAX``; each rate's tax rounded half-up to the cent.
The rates below are the published combined rates of a few Oklahoma/Texas places (2026);
any other place in a known state gets the state rate alone, and a place outside the US
(or in another state) none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

Obj = dict[str, Any]
CENT = Decimal("0.01")

#: state -> (agency, state rate)
STATES: dict[str, tuple[str, Decimal]] = {
    "OK": ("Oklahoma Tax Commission", Decimal("4.5")),
    "TX": ("Texas Comptroller of Public Accounts", Decimal("6.25")),
}
#: (state, city) -> the local levels on top of the state rate
PLACES: dict[tuple[str, str], tuple[tuple[str, Decimal], ...]] = {
    ("OK", "tulsa"): (("Tulsa County", Decimal("0.367")), ("Tulsa City", Decimal("3.65"))),
    ("OK", "oklahoma city"): (("Oklahoma City", Decimal("4.125")),),
    ("OK", "broken arrow"): (("Tulsa County", Decimal("0.367")),
                             ("Broken Arrow City", Decimal("4.55"))),
    ("TX", "houston"): (("Houston City", Decimal("1.0")), ("Houston MTA", Decimal("1.0"))),
}


@dataclass(frozen=True)
class Jurisdiction:
    name: str  # the AST tax code's name, e.g. "Tulsa, OK"
    agency: str
    levels: tuple[tuple[str, Decimal], ...]  # (rate name, percent)


def jurisdiction(address: Obj) -> Jurisdiction | None:
    """Where AST says the sale takes place; None outside the states it knows (no tax)."""
    country = str(address.get("Country") or "US").upper()
    state = str(address.get("CountrySubDivisionCode") or "").upper()
    if country not in ("US", "USA", "UNITED STATES") or state not in STATES:
        return None
    city = str(address.get("City") or "").strip()
    agency, state_rate = STATES[state]
    local = PLACES.get((state, city.lower()), ())
    name = f"{city}, {state}" if local else state
    return Jurisdiction(name, agency, ((f"{state} State", state_rate), *local))


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def tax_lines(rates: list[Obj], taxable: Decimal, override: Decimal | None) -> list[Obj]:
    """One ``TaxLine`` per rate: AST's own amounts, or ``override`` prorated across the rates
    in proportion to them (the last rate takes the rounding remainder)."""
    computed = [cents(taxable * rate["RateValue"] / 100) for rate in rates]
    amounts = computed
    if override is not None and rates:
        weight = sum((rate["RateValue"] for rate in rates), Decimal(0))
        amounts = [cents(override * rate["RateValue"] / weight) for rate in rates[:-1]]
        amounts.append(override - sum(amounts, Decimal(0)))
    return [{"Amount": amount, "DetailType": "TaxLineDetail", "TaxLineDetail": {
        "TaxRateRef": {"value": rate["Id"], "name": rate["Name"]}, "PercentBased": True,
        "TaxPercent": rate["RateValue"], "NetAmountTaxable": taxable,
        **({"OverrideDeltaAmount": amount - own} if override is not None else {})}}
        for rate, amount, own in zip(rates, amounts, computed, strict=True)]


class AutomatedSalesTax:
    """The engine of one company: ``compute`` fills a new transaction's ``TxnTaxDetail``;
    the tax codes, rates and agencies it needs are created in the company's ``objects``."""

    def __init__(self, company_address: Obj, objects: dict[str, dict[str, Obj]],
                 put: Callable[[str, Obj], Obj]) -> None:
        self.company_address = company_address
        self.allow_partner_tax_override = True
        self._objects, self._put = objects, put

    def home_code(self) -> Obj:
        home = jurisdiction(self.company_address)
        assert home is not None  # the company's own address is in a state AST knows
        return self._ensure_code(home)

    def _ensure_code(self, place: Jurisdiction) -> Obj:
        """AST's tax code for ``place`` (one rate per level under the state's agency)."""
        for code in self._objects["TaxCode"].values():
            if code.get("Name") == place.name:
                return code
        agency = self._named("TaxAgency", "DisplayName", place.agency) or self._put(
            "TaxAgency", {"DisplayName": place.agency})
        refs = []
        for name, percent in place.levels:
            rate = self._named("TaxRate", "Name", name) or self._put("TaxRate", {
                "Name": name, "RateValue": percent, "Active": True,
                "AgencyRef": {"value": agency["Id"]}})
            refs.append({"TaxRateRef": {"value": rate["Id"]},
                         "TaxTypeApplicable": "TaxOnAmount", "TaxOrder": 0})
        return self._put("TaxCode", {"Name": place.name, "Taxable": True, "TaxGroup": True,
                                     "Active": True,
                                     "SalesTaxRateList": {"TaxRateDetail": refs}})

    def _named(self, entity: str, field: str, value: str) -> Obj | None:
        return next((o for o in self._objects[entity].values() if o.get(field) == value), None)

    def _rates_of(self, code: Obj) -> list[Obj]:
        return [self._objects["TaxRate"][ref["TaxRateRef"]["value"]]
                for ref in code.get("SalesTaxRateList", {}).get("TaxRateDetail", [])]

    def compute(self, obj: Obj, taxable: Decimal, supplied: Obj) -> Obj:
        """The transaction's ``TxnTaxDetail`` as AST leaves it."""
        if not (supplied.get("TxnTaxCodeRef") or {}).get("value"):
            return {"TotalTax": Decimal(0)}  # no placeholder code: AST does not run
        place = jurisdiction(obj.get("ShipAddr") or self.company_address)
        code = self._ensure_code(place) if place is not None else self.home_code()
        override = supplied.get("TotalTax")
        if supplied.get("UseAutomatedSalesTax") is True or not self.allow_partner_tax_override:
            override = None
        # a destination outside every taxing jurisdiction: no tax, unless the app says so
        rates = self._rates_of(code) if place is not None or override is not None else []
        lines = tax_lines(rates, taxable, override)
        total = sum((line["Amount"] for line in lines), Decimal(0))
        return {"TxnTaxCodeRef": {"value": code["Id"], "name": code["Name"]},
                "TotalTax": total, "TaxLine": lines}
