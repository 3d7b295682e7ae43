"""Cross-border VAT outcomes through the whole pipeline on Xero (issue 10): event → invoice on
the organisation's own tax type → authorised and e-mailed by Xero, totals equal ours.

- a German company (Xero's Global edition: its accountant's own rates) bills an Austrian
  business with a valid VAT id: reverse charge (AE) on the rate the tenant mapped in
  ``platform.tax_types``; unmapped, the invoice is refused before anything is written;
- a UK company (Xero's UK rates) bills the same Austrian business: outside the scope of UK VAT
  (O) on "No VAT", and a UK customer at 20 % on OUTPUT2;
- the mapping is checked against the organisation at start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from autoinvoice.bootstrap import bootstrap
from autoinvoice.config import parse_config
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.connectors.registry import build_connector
from autoinvoice.pipeline.worker import Worker
from autoinvoice.sandbox.xero import Limits, XeroSandbox, mock_transport
from autoinvoice.validation import InputError
from tests.connectors.test_xero import RefreshingTokens
from tests.helpers import VirtualTimer
from tests.integration.conftest import FakeClock, Harness
from tests.integration.test_reverse_charge_pipeline import AUSTRIAN, bill, config_source

XERO_PLATFORM = '''[tenants.ksf.platform]
name = "xero"
base_url = "https://api.xero.com"
'''
UK_SELLER = {
    'legal_name = "Kompressor-Service Franken GmbH"': 'legal_name = "Midlands Compressed Air Ltd"',
    'tax_id = "DE287654324"': 'tax_id = "GB434031494"',
    'address = { line1 = "Industriestraße 4", city = "Nürnberg", postal_code = "90431", '
    'country = "DE" }': 'address = { line1 = "2 Mill Lane", city = "Derby", '
                        'postal_code = "DE1 1AA", country = "GB" }',
    'currency = "EUR"': 'currency = "GBP"',
    'timezone = "Europe/Berlin"': 'timezone = "Europe/London"',
    'rate = "0.19"': 'rate = "0.20"',
}
DERBY = {"line1": "5 Friar Gate", "city": "Derby", "postal_code": "DE1 1BX", "country": "GB"}
BRITISH = {"id": "K-GB", "name": "Derby Plastics Ltd", "email": "ap@derbyplastics.example",
           "billing_address": DERBY}


def xero_text(tmp_path: Path, smtp_port: int, country: str, mapping: str) -> str:
    text = config_source(tmp_path, smtp_port).replace(
        '[tenants.ksf.platform]\nname = "sandbox"\n', XERO_PLATFORM + mapping + "\n")
    text = text.replace("\\\ncountry", "country")
    if country == "GB":
        for old, new in UK_SELLER.items():
            assert old in text, old
            text = text.replace(old, new)
    return text


def xero_harness(tmp_path: Path, smtp_port: int, country: str, mapping: str = ""
                 ) -> tuple[Harness, XeroSandbox]:
    clear_limiters()
    clock = FakeClock()
    core = XeroSandbox(country=country, clock=lambda: clock().timestamp(),
                       limits=Limits(per_minute=None, per_day=None))
    config = parse_config(xero_text(tmp_path, smtp_port, country, mapping), "test config")
    app = bootstrap(config, clock=clock, transports={"ksf": mock_transport(core)},
                    timer=VirtualTimer())
    app._connectors["ksf"] = build_connector(  # noqa: SLF001
        "xero", app.connector_settings("ksf", tokens=RefreshingTokens(core)))
    return Harness(app, clock, None, None, Worker(app), []), core  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TEST_KSF_API_KEY", "ksf-key")
    yield
    clear_limiters()


def xero_lines(core: XeroSandbox, remote_id: str) -> list[tuple[str, Any]]:
    items = core.get_invoice(remote_id)["LineItems"]
    return [(item["TaxType"], item["TaxAmount"]) for item in items if "TaxType" in item]


def test_de_to_at_reverse_charge_is_sent_on_the_rate_the_tenant_mapped(
        tmp_path, smtp_sink) -> None:
    # given a German company on Xero whose accountant set up "Reverse Charge EU" (TAX004)
    harness, core = xero_harness(tmp_path, smtp_sink.port, "DE",
                                 'tax_types = { AE = "TAX004" }')
    # when it bills an Austrian business with a valid VAT id
    shown = bill(harness, "WO-XAT1", AUSTRIAN)
    # then it is sent by Xero (and its e-invoice by e-mail), every line on TAX004, no VAT,
    # Xero's total equal to ours
    assert (shown["state"], shown["delivery"]["via"]) == ("sent", "platform+email"), shown
    assert shown["remote"]["total"] == shown["total"] == "894.20"
    lines = xero_lines(core, shown["remote_id"])
    assert lines
    assert {tax_type for tax_type, _ in lines} == {"TAX004"}
    assert all(tax == 0 for _, tax in lines)
    assert core.get_invoice(shown["remote_id"])["Status"] == "AUTHORISED"


def test_de_to_at_without_a_mapping_is_refused_naming_ae_and_creates_no_invoice(
        tmp_path, smtp_sink) -> None:
    # given the same German company, no mapping: Xero's Global edition has no EC services type
    harness, core = xero_harness(tmp_path, smtp_sink.port, "DE")
    # when
    shown = bill(harness, "WO-XAT2", AUSTRIAN)
    # then: not sent, the reason names the outcome; nothing on Xero but the contact
    assert shown["state"] == "failed", shown
    assert "this Xero organisation has no tax type for AE (its tax types: " in \
        shown["last_error"]
    assert "TAX004 (Reverse Charge EU (§ 13b UStG))" in shown["last_error"]
    assert core.find_invoices('Reference.Contains("WO-XAT2")') == []


def test_uk_to_at_is_outside_the_scope_on_no_vat_and_uk_to_uk_on_output2(
        tmp_path, smtp_sink) -> None:
    # given a UK company on Xero's UK edition
    harness, core = xero_harness(tmp_path, smtp_sink.port, "GB")
    # when it bills an Austrian business and a UK business
    abroad = bill(harness, "WO-XUK1", AUSTRIAN)
    home = bill(harness, "WO-XUK2", BRITISH)
    # then both are sent; the Austrian one on "No VAT", the UK one at 20 % on OUTPUT2
    assert (abroad["state"], home["state"]) == ("sent", "sent"), (abroad, home)
    assert {t for t, _ in xero_lines(core, abroad["remote_id"])} == {"NONE"}
    assert {t for t, _ in xero_lines(core, home["remote_id"])} == {"OUTPUT2"}
    assert abroad["remote"]["total"] == abroad["total"]
    assert home["remote"]["total"] == home["total"]
    assert not any(path.endswith("/TaxRates") and method == "PUT"
                   for method, path in core.requests)


def test_start_refuses_a_mapped_tax_type_the_organisation_lacks(tmp_path, smtp_sink) -> None:
    from autoinvoice.ledger_setup import check_ledger_setup

    harness, _ = xero_harness(tmp_path, smtp_sink.port, "GB",
                              'tax_types = { AE = "ECZROUTPUTSERVICES", O = "NOVAT" }')
    with pytest.raises(InputError) as caught:
        check_ledger_setup(harness.app)
    [problem] = caught.value.problems
    assert problem.startswith("tenants.ksf: platform.tax_types.\"O\" = 'NOVAT': this Xero "
                              "organisation has no such tax type for sales (its tax types: "
                              "OUTPUT2 (20% (VAT on Income)), ")


def test_a_tax_types_key_that_is_no_outcome_is_refused_naming_it(tmp_path) -> None:
    text = xero_text(tmp_path, 1, "GB", 'tax_types = { "AE:x" = "ECZROUTPUTSERVICES", '
                                        'O = " " }')
    with pytest.raises(InputError) as caught:
        parse_config(text, "test config")
    said = str(caught.value)
    assert "tax_types" in said
    assert "'AE:x' is not a tax outcome" in said
    assert "'O' maps to an empty code" in said


def test_tax_types_on_another_platform_is_refused_naming_the_key(tmp_path) -> None:
    text = xero_text(tmp_path, 1, "GB", 'tax_types = { AE = "ECZROUTPUTSERVICES" }').replace(
        'name = "xero"', 'name = "sage"')
    with pytest.raises(InputError, match="platform.tax_types: Xero's tax types, not used by "
                                         "platform 'sage'"):
        parse_config(text, "test config")
