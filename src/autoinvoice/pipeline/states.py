"""The two states every invoice carries (its document state and its payment state), the kinds
of document a row can be, and the worker's tasks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum


class DocState(StrEnum):
    PENDING_TRIGGERS = "pending_triggers"  # waiting for the events the tenant requires
    READY = "ready"  # built; numbered and created on the platform next
    ON_HOLD = "on_hold"  # needs a person: a rule could not decide, or totals disagree
    CREATED = "created"  # exists on the platform; not yet delivered
    SENT = "sent"  # delivered to the client (by the platform or our own e-mail)
    FAILED = "failed"  # retries exhausted or a permanent error; needs an operator
    VOID = "void"  # replaced before it was delivered (or rejected); a number it took stays used
    CREDITED = "credited"  # delivered, then cancelled in full by its credit note


class PayState(StrEnum):
    UNPAID = "unpaid"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    OVERPAID = "overpaid"
    REFUNDED = "refunded"


class Kind(StrEnum):
    """What a row of ``invoices`` is: an invoice revision, or the credit note of one."""

    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class Correction(StrEnum):
    """A correction waiting on a row for the worker."""

    REVISE = "revise"  # the job changed: void or credit this revision, then build the next
    VOID = "void"  # rejected in review: void it (on the platform too), build nothing


#: States the worker advances when their ``next_attempt_at`` is due. A held or failed row is
#: due only when a correction was requested for it (otherwise it has no ``next_attempt_at``).
WORKABLE = (DocState.PENDING_TRIGGERS, DocState.READY, DocState.CREATED, DocState.SENT)
CLAIMABLE = (*WORKABLE, DocState.ON_HOLD, DocState.FAILED)
#: A claimed row is the claiming worker's for this long; a crashed worker's rows come back.
LEASE = timedelta(minutes=5)

#: The worker's task for a row with a pending correction, and for a credit note's states.
REVISE = "revise"
CREDIT_READY = "credit_note:ready"
CREDIT_CREATED = "credit_note:created"


def task_of(state: str, kind: str, correction: str | None) -> str:
    """What the worker does next with a claimed row."""
    if correction:
        return REVISE
    if kind == Kind.CREDIT_NOTE:
        return f"{Kind.CREDIT_NOTE}:{state}"
    return state


@dataclass(frozen=True, slots=True)
class Handoff:
    """A step's outcome that continues with another row (leased to this worker), e.g. the
    revision that replaces a voided one, or the credit note of a sent one."""

    row_id: int
    task: str


def pay_state_for(paid_minor: int, total_minor: int) -> PayState:
    if paid_minor <= 0:
        return PayState.UNPAID
    if paid_minor < total_minor:
        return PayState.PARTIALLY_PAID
    return PayState.PAID if paid_minor == total_minor else PayState.OVERPAID
