"""Zoho Books' VAT editions: each tax outcome lands on the organisation's own tax with the
treatment its edition documents (UK ``vat_treatment``, EU ``tax_treatment``), the tenant's
``platform.tax_rates`` / ``platform.tax_treatments`` first, checked against the organisation;
the stand-in refuses a treatment that does not fit."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from autoinvoice.connectors.base import ConnectorSettings, StaticTokens
from autoinvoice.connectors.errors import PermanentError
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.connectors.registry import build_connector
from autoinvoice.connectors.zoho_books import ZohoBooksConnector
from autoinvoice.domain.invoice import Invoice, InvoiceLine, TaxCategory
from autoinvoice.domain.job import Address, Customer
from autoinvoice.sandbox.zoho_books import ZohoBooksSandbox, ZohoError, mock_transport
from tests.connectors.test_stripe import make_invoice, make_line
from tests.connectors.test_zoho_books import create
from tests.helpers import VirtualTimer

PARIS = Address(line1="12 rue de la Paix", city="Paris", postal_code="75002", country="FR")
FRENCH = Customer(id="C-FR", name="Air Comprimé SARL", email="compta@acs.example",
                  billing_address=PARIS, vat_id="FR40303265045")


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    clear_limiters()
    yield
    clear_limiters()


def connector(core: ZohoBooksSandbox, recorded: list[Any] | None = None, **options: Any
              ) -> ZohoBooksConnector:
    settings = ConnectorSettings(
        tenant="t1", currency=core.books.currency, transport=mock_transport(core),
        recorder=None if recorded is None else recorded.append,
        tokens=StaticTokens(core.oauth.issue()["access_token"],
                            {"organization_id": core.organization_id}),
        timer=VirtualTimer(), rate_limit_per_second=1000, options=options)
    built = build_connector("zoho_books", settings)
    assert isinstance(built, ZohoBooksConnector)
    return built


def line(category: TaxCategory, rate: str = "0", description: str = "Compressor service",
         currency: str = "EUR") -> InvoiceLine:
    return dataclasses.replace(make_line(description, "2", "100.00", rate, currency=currency),
                               tax_category=category)


def invoice(*lines: InvoiceLine, customer: Customer = FRENCH, currency: str = "EUR"
            ) -> Invoice:
    made = make_invoice(*lines, currency=currency)
    return dataclasses.replace(made, customer=customer,
                               job=dataclasses.replace(made.job, customer=customer))


def tax_name(core: ZohoBooksSandbox, tax_id: str) -> str:
    return str(core.books.taxes[tax_id]["tax_name"]) if tax_id else ""


def test_uk_organisation_invoices_a_reverse_charged_eu_business_as_overseas_at_zero_rate():
    core = ZohoBooksSandbox(country="GB")
    remote = create(connector(core), invoice(line(TaxCategory.REVERSE_CHARGE),
                                             currency="GBP"))
    stored = core.get_invoice(remote.id)
    assert (stored["currency_code"], stored["vat_treatment"]) == ("GBP", "overseas")
    assert stored["vat_reg_no"] == "FR40303265045"
    assert [tax_name(core, li["tax_id"]) for li in stored["line_items"]] == ["Zero Rate"]
    assert core.books.contacts[stored["customer_id"]]["vat_treatment"] == "overseas"


def test_eu_organisation_puts_each_zero_outcome_on_its_fitting_tax():
    # given a German organisation that keeps an exempt tax beside its default rates
    core = ZohoBooksSandbox(country="DE")
    core.books.create_tax({"tax_name": "Exempt", "tax_percentage": Decimal(0)})
    home = Customer(id="C-DE", name="Brauerei Feldmann KG", email="bh@feldmann.example",
                    billing_address=Address(line1="Brauhausgasse 2", city="Bamberg",
                                            postal_code="96047", country="DE"))
    # when one invoice has a standard, a zero-rated and an exempt line
    remote = create(connector(core), invoice(
        line(TaxCategory.STANDARD, "0.19", "Service"), line(TaxCategory.ZERO, "0", "Zero"),
        line(TaxCategory.EXEMPT, "0", "Exempt"), customer=home))
    # then each is on the organisation's own tax, home-country treatment
    stored = core.get_invoice(remote.id)
    assert stored["tax_treatment"] == "home_country"
    assert [tax_name(core, li["tax_id"]) for li in stored["line_items"]] == [
        "Standard Rate", "Zero Rate", "Exempt"]
    assert core.count("taxes") == 4  # nothing created: the organisation had them all


def test_tenant_mapping_of_outcomes_to_taxes_and_treatments_comes_first():
    core = ZohoBooksSandbox(country="DE")
    rc = core.books.create_tax({"tax_name": "Reverse Charge §13b", "tax_percentage": 0})
    conn = connector(core, tax_rates={"AE": "Reverse Charge §13b"},
                     tax_treatments={"AE": "eu_vat_registered"})
    remote = create(conn, invoice(line(TaxCategory.REVERSE_CHARGE)))
    stored = core.get_invoice(remote.id)
    assert [li["tax_id"] for li in stored["line_items"]] == [rc["tax_id"]]
    assert stored["tax_treatment"] == "eu_vat_registered"
    assert conn.check_setup() == []


def test_check_setup_names_a_missing_tax_and_a_treatment_the_edition_lacks():
    core = ZohoBooksSandbox(country="DE")
    conn = connector(core, tax_rates={"S:19": "Standard Rate", "AE": "RC-EU"},
                     tax_treatments={"O": "overseas"})
    problems = conn.check_setup()
    assert len(problems) == 2
    assert problems[0].startswith('platform.tax_rates."AE" = \'RC-EU\': this Zoho Books '
                                  "organisation has no such tax")
    assert "Standard Rate" in problems[0]  # lists what it has
    assert problems[1].startswith('platform.tax_treatments."O" = \'overseas\': not a '
                                  "treatment of the Zoho Books EU edition")


def test_a_mapped_tax_the_organisation_lacks_is_refused_before_the_invoice_is_created():
    core = ZohoBooksSandbox(country="DE")
    with pytest.raises(PermanentError) as refused:
        create(connector(core, tax_rates={"AE": "RC-EU"}),
               invoice(line(TaxCategory.REVERSE_CHARGE)))
    assert refused.value.code == "no_tax_rate"
    assert core.count("invoices") == 0


@pytest.mark.parametrize(("body", "why"), [
    ({"tax_treatment": "uk"}, "Invalid value passed for tax_treatment"),
    ({"tax_treatment": "eu_vat_registered"}, "needs the customer's VAT registration"),
    ({"tax_treatment": "eu_vat_registered", "vat_reg_no": "ATU13585627", "taxed": True},
     "Zero Rate"),
])
def test_the_german_stand_in_refuses_a_treatment_that_does_not_fit(body, why):
    core = ZohoBooksSandbox(country="DE")
    books = core.books
    contact = books.create_contact({"contact_name": "Wiener Druckluft GmbH"})
    standard = next(t for t in books.taxes.values() if t["tax_percentage"] == 19)
    item = {"name": "Service", "rate": Decimal(100), "quantity": Decimal(1)}
    if body.pop("taxed", False):
        item["tax_id"] = standard["tax_id"]
    with pytest.raises(ZohoError) as refused:
        books.create_invoice({"customer_id": contact["contact_id"], "line_items": [item],
                              **body}, manual_number=False)
    assert (refused.value.status, refused.value.code) == (400, 2)
    assert why in refused.value.message


def test_a_us_organisation_gets_no_treatment_and_untaxed_lines_stay_without_a_tax():
    core = ZohoBooksSandbox()
    remote = create(connector(core), invoice(line(TaxCategory.ZERO, currency="USD"),
                                             currency="USD"))
    stored = core.get_invoice(remote.id)
    assert "vat_treatment" not in stored
    assert "tax_treatment" not in stored
    assert [li["tax_id"] for li in stored["line_items"]] == [""]


def config_with(platform: str, line: str) -> str:
    from tests.integration.conftest import tenant_toml

    return tenant_toml("northwind", platform, line)


@pytest.mark.parametrize(("platform", "line", "said"), [
    ("zoho_books", 'tax_treatments = { "AE" = "reverse_charge" }',
     "tenants.northwind.platform: platform.tax_treatments: 'AE' = 'reverse_charge' is not a "
     "Zoho Books VAT treatment (one of uk, overseas, eu_vat_registered, home_country, "
     "eu_vat_not_registered, non_eu)"),
    ("zoho_books", 'tax_treatments = { "RC" = "eu_vat_registered" }',
     "tenants.northwind.platform.tax_treatments: 'RC' is not a tax outcome"),
    ("zoho_books", 'tax_rates = { "AE" = " " }',
     "tenants.northwind.platform.tax_rates: 'AE' maps to an empty code"),
    ("sage", 'tax_treatments = { "AE" = "overseas" }',
     "platform.tax_treatments: not used by platform 'sage' (Zoho Books only)"),
])
def test_a_bad_tax_treatments_or_tax_rates_entry_is_refused_at_start_naming_the_key(
        platform, line, said):
    from autoinvoice.config import parse_config
    from autoinvoice.validation import InputError

    with pytest.raises(InputError) as refused:
        parse_config(config_with(platform, line), "test config")
    assert any(said in problem for problem in refused.value.problems), refused.value.problems


def test_tax_treatments_and_tax_rates_reach_the_zoho_connector():
    from autoinvoice.bootstrap import platform_options
    from autoinvoice.config import parse_config

    config = parse_config(config_with("zoho_books", 'tax_rates = { "AE" = "Zero Rate" }\n'
                                      'tax_treatments = { "AE" = "eu_vat_registered" }'), "t")
    assert platform_options(config.tenant("northwind").platform) == {
        "tax_rates": {"AE": "Zero Rate"}, "tax_treatments": {"AE": "eu_vat_registered"}}


def test_a_reverse_charged_invoice_is_credited_with_the_same_treatment_and_zero_rate():
    from autoinvoice.connectors.base import IdempotencyKeys
    from autoinvoice.domain.invoice import DocumentKind
    from tests.connectors.test_zoho_books import keys_for

    core = ZohoBooksSandbox(country="DE")
    conn = connector(core)
    sold = invoice(line(TaxCategory.REVERSE_CHARGE))
    remote = conn.send_invoice(create(conn, sold), keys_for(sold))
    credit = dataclasses.replace(sold, kind=DocumentKind.CREDIT_NOTE, number="CN-2026-0001",
                                 corrects=sold.number)
    note = conn.credit_invoice(remote.id, credit,
                               IdempotencyKeys.derive("t1", sold.job_id, 1, "credit_note"))
    stored = core.books.creditnote(note.id)
    assert (stored["tax_treatment"], stored["vat_reg_no"]) == ("eu_vat_registered",
                                                               "FR40303265045")
    assert [tax_name(core, li["tax_id"]) for li in stored["line_items"]] == ["Zero Rate"]
    assert note.total == sold.total
    assert core.get_invoice(remote.id)["balance"] == 0


def test_the_vat_fields_are_sent_as_the_v3_pages_type_them():
    from tests.connectors.test_zoho_books import LINE_TYPES, body_of

    core, recorded = ZohoBooksSandbox(country="DE"), []
    conn = connector(core, recorded)
    create(conn, invoice(line(TaxCategory.REVERSE_CHARGE)))
    posted = {r.url.split("?")[0].rsplit("/", 1)[-1]: body_of(r) for r in recorded
              if r.method == "POST"}
    for body in (posted["contacts"], posted["invoices"]):
        assert isinstance(body["tax_treatment"], str)  # "string" on /contacts, /invoices
        assert isinstance(body["vat_reg_no"], str)
        assert "vat_treatment" not in body  # the UK edition's field, not Germany's
    for item in posted["invoices"]["line_items"]:
        assert isinstance(item["tax_id"], str)
        for name, kind in LINE_TYPES.items():
            assert isinstance(item[name], kind), name


def test_an_invoice_in_another_currency_than_the_customers_is_refused_before_it_is_created():
    # given a US organisation (USD books) and a tenant billing in EUR
    core = ZohoBooksSandbox()
    # when / then: refused, saying which currencies, nothing created in USD
    with pytest.raises(PermanentError) as refused:
        create(connector(core), invoice(line(TaxCategory.STANDARD, "0.19")))
    assert refused.value.code == "currency_mismatch"
    assert "is in EUR, but this Zoho Books organisation keeps its books in USD" in str(
        refused.value)
    assert core.count("invoices") == 0
