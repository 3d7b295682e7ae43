# ruff: noqa: E501  (the tenant configuration below is TOML, kept as users write it)
"""Realistic compressor-service jobs, priced by hand: every rule of docs/billing.md at least
once. Each test writes the arithmetic in a comment; the engine must agree to the cent."""

from __future__ import annotations

import copy
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from autoinvoice.billing.engine import BuildResult, build_invoice
from autoinvoice.config import billing_rules, parse_config
from autoinvoice.domain.invoice import TaxCategory
from autoinvoice.triggers.events import parse_event

CONFIG = """
[tenants.prairie]
legal_name = "Prairie Air Compressor Service LLC"
tax_id = "73-7654321"
address = { line1 = "1 Main St", city = "Tulsa", region = "OK", postal_code = "74103", country = "US" }
currency = "USD"
invoice_series = "PA-{year}-{seq:05d}"
timezone = "America/Chicago"
fx = { EUR = "0.92" }

[tenants.prairie.rates]
technician = "100.00"
senior = "140.00"
travel_factor = "0.5"
overtime_factor = "1.5"
weekend_factor = "2.0"
holiday_factor = "2.5"
holidays = [2026-11-26]
emergency_callout_fee = "200.00"
minimum_onsite_hours = "2.0"
mileage_rate = { per = "mi", price = "1.00" }
time_increment_minutes = 15

[tenants.prairie.tax]
rate = "0"
[tenants.prairie.tax.jurisdictions.oklahoma]
country = "US"
region = "OK"
rate = "0.085"
labor_taxable = false
parts_taxable = true
[tenants.prairie.tax.jurisdictions.sand-springs]
country = "US"
region = "OK"
postal_prefix = "74063"
rate = "0.0935"
labor_taxable = false
parts_taxable = true
[tenants.prairie.tax.jurisdictions.texas]
country = "US"
region = "TX"
rate = "0.0825"
labor_taxable = true
parts_taxable = true

[tenants.prairie.parts]
noncatalogue_markup = "0.25"

[tenants.prairie.pricebook]
"FILTER-A" = { price = "50.00", description = "Air filter element" }
"SEP-1" = { price = "200.00", description = "Separator element" }
"OIL-5L" = { price = "12.00", unit = "l", description = "Compressor oil" }
"VALVE" = { price = "220.00", description = "Inlet valve" }
"GASKET" = { price = "15.00", description = "Gasket" }
"SVC-2000" = { kind = "service", price = "900.00", description = "2000 h service (flat rate)", includes = ["FILTER-A", "SEP-1"] }
"KIT-V" = { kind = "kit", price = "300.00", description = "Inlet valve kit", components = { "VALVE" = "1", "GASKET" = "2" } }

[tenants.prairie.price_lists.brewery]
prices = { "FILTER-A" = "45.00" }
rates = { senior = "130.00" }
parts_discount = "0.05"

[tenants.prairie.customers.C-PO]
po_required = true
[tenants.prairie.customers.C-EX]
exemption_certificates = [{ number = "EX-1", regions = ["OK"], expires = 2026-06-30 }]
[tenants.prairie.customers.C-EXOK]
exemption_certificates = [{ number = "EX-2", regions = ["OK"], expires = 2027-06-30 }]
[tenants.prairie.customers.C-BREW]
price_list = "brewery"
not_to_exceed = "1000.00"
[tenants.prairie.customers.C-EUR]
currency = "EUR"
[tenants.prairie.customers.C-CHF]
currency = "CHF"
[tenants.prairie.customers.MFR]
name = "Compressor Maker Inc."
email = "warranty@maker.example"
address = { line1 = "500 Factory Rd", city = "Charlotte", region = "NC", postal_code = "28202", country = "US" }

[tenants.prairie.contracts.PM-1]
customer = "C-PM"
start = 2026-01-01
end = 2026-12-31
parts_discount = "0.10"
[tenants.prairie.contracts.OLD]
customer = "C-PM"
start = 2024-01-01
end = 2024-12-31
[tenants.prairie.contracts.W-1]
customer = "C-W"
kind = "warranty"
start = 2026-01-01
end = 2027-12-31
[tenants.prairie.contracts.W-2]
customer = "C-W2"
kind = "warranty"
start = 2026-01-01
end = 2027-12-31
bill_to = "MFR"

[tenants.ksf]
legal_name = "Kompressor-Service Franken GmbH"
tax_id = "DE287654324"
address = { line1 = "Industriestrasse 4", city = "Nuernberg", postal_code = "90431", country = "DE" }
currency = "EUR"
payment_terms_days = 14
invoice_series = "RE-{year}-{seq:04d}"
timezone = "Europe/Berlin"
[tenants.ksf.billing]
require_known_customers = true
[tenants.ksf.rates]
technician = "98.00"
[tenants.ksf.tax]
regime = "vat"
rate = "0.19"
labor_taxable = true
parts_taxable = true
rounding = "document"
[tenants.ksf.pricebook]
"6.3465.0" = { price = "41.90", description = "Oelfilter" }
"DOC-1" = { price = "20.00", description = "Betriebsanleitung (Druckschrift)", tax_rate = "0.07" }
[tenants.ksf.customers.K-FR]
[tenants.ksf.customers.K-FRBAD]
[tenants.ksf.customers.K-DE]

[tenants.uk]
legal_name = "Midlands Compressed Air Ltd"
tax_id = "GB434031494"
address = { line1 = "2 Mill Lane", city = "Derby", postal_code = "DE1 1AA", country = "GB" }
currency = "GBP"
invoice_series = "MCA-{seq:05d}"
timezone = "Europe/London"
[tenants.uk.rates]
technician = "90.00"
travel_billed = false
[tenants.uk.tax]
regime = "vat"
rate = "0.20"
labor_taxable = true
parts_taxable = true
"""

