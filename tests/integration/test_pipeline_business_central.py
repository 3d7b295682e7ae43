"""The whole path on SQLite against the local Business Central stand-in (in-process transport),
from the job events to a paid invoice."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from autoinvoice.bootstrap import bootstrap
from autoinvoice.config import parse_config
from autoinvoice.connectors.business_central import BusinessCentralConnector
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.pipeline import steps
from autoinvoice.pipeline.worker import Worker
from autoinvoice.sandbox.business_central import BusinessCentralSandbox, mock_transport
from tests.connectors.test_business_central import EndpointTokens
from tests.helpers import VirtualTimer, completed, signed
from tests.integration.conftest import FakeClock, Harness, tenant_toml

#: the stand-in's US company (CRONUS USA): parts taxed through MATERIALS, labor not taxed in
#: Oklahoma (LABOR), customers in the TULSA, OK tax area
US_TAX_SETUP = """tax_groups = { "S" = "MATERIALS", "Z" = "LABOR", "E" = "NONTAXABLE" }
tax_areas = { "S:8.5" = "TULSA, OK", "S" = "TULSA, OK", "Z" = "TULSA, OK", "E" = "TULSA, OK" }
"""


def bc_config_text(tmp_path: Path, smtp_port: int,
                   base_url: str = "https://api.businesscentral.dynamics.com",
                   extra: str = 'credentials = { environment = "production" }\n') -> str:
    tenant = tenant_toml("northwind", "business_central",
                         f'base_url = "{base_url}"\n' + extra + US_TAX_SETUP)
    # BC rounds tax per document; a tenant rounding per line is refused at start
    tenant = tenant.replace("[tenants.northwind.tax]\n",
                            '[tenants.northwind.tax]\nrounding = "document"\n')
    return f"""
