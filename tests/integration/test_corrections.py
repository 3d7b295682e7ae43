"""A changed job: voided and rebuilt before it went out, credited in full and re-invoiced after.
On SQLite, against the Stripe stand-in (tenant northwind) and the generic sandbox (tenant mail,
our PDF by e-mail)."""

from __future__ import annotations

import copy

import pytest

from autoinvoice.pipeline import credit
from autoinvoice.pipeline.worker import Worker
from tests.helpers import EXAMPLE_EMERGENCY, completed, signed

PARTS = EXAMPLE_EMERGENCY["job"]["parts"]


def more_oil(job_id: str, version: int = 2, tenant: str = "northwind") -> dict:
    """The same job, corrected: one litre more of fluid than first reported."""
    parts = copy.deepcopy(PARTS)
    parts[2]["quantity"] = 5 + version - 1
    return completed(job_id, event_id=f"evt-{job_id}-v{version}", tenant=tenant, parts=parts)


def invoiced(harness, job_id: str, tenant: str = "northwind") -> None:
    harness.ingest(completed(job_id, tenant=tenant))
    harness.ingest(signed(job_id, tenant=tenant))
    harness.run()
    assert harness.row(job_id, tenant).doc_state == "sent"


def show(harness, job_id: str, tenant: str = "northwind") -> dict:
    """What ``invoices show JOB --json`` shows: the newest revision and every document."""
    from autoinvoice.pipeline import views

    with harness.app.sessions() as session:
        return views.job_detail(session, views.find_job(session, job_id, tenant)[0])


def documents(harness, job_id: str, tenant: str = "northwind") -> list[tuple]:
    return [(d["kind"], d["revision"], d["state"], d["number"])
            for d in show(harness, job_id, tenant)["documents"]]


class Crash(BaseException):
    """Stands for the process dying: nothing in the worker catches it."""


# -- after sending: credit note + new invoice ---------------------------------------------------


def test_a_job_changed_after_sending_is_credited_in_full_and_invoiced_again(harness):
    # given: the invoice went out on Stripe
    invoiced(harness, "WO-C1")
    first = harness.row("WO-C1")
    # when: the job is corrected
    harness.ingest(more_oil("WO-C1"))
    harness.run()
    # then: one credit note for the full amount, then the new revision, sent
    notes = harness.stripe.credit_notes(first.remote_id)
    assert len(notes) == 1
    assert notes[0]["total"] == first.total_minor
    assert notes[0]["metadata"]["credit_note_number"] == "CN-NW-2026-00001"
    assert documents(harness, "WO-C1") == [
        ("invoice", 1, "credited", "NW-2026-00001"),
        ("credit_note", 1, "sent", "CN-NW-2026-00001"),
        ("invoice", 2, "sent", "NW-2026-00002"),
    ]
    second = harness.row("WO-C1")
    assert second.total_minor == first.total_minor + 1840 + 156  # 1 l at 18.40, 8.5 % tax
    assert second.source_event_id == "evt-WO-C1-v2"
    assert len(harness.stripe.find_invoices(job_id="WO-C1")) == 2
    shown = show(harness, "WO-C1")
    credit_note = shown["documents"][1]
    assert credit_note["credits_invoice"] == "NW-2026-00001"
    assert credit_note["delivery"]["via"] == "platform"
    assert credit_note["remote"]["total"] == credit_note["total"]
    history = [h["action"] for h in shown["documents"][0]["history"]]
    assert history[-3:] == ["correction_requested", "crediting", "credited"]


def test_an_identical_completion_event_changes_nothing(harness):
    invoiced(harness, "WO-C2")
    # the same job again, under another event id
    result = harness.ingest(completed("WO-C2", event_id="evt-WO-C2-again"))
    harness.run()
    assert result.status == "accepted"
    assert documents(harness, "WO-C2") == [("invoice", 1, "sent", "NW-2026-00001")]
    assert harness.stripe.count("credit_note") == 0
    assert harness.row("WO-C2").correction is None
    assert "correction_requested" not in [h["action"] for h in show(harness, "WO-C2")["history"]]


def test_a_change_and_its_undo_before_the_worker_ran_change_nothing(harness):
    invoiced(harness, "WO-C3")
    harness.ingest(more_oil("WO-C3"))
    harness.ingest(completed("WO-C3", event_id="evt-WO-C3-undo"))  # back to the original job
    harness.run()
    assert documents(harness, "WO-C3") == [("invoice", 1, "sent", "NW-2026-00001")]
    assert harness.stripe.count("credit_note") == 0
    assert "correction_dropped" in [h["action"] for h in show(harness, "WO-C3")["history"]]


