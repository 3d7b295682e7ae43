from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from autoinvoice.billing.engine import build_invoice
from autoinvoice.config import billing_rules, load_config, parse_config
from autoinvoice.domain.invoice import TaxRounding
from autoinvoice.triggers.events import decode_json, parse_event
from autoinvoice.validation import InputError
from tests.helpers import completed, dumps, read_example


def _build(event_text: str, config=None, tenant=None):
    config = config or load_config(None)
    event = parse_event(decode_json(event_text))
    tenant = tenant or event.tenant
    return build_invoice(event.job.domain(), billing_rules(config.tenants[tenant]),
                         tenant=tenant, revision=1, issue_date=date(2026, 11, 21))


def _amounts(result):
    return [(line.kind.value, str(line.quantity), str(line.amount.amount), str(line.tax.amount))
            for line in result.invoice.lines]


def test_shared_emergency_repair_is_priced_as_its_config_implies(shared_dir):
    config = load_config(shared_dir / "examples" / "tenant-config.toml")
    result = _build(read_example(shared_dir, "job-emergency-repair.json"), config)
    # Friday 2026-11-20, senior 145.00/h; everything is after 17:00 -> overtime x1.5.
    # travel 17:05-17:50 = 0.75 h x 145 x 1.5 x 0.75 (travel) = 122.34375 -> 122.34
    # on-site 17:50-21:35 = 3.75 h x 145 x 1.5 = 815.625 -> 815.63 (above the 2.0 h minimum)
    # emergency call-out 250.00; mileage 38.5 mi x 0.95 = 36.575 -> 36.58
    # parts 412.00 + 689.50 + 5 l x 18.40 = 92.00; tax 8.5 % on parts only:
    # 35.02 + 58.6075->58.61 + 7.82 = 101.45
    # subtotal 122.34 + 815.63 + 250 + 36.58 + 1193.50 = 2418.05; total 2519.50
    assert _amounts(result) == [
        ("travel", "0.75", "122.34", "0.00"),
        ("labor", "3.75", "815.63", "0.00"),
        ("fee", "1", "250.00", "0.00"),
        ("mileage", "38.5", "36.58", "0.00"),
        ("part", "1", "412.00", "35.02"),
        ("part", "1", "689.50", "58.61"),
        ("part", "5", "92.00", "7.82"),
    ]
    inv = result.invoice
    assert (inv.subtotal.amount, inv.tax_total.amount, inv.total.amount) == (
        Decimal("2418.05"), Decimal("101.45"), Decimal("2519.50"))
    assert result.problems == ()


def test_shared_preventive_maintenance_uses_the_german_demo_tenant(shared_dir):
    result = _build(read_example(shared_dir, "job-preventive-maintenance.json"))
    # kompressor-service-de, contract WV-2024-017 (maintenance, 10 % off parts, VAT per
    # document): the planned visit's 3.25 h are covered (shown at 0, list 98.00/h);
    # parts 84.60 x 0.9 = 76.14; 2 x (41.90 x 0.9 = 37.71) = 75.42; 312.00 x 0.9 = 280.80
    # subtotal 432.36; VAT 19 % on the document: 82.1484 -> 82.15; total 514.51
    inv = result.invoice
    assert inv.currency == "EUR"
    assert [str(x.amount.amount) for x in inv.lines] == ["0.00", "76.14", "75.42", "280.80"]
    assert inv.lines[0].list_unit_price == Decimal("98")
    assert inv.lines[0].coverage
    assert (inv.subtotal.amount, inv.tax_total.amount, inv.total.amount) == (
        Decimal("432.36"), Decimal("82.15"), Decimal("514.51"))
    assert result.problems == ()


def test_labor_crossing_five_pm_is_split_into_normal_and_overtime():
    event = completed(labor=[{"technician": "T-07", "kind": "onsite",
                              "start": "2026-11-18T15:30:00-06:00",
                              "end": "2026-11-18T18:15:00-06:00"}],
                      parts=[], mileage=None, service_type="repair")
    result = _build(dumps(event))
    # Wednesday: 15:30-17:00 = 1.5 h x 145 = 217.50; 17:00-18:15 = 1.25 h x 217.50 = 271.875
    assert _amounts(result) == [("labor", "1.50", "217.50", "0.00"),
                                ("labor", "1.25", "271.88", "0.00")]


def test_weekend_work_uses_the_weekend_factor_and_call_out_fee():
    event = completed(labor=[{"technician": "T-07", "kind": "onsite",
                              "start": "2026-11-21T09:00:00-06:00",
                              "end": "2026-11-21T12:30:00-06:00"}],
                      parts=[], mileage=None)
    # Saturday: 3.5 h x 145 x 2.0 = 1015.00; emergency call-out 250.00
    assert _amounts(_build(dumps(event))) == [("labor", "3.50", "1015.00", "0.00"),
                                              ("fee", "1", "250.00", "0.00")]