RULES = {name: billing_rules(t) for name, t in parse_config(CONFIG, "test").tenants.items()}

TULSA = {"line1": "1200 Industrial Pkwy", "city": "Tulsa", "region": "OK",
         "postal_code": "74107", "country": "US"}
BASE_JOB: dict[str, Any] = {
    "id": "J-1", "service_type": "repair",
    "customer": {"id": "C-1", "name": "Plant One Inc.", "email": "ap@plant-one.example",
                 "billing_address": TULSA},
    "technicians": [{"id": "T1", "name": "A. Tech", "grade": "technician"},
                    {"id": "T2", "name": "B. Senior", "grade": "senior"}],
    "labor": [], "parts": [],
    "completed_at": "2026-11-18T12:00:00-06:00", "completed_by": "T1",
}


def job(tenant: str = "prairie", **changes: Any) -> BuildResult:
    data = copy.deepcopy(BASE_JOB)
    customer = changes.pop("customer", {})
    data["customer"].update(customer)
    data.update(changes)
    event = parse_event({"event_id": "e1", "type": "job.completed", "tenant": tenant,
                         "occurred_at": data["completed_at"], "job": data})
    assert event.type == "job.completed"
    return build_invoice(event.job.domain(), RULES[tenant], tenant=tenant, revision=1,
                         issue_date=date(2026, 11, 27))


def span(tech: str, start: str, end: str, kind: str = "onsite") -> dict[str, str]:
    return {"technician": tech, "kind": kind, "start": start, "end": end}


def part(sku: str, quantity: Any = 1, **extra: Any) -> dict[str, Any]:
    return {"sku": sku, "quantity": quantity, **extra}


def rows(result: BuildResult) -> list[tuple[str, str, str, str]]:
    """(quantity, unit price, amount, tax) per line, as strings."""
    return [(str(x.quantity), str(x.unit_price), str(x.amount.amount), str(x.tax.amount))
            for x in result.invoice.lines]


def totals(result: BuildResult) -> tuple[str, str, str]:
    inv = result.invoice
    return str(inv.subtotal.amount), str(inv.tax_total.amount), str(inv.total.amount)


def codes(result: BuildResult) -> list[str]:
    return [p.code for p in result.problems]


def test_overtime_split_at_five_pm_after_rounding_up_to_fifteen_minutes() -> None:
    r = job(labor=[span("T2", "2026-11-18T15:30:00-06:00", "2026-11-18T18:05:00-06:00")])
    # Wednesday. 2 h 35 min rounds up to 2 h 45 min: 15:30-18:15.
    # 15:30-17:00 = 1.50 h x 140 = 210.00; 17:00-18:15 = 1.25 h x (140 x 1.5 = 210) = 262.50
    assert rows(r) == [("1.50", "140", "210.00", "0.00"), ("1.25", "210", "262.50", "0.00")]
    assert "overtime x1.5" in r.invoice.lines[1].description
    assert totals(r) == ("472.50", "0.00", "472.50")
    assert codes(r) == []