def test_a_crash_between_the_credit_note_and_its_recording_leaves_one_credit_note(
        harness, monkeypatch):
    invoiced(harness, "WO-C4")
    remote_id = harness.row("WO-C4").remote_id
    harness.ingest(more_oil("WO-C4"))
    real = credit._record_issued

    def crash(*args, **kwargs):
        raise Crash

    monkeypatch.setattr(credit, "_record_issued", crash)
    with pytest.raises(Crash):
        harness.run()
    assert len(harness.stripe.credit_notes(remote_id)) == 1
    # restart: a new worker; the lease runs out and the credit note step is repeated
    monkeypatch.setattr(credit, "_record_issued", real)
    harness.clock.advance(minutes=6)
    Worker(harness.app).run_until_idle()
    assert len(harness.stripe.credit_notes(remote_id)) == 1
    assert documents(harness, "WO-C4") == [
        ("invoice", 1, "credited", "NW-2026-00001"),
        ("credit_note", 1, "sent", "CN-NW-2026-00001"),
        ("invoice", 2, "sent", "NW-2026-00002"),
    ]


def test_a_lost_credit_note_response_is_retried_into_one_credit_note(harness):
    invoiced(harness, "WO-C5")
    harness.stripe.faults.lose_response("/v1/credit_notes", method="POST")
    harness.ingest(more_oil("WO-C5"))
    harness.run()
    assert harness.stripe.count("credit_note") == 1
    assert documents(harness, "WO-C5")[-1] == ("invoice", 2, "sent", "NW-2026-00002")


def test_a_paid_invoice_is_credited_out_of_band(harness):
    invoiced(harness, "WO-C6")
    first = harness.row("WO-C6")
    harness.stripe.record_payment(first.remote_id, first.total_minor)
    harness.ingest(more_oil("WO-C6"))
    harness.run()
    note = harness.stripe.credit_notes(first.remote_id)[0]
    assert (note["type"], note["out_of_band_amount"]) == ("post_payment", first.total_minor)
    assert documents(harness, "WO-C6")[-1][2] == "sent"


def test_a_credit_note_the_platform_refuses_fails_visibly_and_the_invoice_stays_sent(harness):
    invoiced(harness, "WO-C7")
    first = harness.row("WO-C7")
    harness.stripe.record_payment(first.remote_id, 100)  # partly paid: not creditable in full
    harness.ingest(more_oil("WO-C7"))
    harness.run()
    assert documents(harness, "WO-C7") == [
        ("invoice", 1, "sent", "NW-2026-00001"),
        ("credit_note", 1, "failed", "CN-NW-2026-00001"),
    ]
    assert "partly paid" in show(harness, "WO-C7")["documents"][1]["last_error"]


# -- before sending: void + rebuild ---------------------------------------------------------


def test_a_held_job_changed_is_voided_and_rebuilt(harness):
    # given: held for an unknown part
    parts = [*copy.deepcopy(PARTS), {"sku": "NOPE-1", "description": "?", "quantity": 1}]
    harness.ingest(completed("WO-V1", parts=parts))
    harness.ingest(signed("WO-V1"))
    harness.run()
    assert harness.row("WO-V1").doc_state == "on_hold"
    # when: the job is corrected
    harness.ingest(more_oil("WO-V1"))
    harness.run()
    # then
    assert documents(harness, "WO-V1") == [
        ("invoice", 1, "void", None),
        ("invoice", 2, "sent", "NW-2026-00001"),
    ]
    voided = show(harness, "WO-V1")["documents"][0]["history"]
    entry = next(h for h in voided if h["action"] == "voided")
    assert entry["detail"]["reason"] == "job changed"
    assert entry["detail"]["on_platform"] == "not_on_platform"
    assert harness.stripe.count("credit_note") == 0


