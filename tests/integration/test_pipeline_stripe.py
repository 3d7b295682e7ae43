"""The whole path on SQLite against the local Stripe stand-in (in-process transport)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from autoinvoice.connectors.base import RemoteInvoice
from autoinvoice.domain.money import Money
from autoinvoice.pipeline import steps
from tests.helpers import completed, signed


def test_completed_and_signed_job_is_created_sent_and_tracked_on_stripe(harness):
    # given
    harness.ingest(completed("WO-1"))
    harness.ingest(signed("WO-1"))
    # when
    harness.run()
    # then
    shown = harness.show("WO-1")
    assert shown["state"] == "sent"
    assert shown["number"] == "NW-2026-00001"
    assert shown["total"] == "2519.50"
    assert shown["payment_state"] == "unpaid"
    assert shown["delivery"]["via"] == "platform"
    assert shown["remote"]["total"] == "2519.50"
    actions = [h["action"] for h in shown["history"]]
    assert actions[-4:] == [
        "numbered", "created_on_platform", "sent_on_platform", "delivered"]
    calls = {h["action"]: h["detail"] for h in shown["history"] if "exchanges_sha256"
             in h["detail"]}
    assert list(calls) == ["created_on_platform", "sent_on_platform"]  # with the outcome
    assert all(x["request_ids"] and len(x["exchanges_sha256"]) == 64 for x in calls.values())
    remote = harness.stripe.get_invoice(shown["remote_id"])
    assert remote["status"] == "open"
    assert remote["metadata"]["job_id"] == "WO-1"
    assert remote["total"] == 251950
    assert remote["collection_method"] == "send_invoice"


def test_a_job_waits_for_every_required_event_in_any_order(harness):
    harness.ingest(signed("WO-2"))  # the signature arrives first
    harness.run()
    assert harness.row("WO-2").doc_state == "pending_triggers"
    harness.ingest(completed("WO-2"))
    harness.run()
    assert harness.row("WO-2").doc_state == "sent"
    assert harness.row("WO-2").flags == []


def test_unsigned_job_is_invoiced_after_the_signature_wait_and_flagged(harness):
    harness.ingest(completed("WO-3"))
    harness.run()
    assert harness.row("WO-3").doc_state == "pending_triggers"
    harness.clock.advance(hours=23, minutes=59)
    harness.run()
    assert harness.row("WO-3").doc_state == "pending_triggers"
    harness.clock.advance(minutes=1)
    harness.run()
    row = harness.row("WO-3")
    assert (row.doc_state, row.flags) == ("sent", ["unsigned"])


def test_the_same_event_twice_is_stored_once_and_answered_duplicate(harness):
    first = harness.ingest(completed("WO-4"))
    second = harness.ingest(completed("WO-4"))
    assert (first.status, second.status) == ("accepted", "duplicate")
    harness.ingest(signed("WO-4"))
    harness.run()
    assert harness.show("WO-4")["state"] == "sent"
    assert len(harness.stripe.find_invoices(job_id="WO-4")) == 1


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the worker catches it."""


def test_crash_after_create_before_recording_then_restart_leaves_one_stripe_invoice(
        harness, monkeypatch):
    harness.ingest(completed("WO-5"))
    harness.ingest(signed("WO-5"))
    real = steps._record_created

    def crash_instead_of_recording(*args, **kwargs):
        raise Crash

    monkeypatch.setattr(steps, "_record_created", crash_instead_of_recording)
    with pytest.raises(Crash):
        harness.run()
    assert len(harness.stripe.find_invoices(job_id="WO-5")) == 1
    # restart: a new worker; the lease on the row runs out, and the create is repeated
    monkeypatch.setattr(steps, "_record_created", real)
    harness.clock.advance(minutes=6)
    from autoinvoice.pipeline.worker import Worker

    Worker(harness.app).run_until_idle()
    assert harness.row("WO-5").doc_state == "sent"
    invoices = harness.stripe.find_invoices(job_id="WO-5")
    assert len(invoices) == 1
    assert invoices[0]["id"] == harness.row("WO-5").remote_id
    assert len(invoices[0]["lines"]["data"]) == 7


def test_lost_response_after_a_successful_create_is_retried_into_one_invoice(harness):
    harness.stripe.faults.lose_response("/v1/invoices", times=1, method="POST")
    harness.ingest(completed("WO-6"))
    harness.ingest(signed("WO-6"))
    harness.run()
    assert harness.row("WO-6").doc_state == "sent"
    assert len(harness.stripe.find_invoices(job_id="WO-6")) == 1


