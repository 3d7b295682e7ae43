"""The correction step: what happens to a revision flagged ``revise`` (its job changed) or
``void`` (rejected in review), decided by how far it got.

- Not on the platform (built, ready, held, failed before creating): void here, in one
  transaction with the next revision (``revise``). A number it took stays used (recorded).
- Created on the platform, not delivered: void it there first (Stripe deletes a draft, voids a
  finalized invoice), then as above. A create that began without its outcome recorded may
  have happened: the platform is searched by our reference first.
- Delivered: never edited. A credit note for its full amount is made (``pipeline.credit``);
  when that is delivered, this revision is ``credited`` and the next one is built.

A flag raised by an event whose job is the one already invoiced is dropped. Each phase is its
own transaction around at most one platform call, so a crash anywhere repeats the step."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from autoinvoice.bootstrap import App
from autoinvoice.connectors.base import IdempotencyKeys
from autoinvoice.domain.invoice import Invoice
from autoinvoice.pipeline import credit
from autoinvoice.pipeline.corrections import differs_from_built
from autoinvoice.pipeline.intake import lease_if_due, new_revision
from autoinvoice.pipeline.states import LEASE, WORKABLE, Correction, DocState, Handoff
from autoinvoice.store import repo
from autoinvoice.store.models import InvoiceRow

Next = str | Handoff | None


@dataclass(frozen=True, slots=True)
class _VoidRemote:
    """Void on the platform: ``remote_id``, or whatever ``search`` finds there."""

    tenant: str
    remote_id: str | None
    search: Invoice | None
    keys: IdempotencyKeys


def revise_step(app: App, row_id: int) -> Next:
    plan = _decide(app, row_id)
    if not isinstance(plan, _VoidRemote):
        return plan
    connector = app.connector(plan.tenant)
    remote_id = plan.remote_id
    if remote_id is None and plan.search is not None:
        found = connector.find_by_reference(plan.search)
        remote_id = found.id if found else None
    outcome = connector.void_invoice(remote_id, plan.keys) if remote_id else "not_on_platform"
    now = app.clock()
    with app.sessions.begin() as session:
        row = session.get_one(InvoiceRow, row_id)
        row.remote_id = row.remote_id or remote_id
        return finish_void(app, session, row, now, outcome)


def _decide(app: App, row_id: int) -> Next | _VoidRemote:
    now = app.clock()
    with app.sessions.begin() as session:
        row = session.get_one(InvoiceRow, row_id, with_for_update=True)
        if row.correction is None:
            return _resume(row, now)
        if row.correction == Correction.REVISE and not differs_from_built(
                row, repo.job_events(session, row.tenant, row.job_id)):
            repo.record(session, row, now, "correction_dropped",
                        reason="the newest job is the one this revision was built from")
            row.correction = row.correction_reason = None
            return _resume(row, now)
        if row.doc_state in (DocState.SENT, DocState.CREDITED):
            return credit.start(app, session, row, now)
        keys = IdempotencyKeys(row.idempotency_base) if row.idempotency_base else \
            IdempotencyKeys.derive(row.tenant, row.job_id, row.revision)
        if row.remote_id:
            return _VoidRemote(row.tenant, row.remote_id, None, keys)
        if row.create_started_at is not None:
            return _VoidRemote(row.tenant, None, repo.load_invoice(row), keys)
        return finish_void(app, session, row, now, "not_on_platform")


def _resume(row: InvoiceRow, now: datetime) -> Next:
    """Nothing to correct: the row carries on where it was (or waits, when held or failed)."""
    if row.doc_state in WORKABLE:
        row.next_attempt_at = now + LEASE  # still ours: this worker goes on with it
        return row.doc_state
    row.next_attempt_at = None
    return None


def finish_void(app: App, session: Session, row: InvoiceRow, now: datetime, outcome: str, *,
                actor: str = "worker") -> Next:
    """``row`` void (its number, if it took one, stays used); for ``revise``, the next
    revision, handed to the caller when it is due at once."""
    correction, reason = row.correction, row.correction_reason or "job changed"
    row.correction = row.correction_reason = None
    row.next_attempt_at = None
    repo.record(session, row, now, "voided", actor=actor, to_state=DocState.VOID, reason=reason,
                on_platform=outcome, number=row.number, number_retired=row.number is not None)
    if correction != Correction.REVISE:
        return None
    return lease_if_due(new_revision(app, session, row, now, reason, actor=actor), now)

