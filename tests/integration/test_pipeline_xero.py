"""The whole path on SQLite against the local Xero stand-in (in-process transport): event,
invoice created as a DRAFT, authorised and e-mailed by Xero, paid, seen paid by the poll."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from autoinvoice.bootstrap import App, bootstrap
from autoinvoice.config import parse_config
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.connectors.registry import build_connector
from autoinvoice.pipeline import views
from autoinvoice.pipeline.intake import accept
from autoinvoice.pipeline.worker import Worker
from autoinvoice.sandbox.xero import Limits, XeroSandbox, mock_transport
from autoinvoice.triggers.events import decode_json, parse_event
from tests.connectors.test_xero import RefreshingTokens
from tests.helpers import VirtualTimer, completed, dumps, signed
from tests.integration.conftest import FakeClock, tenant_toml


@dataclass
class XeroHarness:
    app: App
    clock: FakeClock
    xero: XeroSandbox
    tokens: RefreshingTokens
    sleeps: list[float]

    def ingest(self, event: dict[str, Any]) -> Any:
        text = dumps(event)
        return accept(self.app, parse_event(decode_json(text)), text, actor="test")

    def run(self) -> int:
        return Worker(self.app).run_until_idle()

    def show(self, job_id: str) -> dict[str, Any]:
        with self.app.sessions() as session:
            return views.detail(session, views.find_job(session, job_id, "northwind")[0])


@pytest.fixture
def xero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> XeroHarness:
    monkeypatch.setenv("TEST_NORTHWIND_API_KEY", "nw-key-123")
    clear_limiters()
    clock = FakeClock()
    core = XeroSandbox(clock=lambda: clock().timestamp(),
                       limits=Limits(per_minute=60, per_day=5000))
    text = f"""
documents_dir = "{tmp_path / 'docs'}"
[database]
url = "sqlite:///{tmp_path / 'test.db'}"
[worker]
max_attempts = 4
backoff_base_seconds = "2"
payment_poll_minutes = "60"
""" + tenant_toml("northwind", "xero", 'base_url = "https://api.xero.com"')
    sleeps = VirtualTimer()
    app = bootstrap(parse_config(text, "test config"), clock=clock,
                    transports={"northwind": mock_transport(core)}, timer=sleeps)
    tokens = RefreshingTokens(core)
    # The connection's tokens come from a test TokenSource that refreshes at the stand-in.
    app._connectors["northwind"] = build_connector(  # noqa: SLF001
        "xero", app.connector_settings("northwind", tokens=tokens))
    yield XeroHarness(app, clock, core, tokens, sleeps)
    clear_limiters()


def test_a_signed_job_goes_from_event_to_paid_on_xero(xero):
    # given
    xero.ingest(completed("WO-X1"))
    xero.ingest(signed("WO-X1"))
    # when
    xero.run()
    # then: created, authorised and e-mailed by Xero, totals equal
    shown = xero.show("WO-X1")
    assert (shown["state"], shown["delivery"]["via"]) == ("sent", "platform")
    assert shown["remote"]["total"] == shown["total"] == "2519.50"
    remote = xero.xero.get_invoice(shown["remote_id"])
    assert (remote["Status"], remote["InvoiceNumber"]) == ("AUTHORISED", shown["number"])
    assert remote["Reference"].startswith(f"{shown['number']} / job WO-X1")
    assert xero.xero.emails_sent(shown["remote_id"]) == 1
    # when the client pays in two parts and the hourly poll comes round (tokens expire meanwhile)
    xero.xero.record_payment(shown["remote_id"], 100000)
    xero.clock.advance(minutes=61)
    xero.run()
    assert xero.show("WO-X1")["payment_state"] == "partially_paid"
    xero.xero.record_payment(shown["remote_id"], 151950)
    xero.clock.advance(minutes=61)
    xero.run()
    # then
    paid = xero.show("WO-X1")
    assert (paid["payment_state"], paid["payment"]["balance"]) == ("paid", "0.00")
    assert xero.tokens.refreshes >= 1


def test_a_lost_create_response_still_leaves_one_invoice_on_xero(xero):
    xero.xero.faults.lose_response("/api.xro/2.0/Invoices", method="PUT")
    xero.ingest(completed("WO-X2"))
    xero.ingest(signed("WO-X2"))
    xero.run()
    assert xero.show("WO-X2")["state"] == "sent"
    assert len(xero.xero.find_invoices('Reference.Contains("WO-X2")')) == 1


def test_a_long_rate_limit_is_handed_to_the_pipeline_schedule(xero):
    xero.xero.faults.inject("/api.xro/2.0/Invoices", status=429, retry_after=600, method="PUT")
    xero.ingest(completed("WO-X3"))
    xero.ingest(signed("WO-X3"))
    xero.run()
    shown = xero.show("WO-X3")
    assert shown["state"] == "ready"
    assert 600.0 not in xero.sleeps  # no worker blocked for ten minutes (others: the bucket)
    xero.clock.advance(seconds=600)
    xero.run()
    assert xero.show("WO-X3")["state"] == "sent"
    assert len(xero.xero.find_invoices('Reference.Contains("WO-X3")')) == 1
