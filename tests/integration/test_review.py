"""Review of held invoices: list, approve as is, approve with edits (a new revision from a new,
stored event), reject; bad input changes nothing."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from autoinvoice.connectors.base import RemoteInvoice
from autoinvoice.domain.money import Money
from autoinvoice.pipeline.review import Edits, approve, held, merge_patch, parse_edits, reject
from autoinvoice.store.models import EventRow, HistoryRow, InvoiceRow
from autoinvoice.validation import InputError
from tests.helpers import EXAMPLE_EMERGENCY, completed, signed
from tests.integration.test_corrections import documents, show

UNKNOWN = {"sku": "NOPE-1", "description": "Gasket, non-catalogue", "quantity": 2,
           "unit": "ea"}


def held_job(harness, job_id: str, **changes) -> None:
    parts = [*copy.deepcopy(EXAMPLE_EMERGENCY["job"]["parts"]), UNKNOWN]
    harness.ingest(completed(job_id, **{"parts": parts, **changes}))
    harness.ingest(signed(job_id))
    harness.run()
    assert harness.row(job_id).doc_state == "on_hold"


def counts(harness) -> tuple[int, int, int]:
    with harness.app.sessions() as session:
        return tuple(session.scalar(select(func.count()).select_from(t))  # type: ignore[return-value]
                     for t in (EventRow, InvoiceRow, HistoryRow))


def test_review_list_shows_each_held_invoice_with_its_reasons_and_since_when(harness):
    held_job(harness, "WO-H1")
    harness.ingest(completed("WO-OK"))
    harness.ingest(signed("WO-OK"))
    harness.run()
    rows = held(harness.app)
    assert [r["job_id"] for r in rows] == ["WO-H1"]
    row = rows[0]
    assert (row["tenant"], row["customer"], row["revision"]) == \
        ("northwind", "Acme Plastics Inc.", 1)
    assert row["total"] is not None
    assert row["holds"][0]["code"] == "unknown_sku"
    assert "NOPE-1" in row["holds"][0]["message"]
    assert row["since"] == harness.clock.now.isoformat()
    assert held(harness.app, tenant="mail") == []


def test_approve_without_edits_lets_the_held_revision_go_on(harness):
    held_job(harness, "WO-H2")
    message = approve(harness.app, "WO-H2", None, actor="dana", note="gasket agreed at zero")
    assert "approved by dana" in message
    harness.run()
    assert documents(harness, "WO-H2") == [("invoice", 1, "sent", "NW-2026-00001")]
    entry = next(h for h in show(harness, "WO-H2")["history"] if h["action"] == "approved")
    assert (entry["actor"], entry["to"]) == ("dana", "ready")
    assert entry["detail"] == {"note": "gasket agreed at zero", "holds": ["unknown_sku"]}


def test_approving_a_total_mismatch_sends_it_as_created(harness, monkeypatch):
    connector = harness.app.connector("northwind")
    real_create = connector.create_invoice

    def off_by_a_cent(invoice, customer, keys):
        remote = real_create(invoice, customer, keys)
        return RemoteInvoice(remote.id, remote.total + Money(Decimal("0.01"), "USD"),
                             remote.status, remote.number, remote.url)

    monkeypatch.setattr(connector, "create_invoice", off_by_a_cent)
    harness.ingest(completed("WO-H3"))
    harness.ingest(signed("WO-H3"))
    harness.run()
    assert harness.row("WO-H3").hold_code == "total_mismatch"
    approve(harness.app, "WO-H3", "northwind", actor="dana")
    harness.run()
    row = harness.row("WO-H3")
    assert row.doc_state == "sent"
    assert harness.stripe.get_invoice(row.remote_id)["status"] == "open"


def test_approve_with_edits_builds_a_new_revision_from_a_stored_event(harness, tmp_path):
    # given: held for a part not in the pricebook
    held_job(harness, "WO-H4")
    patch = parse_edits(json.dumps({"parts": [*EXAMPLE_EMERGENCY["job"]["parts"][:2]],
                                    "summary": "Gasket was not used"}), "PO-99",
                        ["1622-8757-00=399.00"])
    # when
    message = approve(harness.app, "WO-H4", None, actor="dana", note="see call", edits=patch)
    # then: the old revision is void, the new one is built at once from the edited job
    assert "rev 1 void" in message
    assert "rev 2 built" in message
    assert documents(harness, "WO-H4") == [("invoice", 1, "void", None),
                                           ("invoice", 2, "ready", None)]
    with harness.app.sessions() as session:
        event = session.scalar(select(EventRow).where(EventRow.event_id == "review-WO-H4-r2"))
    assert event.type == "job.completed"
    job = json.loads(event.payload)["job"]
    assert job["po_number"] == "PO-99"
    assert [p["sku"] for p in job["parts"]] == ["1622-8757-00", "1622-3637-80"]
    assert job["parts"][0]["unit_price"] == 399  # an exact JSON number, not a string
    assert job["mileage"] == {"distance": "38.5", "unit": "mi"}  # untouched, as it came
    shown = show(harness, "WO-H4")
    received = [h for h in shown["history"] if h["action"] == "revision_created"]
    assert received[0]["actor"] == "dana"
    old = shown["documents"][0]["history"]
    actions = [(h["action"], h["actor"]) for h in old]
    assert ("event_received", "review:dana") in actions
    assert ("approved_with_edits", "dana") in actions
    assert old[-1]["action"] == "voided"
    assert old[-1]["detail"]["reason"] == "edited in review by dana"
    # and the worker sends it, with the agreed price and the PO
    harness.run()
    sent = harness.row("WO-H4")
    assert (sent.doc_state, sent.number, sent.revision) == ("sent", "NW-2026-00001", 2)
    lines = {ln["sku"]: ln for ln in show(harness, "WO-H4")["lines"]}
    assert lines["1622-8757-00"]["unit_price"] in ("399.00", "399")
    assert "PO-99" in str(harness.stripe.find_invoices(job_id="WO-H4")[0]["custom_fields"])


def test_an_edited_revision_that_still_has_problems_is_held_again(harness):
    held_job(harness, "WO-H5")
    message = approve(harness.app, "WO-H5", None, actor="dana",
                      edits=Edits(po_number="PO-1"))
    assert "held again" in message
    assert "unknown_sku" in message
    assert documents(harness, "WO-H5") == [("invoice", 1, "void", None),
                                           ("invoice", 2, "on_hold", None)]
    assert [r["revision"] for r in held(harness.app)] == [2]


def test_reject_voids_the_held_revision_and_sends_nothing(harness):
    held_job(harness, "WO-H6")
    message = reject(harness.app, "WO-H6", None, actor="dana", reason="duplicate job")
    assert "void" in message
    harness.run()
    assert documents(harness, "WO-H6") == [("invoice", 1, "void", None)]
    assert harness.stripe.find_invoices(job_id="WO-H6") == []
    voided = show(harness, "WO-H6")["history"][-1]
    assert (voided["action"], voided["actor"]) == ("voided", "dana")
    assert voided["detail"]["reason"] == "rejected by dana: duplicate job"


def test_a_rejected_total_mismatch_is_voided_on_the_platform_by_the_worker(
        harness, monkeypatch):
    connector = harness.app.connector("northwind")
    real_create = connector.create_invoice
    monkeypatch.setattr(connector, "create_invoice", lambda i, c, k: RemoteInvoice(
        (r := real_create(i, c, k)).id, r.total + Money(Decimal("1"), "USD"), r.status))
    harness.ingest(completed("WO-H7"))
    harness.ingest(signed("WO-H7"))
    harness.run()
    remote_id = harness.row("WO-H7").remote_id
    reject(harness.app, "WO-H7", None, actor="dana", reason="wrong customer")
    harness.run()
    assert harness.row("WO-H7").doc_state == "void"
    assert harness.stripe.find_invoices(job_id="WO-H7") == []  # the draft was deleted
    assert remote_id


def test_a_revision_already_being_corrected_cannot_be_reviewed_again(harness, monkeypatch):
    connector = harness.app.connector("northwind")
    real_create = connector.create_invoice
    monkeypatch.setattr(connector, "create_invoice", lambda i, c, k: RemoteInvoice(
        (r := real_create(i, c, k)).id, r.total + Money(Decimal("1"), "USD"), r.status))
    harness.ingest(completed("WO-H9"))
    harness.ingest(signed("WO-H9"))
    harness.run()
    reject(harness.app, "WO-H9", None, actor="dana", reason="wrong customer")
    with pytest.raises(InputError, match="already being corrected"):
        approve(harness.app, "WO-H9", None, actor="sam")


@pytest.mark.parametrize(("job_id", "kwargs", "problem"), [
    ("WO-NONE", {}, "no invoice for job 'WO-NONE'"),
    ("WO-SENT", {}, "is sent, not on hold"),
    ("WO-H8", {"edits": Edits(prices=(("NOT-THERE", Decimal("1")),))}, "no part with SKU"),
    ("WO-H8", {"edits": Edits(patch={"id": "OTHER"})}, "the job id cannot change"),
    ("WO-H8", {"edits": Edits(patch={"technicians": []})}, "technicians"),
    ("WO-H8", {"edits": Edits(patch={"summary": EXAMPLE_EMERGENCY["job"]["summary"]})},
     "leave the job as it is"),
])
def test_bad_review_input_names_the_problem_and_writes_nothing(harness, job_id, kwargs,
                                                               problem):
    held_job(harness, "WO-H8")
    harness.ingest(completed("WO-SENT"))
    harness.ingest(signed("WO-SENT"))
    harness.run()
    before = counts(harness)
    with pytest.raises(InputError, match=problem):
        approve(harness.app, job_id, None, actor="dana", **kwargs)
    assert counts(harness) == before


@pytest.mark.parametrize(("patch", "po", "prices", "problem"), [
    ("{not json", None, [], "not valid JSON"),
    ("[1, 2]", None, [], "must be a JSON object"),
    (None, " ", [], "--po: must not be empty"),
    (None, None, ["1622-8757-00"], "expected SKU=PRICE"),
    (None, None, ["1622-8757-00=abc"], "expected SKU=PRICE"),
    (None, None, ["1622-8757-00=-1"], "expected SKU=PRICE"),
])
def test_bad_edits_are_refused_before_anything_is_read(patch, po, prices, problem):
    with pytest.raises(InputError, match=problem):
        parse_edits(patch, po, prices)


def test_merge_patch_follows_rfc_7386():
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "list": [1, 2]}
    patch = {"a": "z", "c": {"f": None}, "list": [3], "new": {"x": 1}}
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}, "list": [3],
                                          "new": {"x": 1}}
    assert merge_patch({"a": "b"}, {"a": {"b": None}}) == {"a": {}}
