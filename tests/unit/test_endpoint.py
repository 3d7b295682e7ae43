"""Electronic addresses (BT-34 seller, BT-49 buyer): Peppol participant ids from the
configuration, checked against Peppol's EAS code list at start; a default from a VAT id
where the EAS has a VAT scheme for its country; never an e-mail address (``EM``)."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from lxml import etree

from autoinvoice.billing.engine import build_invoice
from autoinvoice.config import billing_rules, default_config_text, parse_config
from autoinvoice.documents import en16931
from autoinvoice.documents.cii import to_cii
from autoinvoice.documents.ubl import to_ubl
from autoinvoice.domain.endpoint import ElectronicAddress, from_vat_id, parse_peppol_id
from autoinvoice.validation import InputError
from tests.unit.einvoice_cases import (
    CASES,
    NS,
    fatal_all,
    needs_all_rules,
    numbered,
    peppol_ready,
    reverse_charge_ae,
    us_cases,
)


@pytest.mark.parametrize(("text", "scheme", "identifier"), [
    ("0088:4012345000009", "0088", "4012345000009"),
    ("9930:DE287654324", "9930", "DE287654324"),
    ("0204:991-01234-56", "0204", "991-01234-56"),
    ("iso6523-actorid-upis::0088:4012345000009", "0088", "4012345000009"),
    (" 9957:FR44732829320 ", "9957", "FR44732829320"),
])
def test_a_peppol_id_is_scheme_and_identifier(text: str, scheme: str, identifier: str) -> None:
    assert parse_peppol_id(text) == ElectronicAddress(scheme, identifier)


@pytest.mark.parametrize(("text", "problem"), [
    ("EM:rechnung@example.de", "scheme 'EM' is not in the Peppol EAS code list (e-mail"),
    ("1234:ABC", "scheme '1234' is not in the Peppol EAS code list"),
    ("4012345000009", "is not '<scheme>:<identifier>'"),
    ("0088:", "is not '<scheme>:<identifier>'"),
    ("0088:4012345000008", "GS1 check digit"),
    ("0088:40123", "13 digits"),
    ("9930:FR44732829320", "a DE VAT id (scheme 9930) starts with DE"),
    ("0204:991 01234 56", "must not contain spaces"),
])
def test_a_bad_peppol_id_names_its_problem(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)) as caught:
        parse_peppol_id(text)
    assert repr(text) in str(caught.value)


def _config_with(line: str, section: str, text: str | None = None) -> str:
    """The demo configuration with ``line`` added under the table ``section``."""
    return re.sub(rf"^({re.escape(section)}[^\n]*\n)", rf"\g<1>{line}\n",
                  text or default_config_text(), count=1, flags=re.MULTILINE)


@pytest.mark.parametrize(("section", "key"), [
    ("[tenants.kompressor-service-de]", "tenants.kompressor-service-de.peppol_id"),
    ("[tenants.northwind.customers.CUST-0412]", "tenants.northwind.customers.CUST-0412.peppol_id"),
])
def test_a_bad_peppol_id_refuses_the_start_naming_the_key_and_the_value(
        section: str, key: str) -> None:
    text = _config_with('peppol_id = "EM:billing@example.com"', section)
    with pytest.raises(InputError) as caught:
        parse_config(text, "autoinvoice.toml")
    [problem] = caught.value.problems
    assert problem.startswith(f"{key}: ")
    assert "'EM:billing@example.com'" in problem
    assert "EAS code list" in problem


def test_configured_peppol_ids_reach_the_invoice() -> None:
    # given the demo's US tenant and its customer, each with a GLN as participant id
    rules = billing_rules(parse_config(default_config_text(), "demo").tenants["northwind"])
    assert rules.seller.peppol_id == "0088:4012345000009"
    assert rules.customers["CUST-0088"].peppol_id == "0088:0614141000012"
    # when a job of that customer is billed
    job = CASES["us_sales_tax"]().job
    customer = replace(job.customer, id="CUST-0088")
    invoice = build_invoice(replace(job, customer=customer, po_number="PO-1"), rules,
                            tenant="northwind", revision=1, issue_date=job.completed_at.date()
                            ).invoice
    # then both addresses are on it, in the UBL and the CII alike
    assert invoice.buyer_peppol_id == "0088:0614141000012"
    ubl = etree.fromstring(to_ubl(numbered(invoice)))
    assert ubl.xpath("cac:AccountingSupplierParty/cac:Party/cbc:EndpointID/@schemeID",
                     namespaces=NS) == ["0088"]
    assert ubl.xpath("string(cac:AccountingCustomerParty/cac:Party/cbc:EndpointID)",
                     namespaces=NS) == "0614141000012"
    cii = etree.fromstring(to_cii(numbered(invoice)))
    assert [(u.text, u.get("schemeID")) for u in cii.xpath(
        "//ram:URIUniversalCommunication/ram:URIID", namespaces=NS)] == [
        ("4012345000009", "0088"), ("0614141000012", "0088")]


@pytest.mark.parametrize(("vat_id", "expected"), [
    ("DE287654324", "9930:DE287654324"), ("FR44732829320", "9957:FR44732829320"),
    ("ATU12345678", "9914:ATU12345678"), ("GB980780684", "9932:GB980780684"),
    ("EL094259216", "9933:EL094259216"), ("de 287 654 324", "9930:DE287654324"),
    ("CHE-116.281.710 MWST", "9927:CHE116281710MWST"),
    ("73-1234567", None), ("IT12345678901", None), (None, None)])
def test_a_vat_id_gives_the_default_address_where_the_eas_has_its_vat_scheme(
        vat_id: str | None, expected: str | None) -> None:
    address = from_vat_id(vat_id)
    assert (str(address) if address else None) == expected


def test_a_reverse_charge_invoice_addresses_both_parties_by_their_vat_ids() -> None:
    ubl = etree.fromstring(to_ubl(numbered(reverse_charge_ae())))
    assert [(e.get("schemeID"), e.text) for e in ubl.xpath("//cbc:EndpointID", namespaces=NS)] \
        == [("9930", "DE287654324"), ("9957", "FR44732829320")]


@pytest.mark.parametrize("case", CASES)
def test_no_document_ever_carries_an_email_address_scheme(case: str) -> None:
    invoice = numbered(CASES[case]())
    for xml in (to_ubl(invoice), to_cii(invoice)):
        assert b'schemeID="EM"' not in xml


@needs_all_rules
def test_a_peppol_ubl_without_electronic_addresses_names_the_peppol_rules() -> None:
    # given a US seller and buyer with no participant id configured (no VAT id gives one)
    invoice = numbered(us_cases()["us_sales_tax"]())
    assert en16931.seller_endpoint(invoice) is None
    # then the Peppol rules hold it, naming BT-34 and BT-49
    rules = {rule for rule, *_ in fatal_all(to_ubl(invoice), "ubl")}
    assert {"PEPPOL-EN16931-R010", "PEPPOL-EN16931-R020"} <= rules
    # and configured, it passes
    assert fatal_all(to_ubl(peppol_ready(invoice)), "ubl") == []


def test_a_seller_without_electronic_address_for_peppol_customers_refuses_the_start() -> None:
    # given the US tenant (an EIN gives no address) without its participant id, and a
    # customer who receives Peppol UBL
    text = default_config_text().replace('peppol_id = "0088:4012345000009"', "", 1)
    text = _config_with('einvoice_format = "ubl"', "[tenants.northwind.customers.CUST-0412]",
                        text)
    # then the start is refused, naming the key, the customer and what would do
    with pytest.raises(InputError) as caught:
        parse_config(text, "autoinvoice.toml")
    [problem] = caught.value.problems
    assert problem.startswith("tenants.northwind: peppol_id: customers CUST-0412 receive")
    assert "tax_id '73-1234567' gives none" in problem
    # and a VAT id that gives one (the German tenant's) needs no participant id
    german = _config_with('einvoice_format = "ubl"', "[tenants.kompressor-service-de.customers."
                          "K-1042]", default_config_text().replace(
                              'einvoice_format = "xrechnung"\n', "", 1))
    assert parse_config(german, "test").tenants["kompressor-service-de"].peppol_id is None