def test_weekend_emergency_call_out_with_minimum_on_site_top_up() -> None:
    r = job(service_type="emergency_repair",
            labor=[span("T2", "2026-11-21T09:00:00-06:00", "2026-11-21T10:10:00-06:00")],
            completed_by="T2")
    # Saturday. 70 min -> 75 min = 1.25 h x (140 x 2.0 = 280) = 350.00
    # minimum 2.0 h on site: top-up 0.75 h x 140 (normal rate of the lead) = 105.00
    # call-out 200.00; Oklahoma taxes neither labor nor fees: total 655.00
    assert rows(r) == [("1.25", "280", "350.00", "0.00"), ("0.75", "140", "105.00", "0.00"),
                       ("1", "200", "200.00", "0.00")]
    assert totals(r) == ("655.00", "0.00", "655.00")


def test_public_holiday_uses_the_holiday_factor() -> None:
    r = job(labor=[span("T1", "2026-11-26T10:00:00-06:00", "2026-11-26T12:00:00-06:00")])
    # Thanksgiving (a Thursday in [rates].holidays): 2.00 h x (100 x 2.5 = 250) = 500.00
    assert rows(r) == [("2.00", "250", "500.00", "0.00")]
    assert "holiday x2.5" in r.invoice.lines[0].description


def test_planned_maintenance_under_contract_covers_labor_travel_and_discounts_parts() -> None:
    r = job(service_type="preventive_maintenance", contract_id="PM-1", completed_by="T2",
            customer={"id": "C-PM", "name": "Hospital Compressed Air"},
            labor=[span("T2", "2026-11-19T08:15:00-06:00", "2026-11-19T09:00:00-06:00", "travel"),
                   span("T2", "2026-11-19T09:00:00-06:00", "2026-11-19T12:00:00-06:00")],
            mileage={"distance": 20, "unit": "mi"},
            parts=[part("FILTER-A", 2), part("SEP-1")])
    # travel 0.75 h and on-site 3.00 h covered: shown at 0 with their list prices
    # (140 x 0.5 = 70 and 140); mileage covered (list 1.00/mi); no minimum top-up.
    # parts 10 % off: filter 2 x 45.00 = 90.00, separator 180.00; 8.5 % on parts:
    # 7.65 + 15.30 = 22.95; total 270.00 + 22.95 = 292.95
    assert rows(r) == [("0.75", "0", "0.00", "0.00"), ("3.00", "0", "0.00", "0.00"),
                       ("20", "0", "0.00", "0.00"), ("2", "45", "90.00", "7.65"),
                       ("1", "180", "180.00", "15.30")]
    lines = r.invoice.lines
    assert [x.list_unit_price for x in lines] == [
        Decimal(70), Decimal(140), Decimal(1), Decimal(50), Decimal(200)]
    assert lines[0].coverage == "covered by contract PM-1"
    assert lines[3].coverage == "contract PM-1: 10 % off"
    assert totals(r) == ("270.00", "22.95", "292.95")
    assert codes(r) == []


def test_emergency_under_contract_waives_call_out_but_bills_labor() -> None:
    r = job(service_type="emergency_repair", contract_id="PM-1", customer={"id": "C-PM"},
            labor=[span("T1", "2026-11-18T09:00:00-06:00", "2026-11-18T11:00:00-06:00")])
    # not a planned visit: 2.00 h x 100 = 200.00; call-out waived: shown at 0 (list 200)
    assert rows(r) == [("2.00", "100", "200.00", "0.00"), ("1", "0", "0.00", "0.00")]
    assert r.invoice.lines[1].coverage == "waived under contract PM-1"


def test_warranty_repair_is_shown_at_zero_and_not_held() -> None:
    r = job(service_type="emergency_repair", contract_id="W-1", customer={"id": "C-W"},
            labor=[span("T1", "2026-11-16T10:00:00-06:00", "2026-11-16T11:00:00-06:00")],
            parts=[part("VALVE")])
    # every line covered by the warranty: 1.00 h (list 100), call-out (200), valve (220)
    assert rows(r) == [("1.00", "0", "0.00", "0.00"), ("1", "0", "0.00", "0.00"),
                       ("1", "0", "0.00", "0.00")]
    assert [x.list_unit_price for x in r.invoice.lines] == [Decimal(100), Decimal(200),
                                                            Decimal(220)]
    assert totals(r) == ("0.00", "0.00", "0.00")
    assert codes(r) == []


