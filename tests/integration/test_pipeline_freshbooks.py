"""The whole path on SQLite against the local FreshBooks stand-in (in-process transport): a job
event becomes a FreshBooks invoice, e-mailed by FreshBooks, and is followed until paid."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from autoinvoice.bootstrap import App, bootstrap
from autoinvoice.config import parse_config
from autoinvoice.connectors.freshbooks import FreshBooksConnector
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.pipeline import steps
from autoinvoice.pipeline.intake import accept
from autoinvoice.pipeline.worker import Worker
from autoinvoice.sandbox.freshbooks import FreshBooksSandbox, mock_transport
from autoinvoice.triggers.events import decode_json, parse_event
from tests.connectors.test_freshbooks import CLIENT_ID, CLIENT_SECRET, StandInTokens
from tests.helpers import VirtualTimer, completed, dumps, signed
from tests.integration.conftest import FakeClock, tenant_toml


@dataclass
class FreshBooksHarness:
    app: App
    clock: FakeClock
    core: FreshBooksSandbox
    tokens: StandInTokens
    sleeps: list[float]

    def ingest(self, event: dict[str, Any]) -> Any:
        text = dumps(event)
        return accept(self.app, parse_event(decode_json(text)), text, actor="test")

    def run(self) -> int:
        return Worker(self.app).run_until_idle()

    def row(self, job_id: str) -> Any:
        from autoinvoice.pipeline import views

        with self.app.sessions() as session:
            return views.find_job(session, job_id, "northwind")[0]

    def show(self, job_id: str) -> dict[str, Any]:
        from autoinvoice.pipeline import views

        with self.app.sessions() as session:
            return views.detail(session, views.find_job(session, job_id, "northwind")[0])


@pytest.fixture
def fb(tmp_path: Path, env: None, smtp_sink: Any) -> FreshBooksHarness:
    clear_limiters()
    clock = FakeClock()
    core = FreshBooksSandbox(clock=lambda: clock.now.timestamp(), client_id=CLIENT_ID,
                             client_secret=CLIENT_SECRET)
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
""" + tenant_toml("northwind", "freshbooks", 'base_url = "https://api.freshbooks.com"\n'
                  "rate_limit_per_second = 1000\n")
    sleeps = VirtualTimer()
    app = bootstrap(parse_config(text, "test config"), clock=clock,
                    transports={"northwind": mock_transport(core)}, timer=sleeps)
    tokens = StandInTokens(core)
    # The shared OAuth layer is not wired here: the connector gets a token source directly.
    app._connectors["northwind"] = FreshBooksConnector(  # noqa: SLF001
        app.connector_settings("northwind", tokens=tokens))
    return FreshBooksHarness(app, clock, core, tokens, sleeps)


def test_a_completed_and_signed_job_is_created_emailed_and_followed_until_paid(fb):
    # given
    fb.ingest(completed("WO-1"))
    fb.ingest(signed("WO-1"))
    # when
    fb.run()
    # then: created with our total, delivered by FreshBooks' own e-mail
    shown = fb.show("WO-1")
    assert (shown["state"], shown["number"], shown["total"]) == ("sent", "NW-2026-00001",
                                                                  "2519.50")
    assert shown["remote"]["total"] == "2519.50"
    assert shown["delivery"]["via"] == "platform"
    remote = fb.core.get_invoice(shown["remote_id"])
    assert (remote["v3_status"], remote["amount"]["amount"]) == ("sent", "2519.50")
    assert remote["invoice_number"] == "NW-2026-00001"
    assert remote["notes"].startswith("autoinvoice-ref: job=WO-1 rev=1 number=NW-2026-00001")
    assert fb.core.emails_sent(shown["remote_id"]) == 1
    # the client pays in two parts; the hourly sweep reads FreshBooks' payment status
    fb.core.record_payment(shown["remote_id"], 100000)
    fb.clock.advance(minutes=61)
    fb.run()
    assert fb.row("WO-1").pay_state == "partially_paid"
    fb.core.record_payment(shown["remote_id"], 151950)
    fb.clock.advance(minutes=61)
    fb.run()
    paid = fb.show("WO-1")
    assert (paid["payment_state"], paid["payment"]["amount_paid"],
            paid["payment"]["balance"]) == ("paid", "2519.50", "0.00")


class Crash(BaseException):
    """The process dies (not an Exception: nothing in the worker catches it)."""


def test_a_crash_after_create_leaves_one_freshbooks_invoice(fb, monkeypatch):
    fb.ingest(completed("WO-5"))
    fb.ingest(signed("WO-5"))
    real = steps._record_created

    def crash(*args: Any, **kwargs: Any) -> None:
        raise Crash

    monkeypatch.setattr(steps, "_record_created", crash)
    with pytest.raises(Crash):
        fb.run()
    monkeypatch.setattr(steps, "_record_created", real)
    fb.clock.advance(minutes=6)  # the lease runs out; a new worker repeats the create
    fb.run()
    [invoice] = fb.core.find_invoices(job_id="WO-5")
    assert fb.row("WO-5").doc_state == "sent"
    assert str(invoice["id"]) == fb.row("WO-5").remote_id


def test_a_lost_create_response_ends_in_one_invoice(fb):
    fb.core.faults.lose_response(
        f"/accounting/account/{fb.core.account_id}/invoices/invoices", method="POST")
    fb.ingest(completed("WO-6"))
    fb.ingest(signed("WO-6"))
    for _ in range(3):
        fb.run()
        fb.clock.advance(minutes=5)
    assert fb.row("WO-6").doc_state == "sent"
    assert len(fb.core.find_invoices(job_id="WO-6")) == 1


def test_a_429_is_waited_out_then_the_invoice_goes_out(fb):
    fb.core.faults.inject("/accounting/", status=429, retry_after=30, times=3, method="POST")
    fb.ingest(completed("WO-7"))
    fb.ingest(signed("WO-7"))
    fb.run()
    assert fb.sleeps[:2] == [30.0, 30.0]
    assert fb.row("WO-7").next_attempt_at == fb.clock.now + timedelta(seconds=30)
    fb.clock.advance(seconds=30)
    fb.run()
    assert fb.row("WO-7").doc_state == "sent"


def test_token_expiry_between_jobs_is_refreshed_and_the_batch_continues(fb):
    for n in range(3):
        fb.ingest(completed(f"WO-T{n}"))
        fb.ingest(signed(f"WO-T{n}"))
        if n == 1:
            fb.core.oauth.expire_all()
        fb.run()
    assert [fb.row(f"WO-T{n}").doc_state for n in range(3)] == ["sent"] * 3
    assert fb.tokens.refreshes == 1
