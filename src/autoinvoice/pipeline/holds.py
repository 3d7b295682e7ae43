"""Putting a revision on hold for a person, and taking it off again."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from autoinvoice.pipeline.states import DocState
from autoinvoice.store import repo
from autoinvoice.store.models import InvoiceRow


def hold(session: Session, row: InvoiceRow, now: datetime,
         reasons: Sequence[tuple[str, str]]) -> None:
    """On hold for every ``(code, message)`` in ``reasons``; nothing is due until a review."""
    row.hold_code = reasons[0][0]
    row.hold_message = "; ".join(message for _, message in reasons)
    row.hold_reasons = [{"code": code, "message": message} for code, message in reasons]
    row.held_at = now
    row.next_attempt_at = None
    repo.record(session, row, now, "held", to_state=DocState.ON_HOLD,
                reasons=row.hold_reasons)


def release(row: InvoiceRow) -> None:
    """The hold is over (the history keeps its reasons)."""
    row.hold_code = row.hold_message = None
    row.hold_reasons = None
    row.held_at = None


def reasons_of(row: InvoiceRow) -> list[dict[str, str]]:
    if row.hold_reasons:
        return list(row.hold_reasons)
    return [{"code": row.hold_code, "message": row.hold_message or ""}] if row.hold_code else []