def test_warranty_billed_to_the_manufacturer_at_normal_prices() -> None:
    r = job(service_type="emergency_repair", contract_id="W-2", customer={"id": "C-W2"},
            labor=[span("T1", "2026-11-16T10:00:00-06:00", "2026-11-16T11:00:00-06:00")],
            parts=[part("VALVE")])
    # billed to MFR; taxed where the work was done (Tulsa, 8.5 % on parts):
    # 1.00 h x 100 + top-up 1.00 h x 100 + call-out 200 + valve 220 = 620.00; tax 18.70
    assert r.invoice.customer.id == "MFR"
    assert totals(r) == ("620.00", "18.70", "638.70")
    assert any("Warranty claim under W-2" in note for note in r.invoice.notes)


def test_labor_untaxed_parts_taxed_in_oklahoma_but_both_taxed_in_texas() -> None:
    houston = {"id": "S-9", "name": "Houston plant", "address": {
        "line1": "1 Ship Channel", "city": "Houston", "region": "TX", "postal_code": "77002",
        "country": "US"}}
    work = {"labor": [span("T1", "2026-11-18T09:00:00-06:00", "2026-11-18T11:00:00-06:00")],
            "parts": [part("FILTER-A")]}
    # Oklahoma (billing address, no site): 200.00 untaxed + 50.00 x 8.5 % = 4.25
    assert totals(job(**work)) == ("250.00", "4.25", "254.25")
    # Texas site: 8.25 % on both: 16.50 + 4.125 -> 4.13 = 20.63
    assert totals(job(site=houston, **work)) == ("250.00", "20.63", "270.63")


def test_most_specific_jurisdiction_wins() -> None:
    sand_springs = {"id": "S-2", "name": "Plant 2", "address": {
        "line1": "88 Extrusion Way", "city": "Sand Springs", "region": "OK",
        "postal_code": "74063", "country": "US"}}
    r = job(site=sand_springs, parts=[part("FILTER-A", 2)])
    # postal prefix 74063 beats the state: 100.00 x 9.35 % = 9.35
    assert totals(r) == ("100.00", "9.35", "109.35")


def test_expired_exemption_certificate_is_held_and_taxed() -> None:
    r = job(customer={"id": "C-EX", "tax_exempt_certificate": "EX-1"},
            parts=[part("FILTER-A")])
    # certificate EX-1 expired 2026-06-30: taxed until someone looks: 50.00 x 8.5 % = 4.25
    assert codes(r) == ["exemption_expired"]
    assert totals(r) == ("50.00", "4.25", "54.25")


def test_valid_exemption_certificate_exempts_every_line() -> None:
    r = job(customer={"id": "C-EXOK", "tax_exempt_certificate": "EX-2"},
            parts=[part("FILTER-A")])
    assert totals(r) == ("50.00", "0.00", "50.00")
    assert codes(r) == []
    assert r.invoice.lines[0].tax_category is TaxCategory.EXEMPT
    assert "EX-2" in dict(r.invoice.exemption_reasons)[TaxCategory.EXEMPT]


def test_flat_rate_service_replaces_labor_and_the_parts_it_includes() -> None:
    r = job(labor=[span("T1", "2026-11-18T09:00:00-06:00", "2026-11-18T11:30:00-06:00")],
            parts=[part("SVC-2000"), part("FILTER-A"), part("SEP-1"),
                   part("OIL-5L", 2, unit="l")])
    # labor 2.50 h included (list 100); service 900.00 (taxed like labor: not in OK);
    # filter and separator included (list 50 and 200); oil 2 l x 12.00 = 24.00, tax 2.04
    assert rows(r) == [("2.50", "0", "0.00", "0.00"), ("1", "900", "900.00", "0.00"),
                       ("1", "0", "0.00", "0.00"), ("1", "0", "0.00", "0.00"),
                       ("2", "12", "24.00", "2.04")]
    assert r.invoice.lines[2].coverage == "included in 2000 h service (flat rate)"
    assert totals(r) == ("924.00", "2.04", "926.04")


def test_kit_is_sold_at_its_price_with_components_shown_at_zero() -> None:
    r = job(parts=[part("KIT-V")])
    # kit 300.00 (tax 25.50); inlet valve x1 (list 220) and gasket x2 (list 15) at 0
    assert rows(r) == [("1", "300", "300.00", "25.50"), ("1", "0", "0.00", "0.00"),
                       ("2", "0", "0.00", "0.00")]
    assert r.invoice.lines[2].coverage == "part of kit KIT-V"


