"""XRechnung 3.0 in CII and UBL for every shared example and billing case: the EN 16931 rules
pass, our BR-DE checks pass on the document when the tenant's data are complete, amounts
are exactly ours; incomplete data name the rule that holds the invoice."""

from __future__ import annotations

from dataclasses import replace

import pytest
from lxml import etree

from autoinvoice.documents import en16931
from autoinvoice.documents.en16931 import Syntax
from autoinvoice.documents.xrechnung import (
    XRECHNUNG_CIUS,
    iban_is_valid,
    to_xrechnung,
    xml_problems,
    xrechnung_problems,
)
from autoinvoice.domain.invoice import Invoice, PaymentInstructions, TaxCategory
from tests.unit.einvoice_cases import (
    CASES,
    NS,
    cii_amounts,
    complete_office,
    eu_cases,
    fatal,
    needs_rules,
    numbered,
    ours,
    reverse_charge_ae,
    ubl_amounts,
)

AMOUNTS = {Syntax.UBL: ubl_amounts, Syntax.CII: cii_amounts}
OFFICE_RULES = {"BR-DE-1", "BR-DE-2", "BR-DE-5", "BR-DE-6", "BR-DE-7", "PEPPOL-EN16931-R020"}


def _rules(problems: list[tuple[str, str]]) -> set[str]:
    return {rule for rule, _ in problems}


@needs_rules
@pytest.mark.parametrize("syntax", Syntax)
@pytest.mark.parametrize("case", CASES)
def test_xrechnung_passes_en16931_with_no_fatal_finding(case: str, syntax: Syntax) -> None:
    assert fatal(to_xrechnung(complete_office(CASES[case]()), syntax), syntax) == []


@pytest.mark.parametrize("syntax", Syntax)
@pytest.mark.parametrize("case", CASES)
def test_xrechnung_passes_br_de_with_complete_tenant_data(case: str, syntax: Syntax) -> None:
    invoice = complete_office(CASES[case]())
    assert xrechnung_problems(invoice) == []
    assert xml_problems(to_xrechnung(invoice, syntax)) == []


@pytest.mark.parametrize("syntax", Syntax)
@pytest.mark.parametrize("case", CASES)
def test_xrechnung_amounts_equal_ours_exactly(case: str, syntax: Syntax) -> None:
    invoice = complete_office(CASES[case]())
    root = etree.fromstring(to_xrechnung(invoice, syntax))
    assert AMOUNTS[syntax](root) == ours(invoice)


@pytest.mark.parametrize("case", CASES)
def test_the_data_check_and_the_document_check_agree(case: str) -> None:
    # given the billing case as its tenant configures it (mostly without XRechnung data)
    invoice = numbered(CASES[case]())
    expected = _rules(xrechnung_problems(invoice))
    # then the document breaks the same rules, except BT-10, which falls back to our job id
    for syntax in Syntax:
        assert _rules(xml_problems(to_xrechnung(invoice, syntax))) == expected - {"BR-DE-15"}


def test_cii_is_the_default_and_both_carry_the_xrechnung_identifier() -> None:
    invoice = complete_office(reverse_charge_ae())
    cii = etree.fromstring(to_xrechnung(invoice))
    assert etree.QName(cii).localname == "CrossIndustryInvoice"
    assert cii.xpath("string(//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID)",
                     namespaces=NS) == XRECHNUNG_CIUS
    ubl = etree.fromstring(to_xrechnung(invoice, Syntax.UBL))
    assert ubl.xpath("string(cbc:CustomizationID)", namespaces=NS) == XRECHNUNG_CIUS


def test_a_tenant_without_office_data_is_held_with_the_rule_ids() -> None:
    problems = xrechnung_problems(numbered(eu_cases()["reduced_rate_7"]()))
    assert OFFICE_RULES | {"BR-DE-15"} == _rules(problems)
    assert all(message for _, message in problems)


def test_the_demo_german_tenant_is_complete() -> None:
    # the shared preventive-maintenance job, billed by the demo's kompressor-service-de
    invoice = numbered(CASES["shared_preventive_maintenance"]())
    assert invoice.tenant == "kompressor-service-de"
    assert xrechnung_problems(invoice) == []


def _without_references(invoice: Invoice) -> Invoice:
    return replace(invoice, buyer_reference=None, job=replace(invoice.job, po_number=None))


def test_buyer_reference_needs_a_leitweg_id_or_a_po_not_our_job_id() -> None:
    complete = complete_office(eu_cases()["reduced_rate_7"]())
    bare = _without_references(complete)
    assert _rules(xrechnung_problems(bare)) == {"BR-DE-15"}
    with_po = replace(bare, job=replace(bare.job, po_number="PO-4711"))
    assert xrechnung_problems(with_po) == []


@pytest.mark.parametrize(("change", "rule"), [
    ({"payment": PaymentInstructions(iban="DE89370400440532013001")}, "BR-DE-19"),
    ({"phone": "12"}, "BR-DE-27"),
    ({"email": "rechnung@"}, "BR-DE-28"),
    ({"contact_name": " "}, "BR-DE-5"),
    ({"payment": PaymentInstructions(iban="DE89370400440532013000",
                                     note="Skonto:\n#SKONTO#TAGE=7#")}, "BR-DE-18"),
])
def test_malformed_office_data_names_its_rule(change: dict[str, object], rule: str) -> None:
    invoice = complete_office(eu_cases()["reduced_rate_7"]())
    invoice = replace(invoice, seller=replace(invoice.seller, **change))  # type: ignore[arg-type]
    assert _rules(xrechnung_problems(invoice)) == {rule}


def test_addresses_without_post_code_name_br_de_4_and_9() -> None:
    invoice = complete_office(eu_cases()["reduced_rate_7"]())
    seller = replace(invoice.seller, address=replace(invoice.seller.address, postal_code=""))
    customer = replace(invoice.customer, billing_address=replace(
        invoice.customer.billing_address, postal_code=""))
    problems = xrechnung_problems(replace(invoice, seller=seller, customer=customer))
    assert _rules(problems) == {"BR-DE-4", "BR-DE-9"}


@pytest.mark.parametrize("syntax", Syntax)
def test_not_subject_to_vat_carries_rate_zero_in_the_breakdown(syntax: Syntax) -> None:
    # given an invoice outside the scope of VAT (category O): XRechnung wants BT-119 anyway
    base = complete_office(reverse_charge_ae())
    lines = tuple(replace(x, tax_category=TaxCategory.NOT_SUBJECT) for x in base.lines)
    invoice = replace(base, lines=lines, exemption_reasons=())
    xml = to_xrechnung(invoice, syntax)
    assert xml_problems(xml) == []
    if en16931.rules_available():  # and EN 16931 agrees
        assert fatal(xml, syntax) == []


def test_iban_check_digits() -> None:
    assert iban_is_valid("DE89 3704 0044 0532 0130 00")
    assert iban_is_valid("GB82WEST12345698765432")
    assert not iban_is_valid("DE89370400440532013001")
    assert not iban_is_valid("not an iban")
