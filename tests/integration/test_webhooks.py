"""Stripe payment webhooks: genuine ones move the payment state; forged, stale and replayed
ones change nothing."""

from __future__ import annotations

import json

import pytest

from autoinvoice.payments.stripe_webhook import stripe_signature_header
from tests.helpers import completed, signed
from tests.integration.conftest import WEBHOOK_SECRET


@pytest.fixture
def sent(harness):
    harness.ingest(completed("WO-W"))
    harness.ingest(signed("WO-W"))
    harness.run()
    return harness.row("WO-W")


def _event(remote_id: str, amount_paid: int, event_id: str = "evt_1") -> bytes:
    return json.dumps({
        "id": event_id, "object": "event", "type": "invoice.paid", "created": 1700000000,
        "data": {"object": {"id": remote_id, "object": "invoice", "amount_paid": amount_paid,
                            "currency": "usd", "status": "paid",
                            "status_transitions": {"paid_at": 1795000000}}},
    }).encode()


@pytest.fixture
def client(api):
    return api


def _post(client, body: bytes, header: str | None):
    headers = {"Stripe-Signature": header} if header else {}
    return client.post("/v1/webhooks/stripe/northwind", content=body, headers=headers)


def _now(harness) -> int:
    return int(harness.clock.now.timestamp())


def test_genuine_webhook_marks_the_invoice_paid(harness, sent, client):
    body = _event(sent.remote_id, 251950)
    response = _post(client, body, stripe_signature_header(body, WEBHOOK_SECRET, _now(harness)))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "applied"
    row = harness.row("WO-W")
    assert (row.pay_state, row.amount_paid_minor) == ("paid", 251950)


def test_forged_signature_is_rejected(harness, sent, client):
    body = _event(sent.remote_id, 251950)
    header = stripe_signature_header(body, "whsec_attacker", _now(harness))
    assert _post(client, body, header).status_code == 400
    assert harness.row("WO-W").pay_state == "unpaid"


def test_stale_webhook_is_rejected(harness, sent, client):
    body = _event(sent.remote_id, 251950)
    header = stripe_signature_header(body, WEBHOOK_SECRET, _now(harness) - 301)
    response = _post(client, body, header)
    assert response.status_code == 400
    assert "tolerance" in response.text or "stale" in response.text or "old" in response.text
    assert harness.row("WO-W").pay_state == "unpaid"


def test_missing_signature_is_rejected(harness, sent, client):
    assert _post(client, _event(sent.remote_id, 251950), None).status_code == 400


def test_replayed_webhook_changes_nothing(harness, sent, client):
    partial = _event(sent.remote_id, 100000, event_id="evt_partial")
    header = stripe_signature_header(partial, WEBHOOK_SECRET, _now(harness))
    assert _post(client, partial, header).json()["status"] == "applied"
    full = _event(sent.remote_id, 251950, event_id="evt_full")
    _post(client, full, stripe_signature_header(full, WEBHOOK_SECRET, _now(harness)))
    assert harness.row("WO-W").pay_state == "paid"
    # the old partial-payment event, captured and sent again, must not undo the payment
    again = _post(client, partial, header)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    row = harness.row("WO-W")
    assert (row.pay_state, row.amount_paid_minor) == ("paid", 251950)


def test_webhook_secret_never_appears_in_the_answer(harness, sent, client):
    body = _event(sent.remote_id, 1)
    response = _post(client, body, "t=1,v1=00")
    assert WEBHOOK_SECRET not in response.text
