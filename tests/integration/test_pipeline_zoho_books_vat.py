"""Zoho Books organisations outside the US, event to paid: a German (EUR) and a UK (GBP)
organisation each see their invoices in their own currency (the customer's, by default the
organisation's base currency), with the VAT treatment their edition documents on the invoice
and the contact: home country / ``uk`` at the standard rate, ``eu_vat_registered`` with the
customer's VAT number and the Zero Rate tax for a reverse-charged Austrian business, ``non_eu``
for a Swiss business outside the scope of German VAT."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from autoinvoice.bootstrap import bootstrap
from autoinvoice.config import parse_config
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.connectors.registry import build_connector
from autoinvoice.pipeline.worker import Worker
from autoinvoice.sandbox.zoho_books import ZohoBooksSandbox, mock_transport
from tests.connectors.test_zoho_books import EndpointTokens
from tests.helpers import VirtualTimer, signed
from tests.integration.conftest import FakeClock, Harness
from tests.integration.test_einvoice_delivery import config_text, job
from tests.integration.test_reverse_charge_pipeline import AUSTRIAN, SWISS

LONDON = {"line1": "1 Canal Side", "city": "London", "postal_code": "E14 5AB", "country": "GB"}
BRITISH = {"id": "K-GB", "name": "Thames Air Tools Ltd", "email": "ap@thames-air.example",
           "vat_id": "GB980780684", "billing_address": LONDON}


def german(tmp_path: Path, smtp_port: int) -> str:
    return config_text(tmp_path, smtp_port, "pdf").replace(
        'name = "sandbox"', 'name = "zoho_books"').replace(
        'einvoice_format = "pdf"\n', "")


def british(tmp_path: Path, smtp_port: int) -> str:
    return german(tmp_path, smtp_port).replace(
        'tax_id = "DE287654324"', 'tax_id = "GB220430231"').replace(
        'city = "Nürnberg", postal_code = "90431", country = "DE"',
        'city = "Bristol", postal_code = "BS1 4DJ", country = "GB"').replace(
        'currency = "EUR"', 'currency = "GBP"').replace(
        'timezone = "Europe/Berlin"', 'timezone = "Europe/London"').replace(
        'rate = "0.19"', 'rate = "0.20"')


def harness_for(tmp_path: Path, smtp_port: int, country: str, platform_lines: str = ""
                ) -> tuple[Harness, Any]:
    clear_limiters()
    text = (german if country == "DE" else british)(tmp_path, smtp_port).replace(
        'name = "zoho_books"', 'name = "zoho_books"\n' + platform_lines)
    clock = FakeClock()
    core = ZohoBooksSandbox(country=country, clock=lambda: clock().timestamp())
    app = bootstrap(parse_config(text, "test config"), clock=clock,
                    transports={"ksf": mock_transport(core)}, timer=VirtualTimer())
    tokens = EndpointTokens(core)
    settings = replace(app.connector_settings("ksf"), tokens=tokens)
    app._connectors["ksf"] = build_connector("zoho_books", settings)  # noqa: SLF001
    return Harness(app, clock, None, None, Worker(app), []), core  # type: ignore[arg-type]


@pytest.fixture
def env_ksf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_KSF_API_KEY", "ksf-key")


def bill(harness: Harness, job_id: str, customer: dict[str, Any] | None = None
         ) -> dict[str, Any]:
    event = job(job_id)
    if customer is not None:
        event["job"]["customer"] = customer
    harness.ingest(event)
    harness.ingest(signed(job_id, tenant="ksf"))
    harness.run()
    return harness.show(job_id, tenant="ksf")


def paid(harness: Harness, core: Any, shown: dict[str, Any]) -> dict[str, Any]:
    core.record_payment(shown["remote_id"], int(Decimal(shown["total"]) * 100))
    harness.clock.advance(minutes=61)
    harness.run()
    return harness.show(shown["job_id"] if "job_id" in shown else shown["job"], tenant="ksf")


@pytest.mark.parametrize(("country", "currency", "field", "home", "percent"), [
    ("DE", "EUR", "tax_treatment", "home_country", Decimal(19)),
    ("GB", "GBP", "vat_treatment", "uk", Decimal(20)),
])
def test_a_domestic_job_goes_from_event_to_paid_in_the_organisations_own_currency(
        tmp_path, smtp_sink, env_ksf, country, currency, field, home, percent):
    # given a German or a UK organisation and a customer of its own country
    harness, core = harness_for(tmp_path, smtp_sink.port, country)
    customer = None if country == "DE" else BRITISH
    # when
    shown = bill(harness, "WO-ZV1", customer)
    # then: created in the organisation's currency, totals equal, the home treatment
    assert shown["state"] == "sent", {k: v for k, v in shown.items() if k != "lines"}
    assert shown["currency"] == currency
    assert shown["remote"]["total"] == shown["total"]
    remote = core.get_invoice(shown["remote_id"])
    assert remote["currency_code"] == currency
    assert remote[field] == home
    assert {line["tax_percentage"] for line in remote["line_items"]} == {percent}
    # when the client pays, the payment sweep sees it in the same currency
    core.record_payment(shown["remote_id"], int(remote["total"] * 100))
    harness.clock.advance(minutes=61)
    harness.run()
    after = harness.show("WO-ZV1", tenant="ksf")
    assert (after["payment_state"], after["payment"]["balance"]) == ("paid", "0.00")


def test_a_reverse_charged_austrian_business_is_invoiced_as_eu_vat_registered_at_zero_rate(
        tmp_path, smtp_sink, env_ksf):
    harness, core = harness_for(tmp_path, smtp_sink.port, "DE")
    # when a German organisation bills an Austrian business with a valid VAT id
    shown = bill(harness, "WO-ZV2", AUSTRIAN)
    # then: sent, net; Zoho's invoice says so in its own terms
    assert shown["state"] == "sent", {k: v for k, v in shown.items() if k != "lines"}
    assert shown["remote"]["total"] == shown["total"] == shown["subtotal"]
    remote = core.get_invoice(shown["remote_id"])
    assert remote["tax_treatment"] == "eu_vat_registered"
    assert remote["vat_reg_no"] == "ATU13585627"
    assert {(line["tax_percentage"], core.books.taxes[line["tax_id"]]["tax_name"])
            for line in remote["line_items"]} == {(Decimal(0), "Zero Rate")}
    contact = core.books.contacts[remote["customer_id"]]
    assert (contact["tax_treatment"], contact["vat_reg_no"]) == ("eu_vat_registered",
                                                                 "ATU13585627")
    assert "Article 196" in remote["notes"] or "reverse charge" in remote["notes"].lower()


def test_a_swiss_business_outside_the_scope_is_invoiced_as_non_eu(tmp_path, smtp_sink, env_ksf):
    harness, core = harness_for(tmp_path, smtp_sink.port, "DE")
    shown = bill(harness, "WO-ZV3", SWISS)
    assert shown["state"] == "sent", {k: v for k, v in shown.items() if k != "lines"}
    remote = core.get_invoice(shown["remote_id"])
    assert remote["tax_treatment"] == "non_eu"
    assert remote["tax_total"] == 0
    assert shown["remote"]["total"] == shown["total"]


def test_worker_start_refuses_a_mapping_to_a_tax_the_organisation_lacks(
        tmp_path, smtp_sink, env_ksf):
    from autoinvoice.ledger_setup import check_ledger_setup
    from autoinvoice.validation import InputError

    harness, _ = harness_for(tmp_path, smtp_sink.port, "DE",
                             'tax_rates = { "AE" = "RC-EU", "S:19" = "Standard Rate" }')
    with pytest.raises(InputError) as refused:
        check_ledger_setup(harness.app)
    assert len(refused.value.problems) == 1
    assert refused.value.problems[0].startswith(
        'tenants.ksf: platform.tax_rates."AE" = \'RC-EU\': this Zoho Books organisation has '
        "no such tax (its taxes: Standard Rate")
