"""Tax decided once per job: which rate and category each kind of line gets, the legal notes
the document must carry, and the problems that hold the invoice instead of a guess.

Categories are UNCL 5305 codes, chosen so that an EN 16931 validator accepts the document:
S only with a rate above zero (BR-S-05), Z for a rate of zero without a reason (BR-Z-10),
E, AE and O always with a reason in ``exemption_reasons`` (BR-E-10, BR-AE-10, BR-O-10),
and O never mixed with another category (BR-O-11).

Sales tax (US): the rate and the taxable kinds come from the jurisdiction of the *service
address* (the most specific match; ties go to the first configured), or from the tenant's single
rate when no jurisdiction is configured. A kind that is not taxable there gets (0, Z). A valid
exemption certificate makes every line (0, E).

VAT (EU, UK): the seller's rates, with a pricebook item's own rate for reduced-rate goods. A
cross-border business customer inside the EU is reverse charged (AE); a business customer outside
the seller's VAT area is outside its scope (O), since the place of supply of a B2B service is the
customer's country (Art. 44 VAT Directive). A private customer pays the seller's VAT.

Problem codes: ``no_tax_jurisdiction``, ``exemption_unverified``, ``exemption_expired``,
``invalid_vat_id``, ``foreign_place_of_supply``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from autoinvoice.billing.phrases import phrase
from autoinvoice.billing.problems import Problem
from autoinvoice.billing.rules import (
    CustomerTerms,
    ExemptionCertificate,
    Jurisdiction,
    Taxability,
    TaxRegime,
    TaxRules,
)
from autoinvoice.billing.vatid import EU_MEMBER_STATES, is_valid_vat_id
from autoinvoice.billing.vatid import country as _country
from autoinvoice.domain.invoice import LineKind, Seller, TaxCategory
from autoinvoice.domain.job import Address, Customer

_ZERO = Decimal(0)

Treatment = tuple[Decimal, TaxCategory]


@dataclass(frozen=True, slots=True)
class TaxPlan:
    """What ``plan_tax`` decided for one job; ``for_line`` answers per line.

    ``table`` holds (rate, category) per kind of line; for the kinds in ``item_rates`` a
    pricebook item's own rate (a reduced VAT rate) replaces the table's rate."""

    table: Mapping[LineKind, Treatment]
    item_rates: frozenset[LineKind] = frozenset()
    notes: tuple[str, ...] = ()
    exemption_reasons: tuple[tuple[TaxCategory, str], ...] = ()
    problems: tuple[Problem, ...] = ()
    basis: str = ""  # which rule decided, in words (kept in the audit log with the invoice)

    def for_line(self, kind: LineKind, item_rate: Decimal | None = None
                 ) -> tuple[Decimal, TaxCategory]:
        if item_rate is not None and kind in self.item_rates:
            return item_rate, _rated(item_rate)
        return self.table[kind]


def plan_tax(rules: TaxRules, seller: Seller, customer: Customer, terms: CustomerTerms | None,
             service_address: Address, day: date) -> TaxPlan:
    """``terms`` are the tenant's records of ``customer`` (its exemption certificates);
    ``service_address`` is where the work was done; ``day`` decides whether a certificate
    is still valid."""
    if rules.regime is TaxRegime.VAT:
        return _plan_vat(rules, seller, customer, service_address)
    return _plan_sales_tax(rules, customer, terms, service_address, day)


# ---- per kind of line -------------------------------------------------------------------------

def is_taxable(taxable: Taxability, kind: LineKind) -> bool:
    """A flat-rate SERVICE follows labor: it is sold in place of the visit's labor, and its
    parts are not stated separately."""
    match kind:
        case LineKind.LABOR | LineKind.SERVICE:
            return taxable.labor
        case LineKind.TRAVEL:
            return taxable.travel
        case LineKind.PART:
            return taxable.parts
        case LineKind.FEE | LineKind.MILEAGE:
            return taxable.fees


def _rated(rate: Decimal) -> TaxCategory:
    return TaxCategory.STANDARD if rate > 0 else TaxCategory.ZERO


def _uniform(rate: Decimal, category: TaxCategory) -> dict[LineKind, Treatment]:
    return {kind: (rate, category) for kind in LineKind}


def _by_taxability(rate: Decimal, taxable: Taxability, untaxed: TaxCategory
                   ) -> dict[LineKind, Treatment]:
    return {kind: (rate, _rated(rate)) if is_taxable(taxable, kind) else (_ZERO, untaxed)
            for kind in LineKind}


def _all_lines(category: TaxCategory, reason: str, *, note: bool, basis: str) -> TaxPlan:
    """Every line untaxed for one reason, which the document states (and, as a note, prints)."""
    return TaxPlan(_uniform(_ZERO, category), notes=(reason,) if note else (),
                   exemption_reasons=((category, reason),), basis=basis)


# ---- sales tax --------------------------------------------------------------------------------

def _plan_sales_tax(rules: TaxRules, customer: Customer, terms: CustomerTerms | None,
                    address: Address, day: date) -> TaxPlan:
    """An exempt customer needs no jurisdiction: every line is (0, E) wherever the work was."""
    certificate, problems = _exemption(customer, terms, address, day)
    if certificate is not None:
        reason = phrase(rules.language, "exempt_certificate", number=certificate.number)
        return _all_lines(TaxCategory.EXEMPT, reason, note=False,
                          basis=f"sales tax: exempt by certificate {certificate.number} "
                                f"(regions {', '.join(certificate.regions) or 'all'})")
    jurisdiction = _jurisdiction(rules.jurisdictions, address)
    if jurisdiction is not None:
        table = _by_taxability(jurisdiction.rate, jurisdiction.taxable, TaxCategory.ZERO)
        basis = (f"sales tax: jurisdiction {jurisdiction.name} at {jurisdiction.rate} "
                 "(the most specific match on the service address)")
    elif rules.jurisdictions:
        table = _uniform(_ZERO, TaxCategory.ZERO)
        problems += (_no_jurisdiction(address),)
        basis = "sales tax: no jurisdiction matches the service address"
    else:
        table = _by_taxability(rules.rate, rules.taxable, TaxCategory.ZERO)
        basis = f"sales tax: the tenant's rate {rules.rate}"
    return TaxPlan(table, problems=problems, basis=basis)


def _jurisdiction(jurisdictions: tuple[Jurisdiction, ...], address: Address
                  ) -> Jurisdiction | None:
    """``max`` keeps the first of equally specific matches."""
    matching = [j for j in jurisdictions if j.matches(address)]
    return max(matching, key=lambda j: j.specificity, default=None)


def _no_jurisdiction(address: Address) -> Problem:
    where = " ".join(p for p in (address.city, address.region, address.postal_code,
                                 address.country) if p)
    return Problem("no_tax_jurisdiction", f"no tax jurisdiction matches the service address "
                   f"({where}); untaxed until reviewed")


def _exemption(customer: Customer, terms: CustomerTerms | None, address: Address, day: date
               ) -> tuple[ExemptionCertificate | None, tuple[Problem, ...]]:
    """The certificate that exempts this job, if any. One the event names must be on file and
    unexpired; with none named, a valid one on file for the service region applies."""
    on_file = terms.exemption_certificates if terms else ()
    named = (customer.tax_exempt_certificate or "").strip()
    if not named:
        return next((c for c in on_file if _unexpired(c, day) and _covers(c, address)), None), ()
    certificate = next((c for c in on_file if _same_number(c.number, named)), None)
    if certificate is None:
        return None, (Problem("exemption_unverified", f"exemption certificate {named} is not on "
                              f"file for customer {customer.id}; taxed until reviewed"),)
    if not _unexpired(certificate, day):
        return None, (Problem("exemption_expired", f"exemption certificate {certificate.number} "
                              f"expired on {certificate.expires}; taxed until renewed"),)
    return (certificate if _covers(certificate, address) else None), ()


def _unexpired(certificate: ExemptionCertificate, day: date) -> bool:
    return certificate.expires is None or certificate.expires >= day


def _covers(certificate: ExemptionCertificate, address: Address) -> bool:
    regions = {r.strip().upper() for r in certificate.regions}
    return not regions or address.region.strip().upper() in regions


def _same_number(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


# ---- VAT --------------------------------------------------------------------------------------

def _plan_vat(rules: TaxRules, seller: Seller, customer: Customer, service_address: Address
              ) -> TaxPlan:
    home = _country(seller.address.country)
    buyer = _country(customer.billing_address.country)
    vat_id = (customer.vat_id or "").strip()
    if not vat_id:
        return _domestic(rules, _place_of_supply_problems(home, service_address),
                         f"VAT: {home} VAT, a customer without a VAT id")
    if buyer == home:
        return _domestic(rules, (), f"VAT: {home} VAT, a customer in {home}")
    if not is_valid_vat_id(vat_id, buyer):
        return _domestic(rules, (_invalid_vat_id(vat_id, buyer, home),),
                         f"VAT: {home} VAT, the customer's VAT id {vat_id} is not valid")
    if buyer in EU_MEMBER_STATES and home in EU_MEMBER_STATES:
        return _all_lines(TaxCategory.REVERSE_CHARGE, rules.reverse_charge_note, note=True,
                          basis=f"VAT: reverse charge, B2B from {home} to {buyer} "
                                f"(VAT id {vat_id} valid)")
    reason = phrase(rules.language, "outside_scope", home=home)
    return _all_lines(TaxCategory.NOT_SUBJECT, reason, note=True,
                      basis=f"VAT: outside the scope, B2B from {home} to {buyer}")


def _domestic(rules: TaxRules, problems: tuple[Problem, ...], basis: str) -> TaxPlan:
    """The seller's VAT; a kind the tenant marks untaxable is exempt, and says so."""
    table = _by_taxability(rules.rate, rules.taxable, TaxCategory.EXEMPT)
    taxed = frozenset(kind for kind in LineKind if is_taxable(rules.taxable, kind))
    reasons = () if len(taxed) == len(table) else (
        (TaxCategory.EXEMPT, phrase(rules.language, "exempt_from_vat")),)
    return TaxPlan(table, taxed, exemption_reasons=reasons, problems=problems,
                   basis=f"{basis} at {rules.rate}")


def _place_of_supply_problems(home: str, service_address: Address) -> tuple[Problem, ...]:
    """Work on goods for a private customer is taxed where it is done (Art. 54 VAT Directive):
    abroad, the seller's own VAT is a guess."""
    where = _country(service_address.country)
    if where == home:
        return ()
    return (Problem("foreign_place_of_supply", f"the work for a private customer was done in "
                    f"{where}, where its VAT is due; {home} VAT charged until reviewed"),)


def _invalid_vat_id(vat_id: str, country: str, home: str) -> Problem:
    return Problem("invalid_vat_id", f"the customer's VAT id {vat_id} is not a valid {country} "
                   f"VAT id; {home} VAT charged until reviewed")




