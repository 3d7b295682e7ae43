"""The invoices every e-invoice test writes: the shared examples and the hand-priced billing
cases, and the helpers that compare amounts and collect fatal findings. One place, so UBL,
CII, XRechnung and Factur-X are held to the same cases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from lxml import etree

from autoinvoice.billing.engine import build_invoice
from autoinvoice.config import billing_rules, load_config
from autoinvoice.documents import en16931, schematron
from autoinvoice.documents.en16931 import Syntax
from autoinvoice.domain.invoice import DocumentKind, Invoice, PaymentInstructions
from autoinvoice.triggers.events import decode_json, parse_event
from tests.helpers import read_example
from tests.unit.test_billing_cases import BAMBERG, FRANCE, job, part, span

RULES_DIR = en16931.DEFAULT_RULES_DIR
needs_rules = pytest.mark.skipif(
    not en16931.rules_available(),
    reason=f"EN 16931 rules absent ({en16931.resolve_rules_dir()}): not validated")
needs_all_rules = pytest.mark.skipif(
    bool(en16931.missing_rules(tuple(schematron.RuleSet))),
    reason=f"Peppol / XRechnung rules or SchXslt absent ({en16931.resolve_rules_dir()}): "
           "not validated")
#: Peppol participant ids for parties whose VAT id gives none (a US seller's EIN, a buyer
#: without VAT id): what a tenant sending Peppol documents configures.
SELLER_GLN = "0088:4012345000009"
BUYER_GLN = "0088:5790000435975"

NS = {"cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
      "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
      "ram": "urn:un:unece:uncefact:data:standard:"
             "ReusableAggregateBusinessInformationEntity:100"}
HOUSTON = {"id": "S-9", "name": "Houston plant", "address": {
    "line1": "1 Ship Channel", "city": "Houston", "region": "TX", "postal_code": "77002",
    "country": "US"}}
CII_RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
LABOR_2H = [{"technician": "T1", "kind": "onsite", "hours": "2.0"}]


def reverse_charge_ae() -> Invoice:
    return job("ksf", customer={"id": "K-FR", "name": "Brasserie du Nord SARL",
                                "vat_id": "FR44732829320", "billing_address": FRANCE},
               labor=LABOR_2H, parts=[part("6.3465.0", 2)]).invoice


def eu_cases() -> dict[str, Callable[[], Invoice]]:
    de = {"id": "K-DE", "vat_id": "DE811907980", "billing_address": BAMBERG}
    derby = {"line1": "9 Station Rd", "city": "Derby", "postal_code": "DE1 2AB", "country": "GB"}
    return {
        "eu_reverse_charge_ae": reverse_charge_ae,
        "invalid_vat_id_charged_s": lambda: job(
            "ksf", customer={"id": "K-FRBAD", "name": "Brasserie du Nord SARL",
                             "vat_id": "FR00732829320", "billing_address": FRANCE},
            labor=LABOR_2H, parts=[part("6.3465.0", 2)]).invoice,
        "document_rounding": lambda: job(
            "ksf", customer=de,
            parts=[part("6.3465.0", 1, unit_price="2.35") for _ in range(3)]).invoice,
        "reduced_rate_7": lambda: job(
            "ksf", customer=de, labor=[{"technician": "T1", "kind": "onsite", "hours": "1.0"}],
            parts=[part("DOC-1")]).invoice,
        "uk_vat": lambda: job(
            "uk", customer={"vat_id": "GB980780684", "billing_address": derby},
            labor=[span("T1", "2026-11-18T09:00:00+00:00", "2026-11-18T11:00:00+00:00")]).invoice,
        "credit_note_of_reverse_charge": lambda: replace(
            reverse_charge_ae(), kind=DocumentKind.CREDIT_NOTE, corrects="RE-2026-0001",
            number="GS-2026-0001"),
    }


def us_cases() -> dict[str, Callable[[], Invoice]]:
    """US sales tax in USD: EN 16931 has no sales-tax concept, so taxed lines are written as
    "S" at the sales-tax rate, untaxed ones as "Z", the seller's EIN as tax registration."""
    pm = {"id": "C-PM", "name": "Hospital Compressed Air"}
    return {
        "us_sales_tax": lambda: job(
            labor=[span("T1", "2026-11-18T09:00:00-06:00", "2026-11-18T11:00:00-06:00")],
            parts=[part("FILTER-A")]).invoice,
        "us_exempt_certificate_e": lambda: job(
            customer={"id": "C-EXOK", "tax_exempt_certificate": "EX-2"},
            parts=[part("FILTER-A")]).invoice,
        "warranty_at_zero": lambda: job(
            service_type="emergency_repair", contract_id="W-1", customer={"id": "C-W"},
            labor=[span("T1", "2026-11-16T10:00:00-06:00", "2026-11-16T11:00:00-06:00")],
            parts=[part("VALVE")]).invoice,
        "contract_with_covered_lines": lambda: job(
            service_type="preventive_maintenance", contract_id="PM-1", completed_by="T2",
            customer=pm, mileage={"distance": 20, "unit": "mi"},
            labor=[span("T2", "2026-11-19T08:15:00-06:00", "2026-11-19T09:00:00-06:00",
                        "travel"),
                   span("T2", "2026-11-19T09:00:00-06:00", "2026-11-19T12:00:00-06:00")],
            parts=[part("FILTER-A", 2), part("SEP-1")]).invoice,
        "texas_labor_and_parts_taxed": lambda: job(
            site=HOUSTON, labor=LABOR_2H, parts=[part("FILTER-A")]).invoice,
        "customer_currency_eur": lambda: job(
            customer={"id": "C-EUR"}, labor=LABOR_2H, parts=[part("FILTER-A")]).invoice,
        "kit_with_components_at_zero": lambda: job(parts=[part("KIT-V")]).invoice,
        "us_credit_note": lambda: replace(
            job(parts=[part("FILTER-A", 2)]).invoice, kind=DocumentKind.CREDIT_NOTE,
            corrects="PA-2026-00001", number="PA-2026-00002"),
        "flat_rate_service_and_oil_in_litres": lambda: job(
            labor=[span("T1", "2026-11-18T09:00:00-06:00", "2026-11-18T11:30:00-06:00")],
            parts=[part("SVC-2000"), part("FILTER-A"), part("SEP-1"),
                   part("OIL-5L", 2, unit="l")]).invoice,
    }


