"""The whole path on SQLite against the local MYOB stand-in, event to paid: MYOB has no send
call, so our own PDF goes out over the tests' real SMTP server. The tenant is an Australian
service company (GST 10 %), as MYOB's customers are: the stand-in's file has Australian tax
codes only."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from autoinvoice.bootstrap import bootstrap
from autoinvoice.config import parse_config
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.connectors.registry import build_connector
from autoinvoice.pipeline.worker import Worker
from autoinvoice.sandbox.myob import CLIENT_ID, MyobSandbox, mock_transport
from tests.connectors.test_myob import EndpointTokens
from tests.helpers import VirtualTimer, completed, signed
from tests.integration.conftest import FakeClock, Harness, tenant_toml

AU_CUSTOMER = {"id": "CUST-0088", "name": "Acme Plastics Pty Ltd",
               "email": "ap@acme-plastics.example",
               "billing_address": {"line1": "12 Industrial Ave", "city": "Dandenong",
                                   "region": "VIC", "postal_code": "3175", "country": "AU"}}


def australian(toml: str) -> str:
    """``tenant_toml``'s tenant moved to Melbourne: AUD, an ABN, GST 10 % on everything."""
    for us, au in (('city = "Tulsa", region = "OK", postal_code = "74119", country = "US"',
                    'city = "Melbourne", region = "VIC", postal_code = "3000", country = "AU"'),
                   ('tax_id = "73-1234567"', 'tax_id = "51824753556"'),
                   ('currency = "USD"', 'currency = "AUD"'),
                   ('rate = "0.085"\nlabor_taxable = false',
                    'regime = "vat"\nrate = "0.1"\nlabor_taxable = true')):
        assert us in toml, us
        toml = toml.replace(us, au)
    return toml


def au_completed(job_id: str) -> dict[str, Any]:
    return completed(job_id, customer=AU_CUSTOMER)


@pytest.fixture
def myob(tmp_path: Path, env: None, smtp_sink: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    clear_limiters()
    monkeypatch.setenv("TEST_MYOB_KEY", CLIENT_ID)
    clock = FakeClock()
    core = MyobSandbox(clock=lambda: clock().timestamp())
    text = f"""
documents_dir = "{tmp_path / 'docs'}"
[database]
url = "sqlite:///{tmp_path / 'test.db'}"
[smtp]
host = "127.0.0.1"
port = {smtp_sink.port}
[worker]
max_attempts = 4
backoff_base_seconds = "2"
payment_poll_minutes = "60"
""" + australian(tenant_toml("northwind", "myob",
                             'credentials = { client_id = "env:TEST_MYOB_KEY" }'))
    sleeps = VirtualTimer()
    app = bootstrap(parse_config(text, "test config"), clock=clock,
                    transports={"northwind": mock_transport(core)}, timer=sleeps)
    tokens = EndpointTokens(core)  # refreshes at the stand-in's token endpoint
    settings = replace(app.connector_settings("northwind"), tokens=tokens)
    app._connectors["northwind"] = build_connector("myob", settings)  # noqa: SLF001
    yield Harness(app, clock, None, None, Worker(app), sleeps), core, smtp_sink  # type: ignore[arg-type]
    clear_limiters()


def test_job_goes_from_event_to_paid_on_myob_with_our_pdf_emailed(myob):
    harness, core, smtp_sink = myob
    # given
    harness.ingest(au_completed("WO-M1"))
    harness.ingest(signed("WO-M1"))
    # when
    harness.run()
    # then: created on MYOB with MYOB's total equal to ours, our PDF e-mailed over SMTP
    shown = harness.show("WO-M1")
    assert shown["state"] == "sent"
    assert shown["delivery"]["via"] == "email"
    assert shown["remote"]["total"] == shown["total"]
    remote = core.get_invoice(shown["remote_id"])
    assert remote["Number"] == shown["number"]
    assert "WO-M1" in remote["JournalMemo"]
    codes = {uid: c["Code"] for uid, c in core.file.tax_codes.items()}
    assert {codes[line["TaxCode"]["UID"]] for line in remote["Lines"]} == {"GST"}
    assert len(smtp_sink.messages) == 1
    _, message = smtp_sink.messages[0]
    attachments = [p.get_filename() for p in message.iter_attachments()]
    assert any(name and name.endswith(".pdf") for name in attachments)
    # when: the client pays in full; the sweep comes an hour later (the 20-minute access
    # token has expired meanwhile: refreshed once, then the sweep goes on)
    core.record_payment(shown["remote_id"], int(remote["TotalAmount"] * 100))
    harness.clock.advance(minutes=61)
    harness.run()
    # then
    paid = harness.show("WO-M1")
    assert paid["payment_state"] == "paid"
    assert paid["payment"]["balance"] == "0.00"


def test_lost_create_response_leaves_one_myob_invoice(myob):
    harness, core, _ = myob
    core.faults.lose_response(f"/accountright/{core.company_file_id}/Sale/Invoice/Service")
    harness.ingest(au_completed("WO-M2"))
    harness.ingest(signed("WO-M2"))
    for _ in range(4):
        harness.run()
        harness.clock.advance(minutes=10)
    assert harness.row("WO-M2").doc_state == "sent"
    number = harness.row("WO-M2").number
    assert [s["Number"] for s in core.invoices()].count(number) == 1
