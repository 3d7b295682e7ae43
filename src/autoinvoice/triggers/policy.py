"""The trigger policy: when has a job's set of events earned it an invoice?

Pure: event types and the completion's arrival time in, a decision out. Intake uses it to
schedule the job; the worker uses it again when the job comes due."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

COMPLETION_TYPES = ("job.completed", "work_order.finalized")


@dataclass(frozen=True, slots=True)
class Readiness:
    due_at: datetime | None  # when to invoice; None: wait for more events
    unsigned: bool = False  # invoiced at the signature deadline, without the signature
    signature_deadline: datetime | None = None


def _met(required: str, seen: Collection[str], require: Sequence[str]) -> bool:
    """Seen, or a completion required under one name and arriving under the other: a
    finalized work order completes the job (a CSV export has no ``job.completed``), unless
    the tenant requires both on purpose."""
    if required in seen:
        return True
    both = all(t in require for t in COMPLETION_TYPES)
    return required in COMPLETION_TYPES and not both and any(t in seen for t in COMPLETION_TYPES)


def readiness(seen: Collection[str], completed_at: datetime | None, require: Sequence[str],
              signature_wait_hours: Decimal | None, now: datetime) -> Readiness:
    """``seen``: the job's event types; ``completed_at``: when its completion event arrived."""
    missing = [t for t in require if not _met(t, seen, require)]
    if completed_at is None:
        return Readiness(None)
    if not missing:
        return Readiness(now)
    if missing == ["job.signed"] and signature_wait_hours is not None:
        deadline = completed_at + timedelta(seconds=int(signature_wait_hours * 3600))
        return Readiness(deadline, unsigned=True, signature_deadline=deadline)
    return Readiness(None)
