"""Our tax outcomes as a Zoho Books organisation's VAT treatment and taxes.

Zoho Books' editions differ by the organisation's country (``GET /organizations``:
``country_code``), and each VAT edition carries a treatment on contacts and on invoices and
credit notes (zoho.com/books/api/v3/invoices "Create an invoice", /contacts "Create a
Contact"):

- UK edition: ``vat_treatment`` "🇬🇧 only": ``uk`` ("the customer resides in UK"),
  ``overseas`` ("if he resides outside of the UK"; pre-Brexit split as ``eu_vat_registered``,
  ``eu_vat_not_registered``, ``non_eu``), ``eu_vat_registered`` ("VAT registered ... resides in
  Northern Ireland and selling Goods", for organisations with the NI protocol enabled); the
  invoice also takes ``vat_reg_no`` ("Enter VAT registration number"). The same values are in
  Zoho's generated SDK docs (``vat_treatment`` of CreateContactRequest / invoices, Python and
  PHP clients) and the help community post "Zoho Books (UK edition) in the post-Brexit era".
- EU edition (Germany and the other EU countries Zoho serves from zohoapis.eu):
  ``tax_treatment``, the treatments the German help names "Home Country", "EU VAT
  Registered", "EU Non VAT Registered" and "Non-EU" (zoho.com/en-de/books/help/vat-sales/
  vat-sales), written ``home_country``, ``eu_vat_registered``, ``eu_vat_not_registered``,
  ``non_eu``. ``tax_treatment: "eu_vat_not_registered"`` on a Books DE contact is confirmed by
  a Zoho Books DE user's Deluge ``PUT /contacts`` on www.zohoapis.eu (public repository
  code); the global v3 reference lists ``tax_treatment`` only for GCC, Mexico, Kenya and
  South Africa, so ``home_country`` and ``non_eu`` are **unconfirmed** (the UK edition's
  spelling) -- ``platform.tax_treatments`` lets a tenant name the value its organisation uses.
- US and other editions: no treatment (sales tax by tax id alone, as before).

Treatment of a document (``treatment_for``): ``platform.tax_treatments`` first (keyed by the
document's outcome, the grammar of ``platform.tax_rates``); else reverse charge (AE) and
intra-community supply (K) are ``eu_vat_registered`` in the EU edition -- the German help: "if
your customer lives in an EU country and has a VAT registration, all the items ... must be
associated with Zero Rate (0%) VAT" and services are "automatically eligible for Reverse
Charge" -- and ``overseas`` in the UK edition (K: ``eu_vat_registered``, the NI protocol);
export (G) and not subject (O) are ``non_eu`` / ``overseas`` (an EU buyer of an O supply:
``eu_vat_registered`` with a VAT id, else ``eu_vat_not_registered``); standard, zero and exempt
lines are the home treatment for a buyer of the organisation's country, else
``eu_vat_not_registered`` (EU buyer) / ``non_eu`` / ``overseas``. A contact gets the treatment
of its customer alone (the country and VAT id), an invoice its outcome's, and both the
customer's VAT id as ``vat_reg_no``.

Taxes of a line (``taxes.OrganisationTaxes.for_line``): ``platform.tax_rates`` first (an outcome ->
the organisation's tax id or tax name); a positive rate -> the tax of that percentage
(created when missing, as before); at 0 % in a VAT edition: exempt (E) -> a 0 % tax named
"exempt" when the organisation has one, else its zero rate; Z, AE, K, G -> the 0 % tax named
"Zero Rate" (the EU and UK editions' default; any 0 % tax otherwise, created as "Zero Rate" when
the organisation has none); O -> no tax. Zoho's "tax exemptions" (``tax_exemption_id``,
``GET /settings/taxexemptions``) are documented for the US, Canada, Australia and India
editions only, so they are not used for VAT organisations (unconfirmed for US exempt lines,
which stay without a tax as before).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from autoinvoice.domain.invoice import InvoiceLine, TaxCategory
from autoinvoice.domain.job import Customer
from autoinvoice.domain.tax_outcome import document_outcome, lookup

EU_COUNTRIES = frozenset({"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE",
                          "GR", "EL", "HU", "IE", "IT", "LV", "LT", "LU", "MT", "NL", "PL",
                          "PT", "RO", "SK", "SI", "ES", "SE"})


@dataclass(frozen=True, slots=True)
class Edition:
    """A Zoho Books edition's VAT treatment field and values (None: no treatments)."""

    name: str
    field: str | None = None
    home: str | None = None
    treatments: tuple[str, ...] = ()


