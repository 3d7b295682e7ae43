"""The whole path on SQLite against the local QuickBooks stand-in (in-process transport): an
event becomes an invoice on QuickBooks, e-mailed by QuickBooks, and is followed until paid."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from autoinvoice.bootstrap import App, bootstrap
from autoinvoice.config import parse_config
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.connectors.quickbooks import QuickBooksConnector
from autoinvoice.pipeline import views
from autoinvoice.pipeline.intake import accept
from autoinvoice.pipeline.worker import Worker
from autoinvoice.sandbox.quickbooks import QuickBooksSandbox, mock_transport
from autoinvoice.triggers.events import decode_json, parse_event
from tests.connectors.test_quickbooks import StandinTokens
from tests.helpers import VirtualTimer, completed, dumps, signed
from tests.integration.conftest import FakeClock, tenant_toml


@dataclass
class QbHarness:
    app: App
    clock: FakeClock
    core: QuickBooksSandbox
    tokens: StandinTokens
    sleeps: list[float]

    def ingest(self, event: dict[str, Any]) -> None:
        text = dumps(event)
        accept(self.app, parse_event(decode_json(text)), text, actor="test")

    def run(self) -> int:
        return Worker(self.app).run_until_idle()

    def show(self, job_id: str) -> dict[str, Any]:
        with self.app.sessions() as session:
            return views.detail(session, views.find_job(session, job_id, "northwind")[0])


def config_text(tmp_path: Path) -> str:
    tenant = tenant_toml("northwind", "quickbooks",
                         'base_url = "https://quickbooks.test"\n')
    # QuickBooks rounds tax once per document (connectors.registry.TAX_ROUNDING)
    tenant = tenant.replace('rate = "0.085"', 'rate = "0.085"\nrounding = "document"')
    return f"""
documents_dir = "{tmp_path / 'docs'}"
[database]
url = "sqlite:///{tmp_path / 'test.db'}"
[smtp]
host = "127.0.0.1"
port = 1
[worker]
max_attempts = 4
backoff_base_seconds = "2"
payment_poll_minutes = "60"
""" + tenant


@pytest.fixture
def qb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> QbHarness:
    monkeypatch.setenv("TEST_NORTHWIND_API_KEY", "nw-key-123")
    clear_limiters()
    clock = FakeClock()
    core = QuickBooksSandbox(clock=lambda: clock().timestamp())
    tokens = StandinTokens(core)
    sleeps = VirtualTimer()
    app = bootstrap(parse_config(config_text(tmp_path), "test config"), clock=clock,
                    transports={"northwind": mock_transport(core)}, timer=sleeps)
    # the tenant's OAuth2 connection: a token source that refreshes against the stand-in
    app._connectors["northwind"] = QuickBooksConnector(  # noqa: SLF001
        app.connector_settings("northwind", tokens=tokens))
    return QbHarness(app, clock, core, tokens, sleeps)


def test_event_to_paid_on_quickbooks(qb: QbHarness) -> None:
    # given
    qb.ingest(completed("WO-Q1"))
    qb.ingest(signed("WO-Q1"))
    # when
    qb.run()
    # then: created with QuickBooks' own total equal to ours, and e-mailed by QuickBooks
    shown = qb.show("WO-Q1")
    assert shown["state"] == "sent"
    assert shown["delivery"]["via"] == "platform"
    assert shown["remote"]["total"] == shown["total"]
    remote = qb.core.get_invoice(shown["remote_id"])
    assert remote["DocNumber"] == shown["number"]
    assert "job WO-Q1" in remote["PrivateNote"]
    assert qb.core.emails_sent(shown["remote_id"]) == 1
    # when: the client pays in full, the access token has long expired, the sweep comes round
    total_minor = int(remote["TotalAmt"] * 100)
    qb.core.record_payment(shown["remote_id"], total_minor)
    qb.clock.advance(minutes=61)
    qb.run()
    # then
    shown = qb.show("WO-Q1")
    assert shown["payment_state"] == "paid"
    assert qb.tokens.refreshes >= 1


def test_lost_create_response_ends_in_one_quickbooks_invoice(qb: QbHarness) -> None:
    qb.core.faults.lose_response(f"/v3/company/{qb.core.realm_id}/invoice", times=1)
    qb.ingest(completed("WO-Q2"))
    qb.ingest(signed("WO-Q2"))
    qb.run()
    assert qb.show("WO-Q2")["state"] == "sent"
    assert qb.core.count("Invoice") == 1


def test_an_ast_company_keeps_our_tax_from_event_to_paid(qb: QbHarness) -> None:
    # given: the stand-in company is on automated sales tax, whose own Tulsa rate is 8.517 %
    assert qb.core.company.ast is not None
    qb.ingest(completed("WO-Q3"))
    qb.ingest(signed("WO-Q3"))
    # when
    qb.run()
    # then: QuickBooks kept our 8.5 % tax, so its total is ours and the invoice went out
    shown = qb.show("WO-Q3")
    assert shown["state"] == "sent"
    remote = qb.core.get_invoice(shown["remote_id"])
    assert f"{remote['TotalAmt']:.2f}" == shown["total"]
    assert f"{remote['TxnTaxDetail']['TotalTax']:.2f}" == shown["tax"]


def test_an_ast_company_that_refuses_our_tax_amount_holds_the_invoice_unsent(
        qb: QbHarness) -> None:
    # given: the company does not let apps override AST's amount
    qb.core.company.ast.allow_partner_tax_override = False
    qb.ingest(completed("WO-Q4"))
    qb.ingest(signed("WO-Q4"))
    # when
    qb.run()
    # then: created with AST's tax, held as a total mismatch, never e-mailed
    shown = qb.show("WO-Q4")
    assert shown["state"] == "on_hold"
    assert shown["hold"]["code"] == "total_mismatch"
    assert qb.core.emails_sent(shown["remote_id"]) == 0
