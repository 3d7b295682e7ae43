"""Which of a Xero organisation's tax types books each of our tax outcomes.

Xero reports a line by its tax rate's ``ReportTaxType`` (enum of ``TaxRate.ReportTaxType`` in
``XeroAPI/Xero-OpenAPI`` ``xero_accounting.yaml``; the types each edition uses are listed under
"Report Tax Types" and its default rates under "Tax Types" at
developer.xero.com/documentation/api/accounting/types). So an outcome is matched by report type,
never by rate alone (every 0 % outcome used to land on the first 0 % revenue rate):

====  ==========================================  ======================  ===================
key   report types tried, in order                UK organisation         US / Global
====  ==========================================  ======================  ===================
S:p   OUTPUT, USSALESTAX at ``EffectiveRate`` p     OUTPUT2 20 %,           the rate at p %,
                                                  RROUTPUT 5 %            else created
Z     OUTPUT at 0 %, EXEMPTOUTPUT, NONE             ZERORATEDOUTPUT         NONE / OUTPUT 0 %
E     EXEMPTOUTPUT, NONE                            EXEMPTOUTPUT            NONE
AE    ECOUTPUTSERVICES                              ECZROUTPUTSERVICES      none: map it
K     ECOUTPUT                                      ECZROUTPUT              none: map it
G     EXEMPTEXPORT, OUTPUT at 0 %, NONE             ZERORATEDOUTPUT         NONE / OUTPUT 0 %
O     NONE, BASEXCLUDED, NONEOUTPUT, OSOUTPUT       NONE "No VAT"           NONE
====  ==========================================  ======================  ===================

``S`` at 0 % is treated as ``Z``. Reverse charge and intra-community supplies are never put on
a plain zero or no-tax rate: an organisation without an EC type (Xero's Global edition, e.g. a
German company) must map them in ``platform.tax_types`` (``domain.tax_outcome`` keys, most
specific first), which always wins over the defaults. A mapped type the organisation lacks, or
an outcome no rate fits, is refused naming the key and listing the organisation's revenue tax
types. Only rates that are ``ACTIVE`` and ``CanApplyToRevenue`` are candidates.

Unconfirmed: the ``ReportTaxType`` Xero returns for ZERORATEDOUTPUT (the UK report types list
none for zero rating, so OUTPUT at 0 % is assumed); a GB seller's B2B services to EU
businesses since 2021 are O in our engine and land on "No VAT", off the VAT return, where an
accountant may want them in box 6 (map ``O`` to ZERORATEDOUTPUT); whether Xero's UK edition
still wants the EC types for AE / K outside Northern Ireland; which type Xero's AU edition
wants for input-taxed (E) sales (docs/platforms.md, Xero).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from autoinvoice.domain.tax_outcome import matching_key, percent_text

Obj = dict[str, Any]
TAXED = ("OUTPUT", "USSALESTAX")
ZERO_OUTPUT = "OUTPUT@0"  # a rate reported as OUTPUT whose EffectiveRate is 0
DEFAULTS: dict[str, tuple[str, ...]] = {
    "Z": (ZERO_OUTPUT, "EXEMPTOUTPUT", "NONE"),
    "E": ("EXEMPTOUTPUT", "NONE"),
    "AE": ("ECOUTPUTSERVICES",),
    "K": ("ECOUTPUT",),
    "G": ("EXEMPTEXPORT", ZERO_OUTPUT, "NONE"),
    "O": ("NONE", "BASEXCLUDED", "NONEOUTPUT", "OSOUTPUT"),
}


def revenue_rates(rates: Iterable[Obj]) -> list[Obj]:
    """The rates a sales line may carry."""
    return [r for r in rates if r.get("TaxType") and r.get("CanApplyToRevenue")
            and r.get("Status", "ACTIVE") == "ACTIVE"]


def effective(rate: Obj) -> Decimal:
    return Decimal(str(rate.get("EffectiveRate", "0"))).normalize()


def listing(rates: Iterable[Obj]) -> str:
    """``OUTPUT2 (20% (VAT on Income)), NONE (No VAT), …`` for error messages."""
    return ", ".join(f"{r['TaxType']} ({r.get('Name') or r.get('ReportTaxType')})"
                     for r in rates) or "none"


def by_default(rates: list[Obj], category: str, rate: Decimal) -> str | None:
    """The organisation's tax type for an outcome by Xero's report types (see the table)."""
    percentage = (rate * 100).normalize()
    if category == "S" and percentage:
        return _first(rates, TAXED, percentage)
    for report in DEFAULTS["Z" if category == "S" else category]:
        found = (_first(rates, ("OUTPUT",), Decimal(0)) if report == ZERO_OUTPUT
                 else _first(rates, (report,), None))
        if found is not None:
            return found
    return None


def _first(rates: list[Obj], reports: tuple[str, ...], percentage: Decimal | None) -> str | None:
    for candidate in rates:
        if candidate.get("ReportTaxType") in reports and (
                percentage is None or effective(candidate) == percentage):
            return str(candidate["TaxType"])
    return None


def mapped(mapping: Mapping[str, str], category: str, rate: Decimal) -> tuple[str, str] | None:
    """``(key, tax type)`` of ``platform.tax_types`` for the outcome, or None."""
    key = matching_key(mapping, category, rate)
    return (key, mapping[key]) if key is not None else None


def unknown_type_message(key: str, code: str, rates: list[Obj]) -> str:
    return (f"platform.tax_types.\"{key}\" = {code!r}: this Xero organisation has no such tax "
            f"type for sales (its tax types: {listing(rates)})")


def no_type_message(category: str, rate: Decimal, rates: list[Obj]) -> str:
    outcome = f"{category}:{percent_text(rate)}" if category == "S" else category
    return (f"this Xero organisation has no tax type for {outcome} (its tax types: "
            f"{listing(rates)}); map it in platform.tax_types, e.g. tax_types = "
            f"{{ \"{category}\" = \"<TaxType>\" }}")
