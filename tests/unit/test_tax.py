"""Tax per line: US sales tax by the service address and exemption certificates; EU/UK VAT with
reduced item rates, reverse charge across EU borders and supplies outside the seller's scope."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.at import uid as at_uid
from stdnum.eu import vat as eu_vat
from stdnum.fr import siren as fr_siren
from stdnum.gb import vat as gb_vat
from stdnum.gr import vat as gr_vat

from autoinvoice.billing.rules import (
    CustomerTerms,
    ExemptionCertificate,
    Jurisdiction,
    Taxability,
    TaxRegime,
    TaxRules,
)
from autoinvoice.billing.tax import EU_MEMBER_STATES, TaxPlan, plan_tax
from autoinvoice.domain.invoice import LineKind, Seller, TaxCategory
from autoinvoice.domain.job import Address, Customer

S, Z, E = TaxCategory.STANDARD, TaxCategory.ZERO, TaxCategory.EXEMPT
AE, OUT = TaxCategory.REVERSE_CHARGE, TaxCategory.NOT_SUBJECT
ZERO = Decimal(0)
DAY = date(2026, 11, 20)

# Real, valid VAT ids: two known ones, the rest built with stdnum's check-digit helpers.
DE_SELLER_ID, DE_BUYER_ID = "DE287654324", "DE811907980"
FR_ID = "FR" + fr_siren.to_tva("732829320")
AT_ID = "ATU1358562" + at_uid.calc_check_digit("U1358562")
EL_ID = "EL09425921" + gr_vat.calc_check_digit("09425921")
GB_ID = "GB980780684"
DE_BAD_CHECK_DIGIT = "DE811907981"
assert all(eu_vat.is_valid(x) for x in (DE_SELLER_ID, DE_BUYER_ID, FR_ID, AT_ID, EL_ID))
assert gb_vat.is_valid(GB_ID)
assert not eu_vat.is_valid(DE_BAD_CHECK_DIGIT)

TULSA = Address("410 W 7th St", "Tulsa", "US", "74119", "OK")
OKC = Address("1 Park Ave", "Oklahoma City", "US", "73102", "OK")
DALLAS = Address("500 Main St", "Dallas", "US", "75201", "TX")
WICHITA = Address("9 Air Capital Dr", "Wichita", "US", "67202", "KS")
NUREMBERG = Address("Industriestraße 4", "Nürnberg", "DE", "90431")
VIENNA = Address("Ring 1", "Wien", "AT", "1010")
LYON = Address("1 Rue Garibaldi", "Lyon", "FR", "69003")
ATHENS = Address("Odos 1", "Athina", "GR", "10431")
LEEDS = Address("1 Park Row", "Leeds", "GB", "LS1 5AB")
HOUSTON = Address("1 Main St", "Houston", "US", "77002", "TX")

US_SELLER = Seller("Northwind Compressed Air Services LLC", TULSA, "73-1234567")
DE_SELLER = Seller("Kompressor-Service Franken GmbH", NUREMBERG, DE_SELLER_ID)
GB_SELLER = Seller("Airpower Leeds Ltd", LEEDS, GB_ID)

PARTS_ONLY = Taxability(labor=False, parts=True, travel=False, fees=False)
EVERYTHING = Taxability(labor=True, parts=True, travel=True, fees=True)
SALES = TaxRules(rate=Decimal("0.085"), taxable=PARTS_ONLY)
VAT_DE = TaxRules(regime=TaxRegime.VAT, rate=Decimal("0.19"), taxable=EVERYTHING)
VAT_GB = TaxRules(regime=TaxRegime.VAT, rate=Decimal("0.20"), taxable=EVERYTHING)

OK_CERT = ExemptionCertificate("OK-EX-55120", ("OK",), date(2027, 6, 30))


def _customer(address: Address = TULSA, *, vat_id: str | None = None,
              certificate: str | None = None) -> Customer:
    return Customer("C1", "Red River Brewing", "ap@redriver.example", address, vat_id=vat_id,
                    tax_exempt_certificate=certificate)


def _terms(*certificates: ExemptionCertificate) -> CustomerTerms:
    return CustomerTerms("C1", exemption_certificates=certificates)


def _sales(rules: TaxRules = SALES, where: Address = TULSA, *, certificate: str | None = None,
           terms: CustomerTerms | None = None, day: date = DAY) -> TaxPlan:
    return plan_tax(rules, US_SELLER, _customer(certificate=certificate), terms, where, day)


def _vat(rules: TaxRules, seller: Seller, buyer: Address, vat_id: str | None = None,
         where: Address | None = None) -> TaxPlan:
    return plan_tax(rules, seller, _customer(buyer, vat_id=vat_id), None,
                    where or seller.address, DAY)


def _every_line(plan: TaxPlan) -> set[tuple[Decimal, TaxCategory]]:
    return {plan.for_line(kind) for kind in LineKind}


def _codes(plan: TaxPlan) -> list[str]:
    return [p.code for p in plan.problems]


# ---- sales tax, one rate ----------------------------------------------------------------------

def test_single_rate_taxes_parts_and_leaves_labor_travel_and_fees_at_zero():
    plan = _sales()
    assert plan.for_line(LineKind.PART) == (Decimal("0.085"), S)
    for kind in (LineKind.LABOR, LineKind.TRAVEL, LineKind.FEE, LineKind.MILEAGE):
        assert plan.for_line(kind) == (ZERO, Z)
    assert (plan.problems, plan.notes, plan.exemption_reasons) == ((), (), ())


def test_flat_rate_service_is_taxed_like_the_labor_it_replaces():
    assert _sales().for_line(LineKind.SERVICE) == (ZERO, Z)
    rules = TaxRules(rate=Decimal("0.085"), taxable=Taxability(labor=True, parts=False))
    assert _sales(rules).for_line(LineKind.SERVICE) == (Decimal("0.085"), S)


def test_sales_tax_ignores_a_pricebook_items_vat_rate():
    assert _sales().for_line(LineKind.PART, Decimal("0.07")) == (Decimal("0.085"), S)


def test_a_taxable_kind_at_a_zero_rate_is_zero_rated_not_standard():
    assert _sales(TaxRules(taxable=PARTS_ONLY)).for_line(LineKind.PART) == (ZERO, Z)


# ---- sales tax, jurisdictions -----------------------------------------------------------------

US = Jurisdiction("us", "US", Decimal("0.05"), PARTS_ONLY)
OKLAHOMA = Jurisdiction("oklahoma", "US", Decimal("0.045"), PARTS_ONLY, region="OK")
TULSA_COUNTY = Jurisdiction("tulsa", "US", Decimal("0.0852"), PARTS_ONLY, region="OK",
                            postal_prefix="741")
TEXAS = Jurisdiction("texas", "US", Decimal("0.0825"), EVERYTHING, region="TX")
BY_STATE = TaxRules(rate=Decimal("0.085"), taxable=PARTS_ONLY,
                    jurisdictions=(US, OKLAHOMA, TULSA_COUNTY, TEXAS))


@pytest.mark.parametrize(("where", "rate"), [
    (TULSA, Decimal("0.0852")),  # postal prefix beats region
    (OKC, Decimal("0.045")),  # region beats country
    (WICHITA, Decimal("0.05")),  # only the country matches
], ids=["postal-prefix", "region", "country"])
def test_the_most_specific_jurisdiction_of_the_service_address_sets_the_rate(where, rate):
    plan = _sales(BY_STATE, where)
    assert plan.for_line(LineKind.PART) == (rate, S)
    assert plan.problems == ()


def test_equally_specific_jurisdictions_the_first_configured_wins():
    second = Jurisdiction("oklahoma-again", "US", Decimal("0.099"), PARTS_ONLY, region="OK")
    rules = TaxRules(jurisdictions=(OKLAHOMA, second))
    assert _sales(rules, OKC).for_line(LineKind.PART) == (Decimal("0.045"), S)


def test_the_jurisdiction_decides_which_kinds_are_taxed_not_the_tenant_default():
    plan = _sales(BY_STATE, DALLAS)
    assert _every_line(plan) == {(Decimal("0.0825"), S)}


def test_no_matching_jurisdiction_holds_the_invoice_and_leaves_lines_untaxed():
    rules = TaxRules(rate=Decimal("0.085"), taxable=PARTS_ONLY, jurisdictions=(OKLAHOMA, TEXAS))
    plan = _sales(rules, WICHITA)
    assert _codes(plan) == ["no_tax_jurisdiction"]
    assert all(x in plan.problems[0].message for x in ("Wichita", "KS", "67202", "US"))
    assert _every_line(plan) == {(ZERO, Z)}


# ---- sales tax, exemption certificates --------------------------------------------------------

CERT_REASON = "Exempt: resale/exemption certificate OK-EX-55120"


def test_a_valid_certificate_on_file_exempts_every_line_with_its_reason():
    plan = _sales(certificate="OK-EX-55120", terms=_terms(OK_CERT))
    assert _every_line(plan) == {(ZERO, E)}
    assert plan.exemption_reasons == ((E, CERT_REASON),)
    assert plan.problems == ()


def test_a_certificate_on_file_applies_even_when_the_event_names_none():
    plan = _sales(terms=_terms(OK_CERT))
    assert _every_line(plan) == {(ZERO, E)}
    assert plan.exemption_reasons == ((E, CERT_REASON),)


def test_an_expired_certificate_is_held_and_the_job_taxed():
    expired = ExemptionCertificate("OK-EX-55120", ("OK",), date(2026, 6, 30))
    plan = _sales(certificate="OK-EX-55120", terms=_terms(expired))
    assert _codes(plan) == ["exemption_expired"]
    assert "OK-EX-55120" in plan.problems[0].message
    assert "2026-06-30" in plan.problems[0].message
    assert plan.for_line(LineKind.PART) == (Decimal("0.085"), S)
    assert plan.exemption_reasons == ()


def test_a_certificate_expiring_on_the_day_of_the_job_still_exempts():
    today = ExemptionCertificate("OK-EX-55120", ("OK",), DAY)
    assert _every_line(_sales(certificate="OK-EX-55120", terms=_terms(today))) == {(ZERO, E)}


@pytest.mark.parametrize("terms", [None, _terms(OK_CERT)], ids=["no-terms", "other-on-file"])
def test_a_certificate_not_on_file_is_held_as_unverified_and_the_job_taxed(terms):
    plan = _sales(certificate="TX-99", terms=terms)
    assert _codes(plan) == ["exemption_unverified"]
    assert "TX-99" in plan.problems[0].message
    assert "customer C1" in plan.problems[0].message
    assert plan.for_line(LineKind.PART) == (Decimal("0.085"), S)


def test_a_certificate_for_another_state_taxes_the_job_without_a_problem():
    plan = _sales(BY_STATE, DALLAS, certificate="OK-EX-55120", terms=_terms(OK_CERT))
    assert _every_line(plan) == {(Decimal("0.0825"), S)}
    assert (plan.problems, plan.exemption_reasons) == ((), ())


def test_a_certificate_without_regions_covers_every_state():
    anywhere = ExemptionCertificate("MTC-1", ())
    assert _every_line(_sales(BY_STATE, DALLAS, terms=_terms(anywhere))) == {(ZERO, E)}


def test_an_exempt_customer_needs_no_jurisdiction():
    rules = TaxRules(jurisdictions=(TEXAS,))
    plan = _sales(rules, TULSA, certificate="OK-EX-55120", terms=_terms(OK_CERT))
    assert plan.problems == ()
    assert _every_line(plan) == {(ZERO, E)}


@settings(max_examples=60, deadline=None)
@given(days_before=st.integers(1, 3650), named=st.booleans())
def test_a_certificate_that_expired_before_the_job_never_exempts(days_before, named):
    expired = ExemptionCertificate("OK-EX-1", ("OK",), DAY - timedelta(days=days_before))
    plan = _sales(certificate="OK-EX-1" if named else None, terms=_terms(expired))
    assert plan.for_line(LineKind.PART) == (Decimal("0.085"), S)
    assert _codes(plan) == (["exemption_expired"] if named else [])


# ---- VAT, domestic ----------------------------------------------------------------------------

def test_domestic_business_customer_pays_the_standard_rate_on_every_line():
    plan = _vat(VAT_DE, DE_SELLER, NUREMBERG, DE_BUYER_ID)
    assert _every_line(plan) == {(Decimal("0.19"), S)}
    assert (plan.problems, plan.notes, plan.exemption_reasons) == ((), (), ())


def test_a_pricebook_items_reduced_rate_replaces_the_standard_rate_on_its_line():
    plan = _vat(VAT_DE, DE_SELLER, NUREMBERG, DE_BUYER_ID)
    assert plan.for_line(LineKind.PART, Decimal("0.07")) == (Decimal("0.07"), S)
    assert plan.for_line(LineKind.PART, ZERO) == (ZERO, Z)
    assert plan.for_line(LineKind.LABOR) == (Decimal("0.19"), S)


def test_a_kind_the_tenant_marks_untaxable_is_exempt_from_vat_with_a_reason():
    rules = TaxRules(regime=TaxRegime.VAT, rate=Decimal("0.19"),
                     taxable=Taxability(labor=True, parts=True, travel=True, fees=False))
    plan = _vat(rules, DE_SELLER, NUREMBERG)
    assert plan.for_line(LineKind.FEE) == (ZERO, E)
    assert plan.for_line(LineKind.FEE, Decimal("0.07")) == (ZERO, E)
    assert plan.exemption_reasons == ((E, "Exempt from VAT"),)


def test_vat_ignores_sales_tax_exemption_certificates():
    customer = _customer(NUREMBERG, certificate="OK-EX-55120")
    plan = plan_tax(VAT_DE, DE_SELLER, customer, _terms(OK_CERT), NUREMBERG, DAY)
    assert _every_line(plan) == {(Decimal("0.19"), S)}


def test_uk_seller_and_uk_customer_pay_uk_vat():
    plan = _vat(VAT_GB, GB_SELLER, LEEDS, GB_ID)
    assert _every_line(plan) == {(Decimal("0.20"), S)}
    assert plan.problems == ()


# ---- VAT, private customers -------------------------------------------------------------------

def test_private_customer_abroad_served_at_home_pays_the_sellers_vat():
    plan = _vat(VAT_DE, DE_SELLER, VIENNA, where=NUREMBERG)
    assert _every_line(plan) == {(Decimal("0.19"), S)}
    assert plan.problems == ()


def test_private_customer_outside_the_eu_served_at_home_pays_the_sellers_vat():
    assert _every_line(_vat(VAT_DE, DE_SELLER, HOUSTON)) == {(Decimal("0.19"), S)}


def test_work_for_a_private_customer_done_abroad_is_held_for_its_place_of_supply():
    plan = _vat(VAT_DE, DE_SELLER, VIENNA, where=VIENNA)
    assert _codes(plan) == ["foreign_place_of_supply"]
    assert "AT" in plan.problems[0].message
    assert plan.for_line(LineKind.LABOR) == (Decimal("0.19"), S)


# ---- VAT, reverse charge and outside the scope ------------------------------------------------

@pytest.mark.parametrize(("buyer", "vat_id"), [(LYON, FR_ID), (VIENNA, AT_ID), (ATHENS, EL_ID)],
                         ids=["FR", "AT", "GR"])
def test_eu_business_customer_in_another_member_state_is_reverse_charged(buyer, vat_id):
    plan = _vat(VAT_DE, DE_SELLER, buyer, vat_id)
    note = VAT_DE.reverse_charge_note
    assert _every_line(plan) == {(ZERO, AE)}
    assert plan.for_line(LineKind.PART, Decimal("0.07")) == (ZERO, AE)
    assert plan.notes == (note,)
    assert plan.exemption_reasons == ((AE, note),)
    assert plan.problems == ()


def test_reverse_charge_accepts_a_vat_id_written_with_spaces_and_lower_case():
    assert _every_line(_vat(VAT_DE, DE_SELLER, LYON, "fr " + FR_ID[2:])) == {(ZERO, AE)}


@pytest.mark.parametrize(("buyer", "vat_id"), [
    (VIENNA, "ATU1358562" + str((int(AT_ID[-1]) + 1) % 10)),  # bad check digit
    (VIENNA, DE_BUYER_ID),  # valid, but German: not the customer's country
    (ATHENS, "GR" + EL_ID[2:]),  # Greek ids are prefixed EL
    (LYON, "32829320"),  # no country prefix
], ids=["check-digit", "other-country", "greek-prefix", "no-prefix"])
def test_an_invalid_vat_id_is_held_and_the_customer_charged_domestic_vat(buyer, vat_id):
    plan = _vat(VAT_DE, DE_SELLER, buyer, vat_id)
    assert _codes(plan) == ["invalid_vat_id"]
    assert vat_id in plan.problems[0].message
    assert _every_line(plan) == {(Decimal("0.19"), S)}
    assert plan.notes == ()


def test_uk_seller_and_eu_business_customer_are_outside_the_scope_of_uk_vat():
    plan = _vat(VAT_GB, GB_SELLER, NUREMBERG, DE_BUYER_ID)
    reason = "Outside the scope of GB VAT: place of supply is the customer's country"
    assert _every_line(plan) == {(ZERO, OUT)}
    assert plan.for_line(LineKind.PART, Decimal("0.05")) == (ZERO, OUT)
    assert plan.notes == (reason,)
    assert plan.exemption_reasons == ((OUT, reason),)


@pytest.mark.parametrize(("buyer", "tax_id"), [(LEEDS, GB_ID), (HOUSTON, "12-3456789")],
                         ids=["GB", "US"])
def test_eu_seller_and_business_customer_outside_the_eu_are_outside_the_scope(buyer, tax_id):
    plan = _vat(VAT_DE, DE_SELLER, buyer, tax_id)
    assert _every_line(plan) == {(ZERO, OUT)}
    assert plan.exemption_reasons[0][1].startswith("Outside the scope of DE VAT")


def test_an_invalid_uk_vat_id_is_held_and_charged_the_sellers_vat():
    plan = _vat(VAT_DE, DE_SELLER, LEEDS, "GB980780685")
    assert _codes(plan) == ["invalid_vat_id"]
    assert _every_line(plan) == {(Decimal("0.19"), S)}


def test_a_billing_country_written_el_is_greece():
    athens = Address("Odos 1", "Athina", "EL", "10431")
    assert _every_line(_vat(VAT_DE, DE_SELLER, athens, EL_ID)) == {(ZERO, AE)}


def test_the_eu_has_27_member_states_and_the_uk_is_not_one():
    assert len(EU_MEMBER_STATES) == 27
    assert "GB" not in EU_MEMBER_STATES
    assert "EL" not in EU_MEMBER_STATES
    assert {"GR", "DE", "FR", "AT", "IE"} <= EU_MEMBER_STATES


# ---- every plan is one an EN 16931 validator accepts ------------------------------------------

ADDRESSES = [TULSA, DALLAS, WICHITA, NUREMBERG, VIENNA, LYON, LEEDS, HOUSTON]
IDS = [None, DE_BUYER_ID, FR_ID, AT_ID, GB_ID, DE_BAD_CHECK_DIGIT, "12-3456789"]
CERTS = [OK_CERT, ExemptionCertificate("OK-EX-55120", ("OK",), date(2020, 1, 1)),
         ExemptionCertificate("MTC-1", ())]


@settings(max_examples=200, deadline=None)
@given(regime=st.sampled_from(list(TaxRegime)),
       rate=st.sampled_from([ZERO, Decimal("0.085"), Decimal("0.19")]),
       taxable=st.builds(Taxability, st.booleans(), st.booleans(), st.booleans(), st.booleans()),
       jurisdictions=st.sampled_from([(), (OKLAHOMA, TEXAS), (US, TULSA_COUNTY)]),
       seller=st.sampled_from([US_SELLER, DE_SELLER, GB_SELLER]),
       buyer=st.sampled_from(ADDRESSES), where=st.sampled_from(ADDRESSES),
       vat_id=st.sampled_from(IDS), named=st.sampled_from([None, "OK-EX-55120", "X-1"]),
       on_file=st.lists(st.sampled_from(CERTS), max_size=2),
       item_rate=st.sampled_from([None, ZERO, Decimal("0.07")]))
def test_every_plan_keeps_the_en16931_category_rules(regime, rate, taxable, jurisdictions,
                                                     seller, buyer, where, vat_id, named,
                                                     on_file, item_rate):
    rules = TaxRules(regime=regime, rate=rate, taxable=taxable, jurisdictions=jurisdictions)
    customer = Customer("C1", "Any", "a@b.example", buyer, vat_id, named)
    plan = plan_tax(rules, seller, customer, _terms(*on_file), where, DAY)
    lines = {plan.for_line(kind, item_rate) for kind in LineKind}
    reasons = dict(plan.exemption_reasons)
    for line_rate, category in lines:
        assert (line_rate > 0) == (category is S)  # BR-S-05, BR-Z/E/AE/O-05
        assert (category in (E, AE, OUT)) == (category in reasons)  # BR-*-10
    if any(category is OUT for _, category in lines):
        assert {category for _, category in lines} == {OUT}  # BR-O-11


def test_each_plan_names_the_rule_that_decided_it():
    # given / when / then: the basis the audit log keeps for each kind of decision
    assert _sales().basis == "sales tax: the tenant's rate 0.085"
    assert _sales(certificate="OK-EX-55120", terms=_terms(OK_CERT)).basis.startswith(
        "sales tax: exempt by certificate OK-EX-55120")
    assert _vat(VAT_DE, DE_SELLER, VIENNA, AT_ID).basis == (
        f"VAT: reverse charge, B2B from DE to AT (VAT id {AT_ID} valid)")
    assert _vat(VAT_DE, DE_SELLER, NUREMBERG).basis == (
        "VAT: DE VAT, a customer without a VAT id at 0.19")
    assert "is not valid" in _vat(VAT_DE, DE_SELLER, VIENNA, "ATU00000000").basis