def test_a_number_taken_before_the_change_stays_used(harness):
    # given: numbered, but the platform is down, so it stays ready
    harness.stripe.faults.inject("/v1/customers", status=503, times=3, method="POST")
    harness.ingest(completed("WO-V2"))
    harness.ingest(signed("WO-V2"))
    harness.run()
    row = harness.row("WO-V2")
    assert (row.doc_state, row.number) == ("ready", "NW-2026-00001")
    # when: the change comes in; the row is claimed again when its retry is due
    harness.ingest(more_oil("WO-V2"))
    harness.clock.advance(minutes=1)
    harness.run()
    # then: the new revision gets the next number; the first is recorded as retired
    assert documents(harness, "WO-V2") == [
        ("invoice", 1, "void", "NW-2026-00001"),
        ("invoice", 2, "sent", "NW-2026-00002"),
    ]
    entry = next(h for h in show(harness, "WO-V2")["documents"][0]["history"]
                 if h["action"] == "voided")
    assert entry["detail"]["number_retired"] is True
    assert len(harness.stripe.find_invoices(job_id="WO-V2")) == 1


def test_a_job_changed_after_creating_before_sending_is_deleted_on_the_platform(harness):
    # given: created on Stripe as a draft, but finalizing fails for now
    harness.stripe.faults.inject("/v1/invoices/", status=503, times=3, method="POST")
    harness.ingest(completed("WO-V3"))
    harness.ingest(signed("WO-V3"))
    harness.run()
    first = harness.row("WO-V3")
    assert first.doc_state == "created"
    assert harness.stripe.get_invoice(first.remote_id)["status"] == "draft"
    # when
    harness.ingest(more_oil("WO-V3"))
    harness.clock.advance(minutes=1)
    harness.run()
    # then: the draft is gone from Stripe, the new revision is out
    assert [i["metadata"]["revision"] for i in harness.stripe.find_invoices(job_id="WO-V3")] \
        == ["2"]
    assert documents(harness, "WO-V3") == [
        ("invoice", 1, "void", "NW-2026-00001"),
        ("invoice", 2, "sent", "NW-2026-00002"),
    ]
    entry = next(h for h in show(harness, "WO-V3")["documents"][0]["history"]
                 if h["action"] == "voided")
    assert entry["detail"]["on_platform"] == "deleted"


def test_a_finalized_unsent_invoice_is_voided_on_the_platform(harness, monkeypatch):
    # given: finalized on Stripe, but the send call fails
    connector = harness.app.connector("northwind")
    real_send = connector.send_invoice

    def finalize_only(remote, keys):
        connector._post(f"/v1/invoices/{remote.id}/finalize", {}, keys.for_step("finalize"))
        raise Crash

    monkeypatch.setattr(connector, "send_invoice", finalize_only)
    harness.ingest(completed("WO-V4"))
    harness.ingest(signed("WO-V4"))
    with pytest.raises(Crash):
        harness.run()
    first = harness.row("WO-V4")
    assert harness.stripe.get_invoice(first.remote_id)["status"] == "open"
    monkeypatch.setattr(connector, "send_invoice", real_send)
    # when
    harness.ingest(more_oil("WO-V4"))
    harness.clock.advance(minutes=6)
    harness.run()
    # then
    assert harness.stripe.get_invoice(first.remote_id)["status"] == "void"
    assert documents(harness, "WO-V4")[-1] == ("invoice", 2, "sent", "NW-2026-00002")


# -- the sandbox platform: our own credit note PDF by e-mail ---------------------------------


def test_sandbox_credit_note_is_emailed_as_a_credit_note_pdf(harness, smtp_sink):
    from io import BytesIO

    from pypdf import PdfReader

    invoiced(harness, "WO-M1", tenant="mail")
    harness.ingest(more_oil("WO-M1", tenant="mail"))
    harness.run()
    assert documents(harness, "WO-M1", "mail") == [
        ("invoice", 1, "credited", "NW-2026-00001"),
        ("credit_note", 1, "sent", "CN-NW-2026-00001"),
        ("invoice", 2, "sent", "NW-2026-00002"),
    ]
    subjects = [m["Subject"] for _, m in smtp_sink.messages]
    assert [s.split(" from ")[0] for s in subjects] == [
        "Invoice NW-2026-00001", "Credit note CN-NW-2026-00001", "Invoice NW-2026-00002"]
    message = smtp_sink.messages[1][1]
    assert len({m["Message-ID"] for _, m in smtp_sink.messages}) == 3
    pdf = next(p for p in message.iter_attachments()
               if p.get_content_type() == "application/pdf").get_content()
    text = PdfReader(BytesIO(pdf)).pages[0].extract_text()
    assert "CREDIT NOTE" in text
    assert "Credits invoice" in text
    assert "NW-2026-00001" in text
    status = harness.app.connector("mail").fetch_status(
        show(harness, "WO-M1", "mail")["documents"][0]["remote_id"])
    assert status.balance.amount == 0
