"""The two states every invoice carries: its document state and its payment state."""

from __future__ import annotations

from enum import StrEnum


class DocState(StrEnum):
    PENDING_TRIGGERS = "pending_triggers"  # waiting for the events the tenant requires
    READY = "ready"  # built; numbered and created on the platform next
    ON_HOLD = "on_hold"  # needs a person: a rule could not decide, or totals disagree
    CREATED = "created"  # exists on the platform; not yet delivered
    SENT = "sent"  # delivered to the client (by the platform or our own e-mail)
    FAILED = "failed"  # retries exhausted or a permanent error; needs an operator
    VOID = "void"
    CREDITED = "credited"


class PayState(StrEnum):
    UNPAID = "unpaid"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    OVERPAID = "overpaid"
    REFUNDED = "refunded"


#: States the worker advances when their ``next_attempt_at`` is due.
WORKABLE = (DocState.PENDING_TRIGGERS, DocState.READY, DocState.CREATED, DocState.SENT)


def pay_state_for(paid_minor: int, total_minor: int) -> PayState:
    if paid_minor <= 0:
        return PayState.UNPAID
    if paid_minor < total_minor:
        return PayState.PARTIALLY_PAID
    return PayState.PAID if paid_minor == total_minor else PayState.OVERPAID
