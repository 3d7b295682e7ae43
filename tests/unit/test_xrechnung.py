"""XRechnung 3.0 in CII and UBL for every shared example and billing case: CEN's rules and
KoSIT's XRechnung rules (built as KoSIT builds them) pass when the tenant's data are
complete, amounts are exactly ours; incomplete data name the rule that holds the invoice."""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest
from lxml import etree

from autoinvoice.documents import en16931
from autoinvoice.documents.en16931 import BUSINESS_PROCESS, Syntax
from autoinvoice.documents.xrechnung import XRECHNUNG_CIUS, to_xrechnung, xrechnung_problems
from autoinvoice.domain.invoice import Invoice, PaymentInstructions, TaxCategory
from tests.unit.einvoice_cases import (
    CASES,
    NS,
    RULES_DIR,
    cii_amounts,
    complete_office,
    eu_cases,
    fatal_all,
    needs_all_rules,
    numbered,
    ours,
    reverse_charge_ae,
    ubl_amounts,
)

AMOUNTS = {Syntax.UBL: ubl_amounts, Syntax.CII: cii_amounts}
FORMAT = {Syntax.CII: "xrechnung", Syntax.UBL: "xrechnung-ubl"}
#: KoSIT checks the contact's parts (BR-DE-5 to -7) only where there is a contact (BG-6).
OFFICE_RULES = {"BR-DE-1", "BR-DE-2"}


def _rules(findings: list[tuple[str, str, str]]) -> set[str]:
    return {rule for rule, *_ in findings}


def _checked(invoice: Invoice, syntax: Syntax) -> set[str]:
    return _rules(fatal_all(to_xrechnung(invoice, syntax), FORMAT[syntax]))


@needs_all_rules
@pytest.mark.parametrize("syntax", Syntax)
@pytest.mark.parametrize("case", CASES)
def test_xrechnung_passes_cen_and_kosit_rules_with_complete_tenant_data(
        case: str, syntax: Syntax) -> None:
    invoice = complete_office(CASES[case]())
    assert xrechnung_problems(invoice) == []
    assert fatal_all(to_xrechnung(invoice, syntax), FORMAT[syntax]) == []


@pytest.mark.parametrize("syntax", Syntax)
@pytest.mark.parametrize("case", CASES)
def test_xrechnung_amounts_equal_ours_exactly(case: str, syntax: Syntax) -> None:
    invoice = complete_office(CASES[case]())
    root = etree.fromstring(to_xrechnung(invoice, syntax))
    assert AMOUNTS[syntax](root) == ours(invoice)


def test_cii_is_the_default_and_both_carry_the_xrechnung_identifier_and_process() -> None:
    invoice = complete_office(reverse_charge_ae())
    cii = etree.fromstring(to_xrechnung(invoice))
    assert etree.QName(cii).localname == "CrossIndustryInvoice"
    assert cii.xpath("string(//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID)",
                     namespaces=NS) == XRECHNUNG_CIUS
    assert cii.xpath("string(//ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID)",
                     namespaces=NS) == BUSINESS_PROCESS
    ubl = etree.fromstring(to_xrechnung(invoice, Syntax.UBL))
    assert ubl.xpath("string(cbc:CustomizationID)", namespaces=NS) == XRECHNUNG_CIUS
    assert ubl.xpath("string(cbc:ProfileID)", namespaces=NS) == BUSINESS_PROCESS


@needs_all_rules
@pytest.mark.parametrize("syntax", Syntax)
def test_a_tenant_without_office_data_is_held_with_kosits_rule_ids(syntax: Syntax) -> None:
    # given the German billing case as its tenant configures it: no contact, no bank account
    invoice = numbered(eu_cases()["reduced_rate_7"]())
    # then KoSIT's rules name what is missing
    assert OFFICE_RULES <= _checked(invoice, syntax)


@needs_all_rules
def test_the_business_process_is_required_by_kosits_rules() -> None:
    # given an XRechnung CII without BT-23 (what every XRechnung CII was before)
    xml = to_xrechnung(complete_office(reverse_charge_ae()))
    root = etree.fromstring(xml)
    for node in root.xpath("//ram:BusinessProcessSpecifiedDocumentContextParameter",
                           namespaces=NS):
        node.getparent().remove(node)
    # then PEPPOL-EN16931-R001, merged in by KoSIT's build, fails it
    assert "PEPPOL-EN16931-R001" in _rules(fatal_all(etree.tostring(root), "xrechnung"))


