"""The whole path on SQLite against the local Zoho Books stand-in, event to paid."""

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
from autoinvoice.sandbox.zoho_books import ZohoBooksSandbox, mock_transport
from tests.connectors.test_zoho_books import EndpointTokens
from tests.helpers import VirtualTimer, completed, signed
from tests.integration.conftest import FakeClock, Harness, tenant_toml


@pytest.fixture
def zoho(tmp_path: Path, env: None, smtp_sink: Any) -> Any:
    clear_limiters()
    clock = FakeClock()
    core = ZohoBooksSandbox(clock=lambda: clock().timestamp())
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
""" + tenant_toml("northwind", "zoho_books")
    sleeps = VirtualTimer()
    app = bootstrap(parse_config(text, "test config"), clock=clock,
                    transports={"northwind": mock_transport(core)}, timer=sleeps)
    tokens = EndpointTokens(core)  # refreshes at the stand-in's token endpoint
    settings = replace(app.connector_settings("northwind"), tokens=tokens)
    app._connectors["northwind"] = build_connector("zoho_books", settings)  # noqa: SLF001
    yield Harness(app, clock, None, None, Worker(app), sleeps), core  # type: ignore[arg-type]
    clear_limiters()


def test_job_goes_from_event_to_paid_on_zoho_books(zoho):
    harness, core = zoho
    # given
    harness.ingest(completed("WO-Z1"))
    harness.ingest(signed("WO-Z1"))
    # when
    harness.run()
    # then: created, delivered by Zoho's e-mail, totals equal
    shown = harness.show("WO-Z1")
    assert shown["state"] == "sent"
    assert shown["delivery"]["via"] == "platform"
    assert shown["remote"]["total"] == shown["total"]
    remote = core.get_invoice(shown["remote_id"])
    assert (remote["status"], remote["invoice_number"]) == ("sent", shown["number"])
    assert "WO-Z1" in remote["reference_number"]
    assert core.emails_sent(shown["remote_id"]) == 1
    # when: the client pays in full and the payment sweep comes round, an hour later (the
    # access token has expired meanwhile: refreshed once, then the sweep goes on)
    core.record_payment(shown["remote_id"], int(remote["total"] * 100))
    harness.clock.advance(minutes=61)
    harness.run()
    # then
    paid = harness.show("WO-Z1")
    assert paid["payment_state"] == "paid"
    assert paid["payment"]["balance"] == "0.00"


def test_lost_create_response_leaves_one_zoho_invoice(zoho):
    harness, core = zoho
    core.faults.lose_response("/books/v3/invoices", method="POST")
    harness.ingest(completed("WO-Z2"))
    harness.ingest(signed("WO-Z2"))
    for _ in range(4):
        harness.run()
        harness.clock.advance(minutes=10)
    assert harness.row("WO-Z2").doc_state == "sent"
    assert len(core.find_invoices(invoice_number=harness.row("WO-Z2").number)) == 1