def _shared(name: str, config_file: str | None) -> Callable[[], Invoice]:
    def build() -> Invoice:
        shared = RULES_DIR.parent
        if not (shared / "examples" / name).is_file():
            pytest.skip(f"../shared/examples/{name} is absent")
        config = load_config(shared / "examples" / config_file if config_file else None)
        event = parse_event(decode_json(read_example(shared, name)))
        return build_invoice(event.job.domain(), billing_rules(config.tenants[event.tenant]),
                             tenant=event.tenant, revision=1,
                             issue_date=date(2026, 11, 21)).invoice
    return build


SHARED_CASES = {
    "shared_emergency_repair": _shared("job-emergency-repair.json", "tenant-config.toml"),
    "shared_preventive_maintenance": _shared("job-preventive-maintenance.json", None),
}
CASES = {**eu_cases(), **us_cases(), **SHARED_CASES}


def numbered(invoice: Invoice) -> Invoice:
    return invoice if invoice.number else invoice.with_number("T-2026-0001")


def peppol_ready(invoice: Invoice) -> Invoice:
    """The invoice as a tenant sending Peppol documents issues it: every party has an
    electronic address (its VAT id's where it gives one, else a configured GLN); a German
    seller also gives its contact and bank account (Peppol's DE-R-001, DE-R-002)."""
    seller = invoice.seller if en16931.seller_endpoint(invoice) else replace(
        invoice.seller, peppol_id=SELLER_GLN)
    buyer = None if en16931.buyer_endpoint(invoice) else BUYER_GLN
    ready = numbered(replace(invoice, seller=seller, buyer_peppol_id=buyer))
    return complete_office(ready) if seller.address.country == "DE" else ready


def fatal_all(xml: bytes, fmt: str) -> list[tuple[str, str, str]]:
    """Fatal findings of every rule set that applies to an e-invoice of ``fmt``."""
    result = en16931.validate_format(xml, fmt)
    assert result.available, result.reason
    return [(f.rule, f.message, f.location) for f in result.fatal]


