"""Asking for a correction of an invoice revision, and telling whether a job really changed.

A correction is a flag on the row (``correction``: revise or void, with a reason) that the
worker acts on as its own step (``pipeline.revise``), with the retries and the crash safety of
every step. Setting it never races a worker that holds the row: a row whose next attempt lies
beyond a lease's length is not leased, so it is made due now; a leased one is seen by the
step that holds it when that step records its outcome, or when its lease runs out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from autoinvoice.pipeline.states import LEASE, Correction
from autoinvoice.store import repo
from autoinvoice.store.models import EventRow, InvoiceRow
from autoinvoice.triggers.events import JobCompleted, parse_event
from autoinvoice.triggers.policy import COMPLETION_TYPES


def request_correction(session: Session, row: InvoiceRow, correction: Correction, reason: str,
                       now: datetime, *, actor: str, **detail: Any) -> None:
    row.correction, row.correction_reason = correction.value, reason
    if row.next_attempt_at is None or row.next_attempt_at > now + LEASE:
        row.next_attempt_at = now
    repo.record(session, row, now, "correction_requested", actor=actor,
                correction=correction.value, reason=reason, **detail)


def newest_completion(events: Sequence[EventRow]) -> EventRow | None:
    """The completion event a build uses: the last one in the job's event order."""
    completions = [e for e in events if e.type in COMPLETION_TYPES]
    return completions[-1] if completions else None


def job_of(event: EventRow) -> Any:
    """The validated job of a completion event (compared field by field, numbers exactly)."""
    parsed = parse_event(json.loads(event.payload, parse_float=Decimal))
    assert isinstance(parsed, JobCompleted)
    return parsed.job


def differs_from_built(row: InvoiceRow, events: Sequence[EventRow]) -> bool:
    """Is the job's newest completion another job than the one ``row`` was built from? A row
    built before the source event was recorded compares with the completion before the
    newest."""
    completions = [e for e in events if e.type in COMPLETION_TYPES]
    if not completions:
        return False
    if row.source_event_id is not None:
        source = next((e for e in completions if e.event_id == row.source_event_id), None)
    elif len(completions) > 1:
        source = completions[-2]
    else:
        return False
    return source is None or job_of(source) != job_of(completions[-1])
