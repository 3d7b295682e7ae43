"""Turning a job's stored events into a built invoice on its row (the pending_triggers step)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from autoinvoice import __version__
from autoinvoice.billing.engine import build_invoice
from autoinvoice.bootstrap import App
from autoinvoice.domain.invoice import InvoiceFlag
from autoinvoice.pipeline.holds import hold
from autoinvoice.pipeline.intake import schedule
from autoinvoice.pipeline.states import DocState
from autoinvoice.store import repo
from autoinvoice.store.models import EventRow, InvoiceRow
from autoinvoice.triggers.events import JobCompleted, JobSigned, parse_event
from autoinvoice.triggers.policy import COMPLETION_TYPES


def job_from_events(events: Sequence[EventRow]) -> tuple[JobCompleted | None, JobSigned | None]:
    """The newest completion event and the newest signature among a job's events."""
    completion: JobCompleted | None = None
    signed: JobSigned | None = None
    for row in events:
        event = parse_event(json.loads(row.payload, parse_float=Decimal))
        if row.type in COMPLETION_TYPES and isinstance(event, JobCompleted):
            completion = event
        elif isinstance(event, JobSigned):
            signed = event
    return completion, signed


def build_step(app: App, session: Session, row: InvoiceRow, now: datetime) -> str | None:
    """Build the invoice once its triggers are in; returns READY when it may go on at once."""
    if row.doc_state != DocState.PENDING_TRIGGERS or row.invoice_json is not None:
        return None  # built already (by another worker that held the row): never twice
    events = repo.job_events(session, row.tenant, row.job_id)
    decision = schedule(row, events, app.config.tenant(row.tenant).triggers, now)
    if decision.due_at is None or decision.due_at > now:
        return None  # not due after all: waiting for events or the signature deadline
    completion, signed = job_from_events(events)
    flags = frozenset({InvoiceFlag.UNSIGNED}) if decision.unsigned else frozenset()
    assert completion is not None
    job = completion.job.domain(signed.signature.domain() if signed else None)
    tz = app.rules(row.tenant).timezone
    result = build_invoice(job, app.rules(row.tenant), tenant=row.tenant,
                           revision=row.revision, issue_date=now.astimezone(tz).date(),
                           flags=flags)
    repo.store_invoice(session, row, result.invoice)
    row.source_event_id = completion.event_id
    version = app.remembered_config(session, row.tenant, now)
    repo.record(session, row, now, "built", to_state=DocState.READY,
                total=str(result.invoice.total), lines=len(result.invoice.lines),
                flags=sorted(flags), event_id=completion.event_id, config_version=version,
                engine_version=__version__, decisions=result.decisions)
    if result.problems:
        hold(session, row, now, [(p.code, p.message) for p in result.problems])
        return None
    row.next_attempt_at = now
    return DocState.READY