def test_429_with_retry_after_is_honoured_in_the_call_then_by_the_pipeline(harness):
    # given: Stripe answers three 429s with Retry-After: 30 to the invoice create
    harness.stripe.faults.inject("/v1/invoices", status=429, retry_after=30, times=3,
                                 method="POST")
    harness.ingest(completed("WO-7"))
    harness.ingest(signed("WO-7"))
    # when
    harness.run()
    # then: the HTTP layer waited exactly Retry-After between its attempts, then handed the
    # wait to the pipeline, which schedules the row exactly 30 s later
    row = harness.row("WO-7")
    assert harness.sleeps == [30.0, 30.0]
    assert (row.doc_state, row.attempts) == ("ready", 1)
    assert row.next_attempt_at == harness.clock.now + timedelta(seconds=30)
    assert "RateLimited" in row.last_error
    harness.clock.advance(seconds=29)
    harness.run()
    assert harness.row("WO-7").doc_state == "ready"
    harness.clock.advance(seconds=1)
    harness.run()
    assert harness.row("WO-7").doc_state == "sent"
    assert len(harness.stripe.find_invoices(job_id="WO-7")) == 1


def test_a_long_retry_after_goes_straight_to_the_pipeline_schedule(harness):
    harness.stripe.faults.inject("/v1/invoices", status=429, retry_after=600, times=1,
                                 method="POST")
    harness.ingest(completed("WO-7b"))
    harness.ingest(signed("WO-7b"))
    harness.run()
    row = harness.row("WO-7b")
    assert harness.sleeps == []  # no worker thread blocked for ten minutes
    assert row.next_attempt_at == harness.clock.now + timedelta(seconds=600)


def test_persistent_outage_ends_failed_with_the_last_error_visible_then_retry_works(harness):
    harness.stripe.faults.inject("/v1/customers", status=503, times=1000, method="POST")
    harness.ingest(completed("WO-8"))
    harness.ingest(signed("WO-8"))
    for _ in range(10):
        harness.run()
        harness.clock.advance(minutes=20)
    shown = harness.show("WO-8")
    assert shown["state"] == "failed"
    assert shown["attempts"] == 4
    assert "503" in shown["last_error"]
    actions = [h["action"] for h in shown["history"]]
    assert actions.count("retry_scheduled") == 3
    assert actions[-1] == "failed"
    # the operator fixes things and retries
    harness.stripe.faults.clear()
    from autoinvoice.pipeline.admin import retry

    retry(harness.app, "WO-8")
    harness.run()
    assert harness.row("WO-8").doc_state == "sent"


def test_platform_total_different_from_ours_is_held_not_sent(harness, monkeypatch):
    connector = harness.app.connector("northwind")
    real_create = connector.create_invoice

    def off_by_a_cent(invoice, customer, keys):
        remote = real_create(invoice, customer, keys)
        return RemoteInvoice(remote.id, remote.total + Money(Decimal("0.01"), "USD"),
                             remote.status, remote.number, remote.url)

    monkeypatch.setattr(connector, "create_invoice", off_by_a_cent)
    harness.ingest(completed("WO-9"))
    harness.ingest(signed("WO-9"))
    harness.run()
    shown = harness.show("WO-9")
    assert shown["state"] == "on_hold"
    assert shown["hold"]["code"] == "total_mismatch"
    assert harness.stripe.get_invoice(shown["remote_id"])["status"] == "draft"


def test_polling_sweep_catches_a_payment_whose_webhook_never_came(harness):
    harness.ingest(completed("WO-10"))
    harness.ingest(signed("WO-10"))
    harness.run()
    row = harness.row("WO-10")
    harness.stripe.record_payment(row.remote_id, 100000)
    harness.run()
    assert harness.row("WO-10").pay_state == "unpaid"  # not due to be polled yet
    harness.clock.advance(minutes=61)
    harness.run()
    assert harness.row("WO-10").pay_state == "partially_paid"
    harness.stripe.record_payment(row.remote_id, 151950)
    harness.clock.advance(minutes=61)
    harness.run()
    shown = harness.show("WO-10")
    assert (shown["payment_state"], shown["payment"]["amount_paid"]) == ("paid", "2519.50")
    assert shown["payment"]["balance"] == "0.00"


def test_numbers_are_consecutive_per_series(harness):
    for n in range(3):
        harness.ingest(completed(f"WO-N{n}"))
        harness.ingest(signed(f"WO-N{n}"))
    harness.run()
    numbers = sorted(harness.row(f"WO-N{n}").number for n in range(3))
    assert numbers == ["NW-2026-00001", "NW-2026-00002", "NW-2026-00003"]


def test_concurrent_workers_create_each_invoice_once_with_gap_free_numbers(harness):
    from concurrent.futures import ThreadPoolExecutor

    from autoinvoice.pipeline.worker import Worker

    for n in range(24):
        harness.ingest(completed(f"WO-R{n}"))
        harness.ingest(signed(f"WO-R{n}"))
    workers = [Worker(harness.app, batch=3, concurrency=2) for _ in range(3)]
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda w: w.run_until_idle(), workers))
    numbers = sorted(harness.row(f"WO-R{n}").number for n in range(24))
    assert numbers == [f"NW-2026-{n:05d}" for n in range(1, 25)]
    for n in range(24):
        assert harness.row(f"WO-R{n}").doc_state == "sent"
        assert len(harness.stripe.find_invoices(job_id=f"WO-R{n}")) == 1
