"""Credit notes: a delivered invoice whose job changed is credited in full, then re-invoiced.

The credit note is a row of its own (kind ``credit_note``, the credited revision's number,
``corrects_id`` = the credited row) and goes through the worker like an invoice:

  ready   → its gap-free number from the tenant's credit-note series, then the platform's
            credit note for the full amount (``Connector.credit_invoice``: found again
            before it is created, under its own stored idempotency keys) → created;
  created → delivered: by the platform (Stripe) or our PDF by e-mail (the sandbox) → sent;
            in the same transaction the credited invoice becomes ``credited`` and the next
            revision of the job is made, built from the newest job.

A credit note with nothing to credit (a zero total) is recorded and delivered as such: no
platform call, nothing e-mailed."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.orm import Session

from autoinvoice.bootstrap import App
from autoinvoice.connectors.base import IdempotencyKeys, RemoteCreditNote
from autoinvoice.domain.invoice import DocumentKind, Invoice
from autoinvoice.pipeline import documents
from autoinvoice.pipeline.compliance import check_credit_note
from autoinvoice.pipeline.intake import lease_if_due, new_revision
from autoinvoice.pipeline.states import (
    CREDIT_CREATED,
    CREDIT_READY,
    LEASE,
    DocState,
    Handoff,
    Kind,
)
from autoinvoice.pipeline.steps import Delivery, email_document, mark_delivered
from autoinvoice.store import repo
from autoinvoice.store.models import InvoiceRow


def start(app: App, session: Session, row: InvoiceRow, now: datetime) -> Handoff | None:
    """In the caller's transaction: the credit note of the delivered ``row`` (one at most)."""
    reason = row.correction_reason or "job changed"
    row.correction = row.correction_reason = None
    row.next_attempt_at = None  # no more payment checks: it is being credited
    existing = repo.credit_note_of(session, row.id)
    if existing is not None:
        repo.record(session, row, now, "correction_merged", reason=reason,
                    credit_note=existing.number, detail="already being credited")
        return None
    credited = repo.load_invoice(row)
    issue = now.astimezone(app.rules(row.tenant).timezone).date()
    note = replace(credited, kind=DocumentKind.CREDIT_NOTE, corrects=row.number, number=None,
                   issue_date=issue, due_date=issue, flags=frozenset())
    cn = InvoiceRow(
        tenant=row.tenant, job_id=row.job_id, revision=row.revision, kind=Kind.CREDIT_NOTE,
        corrects_id=row.id, doc_state=DocState.READY, pay_state="unpaid", flags=[],
        platform=row.platform, attempts=0, amount_paid_minor=0, accepted_at=now,
        updated_at=now, next_attempt_at=now + LEASE,
        idempotency_base=IdempotencyKeys.derive(row.tenant, row.job_id, row.revision,
                                                Kind.CREDIT_NOTE).base)
    session.add(cn)
    session.flush()
    repo.store_invoice(session, cn, note)
    repo.record(session, cn, now, "credit_note_created", credits=row.number, reason=reason,
                total=str(note.total))
    repo.record(session, row, now, "crediting", reason=reason, credit_note_row=cn.id)
    return Handoff(cn.id, CREDIT_READY)


@dataclass(frozen=True, slots=True)
class _Issue:
    tenant: str
    note: Invoice
    remote_invoice: str | None
    keys: IdempotencyKeys


def create_step(app: App, row_id: int) -> str:
    job = _prepare(app, row_id)
    remote = None
    if job.remote_invoice and job.note.total.amount != 0:
        remote = app.connector(job.tenant).credit_invoice(job.remote_invoice, job.note, job.keys)
    now = app.clock()
    with app.sessions.begin() as session:
        row = session.get_one(InvoiceRow, row_id)
        _record_issued(session, row, job.note, remote, now)
        row.next_attempt_at = now + LEASE
        return CREDIT_CREATED


def _prepare(app: App, row_id: int) -> _Issue:
    """The credit note's number (gap-free, given when it leaves ``ready``) and what the
    platform call needs."""
    now = app.clock()
    with app.sessions.begin() as session:
        row = session.get_one(InvoiceRow, row_id)
        if row.number is None:
            tenant = app.config.tenant(row.tenant)
            row.number = repo.next_number(session, row.tenant, tenant.credit_notes,
                                          repo.load_invoice(row).issue_date)
            repo.record(session, row, now, "numbered", number=row.number)
            check_credit_note(session, row, repo.load_invoice(row), tenant, now)
        credited = session.get_one(InvoiceRow, row.corrects_id)
        row.create_started_at = row.create_started_at or now
        return _Issue(row.tenant, repo.load_invoice(row), credited.remote_id,
                      IdempotencyKeys(row.idempotency_base or ""))


def _record_issued(session: Session, row: InvoiceRow, note: Invoice,
                   remote: RemoteCreditNote | None, now: datetime) -> None:
    row.attempts, row.last_error = 0, None
    if remote is None:
        repo.record(session, row, now, "issued", to_state=DocState.CREATED,
                    on_platform=False, total=str(note.total))
        return
    row.remote_id, row.remote_number, row.remote_url = remote.id, remote.number, remote.url
    row.remote_total_minor = remote.total.minor
    repo.record(session, row, now, "credited_on_platform", to_state=DocState.CREATED,
                remote_id=remote.id, remote_number=remote.number,
                remote_total=str(remote.total), matches=remote.total == note.total)


def deliver_step(app: App, row_id: int) -> Handoff | None:
    with app.sessions() as session:
        row = session.get_one(InvoiceRow, row_id)
        note, on_platform = repo.load_invoice(row), row.remote_id is not None
    connector = app.connector(note.tenant)
    if not on_platform and note.total.amount == 0:
        delivery = Delivery("none")
    elif connector.delivers_itself and documents.einvoice_format(
            app.config.tenant(note.tenant), note) is None:
        delivery = Delivery("platform")
    else:  # ours by e-mail, also beside the platform's when the client gets e-invoices
        delivery = email_document(app, row_id, note, None)
        if connector.delivers_itself:
            delivery = replace(delivery, via="platform+email")
    now = app.clock()
    with app.sessions.begin() as session:
        row = session.get_one(InvoiceRow, row_id)
        mark_delivered(session, row, delivery, now)
        row.next_attempt_at = None
        return _credited(app, session, session.get_one(InvoiceRow, row.corrects_id), row, now)


def _credited(app: App, session: Session, invoice: InvoiceRow, note: InvoiceRow,
              now: datetime) -> Handoff | None:
    """The credited invoice is done with; the job's next revision takes its place."""
    invoice.next_attempt_at = None
    invoice.correction = invoice.correction_reason = None  # the next revision takes it up
    repo.record(session, invoice, now, "credited", to_state=DocState.CREDITED,
                credit_note=note.number, credit_note_remote=note.remote_id)
    return lease_if_due(new_revision(app, session, invoice, now, "job changed"), now)