def test_non_catalogue_part_is_cost_plus_markup() -> None:
    r = job(parts=[part("X-99", 1, description="Pressure switch", unit_cost="80.00")])
    # 80.00 x 1.25 = 100.00; tax 8.50
    assert rows(r) == [("1", "100", "100.00", "8.50")]
    assert r.invoice.lines[0].description == "Pressure switch (non-catalogue)"


def test_customer_price_list_and_not_to_exceed() -> None:
    work = {"customer": {"id": "C-BREW", "name": "Brewery"}, "completed_by": "T2",
            "labor": [span("T2", "2026-11-18T09:00:00-06:00", "2026-11-18T13:00:00-06:00")]}
    r = job(parts=[part("FILTER-A"), part("SEP-1", 2)], **work)
    # senior at the list's 130: 4.00 h = 520.00; filter listed at 45.00;
    # separator 200 less the list's 5 % = 190.00 x 2 = 380.00
    # tax 8.5 %: 3.825 -> 3.83 + 32.30 = 36.13; total 981.13 (under the 1000.00 limit)
    assert rows(r) == [("4.00", "130", "520.00", "0.00"), ("1", "45", "45.00", "3.83"),
                       ("2", "190", "380.00", "32.30")]
    assert totals(r) == ("945.00", "36.13", "981.13")
    assert codes(r) == []
    over = job(parts=[part("FILTER-A"), part("SEP-1", 3)], **work)
    # 520 + 45 + 570 = 1135.00 + tax 3.83 + 48.45 = 1187.28 > 1000.00
    assert codes(over) == ["not_to_exceed"]


def test_job_not_to_exceed_below_the_customer_limit_binds() -> None:
    r = job(not_to_exceed="100.00", parts=[part("FILTER-A", 2)])
    # 100.00 + 8.50 tax = 108.50 > 100.00
    assert codes(r) == ["not_to_exceed"]
    assert "the job's not-to-exceed" in r.problems[0].message


def test_po_required_and_missing_is_held() -> None:
    r = job(customer={"id": "C-PO"}, parts=[part("FILTER-A")])
    assert codes(r) == ["po_required"]
    assert codes(job(customer={"id": "C-PO"}, po_number="PO-1", parts=[part("FILTER-A")])) == []


def test_customer_currency_converts_at_the_configured_rate() -> None:
    r = job(customer={"id": "C-EUR"},
            labor=[span("T1", "2026-11-18T09:00:00-06:00", "2026-11-18T11:00:00-06:00")],
            parts=[part("FILTER-A")])
    # EUR at 0.92 per USD: rate 100 -> 92.00, 2.00 h = 184.00; filter 50 -> 46.00, tax 3.91
    assert r.invoice.currency == "EUR"
    assert totals(r) == ("230.00", "3.91", "233.91")


def test_currency_without_an_exchange_rate_is_held_and_built_in_the_tenant_currency() -> None:
    r = job(customer={"id": "C-CHF"}, parts=[part("FILTER-A")])
    assert codes(r) == ["no_exchange_rate"]
    assert r.invoice.currency == "USD"


def test_zero_total_that_is_not_covered_on_purpose_is_held() -> None:
    r = job(parts=[part("FILTER-A", 1, unit_price="0")])
    assert codes(r) == ["non_positive_total"]


def test_contract_outside_its_dates_or_unknown_is_held() -> None:
    base = {"service_type": "preventive_maintenance", "customer": {"id": "C-PM"},
            "parts": [part("FILTER-A")]}
    assert codes(job(contract_id="OLD", **base)) == ["contract_not_active"]
    assert codes(job(contract_id="NOPE", **base)) == ["unknown_contract"]
    assert codes(job(contract_id="PM-1", **{**base, "customer": {"id": "C-1"}})) == [
        "contract_customer_mismatch"]


FRANCE = {"line1": "3 Rue de la Gare", "city": "Lille", "postal_code": "59000", "country": "FR"}
BAMBERG = {"line1": "Hopfenweg 12", "city": "Bamberg", "postal_code": "96047", "country": "DE"}


