from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from autoinvoice.triggers.policy import readiness

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
BOTH = ("job.completed", "job.signed")


def test_due_now_once_every_required_event_is_in():
    decision = readiness({"job.signed", "job.completed"}, NOW, BOTH, Decimal(24), NOW)
    assert (decision.due_at, decision.unsigned) == (NOW, False)


def test_missing_signature_waits_until_the_deadline_and_then_invoices_unsigned():
    arrived = NOW - timedelta(hours=1)
    decision = readiness({"job.completed"}, arrived, BOTH, Decimal("1.5"), NOW)
    assert decision.due_at == decision.signature_deadline == arrived + timedelta(hours=1.5)
    assert decision.unsigned


def test_without_a_wait_or_a_completion_nothing_is_due():
    assert readiness({"job.completed"}, NOW, BOTH, None, NOW).due_at is None
    assert readiness({"job.signed"}, None, BOTH, Decimal(24), NOW).due_at is None
    assert readiness({"job.signed"}, None, ("job.signed",), None, NOW).due_at is None


def test_a_finalized_work_order_completes_a_job_that_requires_job_completed():
    assert readiness({"work_order.finalized", "job.signed"}, NOW, BOTH, None, NOW).due_at == NOW
    finalized_only = ("work_order.finalized",)
    assert readiness({"job.completed"}, NOW, finalized_only, None, NOW).due_at == NOW
    unsigned = readiness({"work_order.finalized"}, NOW, BOTH, Decimal(24), NOW)
    assert unsigned.unsigned  # still waits for the signature it requires


def test_a_tenant_requiring_both_completions_waits_for_both():
    both = ("job.completed", "work_order.finalized")
    assert readiness({"job.completed"}, NOW, both, None, NOW).due_at is None
    assert readiness({"job.completed", "work_order.finalized"}, NOW, both, None, NOW).due_at == NOW