def fatal(xml: bytes, syntax: Syntax) -> list[tuple[str, str, str]]:
    result = en16931.validate(xml, syntax)
    assert result.available, result.reason
    return [(f.rule, f.message, f.location) for f in result.fatal]


def _texts(root: etree._Element, path: str) -> list[Decimal]:
    return [Decimal(str(x)) for x in root.xpath(path, namespaces=NS)]


def ours(invoice: Invoice) -> dict[str, object]:
    return {
        "lines": [x.amount.amount for x in invoice.lines],
        "breakdown": [(t.category.value, t.taxable_amount.amount, t.tax.amount)
                      for t in invoice.tax_breakdown()],
        "subtotal": [invoice.subtotal.amount, invoice.subtotal.amount],
        "tax": [invoice.tax_total.amount], "payable": [invoice.total.amount],
    }


def ubl_amounts(root: etree._Element) -> dict[str, object]:
    subtotals = root.xpath("cac:TaxTotal/cac:TaxSubtotal", namespaces=NS)
    return {
        "lines": _texts(root, "(cac:InvoiceLine|cac:CreditNoteLine)"
                              "/cbc:LineExtensionAmount/text()"),
        "breakdown": [(s.xpath("string(cac:TaxCategory/cbc:ID)", namespaces=NS),
                       Decimal(s.xpath("string(cbc:TaxableAmount)", namespaces=NS)),
                       Decimal(s.xpath("string(cbc:TaxAmount)", namespaces=NS)))
                      for s in subtotals],
        "subtotal": _texts(root, "cac:LegalMonetaryTotal/cbc:LineExtensionAmount/text()"
                                 " | cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount/text()"),
        "tax": _texts(root, "cac:TaxTotal/cbc:TaxAmount/text()"),
        "payable": _texts(root, "cac:LegalMonetaryTotal/cbc:PayableAmount/text()"),
    }


def cii_amounts(root: etree._Element) -> dict[str, object]:
    settlement = "//ram:ApplicableHeaderTradeSettlement"
    groups = root.xpath(f"{settlement}/ram:ApplicableTradeTax", namespaces=NS)
    return {
        "lines": _texts(root, "//ram:SpecifiedTradeSettlementLineMonetarySummation"
                              "/ram:LineTotalAmount/text()"),
        "breakdown": [(g.xpath("string(ram:CategoryCode)", namespaces=NS),
                       Decimal(g.xpath("string(ram:BasisAmount)", namespaces=NS)),
                       Decimal(g.xpath("string(ram:CalculatedAmount)", namespaces=NS)))
                      for g in groups],
        "subtotal": _texts(root, f"{settlement}//ram:LineTotalAmount/text()"
                                 f" | {settlement}//ram:TaxBasisTotalAmount/text()"),
        "tax": _texts(root, f"{settlement}//ram:TaxTotalAmount/text()"),
        "payable": _texts(root, f"{settlement}//ram:DuePayableAmount/text()"),
    }




#: What a German office configures for XRechnung (as the demo tenant kompressor-service-de).
OFFICE_PAYMENT = PaymentInstructions(iban="DE89 3704 0044 0532 0130 00", bic="COBADEFFXXX",
                                     bank_name="Commerzbank", account_holder="KSF GmbH")
LEITWEG_ID = "991-01234-56"


def complete_office(invoice: Invoice) -> Invoice:
    """The invoice as a tenant with complete XRechnung data would issue it: contact,
    telephone, e-mail, bank account, the buyer's Leitweg-ID and electronic address."""
    seller = replace(invoice.seller, contact_name="Petra Vogel", phone="+49 911 123456-0",
                     email=invoice.seller.email or "rechnung@kompressor-franken.example",
                     payment=invoice.seller.payment or OFFICE_PAYMENT)
    ready = numbered(replace(invoice, seller=seller,
                             buyer_reference=invoice.buyer_reference or LEITWEG_ID))
    # XRechnung requires BT-34 and BT-49 (PEPPOL-EN16931-R020, R010): a public buyer's is
    # its Leitweg-ID (scheme 0204)
    if not en16931.seller_endpoint(ready):
        ready = replace(ready, seller=replace(ready.seller, peppol_id=SELLER_GLN))
    if not en16931.buyer_endpoint(ready):
        ready = replace(ready, buyer_peppol_id=f"0204:{LEITWEG_ID}")
    return ready