def test_the_demo_german_tenant_is_complete() -> None:
    # the shared preventive-maintenance job, billed by the demo's kompressor-service-de
    invoice = numbered(CASES["shared_preventive_maintenance"]())
    assert invoice.tenant == "kompressor-service-de"
    assert xrechnung_problems(invoice) == []


def _without_references(invoice: Invoice) -> Invoice:
    return replace(invoice, buyer_reference=None, job=replace(invoice.job, po_number=None))


def test_buyer_reference_needs_a_leitweg_id_or_a_po_not_our_job_id() -> None:
    # the rules see a BT-10 (our job id, the other formats' fallback) and cannot tell
    complete = complete_office(eu_cases()["reduced_rate_7"]())
    bare = _without_references(complete)
    assert {rule for rule, _ in xrechnung_problems(bare)} == {"BR-DE-15"}
    with_po = replace(bare, job=replace(bare.job, po_number="PO-4711"))
    assert xrechnung_problems(with_po) == []


@needs_all_rules
@pytest.mark.parametrize(("change", "rule", "flag"), [
    ({"payment": PaymentInstructions(iban="DE89370400440532013001")}, "BR-DE-19", "warning"),
    ({"phone": "12"}, "BR-DE-27", "warning"),
    ({"email": "rechnung@"}, "BR-DE-28", "warning"),
    ({"contact_name": " "}, "BR-DE-5", "fatal"),
    ({"payment": PaymentInstructions(iban="DE89370400440532013000",
                                     note="Skonto:\n#SKONTO#TAGE=7#")}, "BR-DE-18", "fatal"),
])
@pytest.mark.parametrize("syntax", Syntax)
def test_malformed_office_data_names_its_rule_as_kosit_grades_it(
        change: dict[str, object], rule: str, flag: str, syntax: Syntax) -> None:
    # KoSIT grades a bad IBAN, telephone or e-mail as warnings: they do not hold the invoice
    invoice = complete_office(eu_cases()["reduced_rate_7"]())
    invoice = replace(invoice, seller=replace(invoice.seller, **change))  # type: ignore[arg-type]
    result = en16931.validate_format(to_xrechnung(invoice, syntax), FORMAT[syntax])
    assert {(f.rule, f.flag) for f in result.findings if f.rule == rule} == {(rule, flag)}


@needs_all_rules
@pytest.mark.parametrize("syntax", Syntax)
def test_addresses_without_post_code_name_br_de_4_and_9(syntax: Syntax) -> None:
    invoice = complete_office(eu_cases()["reduced_rate_7"]())
    seller = replace(invoice.seller, address=replace(invoice.seller.address, postal_code=""))
    customer = replace(invoice.customer, billing_address=replace(
        invoice.customer.billing_address, postal_code=""))
    assert {"BR-DE-4", "BR-DE-9"} <= _checked(
        replace(invoice, seller=seller, customer=customer), syntax)


@needs_all_rules
@pytest.mark.parametrize("syntax", Syntax)
def test_not_subject_to_vat_carries_rate_zero_in_the_breakdown(syntax: Syntax) -> None:
    # given an invoice outside the scope of VAT (category O): XRechnung wants BT-119 anyway
    base = complete_office(reverse_charge_ae())
    lines = tuple(replace(x, tax_category=TaxCategory.NOT_SUBJECT) for x in base.lines)
    invoice = replace(base, lines=lines, exemption_reasons=())
    assert _checked(invoice, syntax) == set()


@pytest.mark.parametrize("case", CASES)
def test_xrechnung_cii_with_its_business_process_is_valid_against_the_d16b_schema(
        case: str) -> None:
    xsd = (RULES_DIR / "cii" / "schema-D16B" / "uncoupled" / "CII" / "uncefact" / "data"
           / "standard" / "CrossIndustryInvoice_100pD16B.xsd")
    if not xsd.is_file():
        pytest.skip(f"CII D16B schema absent ({xsd})")
    schema = _schema(xsd)
    root = etree.fromstring(to_xrechnung(complete_office(CASES[case]())))
    assert schema.validate(root), schema.error_log.last_error


@cache
def _schema(xsd: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(xsd)))
