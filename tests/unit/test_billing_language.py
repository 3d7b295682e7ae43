"""The words the billing engine writes onto the invoice follow the tenant's document
language: the German demo tenant's lines, coverage and notes are German."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from autoinvoice.billing.engine import build_invoice
from autoinvoice.config import billing_rules, load_config
from autoinvoice.triggers.events import parse_event
from tests.helpers import completed

GERMAN_JOB = {
    "service_type": "preventive_maintenance", "contract_id": "WV-2024-017", "po_number": None,
    "customer": {"id": "K-1042", "name": "Brauerei Feldmann GmbH",
                 "email": "rechnung@feldmann.example",
                 "billing_address": {"line1": "Hopfenweg 12", "city": "Bamberg",
                                     "postal_code": "96047", "country": "DE"}},
    "technicians": [{"id": "T-21", "name": "M. Becker", "grade": "technician"}],
    "labor": [{"technician": "T-21", "kind": "onsite", "start": "2026-11-20T16:00:00+01:00",
               "end": "2026-11-20T18:00:00+01:00"}],
    "parts": [{"sku": "6.4149.0", "description": "Luftfilterelement", "quantity": 1,
               "unit": "ea"}],
    "mileage": {"distance": Decimal("12.5"), "unit": "km"},
    "completed_at": "2026-11-20T18:00:00+01:00", "completed_by": "T-21",
}


def build(tenant: str, **changes):
    event = completed("AU-T-1", tenant=tenant, **{**GERMAN_JOB, **changes})
    rules = billing_rules(load_config().tenant(tenant))
    return build_invoice(parse_event(event).job.domain(), rules, tenant=tenant, revision=1,
                         issue_date=date(2026, 11, 23)).invoice


def test_a_german_tenants_lines_coverage_and_notes_are_in_german():
    invoice = build("kompressor-service-de")
    described = {line.description: line.coverage for line in invoice.lines}
    # 16:00-17:00 normal, 17:00-18:00 overtime x1.25 (covered: a planned visit under contract)
    assert described["Arbeitszeit vor Ort - M. Becker (technician)"] == (
        "im Vertrag WV-2024-017 enthalten")
    assert described["Arbeitszeit vor Ort - M. Becker (technician, Überstunden x1,25)"] == (
        "im Vertrag WV-2024-017 enthalten")
    assert described["Fahrtkosten (12,5 km)"] == "im Vertrag WV-2024-017 enthalten"
    assert described["Luftfilterelement"] == "Vertrag WV-2024-017: 10 % Rabatt"
    assert "Wartungsvertrag WV-2024-017" in invoice.notes


def test_a_german_tenants_reverse_charge_note_is_german_unless_configured():
    austrian = {"id": "K-9", "name": "Druckluft Wien GmbH", "email": "office@dlw.example",
                "vat_id": "ATU13585627",
                "billing_address": {"line1": "Ring 1", "city": "Wien", "postal_code": "1010",
                                    "country": "AT"}}
    invoice = build("kompressor-service-de", customer=austrian, contract_id=None)
    assert invoice.notes[0].startswith("Steuerschuldnerschaft des Leistungsempfängers")


def test_an_english_tenant_keeps_english_words():
    invoice = build("northwind", customer={**GERMAN_JOB["customer"], "billing_address": {
        "line1": "1 Main St", "city": "Tulsa", "region": "OK", "postal_code": "74119",
        "country": "US"}}, contract_id=None, mileage=None)
    assert invoice.lines[0].description.startswith("On-site labor - M. Becker (technician")