UK = Edition("UK", "vat_treatment", "uk", ("uk", "overseas", "eu_vat_registered"))
EU = Edition("EU", "tax_treatment", "home_country",
             ("home_country", "eu_vat_registered", "eu_vat_not_registered", "non_eu"))
NONE = Edition("without VAT treatments")
#: every treatment value a tenant may write in ``platform.tax_treatments``
TREATMENTS = tuple(dict.fromkeys(UK.treatments + EU.treatments))


def edition_of(country: str | None) -> Edition:
    """The edition of an organisation in ``country`` (its ``country_code``)."""
    code = (country or "").upper()
    if code in ("GB", "UK"):
        return UK
    return EU if code in EU_COUNTRIES else NONE


def customer_treatment(edition: Edition, home: str, customer: Customer) -> str | None:
    """A contact's treatment: where its customer is and whether it has a VAT id."""
    if edition.field is None:
        return None
    country = (customer.billing_address.country or home).upper()
    if country == home:
        return edition.home
    if edition is UK:
        return "overseas"
    if country in EU_COUNTRIES:
        return "eu_vat_registered" if customer.vat_id else "eu_vat_not_registered"
    return "non_eu"


def treatment_for(edition: Edition, home: str, customer: Customer,
                  lines: Iterable[InvoiceLine], overrides: Mapping[str, str]) -> str | None:
    """A document's treatment: the tenant's mapping of its outcome, else as documented."""
    if edition.field is None:
        return None
    outcome = document_outcome((line.tax_category.value, line.tax_rate) for line in lines)
    category, rate = outcome or (TaxCategory.STANDARD.value, Decimal(0))
    mapped = lookup(overrides, category, rate)
    if mapped is not None:
        return mapped
    if category == TaxCategory.INTRA_COMMUNITY:
        return "eu_vat_registered"
    if category == TaxCategory.REVERSE_CHARGE:
        return "overseas" if edition is UK else "eu_vat_registered"
    if category in (TaxCategory.EXPORT, TaxCategory.NOT_SUBJECT) and edition is UK:
        return "overseas"
    return customer_treatment(edition, home, customer)


def treatment_problems(edition: Edition, country: str, overrides: Mapping[str, str]
                       ) -> list[str]:
    """``platform.tax_treatments`` entries the organisation's edition does not have."""
    if edition.field is None:
        return [f"platform.tax_treatments.\"{key}\" = {value!r}: a Zoho Books organisation in "
                f"{country or 'this country'} has no VAT treatments"
                for key, value in overrides.items()]
    return [f"platform.tax_treatments.\"{key}\" = {value!r}: not a treatment of the Zoho Books "
            f"{edition.name} edition (its {edition.field}: {', '.join(edition.treatments)})"
            for key, value in overrides.items() if value not in edition.treatments]


def zero_rate(taxes: list[dict[str, Any]], category: str) -> dict[str, Any] | None:
    """The organisation's 0 % tax for a zero-rated, reverse-charged, intra-community, export
    (or, without an exempt tax, exempt) line: "Zero Rate" first, else any 0 % tax."""
    zero = [t for t in taxes if t.get("tax_type", "tax") == "tax"
            and Decimal(str(t.get("tax_percentage", 0))) == 0]
    if category == TaxCategory.EXEMPT:
        exempt = [t for t in zero if "exempt" in str(t.get("tax_name", "")).lower()]
        if exempt:
            return exempt[0]
    named = [t for t in zero if "zero" in str(t.get("tax_name", "")).lower()]
    chosen = named or zero
    return chosen[0] if chosen else None
