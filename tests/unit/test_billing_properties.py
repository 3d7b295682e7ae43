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
