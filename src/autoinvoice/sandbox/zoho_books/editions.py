"""The Zoho Books editions the stand-in models: one realistic organisation per country.

An organisation's edition follows its country (fixed when it is created) and fixes its base
currency, its default taxes and the VAT treatment field its contacts and invoices carry
(zoho.com/books/api/v3/invoices and /contacts, "Create an invoice" / "Create a Contact"):

- ``US``: USD, no VAT treatment, no default taxes (sales tax is set up by the organisation).
- ``GB`` (UK edition): GBP; ``vat_treatment`` "🇬🇧 only": ``uk`` (a business located in the
  UK), ``overseas`` (outside the UK; before Brexit split as ``eu_vat_registered``,
  ``eu_vat_not_registered``, ``non_eu``) and ``eu_vat_registered`` (Northern Ireland protocol
  goods, "available only for organizations enabled for NI protocol"); default rates Standard
  20 %, Reduced 5 %, Zero 0 % (zoho.com/uk/books/help/settings/taxes; HMRC's rates).
- ``DE`` (EU edition): EUR; ``tax_treatment`` with the treatments Zoho's German help names
  "Home Country", "EU VAT Registered", "EU Non VAT Registered", "Non-EU"
  (zoho.com/en-de/books/help/vat-sales/vat-sales: "if your customer lives in an EU country and
  has a VAT registration, all the items selected in the transaction must be associated with
  Zero Rate (0%) VAT"), as ``home_country``, ``eu_vat_registered``, ``eu_vat_not_registered``,
  ``non_eu`` (``eu_vat_not_registered`` is written so in a Zoho Books DE user's Deluge call of
  ``PUT /contacts`` on www.zohoapis.eu; ``home_country`` and ``non_eu`` follow the UK edition's
  spelling: unconfirmed); default rates Standard 19 %, Reduced 7 %, Zero 0 %
  (zoho.com/de-de/billing/help/settings/vat/taxes: "Standard Rate [19%], Reduced Rate [7%],
  and Zero Rate").
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Edition:
    country: str
    currency: str
    treatment_field: str | None = None
    treatments: tuple[str, ...] = ()
    home: str | None = None
    #: the treatment whose invoices need the customer's VAT registration number
    registered: str | None = None
    taxes: tuple[tuple[str, Decimal], ...] = ()


EDITIONS = {
    "US": Edition("US", "USD"),
    "GB": Edition("GB", "GBP", "vat_treatment", ("uk", "overseas", "eu_vat_registered"),
                  home="uk", registered="eu_vat_registered",
                  taxes=(("Standard Rate", Decimal(20)), ("Reduced Rate", Decimal(5)),
                         ("Zero Rate", Decimal(0)))),
    "DE": Edition("DE", "EUR", "tax_treatment",
                  ("home_country", "eu_vat_registered", "eu_vat_not_registered", "non_eu"),
                  home="home_country", registered="eu_vat_registered",
                  taxes=(("Standard Rate", Decimal(19)), ("Reduced Rate", Decimal(7)),
                         ("Zero Rate", Decimal(0)))),
}
#: a demo tenant's currency -> the country of its organisation
COUNTRY_OF_CURRENCY = {"USD": "US", "GBP": "GB", "EUR": "DE"}


def edition_for(country: str | None = None, currency: str | None = None) -> Edition:
    """The edition of ``country``; else of the country whose currency is ``currency``; else a
    US organisation in ``currency`` (a stand-in of another country, taxes its own)."""
    if country is None and currency is not None:
        country = COUNTRY_OF_CURRENCY.get(currency)
    if country is not None and country in EDITIONS:
        return EDITIONS[country]
    if country is not None:
        return Edition(country, currency or "USD")
    return Edition("US", currency) if currency else EDITIONS["US"]
