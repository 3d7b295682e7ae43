"""Each tax outcome is booked on the Xero organisation's own tax type for it (issue 10): the
UK organisation of the stand-in has Xero's real UK rates, each with its ``ReportTaxType``, so a
reverse-charged line that lands on "the first 0 % rate" shows up here."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal

import pytest

from autoinvoice.connectors.base import RecordedRequest
from autoinvoice.connectors.errors import PermanentError
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.connectors.xero import XeroConnector
from autoinvoice.domain.invoice import Invoice, InvoiceLine, TaxCategory
from autoinvoice.sandbox.xero import Limits, XeroSandbox
from tests.connectors.test_stripe import keys_for, make_invoice, make_line
from tests.connectors.test_xero import settings_for

NOTE = ("Reverse charge: VAT to be accounted for by the recipient (Article 196 Directive "
        "2006/112/EC)")


def uk_line(description: str, category: TaxCategory, rate: str = "0") -> InvoiceLine:
    line = make_line(description, "2", "150.00", rate, currency="GBP")
    return dataclasses.replace(line, tax_category=category)


def uk_invoice(*lines: InvoiceLine, job_id: str = "WO-UK-1") -> Invoice:
    return make_invoice(*lines, currency="GBP", job_id=job_id)


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    clear_limiters()
    yield
    clear_limiters()


@pytest.fixture
def records() -> list[RecordedRequest]:
    return []


@pytest.fixture
def uk() -> XeroSandbox:
    return XeroSandbox(country="GB", limits=Limits(per_minute=None, per_day=None))


def connector_for(core: XeroSandbox, records: list[RecordedRequest] | None = None,
                  **options: object) -> XeroConnector:
    settings = dataclasses.replace(settings_for(core, records),
                                   currency=core.ledger.base_currency, options=options)
    return XeroConnector(settings)


def booked(core: XeroSandbox, connector: XeroConnector, invoice: Invoice) -> list[str]:
    """The TaxType of each priced line of the invoice as Xero stored it."""
    keys = keys_for(invoice)
    customer = connector.ensure_customer(invoice.customer, keys)
    remote = connector.create_invoice(invoice, customer, keys)
    items = core.get_invoice(remote.id)["LineItems"]
    return [item["TaxType"] for item in items if "TaxType" in item]


def test_a_reverse_charged_line_is_booked_on_the_uk_ec_services_type(uk) -> None:
    # given a UK organisation (Xero's UK rates) and an invoice to an EU business
    line = uk_line("Onsite labour", TaxCategory.REVERSE_CHARGE)
    invoice = dataclasses.replace(uk_invoice(line), notes=(NOTE,))
    # when
    types = booked(uk, connector_for(uk), invoice)
    # then: "Zero Rated EC Services", not whichever 0 % revenue rate Xero lists first
    assert types == ["ECZROUTPUTSERVICES"]


def test_the_uk_stand_in_lists_xeros_uk_rates_with_their_report_tax_types(uk) -> None:
    rates = {r["TaxType"]: (r["EffectiveRate"], r["ReportTaxType"], r["CanApplyToRevenue"])
             for r in uk.ledger.tax_rates.values()}
    assert rates["OUTPUT2"] == (Decimal("20.0000"), "OUTPUT", True)
    assert rates["RROUTPUT"] == (Decimal("5.0000"), "OUTPUT", True)
    assert rates["ECZROUTPUTSERVICES"] == (Decimal("0.0000"), "ECOUTPUTSERVICES", True)
    assert rates["ECZROUTPUT"] == (Decimal("0.0000"), "ECOUTPUT", True)
    assert rates["EXEMPTOUTPUT"][1:] == ("EXEMPTOUTPUT", True)
    assert rates["NONE"][1:] == ("NONE", True)
    assert rates["INPUT2"][2] is False
    assert "OUTPUT" not in rates  # a UK organisation has no US/Global OUTPUT type


@pytest.mark.parametrize(("category", "rate", "expected"), [
    (TaxCategory.STANDARD, "0.2", "OUTPUT2"),
    (TaxCategory.STANDARD, "0.05", "RROUTPUT"),
    (TaxCategory.ZERO, "0", "ZERORATEDOUTPUT"),
    (TaxCategory.EXEMPT, "0", "EXEMPTOUTPUT"),
    (TaxCategory.REVERSE_CHARGE, "0", "ECZROUTPUTSERVICES"),
    (TaxCategory.INTRA_COMMUNITY, "0", "ECZROUTPUT"),
    (TaxCategory.EXPORT, "0", "ZERORATEDOUTPUT"),
    (TaxCategory.NOT_SUBJECT, "0", "NONE"),
])
def test_each_outcome_is_booked_on_the_uk_type_xero_reports_it_under(
        uk, category, rate, expected) -> None:
    invoice = uk_invoice(uk_line("Service", category, rate))
    assert booked(uk, connector_for(uk), invoice) == [expected]


def test_one_invoice_with_several_outcomes_books_each_line_on_its_own_type(uk) -> None:
    invoice = uk_invoice(uk_line("Labour", TaxCategory.STANDARD, "0.2"),
                         uk_line("Exempt training", TaxCategory.EXEMPT),
                         uk_line("Mileage", TaxCategory.NOT_SUBJECT))
    assert booked(uk, connector_for(uk), invoice) == ["OUTPUT2", "EXEMPTOUTPUT", "NONE"]


def test_untaxed_lines_of_a_us_company_stay_on_tax_exempt(records) -> None:
    # given the US demo company (NONE "Tax Exempt", OUTPUT 15 %), a zero-rated labour line
    us = XeroSandbox(limits=Limits(per_minute=None, per_day=None))
    invoice = make_invoice(
        dataclasses.replace(make_line("Labor", "1", "100", "0"), tax_category=TaxCategory.ZERO),
        make_line("Valve", "1", "50", "0.085"))
    # when / then: 0 % on NONE, 8.5 % created as a custom sales tax rate, as US companies do
    assert booked(us, connector_for(us, records), invoice) == ["NONE", "TAX001"]


def test_the_tenants_mapping_wins_over_the_report_types(uk) -> None:
    connector = connector_for(uk, tax_types={"AE": "NONE", "S:20": "OUTPUT2"})
    invoice = uk_invoice(uk_line("Labour", TaxCategory.REVERSE_CHARGE),
                         uk_line("Parts", TaxCategory.STANDARD, "0.2"))
    assert booked(uk, connector, invoice) == ["NONE", "OUTPUT2"]


def test_reverse_charge_on_an_organisation_without_an_ec_type_is_refused_before_anything_is_made(
        records) -> None:
    # given a German company on Xero's Global edition: no ECOUTPUTSERVICES rate
    de = XeroSandbox(country="DE", limits=Limits(per_minute=None, per_day=None))
    connector = connector_for(de, records)
    invoice = dataclasses.replace(
        make_invoice(dataclasses.replace(make_line("Labour", "1", "100", "0", currency="EUR"),
                                         tax_category=TaxCategory.REVERSE_CHARGE),
                     currency="EUR"), notes=(NOTE,))
    keys = keys_for(invoice)
    customer = connector.ensure_customer(invoice.customer, keys)
    # when
    with pytest.raises(PermanentError) as caught:
        connector.create_invoice(invoice, customer, keys)
    # then: the outcome is named, the organisation's types listed, nothing written
    message = caught.value.message
    assert message.startswith("this Xero organisation has no tax type for AE (its tax types: ")
    assert "TAX004 (Reverse Charge EU (§ 13b UStG))" in message
    assert 'platform.tax_types, e.g. tax_types = { "AE" = "<TaxType>" }' in message
    assert caught.value.code == "no_tax_type"
    assert not [r for r in records if r.method == "PUT" and "/Contacts" not in r.url]
    # when the tenant maps it, the same invoice goes through on the accountant's rate
    mapped = connector_for(de, tax_types={"AE": "TAX004"})
    assert booked(de, mapped, invoice) == ["TAX004"]


def test_a_mapped_tax_type_the_organisation_lacks_is_named_with_its_key(uk) -> None:
    connector = connector_for(uk, tax_types={"AE": "ECZROUTPUTSERVICE", "O": "NONE"})
    invoice = uk_invoice(uk_line("Labour", TaxCategory.REVERSE_CHARGE))
    with pytest.raises(PermanentError, match=r'platform.tax_types."AE" = '
                                             r"'ECZROUTPUTSERVICE': this Xero organisation has "
                                             r"no such tax type for sales"):
        booked(uk, connector, invoice)
    # an input-only rate is no sales tax type either
    assert connector_for(uk, tax_types={"S": "INPUT2"}).check_setup() == [
        "platform.tax_types.\"S\" = 'INPUT2': this Xero organisation has no such tax type for "
        "sales (its tax types: OUTPUT2 (20% (VAT on Income)), RROUTPUT (5% (VAT on Income)), "
        "ZERORATEDOUTPUT (Zero Rated Income), EXEMPTOUTPUT (Exempt Income), NONE (No VAT), "
        "ECZROUTPUT (Zero Rated EC Goods Income), ECZROUTPUTSERVICES (Zero Rated EC "
        "Services))"]
    assert connector_for(uk, tax_types={"AE": "ECZROUTPUTSERVICES"}).check_setup() == []


def test_a_uk_organisation_gets_no_invented_vat_rate(uk, records) -> None:
    # given a UK company and a line at a rate the UK does not have (a German 19 %)
    invoice = uk_invoice(uk_line("Labour", TaxCategory.STANDARD, "0.19"))
    with pytest.raises(PermanentError, match="no tax type for S:19 "):
        booked(uk, connector_for(uk, records), invoice)
    assert not [r for r in records if r.method == "PUT" and "/TaxRates" in r.url]