documents_dir = "{tmp_path / 'docs'}"
[database]
url = "sqlite:///{tmp_path / 'test.db'}"
[smtp]
host = "127.0.0.1"
port = {smtp_port}
[worker]
max_attempts = 4
backoff_base_seconds = "2"
payment_poll_minutes = "60"
""" + tenant


def bc_config(tmp_path: Path, smtp_port: int) -> Any:
    return parse_config(bc_config_text(tmp_path, smtp_port), "test config")


@pytest.fixture
def bc(tmp_path: Path, env: None, smtp_sink: Any) -> Any:
    clear_limiters()
    clock = FakeClock()
    core = BusinessCentralSandbox(clock=lambda: clock().timestamp())
    sleeps = VirtualTimer()
    app = bootstrap(bc_config(tmp_path, smtp_sink.port), clock=clock,
                    transports={"northwind": mock_transport(core)}, timer=sleeps)
    tokens = EndpointTokens(core)
    # Until the shared OAuth layer's connection is made in tests: the connector with a token
    # source that refreshes at the stand-in's token endpoint.
    app._connectors["northwind"] = BusinessCentralConnector(  # noqa: SLF001
        app.connector_settings("northwind", tokens=tokens))
    harness = Harness(app, clock, None, None, Worker(app), sleeps)  # type: ignore[arg-type]
    harness.core = core  # type: ignore[attr-defined]
    harness.tokens = tokens  # type: ignore[attr-defined]
    yield harness
    clear_limiters()


def test_job_is_created_posted_sent_and_paid_on_business_central(bc) -> None:
    # given
    bc.ingest(completed("WO-1"))
    bc.ingest(signed("WO-1"))
    # when
    bc.run()
    # then: created, posted and e-mailed by BC, totals equal
    shown = bc.show("WO-1")
    assert shown["state"] == "sent"
    assert shown["delivery"]["via"] == "platform"
    assert shown["remote"]["total"] == shown["total"]
    remote = bc.core.get_invoice(shown["remote_id"])
    assert remote["status"] == "Open"
    assert remote["externalDocumentNumber"] == f"{shown['number']} WO-1"
    assert bc.core.emails_sent(shown["remote_id"]) == 1
    # when the client pays in full and the payment sweep comes round
    bc.core.record_payment(shown["remote_id"], bc.row("WO-1").total_minor)
    bc.clock.advance(minutes=61)
    bc.run()
    # then
    assert bc.row("WO-1").pay_state == "paid"


def test_a_partial_payment_is_seen_as_partially_paid(bc) -> None:
    bc.ingest(completed("WO-2"))
    bc.ingest(signed("WO-2"))
    bc.run()
    bc.core.record_payment(bc.row("WO-2").remote_id, 10000)
    bc.clock.advance(minutes=61)
    bc.run()
    assert bc.row("WO-2").pay_state == "partially_paid"


class Crash(BaseException):
    """The process dies (nothing in the worker catches a BaseException)."""


def test_crash_after_create_then_restart_leaves_one_invoice(bc, monkeypatch) -> None:
    bc.ingest(completed("WO-5"))
    bc.ingest(signed("WO-5"))
    real = steps._record_created

    def crash_instead_of_recording(*args: Any, **kwargs: Any) -> None:
        raise Crash

    monkeypatch.setattr(steps, "_record_created", crash_instead_of_recording)
    with pytest.raises(Crash):
        bc.run()
    monkeypatch.setattr(steps, "_record_created", real)
    bc.clock.advance(minutes=6)
    Worker(bc.app).run_until_idle()
    row = bc.row("WO-5")
    assert row.doc_state == "sent"
    assert [x["id"] for x in bc.core.store.invoices.values()] == [row.remote_id]


def test_lost_create_response_is_retried_into_one_invoice(bc) -> None:
    bc.core.faults.lose_response("/v2.0", method="POST", times=1)  # the customer create
    bc.ingest(completed("WO-6"))
    bc.ingest(signed("WO-6"))
    bc.run()
    bc.clock.advance(minutes=5)
    bc.run()
    assert bc.row("WO-6").doc_state == "sent"
    assert bc.core.count("salesInvoices") == 1
    assert bc.core.count("customers") == 1


def test_token_expiry_between_jobs_is_refreshed_and_the_batch_continues(bc) -> None:
    bc.ingest(completed("WO-7"))
    bc.ingest(signed("WO-7"))
    bc.run()
    bc.core.oauth.expire_all()
    bc.ingest(completed("WO-8"))
    bc.ingest(signed("WO-8"))
    bc.run()
    assert (bc.row("WO-7").doc_state, bc.row("WO-8").doc_state) == ("sent", "sent")
    assert bc.tokens.refreshes == 1


def test_preview_shows_the_exact_business_central_requests(tmp_path, env) -> None:
    from autoinvoice.preview import preview
    from tests.helpers import dumps

    shown = preview(bc_config(tmp_path, 1), dumps(completed("WO-P")), "test")
    requests = shown["requests"]
    assert shown["platform"] == "business_central"
    assert [r["method"] for r in requests if r["method"] == "POST"] == ["POST"] * 3
    create = next(r for r in requests if r["url"].endswith("/salesInvoices")
                  and r["method"] == "POST")
    assert "/api/v2.0/companies(" in create["url"]
    assert '"externalDocumentNumber":' in create["body"]
    assert requests[-2]["url"].endswith("/Microsoft.NAV.postAndSend")
    assert all(r["headers"]["authorization"] == "***" for r in requests)


# -- issue 10: the tax mapping is checked against the company at connect and at start ------


def test_start_refuses_a_tax_group_the_company_lacks_listing_its_real_ones(bc) -> None:
    from autoinvoice.ledger_setup import check_ledger_setup
    from autoinvoice.validation import InputError

    # given: a tenant that still maps to the invented code the connector used to send
    settings = bc.app.connector_settings("northwind", tokens=bc.tokens)
    wrong = {**settings.options, "tax_groups": {"S": "VAT8.5", "Z": "LABOR"}}
    bc.app._connectors["northwind"] = BusinessCentralConnector(  # noqa: SLF001
        dataclasses.replace(settings, options=wrong))
    # when / then
    with pytest.raises(InputError) as caught:
        check_ledger_setup(bc.app)
    [problem] = caught.value.problems
    assert problem == ("tenants.northwind: platform.tax_groups.\"S\" = 'VAT8.5': the company "
                       "has no such tax group (its tax groups: LABOR, MATERIALS, NONTAXABLE)")


def test_start_passes_when_every_mapped_code_exists(bc) -> None:
    from autoinvoice.ledger_setup import check_ledger_setup

    check_ledger_setup(bc.app)  # no exception


def test_config_without_the_tax_mapping_is_refused_naming_both_keys(tmp_path) -> None:
    from autoinvoice.validation import InputError

    config = bc_config(tmp_path, 1)
    tenant = config.tenants["northwind"]
    bare = tenant.platform.model_copy(update={"tax_groups": {}, "tax_areas": {}})
    with pytest.raises(InputError) as caught:
        bootstrap(config.model_copy(update={"tenants": {"northwind": tenant.model_copy(
            update={"platform": bare})}}))
    problems = caught.value.problems
    assert [p.split(":")[0] for p in problems] == [
        "tenants.northwind.platform.tax_groups", "tenants.northwind.platform.tax_areas"]


def test_a_bad_outcome_key_is_refused_naming_it(tmp_path) -> None:
    from autoinvoice.validation import InputError

    text = bc_config_text(tmp_path, 1).replace('"Z" = "LABOR"', '"ZZ" = "LABOR"')
    with pytest.raises(InputError) as caught:
        parse_config(text, "test config")
    assert "tax_groups" in str(caught.value)
    assert "'ZZ' is not a tax outcome" in str(caught.value)


def test_connect_checks_the_mapping_against_the_company(tmp_path, env, monkeypatch) -> None:
    from autoinvoice.connections.connect import connect_headless
    from autoinvoice.connections.crypto import ENV_KEY, new_key
    from autoinvoice.sandbox.business_central import asgi_app
    from autoinvoice.sandbox.server import serve_in_thread
    from autoinvoice.validation import InputError

    monkeypatch.setenv(ENV_KEY, new_key())
    core = BusinessCentralSandbox()
    monkeypatch.setenv("TEST_BC_CLIENT_ID", core.oauth.client_id)
    monkeypatch.setenv("TEST_BC_CLIENT_SECRET", core.oauth.client_secret)
    with serve_in_thread(asgi_app(core)) as server:
        authorize, token = core.oauth_paths
        extra = (f'authorize_url = "{server.base_url}{authorize}"\n'
                 f'token_url = "{server.base_url}{token}"\n'
                 'credentials = { client_id = "env:TEST_BC_CLIENT_ID", '
                 'client_secret = "env:TEST_BC_CLIENT_SECRET" }\n')
        text = bc_config_text(tmp_path, 1, base_url=server.base_url, extra=extra)
        good = bootstrap(parse_config(text, "test config"))
        done = connect_headless(good, "northwind")
        assert done.values == {"tenant_id": core.tenant_id, "environment": "production",
                               "company_id": core.company_id}
        wrong = bootstrap(parse_config(text.replace('"MATERIALS"', '"TAXABLE"'), "test"))
        with pytest.raises(InputError) as caught:
            connect_headless(wrong, "northwind")
    assert "platform.tax_groups.\"S\" = 'TAXABLE'" in str(caught.value)
    assert "LABOR, MATERIALS, NONTAXABLE" in str(caught.value)


# -- issue 10: reverse charge DE -> AT end to end on a German company --------------------------

def _at_vat_id(valid: bool = True) -> str:
    from stdnum.at import uid

    digit = uid.calc_check_digit("U1358562")
    return "ATU1358562" + (digit if valid else str((int(digit) + 1) % 10))


def _german_tenant_on_bc(tmp_path: Path, core: BusinessCentralSandbox) -> Any:
    from autoinvoice.config import PlatformConfig, load_config
    from autoinvoice.domain.invoice import TaxRounding

    base = load_config(None)
    tenant = base.tenants["kompressor-service-de"]
    platform = PlatformConfig(name="business_central",
                              base_url="https://api.businesscentral.dynamics.com",
                              **core.demo_options("DE"))
    tenant = tenant.model_copy(update={
        "platform": platform,
        "tax": tenant.tax.model_copy(update={"rounding": TaxRounding.DOCUMENT})})
    return base.model_copy(update={
        "tenants": {"kompressor-service-de": tenant},
        "database": base.database.model_copy(update={"url": f"sqlite:///{tmp_path}/de.db"}),
        "documents_dir": str(tmp_path / "docs")})


def _austrian_job(job_id: str, vat_id: str) -> dict[str, Any]:
    customer = {"id": "AT-77", "name": "Druckluft Tirol GmbH", "email": "ap@druckluft.example",
                "vat_id": vat_id,
                "billing_address": {"line1": "Museumstraße 5", "city": "Innsbruck",
                                    "postal_code": "6020", "country": "AT"}}
    return completed(job_id, tenant="kompressor-service-de", customer=customer,
                     po_number=None, mileage={"distance": "42", "unit": "km"},
                     parts=[{"sku": "6.4149.0", "description": "Luftfilterelement",
                             "quantity": 2, "unit": "ea"}])


@pytest.mark.parametrize("valid", [True, False], ids=["valid_vat_id", "invalid_vat_id"])
def test_reverse_charge_de_to_at_goes_out_net_or_is_held(tmp_path, valid) -> None:
    from autoinvoice.pipeline.intake import accept
    from autoinvoice.triggers.events import decode_json, parse_event
    from tests.helpers import dumps

    # given: a German seller on its German BC company, an Austrian business buyer
    clear_limiters()
    clock = FakeClock()
    core = BusinessCentralSandbox(country="DE", clock=lambda: clock().timestamp())
    app = bootstrap(_german_tenant_on_bc(tmp_path, core), clock=clock,
                    transports={"kompressor-service-de": mock_transport(core)},
                    timer=VirtualTimer())
    tokens = EndpointTokens(core)
    app._connectors["kompressor-service-de"] = BusinessCentralConnector(  # noqa: SLF001
        app.connector_settings("kompressor-service-de", tokens=tokens))
    for event in (_austrian_job("RC-1", _at_vat_id(valid)),
                  signed("RC-1", tenant="kompressor-service-de")):
        text = dumps(event)
        accept(app, parse_event(decode_json(text)), text, actor="test")
    # when
    Worker(app).run_until_idle()
    # then
    from autoinvoice.pipeline import views

    with app.sessions() as session:
        row = views.find_job(session, "RC-1", "kompressor-service-de")[0]
        shown = views.detail(session, row)
    if not valid:
        assert row.doc_state == "on_hold"
        assert core.count("salesInvoices") == 0
        return
    assert row.doc_state == "sent", shown
    [invoice] = core.find_invoices(f"{shown['number']} RC-1")
    customer = core.customer(invoice["customerId"])
    assert customer["taxAreaDisplayName"] == "Customers and vendors in EU"
    assert invoice["totalTaxAmount"] == 0
    assert invoice["totalAmountIncludingTax"] == invoice["totalAmountExcludingTax"]
    assert str(invoice["totalAmountIncludingTax"]) == shown["total"]
    assert any("Art" in x["description"] or "196" in x["description"]
               for x in invoice["lines"] if x["lineType"] == "Comment")
    clear_limiters()


def test_worker_start_checks_the_ledger_and_goes_on_when_not_yet_connected(
        tmp_path, env, caplog) -> None:
    from autoinvoice.cli import main

    # given: a Business Central tenant that has not run `autoinvoice connect` yet
    path = tmp_path / "autoinvoice.toml"
    path.write_text(bc_config_text(tmp_path, 1), encoding="utf-8")
    # when
    code = main(["worker", "--until-idle", "--config", str(path)])
    # then: the check could not reach the company; it says so and the worker runs
    assert code == 0
    assert "tax setup was not checked" in caplog.text
