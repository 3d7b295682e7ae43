"""The whole path on SQLite against the local Sage stand-in: event to paid, our PDF e-mailed
over the tests' real SMTP server (Sage has no send call), the token refreshed on the way."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from autoinvoice.bootstrap import App, bootstrap
from autoinvoice.config import parse_config
from autoinvoice.connectors.sage import SageConnector
from autoinvoice.pipeline.intake import accept
from autoinvoice.pipeline.worker import Worker
from autoinvoice.sandbox.sage import SageSandbox, mock_transport
from autoinvoice.triggers.events import decode_json, parse_event
from tests.connectors.test_sage import StandInTokens
from tests.helpers import VirtualTimer, completed, dumps, signed
from tests.integration.conftest import FakeClock, tenant_toml


@dataclass
class SageHarness:
    app: App
    clock: FakeClock
    core: SageSandbox
    tokens: StandInTokens
    worker: Worker

    def ingest(self, event: dict[str, Any]) -> Any:
        text = dumps(event)
        return accept(self.app, parse_event(decode_json(text)), text, actor="test")

    def run(self) -> int:
        return self.worker.run_until_idle()

    def show(self, job_id: str) -> dict[str, Any]:
        from autoinvoice.pipeline import views

        with self.app.sessions() as session:
            return views.detail(session, views.find_job(session, job_id, "northwind")[0])


@pytest.fixture
def sage_harness(tmp_path: Path, smtp_sink: Any, monkeypatch: pytest.MonkeyPatch
                 ) -> SageHarness:
    monkeypatch.setenv("TEST_NORTHWIND_API_KEY", "nw-key-123")
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
""" + tenant_toml("northwind", "sage", 'base_url = "https://api.accounting.sage.test"\n')
    clock = FakeClock()
    core = SageSandbox(country="US")  # northwind is a US company (8.5 % sales tax)
    app = bootstrap(parse_config(text, "sage test config"), clock=clock,
                    transports={"northwind": mock_transport(core)}, timer=VirtualTimer())
    tokens = StandInTokens(core)
    # the tenant's OAuth2 connection: a token pair from the stand-in's authorization server,
    # refreshed through its token endpoint (instead of ``autoinvoice connect sage``)
    app._connectors["northwind"] = SageConnector(app.connector_settings("northwind",
                                                                        tokens=tokens))
    return SageHarness(app, clock, core, tokens, Worker(app))


def test_event_to_paid_on_sage_with_our_pdf_emailed(sage_harness, smtp_sink):
    h = sage_harness
    # given
    h.ingest(completed("WO-S1"))
    h.ingest(signed("WO-S1"))
    # when
    h.run()
    # then: created on Sage, marked sent there, our own PDF e-mailed
    shown = h.show("WO-S1")
    assert shown["state"] == "sent"
    assert shown["delivery"]["via"] == "email"
    assert shown["remote"]["total"] == shown["total"]
    remote = h.core.get_invoice(shown["remote_id"])
    assert remote["sent"] is True
    assert remote["reference"] == shown["number"]
    assert remote["notes"].startswith("Job WO-S1 revision 1")
    assert remote["total_amount"] == Decimal(shown["total"])  # a number, as the spec types it
    assert len(smtp_sink.messages) == 1
    recipients, message = smtp_sink.messages[0]
    assert recipients == ["ap@acme-plastics.example"]
    pdfs = [p for p in message.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert len(pdfs) == 1
    assert pdfs[0].get_content() == Path(shown["delivery"]["pdf"]).read_bytes()
    # when: the client pays half, then the rest; the access token expires in between
    total_minor = int(shown["total"].replace(".", ""))
    h.core.record_payment(shown["remote_id"], total_minor // 2)
    h.clock.advance(minutes=61)
    h.run()
    assert h.show("WO-S1")["payment_state"] == "partially_paid"
    h.core.oauth.expire_all()
    h.core.record_payment(shown["remote_id"], total_minor - total_minor // 2)
    h.clock.advance(minutes=61)
    h.run()
    # then
    final = h.show("WO-S1")
    assert final["payment_state"] == "paid"
    assert h.tokens.refreshes == 1


def test_lost_create_response_leaves_one_sage_invoice(sage_harness, smtp_sink):
    h = sage_harness
    h.core.faults.lose_response("/v3.1/sales_invoices")
    h.ingest(completed("WO-S2"))
    h.ingest(signed("WO-S2"))
    h.run()
    assert h.show("WO-S2")["state"] == "sent"
    assert len(h.core.invoices()) == 1
    assert len(smtp_sink.messages) == 1
