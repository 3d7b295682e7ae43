from __future__ import annotations

import json

import pytest
import stripe

from autoinvoice.payments.stripe_webhook import (
    SignatureProblem,
    StripeEvent,
    WebhookPayloadError,
    WebhookSignatureError,
    compute_signature,
    parse_stripe_event,
    stripe_signature_header,
    verify_stripe_signature,
)

SECRET = "whsec_test_0123456789abcdef"
NOW = 1_760_000_000
PAYLOAD = json.dumps(
    {
        "id": "evt_1QaBc",
        "object": "event",
        "type": "invoice.paid",
        "created": NOW - 5,
        "data": {"object": {"id": "in_1QaBc", "object": "invoice", "amount_paid": 123456}},
    },
    separators=(",", ":"),
).encode()


def official_header(payload: bytes, secret: str, timestamp: int) -> str:
    """The header as Stripe's own SDK builds it (test helper shipped in stripe-python)."""
    header: str = stripe.WebhookSignature.generate_signature_header(
        payload.decode(), secret, timestamp=timestamp
    )
    return header


def rejection(payload: bytes, header: str | None, *, now: float = NOW) -> SignatureProblem:
    with pytest.raises(WebhookSignatureError) as caught:
        verify_stripe_signature(payload, header, SECRET, now=now)
    return caught.value.reason


def test_header_made_by_the_stripe_sdk_verifies() -> None:
    verify_stripe_signature(PAYLOAD, official_header(PAYLOAD, SECRET, NOW), SECRET, now=NOW)


def test_our_header_matches_the_stripe_sdk_byte_for_byte() -> None:
    assert stripe_signature_header(PAYLOAD, SECRET, NOW) == official_header(PAYLOAD, SECRET, NOW)


def test_the_stripe_sdk_accepts_our_header() -> None:
    header = stripe_signature_header(PAYLOAD, SECRET, NOW)
    assert stripe.WebhookSignature.verify_header(PAYLOAD, header, SECRET, tolerance=None)


def test_signature_from_another_secret_is_rejected() -> None:
    forged = official_header(PAYLOAD, "whsec_attacker", NOW)
    assert rejection(PAYLOAD, forged) is SignatureProblem.NO_MATCHING_SIGNATURE


def test_tampered_body_is_rejected() -> None:
    header = official_header(PAYLOAD, SECRET, NOW)
    tampered = PAYLOAD.replace(b"123456", b"999999")
    assert rejection(tampered, header) is SignatureProblem.NO_MATCHING_SIGNATURE


def test_reserialised_json_is_rejected_because_only_raw_bytes_count() -> None:
    header = official_header(PAYLOAD, SECRET, NOW)
    pretty = json.dumps(json.loads(PAYLOAD), indent=2).encode()
    assert rejection(pretty, header) is SignatureProblem.NO_MATCHING_SIGNATURE


def test_timestamp_one_second_past_the_tolerance_is_stale() -> None:
    header = official_header(PAYLOAD, SECRET, NOW - 301)
    assert rejection(PAYLOAD, header) is SignatureProblem.TIMESTAMP_TOO_OLD


def test_timestamp_at_the_edge_of_the_tolerance_passes() -> None:
    verify_stripe_signature(PAYLOAD, official_header(PAYLOAD, SECRET, NOW - 300), SECRET, now=NOW)


def test_timestamp_too_far_in_the_future_is_rejected() -> None:
    header = official_header(PAYLOAD, SECRET, NOW + 301)
    assert rejection(PAYLOAD, header) is SignatureProblem.TIMESTAMP_IN_FUTURE


def test_tolerance_is_configurable() -> None:
    header = official_header(PAYLOAD, SECRET, NOW - 60)
    with pytest.raises(WebhookSignatureError):
        verify_stripe_signature(PAYLOAD, header, SECRET, now=NOW, tolerance=30)


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_header_is_rejected(header: str | None) -> None:
    assert rejection(PAYLOAD, header) is SignatureProblem.MISSING_HEADER


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "v1=abc",  # no timestamp
        f"t=soon,v1={'0' * 64}",
        f"t={NOW},t={NOW},v1={'0' * 64}",
        f"t={NOW},,v1={'0' * 64}",
    ],
)
def test_malformed_header_is_rejected(header: str) -> None:
    assert rejection(PAYLOAD, header) is SignatureProblem.MALFORMED_HEADER


def test_header_without_a_v1_signature_is_rejected() -> None:
    v0_only = f"t={NOW},v0={compute_signature(PAYLOAD, SECRET, NOW)}"
    assert rejection(PAYLOAD, v0_only) is SignatureProblem.NO_V1_SIGNATURE


def test_several_v1_entries_pass_when_one_matches() -> None:
    # given: a secret rotation, Stripe signs with the old and the new secret
    good = compute_signature(PAYLOAD, SECRET, NOW)
    old = compute_signature(PAYLOAD, "whsec_old_secret", NOW)
    header = f"t={NOW},v1={old},v1={good},v0={'f' * 64}"
    # then
    verify_stripe_signature(PAYLOAD, header, SECRET, now=NOW)


def test_several_v1_entries_fail_when_none_matches() -> None:
    header = f"t={NOW},v1={'0' * 64},v1={compute_signature(PAYLOAD, 'whsec_x', NOW)}"
    assert rejection(PAYLOAD, header) is SignatureProblem.NO_MATCHING_SIGNATURE


def test_parse_event_returns_id_type_created_and_object() -> None:
    assert parse_stripe_event(PAYLOAD) == StripeEvent(
        id="evt_1QaBc",
        type="invoice.paid",
        created=NOW - 5,
        object={"id": "in_1QaBc", "object": "invoice", "amount_paid": 123456},
    )


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"id": "evt_1", "type": "x", "created": 1}', b'{"type": "x"}'],
)
def test_parse_event_rejects_bodies_that_are_not_events(body: bytes) -> None:
    with pytest.raises(WebhookPayloadError):
        parse_stripe_event(body)
