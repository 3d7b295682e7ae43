"""Whatever the job, the invoice adds up: totals recompute from lines, the tax breakdown sums
to the tax total, every amount is a Decimal, and rounding never drifts past half a cent a line."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from autoinvoice.billing.engine import build_invoice
from autoinvoice.config import billing_rules, load_config
from autoinvoice.domain.job import (
    Address,
    Customer,
    Job,
    LaborEntry,
    LaborKind,
    Mileage,
    PartUsage,
    Technician,
)

RULES = billing_rules(load_config(None).tenants["northwind"])
SKUS = sorted(RULES.pricebook)
CUSTOMER = Customer("C1", "Acme", "ap@acme.example", Address("1 Way", "Tulsa", "US"))
TECH = Technician("T1", "R. Okafor", "senior")
BASE = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)

spans = st.tuples(st.integers(0, 7 * 24 * 60), st.integers(1, 12 * 60),
                  st.sampled_from(list(LaborKind)))
parts = st.tuples(st.sampled_from(SKUS), st.decimals(min_value=Decimal("0.001"),
                  max_value=Decimal(500), places=3))


def _job(labor, used, miles) -> Job:
    entries = tuple(LaborEntry("T1", kind, BASE + timedelta(minutes=s),
                               BASE + timedelta(minutes=s + d)) for s, d, kind in labor)
    units = {sku: RULES.pricebook[sku].unit for sku in SKUS}
    return Job(id="J", service_type="emergency_repair", customer=CUSTOMER,
               completed_at=BASE, technicians=(TECH,), labor=entries,
               parts=tuple(PartUsage(sku, "", q, units[sku]) for sku, q in used),
               mileage=Mileage(miles, "mi"), completed_by="T1")


@settings(max_examples=150, deadline=None)
@given(st.lists(spans, max_size=5), st.lists(parts, max_size=8),
       st.decimals(min_value=0, max_value=400, places=1))
def test_invoice_always_adds_up(labor, used, miles):
    invoice = build_invoice(_job(labor, used, miles), RULES, tenant="t", revision=1,
                            issue_date=date(2026, 11, 21)).invoice
    cent = Decimal("0.01")
    assert invoice.subtotal.amount == sum((x.amount.amount for x in invoice.lines), Decimal(0))
    assert invoice.tax_total.amount == sum((x.tax.amount for x in invoice.lines), Decimal(0))
    assert invoice.total.amount == invoice.subtotal.amount + invoice.tax_total.amount
    breakdown = invoice.tax_breakdown()
    assert sum((t.tax.amount for t in breakdown), Decimal(0)) == invoice.tax_total.amount
    assert sum((t.taxable_amount.amount for t in breakdown), Decimal(0)) == invoice.subtotal.amount
    for line in invoice.lines:
        for value in (line.quantity, line.unit_price, line.tax_rate, line.amount.amount):
            assert type(value) is Decimal
        assert abs(line.amount.amount - line.quantity * line.unit_price) <= cent / 2
        assert abs(line.tax.amount - line.amount.amount * line.tax_rate) <= cent / 2
        assert line.amount.amount == line.amount.amount.quantize(cent)


# -- every rule of the billing issue at once: contracts, price lists, kits, services, VAT --------

from tests.unit.test_billing_cases import RULES as CASE_RULES  # noqa: E402

CASE_CUSTOMERS = {
    "prairie": ["C-1", "C-PM", "C-W", "C-W2", "C-BREW", "C-EUR", "C-EXOK"],
    "ksf": ["K-FR", "K-DE"],
    "uk": ["C-1"],
}
CONTRACTS = {"C-PM": "PM-1", "C-W": "W-1", "C-W2": "W-2"}
ADDRESSES = {
    "prairie": Address("1200 Industrial Pkwy", "Tulsa", "US", "74107", "OK"),
    "ksf": Address("Hopfenweg 12", "Bamberg", "DE", "96047"),
    "uk": Address("9 Station Rd", "Derby", "GB", "DE1 2AB"),
}
VAT_IDS = {"K-FR": "FR44732829320", "K-DE": "DE811907980"}
FRANCE = Address("3 Rue de la Gare", "Lille", "FR", "59000")


@st.composite
def case_jobs(draw):  # type: ignore[no-untyped-def]
    tenant = draw(st.sampled_from(sorted(CASE_RULES)))
    rules = CASE_RULES[tenant]
    customer_id = draw(st.sampled_from(CASE_CUSTOMERS[tenant]))
    address = FRANCE if customer_id == "K-FR" else ADDRESSES[tenant]
    customer = Customer(customer_id, "Client", "ap@client.example", address,
                        vat_id=VAT_IDS.get(customer_id))
    skus = sorted(rules.pricebook)
    used = draw(st.lists(st.tuples(st.sampled_from(skus), st.integers(1, 5)), max_size=6)
                ) if skus else []
    grades = sorted(rules.grade_rates)
    techs = tuple(Technician(f"T{i}", f"Tech {i}", grades[i % len(grades)]) for i in range(2))
    labor = draw(st.lists(spans, max_size=4))
    entries = tuple(LaborEntry(f"T{i % 2}", kind, BASE + timedelta(minutes=s),
                               BASE + timedelta(minutes=s + d))
                    for i, (s, d, kind) in enumerate(labor))
    service = draw(st.sampled_from(["preventive_maintenance", "repair", "emergency_repair"]))
    job = Job(id="J", service_type=service, customer=customer, completed_at=BASE,
              technicians=techs, labor=entries, completed_by="T0",
              parts=tuple(PartUsage(sku, "", Decimal(q), rules.pricebook[sku].unit)
                          for sku, q in used),
              contract_id=CONTRACTS.get(customer_id), po_number="PO-1")
    return tenant, job


@settings(max_examples=200, deadline=None)
@given(case_jobs())
def test_any_job_under_any_rule_adds_up_and_rounds_within_the_documented_bound(case):
    tenant, job = case
    invoice = build_invoice(job, CASE_RULES[tenant], tenant=tenant, revision=1,
                            issue_date=date(2026, 11, 21)).invoice
    minor = Decimal("0.01")
    assert invoice.total == invoice.subtotal + invoice.tax_total
    assert invoice.subtotal.amount == sum((x.amount.amount for x in invoice.lines), Decimal(0))
    breakdown = invoice.tax_breakdown()
    assert sum((t.tax.amount for t in breakdown), Decimal(0)) == invoice.tax_total.amount
    assert sum((t.taxable_amount.amount for t in breakdown), Decimal(0)) == invoice.subtotal.amount
    for group in breakdown:
        members = [x for x in invoice.lines
                   if (x.tax_rate, x.tax_category) == (group.rate, group.category)]
        exact = sum((x.amount.amount for x in members), Decimal(0)) * group.rate
        # per line: each line's tax is off by at most half a minor unit; per document, the
        # group's tax is off by at most half a minor unit (docs/billing.md, "Rounding")
        bound = minor / 2 * (len(members) if invoice.tax_rounding.value == "line" else 1)
        assert abs(group.tax.amount - exact) <= bound
    for line in invoice.lines:
        for value in (line.quantity, line.unit_price, line.tax_rate, line.amount.amount,
                      line.tax.amount, line.list_unit_price or Decimal(0)):
            assert type(value) is Decimal
        assert line.amount.amount == line.amount.amount.quantize(minor)
        if line.coverage and line.unit_price == 0:
            assert line.amount.amount == 0
