"""Payment webhooks: verified, de-duplicated by the platform's event id, then applied."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from autoinvoice.bootstrap import App
from autoinvoice.domain.money import Money
from autoinvoice.payments.stripe_webhook import (
    WebhookSignatureError,
    parse_stripe_event,
    verify_stripe_signature,
)
from autoinvoice.pipeline.steps import apply_payment
from autoinvoice.store import repo
from autoinvoice.store.models import WebhookEventRow

STRIPE_PAYMENT_EVENTS = frozenset({
    "invoice.paid", "invoice.payment_succeeded", "invoice.updated",
    "invoice.marked_uncollectible", "invoice.voided",
})


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    status: str  # "applied" | "ignored" | "duplicate" | "unknown_invoice"
    detail: str = ""


class WebhookRejected(Exception):
    """The request is not a genuine, fresh webhook from the platform (answer 400/401)."""


def handle_stripe(app: App, tenant: str, body: bytes, header: str | None) -> WebhookOutcome:
    cfg = app.config.tenants.get(tenant)
    if cfg is None or cfg.platform.name != "stripe" or cfg.platform.webhook_secret is None:
        raise WebhookRejected(f"no Stripe webhook is configured for tenant {tenant!r}")
    try:
        verify_stripe_signature(body, header, cfg.platform.webhook_secret.reveal(),
                                now=app.clock().timestamp())
    except WebhookSignatureError as exc:
        raise WebhookRejected(f"signature rejected: {exc}") from None
    event = parse_stripe_event(body)
    if not _first_delivery(app, tenant, event.id, event.type):
        return WebhookOutcome("duplicate", f"event {event.id} was already processed")
    if event.type not in STRIPE_PAYMENT_EVENTS or event.object.get("object") != "invoice":
        return WebhookOutcome("ignored", f"event type {event.type}")
    return _apply_invoice(app, tenant, event.id, event.object)


def _first_delivery(app: App, tenant: str, event_id: str, event_type: str) -> bool:
    try:
        with app.sessions.begin() as session:
            session.add(WebhookEventRow(platform="stripe", tenant=tenant, event_id=event_id,
                                        type=event_type, received_at=app.clock()))
    except IntegrityError:
        return False
    return True


def _apply_invoice(app: App, tenant: str, event_id: str, obj: dict[str, object]
                   ) -> WebhookOutcome:
    with app.sessions() as session:
        row = repo.invoice_by_remote(session, tenant, "stripe", str(obj.get("id")))
        if row is None:
            return WebhookOutcome("unknown_invoice", f"no invoice with remote id {obj.get('id')}")
        row_id, currency = row.id, row.currency or str(obj.get("currency", "")).upper()
    paid = Money.from_minor(int(str(obj.get("amount_paid", 0))), currency)
    transitions = obj.get("status_transitions") or {}
    paid_ts = transitions.get("paid_at") if isinstance(transitions, dict) else None
    paid_at = datetime.fromtimestamp(int(paid_ts), UTC) if paid_ts else None
    changed = apply_payment(app, row_id, paid, paid_at, source="stripe_webhook",
                            external_id=event_id, actor="webhook")
    return WebhookOutcome("applied" if changed else "ignored", f"amount_paid {paid}")
