"""Pre-flight: a built, numbered invoice is checked once more before it leaves: totals recompute
from the lines, the number fits its series, dates and parties are complete, and the VAT rules of
EN 16931 hold (reverse charge, exemption reasons, rates per category)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.at import uid as at_uid
from stdnum.eu import vat as eu_vat
from stdnum.fr import siren as fr_siren
from stdnum.gr import vat as gr_vat

from autoinvoice.billing.preflight import Finding, Severity, blocking, preflight
from autoinvoice.domain.invoice import (
    DocumentKind,
    Invoice,
    InvoiceLine,
    LineKind,
    Seller,
    TaxCategory,
    TaxRounding,
    TaxSubtotal,
)
from autoinvoice.domain.job import Address, Customer, Job
from autoinvoice.domain.money import Money

S, Z, E, AE = (TaxCategory.STANDARD, TaxCategory.ZERO, TaxCategory.EXEMPT,
               TaxCategory.REVERSE_CHARGE)
K, G, OUT = TaxCategory.INTRA_COMMUNITY, TaxCategory.EXPORT, TaxCategory.NOT_SUBJECT
VAT = Decimal("0.19")

DE_SELLER_ID, DE_BUYER_ID = "DE287654324", "DE811907980"
AT_ID = "ATU1358562" + at_uid.calc_check_digit("U1358562")
FR_ID = "FR" + fr_siren.to_tva("732829320")
EL_ID = "EL09425921" + gr_vat.calc_check_digit("09425921")
GB_ID = "GB980780684"
DE_BAD_CHECK_DIGIT = "DE811907981"

TULSA = Address("410 W 7th St", "Tulsa", "US", "74119", "OK")
NUREMBERG = Address("Industriestraße 4", "Nürnberg", "DE", "90431")
MUNICH = Address("Leopoldstraße 10", "München", "DE", "80802")
VIENNA = Address("Ring 1", "Wien", "AT", "1010")
LYON = Address("1 Rue Garibaldi", "Lyon", "FR", "69003")
LEEDS = Address("1 Park Row", "Leeds", "GB", "LS1 5AB")
ATHENS = Address("Odos 1", "Athina", "GR", "10431")

US_SELLER = Seller("Northwind Compressed Air Services LLC", TULSA, "73-1234567")
DE_SELLER = Seller("Kompressor-Service Franken GmbH", NUREMBERG, DE_SELLER_ID)
US_BUYER = Customer("C-88", "Acme Plastics Inc.", "ap@acme.example",
                    Address("1200 Industrial Pkwy", "Tulsa", "US", "74107", "OK"))
DE_BUYER = Customer("C-12", "Brauerei Süd AG", "rechnung@brauerei.example", MUNICH,
                    vat_id=DE_BUYER_ID)
AT_BUYER = Customer("C-40", "Wiener Druckluft GmbH", "buchhaltung@wdl.example", VIENNA,
                    vat_id=AT_ID)
REVERSE_CHARGE_NOTE = "Reverse charge: VAT to be accounted for by the recipient"

ISSUED = date(2026, 11, 21)
COMPLETED = datetime(2026, 11, 20, 21, 35, tzinfo=UTC)


def line(quantity: str, unit_price: str, rate: Decimal = Decimal(0),
         category: TaxCategory | None = None, currency: str = "USD",
         coverage: str | None = None) -> InvoiceLine:
    """A line built correctly: amount and tax each rounded once."""
    qty, price = Decimal(quantity), Decimal(unit_price)
    amount = Money(qty * price, currency)
    return InvoiceLine(
        kind=LineKind.PART, description="Part", quantity=qty, unit="ea", unit_price=price,
        amount=amount, tax_rate=rate, tax=amount.times(rate),
        tax_category=category or (S if rate > 0 else Z), coverage=coverage)


def us_invoice(**changes: Any) -> Invoice:
    customer = changes.pop("customer", US_BUYER)
    assert isinstance(customer, Customer)
    job = Job("WO-1", "repair", customer, COMPLETED, po_number="PO-77813")
    invoice = Invoice(
        tenant="northwind", job_id=job.id, revision=1, currency="USD", seller=US_SELLER,
        customer=customer, job=job,
        lines=(line("2.5", "145.00", Decimal("0.0845")), line("1", "89.90")),
        issue_date=ISSUED, due_date=date(2026, 12, 21), payment_terms_days=30,
        number="NW-2026-00042", supply_date=COMPLETED.date())
    return replace(invoice, **changes)


def german_invoice(**changes: Any) -> Invoice:
    base = us_invoice(customer=DE_BUYER, currency="EUR", seller=DE_SELLER,
                      lines=(line("3", "98.50", VAT, currency="EUR"),
                             line("1", "412.37", VAT, currency="EUR")))
    return replace(base, **changes)


def reverse_charge_invoice(**changes: Any) -> Invoice:
    base = german_invoice(customer=AT_BUYER, lines=(line("3", "98.50", category=AE,
                                                         currency="EUR"),),
                          notes=(REVERSE_CHARGE_NOTE,),
                          exemption_reasons=((AE, REVERSE_CHARGE_NOTE),))
    return replace(base, **changes)


def found(findings: tuple[Finding, ...]) -> set[tuple[Severity, str, str]]:
    return {(f.severity, f.code, f.field) for f in findings}


def errors(invoice: Invoice, **kwargs: str) -> set[tuple[str, str]]:
    return {(f.code, f.field) for f in blocking(preflight(invoice, **kwargs))}


ERROR, WARNING = Severity.ERROR, Severity.WARNING


# ---- invoices that pass -----------------------------------------------------------------------

def test_the_vat_ids_used_here_are_valid():
    assert all(eu_vat.is_valid(x) for x in (DE_SELLER_ID, DE_BUYER_ID, AT_ID, FR_ID, EL_ID))
    assert not eu_vat.is_valid(DE_BAD_CHECK_DIGIT)


@pytest.mark.parametrize("build", [us_invoice, german_invoice, reverse_charge_invoice],
                         ids=["us", "german", "reverse_charge_to_austria"])
def test_a_correct_invoice_has_no_findings(build):
    assert preflight(build(), series_template="NW-{year}-{seq:05d}") == ()


@pytest.mark.parametrize(("address", "vat_id"), [(NUREMBERG, DE_SELLER_ID), (LEEDS, GB_ID),
                                                 (ATHENS, EL_ID), (NUREMBERG, "de 287 654 324")])
def test_a_valid_vat_id_of_the_sellers_own_country_passes(address, vat_id):
    invoice = german_invoice(seller=Seller("Seller Ltd", address, vat_id))
    assert errors(invoice) == set()


def test_blocking_keeps_only_the_errors():
    findings = preflight(us_invoice(number=None, customer=replace(US_BUYER, email="")))
    assert [f.code for f in blocking(findings)] == ["number_missing"]
    assert {f.code for f in findings} == {"number_missing", "buyer_email_missing"}


# ---- totals -----------------------------------------------------------------------------------

def test_an_invoice_without_lines_is_blocked():
    assert ("no_lines", "lines") in errors(us_invoice(lines=()))


def test_a_line_amount_that_is_not_quantity_times_unit_price_is_blocked():
    wrong = replace(line("2", "10.00"), amount=Money.of("20.01", "USD"))
    invoice = us_invoice(lines=(line("1", "5.00"), wrong))
    assert errors(invoice) == {("line_amount_mismatch", "lines[1].amount")}


def test_a_line_amount_is_rounded_half_up_once():
    # 3 × 0.335 = 1.005 → 1.01; rounding the price first would give 1.02
    assert line("3", "0.335").amount == Money.of("1.01", "USD")
    assert errors(us_invoice(lines=(line("3", "0.335"),))) == set()
    early = replace(line("3", "0.335"), amount=Money.of("1.02", "USD"))
    assert ("line_amount_mismatch", "lines[0].amount") in errors(us_invoice(lines=(early,)))


def test_a_line_tax_that_is_not_amount_times_rate_is_blocked_under_line_rounding():
    wrong = replace(line("1", "100.00", VAT), tax=Money.of("19.01", "USD"))
    assert errors(us_invoice(lines=(wrong,))) == {("line_tax_mismatch", "lines[0].tax")}


def test_under_document_rounding_each_rate_is_taxed_once_and_line_taxes_are_not_checked():
    # given three lines whose taxes, rounded per line, add up to a cent more than the group's
    lines = tuple(replace(line("1", "0.05", VAT), tax=Money.of("0.01", "USD")) for _ in range(3))
    invoice = us_invoice(lines=lines, tax_rounding=TaxRounding.DOCUMENT)
    # then the document's tax is 0.15 × 0.19 = 0.0285 → 0.03, and nothing is wrong
    assert invoice.tax_total == Money.of("0.03", "USD")
    assert errors(invoice) == set()


class _BreakdownOffByOneCent(Invoice):
    """A breakdown that no longer recomputes from the lines (as a stored one could)."""

    def tax_breakdown(self) -> tuple[TaxSubtotal, ...]:
        first, *rest = super().tax_breakdown()
        return (replace(first, tax=first.tax + Money.from_minor(1, first.tax.currency)), *rest)


class _StaleSubtotal(Invoice):
    @property
    def subtotal(self) -> Money:
        return Money.of("1.00", self.currency)


def test_a_tax_breakdown_that_does_not_recompute_from_the_lines_is_blocked():
    invoice = _BreakdownOffByOneCent(**{f: getattr(us_invoice(), f) for f in Invoice.__slots__})
    assert errors(invoice) == {("tax_breakdown_mismatch", "tax_breakdown[0]"),
                               ("tax_breakdown_mismatch", "tax_total")}


def test_a_subtotal_that_is_not_the_sum_of_the_lines_is_blocked():
    invoice = _StaleSubtotal(**{f: getattr(us_invoice(), f) for f in Invoice.__slots__})
    assert errors(invoice) == {("subtotal_mismatch", "subtotal")}


def test_a_line_in_another_currency_is_blocked_without_summing_across_currencies():
    invoice = us_invoice(lines=(line("1", "5.00"), line("1", "5.00", currency="EUR")))
    assert errors(invoice) == {("currency_mismatch", "lines[1].amount"),
                               ("currency_mismatch", "lines[1].tax")}


def test_an_unknown_currency_is_blocked():
    assert ("currency_unknown", "currency") in errors(us_invoice(currency="XYZ"))


# ---- number and dates -------------------------------------------------------------------------

@pytest.mark.parametrize("number", [None, "", "  "])
def test_an_invoice_without_a_number_is_blocked(number):
    assert errors(us_invoice(number=number)) == {("number_missing", "number")}


@pytest.mark.parametrize(("template", "number"), [
    ("NW-{year}-{seq:05d}", "NW-2026-00042"),
    ("NW-{year}-{seq:05d}", "NW-2026-100000"),  # the sequence outgrew its padding
    ("{year}/{month}/{seq}", "2026/3/7"),
    ("{year}/{month}/{seq}", "2026/11/1234"),
    ("RE.{year}{month:02d}-{seq:04d}", "RE.202611-0042"),
    ("CN-{year}-{seq:05d}", "CN-2026-00001"),
])
def test_a_number_of_the_series_shape_passes(template, number):
    assert errors(us_invoice(number=number), series_template=template) == set()


@pytest.mark.parametrize(("template", "number"), [
    ("NW-{year}-{seq:05d}", "NW-2026-042"),
    ("NW-{year}-{seq:05d}", "NW-26-00042"),
    ("NW-{year}-{seq:05d}", "XW-2026-00042"),
    ("NW-{year}-{seq:05d}", "NW-2026-00042-A"),
    ("{year}/{month}/{seq}", "2026/123/7"),
    ("RE.{year}{month:02d}-{seq:04d}", "REX202611-0042"),  # the dot is literal
    ("{year}-{seq:>5}", "2026-00042"),  # a template we cannot read holds the invoice
])
def test_a_number_off_the_series_shape_is_blocked(template, number):
    assert errors(us_invoice(number=number), series_template=template) == {
        ("number_format", "number")}


def test_a_due_date_before_the_issue_date_is_blocked():
    invoice = us_invoice(due_date=date(2026, 11, 20))
    assert errors(invoice) == {("due_before_issue", "due_date")}


def test_an_invoice_without_an_issue_date_is_blocked():
    assert errors(us_invoice(issue_date=None)) == {("issue_date_missing", "issue_date")}


def test_a_supply_after_the_issue_date_is_a_warning():
    findings = preflight(us_invoice(supply_date=date(2026, 11, 22)))
    assert found(findings) == {(WARNING, "supply_after_issue", "supply_date")}


def test_without_a_supply_date_the_job_completion_day_is_the_supply_date():
    late_job = replace(us_invoice().job, completed_at=datetime(2026, 11, 23, 9, tzinfo=UTC))
    assert found(preflight(us_invoice(supply_date=None))) == set()
    assert found(preflight(us_invoice(supply_date=None, job=late_job))) == {
        (WARNING, "supply_after_issue", "supply_date")}


# ---- seller and buyer -------------------------------------------------------------------------

@pytest.mark.parametrize("address", [NUREMBERG, LEEDS, ATHENS])
def test_a_vat_seller_without_a_vat_id_is_blocked(address):
    invoice = german_invoice(seller=Seller("Seller Ltd", address, None))
    assert errors(invoice) == {("seller_vat_id_missing", "seller.tax_id")}


@pytest.mark.parametrize(("address", "vat_id"), [
    (NUREMBERG, DE_BAD_CHECK_DIGIT), (NUREMBERG, FR_ID), (NUREMBERG, "287654324"),
    (LEEDS, "GB980780685"), (ATHENS, "GR094259216")])
def test_a_vat_seller_with_an_invalid_vat_id_is_blocked(address, vat_id):
    invoice = german_invoice(seller=Seller("Seller Ltd", address, vat_id))
    assert errors(invoice) == {("seller_vat_id_invalid", "seller.tax_id")}


def test_a_us_seller_without_a_tax_id_is_only_a_warning():
    findings = preflight(us_invoice(seller=replace(US_SELLER, tax_id=None)))
    assert found(findings) == {(WARNING, "seller_tax_id_missing", "seller.tax_id")}


def test_a_seller_without_a_legal_name_or_address_is_blocked():
    seller = replace(US_SELLER, legal_name=" ", address=Address("", "", ""))
    assert errors(us_invoice(seller=seller)) == {
        ("seller_name_missing", "seller.legal_name"),
        ("seller_address_missing", "seller.address.line1"),
        ("seller_address_missing", "seller.address.city"),
        ("seller_address_missing", "seller.address.country")}


def test_a_buyer_without_a_name_or_country_is_blocked():
    buyer = replace(US_BUYER, name="", billing_address=replace(US_BUYER.billing_address,
                                                               country=""))
    assert errors(us_invoice(customer=buyer)) == {
        ("buyer_name_missing", "customer.name"),
        ("buyer_country_missing", "customer.billing_address.country")}


def test_a_buyer_without_an_email_is_a_warning():
    findings = preflight(us_invoice(customer=replace(US_BUYER, email="")))
    assert found(findings) == {(WARNING, "buyer_email_missing", "customer.email")}


# ---- reverse charge and categories ------------------------------------------------------------

@pytest.mark.parametrize(("vat_id", "code"), [
    (None, "buyer_vat_id_missing"), ("", "buyer_vat_id_missing"),
    ("ATU13585620", "buyer_vat_id_invalid"), (DE_BUYER_ID, "buyer_vat_id_invalid")])
def test_reverse_charge_without_a_valid_buyer_vat_id_is_blocked(vat_id, code):
    invoice = reverse_charge_invoice(customer=replace(AT_BUYER, vat_id=vat_id))
    assert errors(invoice) == {(code, "customer.vat_id")}


def test_reverse_charge_without_its_note_is_blocked():
    assert errors(reverse_charge_invoice(notes=())) == {("reverse_charge_note_missing", "notes")}


def test_reverse_charge_without_its_exemption_reason_is_blocked():
    assert errors(reverse_charge_invoice(exemption_reasons=())) == {
        ("reverse_charge_note_missing", "exemption_reasons.AE")}


@pytest.mark.parametrize("category", [E, OUT, K, G])
def test_an_untaxed_category_without_an_exemption_reason_is_blocked(category):
    invoice = german_invoice(lines=(line("1", "10.00", category=category, currency="EUR"),))
    assert errors(invoice) == {("exemption_reason_missing", f"exemption_reasons.{category}")}
    assert errors(replace(invoice, exemption_reasons=((category, "Why"),))) == set()


def test_a_standard_rated_line_at_zero_is_blocked():
    invoice = us_invoice(lines=(line("1", "10.00", category=S),))
    assert errors(invoice) == {("standard_rate_zero", "lines[0].tax_rate")}


@pytest.mark.parametrize("category", [Z, E, AE, K, G, OUT])
def test_an_untaxed_category_with_a_rate_is_blocked(category):
    invoice = reverse_charge_invoice(
        lines=(line("1", "10.00", VAT, category=category, currency="EUR"),),
        exemption_reasons=((category, "Why"),))
    assert ("zero_category_with_rate", "lines[0].tax_rate") in errors(invoice)


def test_a_business_in_another_member_state_charged_vat_is_a_warning():
    buyer = Customer("C-50", "Air Lyon SA", "compta@airlyon.example", LYON, vat_id=FR_ID)
    findings = preflight(german_invoice(customer=buyer))
    assert found(findings) == {(WARNING, "cross_border_without_reverse_charge", "lines")}
    private = preflight(german_invoice(customer=replace(buyer, vat_id=None)))
    assert found(private) == set()
    empty = preflight(german_invoice(customer=buyer, lines=()))
    assert found(empty) == {(ERROR, "no_lines", "lines")}


# ---- credit notes and hints -------------------------------------------------------------------

def test_a_credit_note_without_the_invoice_it_credits_is_blocked():
    credit = us_invoice(kind=DocumentKind.CREDIT_NOTE, number="CN-NW-2026-00001")
    assert errors(credit) == {("credit_note_without_reference", "corrects")}
    assert errors(replace(credit, corrects="NW-2026-00042")) == set()


def test_a_contract_job_without_a_po_number_is_a_warning():
    job = replace(us_invoice().job, contract_id="K-2026-07", po_number=None)
    assert found(preflight(us_invoice(job=job))) == {(WARNING, "po_missing", "po_number")}


def test_a_free_line_must_say_why_or_it_is_a_warning():
    free = line("1", "0")
    assert found(preflight(us_invoice(lines=(free,)))) == {
        (WARNING, "zero_price_without_reason", "lines[0].unit_price")}
    covered = replace(free, coverage="Covered by maintenance contract K-2026-07")
    assert found(preflight(us_invoice(lines=(covered,)))) == set()


# ---- property ---------------------------------------------------------------------------------

quantities = st.decimals(min_value=Decimal("0.001"), max_value=Decimal(1000), places=3)
prices = st.decimals(min_value=Decimal(0), max_value=Decimal(10000), places=4)
rates = st.sampled_from([Decimal(0), Decimal("0.07"), VAT])
lines_of = st.lists(st.tuples(quantities, prices, rates), min_size=1, max_size=12)


def _correct(currency: str, drawn: list[tuple[Decimal, Decimal, Decimal]],
             rounding: TaxRounding) -> Invoice:
    built = tuple(line(str(q), str(p), r, currency=currency, coverage="drawn") for q, p, r in drawn)
    return us_invoice(currency=currency, lines=built, tax_rounding=rounding)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["USD", "EUR", "JPY", "KWD"]), lines_of,
       st.sampled_from(list(TaxRounding)), st.data())
def test_correct_lines_never_block_and_one_minor_unit_off_always_does(currency, drawn,
                                                                      rounding, data):
    # given an invoice built correctly from random lines
    invoice = _correct(currency, drawn, rounding)
    assert blocking(preflight(invoice)) == ()
    # when one line's amount is off by one minor unit
    i = data.draw(st.integers(0, len(drawn) - 1))
    step = Money.from_minor(data.draw(st.sampled_from([1, -1])), currency)
    lines = list(invoice.lines)
    lines[i] = replace(lines[i], amount=lines[i].amount + step)
    # then that line's amount is blocked
    assert ("line_amount_mismatch", f"lines[{i}].amount") in errors(
        replace(invoice, lines=tuple(lines)))
