"""Accepting events: stored once per event id, then the job's trigger policy is evaluated.

The event row and the invoice row's new schedule are written in one transaction: either the
event is in and the job knows about it, or nothing was written.

A completion event for a job whose invoice is already built is a change when its job differs
from the one built: the revision is flagged for correction (``pipeline.revise`` voids or
credits it and builds the next). The same job sent again changes nothing but the audit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from autoinvoice.bootstrap import App
from autoinvoice.config import TriggerConfig
from autoinvoice.pipeline.corrections import differs_from_built, request_correction
from autoinvoice.pipeline.states import LEASE, Correction, DocState, Handoff
from autoinvoice.store import repo
from autoinvoice.store.models import EventRow, InvoiceRow
from autoinvoice.triggers.events import JobCompleted, JobSigned
from autoinvoice.triggers.policy import COMPLETION_TYPES, Readiness, readiness
from autoinvoice.validation import InputError


@dataclass(frozen=True, slots=True)
class IntakeResult:
    status: str  # "accepted" | "duplicate"
    tenant: str
    event_id: str
    job_id: str
    doc_state: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "tenant": self.tenant, "event_id": self.event_id,
                "job_id": self.job_id, "invoice_state": self.doc_state}


def accept(app: App, event: JobCompleted | JobSigned, raw: str, *, actor: str = "api"
           ) -> IntakeResult:
    """Store ``event`` (``raw`` is its JSON text exactly as received, kept for the audit)."""
    if event.tenant not in app.config.tenants:
        raise InputError([f"tenant: unknown tenant {event.tenant!r}"], source="event")
    now = app.clock()
    with app.sessions.begin() as session:
        row = store_event(app, session, event, raw, now, actor)
        if row is None:
            return IntakeResult("duplicate", event.tenant, event.event_id, event.job_id)
        return IntakeResult("accepted", event.tenant, event.event_id, event.job_id,
                            row.doc_state)


def store_event(app: App, session: Session, event: JobCompleted | JobSigned, raw: str,
                now: datetime, actor: str) -> InvoiceRow | None:
    """In the caller's transaction: the event stored, the job's newest revision told (and
    flagged for correction when its job changed); None for an event id seen before."""
    if repo.find_event(session, event.tenant, event.event_id):
        return None
    try:
        with session.begin_nested():  # a savepoint: the caller's transaction survives
            session.add(EventRow(
                tenant=event.tenant, event_id=event.event_id, type=event.type,
                job_id=event.job_id, occurred_at=event.occurred_at, received_at=now,
                payload=raw))
    except IntegrityError:  # a concurrent request stored the same event first
        return None
    row = _invoice_row(app, session, event, now)
    repo.record(session, row, now, "event_received", actor=actor,
                event_id=event.event_id, type=event.type)
    events = repo.job_events(session, event.tenant, event.job_id)
    if isinstance(event, JobCompleted) and row.invoice_json is not None \
            and differs_from_built(row, events):
        row = _changed(app, session, row, event, now, actor)
    schedule(row, events, app.config.tenant(event.tenant).triggers, now)
    return row


def _changed(app: App, session: Session, row: InvoiceRow, event: JobCompleted, now: datetime,
             actor: str) -> InvoiceRow:
    if row.doc_state in (DocState.VOID, DocState.CREDITED):  # nothing left to correct
        return new_revision(app, session, row, now, "job changed", actor=actor)
    request_correction(session, row, Correction.REVISE, "job changed", now, actor=actor,
                       event_id=event.event_id)
    return row


def new_revision(app: App, session: Session, old: InvoiceRow, now: datetime, reason: str, *,
                 actor: str = "worker") -> InvoiceRow:
    """The next revision of ``old``'s job, waiting for (or due by) its triggers."""
    row = InvoiceRow(
        tenant=old.tenant, job_id=old.job_id, revision=old.revision + 1, kind="invoice",
        doc_state=DocState.PENDING_TRIGGERS, pay_state="unpaid", flags=[],
        platform=app.config.tenant(old.tenant).platform.name, attempts=0,
        amount_paid_minor=0, accepted_at=now, updated_at=now)
    session.add(row)
    session.flush()
    repo.record(session, row, now, "revision_created", actor=actor, reason=reason,
                replaces_revision=old.revision, replaces_number=old.number)
    schedule(row, repo.job_events(session, old.tenant, old.job_id),
             app.config.tenant(old.tenant).triggers, now)
    return row


def _invoice_row(app: App, session: Session, event: JobCompleted | JobSigned, now: datetime
                 ) -> InvoiceRow:
    row = repo.latest_invoice(session, event.tenant, event.job_id, lock=True)
    if row is None:
        row = InvoiceRow(
            tenant=event.tenant, job_id=event.job_id, revision=1,
            doc_state=DocState.PENDING_TRIGGERS, pay_state="unpaid", flags=[],
            platform=app.config.tenant(event.tenant).platform.name, attempts=0,
            amount_paid_minor=0, accepted_at=now, updated_at=now)
        session.add(row)
        session.flush()
    return row


def lease_if_due(row: InvoiceRow, now: datetime) -> Handoff | None:
    """A new row handed to the worker that made it when it is due now, leased so that no
    other worker takes it meanwhile (and every worker may, should this one die)."""
    if row.next_attempt_at is None or row.next_attempt_at > now:
        return None
    row.next_attempt_at = now + LEASE
    return Handoff(row.id, row.doc_state)


def schedule(row: InvoiceRow, events: Sequence[EventRow], policy: TriggerConfig,
             now: datetime) -> Readiness:
    """Make the row due when its trigger policy says (now, at the signature deadline, or not
    until more events arrive); returns the decision."""
    completion = next((e for e in events if e.type in COMPLETION_TYPES), None)
    decision = readiness({e.type for e in events}, completion.received_at if completion else None,
                         policy.require, policy.signature_wait_hours, now)
    if row.doc_state == DocState.PENDING_TRIGGERS:
        row.next_attempt_at = decision.due_at
        row.signature_deadline = decision.signature_deadline
    return decision