def test_short_visit_is_topped_up_to_the_minimum_on_site_hours():
    event = completed(labor=[{"technician": "T-07", "kind": "onsite",
                              "start": "2026-11-18T09:00:00-06:00",
                              "end": "2026-11-18T09:45:00-06:00"}],
                      parts=[], mileage=None, service_type="inspection")
    # 0.75 h x 145 = 108.75, top-up 1.25 h x 145 = 181.25 -> 2.0 h billed
    assert _amounts(_build(dumps(event))) == [("labor", "0.75", "108.75", "0.00"),
                                              ("labor", "1.25", "181.25", "0.00")]


def test_part_used_in_gallons_is_converted_to_the_litre_price():
    event = completed(labor=[], mileage=None, service_type="repair",
                      parts=[{"sku": "OIL-RIF-8K", "quantity": 2, "unit": "gal"}])
    result = _build(dumps(event))
    # 2 gal = 7.570823568 l -> 7.571 l x 18.40 = 139.3064 -> 139.31; tax 8.5 % = 11.84
    assert _amounts(result) == [("part", "7.571", "139.31", "11.84")]
    assert result.problems == ()


def test_unknown_sku_and_unconvertible_unit_are_held_not_guessed():
    event = completed(labor=[], mileage=None, service_type="repair",
                      parts=[{"sku": "NOPE-1", "description": "Mystery", "quantity": 1},
                             {"sku": "OIL-RIF-8K", "quantity": 1, "unit": "kg"}])
    codes = [p.code for p in _build(dumps(event)).problems]
    assert codes == ["unknown_sku", "unit_mismatch"]


def test_unknown_grade_is_held():
    event = completed(technicians=[{"id": "T-07", "name": "R. Okafor", "grade": "apprentice"}])
    assert "unknown_grade" in [p.code for p in _build(dumps(event)).problems]


def test_mileage_in_km_is_converted_to_the_per_mile_rate():
    event = completed(labor=[], parts=[], service_type="repair",
                      mileage={"distance": Decimal("100"), "unit": "km"})
    # 100 km / 1.609344 = 62.137 -> 62.1 mi x 0.95 = 58.995 -> 59.00; total <= 0 is not an issue
    assert _amounts(_build(dumps(event))) == [("mileage", "62.1", "59.00", "0.00")]


def test_totals_always_recompute_from_lines():
    inv = _build(dumps(completed())).invoice
    assert sum(x.amount.amount for x in inv.lines) == inv.subtotal.amount
    assert sum(x.tax.amount for x in inv.lines) == inv.tax_total.amount
    assert sum(t.tax.amount for t in inv.tax_breakdown()) == inv.tax_total.amount
    for line in inv.lines:
        assert line.amount.amount == (line.quantity * line.unit_price).quantize(Decimal("0.01"),
                                                                                 "ROUND_HALF_UP")


def test_example_tenant_config_is_accepted_as_it_is(shared_dir):
    config = load_config(shared_dir / "examples" / "tenant-config.toml")
    assert config.tenants["northwind"].platform.name == "quickbooks"
    assert config.tenants["northwind"].rates.grades["senior"] == Decimal("145.00")


def test_bad_config_names_every_bad_field():
    text = """
[tenants.x]
legal_name = "X"
address = { line1 = "a", city = "b", country = "USA" }
currency = "XYZ"
invoice_series = "NO-SEQ"
[tenants.x.rates]
senior = "abc"
"""
    with pytest.raises(InputError) as info:
        parse_config(text, "test.toml")
    message = str(info.value)
    for field in ("tenants.x.address.country", "tenants.x.currency", "tenants.x.invoice_series",
                  "tenants.x.rates.grades.senior"):
        assert field in message


def test_tax_rounding_unlike_the_platform_is_refused_at_start():
    from autoinvoice.bootstrap import check_platform_fit

    config = load_config(None)
    tenant = config.tenants["northwind"]
    tax = tenant.tax.model_copy(update={"rounding": TaxRounding.DOCUMENT})
    bad = config.model_copy(update={"tenants": {
        **config.tenants, "northwind": tenant.model_copy(update={"tax": tax})}})
    with pytest.raises(InputError) as caught:
        check_platform_fit(bad)
    assert "tenants.northwind.tax.rounding" in str(caught.value)
    check_platform_fit(config)  # the demo's own settings fit
