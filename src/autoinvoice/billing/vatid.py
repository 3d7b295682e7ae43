"""VAT areas and VAT ids: which countries are EU member states, and whether an id is valid for
its country (python-stdnum checks the syntax and check digits). Shared by the tax plan and the
pre-flight check, so both judge an id the same way."""

from __future__ import annotations

from stdnum.eu import vat as eu_vat
from stdnum.gb import vat as gb_vat
from stdnum.util import clean

#: ISO 3166 codes of the 27 EU member states (Greece as GR; its VAT ids start with EL).
EU_MEMBER_STATES: frozenset[str] = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"})
_COUNTRY_ALIASES = {"EL": "GR", "UK": "GB"}  # VAT-style codes someone may type as a country
_VAT_PREFIXES = {"GR": "EL"}  # otherwise a VAT id starts with the ISO code


def country(code: str) -> str:
    """An ISO 3166 country code, accepting the VAT-style aliases EL and UK."""
    code = code.strip().upper()
    return _COUNTRY_ALIASES.get(code, code)


def is_valid_vat_id(vat_id: str, country: str) -> bool:
    """Syntax and check digits for EU and UK ids (an EU id must carry its country's prefix);
    elsewhere there is nothing to check against, so the id is taken as given."""
    if country in EU_MEMBER_STATES:
        compact = clean(vat_id, " -./").upper()  # eu_vat.compact raises on an unknown prefix
        return compact.startswith(_VAT_PREFIXES.get(country, country)) and eu_vat.is_valid(compact)
    if country == "GB":
        return gb_vat.is_valid(vat_id)
    return True