def test_eu_cross_border_b2b_is_reverse_charged_with_the_legal_note() -> None:
    r = job("ksf", customer={"id": "K-FR", "name": "Brasserie du Nord SARL",
                             "vat_id": "FR44732829320", "billing_address": FRANCE},
            labor=[{"technician": "T1", "kind": "onsite", "hours": "2.0"}],
            parts=[part("6.3465.0", 2)])
    # 2.00 h x 98 = 196.00; 2 x 41.90 = 83.80; reverse charge: no VAT
    assert totals(r) == ("279.80", "0.00", "279.80")
    assert codes(r) == []
    assert {x.tax_category for x in r.invoice.lines} == {TaxCategory.REVERSE_CHARGE}
    assert any("Article 196" in note for note in r.invoice.notes)


def test_invalid_vat_id_is_held_and_vat_charged() -> None:
    r = job("ksf", customer={"id": "K-FRBAD", "name": "Brasserie du Nord SARL",
                             "vat_id": "FR00732829320", "billing_address": FRANCE},
            labor=[{"technician": "T1", "kind": "onsite", "hours": "2.0"}],
            parts=[part("6.3465.0", 2)])
    # taxed at 19 % per document: 279.80 x 0.19 = 53.162 -> 53.16
    assert codes(r) == ["invalid_vat_id"]
    assert totals(r) == ("279.80", "53.16", "332.96")


def test_unknown_customer_is_held_where_the_tenant_requires_known_customers() -> None:
    r = job("ksf", customer={"id": "K-NEW", "billing_address": BAMBERG},
            labor=[{"technician": "T1", "kind": "onsite", "hours": "1.0"}])
    assert codes(r) == ["customer_unmapped"]


def test_document_rounding_differs_from_line_rounding_as_documented() -> None:
    cheap = [part("6.3465.0", 1, unit_price="2.35") for _ in range(3)]
    de = job("ksf", customer={"id": "K-DE", "vat_id": "DE811907980", "billing_address": BAMBERG},
             parts=cheap)
    # per document: 7.05 x 0.19 = 1.3395 -> 1.34 (per line it would be 3 x 0.4465 -> 1.35)
    assert totals(de) == ("7.05", "1.34", "8.39")
    assert [str(x.tax.amount) for x in de.invoice.lines] == ["0.45", "0.45", "0.45"]
    assert sum(t.tax.amount for t in de.invoice.tax_breakdown()) == Decimal("1.34")


def test_reduced_vat_rate_per_line_and_breakdown_per_rate() -> None:
    r = job("ksf", customer={"id": "K-DE", "vat_id": "DE811907980", "billing_address": BAMBERG},
            labor=[{"technician": "T1", "kind": "onsite", "hours": "1.0"}],
            parts=[part("DOC-1")])
    # labor 98.00 at 19 % = 18.62; manual 20.00 at 7 % = 1.40
    breakdown = [(str(t.rate), str(t.taxable_amount.amount), str(t.tax.amount))
                 for t in r.invoice.tax_breakdown()]
    assert breakdown == [("0.07", "20.00", "1.40"), ("0.19", "98.00", "18.62")]
    assert totals(r) == ("118.00", "20.02", "138.02")


def test_uk_vat_domestic_and_travel_not_billed() -> None:
    derby = {"line1": "9 Station Rd", "city": "Derby", "postal_code": "DE1 2AB", "country": "GB"}
    r = job("uk", customer={"vat_id": "GB980780684", "billing_address": derby},
            labor=[span("T1", "2026-11-18T08:00:00+00:00", "2026-11-18T09:00:00+00:00", "travel"),
                   span("T1", "2026-11-18T09:00:00+00:00", "2026-11-18T11:00:00+00:00")])
    # travel is not billed here; 2.00 h x 90 = 180.00; VAT 20 % = 36.00
    assert rows(r) == [("2.00", "90", "180.00", "36.00")]
    assert r.invoice.currency == "GBP"


@pytest.mark.parametrize("tenant", ["prairie", "ksf", "uk"])
def test_every_case_recomputes_from_its_lines(tenant: str) -> None:
    r = job(tenant, customer={"id": "K-DE" if tenant == "ksf" else "C-1"},
            labor=[{"technician": "T1", "kind": "onsite", "hours": "3.3"}],
            parts=[part("6.3465.0" if tenant == "ksf" else "FILTER-A", 3)])
    inv = r.invoice
    assert inv.total == inv.subtotal + inv.tax_total
    assert sum(t.tax.amount for t in inv.tax_breakdown()) == inv.tax_total.amount
